"""The map pages in a real browser: headless Debian Chromium driven by Playwright loads each page
from a running server (uvicorn on a loopback port, the demo database) with every request that
would leave localhost blocked, and checks what a person would see. Screenshots at tablet size go
to test-artifacts/.

Needs Debian's chromium (``GRIDMAP_WITH_BROWSER=1 scripts/system-deps.sh``) and the npm assets
(``make assets``); ``playwright install`` is never used.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import text

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
GRID = "140429100001008"
TABLET = {"width": 1024, "height": 768}
TABLET_PORTRAIT = {"width": 768, "height": 1024}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(demo_engine, database_url):
    port = _free_port()
    env = dict(os.environ, DATABASE_URL=database_url, GRIDMAP_MAPS_ONLINE="0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory", "--host",
         "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env, cwd=Path(__file__).resolve().parents[2])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run GRIDMAP_WITH_BROWSER=1 scripts/system-deps.sh")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Visit:
    """A page with its console errors and the requests that tried to leave localhost."""

    def __init__(self, browser, server: str, viewport=TABLET):
        self.context = browser.new_context(viewport=viewport, has_touch=True)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.external: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.route("**/*", self._route)
        self.server = server

    def _route(self, route):
        if route.request.url.startswith(self.server + "/"):
            route.continue_()
        else:
            self.external.append(route.request.url)
            route.abort()

    def open(self, path: str):
        self.page.goto(self.server + path, wait_until="load", timeout=120_000)
        self.page.wait_for_function("window.GridMap && window.GridMap.pages.length > 0")
        self.page.wait_for_timeout(300)
        return self.page

    def check_clean(self):
        assert self.errors == [], self.errors
        assert self.external == [], self.external

    def shot(self, name: str):
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"))

    def close(self):
        self.context.close()


@pytest.fixture
def visit(browser, server):
    visits = []

    def make(viewport=TABLET):
        v = Visit(browser, server, viewport)
        visits.append(v)
        return v
    yield make
    for v in visits:
        v.close()


def _open_issues(engine, code: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text("""SELECT count(*) FROM issues i JOIN grids g ON g.id = i.grid_id
            WHERE g.code = :c AND i.status NOT IN ('closed', 'rejected')"""), {"c": code}).scalar()


def test_grid_map_on_a_tablet(visit, demo_engine):
    v = visit()
    page = v.open(f"/maps/grid/{GRID}")
    assert page.locator(".leaflet-container").count() == 1
    assert page.locator(".gm-fac").count() > 20
    assert page.locator(".gm-fac-bad").count() >= 1  # damaged / missing facilities stand out
    assert page.locator(".gm-building-label").count() > 3
    n_open = _open_issues(demo_engine, GRID)
    assert n_open > 0
    assert page.locator(".gm-issue").count() == n_open
    for control in (".leaflet-control-locate", ".leaflet-control-zoom-fullscreen",
                    ".leaflet-control-layers", ".gm-legend", ".gm-info"):
        assert page.locator(control).count() == 1, control
    box = page.locator(".leaflet-control-zoom-in").bounding_box()
    assert box["width"] >= 44 and box["height"] >= 44  # touch-sized
    v.shot("grid-map-1024x768")
    page.locator(".gm-issue").first.click()
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    assert "处理此事件" in popup.inner_text() and "时限" in popup.inner_text()
    assert popup.locator("a.gm-act").get_attribute("href").startswith("/api/v1/issues/")
    v.shot("grid-map-popup-1024x768")
    page.locator(".gm-legend-toggle").click()
    assert page.locator(".gm-legend.gm-collapsed").count() == 1
    assert not page.locator(".gm-legend-body").is_visible()
    page.locator(".gm-legend-toggle").click()
    assert page.locator(".gm-legend-body").is_visible()
    v.check_clean()


def test_grid_map_portrait_and_english(visit):
    v = visit(TABLET_PORTRAIT)
    page = v.open(f"/maps/grid/{GRID}?lang=en")
    assert "Open issues" in page.locator(".gm-info").inner_text()
    assert page.evaluate("document.documentElement.lang") == "en"
    page.locator(".leaflet-control-layers").hover()
    labels = page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
    assert any("Facilities" in t for t in labels) and any("Buildings" in t for t in labels)
    v.shot("grid-map-768x1024-en")
    v.check_clean()


def test_heatmap_layers_legend_and_filters(visit, demo_engine):
    v = visit()
    page = v.open("/maps/heatmap")
    assert page.locator("canvas.leaflet-heatmap-layer").count() == 1
    n_grids = page.evaluate("GridMap.pages[0].choropleth.getLayers().length")
    assert n_grids == 14
    paths = page.evaluate("GridMap.pages[0].choropleth.getLayers().filter(l => l._path).length")
    assert paths == 14  # one SVG path per grid
    total = page.evaluate("GridMap.pages[0].options.total")
    weights = page.evaluate("GridMap.pages[0].options.heat._latlngs.reduce((s, p) => s + p[2], 0)")
    assert weights == total > 0
    v.shot("heatmap-1024x768")

    def fills():
        return page.evaluate("GridMap.pages[0].choropleth.getLayers().map(l => l.options.fillColor)")
    raw = fills()
    page.locator('input[name="gm-colour-by"][value="rate"]').check()
    assert fills() != raw
    assert page.locator('[data-gm-mode="rate"]').is_visible()
    assert not page.locator('[data-gm-mode="raw"]').is_visible()

    page.locator('select[name="category"]').select_option("garbage")
    with page.expect_navigation():
        page.locator('#gm-filter button[type="submit"]').click()
    page.wait_for_function("window.GridMap && window.GridMap.pages.length > 0")
    assert "category=garbage" in page.url
    garbage_total = page.evaluate("GridMap.pages[0].options.total")
    with demo_engine.connect() as conn:
        expected = conn.execute(text("SELECT count(*) FROM issues WHERE category = 'garbage'")).scalar()
    assert garbage_total == expected < total
    weights = page.evaluate("GridMap.pages[0].options.heat._latlngs.reduce((s, p) => s + p[2], 0)")
    assert weights == expected
    assert page.locator('select[name="category"]').input_value() == "garbage"
    v.shot("heatmap-garbage-1024x768")
    v.check_clean()


def test_heatmap_animation_plays_offline(visit):
    v = visit(TABLET_PORTRAIT)
    page = v.open("/maps/heatmap?lang=en&status=open")
    page.locator(".leaflet-control-layers").hover()
    page.get_by_text("Weekly animation").click()
    page.wait_for_timeout(500)
    assert page.locator("canvas.heatmap-canvas").count() == 1
    assert page.locator(".timecontrol-date").count() == 1
    v.shot("heatmap-animation-768x1024-en")
    v.check_clean()


def test_overview_links_to_grid_maps(visit):
    v = visit()
    page = v.open("/maps/overview")
    assert page.evaluate("GridMap.pages[0].options.grids.getLayers().length") == 14
    links = page.locator("#gm-panel a[href^='/maps/grid/']")
    assert links.count() == 14
    assert page.locator("#gm-panel").inner_text().count("网格") >= 14
    v.shot("overview-1024x768")
    with page.expect_navigation():
        links.first.click()
    page.wait_for_function("window.GridMap && window.GridMap.pages.length > 0")
    assert "/maps/grid/140429100001001" in page.url
    v.check_clean()
