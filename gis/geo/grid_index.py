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

For bulk tagging two more shortcuts keep geometry rare. Most mixed cells have one grid edge alone
near them; there the exact side of that edge (an orientation test trusted only beyond its error
bound) is the answer (``_EdgeCells``). And near cells are re-measured in metres, so that only
cells that may lie within tolerance of a grid send points to the distance test. The lookup runs
on threads for large inputs; the answers are the same row for row.

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
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
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

# _NEAR cells are re-checked in blocks of this many cells a side, in metres (see _sharpen_near).
_NEAR_BLOCK = 4
_BEND_SLACK_M = 1.0

# Bulk tagging: at most this many points per span (a span's temporaries take ~30 bytes a point),
# and threads by default. Below PARALLEL_MIN_POINTS a second thread costs more than it saves.
SPAN_POINTS = 1 << 20
PARALLEL_MIN_POINTS = 200_000
MAX_DEFAULT_WORKERS = 4

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
        self._warm_prepared()
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

    def _warm_prepared(self) -> None:
        """Ask every prepared grid each question once, so that GEOS builds the indexes it builds
        lazily now, single-threaded: the threads of ``locate_many`` (and a server's) then only
        read them."""
        if len(self) == 0:
            return
        probe = shapely.point_on_surface(self.geometries)
        shapely.contains_properly(self.geometries, probe)
        shapely.intersects(self.geometries, probe)
        x0, y0, _, _ = shapely.bounds(self._metric_geoms).T
        shapely.distance(self._metric_geoms, shapely.points(x0 - 1.0, y0 - 1.0))

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
            self._edge_cells = None
        else:
            self._frame = _frame_for(bounds, cell_target)
            self._cells, self._edge_cells = _build_cell_table(
                self._frame, self.geometries, self._near_rects()
            )
            self._sharpen_near()
        self._cells_flat = memoryview(self._cells.reshape(-1))
        f = self._frame
        self._x0, self._y0, self._kx, self._ky = f.x0, f.y0, f.kx, f.ky
        self._ncols, self._nrows = f.ncols, f.nrows

    def _near_rects(self) -> np.ndarray:
        """Each grid's bounds padded by the tolerance: no point beyond them is within tolerance."""
        b = shapely.bounds(self.geometries)
        return b + np.array([-self._pad_lon, -self._pad_lat, self._pad_lon, self._pad_lat])

    def _sharpen_near(self) -> None:
        """Turn _NEAR cells that are surely beyond tolerance of every grid into _FAR.

        _NEAR comes from the grids' padded bounding boxes, which reach far past a ragged district
        edge. Here blocks of _NEAR_BLOCK x _NEAR_BLOCK cells are measured in the metric CRS: a
        block whose box (its corners projected) lies more than ``tolerance_m`` + _BEND_SLACK_M
        from every grid holds no point within tolerance. The slack covers the bend of the
        projected box's sides, micrometres over a few dozen metres.
        """
        f, flat = self._frame, self._cells.reshape(-1)
        near = np.flatnonzero(flat == _NEAR)
        if len(near) == 0:
            return
        rows, cols = np.divmod(near, f.ncols)
        block, which = np.unique(
            (rows // _NEAR_BLOCK) * f.ncols + cols // _NEAR_BLOCK, return_inverse=True
        )
        r0, c0 = np.divmod(block, f.ncols)
        r0, c0 = r0 * _NEAR_BLOCK, c0 * _NEAR_BLOCK
        r1, c1 = np.minimum(r0 + _NEAR_BLOCK, f.nrows), np.minimum(c0 + _NEAR_BLOCK, f.ncols)
        lon = f.x0 + np.column_stack([c0, c1, c1, c0]) / f.kx
        lat = f.y0 + np.column_stack([r0, r0, r1, r1]) / f.ky
        x, y = self._to_metric.transform(lon.reshape(-1), lat.reshape(-1))
        boxes = shapely.polygons(np.stack([x, y], axis=-1).reshape(-1, 4, 2))
        reach = self.tolerance_m + _BEND_SLACK_M
        bx0, by0, bx1, by1 = shapely.bounds(boxes).T
        s = _BEND_SLACK_M  # the tree's boxes reach tolerance_m; the blocks reach the slack
        b, g = self._reach_tree.query(shapely.box(bx0 - s, by0 - s, bx1 + s, by1 + s))
        close = shapely.distance(self._metric_geoms[g], boxes[b]) <= reach
        keep = np.zeros(len(block), bool)
        keep[b[close]] = True
        flat[near[~keep[which.reshape(-1)]]] = _FAR

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

    def locate_many(
        self, lon, lat, *, use_cells: bool = True, workers: int | None = None
    ) -> BulkAssignment:
        """Tag many points at once: a table lookup for all, geometry only for the few that need it.

        The lookup, array work over every point, runs on ``workers`` threads (default: see
        ``default_workers``), each over one contiguous span (spans hold at most ``SPAN_POINTS``,
        which bounds scratch memory). numpy releases the GIL for it and a span costs a thread
        some twenty calls, so threads seldom wait for one another. The few points the table
        leaves open are then settled together on the calling thread. A point's answer depends
        on that point alone, so the rows are the same whatever the spans and threads.
        ``use_cells=False`` sends every point down the exact path; the answers must not change.
        """
        lon, lat = _as_coordinate_arrays(lon, lat)
        n = len(lon)
        workers = default_workers(n) if workers is None else _checked_workers(workers)
        out = BulkAssignment(
            position=np.empty(n, np.int64), method=np.empty(n, np.uint8), distance_m=np.empty(n)
        )
        if not use_cells:
            out.position.fill(-1)
            out.method.fill(_UNASSIGNED_CODE)
            out.distance_m.fill(np.nan)
            self._settle(lon, lat, np.arange(n), None, np.zeros(0, np.intp), out)
            return out
        n_spans = max(min(workers, n), -(-n // SPAN_POINTS), 1)
        ends = np.linspace(0, n, n_spans + 1).astype(np.intp).tolist()
        spans = [slice(a, b) for a, b in zip(ends[:-1], ends[1:], strict=True)]

        def lookup(span: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            out.distance_m[span].fill(np.nan)
            return self._lookup_span(lon[span], lat[span], out.position[span], out.method[span])

        if workers == 1 or len(spans) < 2:
            found = [lookup(span) for span in spans]
        else:
            with ThreadPoolExecutor(min(workers, len(spans))) as pool:
                found = list(pool.map(lookup, spans))  # re-raises a span's exception here
        starts = [span.start for span in spans]
        mixed = np.concatenate([m + start for (m, _, _), start in zip(found, starts, strict=True)])
        cell = np.concatenate([c for _, c, _ in found])
        near = np.concatenate([m + start for (_, _, m), start in zip(found, starts, strict=True)])
        self._settle(lon, lat, mixed, cell, near, out)
        return out

    def _lookup_span(
        self, lon: np.ndarray, lat: np.ndarray, position: np.ndarray, method: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The table's answer for one span, into ``position`` and ``method`` (views of the
        result); returns the span's points in mixed cells, their cells, and those in near cells.
        """
        codes, cell = self._cell_codes(lon, lat)
        np.maximum(codes, -1, out=position)  # the grid of pure cells, -1 for the rest
        np.less(codes, 0, out=method)  # _INSIDE_CODE (0) for pure cells, 1 for the rest
        method *= _UNASSIGNED_CODE
        ask = np.flatnonzero((codes == _MIXED) | (codes == _NEAR))
        kind = codes[ask]
        mixed = ask[kind == _MIXED]
        return mixed, cell[mixed], ask[kind == _NEAR]

    def _settle(
        self, lon: np.ndarray, lat: np.ndarray, mixed: np.ndarray, cell: np.ndarray | None,
        near: np.ndarray, out: BulkAssignment,
    ) -> None:
        """The points the table leaves open: those in mixed cells by the side of the cell's one
        edge where that decides, else by geometry; the rest, outside every grid, by tolerance."""
        if cell is not None and self._edge_cells is not None and len(mixed):
            side = self._side_of_edge(lon[mixed], lat[mixed], cell)
            inside = side >= 0
            out.position[mixed[inside]] = side[inside]
            out.method[mixed[inside]] = _INSIDE_CODE
            near = np.concatenate([near, mixed[side == _NEAR]])
            mixed = mixed[side == _MIXED]
        unresolved = self._resolve_covered(lon, lat, mixed, out)
        self._resolve_nearest(lon, lat, np.concatenate([near, unresolved]), out)

    def _cell_codes(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The cell code of every point (``_FAR`` off the raster) and its cell's flat index.

        Columns and rows are truncated toward zero, so a point less than a cell west or south of
        the raster lands in its first column or row, not off it. Its answer is still right: the
        raster reaches the pad (which exceeds the tolerance) beyond every grid, so such a point
        is beyond tolerance of all, and those cells, whose outer side lies there too, are never
        pure: _MIXED and _NEAR send the point to the exact rules, _FAR says what is true of it.
        """
        fx = lon - self._x0
        fx *= self._kx
        fy = lat - self._y0
        fy *= self._ky
        with np.errstate(invalid="ignore"):  # absurd coordinates overflow; they are off anyway
            col = fx.astype(np.intp)
            cell = fy.astype(np.intp)
        off = (col.view(np.uintp) >= self._ncols) | (cell.view(np.uintp) >= self._nrows)
        cell *= self._ncols
        cell += col
        off_any = off.any()
        if off_any:
            cell[off] = 0
        codes = self._cells.reshape(-1)[cell]
        if off_any:
            codes[off] = _FAR
        return codes, cell

    def _side_of_edge(self, lon: np.ndarray, lat: np.ndarray, cell: np.ndarray) -> np.ndarray:
        """For points in mixed cells: the grid whose interior holds each, _NEAR where no grid
        does, both by the side of the cell's one edge; _MIXED where that does not decide.

        The side is the sign of Shewchuk's orientation determinant, trusted only beyond its
        error bound, so it is the exact sign; points on or a rounding away from the edge are
        left to geometry (they may be on the boundary).
        """
        ec = self._edge_cells
        edge = ec.edge[ec.slots(cell)]
        side = np.full(len(edge), _MIXED, np.int32)
        has = np.flatnonzero(edge >= 0)
        e, px, py = edge[has], lon[has], lat[has]
        left = (ec.edges.ax[e] - px) * (ec.edges.by[e] - py)
        right = (ec.edges.ay[e] - py) * (ec.edges.bx[e] - px)
        det = left - right
        sure = np.abs(det) > _ORIENT_ERROR * (np.abs(left) + np.abs(right))
        e, det = e[sure], det[sure]
        side[has[sure]] = np.where(det > 0, ec.edges.left[e], ec.edges.right[e])
        return side

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


def default_workers(n_points: int) -> int:
    """Threads for ``n_points``: one for small inputs, else the CPUs we may use (at most a few)."""
    if n_points < PARALLEL_MIN_POINTS:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DEFAULT_WORKERS))


def _checked_workers(workers: int) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a whole number >= 1, got {workers!r}")
    return workers


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


def _build_cell_table(
    frame: _Frame, geoms: np.ndarray, near_rects: np.ndarray
) -> tuple[np.ndarray, _EdgeCells]:
    """Code every cell: a grid position (pure interior), _MIXED, _NEAR or _FAR; and the mixed
    cells that a single edge decides (see _EdgeCells)."""
    ring_edges = _ring_edges(geoms)
    ax, ay, bx, by = _to_cell_units(frame, *ring_edges[:4])
    edges = _unique_edges(*ring_edges)
    boundary, pair_cell, pair_edge = _mark_boundary_cells(
        frame, *_to_cell_units(frame, edges.ax, edges.ay, edges.bx, edges.by)
    )
    rows, c0, c1, owner = _interior_runs(frame, ax, ay, bx, by, ring_edges[4])
    rects = _rects_in_cells(frame, near_rects)
    table = np.empty((frame.nrows, frame.ncols), np.int16 if len(geoms) < 2**15 else np.int32)
    band = max(1, _BAND_CELLS // frame.ncols)
    for r0 in range(0, frame.nrows, band):
        r1 = min(r0 + band, frame.nrows)
        lo, hi = np.searchsorted(rows, [r0, r1])
        runs = (rows[lo:hi] - r0, c0[lo:hi], c1[lo:hi], owner[lo:hi])
        table[r0:r1] = _label_band(r1 - r0, frame.ncols, runs, rects - [0, r0, 0, r0])
    flat = table.reshape(-1)
    on_edge = np.flatnonzero(boundary.reshape(-1))
    del boundary
    centre = flat[on_edge]  # the scanline's answer at each boundary cell's centre
    flat[on_edge] = _MIXED
    return table, _single_edge_cells(frame, flat, on_edge, centre, pair_cell, pair_edge, edges)


def _ring_edges(geoms: np.ndarray):
    """Every ring edge of every grid, in degrees: (ax, ay, bx, by, grid position, interior on
    the left of a -> b)."""
    parts, part_grid = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    hole = np.r_[False, ring_part[1:] == ring_part[:-1]]  # each part's first ring is its shell
    interior_left = shapely.is_ccw(rings) != hole
    xy, ring_of = shapely.get_coordinates(rings, return_index=True)
    a = np.flatnonzero(ring_of[1:] == ring_of[:-1])
    ring = ring_of[a]
    return (
        xy[a, 0], xy[a, 1], xy[a + 1, 0], xy[a + 1, 1],
        part_grid[ring_part[ring]], interior_left[ring],
    )


def _to_cell_units(frame: _Frame, ax, ay, bx, by):
    return (
        (ax - frame.x0) * frame.kx,
        (ay - frame.y0) * frame.ky,
        (bx - frame.x0) * frame.kx,
        (by - frame.y0) * frame.ky,
    )


@dataclass(frozen=True)
class _Edges:
    """Distinct edges in degrees, each from its smaller end, with what lies on either side: a
    grid position, _NEAR (no grid: outside all), or _MIXED (several grids: bad data)."""

    ax: np.ndarray
    ay: np.ndarray
    bx: np.ndarray
    by: np.ndarray
    left: np.ndarray
    right: np.ndarray


def _unique_edges(ax, ay, bx, by, grid, interior_left) -> _Edges:
    """Each edge once (neighbouring grids share their edges, so half the walk would repeat),
    with the grid on each side. Equal means equal doubles in degrees: edges that differ by a
    hair stay two, and a cell both come near is then decided by geometry."""
    swap = (ax > bx) | ((ax == bx) & (ay > by))
    e = np.column_stack(
        [
            np.where(swap, bx, ax),
            np.where(swap, by, ay),
            np.where(swap, ax, bx),
            np.where(swap, ay, by),
        ]
    )
    e, which = np.unique(e, axis=0, return_inverse=True)
    which = which.reshape(-1)
    on_left = interior_left != swap
    return _Edges(
        e[:, 0], e[:, 1], e[:, 2], e[:, 3],
        _side_owner(len(e), which[on_left], grid[on_left]),
        _side_owner(len(e), which[~on_left], grid[~on_left]),
    )


def _side_owner(n_edges: int, edge: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Per edge: the one grid with its interior on that side, _NEAR if none, _MIXED if several."""
    count = np.bincount(edge, minlength=n_edges)
    owner = np.full(n_edges, _NEAR, np.int32)
    owner[edge] = grid
    owner[count > 1] = _MIXED
    return owner


@dataclass(frozen=True)
class _EdgeCells:
    """Mixed cells that one edge alone comes near: there the side of that edge is the answer.

    ``edge`` gives, for each mixed cell in the table's order, the edge (into ``edges``) that
    alone comes within _MARGIN of it, or -1 where that is not so or the sides cannot be trusted.
    ``slots`` finds a mixed cell's place in that order: bit i of ``words[w]`` is set when cell
    64 w + i is mixed, and ``before[w]`` counts the mixed cells before word w (a rank query by
    popcount, ~1 bit a cell, where a binary search over the cells would miss the cache 20 times). Within such a cell the edge runs from border to border (its
    ends, vertices, would bring a second edge), so a point strictly left of it is in the interior
    of ``edges.left`` (or outside every grid, for _NEAR), and likewise on the right.
    """

    words: np.ndarray
    before: np.ndarray
    edge: np.ndarray
    edges: _Edges

    @classmethod
    def ranking(cls, mixed: np.ndarray, edge: np.ndarray, edges: _Edges) -> _EdgeCells:
        """Index ``edge`` (one entry per True of the flat mask ``mixed``) by cell."""
        bits = np.zeros(-(-len(mixed) // 64) * 64, bool)
        bits[: len(mixed)] = mixed
        words = np.packbits(bits, bitorder="little").view("<u8")
        before = np.cumsum(np.bitwise_count(words), dtype=np.int64)
        before = np.r_[np.int64(0), before[:-1]]
        return cls(words, before, edge, edges)

    def slots(self, cells: np.ndarray) -> np.ndarray:
        """Places of mixed ``cells`` (flat indices) in the table's order of mixed cells."""
        w = cells >> 6
        below = (np.uint64(1) << (cells & 63).astype(np.uint64)) - np.uint64(1)
        return self.before[w] + np.bitwise_count(self.words[w] & below)


# Relative error bound of the orientation determinant in floating point (Shewchuk's
# ccwerrboundA, epsilon = 2**-53): beyond it the computed sign is the exact one.
_ORIENT_ERROR = (3.0 + 16.0 * 2.0**-53) * 2.0**-53

# A cell centre this far (in cells) from the cell's edge is on its side beyond any rounding.
_CENTRE_CLEAR = 1e-6


def _single_edge_cells(
    frame: _Frame, flat: np.ndarray, on_edge: np.ndarray, centre: np.ndarray,
    pair_cell: np.ndarray, pair_edge: np.ndarray, edges: _Edges,
) -> _EdgeCells:
    """Find the cells one edge decides, and check each against the scanline fill.

    A grid that covers part of such a cell without an edge in it covers all of it (overlapping
    grids, bad data) and so its centre: then the scanline's answer at the centre differs from
    the side's, and the cell is left to geometry.
    """
    mixed = flat == _MIXED
    edge = np.full(np.count_nonzero(mixed), -1, np.int32)
    ranked = _EdgeCells.ranking(mixed, edge, edges)
    order = np.argsort(pair_cell, kind="stable")
    pc, pe = pair_cell[order], pair_edge[order]
    alone = np.ones(len(pc), bool)
    alone[1:] &= pc[1:] != pc[:-1]
    alone[:-1] &= pc[1:] != pc[:-1]
    pc, pe = pc[alone], pe[alone]
    row, col = np.divmod(pc, frame.ncols)
    ax, ay, bx, by = _to_cell_units(
        frame, edges.ax[pe], edges.ay[pe], edges.bx[pe], edges.by[pe]
    )
    cross = (bx - ax) * (row + 0.5 - ay) - (by - ay) * (col + 0.5 - ax)
    side = cross / np.hypot(bx - ax, by - ay)  # signed distance of the centre, in cells
    expected = np.where(side > 0, edges.left[pe], edges.right[pe])
    seen = centre[np.searchsorted(on_edge, pc)]
    agree = (expected == seen) | ((expected == _NEAR) & (seen == _FAR))
    ok = (np.abs(side) > _CENTRE_CLEAR) & (expected != _MIXED) & agree
    edge[ranked.slots(pc[ok])] = pe[ok]
    return ranked


def _mark_boundary_cells(frame: _Frame, ax, ay, bx, by):
    """Cells whose closed box some grid edge touches or comes within _MARGIN of; and every
    (cell, edge) pair behind that, cells as flat indices.

    Each edge is walked along its major axis (so the slope used is at most 1 and rounding stays
    ~1e-12 cells): see _mark_strips. The margin also makes the lookup safe: a query point that
    rounding puts in a pure cell it is not in lies within ~1e-12 of that cell's box, with no
    boundary in between, so it has the same answer.
    """
    mask = np.zeros((frame.nrows, frame.ncols), bool)
    ids = np.arange(len(ax), dtype=np.int32)
    flat = np.abs(bx - ax) >= np.abs(by - ay)
    cells, edges = [], []
    walks = _mark_strips(frame.nrows, frame.ncols, ax[flat], ay[flat], bx[flat], by[flat])
    for edge, row, col in walks:
        mask[row, col] = True
        cells.append(row * frame.ncols + col)
        edges.append(ids[flat][edge])
    steep = ~flat  # the same walk with the axes swapped
    walks = _mark_strips(frame.ncols, frame.nrows, ay[steep], ax[steep], by[steep], bx[steep])
    for edge, col, row in walks:
        mask[row, col] = True
        cells.append(row * frame.ncols + col)
        edges.append(ids[steep][edge])
    if not cells:
        return mask, np.zeros(0, np.int64), np.zeros(0, np.int32)
    return mask, np.concatenate(cells), np.concatenate(edges)


def _mark_strips(nrows: int, ncols: int, ax, ay, bx, by):
    """Yield (edge, row, col) for every cell within _MARGIN of an edge; edges have |dy| <= |dx|.

    Exact by construction: cell (c, r) is within m of edge e iff the piece of e with x in
    [c - m, c + 1 + m] has a y within [r - m, r + 1 + m]. That piece's y-range runs between its
    two ends (e is straight), so the rows to mark are ceil(ylo - m) - 1 .. floor(yhi + m), and
    the columns (strips) to visit are ceil(xmin - m) - 1 .. floor(xmax + m).
    """
    swap = ax > bx
    ax, bx = np.where(swap, bx, ax), np.where(swap, ax, bx)
    ay, by = np.where(swap, by, ay), np.where(swap, ay, by)
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
        yield edge[pair], row, col[pair]


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
