"""City-scale run on this machine: 10,000 grids and 10,000,000 issue points (SCALING.md).

    PYTHONPATH=. .venv/bin/python bench/scale.py                  # the figures in SCALING.md
    PYTHONPATH=. .venv/bin/python bench/scale.py --issues 2000000 --db-rows 200000   # quicker

What it measures, in one process, one step after the other:

1. data: ``generate_demo(grids=N, issues=1,000,000)`` (city layout); the issue points are then
   replayed ``issues / 1M`` times, each replay but the first moved by N(0, 20 m), 1% of it
   put on grid vertices and 0.2% anywhere in the city's box grown by 10%, so that 10M points
   hold every case: inside, on a boundary, near (within tolerance) and unassigned. Points are generated a million at a time.
2. the index: build time, cell table, resident memory it adds; the same at ``--province-grids``
   (default 100,000); the size of what a dask worker receives (a GridSpec) against the index.
3. in-process ``GridIndex.locate_many`` over all points, a million at a time.
4. dask: a LocalCluster of ``--workers`` processes (one thread each), ``assign_points_dask`` over
   the same points, partitions as generated and then partitioned along a Hilbert curve; the
   answers are checked row for row against step 3.
5. PostGIS: a throwaway private cluster, the grids and ``--db-rows`` issues loaded; the keyset
   read alone; then ``assign_stored_rows`` (in-process) and ``assign_stored_rows_dask`` (Hilbert
   and as-read partitions, on workers warmed by a first run): a first run in which every row
   gets a grid (COPY + UPDATE of every row), and a re-run in which none changes (read, tag,
   COPY, no-op UPDATE). Before each first run the table is untagged and CLUSTERed back into
   id order, so every first run starts from the layout of a fresh load.

The machine's load average is printed at the start and at the end: other work on a shared
machine moves every figure.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import pickle
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import shapely

from data.generator import generate_demo
from gis.geo.grid_index import METHODS, GridIndex
from gis.geotag.bulk import GridSpec, assign_points_dask, dask_client

CHUNK = 1_000_000
SEED = 20221
M_PER_DEG_LAT = 111_000.0


def rss_mb() -> float:
    """Resident memory of this process now, in MiB (Linux)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@contextmanager
def timed(label: str, results: dict):
    start = time.perf_counter()
    yield
    results[label] = time.perf_counter() - start


def say(text: str) -> None:
    print(text, flush=True)


# ---- 1. data ------------------------------------------------------------------------------------


class CityPoints:
    """``total`` points, a million at a time, replaying the generated issues (see module doc)."""

    def __init__(self, base_lon, base_lat, vertices, total: int):
        self.base_lon, self.base_lat, self.vertices, self.total = base_lon, base_lat, vertices, total
        self.m_lon = M_PER_DEG_LAT * math.cos(math.radians(float(np.mean(base_lat))))
        x0, y0, x1, y1 = vertices[:, 0].min(), vertices[:, 1].min(), *vertices.max(axis=0)
        dx, dy = (x1 - x0) * 0.1, (y1 - y0) * 0.1
        self.box = (x0 - dx, y0 - dy, x1 + dx, y1 + dy)  # the city and a margin around it

    def chunks(self):
        n = len(self.base_lon)
        for k, start in enumerate(range(0, self.total, n)):
            size = min(n, self.total - start)
            lon, lat = self.base_lon[:size].copy(), self.base_lat[:size].copy()
            if k:
                rng = np.random.default_rng([SEED, k])
                lon += rng.normal(0, 20, size) / self.m_lon
                lat += rng.normal(0, 20, size) / M_PER_DEG_LAT
                on_vertex = rng.random(size) < 0.01
                pick = rng.integers(len(self.vertices), size=int(on_vertex.sum()))
                lon[on_vertex], lat[on_vertex] = self.vertices[pick, 0], self.vertices[pick, 1]
                astray = rng.random(size) < 0.002  # mistyped or out-of-town reports
                x0, y0, x1, y1 = self.box
                lon[astray] = rng.uniform(x0, x1, int(astray.sum()))
                lat[astray] = rng.uniform(y0, y1, int(astray.sum()))
            yield lon, lat


# ---- 2. the index -------------------------------------------------------------------------------


def index_figures(geoms, keys) -> tuple[GridIndex, dict]:
    start = time.perf_counter()
    index = GridIndex(geoms, keys)
    build = time.perf_counter() - start
    spec = GridSpec.from_index(index)
    try:
        pickled = f"{len(pickle.dumps(index)) / 2**20:.0f} MB"
    except TypeError as exc:
        pickled = f"does not pickle ({exc})"
    return index, {
        "grids": len(index), "build_s": build, "rss_mb": _index_rss_mb(spec),
        "table_mb": index.cell_stats()["mbytes"], "mixed": index.cell_stats()["mixed"],
        "spec_mb": len(pickle.dumps(spec)) / 2**20, "index_pickle": pickled,
    }


def _index_rss_mb(spec: GridSpec) -> float:
    """Resident memory a GridIndex adds to a fresh process (as a dask worker builds it)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(_rss_of_build, (pickle.dumps(spec),))


def _rss_of_build(blob: bytes) -> float:
    spec = pickle.loads(blob)
    geoms = shapely.from_wkb(list(spec.wkb))
    gc.collect()
    before = rss_mb()
    index = GridIndex(geoms, spec.keys, tolerance_m=spec.tolerance_m)
    gc.collect()
    grown = rss_mb() - before
    del index
    return grown


def print_index(f: dict) -> None:
    say(f"  {f['grids']:>7,} grids: build {f['build_s']:.1f} s, cell table {f['table_mb']:.0f} MB "
        f"({100 * f['mixed']:.1f}% mixed cells), resident memory +{f['rss_mb']:.0f} MB; "
        f"GridSpec sent to workers {f['spec_mb']:.1f} MB; GridIndex pickle: {f['index_pickle']}")


def province_index(n_grids: int) -> None:
    if n_grids <= 0:
        return
    with timed("gen", r := {}):
        town = generate_demo(seed=SEED, grids=n_grids, issues=0, detail=False)
    say(f"  ({n_grids:,} grids generated in {r['gen']:.0f} s)")
    index, f = index_figures(town.grids.geometry.values, town.grids["code"].tolist())
    lon, lat = _uniform_points(index, 1_000_000)
    index.locate_many(lon, lat)
    start = time.perf_counter()
    index.locate_many(lon, lat)
    f["locate"] = time.perf_counter() - start
    print_index(f)
    say(f"           1M uniform points: locate_many {f['locate']:.2f} s "
        f"({1 / f['locate']:.1f} M points/s)")


def _uniform_points(index: GridIndex, n: int):
    rng = np.random.default_rng(SEED)
    x0, y0, x1, y1 = shapely.total_bounds(index.geometries)
    return rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)


# ---- 3 and 4. tagging ---------------------------------------------------------------------------


def in_process(index: GridIndex, points: CityPoints):
    lon_all, lat_all = np.empty(points.total), np.empty(points.total)
    position = np.empty(points.total, np.int64)
    method = np.empty(points.total, np.uint8)
    distance = np.empty(points.total)
    seconds, at = 0.0, 0
    for lon, lat in points.chunks():
        start = time.perf_counter()
        found = index.locate_many(lon, lat)
        seconds += time.perf_counter() - start
        sl = slice(at, at + len(lon))
        lon_all[sl], lat_all[sl] = lon, lat
        position[sl], method[sl], distance[sl] = found.position, found.method, found.distance_m
        at += len(lon)
    return lon_all, lat_all, (position, method, distance), seconds


def on_dask(index, lon, lat, expected, workers: int) -> dict:
    out = {}
    start = time.perf_counter()
    with dask_client(n_workers=workers) as client:
        out["start"] = time.perf_counter() - start
        for label, spatial in (("as-read cold", False), ("as-read", False), ("hilbert", True)):
            start = time.perf_counter()
            got = assign_points_dask(lon, lat, index, client=client, spatial=spatial)
            out[label] = time.perf_counter() - start
            assert np.array_equal(got.position, expected[0]), label
            assert np.array_equal(got.method, expected[1]), label
            assert np.allclose(got.distance_m, expected[2], rtol=0, atol=1e-9, equal_nan=True)
    return out


# ---- 5. PostGIS ---------------------------------------------------------------------------------


def postgis(town, rows: int, workers: int) -> dict:
    from sqlalchemy import text

    from gis.db.cluster import LocalCluster
    from gis.db.engine import make_engine, session_scope, upgrade
    from gis.exchange.demo_loading import load_demo
    from gis.geotag.assign import _read_batches, _Scope, assign_stored_rows
    from gis.geotag.bulk import assign_stored_rows_dask
    from gis.people.passwords import hash_password

    out: dict = {}
    root = Path(tempfile.mkdtemp(prefix="gridmap-scale-"))
    os.chmod(root, 0o755)
    cluster = LocalCluster(root / "pg")
    try:
        url = cluster.start().url
        upgrade(url)
        engine = make_engine(url, pool_size=2)
        town.issues = town.issues.iloc[:rows]
        town.issue_events = town.issue_events.iloc[:0]
        with timed("load", out), session_scope(engine) as session:
            load_demo(session, town, hash_password("scale-bench"))
        _vacuum(engine)
        out["size_mb"] = _table_mb(engine)

        def reset():
            """Every issue untagged again, the table rewritten in id order as after the load."""
            with engine.begin() as conn:
                conn.execute(text("UPDATE issues SET grid_id = NULL, grid_version = NULL, "
                                  "assignment = 'unassigned', assignment_distance_m = NULL"))
                conn.execute(text("CLUSTER issues USING issues_pkey"))
            _vacuum(engine)

        with timed("read only", out), engine.connect() as conn:
            for _ in _read_batches(conn, "issues", _Scope(None, None, True), 200_000):
                pass
        options = {"include_closed": True, "record_events": False}
        with timed("in-process first", out):
            first = assign_stored_rows(engine, **options)
        with timed("in-process again", out):
            assign_stored_rows(engine, **options)
        with dask_client(n_workers=workers) as client:
            with timed("dask again cold", out):  # also warms the workers: imports, index
                assign_stored_rows_dask(engine, client=client, **options)
            for spatial, label in ((True, "hilbert"), (False, "as-read")):
                reset()
                with timed(f"dask {label} first", out):
                    report = assign_stored_rows_dask(engine, client=client, spatial=spatial,
                                                     **options)
                assert report.tables["issues"].methods == first.tables["issues"].methods
                assert report.tables["issues"].changed == first.tables["issues"].changed
                with timed(f"dask {label} again", out):
                    assign_stored_rows_dask(engine, client=client, spatial=spatial, **options)
        out["changed"] = first.tables["issues"].changed
        engine.dispose()
    finally:
        cluster.destroy()
        root.rmdir()
    return out


def _vacuum(engine) -> None:
    from sqlalchemy import text

    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE issues"))


def _table_mb(engine) -> float:
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_total_relation_size('issues')")).scalar_one() / 2**20


# ---- main ---------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grids", type=int, default=10_000)
    ap.add_argument("--issues", type=int, default=10_000_000)
    ap.add_argument("--db-rows", type=int, default=1_000_000, help="0 skips PostGIS")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--province-grids", type=int, default=100_000, help="0 skips it")
    args = ap.parse_args()
    say(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

    say("1. data")
    start = time.perf_counter()
    town = generate_demo(seed=SEED, grids=args.grids, issues=min(CHUNK, args.issues),
                         detail=False)
    xy = shapely.get_coordinates(town.issues.geometry.values)
    vertices = shapely.get_coordinates(town.grids.geometry.values)
    points = CityPoints(xy[:, 0], xy[:, 1], vertices, args.issues)
    say(f"  generate_demo({args.grids:,} grids, {len(xy):,} issues): "
        f"{time.perf_counter() - start:.1f} s; replayed to {args.issues:,} points")

    say("2. index")
    index, f = index_figures(town.grids.geometry.values, town.grids["code"].tolist())
    print_index(f)
    province_index(args.province_grids)

    say("3. in-process locate_many, 1M points a call")
    lon, lat, expected, seconds = in_process(index, points)
    counts = np.bincount(expected[1], minlength=len(METHODS))
    mix = ", ".join(f"{m} {100 * c / len(lon):.2f}%" for m, c in zip(METHODS, counts, strict=True))
    say(f"  {len(lon):,} points in {seconds:.1f} s: {len(lon) / seconds / 1e6:.2f} M points/s "
        f"({mix})")

    say(f"4. dask LocalCluster, {args.workers} worker processes x 1 thread")
    d = on_dask(index, lon, lat, expected, args.workers)
    say(f"  cluster start {d['start']:.1f} s; answers identical to in-process, row for row")
    for label in ("as-read cold", "as-read", "hilbert"):
        say(f"  {label:>12}: {d[label]:6.1f} s, {len(lon) / d[label] / 1e6:.2f} M points/s "
            f"({d[label] / seconds:.1f}x the in-process time)")

    if args.db_rows:
        say(f"5. PostGIS: {args.db_rows:,} issues, write-back through COPY + UPDATE")
        p = postgis(town, args.db_rows, args.workers)
        say(f"  load {p['load']:.0f} s; issues table {p['size_mb']:.0f} MB with its indexes; "
            f"first run changes {p['changed']:,} rows")
        for label in ("read only", "in-process first", "in-process again", "dask again cold",
                      "dask hilbert first", "dask hilbert again", "dask as-read first",
                      "dask as-read again"):
            say(f"  {label:>18}: {p[label]:6.1f} s ({args.db_rows / p[label] / 1e3:.0f}k rows/s)")
    say(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
