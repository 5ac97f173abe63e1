// 网格通, the grid worker's app: boot, offline data, views and the sync indicator.
//
// Opening: the service worker serves the shell (with no network too); the app shows what it kept
// in IndexedDB at once, then, when online, asks the server for fresh data (the worker's grids and
// their neighbours, buildings, facilities, categories, open cases) and keeps that. With no kept
// data and no session it goes to the log-in page; with kept data and an ended session it goes on
// working offline and asks for a new log-in only to send.

import { Workbox } from "/static/npm/workbox-window/build/workbox-window.prod.mjs";
import { ApiError, get, setCsrfToken } from "./api.js";
import { el, toast } from "./dom.js";
import { actionForm, facilityForm, ReportForm } from "./forms.js";
import { boundsOf } from "./geo.js";
import { beijingTime, language, pick, setLanguage, t, translateShell } from "./i18n.js";
import { MapView } from "./mapview.js";
import { jobs as storedJobs, loadData, saveData, savedAt } from "./store.js";
import {
  currentState, dropJob, onChange, retryJob, sentCount, setUser, start as startSync, syncNow,
} from "./sync.js";
import { renderTasks } from "./tasks.js";

const KINDS = ["me", "config", "categories", "grids", "buildings", "facilities", "tasks"];
const NEIGHBOURS_M = 500; // neighbouring grids within this of the worker's own are kept too
const SURROUNDINGS_M = 100; // buildings and facilities just outside the worker's grids too
const LOGIN_URL = "/login?next=/app/";
const REFRESH_MS = 5 * 60 * 1000; // new cases reach an open app within minutes

const app = { data: null, position: null, pendingIssues: [], view: "map", online: navigator.onLine };
window.gridmapApp = app; // for the browser tests to read the state

const $ = (id) => document.getElementById(id);
let mapView = null;
let reportForm = null;

// -- data -----------------------------------------------------------------------------------------
async function loadKept() {
  const values = await Promise.all(KINDS.map((k) => loadData(k)));
  if (values.some((v) => v === null)) return null;
  return Object.fromEntries(KINDS.map((k, i) => [k, values[i]]));
}

const bboxParam = (b) => b.map((v) => v.toFixed(6)).join(",");

async function fetchFresh() {
  const me = await get("/api/v1/me");
  if (me.password_change_required) { location.assign("/account/password?next=/app/"); return null; }
  setCsrfToken(me.csrf_token);
  const [config, issueKinds, facilityKinds] = await Promise.all([
    get("/app/config.json"), get("/api/v1/categories?kind=issue"), get("/api/v1/categories?kind=facility")]);
  const own = await Promise.all((me.grids || []).map((code) => get(`/api/v1/grids/${encodeURIComponent(code)}`)));
  let grids;
  let area;
  if (own.length) {
    grids = (await get(`/api/v1/grids?bbox=${bboxParam(boundsOf(own, NEIGHBOURS_M))}&limit=1000`)).features;
    area = boundsOf(own, SURROUNDINGS_M);
  } else {
    grids = (await get("/api/v1/grids?limit=200")).features;
    area = boundsOf(grids, 0);
  }
  const near = area ? `bbox=${bboxParam(area)}&limit=10000` : "limit=1";
  const position = app.position ? `?lon=${app.position.lon}&lat=${app.position.lat}` : "";
  const [buildings, facilities, tasks] = await Promise.all([
    get(`/api/v1/buildings?${near}`), get(`/api/v1/facilities?${near}`), get(`/api/v1/me/tasks${position}`)]);
  const data = { me, config, categories: { issue: issueKinds.data, facility: facilityKinds.data },
    grids, buildings: buildings.features, facilities: facilities.features, tasks: tasks.features };
  for (const kind of KINDS) await saveData(kind, data[kind]);
  return data;
}

async function refresh() {
  try {
    const fresh = await fetchFresh();
    if (!fresh) return;
    app.data = fresh;
    app.sessionEnded = false;
    setUser(fresh.me.username);
    render();
    syncNow();
  } catch (err) {
    if (err instanceof ApiError && err.kind === "login") {
      if (!app.data) { location.assign(LOGIN_URL); return; }
      app.sessionEnded = true;
      showNotice();
    } else if (!app.data) {
      $("map-info").textContent = t("data_none");
    }
  }
}

// -- views ----------------------------------------------------------------------------------------
function showView(name) {
  app.view = name;
  for (const view of ["map", "tasks", "report", "queue"]) $(`view-${view}`).hidden = view !== name;
  for (const tab of document.querySelectorAll(".tab")) tab.setAttribute("aria-pressed", String(tab.dataset.view === name));
  if (name === "map" && mapView) mapView.invalidate();
  if (name === "report") {
    if (!reportForm) reportForm = new ReportForm($("report-panel"), app, { onSaved: () => showView("map") });
    else reportForm.pinMap.invalidate();
  }
  if (name === "tasks") renderTaskList();
  if (name === "queue") renderQueue();
}

function openTask(task) {
  showView("tasks");
  const panel = $("task-panel");
  panel.hidden = false;
  actionForm(panel, app, task, {
    onSaved: () => { panel.hidden = true; refreshPending(); },
    onClose: () => { panel.hidden = true; },
  });
  panel.scrollIntoView({ block: "start" });
}

function openFacility(facility) {
  const panel = $("facility-panel");
  panel.hidden = false;
  facilityForm(panel, app, facility, {
    onSaved: () => { panel.hidden = true; },
    onClose: () => { panel.hidden = true; },
  });
}

function renderTaskList() {
  if (!app.data) return;
  renderTasks($("task-list"), app, { onOpen: openTask });
  const n = (app.data.tasks || []).length;
  $("task-count").textContent = n ? String(n) : "";
  $("tasks-note").textContent = (app.data.me.grids || []).length ? "" : t("not_worker");
}

function render() {
  if (!app.data) return;
  const me = app.data.me;
  $("who").textContent = `${me.display_name || me.username} · ${me.role_zh || me.role}`;
  mapView.show(app.data);
  renderTaskList();
  savedAt("tasks").then((at) => { $("map-info").textContent = at ? t("data_saved_at", { t: beijingTime(at) }) : ""; });
  if (!document.body.dataset.readyAt) {
    document.body.dataset.readyAt = String(Math.round(performance.now()));
  }
  document.body.dataset.ready = "true";
}

// -- sync state -----------------------------------------------------------------------------------
function mine(all) {
  const user = app.data && app.data.me.username;
  return all.filter((j) => !j.user || j.user === user);
}

async function refreshPending() {
  const all = mine(await storedJobs());
  app.pendingIssues = all.filter((j) => j.type === "verify" || j.type === "check").map((j) => j.issue_id);
  renderTaskList();
}

let hadWaiting = false;

function showSync(all, state) {
  const list = mine(all);
  const waiting = list.filter((j) => !j.failed).length;
  const failed = list.filter((j) => j.failed).length;
  const button = $("sync");
  button.hidden = false;
  app.sentJobs = sentCount();
  button.classList.toggle("failed", failed > 0 || state.paused === "login");
  button.classList.toggle("waiting", waiting > 0);
  const parts = [];
  if (waiting) parts.push(t("pending", { n: waiting }));
  if (failed) parts.push(t("sync_failed", { n: failed }));
  if (!parts.length) parts.push(state.running ? t("syncing") : t("synced"));
  button.textContent = parts.join(" · ");
  app.pendingIssues = list.filter((j) => j.type === "verify" || j.type === "check").map((j) => j.issue_id);
  if (app.view === "queue") renderQueue();
  if (hadWaiting && !waiting && !state.running && navigator.onLine && app.data) refresh();
  hadWaiting = waiting > 0;
  showNotice();
}

function showNotice() {
  const box = $("notice");
  const state = currentState();
  if (app.sessionEnded || state.paused === "login") {
    box.replaceChildren(t("sync_paused_login"), " ", el("a", { href: LOGIN_URL, class: "button" }, t("log_in_again")));
    box.hidden = false;
  } else box.hidden = true;
}

function jobLabel(job) {
  if (job.type === "report") return t("job_report", { c: job.label || job.body.category });
  if (job.type === "verify") return t("job_verify", { id: job.issue_id });
  if (job.type === "check") return t("job_check", { id: job.issue_id });
  return t("job_facility", { name: job.label || `#${job.facility_id}` });
}

async function renderQueue() {
  const list = mine(await storedJobs());
  $("queue-list").replaceChildren(...(list.length ? list.map((job) => {
    const photos = [...(job.photos || []), ...(job.after || [])];
    const done = photos.filter((p) => p.done).length;
    return el("li", { class: `card${job.failed ? " overdue" : ""}` },
      el("strong", {}, jobLabel(job)), " ",
      el("span", { class: "muted" }, beijingTime(job.created_at)),
      photos.length ? el("p", {}, t("job_photos", { done, n: photos.length })) : null,
      el("p", {}, job.failed ? t("job_failed", { m: job.failed.message }) : t("job_waiting")),
      job.failed ? el("div", { class: "actions" },
        el("button", { type: "button", onclick: () => retryJob(job.key) }, t("retry")),
        el("button", { type: "button", onclick: () => dropJob(job.key) }, t("remove"))) : null);
  }) : [el("li", { class: "muted" }, t("synced"))]));
}

function showNetwork() {
  app.online = navigator.onLine;
  const chip = $("net");
  chip.textContent = app.online ? t("online") : t("offline");
  chip.classList.toggle("offline", !app.online);
}

// -- position -------------------------------------------------------------------------------------
function watchPosition() {
  if (!navigator.geolocation) return;
  navigator.geolocation.watchPosition((fix) => {
    app.position = { lon: fix.coords.longitude, lat: fix.coords.latitude, accuracy: fix.coords.accuracy };
    if (mapView) mapView.showMe(app.position);
    if (reportForm) reportForm.gps(app.position);
    if (app.view === "tasks") renderTaskList();
  }, () => {
    if (reportForm) reportForm.gps(null);
  }, { enableHighAccuracy: true, maximumAge: 10000, timeout: 30000 });
}

// -- the service worker ---------------------------------------------------------------------------
function registerWorker() {
  if (!("serviceWorker" in navigator)) return;
  const wb = new Workbox("/app/sw.js", { scope: "/app/" });
  wb.addEventListener("waiting", () => {
    // A new release is ready: take it when the worker says so, not in the middle of a form.
    const box = $("notice");
    box.replaceChildren("新版本已就绪 / A new version is ready ",
      el("button", { type: "button", onclick: () => { wb.addEventListener("controlling", () => location.reload()); wb.messageSkipWaiting(); } }, "更新 / Update"));
    box.hidden = false;
  });
  wb.register();
  app.workbox = wb;
}

// -- boot -----------------------------------------------------------------------------------------
async function boot() {
  setLanguage(language());
  translateShell();
  $("lang").textContent = language() === "zh" ? "English" : "中文";
  $("lang").addEventListener("click", () => {
    setLanguage(language() === "zh" ? "en" : "zh");
    location.reload();
  });
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showView(tab.dataset.view));
  $("sync").addEventListener("click", () => showView("queue"));
  mapView = new MapView($("map"), { onFacility: openFacility, onTask: openTask });
  window.addEventListener("online", () => { showNetwork(); refresh(); });
  window.addEventListener("offline", showNetwork);
  showNetwork();
  onChange(showSync);
  registerWorker();
  watchPosition();
  app.data = await loadKept();
  if (app.data) {
    setUser(app.data.me.username);
    setCsrfToken(null); // a kept token may belong to an ended session: the fresh /me gives it
    render();
  } else $("map-info").textContent = navigator.onLine ? t("loading") : t("data_none");
  const kept = await storedJobs();
  showSync(kept, currentState());
  if (navigator.onLine) await refresh();
  setInterval(() => { if (navigator.onLine && !app.sessionEnded) refresh(); }, REFRESH_MS);
  startSync(async () => {
    const me = await get("/api/v1/me");
    if (!app.data || me.username === app.data.me.username) setCsrfToken(me.csrf_token);
  });
}

boot();
