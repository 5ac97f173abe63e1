"""The leader heatmap at 10k, 100k and 1M issues: our aggregated page against a naive Folium
HeatMap of every point, in one run.

    .venv/bin/python bench/heatmap.py [--issues 10000,100000,1000000] [--grids 1000]
                                      [--database-url URL] [--no-browser]

For each issue count, ``data.generator.generate_demo(grids=G, issues=N, detail=False)`` (seed
``SEED``; the city layout, G grids in communities of about 14) is loaded into its own database,
``gridmap_bench_heatmap`` on the server of ``--database-url`` (default: DATABASE_URL or the
private cluster of ``gridmap db start``), tagged to grids and VACUUM ANALYZEd. Then, with warm
imports and a warm database:

* **ours**: ``gis.queries.map_data.heatmap_data`` (every query: counts, cells, weekly cells, per-grid
  statistics and Gi* hotspots) + ``maps.heatmap.build_heatmap`` + render: the work of a
  ``/maps/heatmap`` request that misses the page cache;
* **naive**: ``SELECT ST_Y(geom), ST_X(geom) FROM issues`` + ``folium.plugins.HeatMap`` of every
  point on the same base map + render.

Build times are the best of ``--repeats`` runs. Page sizes are the HTML's bytes (the JS/CSS
under /static/ is the same for both and cached by browsers). Render time: headless Debian
Chromium (``/usr/bin/chromium``) loads the page from a local HTTP server that serves it and
/static/, until the load event and two animation frames (Leaflet.heat draws on add). The last
line sums up the largest size, ``vs_naive`` being the naive page's size over ours:

    heatmap: issues=<n> page_mb=<x> build_s=<x> vs_naive=<x>
"""

from __future__ import annotations

import argparse
import http.server
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from folium import plugins
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from data.generator import generate_demo
from gis.db.engine import make_engine, session_scope, upgrade
from gis.exchange.demo_loading import load_demo
from gis.geotag.assign import assign_stored_rows
from gis.queries import map_data
from maps import assets
from maps.base import BaseMapOptions, new_map, render
from maps.heatmap import build_heatmap

SEED = 20221
ISSUE_COUNTS = (10_000, 100_000, 1_000_000)
GRIDS = 1_000
DATABASE = "gridmap_bench_heatmap"
REPEATS = 2
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@dataclass
class Result:
    issues: int
    ours_mb: float
    ours_s: float
    naive_mb: float
    naive_s: float
    ours_render_s: float | None = None
    naive_render_s: float | None = None
    cells: int = 0
    cell_m: float = 0.0
    hotspots: int = 0

    @property
    def vs_naive(self) -> float:
        return self.naive_mb / self.ours_mb


def bench_database(url: str) -> str:
    """Create (once) the bench database next to ``url``'s, with PostGIS and the schema."""
    base = make_url(url).set(drivername="postgresql+psycopg")
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                            {"n": DATABASE}).scalar():
            conn.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    admin.dispose()
    bench = base.set(database=DATABASE)
    with create_engine(bench, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    bench_url = bench.render_as_string(hide_password=False)
    upgrade(bench_url)
    return bench_url


def load_case(engine, n_grids: int, n_issues: int) -> float:
    started = time.perf_counter()
    data = generate_demo(seed=SEED, grids=n_grids, issues=n_issues, detail=False)
    with session_scope(engine) as session:
        load_demo(session, data, "bench-not-a-password-hash")
    assign_stored_rows(engine, include_closed=True, record_events=False)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE issues"))
        conn.execute(text("VACUUM ANALYZE grids"))
    return time.perf_counter() - started


def ours(engine) -> tuple[str, map_data.HeatmapData]:
    with Session(engine) as session:
        data = map_data.heatmap_data(session, map_data.IssueFilter())
    return render(build_heatmap(data, lang="zh")), data


def naive(engine) -> str:
    with Session(engine) as session:
        points = session.execute(text("SELECT ST_Y(geom), ST_X(geom) FROM issues")).all()
    m = new_map(BaseMapOptions(), "zh", title="naive", zoom=12)
    plugins.HeatMap([list(p) for p in points]).add_to(m)
    if points:
        lats, lons = zip(*points, strict=True)
        m.fit_bounds([[min(lats), min(lons)], [max(lats), max(lons)]])
    return render(m)


def best_of(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - started)
    return best, out


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the bench pages from a directory and /static/ from where the API serves it."""

    pages: Path
    node_modules: Path

    def translate_path(self, path: str) -> str:
        path = path.split("?", 1)[0]
        if path.startswith(assets.PATCHED_URL + "/"):
            rel = path[len(assets.PATCHED_URL) + 1:]
            patched = self.pages / "_patched" / rel
            patched.parent.mkdir(parents=True, exist_ok=True)
            patched.write_text(assets.patched_file(rel, self.node_modules), encoding="utf-8")
            return str(patched)
        local = assets.local_path(path, self.node_modules)
        return str(local) if local is not None else str(self.pages / path.lstrip("/"))

    def log_message(self, *args) -> None:
        pass


class Browser:
    """Headless Chromium timing page loads from a local server (no request leaves it)."""

    def __init__(self, node_modules: Path) -> None:
        from playwright.sync_api import sync_playwright

        self.dir = Path(tempfile.mkdtemp(prefix="gridmap-bench-"))
        handler = type("Handler", (_Handler,), {"pages": self.dir, "node_modules": node_modules})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.pw = sync_playwright().start()
        self.browser = self.pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

    def render_s(self, name: str, html: str) -> float:
        (self.dir / name).write_text(html, encoding="utf-8")
        page = self.browser.new_page(viewport={"width": 1024, "height": 768})
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(self.base)
                   else r.abort())
        started = time.perf_counter()
        page.goto(f"{self.base}/{name}", wait_until="load", timeout=300_000)
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        elapsed = time.perf_counter() - started
        page.close()
        return elapsed

    def close(self) -> None:
        self.browser.close()
        self.pw.stop()
        self.server.shutdown()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_case(engine, n_issues: int, args, browser: Browser | None) -> Result:
    print(f"-- {n_issues:,} issues, {args.grids:,} grids", flush=True)
    print(f"   generated and loaded in {load_case(engine, args.grids, n_issues):.0f}s", flush=True)
    ours(engine)  # warm: imports, plans, caches
    ours_s, (page, data) = best_of(lambda: ours(engine), args.repeats)
    naive_s, naive_page = best_of(lambda: naive(engine), 1 if n_issues >= 500_000 else args.repeats)
    weights = int(data.cells["weight"].sum())
    if weights != data.total:
        raise AssertionError(f"cell weights add up to {weights}, not the {data.total} issues")
    r = Result(n_issues, len(page.encode()) / 1e6, ours_s, len(naive_page.encode()) / 1e6,
               naive_s, cells=len(data.cells), cell_m=data.cell_m,
               hotspots=int(data.grids["hotspot"].sum()))
    if browser is not None:
        r.ours_render_s = browser.render_s(f"ours-{n_issues}.html", page)
        r.naive_render_s = browser.render_s(f"naive-{n_issues}.html", naive_page)
    print(f"   ours {r.ours_mb:.2f} MB in {r.ours_s:.2f}s ({r.cells:,} cells of {r.cell_m:.0f} m, "
          f"{r.hotspots} hotspot grids); naive {r.naive_mb:.2f} MB in {r.naive_s:.2f}s", flush=True)
    return r


def print_table(results: list[Result]) -> None:
    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}"

    print()
    print(f"{'issues':>10} | {'ours MB':>8} {'build s':>8} {'render s':>8} | {'naive MB':>9} "
          f"{'build s':>8} {'render s':>8} | {'size x':>7} {'build x':>7}")
    for r in results:
        print(f"{r.issues:>10,} | {r.ours_mb:>8.2f} {r.ours_s:>8.2f} {fmt(r.ours_render_s):>8} | "
              f"{r.naive_mb:>9.2f} {r.naive_s:>8.2f} {fmt(r.naive_render_s):>8} | "
              f"{r.vs_naive:>7.1f} {r.naive_s / r.ours_s:>7.1f}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--issues", type=lambda s: [int(v) for v in s.split(",") if v.strip()],
                   default=list(ISSUE_COUNTS), help="comma-separated issue counts")
    p.add_argument("--grids", type=int, default=GRIDS, help="grids (the city layout)")
    p.add_argument("--database-url", help="PostGIS URL (default: DATABASE_URL or `gridmap db`)")
    p.add_argument("--repeats", type=int, default=REPEATS, help="timed builds after a warm-up")
    p.add_argument("--no-browser", action="store_true", help="skip the Chromium render timing")
    args = p.parse_args(argv)
    if not args.issues or min(*args.issues, args.grids, args.repeats) < 1:
        p.error("--issues, --grids and --repeats need positive values")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from api.settings import Settings

    settings = Settings()
    url = args.database_url or settings.resolved_database_url()  # Settings honours DATABASE_URL
    node_modules = settings.maps.node_modules
    missing = assets.missing_assets(node_modules)
    if missing:
        raise SystemExit(f"map assets missing ({missing[0]}): run `make assets` first")
    engine = make_engine(bench_database(url), pool_size=2)
    map_data.warm_up()
    use_browser = not args.no_browser and Path(CHROMIUM).exists()
    browser = Browser(node_modules) if use_browser else None
    started = time.perf_counter()
    try:
        results = [run_case(engine, n, args, browser) for n in sorted(args.issues)]
    finally:
        if browser is not None:
            browser.close()
        engine.dispose()
    print_table(results)
    print(f"\ntotal {time.perf_counter() - started:.0f}s; targets at 1M issues: page < 3 MB, "
          "build < 3 s, >= 10x smaller than naive")
    big = results[-1]
    print(f"heatmap: issues={big.issues} page_mb={big.ours_mb:.2f} build_s={big.ours_s:.2f} "
          f"vs_naive={big.vs_naive:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
