"""In-memory grid index: tags a WGS84 point with the grid that contains it (the rules in
docs/ARCHITECTURE.md).

Every reported issue goes through here, so the common case must cost an array lookup, not a
geometry test. The index keeps two structures over the same grids:

* a **cell table**: a regular lon/lat raster over the grids' extent. A cell is *pure* when no grid
  boundary comes near its closed box, so every point in it has the same answer (inside grid ``k``,
  or outside every grid). Only points in *mixed* cells, which boundaries cross, need geometry.
  Mixed cells are found by an exact walk of every edge through the cells it touches; the other
  cells take their grid from an even-odd scanline fill through cell centres (no scipy needed).
* **STRtrees** of the grids, for the exact answer in mixed cells and the boundary rule, and of the
  grids projected to the metric CRS ``metric_crs_for(centre lon)``, for the nearest-grid rule.

Rules, in order: interior of a grid -> ``inside``; on a boundary or vertex -> ``boundary``, the
covering grid with the smallest key; outside but within ``tolerance_m`` -> ``nearest`` (ties: the
smallest key); else ``unassigned``. Keys are compared as ``str``, so the choice depends on the data
only, never on input order, process or instance.

Overlapping grids are bad data but must not stop geotagging: a point in the interior of several
grids gets the one with the smallest key, still with method ``inside``. Invalid geometries are
refused when the index is built (``InvalidGeometry``), because "interior" means nothing for them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import Transformer

from gis.errors import InvalidCoordinates, InvalidGeometry
from gis.geo.crs import metric_crs_for
from gis.rules import DEFAULT_TOLERANCE_M

INSIDE, BOUNDARY, NEAREST, UNASSIGNED = "inside", "boundary", "nearest", "unassigned"
METHODS = (INSIDE, BOUNDARY, NEAREST, UNASSIGNED)
_INSIDE_CODE, _BOUNDARY_CODE, _NEAREST_CODE, _UNASSIGNED_CODE = range(4)

# Cell codes; codes >= 0 are grid positions (the cell lies in that grid's interior).
_MIXED = -1  # a boundary comes near the cell, or grids overlap there: ask the geometry
_NEAR = -2  # outside every grid, but maybe within tolerance of one: only the distance test
_FAR = -3  # outside every grid and surely beyond tolerance: unassigned without any test

# Resolution: about this many cells per grid, between these bounds. A 200 m grid then spans ~50
# cells, so only ~4% of random points fall in mixed cells; the cap keeps the table at 64 MiB
# (int16 while there are fewer than 32,768 grids) for the 10,000 grids of a large district.
_CELLS_PER_GRID = 3_000
_MIN_CELLS = 1 << 20
_MAX_CELLS = 1 << 25

# A cell is mixed when a grid edge comes within _MARGIN (in cells, per axis) of its closed box.
# _MARGIN dwarfs the rounding of the lon/lat -> cell arithmetic (~1e-12 cells) yet widens the band
# of mixed cells by nothing measurable.
_MARGIN = 1e-6
_PAIRS_PER_CHUNK = 1 << 21  # (edge, strip) pairs handled at a time, to bound scratch memory

# Degree bounds of a metric tolerance, which pad the raster and decide which cells are surely
# beyond tolerance (the distances themselves are always computed in metres). The meridional
# radius of curvature of WGS84 is smallest at the equator (6,335,439 m) and both radii are never
# smaller, so t metres of ellipsoid never span more than t / 6,335,000 rad of latitude, nor that
# / cos(lat) of longitude. Gauss-Kruger has scale >= 1, so projected metres are never shorter than
# ellipsoid metres. The factor 2 absorbs the bend of projected edges against lon/lat edges
# (negligible for edges shorter than ~10 km).
_MIN_RADIUS_M = 6_335_000.0
_PAD_SAFETY = 2.0
_PAD_SLACK_DEG = 1e-7


@dataclass(frozen=True)
class Assignment:
    """The grid a single point was tagged with, and by which rule (``method``)."""

    position: int | None
    key: str | None
    method: str
    distance_m: float | None


@dataclass
class BulkAssignment:
    """Tags of many points as arrays, so millions of rows cost no Python objects.

    ``position`` is -1 when unassigned; ``method`` holds codes into ``METHODS``; ``distance_m`` is
    NaN unless the method is ``nearest``.
    """

    position: np.ndarray
    method: np.ndarray
    distance_m: np.ndarray

    def __len__(self) -> int:
        return len(self.position)

    def method_names(self) -> np.ndarray:
        """The methods as strings (an object array), for display and storage."""
        return np.asarray(METHODS, dtype=object)[self.method]


@dataclass(frozen=True)
class _Frame:
    """The raster: cell (row, col) of a point is (floor((lat-y0)*ky), floor((lon-x0)*kx))."""

    x0: float
    y0: float
    kx: float
    ky: float
    ncols: int
    nrows: int


class GridIndex:
    """Assigns WGS84 points to grids by the grid-assignment rules; immutable once built.

    ``version`` is the grid-table version the index was built from (the grids' version counter), so a server
    process can tell when to rebuild. ``cell_target`` is the number of raster cells (default:
    from the number of grids); 0 turns the cell table off, so every point takes the exact path.
    """

    def __init__(
        self,
        geometries: Iterable,
        keys: Iterable,
        *,
        version: int = 0,
        tolerance_m: float = DEFAULT_TOLERANCE_M,
        cell_target: int | None = None,
    ):
        self.geometries = np.array(list(geometries), dtype=object)
        self.keys = tuple(str(k) for k in keys)
        self.version = version
        self.tolerance_m = float(tolerance_m)
        _check_grids(self.geometries, self.keys, self.tolerance_m)
        self._setup_ranks()
        shapely.prepare(self.geometries)
        self._tree = shapely.STRtree(self.geometries)
        self._setup_metric()
        self._setup_cells(cell_target)
        # plain-Python twins of the arrays, for the single-point path (numpy scalars are slow)
        self._inside = [Assignment(i, k, INSIDE, None) for i, k in enumerate(self.keys)]
        self._geom_list = self.geometries.tolist()
        self._metric_list = self._metric_geoms.tolist()
        self._rank_list = self._rank.tolist()

    @classmethod
    def from_geodataframe(
        cls, gdf, key: str = "code", *, version: int = 0, tolerance_m: float = DEFAULT_TOLERANCE_M
    ) -> GridIndex:
        """Index the grids of a GeoDataFrame in EPSG:4326, keyed by column ``key``."""
        if gdf.crs is None or gdf.crs.to_epsg() != 4326:
            raise ValueError(f"grids must be in EPSG:4326 (WGS84 lon/lat), got {gdf.crs}")
        if key not in gdf.columns:
            raise ValueError(f"no key column {key!r}; columns are {list(gdf.columns)}")
        return cls(gdf.geometry.values, gdf[key].tolist(), version=version, tolerance_m=tolerance_m)

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        f = self._frame
        return (
            f"GridIndex({len(self)} grids, version={self.version}, "
            f"tolerance_m={self.tolerance_m}, cells={f.nrows}x{f.ncols})"
        )

    # ---- set-up -------------------------------------------------------------------------------

    def _setup_ranks(self) -> None:
        """Rank grids by key: every tie is settled by rank, so input order never matters."""
        self._key_array = np.array(self.keys + (None,), dtype=object)  # [-1] decodes unassigned
        self._by_rank = np.array(sorted(range(len(self.keys)), key=self.keys.__getitem__), np.int64)
        self._rank = np.empty(len(self.keys), np.int64)
        self._rank[self._by_rank] = np.arange(len(self.keys))

    def _setup_metric(self) -> None:
        """Choose the metric CRS and the degree pads that surely cover ``tolerance_m``."""
        lon0, lat0, lon1, lat1 = _total_bounds(self.geometries)
        self.metric_crs = metric_crs_for((lon0 + lon1) / 2)
        self._to_metric = Transformer.from_crs("EPSG:4326", self.metric_crs, always_xy=True)
        self._metric_geoms = shapely.transform(self.geometries, self._project_xy)
        shapely.prepare(self._metric_geoms)
        # a point can only be within tolerance of a grid if it lies in the grid's metric box
        # grown by the tolerance: a bare box test finds the candidates, cheaper than dwithin
        x0, y0, x1, y1 = shapely.bounds(self._metric_geoms).T
        t = self.tolerance_m
        self._reach_tree = shapely.STRtree(shapely.box(x0 - t, y0 - t, x1 + t, y1 + t))
        self._pad_lon, self._pad_lat = _degree_pads(self.tolerance_m, lat0, lat1)

    def _project_xy(self, xy: np.ndarray) -> np.ndarray:
        x, y = self._to_metric.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    def _setup_cells(self, cell_target: int | None) -> None:
        """Build the cell table and the plain-Python views the single-point path reads."""
        if cell_target is None:
            cell_target = min(max(len(self) * _CELLS_PER_GRID, _MIN_CELLS), _MAX_CELLS)
        lon0, lat0, lon1, lat1 = _total_bounds(self.geometries)
        bounds = (
            lon0 - self._pad_lon,
            lat0 - self._pad_lat,
            lon1 + self._pad_lon,
            lat1 + self._pad_lat,
        )
        if cell_target <= 0 or len(self) == 0:
            self._frame = _frame_for(bounds, 1)
            self._cells = np.full((1, 1), _MIXED if len(self) else _FAR, np.int16)
        else:
            self._frame = _frame_for(bounds, cell_target)
            self._cells = _build_cell_table(self._frame, self.geometries, self._near_rects())
        self._cells_flat = memoryview(self._cells.reshape(-1))
        f = self._frame
        self._x0, self._y0, self._kx, self._ky = f.x0, f.y0, f.kx, f.ky
        self._ncols, self._nrows = f.ncols, f.nrows

    def _near_rects(self) -> np.ndarray:
        """Each grid's bounds padded by the tolerance: no point beyond them is within tolerance."""
        b = shapely.bounds(self.geometries)
        return b + np.array([-self._pad_lon, -self._pad_lat, self._pad_lon, self._pad_lat])

    def cell_stats(self) -> dict[str, float]:
        """Share of cells by kind, and the table's size: for benchmarks and tuning."""
        c = self._cells
        return {
            "cells": c.size,
            "mbytes": c.nbytes / 2**20,
            "pure_inside": float(np.mean(c >= 0)),
            "mixed": float(np.mean(c == _MIXED)),
            "near": float(np.mean(c == _NEAR)),
            "far": float(np.mean(c == _FAR)),
        }

    # ---- single point -------------------------------------------------------------------------

    def locate(self, lon: float, lat: float, *, use_cells: bool = True) -> Assignment:
        """Tag one point. Pure Python arithmetic finds its cell; geometry only in mixed cells."""
        fx = (lon - self._x0) * self._kx
        fy = (lat - self._y0) * self._ky
        if 0.0 <= fx < self._ncols and 0.0 <= fy < self._nrows:
            code = self._cells_flat[int(fy) * self._ncols + int(fx)]
        elif math.isfinite(lon) and math.isfinite(lat):
            code = _FAR
        else:
            raise InvalidCoordinates(f"coordinates must be finite numbers, got ({lon}, {lat})",
                                     zh=f"坐标应为有限的数字，收到 ({lon}, {lat})")
        if not use_cells:
            return self._locate_exact(float(lon), float(lat), _MIXED)
        if code >= 0:
            return self._inside[code]
        if code == _FAR:
            return _UNASSIGNED_ONE
        return self._locate_exact(float(lon), float(lat), code)

    def _locate_exact(self, lon: float, lat: float, code: int) -> Assignment:
        """The geometry path for one point: interior, then boundary, then nearest."""
        if code == _MIXED:
            found = self._covering_one(shapely.Point(lon, lat))
            if found is not None:
                return found
        return self._nearest_one(lon, lat)

    def _covering_one(self, point) -> Assignment | None:
        """Interior, else boundary, by prepared predicates on the few grids whose boxes hold it."""
        candidates = self._tree.query(point).tolist()
        inside = [i for i in candidates if self._geom_list[i].contains_properly(point)]
        if inside:
            return self._inside[min(inside, key=self._rank_list.__getitem__)]
        covering = [i for i in candidates if self._geom_list[i].intersects(point)]
        if covering:
            pos = min(covering, key=self._rank_list.__getitem__)
            return Assignment(pos, self.keys[pos], BOUNDARY, None)
        return None

    def _nearest_one(self, lon: float, lat: float) -> Assignment:
        """The tolerance rule for one uncovered point; the scalar twin of ``_nearest``."""
        point = shapely.Point(*self._to_metric.transform(lon, lat))
        hits = self._reach_tree.query(point).tolist()
        ranked = [(self._metric_list[i].distance(point), self._rank_list[i], i) for i in hits]
        dist, _, pos = min(ranked, default=(math.inf, 0, -1))
        if dist > self.tolerance_m:
            return _UNASSIGNED_ONE
        return Assignment(pos, self.keys[pos], NEAREST, dist)

    # ---- many points --------------------------------------------------------------------------

    def locate_many(self, lon, lat, *, use_cells: bool = True) -> BulkAssignment:
        """Tag many points at once: a table lookup for all, geometry only for the few that need it.

        ``use_cells=False`` sends every point down the exact path; the answers must not change.
        """
        lon, lat = _as_coordinate_arrays(lon, lat)
        out = BulkAssignment(
            position=np.full(len(lon), -1, np.int64),
            method=np.full(len(lon), _UNASSIGNED_CODE, np.uint8),
            distance_m=np.full(len(lon), np.nan),
        )
        codes = self._cell_codes(lon, lat) if use_cells else np.full(len(lon), _MIXED, np.int8)
        inside = np.flatnonzero(codes >= 0)
        out.position[inside] = codes[inside]
        out.method[inside] = _INSIDE_CODE
        mixed = np.flatnonzero(codes == _MIXED)
        unresolved = self._resolve_covered(lon, lat, mixed, out)
        self._resolve_nearest(lon, lat, np.union1d(np.flatnonzero(codes == _NEAR), unresolved), out)
        return out

    def _cell_codes(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """The cell code of every point (``_FAR`` off the raster), vectorised, few temporaries."""
        fx = lon - self._x0
        fx *= self._kx
        fy = lat - self._y0
        fy *= self._ky
        off = (fx < 0) | (fx >= self._ncols) | (fy < 0) | (fy >= self._nrows)
        with np.errstate(invalid="ignore"):  # absurd coordinates overflow; they are off anyway
            cell = fy.astype(np.int64)
            cell *= self._ncols
            cell += fx.astype(np.int64)
        cell[off] = 0
        codes = self._cells.reshape(-1)[cell]
        codes[off] = _FAR
        return codes

    def _resolve_covered(
        self, lon: np.ndarray, lat: np.ndarray, idx: np.ndarray, out: BulkAssignment
    ) -> np.ndarray:
        """Interior, then boundary, for points ``idx``; returns those covered by no grid."""
        if len(idx) == 0 or len(self) == 0:
            return idx
        points = shapely.points(lon[idx], lat[idx])
        p, g = self._tree.query(points)
        interior = shapely.contains_properly(self.geometries[g], points[p])
        hit, pos = self._pick_smallest_key(p[interior], g[interior], len(idx))
        out.position[idx[hit]] = pos
        out.method[idx[hit]] = _INSIDE_CODE
        rest = ~hit[p]
        on_edge = shapely.intersects(self.geometries[g[rest]], points[p[rest]])
        hit_b, pos_b = self._pick_smallest_key(p[rest][on_edge], g[rest][on_edge], len(idx))
        out.position[idx[hit_b]] = pos_b
        out.method[idx[hit_b]] = _BOUNDARY_CODE
        return idx[~(hit | hit_b)]

    def _pick_smallest_key(self, p: np.ndarray, g: np.ndarray, n: int):
        """For pairs (point p, grid g): which of n points got any grid, and its smallest key."""
        best = np.full(n, len(self), np.int64)
        np.minimum.at(best, p, self._rank[g])
        hit = best < len(self)
        return hit, self._by_rank[best[hit]]

    def _resolve_nearest(
        self, lon: np.ndarray, lat: np.ndarray, idx: np.ndarray, out: BulkAssignment
    ) -> None:
        """The tolerance rule for points ``idx``, which no grid covers."""
        if len(idx) == 0:
            return
        pos, dist = self._nearest(lon[idx], lat[idx])
        ok = pos >= 0
        out.position[idx[ok]] = pos[ok]
        out.method[idx[ok]] = _NEAREST_CODE
        out.distance_m[idx[ok]] = dist[ok]

    def _nearest(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest grid within tolerance of each (uncovered) point, measured in the metric CRS.

        Candidates come from the grids' metric boxes grown by the tolerance; their distances are
        then computed exactly in the metric CRS (``query_nearest`` would give the same, several
        times slower). Ties go to the smallest key.
        """
        pos = np.full(len(lon), -1, np.int64)
        dist = np.full(len(lon), np.nan)
        if len(self) == 0:
            return pos, dist
        points = shapely.points(*self._to_metric.transform(lon, lat))
        p, g = self._reach_tree.query(points)
        if len(p) == 0:
            return pos, dist
        d = shapely.distance(self._metric_geoms[g], points[p])
        order = np.lexsort((self._rank[g], d, p))
        first = order[np.r_[True, p[order][1:] != p[order][:-1]]]
        first = first[d[first] <= self.tolerance_m]
        pos[p[first]] = g[first]
        dist[p[first]] = d[first]
        return pos, dist

    def keys_for(self, positions: np.ndarray) -> np.ndarray:
        """Keys of ``positions`` as an object array (None where -1)."""
        return self._key_array[np.asarray(positions)]


_UNASSIGNED_ONE = Assignment(None, None, UNASSIGNED, None)


# ---- input checks -----------------------------------------------------------------------------


def _check_grids(geoms: np.ndarray, keys: Sequence[str], tolerance_m: float) -> None:
    """Refuse input that would make the answers meaningless, naming the grids at fault."""
    if len(geoms) != len(keys):
        raise ValueError(f"{len(geoms)} geometries but {len(keys)} keys")
    if len(set(keys)) != len(keys):
        seen: set[str] = set()
        repeated = sorted({k for k in keys if k in seen or seen.add(k)})
        raise ValueError(f"grid keys must be unique; repeated: {repeated[:5]}")
    if not (math.isfinite(tolerance_m) and tolerance_m >= 0):
        raise ValueError(f"tolerance_m must be a finite number >= 0, got {tolerance_m}")
    if len(geoms) == 0:
        return
    _refuse(geoms, keys, ~np.isin(shapely.get_type_id(geoms), [3, 6]), "is not a (multi)polygon")
    _refuse(geoms, keys, shapely.is_empty(geoms), "is empty")
    b = shapely.bounds(geoms)
    off_globe = (b[:, 0] < -180) | (b[:, 2] > 180) | (b[:, 1] < -90) | (b[:, 3] > 90)
    _refuse(geoms, keys, off_globe, "has coordinates outside lon/lat range (is it EPSG:4326?)")
    _refuse(geoms, keys, ~shapely.is_valid(geoms), "is invalid")


def _refuse(geoms: np.ndarray, keys: Sequence[str], bad: np.ndarray, what: str) -> None:
    """Raise InvalidGeometry for the grids flagged ``bad`` (the first five are named)."""
    bad_at = np.flatnonzero(bad)
    if len(bad_at) == 0:
        return
    named = []
    for i in bad_at[:5]:
        reason = shapely.is_valid_reason(geoms[i]) if what == "is invalid" else None
        named.append(f"{keys[i]} ({reason})" if reason else keys[i])
    raise InvalidGeometry(f"{len(bad_at)} grid(s) {what}: {', '.join(named)}")


def _as_coordinate_arrays(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Flat float64 arrays of equal length, all finite."""
    lon = np.asarray(lon, dtype=np.float64).reshape(-1)
    lat = np.asarray(lat, dtype=np.float64).reshape(-1)
    if lon.shape != lat.shape:
        raise ValueError(f"lon and lat differ in length: {len(lon)} and {len(lat)}")
    bad = ~(np.isfinite(lon) & np.isfinite(lat))
    if bad.any():
        first = int(np.argmax(bad))
        raise InvalidCoordinates(
            f"coordinates must be finite numbers; {int(bad.sum())} are not, the first at row "
            f"{first}: ({lon[first]}, {lat[first]})",
            zh=f"坐标应为有限的数字；有 {int(bad.sum())} 个不是，第一个在第 {first} 行："
               f"({lon[first]}, {lat[first]})",
        )
    return lon, lat


# ---- geometry of the raster -------------------------------------------------------------------


def _total_bounds(geoms: np.ndarray) -> tuple[float, float, float, float]:
    if len(geoms) == 0:
        return 0.0, 0.0, 0.0, 0.0
    return tuple(float(v) for v in shapely.total_bounds(geoms))


def _degree_pads(tolerance_m: float, lat0: float, lat1: float) -> tuple[float, float]:
    """Longitude and latitude spans that surely exceed ``tolerance_m`` metres near these latitudes.

    The extra degree of latitude covers the curve from a point to its nearest grid, which never
    strays further than the tolerance itself.
    """
    phi = math.radians(min(max(abs(lat0), abs(lat1)) + 1.0, 89.0))
    span = _PAD_SAFETY * tolerance_m / _MIN_RADIUS_M
    return (
        math.degrees(span / math.cos(phi)) + _PAD_SLACK_DEG,
        math.degrees(span) + _PAD_SLACK_DEG,
    )


def _frame_for(bounds: tuple[float, float, float, float], n_cells: int) -> _Frame:
    """A raster of about ``n_cells`` cells over ``bounds``, cells roughly square in metres."""
    lon0, lat0, lon1, lat1 = bounds
    width, height = max(lon1 - lon0, 1e-9), max(lat1 - lat0, 1e-9)
    aspect = width * math.cos(math.radians((lat0 + lat1) / 2)) / height
    ncols = min(max(1, round(math.sqrt(n_cells * aspect))), n_cells)
    nrows = max(1, round(n_cells / ncols))
    return _Frame(lon0, lat0, ncols / width, nrows / height, ncols, nrows)


# ---- the cell table ---------------------------------------------------------------------------

_BAND_CELLS = 1 << 21  # cells labelled at a time, which bounds the build's scratch memory


def _build_cell_table(frame: _Frame, geoms: np.ndarray, near_rects: np.ndarray) -> np.ndarray:
    """Code every cell: a grid position (pure interior), _MIXED, _NEAR or _FAR."""
    ax, ay, bx, by, grid = _edges_in_cells(frame, geoms)
    boundary = _mark_boundary_cells(frame, ax, ay, bx, by)
    rows, c0, c1, owner = _interior_runs(frame, ax, ay, bx, by, grid)
    rects = _rects_in_cells(frame, near_rects)
    table = np.empty((frame.nrows, frame.ncols), np.int16 if len(geoms) < 2**15 else np.int32)
    band = max(1, _BAND_CELLS // frame.ncols)
    for r0 in range(0, frame.nrows, band):
        r1 = min(r0 + band, frame.nrows)
        lo, hi = np.searchsorted(rows, [r0, r1])
        runs = (rows[lo:hi] - r0, c0[lo:hi], c1[lo:hi], owner[lo:hi])
        table[r0:r1] = _label_band(r1 - r0, frame.ncols, runs, rects - [0, r0, 0, r0])
    table[boundary] = _MIXED
    return table


def _edges_in_cells(frame: _Frame, geoms: np.ndarray):
    """Every ring edge of every grid, in cell units: (ax, ay, bx, by, grid position)."""
    parts, part_grid = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    xy, ring_of = shapely.get_coordinates(rings, return_index=True)
    x = (xy[:, 0] - frame.x0) * frame.kx
    y = (xy[:, 1] - frame.y0) * frame.ky
    a = np.flatnonzero(ring_of[1:] == ring_of[:-1])
    return x[a], y[a], x[a + 1], y[a + 1], part_grid[ring_part[ring_of[a]]]


def _mark_boundary_cells(frame: _Frame, ax, ay, bx, by) -> np.ndarray:
    """Cells whose closed box some grid edge touches or comes within _MARGIN of.

    Each edge is walked along its major axis (so the slope used is at most 1 and rounding stays
    ~1e-12 cells): see _mark_strips. The margin also makes the lookup safe: a query point that
    rounding puts in a pure cell it is not in lies within ~1e-12 of that cell's box, with no
    boundary in between, so it has the same answer.
    """
    ax, ay, bx, by = _unique_edges(ax, ay, bx, by)
    mask = np.zeros((frame.nrows, frame.ncols), bool)
    flat = np.abs(bx - ax) >= np.abs(by - ay)
    _mark_strips(mask, ax[flat], ay[flat], bx[flat], by[flat])
    steep = ~flat  # the same walk with the axes swapped, through a transposed view of the mask
    _mark_strips(mask.T, ay[steep], ax[steep], by[steep], bx[steep])
    return mask


def _unique_edges(ax, ay, bx, by):
    """Each edge once: neighbouring grids share their edges, so half the work is repeated."""
    swap = (ax > bx) | ((ax == bx) & (ay > by))
    e = np.column_stack(
        [
            np.where(swap, bx, ax),
            np.where(swap, by, ay),
            np.where(swap, ax, bx),
            np.where(swap, ay, by),
        ]
    )
    e = np.unique(e, axis=0)
    return e[:, 0], e[:, 1], e[:, 2], e[:, 3]


def _mark_strips(mask: np.ndarray, ax, ay, bx, by) -> None:
    """Mark mask[row, col] for every cell within _MARGIN of an edge; edges have |dy| <= |dx|.

    Exact by construction: cell (c, r) is within m of edge e iff the piece of e with x in
    [c - m, c + 1 + m] has a y within [r - m, r + 1 + m]. That piece's y-range runs between its
    two ends (e is straight), so the rows to mark are ceil(ylo - m) - 1 .. floor(yhi + m), and
    the columns (strips) to visit are ceil(xmin - m) - 1 .. floor(xmax + m).
    """
    swap = ax > bx
    ax, bx = np.where(swap, bx, ax), np.where(swap, ax, bx)
    ay, by = np.where(swap, by, ay), np.where(swap, ay, by)
    nrows, ncols = mask.shape
    col_lo = np.clip(np.ceil(ax - _MARGIN) - 1, 0, ncols - 1).astype(np.int64)
    col_hi = np.clip(np.floor(bx + _MARGIN), 0, ncols - 1).astype(np.int64)
    strips = col_hi - col_lo + 1
    for sl in _chunks(strips, _PAIRS_PER_CHUNK):
        edge, col = _expand(col_lo[sl], strips[sl])
        edge += sl.start
        dx = bx[edge] - ax[edge]
        slope = np.divide(by[edge] - ay[edge], dx, out=np.zeros_like(dx), where=dx > 0)
        y0 = ay[edge] + (np.maximum(col - _MARGIN, ax[edge]) - ax[edge]) * slope
        y1 = ay[edge] + (np.minimum(col + 1 + _MARGIN, bx[edge]) - ax[edge]) * slope
        row_lo = np.clip(np.ceil(np.minimum(y0, y1) - _MARGIN) - 1, 0, nrows - 1).astype(np.int64)
        row_hi = np.clip(np.floor(np.maximum(y0, y1) + _MARGIN), 0, nrows - 1).astype(np.int64)
        pair, row = _expand(row_lo, np.maximum(row_hi - row_lo + 1, 0))
        mask[row, col[pair]] = True


def _expand(first: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For runs (first, count): the run of every element, and the values first .. first+count-1."""
    run = np.repeat(np.arange(len(count)), count)
    return run, first[run] + np.arange(len(run)) - np.repeat(np.cumsum(count) - count, count)


def _chunks(weights: np.ndarray, limit: int):
    """Consecutive slices of ``weights`` whose sums stay near ``limit``."""
    ends = np.cumsum(weights)
    cuts = np.searchsorted(ends, np.arange(limit, ends[-1] if len(ends) else 0, limit))
    bounds = np.unique(np.r_[0, cuts, len(weights)])
    for first, last in zip(bounds[:-1], bounds[1:], strict=True):
        yield slice(int(first), int(last))


def _interior_runs(frame: _Frame, ax, ay, bx, by, grid):
    """Even-odd scanline fill through cell centres: runs (row, col0, col1 exclusive, grid).

    A run holds the cells of one row whose centres lie inside one grid (holes and multi-parts
    follow from even-odd over all its rings). Only cells no boundary comes near take their label
    from here; their centres lie more than half a cell from every boundary, so rounding in the
    crossings cannot flip them. Each vertex's row test uses the same float for both of its edges,
    so every row crosses each ring an even number of times and crossings pair up.
    """
    lo = np.clip(np.ceil(np.minimum(ay, by) - 0.5), 0, frame.nrows).astype(np.int64)
    hi = np.clip(np.ceil(np.maximum(ay, by) - 0.5), 0, frame.nrows).astype(np.int64)
    edge, row = _expand(lo, np.maximum(hi - lo, 0))
    t = (row + 0.5 - ay[edge]) / (by - ay)[edge]
    x = ax[edge] + t * (bx - ax)[edge]
    g = grid[edge]
    order = np.lexsort((x, g, row))
    row, g, x = row[order], g[order], x[order]
    if len(row) % 2 or (row[0::2] != row[1::2]).any() or (g[0::2] != g[1::2]).any():
        raise RuntimeError("scanline crossings do not pair up; a ring is not closed")
    c0 = np.clip(np.ceil(x[0::2] - 0.5), 0, frame.ncols).astype(np.int64)
    c1 = np.clip(np.ceil(x[1::2] - 0.5), 0, frame.ncols).astype(np.int64)
    keep = c1 > c0
    return row[0::2][keep], c0[keep], c1[keep], g[0::2][keep]


def _rects_in_cells(frame: _Frame, rects: np.ndarray) -> np.ndarray:
    """Lon/lat rectangles as cell ranges (col0, row0, col1, row1 exclusive), one cell wider."""
    c0 = np.floor((rects[:, 0] - frame.x0) * frame.kx) - 1
    r0 = np.floor((rects[:, 1] - frame.y0) * frame.ky) - 1
    c1 = np.floor((rects[:, 2] - frame.x0) * frame.kx) + 2
    r1 = np.floor((rects[:, 3] - frame.y0) * frame.ky) + 2
    out = np.column_stack([c0, r0, c1, r1])
    return np.clip(out, 0, [frame.ncols, frame.nrows, frame.ncols, frame.nrows]).astype(np.int64)


def _label_band(nrows: int, ncols: int, runs, rects: np.ndarray) -> np.ndarray:
    """Codes of a band of rows, ignoring boundaries: one grid, _MIXED (overlap), _NEAR or _FAR."""
    count, owner = _run_coverage(nrows, ncols, *runs)
    near = _rect_coverage(nrows, ncols, rects)
    out = np.where(count == 1, owner, _MIXED)
    out[count == 0] = np.where(near[count == 0], _NEAR, _FAR)
    return out


def _run_coverage(nrows: int, ncols: int, row, c0, c1, owner):
    """How many grids cover each cell centre, and (where one does) which: by difference arrays.

    XOR-ing the owner in at a run's start and out at its end leaves, where exactly one run covers
    a cell, that run's grid.
    """
    w = ncols + 1
    count = np.zeros(nrows * w, np.int32)
    xor = np.zeros(nrows * w, np.int32)
    start, end = row * w + c0, row * w + c1
    np.add.at(count, start, 1)
    np.add.at(count, end, -1)
    np.bitwise_xor.at(xor, start, owner.astype(np.int32))
    np.bitwise_xor.at(xor, end, owner.astype(np.int32))
    count = np.cumsum(count.reshape(nrows, w), axis=1, dtype=np.int32)[:, :-1]
    xor = np.bitwise_xor.accumulate(xor.reshape(nrows, w), axis=1)[:, :-1]
    return count, xor


def _rect_coverage(nrows: int, ncols: int, rects: np.ndarray) -> np.ndarray:
    """Cells of the band inside any rectangle (rows already relative to the band)."""
    c0, r0, c1, r1 = (rects[:, i] for i in range(4))
    r0, r1 = np.clip(r0, 0, nrows), np.clip(r1, 0, nrows)
    keep = (r1 > r0) & (c1 > c0)
    c0, r0, c1, r1 = c0[keep], r0[keep], c1[keep], r1[keep]
    diff = np.zeros((nrows + 1, ncols + 1), np.int32)
    np.add.at(diff, (r0, c0), 1)
    np.add.at(diff, (r0, c1), -1)
    np.add.at(diff, (r1, c0), -1)
    np.add.at(diff, (r1, c1), 1)
    return (diff.cumsum(axis=0, dtype=np.int32).cumsum(axis=1, dtype=np.int32) > 0)[:-1, :-1]


def tolerance_degrees(tolerance_m: float, lat0: float, lat1: float) -> float:
    """A distance in degrees (lon/lat taken as plane coordinates) that surely exceeds
    ``tolerance_m`` metres between latitudes ``lat0`` and ``lat1``: a point farther than this from
    a grid is beyond its tolerance, so a search this wide finds every grid a point can be tagged to."""
    return math.hypot(*_degree_pads(tolerance_m, lat0, lat1))
