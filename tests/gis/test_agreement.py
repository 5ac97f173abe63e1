"""GridIndex agrees with PostGIS on a million points (the grid-assignment
rules of docs/ARCHITECTURE.md): the database is the truth.

Grids come from the generator: 1,000,000 points against a city of 300 grids, 250,000 against the
14 grids of the 太东社区 demo. Points are seeded: 90% uniform over the grids' box padded by 2%
(inside, near and far outside), 10% scattered within 1e-9 .. 1e-5 degrees of grid vertices, where
the cell table hands over to geometry. Both go into tables in a throwaway schema of the test
PostGIS as hex EWKB, so the database sees the very same doubles.

* Every point the index does not call ``boundary`` gets the grid ST_Contains gives it, and
  points the index calls ``nearest`` or ``unassigned`` lie in no grid according to PostGIS.
* Points constructed on boundaries (vertices two grids share, and midpoints of the edges they
  share, kept only when the float midpoint is the exact one and so exactly on the edge) are
  ``boundary`` for the index, ST_Contains-false for every grid and ST_Covers-true for the grid the
  index chose, which is the covering grid with the smallest code.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import psycopg
import pytest
import shapely

from data.generator import generate_demo
from gis.geo.grid_index import BOUNDARY, INSIDE, METHODS, GridIndex

SEED = 20221
LAYOUTS = {"city": (300, 1_000_000), "demo": (14, 250_000)}  # grids, points
NEAR_VERTEX_SHARE = 0.1
MAX_BOUNDARY_POINTS = 3_000  # of each kind, per layout
_INSIDE, _BOUNDARY = METHODS.index(INSIDE), METHODS.index(BOUNDARY)


# ---- helpers ------------------------------------------------------------------------------------


@dataclass
class Layout:
    name: str
    codes: list[str]
    geoms: np.ndarray
    index: GridIndex
    lon: np.ndarray
    lat: np.ndarray


def make_layout(name: str) -> Layout:
    n_grids, n_points = LAYOUTS[name]
    grids = generate_demo(SEED, grids=n_grids, issues=0).grids
    geoms = grids.geometry.to_numpy()
    codes = grids["code"].astype(str).tolist()
    assert len(geoms) == n_grids
    rng = np.random.default_rng([SEED, n_grids, 1])
    x0, y0, x1, y1 = shapely.total_bounds(geoms)
    pad_x, pad_y = 0.02 * (x1 - x0), 0.02 * (y1 - y0)
    n_near = round(n_points * NEAR_VERTEX_SHARE)
    n_uniform = n_points - n_near
    vertices = np.unique(shapely.get_coordinates(geoms), axis=0)
    pick = rng.integers(0, len(vertices), n_near)
    scale = 10.0 ** rng.uniform(-9, -5, (n_near, 1))  # degrees: 0.1 mm .. 1 m
    near = vertices[pick] + scale * rng.uniform(-1, 1, (n_near, 2))
    lon = np.concatenate([rng.uniform(x0 - pad_x, x1 + pad_x, n_uniform), near[:, 0]])
    lat = np.concatenate([rng.uniform(y0 - pad_y, y1 + pad_y, n_uniform), near[:, 1]])
    return Layout(name, codes, geoms, GridIndex(geoms, codes), lon, lat)


def copy_geoms(conn: psycopg.Connection, table: str, geoms: np.ndarray) -> None:
    """COPY (id = row, geom) as hex EWKB: bit-exact coordinates, unlike text."""
    hexes = shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True).tolist()
    with conn.cursor() as cur, cur.copy(f"COPY {table} (id, geom) FROM STDIN") as copy:
        for start in range(0, len(hexes), 250_000):
            chunk = hexes[start : start + 250_000]
            copy.write("".join(f"{start + i}\t{h}\n" for i, h in enumerate(chunk)))


def copy_out_ints(conn: psycopg.Connection, sql: str) -> np.ndarray:
    """The integers a query returns, row by row, as one flat array (via COPY)."""
    with conn.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT") as copy:
        raw = b"".join(bytes(block) for block in copy)
    return np.array(raw.split(), dtype=np.int64)


def shared_vertices(geoms: np.ndarray) -> np.ndarray:
    """Vertices that belong to two or more grids."""
    xy, grid = shapely.get_coordinates(geoms, return_index=True)
    rows = np.unique(np.column_stack([xy, grid]), axis=0)  # each (vertex, grid) once
    uniq, counts = np.unique(rows[:, :2], axis=0, return_counts=True)
    return uniq[counts >= 2]


def shared_edge_midpoints(geoms: np.ndarray) -> np.ndarray:
    """Midpoints of edges two grids share, kept where the float midpoint is exactly on the edge."""
    parts, part_grid = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    xy, ring_of = shapely.get_coordinates(rings, return_index=True)
    a = np.flatnonzero(ring_of[1:] == ring_of[:-1])
    p, q = xy[a], xy[a + 1]
    swap = (p[:, 0] > q[:, 0]) | ((p[:, 0] == q[:, 0]) & (p[:, 1] > q[:, 1]))
    lo, hi = np.where(swap[:, None], q, p), np.where(swap[:, None], p, q)
    edge_grid = part_grid[ring_part[ring_of[a]]]
    rows = np.unique(np.column_stack([lo, hi, edge_grid]), axis=0)
    edges, counts = np.unique(rows[:, :4], axis=0, return_counts=True)
    out = []
    for ax, ay, bx, by in edges[counts >= 2].tolist():
        mx, my = (ax + bx) / 2, (ay + by) / 2
        exact_x = 2 * Fraction(mx) == Fraction(ax) + Fraction(bx)
        exact_y = 2 * Fraction(my) == Fraction(ay) + Fraction(by)
        if exact_x and exact_y:
            out.append((mx, my))
    return np.array(out, dtype=float).reshape(-1, 2)


# ---- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg(engine):
    """A psycopg connection to the test PostGIS, and a schema of its own dropped afterwards."""
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    schema = f"agreement_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        try:
            yield conn, schema
        finally:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(scope="module", params=sorted(LAYOUTS))
def loaded(request, pg):
    """A layout with its grids and points in PostGIS (tables <schema>.<layout>_grids/_points)."""
    conn, schema = pg
    layout = make_layout(request.param)
    grids, points = f"{schema}.{layout.name}_grids", f"{schema}.{layout.name}_points"
    conn.execute(
        f"CREATE TABLE {grids} (id integer PRIMARY KEY, geom geometry(MultiPolygon, 4326))"
    )
    conn.execute(f"CREATE TABLE {points} (id integer NOT NULL, geom geometry(Point, 4326))")
    copy_geoms(conn, grids, layout.geoms)
    copy_geoms(conn, points, shapely.points(layout.lon, layout.lat))
    conn.execute(f"CREATE INDEX ON {grids} USING gist (geom)")
    conn.execute(f"CREATE INDEX ON {points} USING gist (geom)")
    conn.execute(f"ANALYZE {grids}")
    conn.execute(f"ANALYZE {points}")
    return layout, conn, grids, points


# ---- tests --------------------------------------------------------------------------------------


def test_index_agrees_with_st_contains_off_boundaries(loaded):
    layout, conn, grids, points = loaded
    n = len(layout.lon)
    assert n == LAYOUTS[layout.name][1]
    bulk = layout.index.locate_many(layout.lon, layout.lat)
    pairs = copy_out_ints(
        conn, f"SELECT p.id, g.id FROM {points} p JOIN {grids} g ON ST_Contains(g.geom, p.geom)"
    ).reshape(-1, 2)
    hits = np.bincount(pairs[:, 0], minlength=n)
    pg_grid = np.full(n, -1, np.int64)
    pg_grid[pairs[:, 0]] = pairs[:, 1]

    boundary = bulk.method == _BOUNDARY
    expected = np.where(bulk.method == _INSIDE, bulk.position, -1)
    wrong = np.flatnonzero(~boundary & ((pg_grid != expected) | (hits > 1)))
    detail = [
        (
            float(layout.lon[i]),
            float(layout.lat[i]),
            bulk.method_names()[i],
            layout.index.keys_for(bulk.position[i]),
            pg_grid[i],
        )
        for i in wrong[:10]
    ]
    assert len(wrong) == 0, f"{len(wrong)} disagreements (lon, lat, method, key, pg row): {detail}"

    # the sample really exercises every rule and the geometry path
    counts = np.bincount(bulk.method, minlength=len(METHODS))
    assert counts[_INSIDE] > n // 2
    assert counts[METHODS.index("nearest")] > 1_000
    assert counts[METHODS.index("unassigned")] > 1_000
    assert boundary.sum() < 100  # random points hardly ever land exactly on an edge


def test_points_on_shared_boundaries_are_boundary_and_covered(loaded):
    layout, conn, grids, _ = loaded
    rng = np.random.default_rng([SEED, 2])
    kinds = {
        "vertex": shared_vertices(layout.geoms),
        "midpoint": shared_edge_midpoints(layout.geoms),
    }
    for kind, xy in kinds.items():
        assert len(xy) >= 10, f"too few shared {kind}s to test ({len(xy)})"
        if len(xy) > MAX_BOUNDARY_POINTS:
            xy = xy[rng.choice(len(xy), MAX_BOUNDARY_POINTS, replace=False)]
        kinds[kind] = xy
    xy = np.concatenate(list(kinds.values()))
    bulk = layout.index.locate_many(xy[:, 0], xy[:, 1])
    singles = [layout.index.locate(x, y) for x, y in xy.tolist()]
    not_boundary = np.flatnonzero(bulk.method != _BOUNDARY)
    assert len(not_boundary) == 0, f"not boundary: {xy[not_boundary[:10]].tolist()}"
    assert [a.method for a in singles] == [BOUNDARY] * len(xy)
    assert [a.position for a in singles] == bulk.position.tolist()

    table = f"{grids}_bpoints"
    conn.execute(f"CREATE TABLE {table} (id integer NOT NULL, geom geometry(Point, 4326))")
    copy_geoms(conn, table, shapely.points(xy))
    rows = copy_out_ints(
        conn,
        f"SELECT b.id, g.id, ST_Covers(g.geom, b.geom)::int, ST_Contains(g.geom, b.geom)::int "
        f"FROM {table} b JOIN {grids} g ON g.geom && b.geom",
    ).reshape(-1, 4)
    point, grid, covers, contains = rows.T
    assert not contains.any(), f"ST_Contains true for {rows[contains == 1][:10].tolist()}"
    covering: dict[int, set[int]] = {}
    for p, g in zip(point[covers == 1].tolist(), grid[covers == 1].tolist(), strict=True):
        covering.setdefault(p, set()).add(g)
    for i, pos in enumerate(bulk.position.tolist()):
        assert pos in covering.get(i, set()), f"{xy[i].tolist()}: chosen grid not ST_Covers"
        assert len(covering[i]) >= 2, f"{xy[i].tolist()}: covered by one grid only"
        chosen = min(covering[i], key=lambda g: layout.codes[g])
        assert pos == chosen, f"{xy[i].tolist()}: {layout.codes[pos]} not the smallest code"
