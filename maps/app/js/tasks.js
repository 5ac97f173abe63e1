// 我的任务: the worker's open cases, overdue first, then by due time, then by distance from where
// the worker stands (the server orders them the same way; the tablet orders them again offline,
// from the cached list and the current GPS fix). A case with an action waiting to be sent says so.

import { el, icon } from "./dom.js";
import { distanceM } from "./geo.js";
import { beijingTime, pick, t } from "./i18n.js";

function distanceOf(task, position) {
  if (!position || !task.geometry) return null;
  const [lon, lat] = task.geometry.coordinates;
  return distanceM(position.lon, position.lat, lon, lat);
}

/** The order of 我的任务. */
export function orderTasks(tasks, position) {
  const keyed = tasks.map((task) => ({ task, d: distanceOf(task, position) }));
  keyed.sort((a, b) => {
    const pa = a.task.properties, pb = b.task.properties;
    if (pa.overdue !== pb.overdue) return pa.overdue ? -1 : 1;
    const da = pa.due_at ? Date.parse(pa.due_at) : Infinity;
    const db = pb.due_at ? Date.parse(pb.due_at) : Infinity;
    if (da !== db) return da - db;
    const xa = a.d ?? Infinity, xb = b.d ?? Infinity;
    if (xa !== xb) return xa - xb;
    return a.task.id - b.task.id;
  });
  return keyed;
}

const ACTION_WORDS = { verify: "act_verify", check: "act_check" };

export function renderTasks(list, app, { onOpen }) {
  const tasks = app.data.tasks || [];
  const categories = Object.fromEntries((app.data.categories.issue || []).map((c) => [c.code, c]));
  const statuses = app.data.config.statuses;
  const waiting = new Set(app.pendingIssues);
  if (!tasks.length) {
    list.replaceChildren(el("li", { class: "muted" }, t("no_tasks")));
    return;
  }
  list.replaceChildren(...orderTasks(tasks, app.position).map(({ task, d }) => {
    const p = task.properties;
    const category = categories[p.category];
    const action = ACTION_WORDS[p.action] || "act_view";
    return el("li", { class: `card${p.overdue ? " overdue" : ""}`, "data-issue": task.id },
      el("div", { class: "card-head" },
        el("span", { class: "cat-icon", style: category ? `color:${category.colour}` : null }, icon(category && category.icon)),
        el("strong", {}, ` #${task.id} `, category ? pick([category.name_zh, category.name_en]) : p.category),
        p.overdue ? el("span", { class: "badge danger" }, t("overdue")) : null,
        waiting.has(task.id) ? el("span", { class: "badge pending" }, t("task_pending")) : null),
      el("p", { class: "description" }, p.description || ""),
      el("p", { class: "muted" }, pick(statuses[p.status]), " · ",
        p.due_at ? t("due", { t: beijingTime(p.due_at) }) : t("no_due"),
        d != null ? ` · ${t("distance", { d: Math.round(d) })}` : ""),
      el("button", { type: "button", class: p.action ? "primary" : "", disabled: waiting.has(task.id),
        onclick: () => onOpen(task) }, t(action)));
  }));
}
