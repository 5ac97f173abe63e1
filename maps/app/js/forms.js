// The worker's forms: a report (上报, with 自处理), a case's action (核实, 核查) and a facility
// check (部件巡检). Each form gets its idempotency key when it opens: pressing 提交 writes one job
// under that key before anything is sent, so a double tap, a reload or a lost answer still makes
// exactly one report, one verification, one check.

import { call } from "./api.js";
import { el, icon, toast } from "./dom.js";
import { locate, nearestFacility } from "./geo.js";
import { pick, t } from "./i18n.js";
import { PinMap } from "./mapview.js";
import { NotAPicture, shrink } from "./photos.js";
import { addJob, newKey } from "./store.js";
import { announce, currentUser, syncNow } from "./sync.js";

function field(id, label, control, hint = null) {
  return el("div", { class: "field" },
    el("label", { for: id }, label), hint ? el("small", { class: "muted", id: `${id}-hint` }, hint) : null, control);
}

function errorBox() { return el("p", { class: "form-error", role: "alert", hidden: true }); }

function showError(box, text) { box.textContent = text; box.hidden = !text; }

// A form's submit handler that runs ``work`` one at a time, its button disabled meanwhile: a
// second tap while the first is being written does nothing.
function submitOnce(button, work) {
  let sending = false;
  return async (event) => {
    event.preventDefault();
    if (sending) return;
    sending = true; button.disabled = true;
    try { await work(); } finally { sending = false; button.disabled = false; }
  };
}

// A labelled group of radio buttons: ``options`` are [value, label] pairs.
function choiceGroup(id, label, name, options) {
  return el("div", { class: "field" }, el("span", { class: "label", id }, label),
    el("div", { role: "radiogroup", "aria-labelledby": id, class: "choices" }, options.map(([value, text]) =>
      el("label", { class: "choice" }, el("input", { type: "radio", name, value }), " ", text))));
}

/** A photo picker: a file control (camera first), shrunk thumbnails each with 删除, at most ``max``. */
class PhotoPicker {
  constructor(id, label, kind, config, errors, max = 6, hint = null) {
    this.kind = kind;
    this.config = config;
    this.items = [];
    this.max = max;
    this.errors = errors;
    this.input = el("input", { type: "file", id, accept: "image/*", capture: "environment", multiple: max > 1,
      "aria-describedby": hint ? `${id}-hint` : null, onchange: () => this.add() });
    this.list = el("ul", { class: "thumbs", "aria-live": "polite" });
    this.element = el("div", {}, field(id, label, this.input, hint), this.list);
    this.busy = Promise.resolve();
  }

  add() {
    const files = [...this.input.files];
    this.input.value = "";
    this.busy = this.busy.then(async () => {
      for (const file of files) {
        if (this.items.length >= this.max) { showError(this.errors, t("too_many_photos", { n: this.max })); break; }
        try {
          const photo = await shrink(file, this.config.photo_max_side);
          this.items.push(photo);
          this.render();
        } catch (err) {
          if (err instanceof NotAPicture) showError(this.errors, t("not_image", { name: file.name }));
          else throw err;
        }
      }
    });
    return this.busy;
  }

  render() {
    this.list.replaceChildren(...this.items.map((photo, i) => {
      const url = URL.createObjectURL(photo.blob);
      return el("li", {},
        el("img", { src: url, alt: `${t("photos")} ${i + 1}`, width: 72, height: 72 }),
        el("button", { type: "button", class: "small", onclick: () => { this.items.splice(i, 1); this.render(); } },
          t("remove")));
    }));
  }

  /** The photos as the job keeps them, each with its own idempotency key. */
  forJob(jobKey, offset = 0) {
    return this.items.map((p, i) => ({ key: `${jobKey}:photo:${offset + i}`, blob: p.blob, name: `photo-${offset + i + 1}.jpg`,
      kind: this.kind, taken_at: p.taken_at, done: false }));
  }
}

async function saveJob(job, done) {
  job.user = currentUser();
  const added = await addJob(job);
  if (added) {
    announce();
    toast(navigator.onLine ? t("saved_sent") : t("saved_offline"));
    syncNow();
  }
  done(job, added);
}

// -- 上报 ------------------------------------------------------------------------------------------
export class ReportForm {
  constructor(container, app, { onSaved }) {
    this.app = app;
    this.container = container;
    this.onSaved = onSaved;
    this.open();
  }

  open() {
    const { data } = this.app;
    const config = data.config;
    this.key = newKey();
    this.location = null; // {lon, lat, byHand, accuracy}
    this.submitting = false;
    this.errors = errorBox();
    this.gpsStatus = el("p", { id: "gps-status", role: "status", class: "muted" }, t("gps_waiting"));
    this.placeGrid = el("p", { id: "place-grid" });
    this.placeFacility = el("p", { id: "place-facility" });
    this.duplicates = el("div", { id: "duplicates", class: "duplicates", "aria-live": "polite", hidden: true });
    const mapBox = el("div", { id: "pin-map", class: "pin-map", role: "application", "aria-label": t("location") });
    const categories = (data.categories.issue || []).map((c) => el("label", { class: "choice" },
      el("input", { type: "radio", name: "category", value: c.code, onchange: () => this.refresh() }),
      el("span", { class: "cat-icon", style: `color:${c.colour}` }, icon(c.icon)), " ", pick([c.name_zh, c.name_en])));
    this.description = el("textarea", { id: "description", rows: 3, maxlength: 2000, "aria-describedby": "description-hint" });
    this.photos = new PhotoPicker("photos", t("photos"), "report", config, this.errors, config.photos_per_report[1], t("photos_hint"));
    this.after = new PhotoPicker("photos-after", t("photos_after"), "after", config, this.errors, config.photos_per_report[1]);
    this.afterBox = el("div", { hidden: true }, el("p", { class: "muted" }, t("self_resolve_hint")), this.after.element);
    this.selfResolve = el("input", { type: "checkbox", id: "self-resolve", onchange: () => { this.afterBox.hidden = !this.selfResolve.checked; } });
    this.submitButton = el("button", { type: "submit", class: "primary big" }, t("submit"));
    const form = el("form", { id: "report-form", novalidate: true, onsubmit: (e) => { e.preventDefault(); this.submit(); } },
      el("h2", {}, t("report_title")),
      el("fieldset", {}, el("legend", {}, t("location")), this.gpsStatus, mapBox,
        el("button", { type: "button", onclick: () => this.useGps() }, icon("crosshairs"), " ", t("use_gps")),
        this.placeGrid, this.placeFacility, el("small", { class: "muted" }, t("server_decides"))),
      el("div", { class: "field" }, el("span", { class: "label", id: "category-label" }, t("category")),
        el("div", { role: "radiogroup", "aria-labelledby": "category-label", class: "choices" }, categories)),
      field("description", t("description"), this.description, t("description_hint")),
      this.photos.element,
      el("div", { class: "field inline" }, this.selfResolve, el("label", { for: "self-resolve" }, t("self_resolve"))),
      this.afterBox, this.duplicates, this.errors,
      el("div", { class: "actions" }, this.submitButton));
    this.container.replaceChildren(form);
    this.pinMap = new PinMap(mapBox, data, this.app.position, (lon, lat, byHand) => this.moved(lon, lat, byHand));
    if (this.app.position) this.useGps();
    this.pinMap.invalidate();
  }

  /** The GPS fix changed (from main's watch): follow it unless the worker placed the pin. */
  gps(position) {
    if (!position) { this.gpsStatus.textContent = t("gps_unavailable"); return; }
    if (!this.location || !this.location.byHand) this.useGps();
  }

  useGps() {
    const p = this.app.position;
    if (!p) { this.gpsStatus.textContent = t("gps_unavailable"); return; }
    this.location = { lon: p.lon, lat: p.lat, byHand: false, accuracy: p.accuracy };
    this.pinMap.place(p.lon, p.lat, null);
    this.pinMap.map.setView([p.lat, p.lon], Math.max(this.pinMap.map.getZoom(), 18));
    this.refresh();
  }

  moved(lon, lat, byHand) {
    this.location = { lon, lat, byHand, accuracy: byHand ? null : this.location && this.location.accuracy };
    this.refresh();
  }

  category() {
    const chosen = this.container.querySelector("input[name=category]:checked");
    return chosen ? (this.app.data.categories.issue || []).find((c) => c.code === chosen.value) : null;
  }

  refresh() {
    const { config, grids, facilities } = this.app.data;
    const loc = this.location;
    if (loc && loc.byHand) this.gpsStatus.textContent = t("pin_placed");
    else if (loc && loc.accuracy != null) {
      const m = Math.round(loc.accuracy);
      const poor = loc.accuracy > config.gps_poor_accuracy_m;
      this.gpsStatus.textContent = poor ? t("gps_poor", { m }) : t("gps_accuracy", { m });
      this.gpsStatus.className = poor ? "warning" : "muted";
    }
    if (!loc) return;
    const place = locate(loc.lon, loc.lat, grids, config.tolerance_m);
    if (place.grid) {
      const values = { name: place.grid.properties.name || "", code: place.grid.properties.code, d: Math.round(place.distance_m || 0) };
      this.placeGrid.textContent = t(`grid_${place.method}`, values);
    } else this.placeGrid.textContent = t("grid_unassigned");
    this.placeGrid.dataset.grid = place.grid ? place.grid.properties.code : "";
    this.placeGrid.dataset.method = place.method;
    const category = this.category();
    const near = category ? nearestFacility(loc.lon, loc.lat, facilities, category.facility_categories, config.facility_link_m) : null;
    this.facility = near ? near.facility : null;
    if (near) {
      const fc = (this.app.data.categories.facility || []).find((c) => c.code === near.facility.properties.category);
      this.placeFacility.textContent = t("facility_near", {
        name: `${fc ? pick([fc.name_zh, fc.name_en]) : near.facility.properties.category} #${near.facility.id}`,
        d: Math.round(near.distance_m) });
    } else this.placeFacility.textContent = category && category.facility_categories && category.facility_categories.length
      ? t("facility_none", { r: config.facility_link_m }) : "";
    this.placeFacility.dataset.facility = near ? String(near.facility.id) : "";
    this.findDuplicates(loc, category);
  }

  async findDuplicates(loc, category) {
    this.duplicates.hidden = true;
    if (!category || !navigator.onLine) return;
    const asked = `${loc.lon},${loc.lat},${category.code}`;
    this.asked = asked;
    try {
      const found = await call("GET", `/api/v1/issues/duplicates?lon=${loc.lon}&lat=${loc.lat}&category=${encodeURIComponent(category.code)}`)
        .then((r) => r.body);
      if (this.asked !== asked || !found || !found.length) return;
      const statuses = this.app.data.config.statuses;
      this.duplicates.replaceChildren(el("p", {}, t("duplicates")), el("ul", {}, found.map((d) => el("li", {},
        t("duplicate_item", { id: d.id, status: pick(statuses[d.status]), d: Math.round(d.distance_m) })))));
      this.duplicates.hidden = false;
    } catch (err) { /* offline or refused: the server checks duplicates again on arrival */ }
  }

  validate() {
    const [, maxPhotos] = this.app.data.config.photos_per_report;
    if (!this.location) return t("need_location");
    if (!this.category()) return t("need_category");
    if (!this.photos.items.length) return t("need_photo");
    if (this.photos.items.length > maxPhotos) return t("too_many_photos", { n: maxPhotos });
    if (this.selfResolve.checked && !this.after.items.length) return t("need_after_photo");
    return null;
  }

  async submit() {
    if (this.submitting) return; // a second tap while the first is being written
    this.submitting = true;
    this.submitButton.disabled = true;
    try {
      await this.photos.busy;
      await this.after.busy;
      const problem = this.validate();
      if (problem) { showError(this.errors, problem); return; }
      showError(this.errors, "");
      const category = this.category();
      const self = this.selfResolve.checked;
      const photos = this.photos.forJob(this.key);
      if (self) photos.forEach((p) => { p.kind = "before"; });
      const job = {
        key: this.key, type: "report", created_at: new Date().toISOString(), label: pick([category.name_zh, category.name_en]),
        body: { lon: this.location.lon, lat: this.location.lat, category: category.code,
          description: this.description.value.trim(), channel: "app",
          facility_id: this.facility ? this.facility.id : null },
        photos, after: self ? this.after.forJob(this.key, photos.length) : [], self_resolve: self, issue_id: null,
      };
      await saveJob(job, () => {
        this.pinMap.remove();
        this.onSaved(job);
        this.open();
      });
    } finally {
      this.submitting = false;
      this.submitButton.disabled = false;
    }
  }
}

// -- 核实 / 核查 --------------------------------------------------------------------------------------
export function actionForm(container, app, task, { onSaved, onClose }) {
  const key = newKey();
  const errors = errorBox();
  const p = task.properties;
  const action = p.action;
  const statuses = app.data.config.statuses;
  const categories = Object.fromEntries((app.data.categories.issue || []).map((c) => [c.code, c]));
  const category = categories[p.category];
  const header = el("div", {},
    el("h3", {}, `#${task.id} `, category ? pick([category.name_zh, category.name_en]) : p.category),
    el("p", {}, pick(statuses[p.status]), p.overdue ? el("span", { class: "badge danger" }, t("overdue")) : null),
    el("p", { class: "description" }, p.description || ""),
    el("div", { class: "thumbs" }, (p.photos || []).map((ph) => el("img", { src: ph.thumbnail_url, alt: pick(app.data.config.photo_kinds[ph.kind]), width: 72, height: 72, loading: "lazy" }))));
  const close = el("button", { type: "button", onclick: onClose }, t("close"));
  if (action !== "verify" && action !== "check") {
    container.replaceChildren(el("div", { class: "panel-body" }, header, el("div", { class: "actions" }, close)));
    return;
  }
  const choices = action === "verify"
    ? [["valid", t("verify_valid")], ["invalid", t("verify_invalid")]]
    : [["pass", t("check_pass")], ["fail", t("check_fail")]];
  const note = el("textarea", { id: "action-note", rows: 2, maxlength: 2000 });
  const after = action === "check" ? new PhotoPicker("action-photos", t("photos_after"), "after", app.data.config, errors, 6) : null;
  const submit = el("button", { type: "submit", class: "primary big" }, t("submit"));
  const form = el("form", { novalidate: true, onsubmit: submitOnce(submit, async () => {
    if (after) await after.busy;
    const chosen = form.querySelector("input[name=result]:checked");
    const text = note.value.trim();
    if (!chosen) { showError(errors, t("choose_result")); return; }
    if (chosen.value === "invalid" && !text) { showError(errors, t("need_reason")); return; }
    if (chosen.value === "fail" && !after.items.length) { showError(errors, t("need_after_for_fail")); return; }
    const job = action === "verify"
      ? { key, type: "verify", issue_id: task.id, valid: chosen.value === "valid", reason: text }
      : { key, type: "check", issue_id: task.id, passed: chosen.value === "pass", note: text, photos: after.forJob(key) };
    job.created_at = new Date().toISOString();
    await saveJob(job, () => onSaved(job));
  }) },
  el("h3", {}, t(action === "verify" ? "verify_title" : "check_title")),
  choiceGroup("result-label", t(`${action}_result`), "result", choices),
  field("action-note", action === "verify" ? t("reason") : t("note"), note),
  after ? after.element : null, errors,
  el("div", { class: "actions" }, submit, close));
  container.replaceChildren(el("div", { class: "panel-body" }, header, form));
}

// -- 部件巡检 ----------------------------------------------------------------------------------------
export function facilityForm(container, app, facility, { onSaved, onClose }) {
  const key = newKey();
  const errors = errorBox();
  const fp = facility.properties;
  const fc = (app.data.categories.facility || []).find((c) => c.code === fp.category);
  const name = `${fc ? pick([fc.name_zh, fc.name_en]) : fp.category}${fp.name ? ` ${fp.name}` : ""} #${facility.id}`;
  const note = el("textarea", { id: "facility-note", rows: 2, maxlength: 2000 });
  const photo = new PhotoPicker("facility-photo", t("photos"), "report", app.data.config, errors, 1);
  const submit = el("button", { type: "submit", class: "primary big" }, t("submit"));
  const form = el("form", { novalidate: true, onsubmit: submitOnce(submit, async () => {
    await photo.busy;
    const chosen = form.querySelector("input[name=facility-result]:checked");
    if (!chosen) { showError(errors, t("choose_result")); return; }
    if (!photo.items.length) { showError(errors, t("need_photo_one")); return; }
    const job = { key, type: "facility", created_at: new Date().toISOString(), facility_id: facility.id, label: name,
      result: chosen.value, note: note.value.trim(), photos: photo.forJob(key), check_id: null };
    await saveJob(job, () => onSaved(job));
  }) },
  el("h3", {}, t("facility_title"), " · ", name),
  el("p", {}, t("facility_status_now", { s: t(`result_${fp.status}`) })),
  choiceGroup("facility-result-label", t("result"), "facility-result",
    ["ok", "damaged", "missing"].map((value) => [value, t(`result_${value}`)])),
  el("p", { class: "muted" }, t("check_opens_issue")),
  photo.element, field("facility-note", t("note"), note), errors,
  el("div", { class: "actions" }, submit, el("button", { type: "button", onclick: onClose }, t("close"))));
  container.replaceChildren(el("div", { class: "panel-body" }, form));
}
