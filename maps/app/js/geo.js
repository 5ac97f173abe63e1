// The server's geotagging rules, applied on the tablet to show the worker where a report will
// go before it is sent (gis/geo/grid_index.py is the authority; the server decides again):
//   interior of a grid -> "inside" (overlaps: the smallest code);
//   on a boundary or vertex -> "boundary", the covering grid with the smallest code;
//   outside every grid but within the tolerance -> "nearest" (ties: the smallest code);
//   else "unassigned".
// Codes compare as strings, like the server's keys. Distances are metres on a local plane around
// the point (the server uses the Gauss-Krüger zone: they differ by far less than a metre at the
// 50 m tolerance), and geodesic metres (haversine) for facilities within 20 m.

const EARTH_RADIUS_M = 6371008.8;
const RAD = Math.PI / 180;

/** Metres between two lon/lat points (haversine). */
export function distanceM(lon1, lat1, lon2, lat2) {
  const dLat = (lat2 - lat1) * RAD;
  const dLon = (lon2 - lon1) * RAD;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * RAD) * Math.cos(lat2 * RAD) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(a)));
}

/** The rings of a GeoJSON Polygon or MultiPolygon, as [[outer, ...holes], ...]. */
function polygonsOf(geometry) {
  if (!geometry) return [];
  if (geometry.type === "Polygon") return [geometry.coordinates];
  if (geometry.type === "MultiPolygon") return geometry.coordinates;
  return [];
}

// Exactly on the segment a-b: collinear (cross product 0) and within its box.
function onSegment(x, y, a, b) {
  const cross = (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0]);
  if (cross !== 0) return false;
  return Math.min(a[0], b[0]) <= x && x <= Math.max(a[0], b[0])
    && Math.min(a[1], b[1]) <= y && y <= Math.max(a[1], b[1]);
}

/** Where (x, y) lies against one ring: "boundary", true (inside) or false (outside). */
function ringPosition(x, y, ring) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const a = ring[j], b = ring[i];
    if (onSegment(x, y, a, b)) return "boundary";
    if ((b[1] > y) !== (a[1] > y) && x < ((a[0] - b[0]) * (y - b[1])) / (a[1] - b[1]) + b[0]) {
      inside = !inside;
    }
  }
  return inside;
}

/** "inside", "boundary" or "outside" for a point against a (Multi)Polygon with holes. */
export function pointPosition(lon, lat, geometry) {
  let onEdge = false;
  for (const [outer, ...holes] of polygonsOf(geometry)) {
    const position = ringPosition(lon, lat, outer);
    if (position === "boundary") { onEdge = true; continue; }
    if (!position) continue;
    let inHole = false;
    for (const hole of holes) {
      const h = ringPosition(lon, lat, hole);
      if (h === "boundary") { onEdge = true; inHole = true; break; }
      if (h) { inHole = true; break; }
    }
    if (!inHole) return "inside";
  }
  return onEdge ? "boundary" : "outside";
}

// Metres from (lon, lat) to the nearest edge of a geometry, on a plane tangent at the point.
function distanceToEdgesM(lon, lat, geometry) {
  const kx = Math.cos(lat * RAD) * RAD * EARTH_RADIUS_M;
  const ky = RAD * EARTH_RADIUS_M;
  let best = Infinity;
  for (const rings of polygonsOf(geometry)) {
    for (const ring of rings) {
      for (let i = 1; i < ring.length; i++) {
        const ax = (ring[i - 1][0] - lon) * kx, ay = (ring[i - 1][1] - lat) * ky;
        const bx = (ring[i][0] - lon) * kx, by = (ring[i][1] - lat) * ky;
        const dx = bx - ax, dy = by - ay;
        const len2 = dx * dx + dy * dy;
        const s = len2 === 0 ? 0 : Math.max(0, Math.min(1, -(ax * dx + ay * dy) / len2));
        best = Math.min(best, Math.hypot(ax + s * dx, ay + s * dy));
      }
    }
  }
  return best;
}

function smallestCode(features) {
  return features.reduce((a, b) => (String(b.properties.code) < String(a.properties.code) ? b : a));
}

/** The grid a point goes to by the server's rules: {grid, method, distance_m}. ``grids`` are
 * GeoJSON features with ``properties.code``. */
export function locate(lon, lat, grids, toleranceM) {
  const inside = [], boundary = [];
  for (const grid of grids) {
    const position = pointPosition(lon, lat, grid.geometry);
    if (position === "inside") inside.push(grid);
    else if (position === "boundary") boundary.push(grid);
  }
  if (inside.length) return { grid: smallestCode(inside), method: "inside", distance_m: null };
  if (boundary.length) return { grid: smallestCode(boundary), method: "boundary", distance_m: null };
  let best = null, bestDistance = Infinity;
  for (const grid of grids) {
    const d = distanceToEdgesM(lon, lat, grid.geometry);
    if (d < bestDistance || (d === bestDistance && best && String(grid.properties.code) < String(best.properties.code))) {
      best = grid; bestDistance = d;
    }
  }
  if (best && bestDistance <= toleranceM) return { grid: best, method: "nearest", distance_m: bestDistance };
  return { grid: null, method: "unassigned", distance_m: null };
}

/** The facility a report links to: the nearest of ``categories`` within ``radiusM`` (ties: the
 * smallest id), as the server's ``nearest_facility``. */
export function nearestFacility(lon, lat, facilities, categories, radiusM) {
  if (!categories || !categories.length) return null;
  let best = null, bestDistance = Infinity;
  for (const f of facilities) {
    if (!categories.includes(f.properties.category) || !f.geometry) continue;
    const [x, y] = f.geometry.coordinates;
    const d = distanceM(lon, lat, x, y);
    if (d <= radiusM && (d < bestDistance || (d === bestDistance && f.id < best.id))) {
      best = f; bestDistance = d;
    }
  }
  return best ? { facility: best, distance_m: bestDistance } : null;
}

/** The bounding box [minLon, minLat, maxLon, maxLat] of features, grown by ``padM`` metres. */
export function boundsOf(features, padM = 0) {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  const visit = (c) => {
    if (typeof c[0] === "number") {
      x0 = Math.min(x0, c[0]); y0 = Math.min(y0, c[1]); x1 = Math.max(x1, c[0]); y1 = Math.max(y1, c[1]);
    } else c.forEach(visit);
  };
  features.forEach((f) => f.geometry && visit(f.geometry.coordinates));
  if (!Number.isFinite(x0)) return null;
  const padLat = padM / (RAD * EARTH_RADIUS_M);
  const padLon = padM / (Math.cos(((y0 + y1) / 2) * RAD) * RAD * EARTH_RADIUS_M);
  return [x0 - padLon, y0 - padLat, x1 + padLon, y1 + padLat];
}
