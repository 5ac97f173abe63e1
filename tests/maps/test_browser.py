"""The map pages in a real browser: headless Debian Chromium driven by Playwright loads each page
from a running server (uvicorn on a loopback port, the demo database) with every request that
would leave localhost blocked, and checks what a person would see. The pages are closed: each
visit logs in through the log-in page first (once per user and module; the browser keeps the
session cookie). Screenshots at tablet size go to test-artifacts/.

Needs Debian's chromium (``GRIDMAP_WITH_BROWSER=1 scripts/system-deps.sh``) and the npm assets
(``make assets``); ``playwright install`` is never used.
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from urllib.parse import urlsplit

import numpy as np
import pytest
import shapely
from sqlalchemy import text

from gis.media.photos import THUMBNAIL_SIDE
from gis.rules import TRANSITIONS
from maps.i18n import status_label
from tests.conftest import DEMO_PASSWORD, committed_changes
from tests.maps import leaflet_heat as lh
from tests.maps.live import ARTIFACTS
from tests.photo_files import camera_jpeg

GRID = "140429100001008"
TABLET = {"width": 1024, "height": 768}
TABLET_PORTRAIT = {"width": 768, "height": 1024}
REFUSED = re.compile(r"Failed to load resource: the server responded with a status of (\d+)")


class Visit:
    """A page with its console errors and the requests that tried to leave localhost."""

    def __init__(self, browser, server: str, viewport=TABLET, storage_state=None):
        self.context = browser.new_context(viewport=viewport, has_touch=True,
                                           storage_state=storage_state)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.refused: list[tuple[int, str]] = []
        self.external: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.route("**/*", self._route)
        self.server = server

    def _console(self, message):
        if message.type != "error":
            return
        # Chromium logs every 4xx/5xx answer to a fetch as a console error; kept apart so a
        # test can say which refusals it provoked on purpose.
        refused = REFUSED.match(message.text)
        if refused:
            self.refused.append((int(refused.group(1)), urlsplit(message.location["url"]).path))
        else:
            self.errors.append(message.text)

    def _route(self, route):
        if route.request.url.startswith(self.server + "/"):
            route.continue_()
        else:
            self.external.append(route.request.url)
            route.abort()

    def open(self, path: str):
        self.page.goto(self.server + path, wait_until="load", timeout=120_000)
        return self.settle()

    def log_in(self, username: str, password: str = DEMO_PASSWORD) -> None:
        """Fill the log-in page (the fields found by their labels) and send it."""
        self.page.get_by_label("用户名", exact=True).fill(username)
        self.page.get_by_label("密码", exact=True).fill(password)
        with self.page.expect_navigation():
            self.page.get_by_role("button", name="登录").click()

    def settle(self):
        """Wait for a page (opened or reloaded) to have its map set up."""
        self.page.wait_for_function("window.GridMap && window.GridMap.pages.length > 0")
        self.page.wait_for_timeout(300)
        return self.page

    def check_clean(self, refused=()):
        """No console error, no request off the machine, and no failed request other than the
        ``refused`` (status, path) pairs the test provoked."""
        assert self.errors == [], self.errors
        assert sorted(self.refused) == sorted(refused), self.refused
        assert self.external == [], self.external

    def shot(self, name: str):
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"))

    def close(self):
        self.context.close()


@pytest.fixture(scope="module")
def logged_in_as(browser, server):
    """The browser state (its cookies) of a user logged in through the log-in page, once per
    user and module."""
    states = {}

    def state(username: str) -> dict:
        if username not in states:
            v = Visit(browser, server)
            v.page.goto(f"{server}/login", wait_until="load")
            v.log_in(username)
            states[username] = v.context.storage_state()
            v.close()
        return states[username]
    return state


@pytest.fixture
def visit(browser, server, logged_in_as):
    """``visit(username=None, viewport)``: a fresh browser context, logged in as ``username``."""
    visits = []

    def make(username: str | None = None, viewport=TABLET):
        v = Visit(browser, server, viewport, logged_in_as(username) if username else None)
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
    v = visit("worker08")
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
    assert popup.locator("a.gm-act").get_attribute("href").startswith("/maps/issue/")
    v.shot("grid-map-popup-1024x768")
    page.locator(".gm-legend-toggle").click()
    assert page.locator(".gm-legend.gm-collapsed").count() == 1
    assert not page.locator(".gm-legend-body").is_visible()
    page.locator(".gm-legend-toggle").click()
    assert page.locator(".gm-legend-body").is_visible()
    v.check_clean()


def test_grid_map_portrait_and_english(visit):
    v = visit("worker08", TABLET_PORTRAIT)
    page = v.open(f"/maps/grid/{GRID}?lang=en")
    assert "Open issues" in page.locator(".gm-info").inner_text()
    assert page.evaluate("document.documentElement.lang") == "en"
    page.locator(".leaflet-control-layers").hover()
    labels = page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
    assert any("Facilities" in t for t in labels) and any("Buildings" in t for t in labels)
    v.shot("grid-map-768x1024-en")
    v.check_clean()


def test_heatmap_layers_legend_and_filters(visit, demo_engine):
    v = visit("admin")  # every case: the totals are the whole table's
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
    v = visit("leader", TABLET_PORTRAIT)
    page = v.open("/maps/heatmap?lang=en&status=open")
    page.locator(".leaflet-control-layers").hover()
    page.get_by_text("Weekly animation").click()
    page.wait_for_timeout(500)
    assert page.locator("canvas.heatmap-canvas").count() == 1
    assert page.locator(".timecontrol-date").count() == 1
    v.shot("heatmap-animation-768x1024-en")
    v.check_clean()


def test_overview_links_to_grid_maps(visit):
    v = visit("leader")
    page = v.open("/maps/overview")
    assert page.evaluate("GridMap.pages[0].options.grids.getLayers().length") == 14
    links = page.locator("#gm-panel a[href^='/maps/grid/']")
    assert links.count() == 14
    assert page.locator("#gm-panel").inner_text().count("网格") >= 14
    labels = page.locator(".gm-grid-label")
    assert labels.count() == 14 and labels.first.inner_text().startswith("第")  # short names
    v.shot("overview-1024x768")
    with page.expect_navigation():
        links.first.click()
    page.wait_for_function("window.GridMap && window.GridMap.pages.length > 0")
    assert "/maps/grid/140429100001001" in page.url
    v.check_clean()


# -- the issue page: log in and act -------------------------------------------------------------
def _issue_to_act_on(engine) -> tuple[int, str]:
    """An open issue of GRID whose first next status keeps it open (so the grid map's count of
    open issues is the same before and after) and is a plain move of the worker's (not a
    dispatch, nor an acceptance that a dispatch rule would follow), with its status."""
    with engine.connect() as conn:
        return tuple(conn.execute(text("""SELECT i.id, i.status FROM issues i
            JOIN grids g ON g.id = i.grid_id WHERE g.code = :c
             AND i.status IN ('dispatched', 'in_progress')
             AND i.reporter_contact IS NOT NULL ORDER BY i.id LIMIT 1"""), {"c": GRID}).one())


@contextmanager
def _restored(engine, issue_id: int):
    """The server the browser talks to commits: afterwards the issue's row is put back as it was
    (status, department and deadline included), its new history rows and notifications are
    deleted, and the demo data is checked to be exactly as before (``committed_changes``):
    other tests read it."""
    columns = "status, department_id, due_at, updated_at, closed_at"
    with engine.connect() as conn:
        row = conn.execute(text(f"SELECT {columns} FROM issues WHERE id = :i"), {"i": issue_id}).one()
        steps = conn.execute(text("SELECT coalesce(max(id), 0), array_agg(id) FILTER (WHERE "
                                  "done_at IS NULL) FROM issue_steps WHERE issue_id = :i"),
                             {"i": issue_id}).one()
    with committed_changes(engine):
        try:
            yield
        finally:
            with engine.begin() as conn:
                conn.execute(text("""UPDATE issues SET status = :s, department_id = :d, due_at = :due,
                    updated_at = :u, closed_at = :c WHERE id = :i"""),
                    {"s": row.status, "d": row.department_id, "due": row.due_at,
                     "u": row.updated_at, "c": row.closed_at, "i": issue_id})
                # the step the move ended runs again; the one it started goes
                conn.execute(text("DELETE FROM issue_steps WHERE issue_id = :i AND id > :m"),
                             {"i": issue_id, "m": steps[0]})
                conn.execute(text("UPDATE issue_steps SET done_at = NULL WHERE id = ANY(:ids)"),
                             {"ids": steps[1] or []})
                conn.execute(text("DELETE FROM notifications WHERE issue_id = :i"), {"i": issue_id})


def _open_popup_of(page, issue_id: int) -> None:
    """Tap the pin whose popup links to ``issue_id`` on the grid map."""
    icon = page.evaluate_handle("""(id) => {
        let found = null;
        GridMap.pages[0].options.issues.eachLayer((layer) => {
            const content = layer.getPopup() && layer.getPopup().getContent();
            const html = typeof content === "string" ? content : content.outerHTML;
            if (html.includes('href="/maps/issue/' + id + '?')) { found = layer; }
        });
        return found && found._icon;
    }""", issue_id)
    icon.as_element().click()
    page.locator(".leaflet-popup-content a.gm-act").wait_for()


def _touch_sized(locator) -> None:
    for k in range(locator.count()):
        box = locator.nth(k).bounding_box()
        assert box["width"] >= 44 and box["height"] >= 44, box


def test_worker_logs_in_moves_an_issue_on_and_logs_out(visit, demo_engine):
    issue_id, status = _issue_to_act_on(demo_engine)
    to = TRANSITIONS[status][0]
    with demo_engine.connect() as conn:
        contact, description = conn.execute(text(
            "SELECT reporter_contact, description FROM issues WHERE id = :i"), {"i": issue_id}).one()
        n_events = conn.execute(text("SELECT count(*) FROM issue_events WHERE issue_id = :i"),
                                {"i": issue_id}).scalar()
    v = visit()  # not logged in
    page = v.page
    page.goto(f"{v.server}/maps/grid/{GRID}", wait_until="load")
    assert page.url == f"{v.server}/login?next=/maps/grid/{GRID}"  # sent to log in first
    assert page.get_by_label("用户名", exact=True).is_visible()
    v.shot("login-1024x768")
    v.log_in("worker08", "not-the-password")
    assert page.locator(".gm-error").inner_text() == "用户名或密码错误。"
    assert page.get_by_label("用户名", exact=True).input_value() == "worker08"
    with demo_engine.connect() as conn:
        assert conn.execute(text("""SELECT u.username FROM grid_workers gw JOIN users u
            ON u.id = gw.user_id WHERE gw.grid_code = :c"""), {"c": GRID}).scalar() == "worker08"
    v.log_in("worker08")
    v.settle()
    assert page.url == f"{v.server}/maps/grid/{GRID}"  # back where the worker was going
    assert page.locator(".gm-userbar-name").inner_text().endswith(" · 网格员")
    cookies = {c["name"]: c for c in v.context.cookies()}
    assert cookies["gridmap_session"]["httpOnly"] and cookies["gridmap_session"]["sameSite"] == "Lax"
    assert page.evaluate("document.cookie").find("gridmap_session") < 0  # scripts never see it

    _open_popup_of(page, issue_id)
    page.locator(".leaflet-popup-content a.gm-act").click()
    # The URL first, then the page's own settling: on a loaded machine the page's assets can take
    # longer than a navigation's default wait, which is not what this test is about.
    page.wait_for_url(f"**/maps/issue/{issue_id}?lang=zh", wait_until="domcontentloaded",
                      timeout=90_000)
    v.settle()
    assert page.url.endswith(f"/maps/issue/{issue_id}?lang=zh")
    assert page.locator(".gm-issue-here").count() == 1
    assert page.locator(".gm-status").inner_text() == status_label(status, "zh")
    assert page.locator("tr.gm-event").count() == n_events
    page.locator("#gm-contact-row").wait_for()  # the script asked the API, with the cookie
    assert page.locator("#gm-contact").inner_text() == contact
    assert page.locator(".gm-description").inner_text() == description
    buttons = page.locator(".gm-transition")
    assert buttons.all_inner_texts() == [status_label(s, "zh") for s in TRANSITIONS[status]]
    _touch_sized(buttons)
    _touch_sized(page.locator(".gm-userbar button"))
    v.shot("issue-page-1024x768")

    with _restored(demo_engine, issue_id):
        # A change without the session's CSRF token is refused, and the page says so.
        token = page.evaluate("document.querySelector('meta[name=csrf-token]').content")
        page.evaluate("document.querySelector('meta[name=csrf-token]').content = 'forged'")
        buttons.first.click()
        page.locator("#gm-error").wait_for()
        assert "403" in page.locator("#gm-error").inner_text()
        assert "CSRF" in page.locator("#gm-error .gm-error-details").inner_text()
        assert buttons.first.is_enabled()  # free to try again
        page.evaluate(f"document.querySelector('meta[name=csrf-token]').content = '{token}'")

        page.locator("#gm-note").fill("已到现场 <b>处理</b>")
        with page.expect_navigation():
            buttons.first.click()
        v.settle()
        assert page.locator(".gm-status").inner_text() == status_label(to, "zh")
        events = page.locator("tr.gm-event")
        assert events.count() == n_events + 1
        last = events.last.inner_text()
        assert "worker08" in last and "已到现场 <b>处理</b>" in last
        assert f"{status_label(status, 'zh')} → {status_label(to, 'zh')}" in last
        assert page.locator(".gm-transition").all_inner_texts() == [
            status_label(s, "zh") for s in TRANSITIONS[to]]
        with demo_engine.connect() as conn:
            assert conn.execute(text("SELECT status FROM issues WHERE id = :i"),
                                {"i": issue_id}).scalar() == to
            event = conn.execute(text("""SELECT e.from_status, e.to_status, e.note, u.username
                FROM issue_events e JOIN users u ON u.id = e.actor_id WHERE e.issue_id = :i
                ORDER BY e.id DESC LIMIT 1"""), {"i": issue_id}).one()
        assert tuple(event) == (status, to, "已到现场 <b>处理</b>", "worker08")
        events.last.scroll_into_view_if_needed()  # the panel scrolls: show the new row
        v.shot("issue-page-after-transition-1024x768")
        v.check_clean(refused=[(401, "/login"), (403, f"/api/v1/issues/{issue_id}/transitions")])

    with page.expect_navigation():
        page.locator(".gm-userbar button.gm-logout").click()
    assert page.url == f"{v.server}/login?lang=zh"
    assert "gridmap_session" not in {c["name"] for c in v.context.cookies()}
    page.goto(f"{v.server}/maps/grid/{GRID}", wait_until="load")
    assert "/login?next=" in page.url  # logged out: the pages are closed again
    with demo_engine.connect() as conn:  # put back for the other tests
        assert conn.execute(text("""SELECT i.status, count(e.id) FROM issues i
            JOIN issue_events e ON e.issue_id = i.id WHERE i.id = :i GROUP BY i.status"""),
            {"i": issue_id}).one() == (status, n_events)


def test_another_grids_worker_reads_but_cannot_act_in_english_portrait(visit, demo_engine):
    issue_id, status = _issue_to_act_on(demo_engine)
    with demo_engine.connect() as conn:
        contact = conn.execute(text("SELECT reporter_contact FROM issues WHERE id = :i"),
                               {"i": issue_id}).scalar()
    v = visit("worker01", TABLET_PORTRAIT)
    page = v.open(f"/maps/issue/{issue_id}?lang=en")
    assert page.locator(".gm-status").inner_text() == status_label(status, "en")
    assert page.locator(".gm-read-only").inner_text() == "You may read this issue but not act on it."
    assert page.locator(".gm-transition").count() == 0
    page.wait_for_timeout(300)
    assert page.locator("#gm-contact-row").is_hidden() and contact not in page.content()
    _touch_sized(page.locator(".leaflet-control-zoom-in"))
    _touch_sized(page.locator(".gm-userbar button"))
    v.shot("issue-page-768x1024-en-read-only")
    v.check_clean()


def test_the_grids_worker_sees_a_photo_uploaded_for_the_case(visit, demo_engine):
    issue_id, _ = _issue_to_act_on(demo_engine)
    v = visit("worker08")
    page = v.open(f"/maps/issue/{issue_id}")
    assert page.locator(".gm-photos").count() == 0  # none yet: no section at all
    with committed_changes(demo_engine):
        token = page.evaluate("document.querySelector('meta[name=csrf-token]').content")
        sent = page.request.post(
            f"{v.server}/api/v1/issues/{issue_id}/photos", headers={"X-CSRF-Token": token},
            multipart={"kind": "before", "photo": {"name": "before.jpg", "mimeType": "image/jpeg",
                                                   "buffer": camera_jpeg()}})
        assert sent.status == 201, sent.text()
        photo = sent.json()
        page.reload(wait_until="load")
        v.settle()
        figure = page.locator(f'.gm-photo-kind[data-kind="before"] '
                              f'figure[data-gm-photo="{photo["id"]}"]')
        assert page.locator(".gm-photo-kind h3").all_inner_texts() == ["处置前 (1)"]
        img = figure.locator("img")
        assert img.get_attribute("loading") == "lazy"
        assert img.get_attribute("alt") == (
            f"事件 #{issue_id} 照片 1（处置前），拍摄于 2026-03-14 09:26（北京时间）")
        assert figure.locator("figcaption").inner_text() == "拍摄于 2026-03-14 09:26"
        href = figure.locator("a").get_attribute("href")
        assert v.server + href == photo["url"]
        img.scroll_into_view_if_needed()  # loaded lazily: when the panel shows it
        page.wait_for_function("(img) => img.complete", arg=img.element_handle())
        # the thumbnail, not the photo: 400 x 300 turned upright (EXIF orientation 6), fitted
        # into THUMBNAIL_SIDE
        assert img.evaluate("(img) => [img.naturalWidth, img.naturalHeight]") == [
            THUMBNAIL_SIDE * 3 // 4, THUMBNAIL_SIDE]
        _touch_sized(figure.locator("a"))
        full = page.request.get(v.server + href)  # the link: the photo, with the session
        assert full.status == 200 and full.headers["content-type"] == "image/jpeg"
        v.shot("issue-page-photos-1024x768")
        v.check_clean()


def test_the_admin_page_in_a_browser(visit):
    v = visit("admin")
    page = v.page
    page.goto(f"{v.server}/admin/users", wait_until="load")
    rows = page.locator("tr.gm-user-row")
    assert rows.count() >= 20
    worker = page.locator('tr[data-username="worker08"]')
    assert worker.locator(".gm-role").inner_text() == "网格员"
    worker.locator("summary").click()  # the edit form opens without any script
    assert worker.get_by_label("角色").input_value() == "worker"
    assert worker.get_by_label("负责网格").input_value() == GRID
    add = page.locator("form.gm-add")
    for label in ("用户名", "姓名", "角色", "手机号", "负责网格", "管辖区域", "所属部门"):
        assert add.get_by_label(label, exact=True).count() == 1, label
    _touch_sized(worker.locator("button"))
    v.shot("admin-users-1024x768")
    v.check_clean()



# The heat canvas keeps the accumulated alpha that picks each pixel's colour (simpleheat only
# recolours RGB), so yellow and red are the pixels of alpha >= 0.8 (204 of 255). The
# community's area is the grids' outlines filled on a canvas of the same size.
HEAT_PIXELS = """() => {
  const page = GridMap.pages[0], map = page.map;
  const heat = document.querySelector("canvas.leaflet-heatmap-layer");
  const w = heat.width, h = heat.height;
  const alpha = heat.getContext("2d").getImageData(0, 0, w, h).data;
  const mask = document.createElement("canvas");
  mask.width = w; mask.height = h;
  const ctx = mask.getContext("2d");
  const rings = (ll) => L.LineUtil.isFlat(ll) ? [ll] : ll.flatMap(rings);
  page.choropleth.eachLayer((layer) => {
    ctx.beginPath();
    for (const ring of rings(layer.getLatLngs())) {
      ring.forEach((ll, i) => {
        const p = map.latLngToContainerPoint(ll);
        i ? ctx.lineTo(p.x, p.y) : ctx.moveTo(p.x, p.y);
      });
      ctx.closePath();
    }
    ctx.fill("evenodd");
  });
  const inside = ctx.getImageData(0, 0, w, h).data;
  let area = 0, hot = 0;
  for (let i = 3; i < inside.length; i += 4) {
    if (inside[i] >= 128) { area++; if (alpha[i] >= 204) hot++; }
  }
  const points = page.options.heat._latlngs;
  const densest = points.slice().sort((a, b) => b[2] - a[2]).slice(0, 10).map((p) => {
    const c = map.latLngToContainerPoint([p[0], p[1]]);
    return alpha[(Math.floor(c.y) * w + Math.floor(c.x)) * 4 + 3] / 255;
  });
  return {zoom: map.getZoom(), hot: hot / area, densest: densest, points: points,
          options: page.options.heat.options, grids: page.choropleth.toGeoJSON()};
}"""


def test_heatmap_shows_where_not_everywhere(visit):
    # Issue 14: at the community's zoom no more than ~15% of its area in the two hottest
    # colours, and the densest cells always in them, read off Chromium's own heat canvas;
    # tests/maps/leaflet_heat.py (the model tests/maps/test_heat_scale.py measures with) must
    # agree with it.
    v = visit("leader")
    page = v.open("/maps/heatmap")
    seen = page.evaluate(HEAT_PIXELS)
    o = seen["options"]
    assert seen["zoom"] == o["maxZoom"]  # the scale was computed for the zoom the page opened at
    assert seen["hot"] <= 0.15, seen["hot"]
    assert min(seen["densest"]) >= lh.HOT, seen["densest"]
    grids = shapely.union_all([shapely.from_geojson(json.dumps(f["geometry"]))
                               for f in seen["grids"]["features"]])
    lat, lon, weights = np.array(seen["points"], dtype=float).T
    view = lh.View.around(grids.bounds, seen["zoom"])
    squares = lh.bins(view, lat, lon, weights, radius=o["radius"], blur=o["blur"],
                      max_zoom=o["maxZoom"], max_value=o["max"])
    alpha = lh.intensity(view, squares, radius=o["radius"], blur=o["blur"], max_value=o["max"],
                         min_opacity=o["minOpacity"])
    assert lh.hot_share(alpha, lh.area_mask(view, grids)) == pytest.approx(seen["hot"], abs=0.02)
    v.check_clean()


def test_the_command_centre_on_the_issue_page(visit, demo_engine):
    """The dispatcher dispatches an accepted case to the 环卫所 from its page; the 环卫所's staff
    return it with a reason; the dispatcher's user bar then counts the notification."""
    issue_id, _ = _issue_to_act_on(demo_engine)
    with _restored(demo_engine, issue_id):
        with demo_engine.begin() as conn:
            conn.execute(text("UPDATE issues SET status = 'accepted', department_id = NULL "
                              "WHERE id = :i"), {"i": issue_id})
            conn.execute(text("DELETE FROM notifications"))
        desk = visit("dispatcher")
        page = desk.open(f"/maps/issue/{issue_id}")
        commands = page.locator(".gm-command")
        assert "派遣" in commands.all_inner_texts()
        assert page.locator(".gm-transition").all_inner_texts() == ["不予立案"]  # no plain dispatch
        _touch_sized(commands)
        page.locator("#gm-department").select_option("huanwei")
        page.locator("#gm-note").fill("请环卫所清运")
        with page.expect_navigation():
            page.locator('.gm-command[data-action="dispatch"]').click()
        desk.settle()
        assert page.locator(".gm-status").inner_text() == "任务派遣"
        assert "派遣 · 环卫所" in page.locator("tr.gm-event").last.inner_text()
        desk.shot("issue-page-dispatched-1024x768")

        staff = visit("huanwei01")
        page = staff.open(f"/maps/issue/{issue_id}")
        actions = page.locator(".gm-command").evaluate_all("(bs) => bs.map((b) => b.dataset.action)")
        assert {"return", "hold", "request_extension"} <= set(actions) and "dispatch" not in actions
        page.locator('.gm-command[data-action="return"]').click()  # without a reason: refused
        page.locator("#gm-error").wait_for()
        assert "422" in page.locator("#gm-error").inner_text()
        page.locator("#gm-note").fill("非环卫职责，属市政设施")
        page.locator('.gm-command[data-action="return"]').click()
        page.locator(".gm-returned").wait_for()  # theirs no longer: no reload into a refusal
        assert page.locator(".gm-returned").inner_text().startswith("已回退至派遣员")
        staff.check_clean(refused=[(422, f"/api/v1/issues/{issue_id}/return")])

        page = desk.open(f"/maps/issue/{issue_id}")
        assert page.locator(".gm-status").inner_text() == "案卷建立"
        assert "回退 · 环卫所" in page.locator("tr.gm-event").last.inner_text()
        page.wait_for_function("() => !document.querySelector('.gm-bell .gm-unread').hidden")
        unread = page.evaluate(
            "() => fetch('/api/v1/me/notifications').then((r) => r.json()).then((b) => b.unread)")
        assert page.locator(".gm-bell .gm-unread").inner_text() == str(min(unread, 99)) + (
            "+" if unread > 99 else "")
        with page.expect_navigation():
            page.locator(".gm-bell").click()
        returned = page.locator('.gm-notification[data-kind="returned"]')
        assert returned.count() == 1 and f"#{issue_id}" in returned.inner_text()
        desk.shot("notifications-1024x768")
        desk.check_clean()
