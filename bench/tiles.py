"""Vector tile latency: GET /tiles/{layer}/{z}/{x}/{y}.mvt against the same ST_AsMVT query run directly.

A bounded set of tiles over the stored grids (zoom 14 to 18, at most --per-zoom tiles per zoom,
spread evenly over the extent) is fetched for each layer, --repeats times, one request at a time:

- http: `gridmap serve` (one worker) on a free loopback port, one keep-alive httpx client; the
  server runs with GRIDMAP_PUBLIC_READ, so the issues layer is read whole by the anonymous;
- direct: the tile query of gis.queries.tiles (the SQL the endpoint runs, JIT off as there) on one open
  psycopg connection;
- defaults: the same query on a connection with the server's defaults (JIT on), to show why the
  endpoint turns JIT off.

Both paths must return the same bytes for every tile; the run fails otherwise. Reports p50 and
p99 per layer and overall, and the ratio http/direct (the cost of HTTP, FastAPI and the pool).

    .venv/bin/python bench/tiles.py                      # the demo in DATABASE_URL or `gridmap db`
    .venv/bin/python bench/tiles.py --per-zoom 20 --repeats 3

Loopback only; bounded in count (--per-zoom x 5 zooms x 4 layers x --repeats) and time (--max-seconds).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time

import httpx
from sqlalchemy import text

from api.settings import Settings
from gis.db.engine import make_engine
from gis.queries.reads import Reader
from gis.queries.tiles import LAYERS, tile_sql, tiles_covering

ZOOMS = range(14, 19)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(port: int, database_url: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url, "GRIDMAP_PUBLIC_READ": "true"}
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port),
                             "--host", "127.0.0.1", "--workers", "1"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("the server did not start within 60 s")


def tile_set(engine, per_zoom: int) -> list[tuple[int, int, int]]:
    """At most ``per_zoom`` tiles per zoom over the grids' extent, spread evenly."""
    with engine.connect() as conn:
        bounds = conn.execute(text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            "(SELECT ST_Extent(geom) AS e FROM grids WHERE valid_to IS NULL) s")).one()
    chosen = []
    for z in ZOOMS:
        tiles = tiles_covering(tuple(bounds), z)
        step = max(1, len(tiles) / per_zoom)
        chosen += [tiles[int(i * step)] for i in range(min(per_zoom, len(tiles)))]
    return chosen


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


PATHS = ("http", "direct", "defaults")


def measure(engine, port: int, tiles, repeats: int, max_seconds: float) -> dict:
    times: dict[str, dict[str, list[float]]] = {p: {layer: [] for layer in LAYERS} for p in PATHS}
    empty = turn = 0
    deadline = time.monotonic() + max_seconds
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client, \
            engine.connect() as direct, engine.connect() as defaults:
        direct.execute(text("SET jit = off"))  # as gis.queries.tiles.render_tile does for each tile
        everything = Reader(public_read=True)  # what the server reads for the anonymous
        queries = {layer: text(tile_sql(layer, 16, everything)[0]) for layer in LAYERS}
        for rep in range(repeats + 1):  # the first pass warms every path and is not counted
            for layer in LAYERS:
                for z, x, y in tiles:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"stopped after --max-seconds {max_seconds}")
                    turn += 1  # rotate the order, so no path always runs right after the server
                    got = {}
                    for path in PATHS[turn % 3:] + PATHS[:turn % 3]:
                        start = time.perf_counter()
                        if path == "http":
                            got[path] = client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt").content
                        else:
                            conn = direct if path == "direct" else defaults
                            got[path] = bytes(conn.execute(queries[layer], {"z": z, "x": x, "y": y})
                                              .scalar() or b"")
                        if rep:
                            times[path][layer].append((time.perf_counter() - start) * 1000)
                    if got["http"] != got["direct"]:
                        raise SystemExit(f"{layer} {z}/{x}/{y}: HTTP and direct tiles differ")
                    empty += bool(rep) and not got["http"]
    return {**times, "empty": empty}


def report(result: dict, tiles, repeats: int) -> None:
    print(f"{len(tiles)} tiles (zoom {ZOOMS.start}-{ZOOMS.stop - 1}) x {len(LAYERS)} layers x "
          f"{repeats} repeats; {result['empty']} empty (204) answers")
    print("milliseconds, p50 / p99; http = GET over keep-alive; direct = the same SQL on one "
          "connection (jit off, as the endpoint); defaults = the same SQL, server defaults (JIT on)")
    print(f"{'layer':<11} {'http':>15} {'direct':>15} {'defaults':>17} {'http/direct p50':>16}")
    for layer in [*LAYERS, "all"]:
        cols = {p: (result[p][layer] if layer != "all" else sum(result[p].values(), []))
                for p in PATHS}
        cells = [f"{_pct(v, .5):.2f} / {_pct(v, .99):.2f}" for v in cols.values()]
        ratio = statistics.median(cols["http"]) / statistics.median(cols["direct"])
        print(f"{layer:<11} {cells[0]:>15} {cells[1]:>15} {cells[2]:>17} {ratio:>15.1f}x")
    slowest = {p: max(sum(result[p].values(), [])) for p in PATHS}
    print("slowest single tile: " + ", ".join(f"{p} {ms:.1f} ms" for p, ms in slowest.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: DATABASE_URL or the private cluster")
    parser.add_argument("--per-zoom", type=int, default=40, help="tiles per zoom level (default 40)")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes (default 5)")
    parser.add_argument("--max-seconds", type=float, default=300, help="stop after this long")
    args = parser.parse_args()
    url = args.database_url or Settings().resolved_database_url()
    engine = make_engine(url, pool_size=1)
    tiles = tile_set(engine, args.per_zoom)
    port = _free_port()
    server = _start_server(port, url)
    try:
        result = measure(engine, port, tiles, args.repeats, args.max_seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)
        engine.dispose()
    report(result, tiles, args.repeats)


if __name__ == "__main__":
    main()
