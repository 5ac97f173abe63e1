// The worker's map: their grids (bold) and the neighbours, buildings, facilities by category and
// state, and their open cases; no basemap is needed, so it works the same with no network.
// Markers are 44 px touch targets around a smaller visible sign.

import { pick, t } from "./i18n.js";

const L = window.L;
const TOUCH = 44;

function facilityIcon(feature, category) {
  const bad = ["damaged", "missing"].includes(feature.properties.status);
  const colour = (category && category.colour) || "#555";
  const icon = (category && category.icon) || "circle";
  return L.divIcon({
    className: "fm-marker",
    iconSize: [TOUCH, TOUCH],
    html: `<span class="fm-dot${bad ? " fm-bad" : ""}" style="background:${colour}">`
      + `<i class="fa fa-${icon}" aria-hidden="true"></i></span>`,
  });
}

function taskIcon(task) {
  const overdue = task.properties.overdue;
  return L.divIcon({
    className: "fm-marker",
    iconSize: [TOUCH, TOUCH],
    html: `<span class="fm-task${overdue ? " fm-overdue" : ""}"><i class="fa fa-exclamation" aria-hidden="true"></i></span>`,
  });
}

export class MapView {
  constructor(element, { onFacility, onTask, onTap }) {
    this.map = L.map(element, { zoomControl: true, attributionControl: false, tap: true });
    this.map.setView([36.84, 113.37], 15);
    this.layers = {
      grids: L.layerGroup().addTo(this.map),
      buildings: L.layerGroup().addTo(this.map),
      facilities: L.layerGroup().addTo(this.map),
      tasks: L.layerGroup().addTo(this.map),
      me: L.layerGroup().addTo(this.map),
    };
    this.onFacility = onFacility;
    this.onTask = onTask;
    if (onTap) this.map.on("click", (e) => onTap(e.latlng));
    this.fitted = false;
  }

  show(data) {
    const own = new Set(data.me.grids || []);
    const categories = Object.fromEntries(
      [...(data.categories.facility || []), ...(data.categories.issue || [])].map((c) => [c.code, c]));
    this.layers.grids.clearLayers();
    const ownLayer = L.geoJSON(data.grids.filter((g) => own.has(g.properties.code)), {
      style: { color: "#0b5cad", weight: 4, fillOpacity: 0.04 }, interactive: false,
    });
    const neighbours = L.geoJSON(data.grids.filter((g) => !own.has(g.properties.code)), {
      style: { color: "#777", weight: 1.5, dashArray: "4 4", fillOpacity: 0 }, interactive: false,
    });
    neighbours.addTo(this.layers.grids);
    ownLayer.addTo(this.layers.grids);
    for (const g of data.grids) {
      const layer = L.geoJSON(g);
      L.tooltip({ permanent: true, direction: "center", className: "fm-grid-label" })
        .setLatLng(layer.getBounds().getCenter())
        .setContent(g.properties.name || g.properties.code).addTo(this.layers.grids);
    }
    this.layers.buildings.clearLayers();
    L.geoJSON(data.buildings, {
      style: { color: "#8a6d3b", weight: 1, fillColor: "#e8dcc4", fillOpacity: 0.6 },
      interactive: false,
    }).addTo(this.layers.buildings);
    this.layers.facilities.clearLayers();
    for (const f of data.facilities) {
      if (!f.geometry) continue;
      const [lon, lat] = f.geometry.coordinates;
      const category = categories[f.properties.category];
      const name = `${pick(category ? [category.name_zh, category.name_en] : null) || f.properties.category}`
        + (f.properties.name ? ` ${f.properties.name}` : "") + ` #${f.id}`;
      const marker = L.marker([lat, lon], { icon: facilityIcon(f, category), title: name, alt: name, keyboard: true });
      marker.on("click", () => this.onFacility(f));
      marker.addTo(this.layers.facilities);
    }
    this.showTasks(data.tasks);
    if (!this.fitted) {
      const focus = ownLayer.getLayers().length ? ownLayer : neighbours;
      if (focus.getLayers().length) this.map.fitBounds(focus.getBounds(), { padding: [12, 12] });
      this.fitted = true;
    }
  }

  showTasks(tasks) {
    this.layers.tasks.clearLayers();
    for (const task of tasks || []) {
      if (!task.geometry) continue;
      const [lon, lat] = task.geometry.coordinates;
      const label = `#${task.id}`;
      const marker = L.marker([lat, lon], { icon: taskIcon(task), title: label, alt: label, keyboard: true });
      marker.on("click", () => this.onTask(task));
      marker.addTo(this.layers.tasks);
    }
  }

  showMe(position) {
    this.layers.me.clearLayers();
    if (!position) return;
    const { lon, lat, accuracy } = position;
    L.circle([lat, lon], { radius: accuracy, color: "#1a73e8", weight: 1, fillOpacity: 0.1, interactive: false }).addTo(this.layers.me);
    L.circleMarker([lat, lon], { radius: 7, color: "#fff", weight: 2, fillColor: "#1a73e8", fillOpacity: 1, interactive: false }).addTo(this.layers.me);
  }

  centre(position) {
    if (position) this.map.setView([position.lat, position.lon], Math.max(this.map.getZoom(), 17));
  }

  invalidate() { setTimeout(() => this.map.invalidateSize(), 0); }
}

/** A small map for the report form: the grids and facilities, and a pin the worker can drag. */
export class PinMap {
  constructor(element, data, position, onMove) {
    this.map = L.map(element, { attributionControl: false });
    // The view first: Leaflet draws vector layers against it.
    if (position) this.map.setView([position.lat, position.lon], 18);
    else {
      const bounds = L.geoJSON(data.grids.filter((g) => (data.me.grids || []).includes(g.properties.code))).getBounds();
      if (bounds.isValid()) this.map.fitBounds(bounds); else this.map.setView([36.84, 113.37], 16);
    }
    L.geoJSON(data.grids, { style: { color: "#0b5cad", weight: 2, fillOpacity: 0.03 }, interactive: false }).addTo(this.map);
    L.geoJSON(data.buildings, { style: { color: "#8a6d3b", weight: 1, fillColor: "#e8dcc4", fillOpacity: 0.5 }, interactive: false }).addTo(this.map);
    for (const f of data.facilities) {
      if (!f.geometry) continue;
      const [lon, lat] = f.geometry.coordinates;
      L.circleMarker([lat, lon], { radius: 4, color: "#555", weight: 1, fillOpacity: 0.7, interactive: false }).addTo(this.map);
    }
    this.onMove = onMove;
    this.pin = null;
    this.map.on("click", (e) => this.place(e.latlng.lng, e.latlng.lat, true));
  }

  place(lon, lat, byHand) {
    if (!this.pin) {
      const sign = L.divIcon({ className: "fm-marker", iconSize: [TOUCH, TOUCH], iconAnchor: [TOUCH / 2, TOUCH - 4],
        html: '<span class="fm-pin"><i class="fa fa-map-marker" aria-hidden="true"></i></span>' });
      this.pin = L.marker([lat, lon], { icon: sign, draggable: true, title: t("location"), alt: t("location"), autoPan: true }).addTo(this.map);
      this.pin.on("dragend", () => {
        const p = this.pin.getLatLng();
        this.onMove(p.lng, p.lat, true);
      });
    } else this.pin.setLatLng([lat, lon]);
    if (byHand !== null) this.onMove(lon, lat, byHand);
  }

  invalidate() { setTimeout(() => this.map.invalidateSize(), 0); }
  remove() { this.map.remove(); }
}
