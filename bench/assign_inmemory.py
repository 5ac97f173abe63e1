"""Scratch benchmark of gis/index.py against geopandas.sjoin and a bare STRtree (run by hand).

    PYTHONPATH=. .venv/bin/python bench/assign_inmemory.py [n_points]

Points are uniform over the grids' bounding box; sjoin and STRtree get ready-made point
geometries, GridIndex gets lon/lat arrays (what the service holds). Every timing is the best of
a few warm runs. "exact%" is the share of points that leave the cell table for geometry (mixed
cells, and outside cells within reach of the tolerance).
"""

from __future__ import annotations

import sys
import time

import geopandas as gpd
import numpy as np
import shapely

from gis.index import GridIndex
from tests.gis.test_index import jittered_grids

GRID_COUNTS = (14, 1_000, 10_000)
REPEATS = 3


def best_of(fn, repeats: int = REPEATS) -> float:
    """Best wall time of ``repeats`` calls after one warm-up call, in seconds."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def single_point_us(index: GridIndex, lon: np.ndarray, lat: np.ndarray) -> tuple[float, float]:
    """Median and 99th percentile of one ``locate`` call, in microseconds."""
    clock = time.perf_counter_ns
    samples = np.empty(len(lon))
    for i, (x, y) in enumerate(zip(lon.tolist(), lat.tolist(), strict=True)):
        start = clock()
        index.locate(x, y)
        samples[i] = clock() - start
    return float(np.median(samples)) / 1e3, float(np.percentile(samples, 99)) / 1e3


def run(n_grids: int, n_points: int) -> dict[str, float]:
    geoms, keys = jittered_grids(n_grids)
    start = time.perf_counter()
    index = GridIndex(geoms, keys)
    build = time.perf_counter() - start
    rng = np.random.default_rng(7)
    x0, y0, x1, y1 = shapely.total_bounds(geoms)
    lon, lat = rng.uniform(x0, x1, n_points), rng.uniform(y0, y1, n_points)
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    grids = gpd.GeoDataFrame({"code": keys}, geometry=geoms, crs="EPSG:4326")
    tree = shapely.STRtree(geoms)
    point_array = np.asarray(points.geometry.array)
    return {
        "grids": n_grids,
        "build_s": build,
        "table_mb": index.cell_stats()["mbytes"],
        "mixed_pts": float(np.mean(index._cell_codes(lon, lat) < 0)),
        "index_s": best_of(lambda: index.locate_many(lon, lat)),
        "sjoin_s": best_of(lambda: gpd.sjoin(points, grids, predicate="within")),
        "strtree_s": best_of(lambda: tree.query(point_array, predicate="within")),
        "single": single_point_us(index, lon[:20_000], lat[:20_000]),
    }


def main() -> None:
    n_points = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    print(f"{n_points:,} points; best of {REPEATS} warm runs")
    header = (
        "grids   build  table  exact%   index   sjoin  strtree  sjoin/idx  tree/idx  "
        "locate median/p99"
    )
    print(header)
    for n_grids in GRID_COUNTS:
        r = run(n_grids, n_points)
        med, p99 = r["single"]
        print(
            f"{r['grids']:>6} {r['build_s']:6.2f}s {r['table_mb']:4.0f}MB "
            f"{100 * r['mixed_pts']:5.1f}% "
            f"{r['index_s']:6.3f}s {r['sjoin_s']:6.3f}s {r['strtree_s']:6.3f}s "
            f"{r['sjoin_s'] / r['index_s']:8.1f}x {r['strtree_s'] / r['index_s']:8.1f}x "
            f"{med:7.2f}/{p99:.1f} us"
        )


if __name__ == "__main__":
    main()
