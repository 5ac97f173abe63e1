/*
 * Weighted points for Leaflet.heat 0.2.0 (npm), loaded right after it.
 *
 * Leaflet.heat 0.2.0 clips every screen cell at options.max (default 1), so a point of weight 40
 * looks like a point of weight 1. Folium's CDN copy of Leaflet.heat carries the fix proposed in
 * Leaflet.heat pull request 78; this file applies the same rule to the npm release: intensities
 * are summed per screen cell over all points and scaled by the largest cell sum, so one point of
 * weight n draws like n points at the same place. GridMap's heatmaps ship weighted cells rather
 * than every issue, so they depend on it.
 */
(function () {
  "use strict";
  if (!window.L || !L.HeatLayer) {
    throw new Error("leaflet-heat-weights.js must be loaded after leaflet-heat.js");
  }
  L.HeatLayer.prototype._redraw = function () {
    if (!this._map) {
      return;
    }
    var r = this._heat._r,
      size = this._map.getSize(),
      bounds = new L.Bounds(L.point([-r, -r]), size.add([r, r])),
      cellSize = r / 2,
      grid = [],
      panePos = this._map._getMapPanePos(),
      offsetX = panePos.x % cellSize,
      offsetY = panePos.y % cellSize,
      data = [],
      max = 1,
      i, len, p, x, y, k, cell, row, j, len2;

    for (i = 0, len = this._latlngs.length; i < len; i++) {
      p = this._map.latLngToContainerPoint(this._latlngs[i]);
      x = Math.floor((p.x - offsetX) / cellSize) + 2;
      y = Math.floor((p.y - offsetY) / cellSize) + 2;
      k = this._latlngs[i].alt !== undefined ? this._latlngs[i].alt
        : this._latlngs[i][2] !== undefined ? +this._latlngs[i][2] : 1;
      grid[y] = grid[y] || [];
      cell = grid[y][x];
      if (!cell) {
        cell = grid[y][x] = [p.x, p.y, k];
        cell.p = p;
      } else {
        cell[0] = (cell[0] * cell[2] + p.x * k) / (cell[2] + k);
        cell[1] = (cell[1] * cell[2] + p.y * k) / (cell[2] + k);
        cell[2] += k;
      }
      if (cell[2] > max) {
        max = cell[2];
      }
    }
    this._heat.max(this.options.max !== undefined ? this.options.max : max);
    for (i = 0, len = grid.length; i < len; i++) {
      row = grid[i];
      if (!row) {
        continue;
      }
      for (j = 0, len2 = row.length; j < len2; j++) {
        cell = row[j];
        if (cell && bounds.contains(cell.p)) {
          data.push([Math.round(cell[0]), Math.round(cell[1]), Math.min(cell[2], max)]);
        }
      }
    }
    this._heat.data(data).draw(this.options.minOpacity);
    this._frame = null;
  };
})();
