"""Point -> grid assignment: GridIndex against geopandas.sjoin and a PostGIS join, in one run.

    .venv/bin/python bench/assign.py [--points N] [--grids 14,1000,10000] [--database-url URL]

For each grid count, ``data.generator.generate_demo`` (seed ``SEED``) draws the grids (14 is the
太东社区 demo, any other count the city layout) and the points are drawn once (seeded per grid
count):

* ``1 - ISSUE_SHARE`` uniform over the grids' bounding box: interior points, and points outside
  every grid (near the ragged edge of the district, and beyond tolerance);
* ``ISSUE_SHARE`` sampled from the generator's issue points, which lie inside grids, many a few
  metres in from a grid edge (the kerb), so the geometry path of the index gets its share. The
  demo's issues are costly to draw, so there at most ``DEMO_ISSUES`` are drawn and sampled with
  replacement.

The three bulk paths see the same points and the same grids:

* ``index``: ``GridIndex.locate_many(lon, lat)`` on float arrays (its build is timed apart), as
  a caller gets it (its default: threads over every CPU for a million points), and again with
  ``workers=1`` (one thread), so the gain of each is visible; both must give the same rows;
* ``sjoin``: ``geopandas.sjoin(points, grids, predicate="within")``, the points GeoDataFrame built
  beforehand, the grids' spatial index warm;
* ``PostGIS``: the join ``SELECT p.id, g.id FROM bench.points p JOIN bench.grids g ON
  ST_Contains(g.geom, p.geom)`` run as ``CREATE TEMP TABLE ... AS``, so the result stays on the
  server and no client transfer is counted. Tables are COPYed as hex EWKB (bit-exact
  coordinates) into the schema ``bench``, both GiST-indexed, VACUUM ANALYZEd; server settings as
  they are (parallel workers included). Two forms of the same join are timed: *as written* (the
  planner's choice, which at 1,000+ grids walks the points and probes the grids' index per point)
  and *grids outer* (a LATERAL subquery per grid over the points' index, where PostGIS reuses the
  grid's prepared geometry). The ratio is taken against the faster one, to be fair to PostGIS.

Every path is run once to warm up and then timed ``--repeats`` times; the best time counts
(PostGIS as written, up to ten times slower, is timed once, after the other form warmed the
tables). The ratios are the other path's time over the index's time.

Single-point latency: ``to_wgs84`` + ``GridIndex.locate`` per point, with WGS84 input and with
GCJ-02 input (the points shifted by ``from_wgs84`` beforehand), over ``--lookups`` points; and one
prepared ``SELECT id FROM bench.grids WHERE ST_Contains(...)`` per point over a persistent psycopg
connection, over ``--pg-lookups`` points.

Agreement, on every point: where the index says ``inside``, PostGIS's ST_Contains grid must be
the same grid; where it says ``nearest`` or ``unassigned``, PostGIS must find no grid.
``boundary`` points (on an edge or vertex, where ST_Contains is false for every grid) are left
out and counted. The last line is the summary for the largest grid count, normally 10,000:

    assign: vs_postgis=<x> vs_sjoin=<x> lookup_median_us=<µs> workers=<n> vs_postgis_1t=<x> ...

(ratios for ``locate_many`` as called by default, on ``workers`` threads; ``_1t`` for one thread).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import psycopg
import shapely

from data.generator import DEMO_GRIDS, DEMO_ISSUES, generate_demo
from gis.geo.crs import from_wgs84, to_wgs84
from gis.geo.grid_index import BOUNDARY, INSIDE, METHODS, GridIndex, default_workers

SEED = 20221
GRID_COUNTS = (14, 1_000, 10_000)
N_POINTS = 1_000_000
ISSUE_SHARE = 0.2
LOOKUPS = 100_000
PG_LOOKUPS = 2_000
REPEATS = 3
SCHEMA = "bench"

# The join as a user writes it; the planner picks the plan (at 1,000+ grids: points outer, a GiST
# probe of the grids per point, ST_Contains against a freshly read polygon each time).
JOIN_SQL = (
    f"SELECT p.id AS pid, g.id AS gid FROM {SCHEMA}.points p "
    f"JOIN {SCHEMA}.grids g ON ST_Contains(g.geom, p.geom)"
)
# The same join with the grids outer (OFFSET 0 keeps the planner from flattening it): each grid's
# points come from the points' GiST index and ST_Contains reuses the grid's cached prepared
# geometry. Several times faster than the planner's choice at 1,000+ grids, so the ratio is
# taken against the faster of the two.
LATERAL_SQL = (
    f"SELECT p.id AS pid, g.id AS gid FROM {SCHEMA}.grids g CROSS JOIN LATERAL "
    f"(SELECT p.id FROM {SCHEMA}.points p WHERE ST_Contains(g.geom, p.geom) OFFSET 0) p"
)
LOOKUP_SQL = (
    f"SELECT id FROM {SCHEMA}.grids WHERE ST_Contains(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326))"
)
_INSIDE, _BOUNDARY = METHODS.index(INSIDE), METHODS.index(BOUNDARY)


# ---- data ---------------------------------------------------------------------------------------


@dataclass
class Case:
    """One grid count: the grids, and the points every path is given."""

    n_grids: int
    grids: gpd.GeoDataFrame  # code + geometry, EPSG:4326, positions 0..n-1
    lon: np.ndarray
    lat: np.ndarray
    n_from_issues: int


def make_case(n_grids: int, n_points: int) -> Case:
    """Grids from the generator, points uniform over their box plus sampled issue points."""
    n_issue_pts = round(n_points * ISSUE_SHARE)
    n_draw = min(n_issue_pts, DEMO_ISSUES) if n_grids == DEMO_GRIDS else n_issue_pts
    data = generate_demo(SEED, grids=n_grids, issues=n_draw)
    grids = data.grids[["code", "geometry"]].reset_index(drop=True)
    rng = np.random.default_rng([SEED, n_grids])
    x0, y0, x1, y1 = grids.total_bounds
    n_uniform = n_points - n_issue_pts
    lon = rng.uniform(x0, x1, n_uniform)
    lat = rng.uniform(y0, y1, n_uniform)
    if n_issue_pts:
        issue_xy = shapely.get_coordinates(data.issues.geometry.values)
        pick = rng.choice(len(issue_xy), n_issue_pts, replace=len(issue_xy) < n_issue_pts)
        lon = np.concatenate([lon, issue_xy[pick, 0]])
        lat = np.concatenate([lat, issue_xy[pick, 1]])
    order = rng.permutation(n_points)  # mixed, so any prefix (the lookup sample) has both kinds
    return Case(n_grids, grids, lon[order], lat[order], n_issue_pts)


# ---- timing -------------------------------------------------------------------------------------


def best_of(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Run once to warm up, then ``repeats`` timed runs: (best seconds, last result)."""
    result = fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def latency_us(samples_ns: np.ndarray) -> tuple[float, float]:
    """(median, 99th percentile) in microseconds."""
    return float(np.median(samples_ns)) / 1e3, float(np.percentile(samples_ns, 99)) / 1e3


def index_lookup_ns(index: GridIndex, lon: np.ndarray, lat: np.ndarray, crs: str) -> np.ndarray:
    """Per-point nanoseconds of ``to_wgs84`` + ``index.locate``: what the service does per report."""
    clock = time.perf_counter_ns
    out = np.empty(len(lon), np.int64)
    for i, (x, y) in enumerate(zip(lon.tolist(), lat.tolist(), strict=True)):
        start = clock()
        wx, wy = to_wgs84(x, y, crs)
        index.locate(wx, wy)
        out[i] = clock() - start
    return out


# ---- PostGIS ------------------------------------------------------------------------------------


def libpq_url(url: str) -> str:
    """psycopg wants a libpq URL; settings may carry SQLAlchemy's ``+psycopg`` driver tag."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+')[0]}{sep}{rest}" if sep else url


def _copy_rows(conn: psycopg.Connection, table: str, ids: np.ndarray, geoms: np.ndarray) -> None:
    """COPY (id, geom) rows, geometries as hex EWKB so PostGIS gets the very same doubles."""
    hexes = shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True)
    chunk = 200_000
    with conn.cursor() as cur, cur.copy(f"COPY {SCHEMA}.{table} (id, geom) FROM STDIN") as copy:
        for start in range(0, len(ids), chunk):
            rows = zip(
                ids[start : start + chunk].tolist(),
                hexes[start : start + chunk].tolist(),
                strict=True,
            )
            copy.write("".join(f"{i}\t{h}\n" for i, h in rows))


def load_postgis(conn: psycopg.Connection, case: Case) -> float:
    """(Re)create schema ``bench`` with the grids (id = position + 1) and points (id = row)."""
    start = time.perf_counter()
    conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    conn.execute(f"CREATE SCHEMA {SCHEMA}")
    conn.execute(
        f"CREATE TABLE {SCHEMA}.grids (id integer PRIMARY KEY, "
        "geom geometry(MultiPolygon, 4326) NOT NULL)"
    )
    conn.execute(
        f"CREATE TABLE {SCHEMA}.points (id integer NOT NULL, geom geometry(Point, 4326) NOT NULL)"
    )
    n = len(case.lon)
    _copy_rows(conn, "grids", np.arange(1, len(case.grids) + 1), case.grids.geometry.values)
    _copy_rows(conn, "points", np.arange(n), shapely.points(case.lon, case.lat))
    conn.execute(f"CREATE INDEX ON {SCHEMA}.grids USING gist (geom)")
    conn.execute(f"CREATE INDEX ON {SCHEMA}.points USING gist (geom)")
    conn.execute(f"VACUUM ANALYZE {SCHEMA}.grids")
    conn.execute(f"VACUUM ANALYZE {SCHEMA}.points")
    return time.perf_counter() - start


def postgis_join(conn: psycopg.Connection, table: str, sql: str) -> None:
    """A join materialised on the server: ``CREATE TEMP TABLE <table> AS <sql>``."""
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(f"CREATE TEMP TABLE {table} AS {sql}")


def fetch_pairs(conn: psycopg.Connection, table: str) -> tuple[np.ndarray, np.ndarray]:
    """A materialised join's (point id, grid id) pairs, streamed with COPY, sorted by point."""
    with conn.cursor() as cur, cur.copy(f"COPY {table} (pid, gid) TO STDOUT") as copy:
        raw = b"".join(bytes(block) for block in copy)
    conn.execute(f"DROP TABLE {table}")
    pairs = np.array(raw.split(), dtype=np.int64).reshape(-1, 2)
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    return pairs[:, 0], pairs[:, 1]


def postgis_lookup_ns(conn: psycopg.Connection, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Per-point nanoseconds of one prepared ST_Contains query and fetching its rows."""
    clock = time.perf_counter_ns
    out = np.empty(len(lon), np.int64)
    with conn.cursor() as cur:
        for x, y in zip(lon[:50].tolist(), lat[:50].tolist(), strict=True):  # prepare, warm
            cur.execute(LOOKUP_SQL, (x, y), prepare=True)
            cur.fetchall()
        for i, (x, y) in enumerate(zip(lon.tolist(), lat.tolist(), strict=True)):
            start = clock()
            cur.execute(LOOKUP_SQL, (x, y), prepare=True)
            cur.fetchall()
            out[i] = clock() - start
    return out


def join_plan(conn: psycopg.Connection, sql: str) -> str:
    """The planner's shape of a join, one line (e.g. parallel workers, which index)."""
    rows = conn.execute(f"EXPLAIN (COSTS OFF) {sql}").fetchall()
    return " / ".join(r[0].strip().removeprefix("->  ") for r in rows)


# ---- agreement ----------------------------------------------------------------------------------


def disagreements(method: np.ndarray, position: np.ndarray, pid, gid) -> dict[str, int]:
    """Compare the index with ST_Contains pairs (point id, grid id = position + 1)."""
    n = len(method)
    hits = np.bincount(pid, minlength=n)
    pg_pos = np.full(n, -1, np.int64)
    pg_pos[pid] = gid - 1
    inside = method == _INSIDE
    boundary = method == _BOUNDARY
    outside = ~(inside | boundary)  # nearest or unassigned: covered by no grid
    return {
        "inside_other_grid": int(np.count_nonzero(inside & (pg_pos != position))),
        "outside_but_contained": int(np.count_nonzero(outside & (pg_pos >= 0))),
        "several_pg_grids": int(np.count_nonzero(~boundary & (hits > 1))),
        "boundary_skipped": int(np.count_nonzero(boundary)),
    }


# ---- one grid count -----------------------------------------------------------------------------


@dataclass
class Result:
    n_grids: int
    n_points: int
    build_s: float = 0.0
    index_s: float = 0.0  # locate_many as called by default (threads)
    index_1t_s: float = 0.0  # locate_many(workers=1)
    workers: int = 1
    threads_disagree: int = 0
    sjoin_s: float = 0.0
    pg_lateral_s: float = 0.0
    pg_written_s: float = 0.0
    pg_fetch_s: float = 0.0
    forms_differ: bool = False
    pg_load_s: float = 0.0
    lookup: dict[str, tuple[float, float]] = field(default_factory=dict)
    agreement: dict[str, int] = field(default_factory=dict)
    sjoin_disagree: int = 0
    methods: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def vs_sjoin(self) -> float:
        return self.sjoin_s / self.index_s

    @property
    def pg_s(self) -> float:
        """The faster PostGIS form: the one the ratio is taken against."""
        return min(self.pg_lateral_s, self.pg_written_s)

    @property
    def vs_postgis(self) -> float:
        return self.pg_s / self.index_s

    @property
    def vs_postgis_1t(self) -> float:
        return self.pg_s / self.index_1t_s

    @property
    def vs_sjoin_1t(self) -> float:
        return self.sjoin_s / self.index_1t_s

    @property
    def disagree(self) -> int:
        a = self.agreement
        return a["inside_other_grid"] + a["outside_but_contained"] + a["several_pg_grids"]


def time_sjoin(case: Case, repeats: int) -> tuple[float, np.ndarray]:
    """Best time of ``sjoin(points, grids, predicate="within")``, and each point's grid (or -1)."""
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(case.lon, case.lat), crs="EPSG:4326")
    seconds, joined = best_of(lambda: gpd.sjoin(points, case.grids, predicate="within"), repeats)
    position = np.full(len(points), -1, np.int64)
    position[joined.index.to_numpy()] = joined["index_right"].to_numpy()
    return seconds, position


def run_case(conn: psycopg.Connection, n_grids: int, args) -> Result:
    """Every measurement for one grid count, on the same grids and points."""
    start = time.perf_counter()
    case = make_case(n_grids, args.points)
    r = Result(n_grids, len(case.lon))
    r.notes.append(
        f"data: {time.perf_counter() - start:.1f}s to generate; "
        f"{r.n_points - case.n_from_issues:,} uniform + {case.n_from_issues:,} issue points"
    )
    index, bulk = run_index(case, r, args.repeats)
    r.sjoin_s, sj_pos = time_sjoin(case, args.repeats)
    idx_pos = np.where(bulk.method == _INSIDE, bulk.position, -1)
    r.sjoin_disagree = int(np.count_nonzero((bulk.method != _BOUNDARY) & (sj_pos != idx_pos)))
    pid, gid = run_postgis(conn, case, r, args.repeats)
    r.agreement = disagreements(bulk.method, bulk.position, pid, gid)
    run_lookups(conn, index, case, r, args)
    return r


def run_index(case: Case, r: Result, repeats: int):
    """Build the index (timed once) and time ``locate_many``; returns both."""
    start = time.perf_counter()
    index = GridIndex(case.grids.geometry.values, case.grids["code"])
    r.build_s = time.perf_counter() - start
    r.index_1t_s, one = best_of(
        lambda: index.locate_many(case.lon, case.lat, workers=1), repeats
    )
    r.index_s, bulk = best_of(lambda: index.locate_many(case.lon, case.lat), repeats)
    r.workers = default_workers(len(case.lon))
    r.threads_disagree = rows_differ(one, bulk)
    r.methods = {m: int(np.count_nonzero(bulk.method == k)) for k, m in enumerate(METHODS)}
    stats = index.cell_stats()
    r.notes.append(
        f"index: {stats['cells']:,} cells ({stats['mbytes']:.0f} MB), {stats['mixed']:.1%} mixed; "
        + ", ".join(f"{m} {c:,}" for m, c in r.methods.items())
    )
    return index, bulk


def rows_differ(a, b) -> int:
    """Rows where two BulkAssignments differ in grid, method or distance (NaN equals NaN)."""
    da, db = a.distance_m, b.distance_m
    same_distance = (da == db) | (np.isnan(da) & np.isnan(db))
    differ = (a.position != b.position) | (a.method != b.method) | ~same_distance
    return int(np.count_nonzero(differ))


def run_postgis(conn: psycopg.Connection, case: Case, r: Result, repeats: int):
    """Load the tables, time both join forms, and return the join's (point id, grid id) pairs."""
    r.pg_load_s = load_postgis(conn, case)
    r.notes.append(f"PostGIS: loaded in {r.pg_load_s:.1f}s")
    r.notes.append(f"  as written: {join_plan(conn, JOIN_SQL)}")
    r.notes.append(f"  grids outer: {join_plan(conn, LATERAL_SQL)}")
    # the grids-outer form's warm-up reads both tables (heap, points' GiST) for both forms; the
    # as-written form, up to ten times slower, is then timed once
    r.pg_lateral_s, _ = best_of(lambda: postgis_join(conn, "join_lateral", LATERAL_SQL), repeats)
    start = time.perf_counter()
    postgis_join(conn, "join_written", JOIN_SQL)
    r.pg_written_s = time.perf_counter() - start
    start = time.perf_counter()
    pid, gid = fetch_pairs(conn, "join_lateral")
    r.pg_fetch_s = time.perf_counter() - start
    pid_w, gid_w = fetch_pairs(conn, "join_written")
    r.forms_differ = not (np.array_equal(pid, pid_w) and np.array_equal(gid, gid_w))
    return pid, gid


def run_lookups(conn: psycopg.Connection, index: GridIndex, case: Case, r: Result, args) -> None:
    """Single-point latency: the index with WGS84 and GCJ-02 input, and one query per point."""
    lon, lat = case.lon[: args.lookups], case.lat[: args.lookups]
    gcj_lon, gcj_lat = from_wgs84(lon, lat, "gcj02")
    r.lookup["wgs84"] = latency_us(index_lookup_ns(index, lon, lat, "wgs84"))
    r.lookup["gcj02"] = latency_us(index_lookup_ns(index, gcj_lon, gcj_lat, "gcj02"))
    m = args.pg_lookups
    r.lookup["postgis"] = latency_us(postgis_lookup_ns(conn, case.lon[:m], case.lat[:m]))


# ---- report -------------------------------------------------------------------------------------


def print_tables(results: list[Result], args) -> None:
    n = results[0].n_points if results else args.points
    print()
    workers = max((r.workers for r in results), default=1)
    print(
        f"Bulk: {n:,} points; rates in points/s; index (1 thread, and {workers} threads as "
        f"locate_many does by default), sjoin and PostGIS (grids outer) best of {args.repeats} "
        "after a warm-up, PostGIS as written once (warm)"
    )
    print(
        f"{'grids':>6} {'build s':>8} {'index 1t s':>10} {f'index {workers}t s':>10} "
        f"{'sjoin s':>8} {'PostGIS s':>10} {'as written':>10} {'index/s':>9} {'sjoin/s':>9} "
        f"{'PostGIS/s':>9} {'vs_sjoin 1t/' + str(workers) + 't':>15} "
        f"{'vs_postgis 1t/' + str(workers) + 't':>17} {'vs_written':>10} {'lookup µs':>9}"
    )
    for r in results:
        print(
            f"{r.n_grids:>6,} {r.build_s:8.2f} {r.index_1t_s:10.3f} {r.index_s:10.3f} "
            f"{r.sjoin_s:8.3f} {r.pg_s:10.3f} {r.pg_written_s:10.3f} {_rate(n, r.index_s):>9} "
            f"{_rate(n, r.sjoin_s):>9} {_rate(n, r.pg_s):>9} "
            f"{f'{r.vs_sjoin_1t:.1f}x / {r.vs_sjoin:.1f}x':>15} "
            f"{f'{r.vs_postgis_1t:.1f}x / {r.vs_postgis:.1f}x':>17} "
            f"{r.pg_written_s / r.index_s:9.1f}x {r.lookup['wgs84'][0]:9.2f}"
        )
    print(
        "PostGIS s: the faster of the two join forms (CREATE TEMP TABLE AS, result left on the "
        "server); as written: the planner's plan for the plain JOIN"
    )
    print()
    print(
        f"Single point, median / p99 µs: index = to_wgs84 + GridIndex.locate over "
        f"{min(args.lookups, n):,} points; PostGIS = one prepared query over "
        f"{min(args.pg_lookups, n):,}"
    )
    print(
        f"{'grids':>6} {'index wgs84':>16} {'index gcj02':>16} {'PostGIS query':>16} {'ratio':>7}"
    )
    for r in results:
        w, g, p = r.lookup["wgs84"], r.lookup["gcj02"], r.lookup["postgis"]
        print(
            f"{r.n_grids:>6,} {w[0]:7.2f} / {w[1]:6.1f} {g[0]:7.2f} / {g[1]:6.1f} "
            f"{p[0]:7.1f} / {p[1]:6.1f} {p[0] / w[0]:6.0f}x"
        )
    print()
    print("Agreement with PostGIS ST_Contains (points on a boundary left out):")
    print(
        f"{'grids':>6} {'boundary':>9} {'inside, other grid':>19} {'outside, PG contains':>21} "
        f"{'several PG grids':>17} {'disagreements':>14} {'sjoin vs index':>15} "
        f"{'PG forms equal':>15} {'threads vs 1':>12} {'PG fetch s':>10}"
    )
    for r in results:
        a = r.agreement
        print(
            f"{r.n_grids:>6,} {a['boundary_skipped']:>9,} {a['inside_other_grid']:>19,} "
            f"{a['outside_but_contained']:>21,} {a['several_pg_grids']:>17,} "
            f"{r.disagree:>14,} {r.sjoin_disagree:>15,} {'no' if r.forms_differ else 'yes':>15} "
            f"{r.threads_disagree:>12,} {r.pg_fetch_s:10.2f}"
        )


def _rate(n: int, seconds: float) -> str:
    rate = n / seconds if seconds > 0 else float("inf")
    return f"{rate / 1e6:.2f}M" if rate >= 1e6 else f"{rate / 1e3:.0f}k"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--points", type=int, default=N_POINTS, help="points per grid count")
    p.add_argument(
        "--grids",
        type=lambda s: [int(v) for v in s.split(",") if v.strip()],
        default=list(GRID_COUNTS),
        help="comma-separated grid counts (default 14,1000,10000)",
    )
    p.add_argument("--database-url", help="PostGIS URL (default: DATABASE_URL or `gridmap db`)")
    p.add_argument("--repeats", type=int, default=REPEATS, help="timed runs after the warm-up")
    p.add_argument("--lookups", type=int, default=LOOKUPS, help="single-point sample, index")
    p.add_argument("--pg-lookups", type=int, default=PG_LOOKUPS, help="sample for PostGIS")
    args = p.parse_args(argv)
    if (
        not args.grids
        or min(args.points, args.repeats, args.lookups, args.pg_lookups, *args.grids) < 1
    ):
        p.error("--points, --grids, --repeats and the lookup samples need positive values")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    url = args.database_url
    if not url:
        from api.settings import Settings

        url = Settings().resolved_database_url()
    load_before = os.getloadavg()
    started = time.perf_counter()
    results = []
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        print(
            conn.execute("SELECT version()").fetchone()[0].split(",")[0],
            "/ PostGIS",
            conn.execute("SELECT postgis_lib_version()").fetchone()[0],
            "/ max_parallel_workers_per_gather",
            conn.execute("SHOW max_parallel_workers_per_gather").fetchone()[0],
            f"/ {os.cpu_count()} CPUs",
        )
        try:
            for n_grids in args.grids:
                print(f"-- {n_grids:,} grids", flush=True)
                r = run_case(conn, n_grids, args)
                for note in r.notes:
                    print("   " + note, flush=True)
                results.append(r)
        finally:
            conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    print_tables(results, args)
    load_after = os.getloadavg()
    print()
    print(
        f"load average (1/5/15 min) before {_load(load_before)}, after {_load(load_after)}; "
        f"total {time.perf_counter() - started:.0f}s"
    )
    total_disagree = sum(r.disagree for r in results)
    if total_disagree:
        print(f"WARNING: {total_disagree} points where the index disagrees with PostGIS")
    sjoin_off = sum(r.sjoin_disagree for r in results)
    if sjoin_off:
        print(f"WARNING: {sjoin_off} points where geopandas.sjoin disagrees with the index")
        total_disagree += sjoin_off
    threads_off = sum(r.threads_disagree for r in results)
    if threads_off:
        print(f"WARNING: {threads_off} rows where locate_many on threads differs from one thread")
        total_disagree += threads_off
    if any(r.forms_differ for r in results):
        print("WARNING: the two PostGIS join forms returned different pairs")
        total_disagree += 1
    last = max(results, key=lambda r: r.n_grids)
    print(
        f"assign: vs_postgis={last.vs_postgis:.1f} vs_sjoin={last.vs_sjoin:.1f} "
        f"lookup_median_us={last.lookup['wgs84'][0]:.2f} workers={last.workers} "
        f"vs_postgis_1t={last.vs_postgis_1t:.1f} vs_sjoin_1t={last.vs_sjoin_1t:.1f}"
    )
    return 1 if total_disagree else 0


def _load(avg: tuple[float, float, float]) -> str:
    return "/".join(f"{v:.2f}" for v in avg)


if __name__ == "__main__":
    raise SystemExit(main())
