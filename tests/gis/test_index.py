"""The in-memory grid index (gis/geo/grid_index.py): every rule, the cell fast path, and their agreement."""

from __future__ import annotations

import functools
import math
import os
import random
import subprocess
import sys
from pathlib import Path
from unittest import mock

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Point, Polygon

from gis.errors import InvalidCoordinates, InvalidGeometry
from gis.geo import grid_index
from gis.geo.crs import metric_crs_for
from gis.geo.grid_index import (
    _FAR,
    _MIXED,
    _NEAR,
    BOUNDARY,
    INSIDE,
    METHODS,
    NEAREST,
    UNASSIGNED,
    Assignment,
    GridIndex,
)

LON0, LAT0 = 112.86, 36.84
M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(LAT0))


def jittered_grids(n: int, *, seed: int = 0, lon0: float = LON0, lat0: float = LAT0):
    """``n`` irregular grids 100-300 m wide: a jittered lattice of wiggly polylines, polygonised.

    Returns (geometries, keys). Keys are "G" + a number that runs opposite to polygonize's
    order, so key order and position order differ.
    """
    rng = np.random.default_rng(seed)
    nx = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)
    ny = n // nx
    xs = np.r_[0, np.cumsum(rng.uniform(100, 300, nx))]
    ys = np.r_[0, np.cumsum(rng.uniform(100, 300, ny))]
    node_x = xs[:, None] + rng.uniform(-20, 20, (nx + 1, ny + 1))
    node_y = ys[None, :] + rng.uniform(-20, 20, (nx + 1, ny + 1))
    nodes = np.stack([node_x, node_y], axis=-1)
    edges = [(nodes[:-1, :], nodes[1:, :]), (nodes[:, :-1], nodes[:, 1:])]
    lines = np.concatenate([_wiggly(a.reshape(-1, 2), b.reshape(-1, 2), rng) for a, b in edges])
    lines[..., 0] = lon0 + lines[..., 0] / M_PER_DEG_LON
    lines[..., 1] = lat0 + lines[..., 1] / M_PER_DEG_LAT
    polygons = shapely.get_parts(shapely.polygonize(shapely.linestrings(lines)))
    keys = [f"G{len(polygons) - i:06d}" for i in range(len(polygons))]
    return polygons, keys


def _wiggly(a: np.ndarray, b: np.ndarray, rng, inner: int = 3) -> np.ndarray:
    """Polylines from a to b through ``inner`` points pushed sideways by up to 8 m, like streets."""
    t = np.linspace(0, 1, inner + 2)[None, :, None]
    pts = a[:, None, :] + t * (b - a)[:, None, :]
    d = b - a
    normal = np.stack([-d[:, 1], d[:, 0]], axis=-1) / np.hypot(d[:, 0], d[:, 1])[:, None]
    push = rng.uniform(-8, 8, (len(a), inner + 2))
    push[:, [0, -1]] = 0
    return pts + push[..., None] * normal[:, None, :]


# ---- hand-made grids with exact shared edges ----------------------------------------------------

U = 0.001  # lattice unit of the hand-made grids, ~89 m east-west and ~111 m north-south here


def at(ox: float, oy: float, i: float, j: float) -> tuple[float, float]:
    """Lattice point (i, j) of a block at (ox, oy); shared corners come out as identical floats."""
    return ox + i * U, oy + j * U


def cell(ox: float, oy: float, i0: float, j0: float, i1: float, j1: float) -> Polygon:
    return Polygon([at(ox, oy, i0, j0), at(ox, oy, i1, j0), at(ox, oy, i1, j1), at(ox, oy, i0, j1)])


QUAD = (112.90, 36.84)  # 2 x 2 squares: a shared vertex in the middle
ENCLAVE = (112.91, 36.84)  # a host with a hole, and an enclave grid filling the hole
MULTI = (112.92, 36.84)  # one grid in two parts
OVERLAP = (112.93, 36.84)  # two grids that overlap (bad data)
WEDGE = (112.94, 36.84)  # two grids meeting at a vertex that is the nearest point of both
LONE = (112.95, 36.84)  # a single square for the tolerance edge


def hand_made_grids() -> dict[str, Polygon | MultiPolygon]:
    """Grids, keyed so that key order differs from insertion order."""
    ox, oy = ENCLAVE
    host = Polygon(
        cell(ox, oy, 0, 0, 3, 3).exterior.coords, [cell(ox, oy, 1, 1, 2, 2).exterior.coords]
    )
    wedge_left = Polygon([at(*WEDGE, 1, 0), at(*WEDGE, 1, 1), at(*WEDGE, 0, 1), at(*WEDGE, 0, 0.5)])
    wedge_right = Polygon(
        [at(*WEDGE, 1, 0), at(*WEDGE, 2, 0.5), at(*WEDGE, 2, 1), at(*WEDGE, 1, 1)]
    )
    return {
        "Q4": cell(*QUAD, 0, 0, 1, 1),
        "Q3": cell(*QUAD, 1, 0, 2, 1),
        "Q2": cell(*QUAD, 0, 1, 1, 2),
        "Q1": cell(*QUAD, 1, 1, 2, 2),
        "H": host,
        "E": cell(ox, oy, 1, 1, 2, 2),
        "M": MultiPolygon([cell(*MULTI, 0, 0, 1, 1), cell(*MULTI, 3, 0, 4, 1)]),
        "O2": cell(*OVERLAP, 0, 0, 2, 1),
        "O1": cell(*OVERLAP, 1, 0, 3, 1),
        "Z": wedge_left,
        "Y": wedge_right,
        "T": cell(*LONE, 0, 0, 1, 1),
    }


@functools.cache
def world() -> tuple[tuple, tuple]:
    """The hand-made grids plus 16 jittered ones to the south-west: every case in one index."""
    made = hand_made_grids()
    jittered, jkeys = jittered_grids(16, seed=3, lon0=112.88, lat0=36.83)
    return tuple(made.values()) + tuple(jittered), tuple(made) + tuple(jkeys)


@functools.cache
def world_index(cell_target: int | None = None) -> GridIndex:
    geoms, keys = world()
    return GridIndex(geoms, keys, cell_target=cell_target)


def key_of(index: GridIndex, lon: float, lat: float) -> tuple[str | None, str]:
    a = index.locate(lon, lat)
    return a.key, a.method


# ---- the rules, straight from their wording -----------------------------------------------------


class BruteForce:
    """The grid-assignment rules checked grid by grid with plain shapely predicates: the reference."""

    def __init__(self, geoms, keys, tolerance_m: float = 50.0):
        self.geoms, self.keys, self.tolerance_m = list(geoms), list(keys), tolerance_m
        lon0, _, lon1, _ = shapely.total_bounds(np.array(self.geoms, dtype=object))
        self.to_metric = Transformer.from_crs(
            "EPSG:4326", metric_crs_for((lon0 + lon1) / 2), always_xy=True
        )
        self.metric = [shapely.transform(g, self._project) for g in self.geoms]

    def _project(self, xy):
        return np.column_stack(self.to_metric.transform(xy[:, 0], xy[:, 1]))

    def __call__(self, lon: float, lat: float) -> tuple[str | None, str, float | None]:
        point = Point(lon, lat)
        inside = [k for g, k in zip(self.geoms, self.keys, strict=True) if point.within(g)]
        if inside:
            return min(inside), INSIDE, None
        covering = [k for g, k in zip(self.geoms, self.keys, strict=True) if g.covers(point)]
        if covering:
            return min(covering), BOUNDARY, None
        mpoint = Point(self.to_metric.transform(lon, lat))
        dist, key = min(
            (g.distance(mpoint), k) for g, k in zip(self.metric, self.keys, strict=True)
        )
        if dist <= self.tolerance_m:
            return key, NEAREST, dist
        return None, UNASSIGNED, None


@functools.cache
def world_brute() -> BruteForce:
    return BruteForce(*world())


def assert_same(got: Assignment, expected: tuple[str | None, str, float | None]) -> None:
    key, method, dist = expected
    assert (got.key, got.method) == (key, method)
    if dist is None:
        assert got.distance_m is None
    else:
        assert got.distance_m == pytest.approx(dist, abs=1e-6)


def shuffled_index(seed: int, **kwargs) -> GridIndex:
    geoms, keys = world()
    order = list(range(len(keys)))
    random.Random(seed).shuffle(order)
    return GridIndex([geoms[i] for i in order], [keys[i] for i in order], **kwargs)


# ---- rule 1: inside -----------------------------------------------------------------------------


def test_interior_point_is_inside_its_grid():
    index = world_index()
    assert key_of(index, *at(*QUAD, 0.5, 0.5)) == ("Q4", INSIDE)
    assert key_of(index, *at(*QUAD, 1.5, 1.5)) == ("Q1", INSIDE)
    a = index.locate(*at(*QUAD, 0.5, 0.5))
    assert a.position == world()[1].index("Q4") and a.distance_m is None


def test_enclave_in_a_hole_and_its_host():
    index = world_index()
    assert key_of(index, *at(*ENCLAVE, 1.5, 1.5)) == ("E", INSIDE)
    assert key_of(index, *at(*ENCLAVE, 0.5, 0.5)) == ("H", INSIDE)
    assert key_of(index, *at(*ENCLAVE, 2.5, 1.5)) == ("H", INSIDE)
    assert key_of(index, *at(*ENCLAVE, 1, 1.5)) == ("E", BOUNDARY)  # hole edge: E < H


def test_multi_part_grid():
    index = world_index()
    assert key_of(index, *at(*MULTI, 0.5, 0.5)) == ("M", INSIDE)
    assert key_of(index, *at(*MULTI, 3.5, 0.5)) == ("M", INSIDE)
    assert key_of(index, *at(*MULTI, 3, 0.5)) == ("M", BOUNDARY)
    assert key_of(index, *at(*MULTI, 2, 0.5)) == (None, UNASSIGNED)  # ~89 m from both parts


def test_overlapping_grids_give_the_smallest_key_and_do_not_crash():
    """Bad data: in the interior of several grids, the smallest key wins, still ``inside``."""
    index = world_index()
    assert key_of(index, *at(*OVERLAP, 1.5, 0.5)) == ("O1", INSIDE)
    assert key_of(index, *at(*OVERLAP, 2, 0.5)) == ("O1", INSIDE)  # O2's edge, O1's interior
    assert key_of(index, *at(*OVERLAP, 1, 0.5)) == ("O2", INSIDE)  # O1's edge, O2's interior
    assert key_of(index, *at(*OVERLAP, 0.5, 0.5)) == ("O2", INSIDE)


# ---- rule 2: boundary ---------------------------------------------------------------------------


SHARED = {
    "vertical edge": (at(*QUAD, 1, 0.5), "Q3"),
    "horizontal edge": (at(*QUAD, 0.5, 1), "Q2"),
    "vertex of four": (at(*QUAD, 1, 1), "Q1"),
    "outer vertex of two": (at(*QUAD, 1, 0), "Q3"),
    "outer edge": (at(*LONE, 0, 0.5), "T"),
    "outer corner": (at(*LONE, 1, 1), "T"),
}


@pytest.mark.parametrize("where", SHARED)
def test_boundary_goes_to_the_smallest_key_every_time(where):
    (lon, lat), expected = SHARED[where]
    instances = [
        world_index(),
        shuffled_index(1),
        shuffled_index(2),
        shuffled_index(3, cell_target=0),
    ]
    answers = {key_of(index, lon, lat) for index in instances for _ in range(2)}
    assert answers == {(expected, BOUNDARY)}
    for index in instances:
        bulk = index.locate_many([lon, lon], [lat, lat])
        assert list(index.keys_for(bulk.position)) == [expected, expected]
        assert list(bulk.method_names()) == [BOUNDARY, BOUNDARY]


def test_same_answers_in_another_process():
    points = [p for p, _ in SHARED.values()] + [at(*QUAD, 0.5, 0.5), at(*WEDGE, 1, -0.2)]
    script = (
        "from tests.gis.test_index import shuffled_index\n"
        f"index = shuffled_index(7)\nfor lon, lat in {points!r}:\n"
        "    a = index.locate(lon, lat)\n    print(a.key, a.method)\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    here = [f"{k} {m}" for k, m in (key_of(world_index(), lon, lat) for lon, lat in points)]
    assert out[: len(here)] == here


def test_keys_compare_as_strings():
    left, right = cell(*QUAD, 0, 0, 1, 1), cell(*QUAD, 1, 0, 2, 1)
    index = GridIndex([left, right], [9, 10])
    assert key_of(index, *at(*QUAD, 1, 0.5)) == ("10", BOUNDARY)


# ---- rule 3: nearest within tolerance -----------------------------------------------------------


def east_of_lone_square(metres: float) -> tuple[float, float]:
    """A point ``metres`` (in the metric CRS) east of the middle of the lone square's east edge."""
    to_metric = Transformer.from_crs("EPSG:4326", world_index().metric_crs, always_xy=True)
    (x0, x1), (y0, y1) = to_metric.transform(*zip(at(*LONE, 1, 0), at(*LONE, 1, 1), strict=True))
    length = math.hypot(x1 - x0, y1 - y0)
    nx, ny = (y1 - y0) / length, -(x1 - x0) / length  # outward (eastward) unit normal
    mx, my = (x0 + x1) / 2 + metres * nx, (y0 + y1) / 2 + metres * ny
    return to_metric.transform(mx, my, direction="INVERSE")


def test_tolerance_edge_49_and_51_metres():
    index = world_index()
    near = index.locate(*east_of_lone_square(49.0))
    assert (near.key, near.method) == ("T", NEAREST)
    assert near.distance_m == pytest.approx(49.0, abs=1e-6)
    assert key_of(index, *east_of_lone_square(51.0)) == (None, UNASSIGNED)
    wider = shuffled_index(4, tolerance_m=60.0).locate(*east_of_lone_square(51.0))
    assert (wider.key, wider.method, round(wider.distance_m, 6)) == ("T", NEAREST, 51.0)


def test_nearest_tie_goes_to_the_smallest_key():
    lon, lat = at(*WEDGE, 1, -0.2)  # ~22 m south of the vertex Y and Z share, nearer than any edge
    brute = world_brute()
    y, z = (brute.metric[brute.keys.index(k)] for k in ("Y", "Z"))
    mpoint = Point(brute.to_metric.transform(lon, lat))
    assert y.distance(mpoint) == z.distance(mpoint)  # a true tie, not a near one
    for index in (world_index(), shuffled_index(5), shuffled_index(6)):
        a = index.locate(lon, lat)
        assert (a.key, a.method) == ("Y", NEAREST)


# ---- rule 4: unassigned -------------------------------------------------------------------------


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize(
    "lon, lat", [(112.86, 30.0), (-70.0, -33.0), (180.0, 90.0), (0.0, 0.0), (1e300, -1e300)]
)
def test_far_points_are_unassigned(lon, lat):
    assert world_index().locate(lon, lat) == Assignment(None, None, UNASSIGNED, None)
    bulk = world_index().locate_many([lon], [lat])
    assert bulk.position.tolist() == [-1] and bulk.method_names().tolist() == [UNASSIGNED]


@pytest.mark.parametrize("cell_target", [None, 0, 4, 150_000])
def test_points_at_and_just_off_the_raster_edges(cell_target):
    """Off the raster by less than a cell, the bulk lookup truncates into the first column or
    row; the answers must still be those of the exact path and of locate."""
    index = world_index(cell_target)
    f = index._frame
    x1, y1 = f.x0 + f.ncols / f.kx, f.y0 + f.nrows / f.ky
    xs = [f.x0 - 0.5 / f.kx, f.x0 - 1e-12, f.x0, f.x0 + 0.5 / f.kx, x1 - 1e-12, x1, x1 + 0.5 / f.kx]
    ys = [f.y0 - 0.5 / f.ky, f.y0 - 1e-12, f.y0, (f.y0 + y1) / 2, y1 - 1e-12, y1, y1 + 0.5 / f.ky]
    lon, lat = (a.ravel() for a in np.meshgrid(xs, ys))
    bulk = index.locate_many(lon, lat)
    exact = index.locate_many(lon, lat, use_cells=False)
    np.testing.assert_array_equal(bulk.position, exact.position)
    np.testing.assert_array_equal(bulk.method, exact.method)
    for i, (x, y) in enumerate(zip(lon.tolist(), lat.tolist(), strict=True)):
        assert METHODS[bulk.method[i]] == index.locate(x, y).method


def test_empty_index_assigns_nothing():
    index = GridIndex([], [])
    assert len(index) == 0
    assert index.locate(112.86, 36.84).method == UNASSIGNED
    assert index.locate(112.86, 36.84, use_cells=False).method == UNASSIGNED
    assert index.locate_many([112.86], [36.84]).position.tolist() == [-1]


# ---- the bulk path ------------------------------------------------------------------------------

NUDGES = [0.0, 1e-12, -1e-12, 1e-9, -1e-9, 1e-7, -1e-7, 3e-5, -3e-5]


def awkward_points(geoms, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Points where mistakes hide: vertices, points on (or a hair off) edges, and the rest."""
    rng = np.random.default_rng(seed)
    geoms = np.asarray(geoms, dtype=object)
    vertices = shapely.get_coordinates(geoms)
    edges = shapely.line_interpolate_point(
        shapely.boundary(geoms[rng.integers(len(geoms), size=n)]), rng.random(n), normalized=True
    )
    x0, y0, x1, y1 = shapely.total_bounds(geoms) + [-0.002, -0.002, 0.002, 0.002]
    xy = np.concatenate(
        [
            vertices[rng.integers(len(vertices), size=n)],
            shapely.get_coordinates(edges),
            np.column_stack([rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)]),
        ]
    )
    xy += rng.choice(NUDGES, size=xy.shape) * (rng.random((len(xy), 1)) < 0.7)
    return xy[:, 0], xy[:, 1]


def test_locate_many_agrees_with_locate_on_every_point():
    index = shuffled_index(8)
    lon, lat = awkward_points(world()[0], 1500, seed=1)
    bulk = index.locate_many(lon, lat)
    methods = bulk.method_names()
    for i, (x, y) in enumerate(zip(lon.tolist(), lat.tolist(), strict=True)):
        a = index.locate(x, y)
        assert (a.position if a.position is not None else -1) == bulk.position[i]
        assert a.method == methods[i]
        assert (a.distance_m is None) == np.isnan(bulk.distance_m[i])
        if a.distance_m is not None:
            assert a.distance_m == bulk.distance_m[i]
    assert set(methods) == set(METHODS)  # the sample exercised every rule


def test_bulk_result_types_and_encoding():
    index = world_index()
    lon, lat = zip(
        at(*QUAD, 0.5, 0.5), at(*QUAD, 1, 1), east_of_lone_square(30), (0.0, 0.0), strict=True
    )
    bulk = index.locate_many(np.array(lon), np.array(lat))
    assert bulk.position.dtype == np.int64 and bulk.method.dtype == np.uint8
    assert bulk.distance_m.dtype == np.float64 and len(bulk) == 4
    assert bulk.method_names().tolist() == [INSIDE, BOUNDARY, NEAREST, UNASSIGNED]
    assert index.keys_for(bulk.position).tolist() == ["Q4", "Q1", "T", None]
    assert np.isnan(bulk.distance_m[[0, 1, 3]]).all()
    assert bulk.distance_m[2] == pytest.approx(30.0, abs=1e-6)
    assert len(index.locate_many([], []).position) == 0


def test_cell_path_agrees_with_exact_path_on_many_awkward_points():
    geoms, keys = jittered_grids(400, seed=11)
    index = GridIndex(geoms, keys)
    assert index.cell_stats()["mixed"] < 0.1  # most cells answer by lookup
    lon, lat = awkward_points(geoms, 40_000, seed=2)
    fast = index.locate_many(lon, lat)
    for exact in (
        index.locate_many(lon, lat, use_cells=False),
        GridIndex(geoms, keys, cell_target=0).locate_many(lon, lat),
    ):
        np.testing.assert_array_equal(fast.position, exact.position)
        np.testing.assert_array_equal(fast.method, exact.method)
        np.testing.assert_array_equal(fast.distance_m, exact.distance_m)


@pytest.mark.parametrize(
    "grids, cell_target",
    [(world, 150_000), (lambda: jittered_grids(100, seed=5), 300_000)],
    ids=["world", "jittered"],
)
def test_every_pure_cell_is_really_pure(grids, cell_target):
    """White-box: the table's claims, checked on every cell's closed box with exact predicates."""
    geoms, keys = grids()
    index = GridIndex(geoms, keys, cell_target=cell_target)
    f, codes = index._frame, index._cells
    rows, cols = np.indices(codes.shape)
    boxes = shapely.box(
        f.x0 + cols / f.kx, f.y0 + rows / f.ky, f.x0 + (cols + 1) / f.kx, f.y0 + (rows + 1) / f.ky
    )
    pure, far = codes >= 0, codes == _FAR
    assert shapely.contains_properly(index.geometries[codes[pure]], boxes[pure]).all()
    outside = boxes[(codes == _NEAR) | far]
    touching = shapely.STRtree(index.geometries).query(outside, predicate="intersects")
    assert touching.size == 0
    brute = BruteForce(geoms, keys)
    far_metric = shapely.transform(boxes[far], brute._project)
    reach = shapely.STRtree(brute.metric).query(far_metric, predicate="dwithin", distance=50.0)
    assert reach.size == 0
    assert min(pure.sum(), far.sum(), (codes == _NEAR).sum(), (codes == _MIXED).sum()) > 1000


@pytest.mark.parametrize(
    "grids, cell_target",
    [(world, 150_000), (lambda: jittered_grids(100, seed=5), 300_000)],
    ids=["world", "jittered"],
)
def test_every_cell_one_edge_decides_is_decided_right(grids, cell_target):
    """White-box: in each mixed cell the bulk path answers by the side of one edge, points
    anywhere in the cell and points on (a rounding off) that edge get the exact path's answer,
    or are left to it."""
    geoms, keys = grids()
    index = GridIndex(geoms, keys, cell_target=cell_target)
    f, ec = index._frame, index._edge_cells
    mixed = np.flatnonzero(index._cells.reshape(-1) == _MIXED)
    np.testing.assert_array_equal(ec.slots(mixed), np.arange(len(mixed)))
    decided = mixed[ec.edge >= 0]
    assert len(decided) > 0.5 * len(mixed)  # most mixed cells answer without geometry
    rng = np.random.default_rng(1)
    cells = np.repeat(decided, 4)
    rows, cols = np.divmod(cells, f.ncols)
    lon = f.x0 + (cols + rng.random(len(cells))) / f.kx
    lat = f.y0 + (rows + rng.random(len(cells))) / f.ky
    e = np.repeat(ec.edge[ec.edge >= 0], 4)
    t = rng.random(len(e))  # points of the edges themselves, as near as doubles get
    lon = np.r_[lon, ec.edges.ax[e] + t * (ec.edges.bx[e] - ec.edges.ax[e])]
    lat = np.r_[lat, ec.edges.ay[e] + t * (ec.edges.by[e] - ec.edges.ay[e])]
    codes, where = index._cell_codes(lon, lat)
    lon, lat, where = lon[codes == _MIXED], lat[codes == _MIXED], where[codes == _MIXED]
    side = index._side_of_edge(lon, lat, where)
    exact = index.locate_many(lon, lat, use_cells=False)
    inside, outside = side >= 0, side == _NEAR
    assert inside.sum() > len(side) / 3 and outside.any()
    assert (exact.method[inside] == METHODS.index(INSIDE)).all()
    np.testing.assert_array_equal(exact.position[inside], side[inside])
    assert np.isin(exact.method[outside], [METHODS.index(NEAREST), METHODS.index(UNASSIGNED)]).all()
    assert (side[exact.method == METHODS.index(BOUNDARY)] == _MIXED).all()


def test_a_cell_inside_an_overlapping_grid_is_left_to_geometry():
    """O1's edge at x = 1 runs through O2's interior: no side of it is one grid's alone."""
    index = world_index(150_000)
    y = np.linspace(0.05, 0.95, 200)
    lon = np.repeat(np.r_[at(*OVERLAP, 1, 0)[0] - 1e-3 * U, at(*OVERLAP, 1, 0)[0] + 1e-3 * U], 200)
    lat = np.tile(OVERLAP[1] + y * U, 2)
    codes, where = index._cell_codes(lon, lat)
    assert (codes == _MIXED).all()
    assert (index._side_of_edge(lon, lat, where) == _MIXED).all()
    bulk = index.locate_many(lon, lat)
    keys = index.keys_for(bulk.position)
    assert set(keys[:200]) == {"O2"} and set(keys[200:]) == {"O1"}  # O1 < O2 where both cover
    assert set(bulk.method_names()) == {INSIDE}


def test_default_workers_follow_the_input_size():
    assert grid_index.default_workers(grid_index.PARALLEL_MIN_POINTS - 1) == 1
    many = grid_index.default_workers(grid_index.PARALLEL_MIN_POINTS)
    assert 1 <= many <= grid_index.MAX_DEFAULT_WORKERS
    assert many == min(len(os.sched_getaffinity(0)), grid_index.MAX_DEFAULT_WORKERS)


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_bad_workers_are_refused(workers):
    with pytest.raises(ValueError, match="workers"):
        world_index().locate_many([112.86], [36.84], workers=workers)


@functools.cache
def _span_case():
    geoms, keys = jittered_grids(64, seed=21)
    index = GridIndex(geoms, keys, cell_target=200_000)
    lon, lat = awkward_points(geoms, 1500, seed=4)
    return index, lon, lat, index.locate_many(lon, lat, workers=1)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 2000), st.integers(1, 4), st.integers(0, 4500), st.integers(0, 4500))
def test_property_spans_and_threads_give_the_same_rows(span, workers, start, stop):
    """Any span size, any number of threads, any slice of the input: the very same rows."""
    index, lon, lat, whole = _span_case()
    with mock.patch.object(grid_index, "SPAN_POINTS", span):
        got = index.locate_many(lon[start:stop], lat[start:stop], workers=workers)
    for name in ("position", "method", "distance_m"):
        np.testing.assert_array_equal(getattr(got, name), getattr(whole, name)[start:stop])


def test_threads_share_one_index_safely():
    """Two spans per thread on a fresh index (prepared geometries untouched by any query yet),
    many times over: the answers never change."""
    geoms, keys = jittered_grids(36, seed=8)
    lon, lat = awkward_points(geoms, 3000, seed=9)
    expected = GridIndex(geoms, keys).locate_many(lon, lat, workers=1)
    for _ in range(5):
        index = GridIndex(geoms, keys)
        with mock.patch.object(grid_index, "SPAN_POINTS", 1000):
            got = index.locate_many(lon, lat, workers=4)
        np.testing.assert_array_equal(got.position, expected.position)
        np.testing.assert_array_equal(got.method, expected.method)
        np.testing.assert_array_equal(got.distance_m, expected.distance_m)


# ---- properties ---------------------------------------------------------------------------------


def _lattice_line_points(block, vertical: bool, line: int, t: float) -> tuple[float, float]:
    """A point on a lattice line of a hand-made block: on an edge there, exactly."""
    i, j = (line, 3 * t) if vertical else (3 * t, line)
    return at(*block, i, j)


@functools.cache
def _world_vertices() -> list[tuple[float, float]]:
    return [tuple(v) for v in shapely.get_coordinates(np.array(world()[0], dtype=object)).tolist()]


def world_points():
    """Points anywhere near the world, with extra weight where the rules meet."""
    x0, y0, x1, y1 = shapely.total_bounds(np.array(world()[0], dtype=object))
    anywhere = st.tuples(st.floats(x0 - 0.002, x1 + 0.002), st.floats(y0 - 0.002, y1 + 0.002))
    vertex = st.sampled_from(_world_vertices())
    on_lattice = st.builds(
        _lattice_line_points,
        st.sampled_from([QUAD, ENCLAVE, MULTI, OVERLAP, WEDGE, LONE]),
        st.booleans(),
        st.integers(0, 4),
        st.floats(0, 1),
    )
    nudge = st.sampled_from(NUDGES)
    nudged = st.builds(lambda v, dx, dy: (v[0] + dx, v[1] + dy), vertex, nudge, nudge)
    return st.one_of(anywhere, vertex, on_lattice, nudged)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(world_points(), min_size=1, max_size=40))
def test_property_every_path_agrees_with_brute_force(points):
    lon, lat = (np.array(c) for c in zip(*points, strict=True))
    brute = world_brute()
    index = world_index()
    bulk = index.locate_many(lon, lat)
    exact = index.locate_many(lon, lat, use_cells=False)
    for i, (x, y) in enumerate(points):
        expected = brute(x, y)
        assert_same(index.locate(x, y), expected)
        assert_same(index.locate(x, y, use_cells=False), expected)
        for b in (bulk, exact):
            got_key = index.keys_for(b.position[i])
            assert (got_key, METHODS[b.method[i]]) == expected[:2]


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.0, 10.0, 50.0, 200.0]))
def test_property_cell_path_never_disagrees_with_exact_path(seed, tolerance_m):
    geoms, keys = jittered_grids(36, seed=seed % 1000)
    index = GridIndex(geoms, keys, tolerance_m=tolerance_m, cell_target=50_000 + seed % 200_000)
    lon, lat = awkward_points(geoms, 1000, seed)
    fast, exact = index.locate_many(lon, lat), index.locate_many(lon, lat, use_cells=False)
    np.testing.assert_array_equal(fast.position, exact.position)
    np.testing.assert_array_equal(fast.method, exact.method)
    np.testing.assert_array_equal(fast.distance_m, exact.distance_m)


# ---- input checks -------------------------------------------------------------------------------


def test_from_geodataframe_in_wgs84():
    geoms, keys = world()
    gdf = gpd.GeoDataFrame({"code": keys}, geometry=list(geoms), crs="EPSG:4326")
    index = GridIndex.from_geodataframe(gdf, version=3, tolerance_m=20.0)
    assert (len(index), index.version, index.tolerance_m) == (len(keys), 3, 20.0)
    assert key_of(index, *at(*QUAD, 1, 1)) == ("Q1", BOUNDARY)
    assert index.metric_crs == "EPSG:4547"


@pytest.mark.parametrize("crs", ["EPSG:3857", "EPSG:4547", None])
def test_from_geodataframe_names_a_wrong_crs(crs):
    gdf = gpd.GeoDataFrame({"code": ["A"]}, geometry=[cell(*QUAD, 0, 0, 1, 1)], crs=crs)
    with pytest.raises(ValueError, match=str(crs).replace("EPSG:", "") if crs else "None"):
        GridIndex.from_geodataframe(gdf)


def test_from_geodataframe_needs_the_key_column():
    gdf = gpd.GeoDataFrame({"name": ["A"]}, geometry=[cell(*QUAD, 0, 0, 1, 1)], crs="EPSG:4326")
    with pytest.raises(ValueError, match="'code'"):
        GridIndex.from_geodataframe(gdf)


@pytest.mark.parametrize(
    "geometry, message",
    [
        (Polygon([(112.86, 36.84), (112.87, 36.85), (112.87, 36.84), (112.86, 36.85)]), "invalid"),
        (Point(112.86, 36.84), "not a \\(multi\\)polygon"),
        (Polygon(), "empty"),
        (shapely.box(500_000, 4_000_000, 500_100, 4_000_100), "lon/lat"),
    ],
)
def test_bad_grids_are_refused_by_key(geometry, message):
    with pytest.raises(InvalidGeometry, match=message) as caught:
        GridIndex([cell(*QUAD, 0, 0, 1, 1), geometry], ["fine", "broken-7"])
    assert "broken-7" in str(caught.value)


def test_bad_arguments():
    square = cell(*QUAD, 0, 0, 1, 1)
    with pytest.raises(ValueError, match="unique"):
        GridIndex([square, square], ["A", "A"])
    with pytest.raises(ValueError, match="2 geometries but 1 keys"):
        GridIndex([square, square], ["A"])
    with pytest.raises(ValueError, match="tolerance"):
        GridIndex([square], ["A"], tolerance_m=-1)
    with pytest.raises(ValueError, match="differ in length"):
        world_index().locate_many([1.0, 2.0], [1.0])


@pytest.mark.parametrize("lon, lat", [(math.nan, 36.84), (112.86, math.inf), (-math.inf, 0.0)])
def test_non_finite_coordinates_are_refused(lon, lat):
    with pytest.raises(InvalidCoordinates):
        world_index().locate(lon, lat)
    with pytest.raises(InvalidCoordinates, match="row 1"):
        world_index().locate_many([112.86, lon], [36.84, lat])


def test_assignment_is_immutable_and_inside_answers_are_shared():
    a = world_index().locate(*at(*QUAD, 0.5, 0.5))
    with pytest.raises(AttributeError):
        a.key = "other"  # type: ignore[misc]
    assert a is world_index().locate(*at(*QUAD, 0.6, 0.6))
