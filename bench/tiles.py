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

City mode (--city, over any database, e.g. the city benchmark's gridmap_city): a fixed sample of
tiles at zoom 10 to 18 (the tiles holding the same --sample grids, picked by the hash of their
code, at every zoom), each layer's tile built once by our SQL and once by the naive layer SQL (raw
features: every open issue a point, every facility, every grid at every zoom, buildings from
zoom 12), on one connection each, JIT off, no tile cache; p50 / p99 per zoom band and layer, and
over all. A naive tile stopped by --naive-timeout counts as that long (the p99 shows ">").

    .venv/bin/python bench/tiles.py --city --database-url postgresql+psycopg://.../gridmap_city
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
from gis.queries.tiles import LAYERS, TILE_WORK_MEM, tile_sql, tiles_covering

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


# -- city mode: ours against the naive layer SQL, zoom 10 to 18 ------------------------------------
CITY_ZOOMS = range(10, 19)
BANDS = ((10, 12), (13, 15), (16, 18))
_NAIVE_ROWS = {
    "grids": """SELECT g.id, g.code, g.name, ST_AsMVTGeom(ST_Transform(g.geom, 3857), tile.env,
                       4096, 64, true) AS geom
                  FROM grids g, tile WHERE g.valid_to IS NULL AND g.geom && tile.box""",
    "buildings": """SELECT b.id, b.name, ST_AsMVTGeom(ST_Transform(b.geom, 3857), tile.env, 4096, 64,
                           true) AS geom
                      FROM buildings b, tile WHERE b.geom && tile.box AND :z >= 12""",
    "facilities": """SELECT f.id, f.code, f.category, f.status, f.name,
                            ST_AsMVTGeom(ST_Transform(f.geom, 3857), tile.env, 4096, 0, false) AS geom
                       FROM facilities f, tile WHERE f.geom && tile.box""",
    "issues": """SELECT i.id, i.category, ST_AsMVTGeom(ST_Transform(i.geom, 3857), tile.env, 4096, 0,
                        false) AS geom
                   FROM issues i, tile WHERE i.status NOT IN ('closed', 'rejected')
                    AND i.geom && tile.box""",
}


def naive_sql(layer: str) -> str:
    """The obvious layer query: every feature in the tile, no thinning, aggregation or minzoom."""
    return f"""
        WITH tile AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env,
                             ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => 64.0 / 4096), 4326) AS box)
        SELECT ST_AsMVT(rows.*, '{layer}', 4096, 'geom', 'id')
          FROM ({_NAIVE_ROWS[layer]}) rows WHERE rows.geom IS NOT NULL"""


def city_sample(engine, grids: int) -> list[tuple[int, int, int]]:
    """The tiles at zoom 10..18 holding a point of each of ``grids`` current grids (picked by the
    hash of their code, so the same data gives the same sample)."""
    from gis.queries.tiles import tile_at

    with engine.connect() as conn:
        points = conn.execute(text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM grids "
            "WHERE valid_to IS NULL ORDER BY md5(code) LIMIT :n) s"), {"n": grids}).all()
    return [(z, *tile_at(lon, lat, z)) for z in CITY_ZOOMS for lon, lat in points]


def _timed(conn, query, params) -> tuple[float, int, bool]:
    """(ms, bytes, stopped by the statement timeout); no query (below the minzoom) costs nothing."""
    from sqlalchemy.exc import OperationalError

    start = time.perf_counter()
    if query is None:
        return 0.0, 0, False
    try:
        with conn.begin_nested():
            data = conn.execute(query, params).scalar()
    except OperationalError as exc:  # QueryCanceled
        if "statement timeout" not in str(exc):
            raise
        return (time.perf_counter() - start) * 1000, 0, True
    return (time.perf_counter() - start) * 1000, len(data or b""), False


def city_tiles(engine, sample: int = 40, naive: bool = True, naive_timeout_s: float = 5.0,
               layers: tuple[str, ...] | None = None) -> dict:
    """Time every layer's tile over :func:`city_sample`, ours and (``naive``) the naive SQL.

    Returns {"ours": {(band, layer): [ms]}, "naive": {...}, "stopped": {...}, "bytes": {...},
    "p50_ms", "p99_ms" (ours, every layer and zoom), "tiles"}. What the city benchmark calls.
    """
    everything = Reader(public_read=True)
    chosen = layers or tuple(LAYERS)
    tiles = city_sample(engine, sample)
    ours_sql = {(layer, z): text(tile_sql(layer, z, everything)[0]) for layer in chosen
                for z in CITY_ZOOMS}
    naive_q = {layer: text(naive_sql(layer)) for layer in chosen if layer in _NAIVE_ROWS}
    out = {"ours": {}, "naive": {}, "stopped": {}, "bytes": {}, "tiles": len(tiles)}
    with engine.connect() as mine, engine.connect() as plain:
        for conn in (mine, plain):
            conn.execute(text("SET jit = off"))
        mine.execute(text(f"SET work_mem = '{TILE_WORK_MEM}'"))  # as render_tile does
        plain.execute(text(f"SET statement_timeout = {int(naive_timeout_s * 1000)}"))
        for n, (z, x, y) in enumerate(tiles):
            band = next(b for b in BANDS if b[0] <= z <= b[1])
            for layer in chosen:
                key = (band, layer)
                params = {"z": z, "x": x, "y": y}
                # below a layer's minzoom the endpoint answers 204 without a query
                runs = [("ours", mine, ours_sql[layer, z] if z >= LAYERS[layer].minzoom else None)]
                if naive and layer in naive_q:
                    runs.append(("naive", plain, naive_q[layer]))
                for path, conn, query in (runs if n % 2 else runs[::-1]):
                    ms, size, stopped = _timed(conn, query, params)
                    out[path].setdefault(key, []).append(ms)
                    if path == "naive":
                        out["stopped"][key] = out["stopped"].get(key, 0) + stopped
                    else:
                        out["bytes"][key] = max(out["bytes"].get(key, 0), size)
            mine.rollback()
            plain.rollback()
    every = sum(out["ours"].values(), [])
    out["p50_ms"], out["p99_ms"] = _pct(every, .5), _pct(every, .99)
    return out


def report_city(result: dict, naive_timeout_s: float) -> None:
    print(f"{result['tiles']} tiles (zoom 10-18) x layers; milliseconds p50 / p99; "
          "ours = gis.queries.tiles, naive = every feature in the tile (see --help)")
    print(f"{'zoom':<7} {'layer':<11} {'ours':>17} {'naive':>21} {'naive/ours p50':>15} "
          f"{'max bytes':>10}")
    for key in sorted(result["ours"]):
        band, layer = key
        ours = result["ours"][key]
        cells = f"{_pct(ours, .5):.1f} / {_pct(ours, .99):.1f}"
        naive = result["naive"].get(key)
        if naive:
            stopped = result["stopped"].get(key, 0)
            mark = ">" if stopped else ""
            ncell = f"{_pct(naive, .5):.1f} / {mark}{_pct(naive, .99):.1f}"
            ncell += f" ({stopped} stopped)" if stopped else ""
            ratio = (f"{_pct(naive, .5) / _pct(ours, .5):.1f}x" if _pct(ours, .5) > 0
                     else "no query")  # below the layer's minzoom
        else:
            ncell, ratio = "-", "-"
        print(f"{band[0]}-{band[1]:<4} {layer:<11} {cells:>17} {ncell:>21} {ratio:>15} "
              f"{result['bytes'].get(key, 0):>10}")
    every_naive = sum(result["naive"].values(), [])
    line = f"tiles: ours p50_ms={result['p50_ms']:.1f} p99_ms={result['p99_ms']:.1f}"
    if every_naive:
        line += (f"; naive p50_ms={_pct(every_naive, .5):.1f} p99_ms={_pct(every_naive, .99):.1f}"
                 f" (stops at {naive_timeout_s * 1000:.0f})")
    print(line)


def city_main(args) -> None:
    url = args.database_url or Settings().resolved_database_url()
    engine = make_engine(url, pool_size=2)
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    try:
        result = city_tiles(engine, args.sample, not args.no_naive, args.naive_timeout)
    finally:
        engine.dispose()
    report_city(result, args.naive_timeout)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--city", action="store_true",
                        help="city mode: ours against the naive SQL, zoom 10-18, no server")
    parser.add_argument("--sample", type=int, default=40,
                        help="city mode: grids whose tiles make the sample, at each zoom (40)")
    parser.add_argument("--no-naive", action="store_true", help="city mode: ours only")
    parser.add_argument("--naive-timeout", type=float, default=5.0,
                        help="city mode: seconds after which a naive tile is stopped (5)")
    parser.add_argument("--database-url", help="default: DATABASE_URL or the private cluster")
    parser.add_argument("--per-zoom", type=int, default=40, help="tiles per zoom level (default 40)")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes (default 5)")
    parser.add_argument("--max-seconds", type=float, default=300, help="stop after this long")
    args = parser.parse_args()
    if args.city:
        city_main(args)
        return
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
