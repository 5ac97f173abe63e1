"""The grid worker's app (/app/) in a real browser: headless Debian Chromium driven by Playwright,
against a live server on the demo database, with a media root of the test's own.

What a worker does with a tablet, offline included: log in once online; lose the network; reload
(the app opens from its service worker and IndexedDB); file reports with photos (one with a double
tap); see "待同步 N"; get the network back and find each report stored exactly once, each with its
photo, none with EXIF. A failed 核查 reopens the case with an after photo; 自处理 closes a case in
one visit; a facility check opens a linked issue. Answers lost on the way and an ended session do
not lose or repeat anything. Screenshots at 768×1024, 1024×768 and 390×844 go to test-artifacts/,
with the app's size and its time to interactive offline (field-app.json).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from gis.media.storage import FileStorage
from maps import field_app
from tests.conftest import DEMO_PASSWORD, committed_changes
from tests.maps.live import ARTIFACTS, ROOT, live_server
from tests.photo_files import CAMERA_MAKE, camera_jpeg, metadata_left

WORKER, GRID = "worker08", "140429100001008"
SIZES = {"tablet-landscape": {"width": 1024, "height": 768},
         "tablet-portrait": {"width": 768, "height": 1024},
         "phone": {"width": 390, "height": 844}}


@pytest.fixture(scope="module")
def media_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def server(demo_engine, app_database_url, media_root):
    # Each test logs worker08 in afresh: more log-ins a minute than a person makes.
    with live_server(app_database_url, GRIDMAP_MEDIA_ROOT=str(media_root),
                     GRIDMAP_LOGIN_ATTEMPTS_PER_MINUTE="1000") as base:
        yield base


@pytest.fixture(scope="module")
def spot(committed_sql) -> dict:
    """A place inside worker08's grid, away from its edges."""
    lon, lat = committed_sql("""SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p
        FROM grids WHERE code = :c AND valid_to IS NULL) s""", c=GRID)[0]
    return {"longitude": lon, "latitude": lat}


@pytest.fixture(scope="module")
def photo_file(tmp_path_factory, spot) -> Path:
    """A camera's JPEG: EXIF with GPS (where the grid is), a camera make, an ICC profile, XMP."""
    path = tmp_path_factory.mktemp("camera") / "IMG_0001.jpg"
    path.write_bytes(camera_jpeg((2400, 1800), gps=(spot["longitude"], spot["latitude"])))
    return path


class Tablet:
    """A browser context as a worker's tablet: GPS at ``spot``, touch, the app's errors kept."""

    def __init__(self, browser, server, spot, viewport=SIZES["tablet-landscape"]):
        self.server = server
        self.context = browser.new_context(viewport=viewport, has_touch=True, geolocation=spot,
                                           permissions=["geolocation"], locale="zh-CN")
        self.page = self.context.new_page()
        self.page.set_default_timeout(90_000)  # the machine's two cores may be busy
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", self._console)

        # watched, not intercepted: intercepting would also take the service worker's requests
        self.context.on("request", self._local_only)

    def _console(self, message):
        # a script or style the page's security policy refused, or any other script error
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def _local_only(self, request):
        if not request.url.startswith((self.server + "/", f"blob:{self.server}/", "data:")):
            self.errors.append(f"left the machine: {request.url}")

    def log_in(self, username: str = WORKER) -> None:
        """Open the app; it sends an unknown visitor to the log-in page, which leads back."""
        self.page.goto(f"{self.server}/app/")
        self.page.wait_for_url("**/login**")
        self.page.get_by_label("用户名", exact=True).fill(username)
        self.page.get_by_label("密码", exact=True).fill(DEMO_PASSWORD)
        self.page.get_by_role("button", name="登录").click()
        self.page.wait_for_url(f"{self.server}/app/")
        self.ready()
        # The service worker is active (the shell is kept) and the worker's data are kept for
        # offline use. Whether it controls this very page is a race it may lose (it activated
        # while the page was loading); the next load goes through it either way.
        self.page.evaluate("""() => { navigator.serviceWorker.ready.then((r) => {
            const done = () => { window.gridmapShellKept = true; };
            if (r.active.state === 'activated') done();
            else r.active.addEventListener('statechange', (e) => e.target.state === 'activated' && done());
        }); }""")
        self.page.wait_for_function("() => window.gridmapShellKept === true")
        self.page.wait_for_function("() => window.gridmapApp.data && window.gridmapApp.data.tasks !== null")

    def ready(self) -> None:
        self.page.wait_for_function("() => document.body.dataset.ready === 'true'")

    def reload(self) -> int:
        """Reload and wait for the app; returns its time to interactive (ms from navigation)."""
        self.page.reload()
        self.ready()
        return int(self.page.evaluate("() => document.body.dataset.readyAt"))

    def offline(self, value: bool = True) -> None:
        self.context.set_offline(value)

    def sync_text(self) -> str:
        return self.page.locator("#sync").inner_text()

    def expect_sync(self, text: str) -> None:
        """The sync indicator comes to say ``text`` (it follows the queue within moments)."""
        from playwright.sync_api import expect

        expect(self.page.locator("#sync")).to_have_text(text)

    def wait_synced(self, jobs: int = 1) -> None:
        """Wait until ``jobs`` jobs (in all, since the page opened) have been acknowledged and
        nothing waits."""
        self.page.wait_for_function(
            "([n]) => window.gridmapApp.sentJobs >= n && "
            "document.getElementById('sync').textContent.trim() === '已同步'", arg=[jobs])

    def report(self, category: str, description: str, photos, *, double_tap=False,
               after=None) -> dict:
        """File a report through the form; returns the tablet's preview of its grid."""
        page = self.page
        page.get_by_role("button", name="上报").click()
        page.get_by_text("GPS 精度").wait_for()
        page.get_by_role("radio", name=category).check()
        page.get_by_label("描述").fill(description)
        page.get_by_label("照片", exact=True).set_input_files([str(p) for p in photos])
        page.locator("#report-form .thumbs img").nth(len(photos) - 1).wait_for()
        if after:
            page.get_by_label("自处理（已当场处理完毕）").check()
            page.get_by_label("处置后照片").set_input_files([str(p) for p in after])
            page.locator("#report-form .thumbs").nth(1).locator("img").first.wait_for()
        preview = {"grid": page.locator("#place-grid").get_attribute("data-grid"),
                   "method": page.locator("#place-grid").get_attribute("data-method")}
        submit = page.get_by_role("button", name="提交")
        if double_tap:
            submit.dblclick()
        else:
            submit.click()
        page.get_by_role("button", name="地图").wait_for()
        page.wait_for_function("() => document.getElementById('view-map').hidden === false")
        return preview

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tablet(browser, server, spot):
    made = []

    def make(viewport=SIZES["tablet-landscape"]) -> Tablet:
        t = Tablet(browser, server, spot, viewport)
        made.append(t)
        return t
    yield make
    for t in made:
        t.close()


def _stored(engine, descriptions: list[str]) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT i.id, i.description, i.status, i.channel, i.self_resolved, g.code AS grid,
                   i.assignment,
                   coalesce(json_agg(json_build_object('kind', p.kind, 'key', p.content_key))
                            FILTER (WHERE p.id IS NOT NULL), '[]') AS photos
              FROM issues i LEFT JOIN grids g ON g.id = i.grid_id
              LEFT JOIN issue_photos p ON p.issue_id = i.id
             WHERE i.description = ANY(:d) GROUP BY i.id, g.code ORDER BY i.id"""),
            {"d": descriptions}).mappings()
        return [dict(r) for r in rows]


# -- reports offline, exactly once ------------------------------------------------------------------
def test_offline_reports_arrive_exactly_once_without_exif(tablet, demo_engine, media_root,
                                                          photo_file):
    with committed_changes(demo_engine):
        t = tablet()
        t.log_in()
        t.offline()
        t.reload()
        page = t.page
        assert page.locator("#net").inner_text() == "离线"
        assert page.locator(".leaflet-overlay-pane path").count() >= 14  # the grids, offline
        assert page.locator(".fm-dot").count() > 20  # facilities
        described = ["路灯不亮，离线上报一", "垃圾堆积，离线上报二（双击）", "井盖破损，离线上报三"]
        previews = [t.report("路灯不亮", described[0], [photo_file]),
                    t.report("垃圾堆积", described[1], [photo_file], double_tap=True),
                    t.report("井盖破损/缺失", described[2], [photo_file])]
        t.expect_sync("待同步 3")
        t.reload()  # a reload (or a restart) keeps what waits
        t.expect_sync("待同步 3")
        assert _stored(demo_engine, described) == []  # nothing has left the tablet
        t.offline(False)
        t.wait_synced(3)
        stored = _stored(demo_engine, described)
        assert [s["description"] for s in stored] == described  # three, once each
        store = FileStorage(media_root)
        for issue, preview in zip(stored, previews, strict=True):
            assert issue["channel"] == "app" and issue["status"] == "reported"
            assert (issue["grid"], issue["assignment"]) == (preview["grid"], preview["method"])
            assert len(issue["photos"]) == 1 and issue["photos"][0]["kind"] == "report"
            with store.open(issue["photos"][0]["key"]) as f:
                data = f.read()
            assert metadata_left(data) == []
            assert CAMERA_MAKE.encode() not in data
        assert t.errors == []


def test_a_lost_answer_and_a_dropped_photo_repeat_nothing(tablet, demo_engine, photo_file):
    """The server stores the report but its answer never arrives; the second photo's upload
    fails on the way. Sending again with the same keys completes the job: one report, three
    photos."""
    with committed_changes(demo_engine):
        t = tablet()
        t.log_in()
        faults = {"answer_lost": 0, "photo_dropped": 0}

        def lose_answer(route):
            if route.request.method == "POST" and not faults["answer_lost"]:
                route.fetch()  # it reaches the server and is stored...
                faults["answer_lost"] += 1
                route.abort("connectionreset")  # ...but the tablet never hears back
            else:
                route.fallback()

        photo_calls = []

        def drop_second_photo(route):
            photo_calls.append(route.request.url)
            if len(photo_calls) == 2 and not faults["photo_dropped"]:
                faults["photo_dropped"] += 1
                route.abort("connectionreset")
            else:
                route.fallback()

        t.page.route("**/api/v1/issues", lose_answer)
        t.page.route("**/api/v1/issues/*/photos", drop_second_photo)
        t.report("道路破损", "道路破损，应答丢失", [photo_file, photo_file, photo_file])
        t.wait_synced()
        assert faults == {"answer_lost": 1, "photo_dropped": 1}  # both faults happened
        assert len(photo_calls) == 4  # three photos, one of them twice
        stored = _stored(demo_engine, ["道路破损，应答丢失"])
        assert len(stored) == 1 and len(stored[0]["photos"]) == 3
        assert t.errors == []


def test_an_ended_session_keeps_the_queue_until_the_worker_logs_in_again(tablet, demo_engine,
                                                                        photo_file):
    """A day in a basement: the session has ended by the time the network returns. What waits
    stays on the tablet, the worker is asked to log in again, and then it is sent once."""
    with demo_engine.connect() as conn:
        valid_after = conn.execute(text(
            "SELECT sessions_valid_after FROM users WHERE username = :u"), {"u": WORKER}).scalar()
    try:
        with committed_changes(demo_engine):
            t = tablet()
            t.log_in()
            t.offline()
            t.report("乱停乱放", "乱停乱放，会话过期后上报", [photo_file])
            with demo_engine.begin() as conn:  # every session of the worker ends
                conn.execute(text("UPDATE users SET sessions_valid_after = now() "
                                  "WHERE username = :u"), {"u": WORKER})
            t.offline(False)
            again = t.page.get_by_role("link", name="重新登录")
            again.wait_for()
            t.expect_sync("待同步 1")
            assert _stored(demo_engine, ["乱停乱放，会话过期后上报"]) == []
            again.click()
            t.page.get_by_label("用户名", exact=True).fill(WORKER)
            t.page.get_by_label("密码", exact=True).fill(DEMO_PASSWORD)
            t.page.get_by_role("button", name="登录").click()
            t.page.wait_for_url(f"{t.server}/app/")
            t.wait_synced()
            assert len(_stored(demo_engine, ["乱停乱放，会话过期后上报"])) == 1
            with demo_engine.begin() as conn:
                conn.execute(text("UPDATE users SET sessions_valid_after = :v WHERE username = :u"),
                             {"v": valid_after, "u": WORKER})
    finally:
        with demo_engine.begin() as conn:
            conn.execute(text("UPDATE users SET sessions_valid_after = :v WHERE username = :u"),
                         {"v": valid_after, "u": WORKER})


# -- 核查, 核实, 自处理, 部件巡检 ---------------------------------------------------------------------------
def _case_in(engine, status: str, description: str) -> int:
    """A case in worker08's grid in ``status``, with its history (deleted afterwards)."""
    with engine.begin() as conn:
        issue_id = conn.execute(text("""
            INSERT INTO issues (client_uuid, category, description, channel, geom, source_crs,
                                source_x, source_y, grid_id, grid_version, assignment, status,
                                due_at)
            SELECT gen_random_uuid(), 'garbage', :d, 'worker', p, 'wgs84', ST_X(p), ST_Y(p),
                   g.id, g.version, 'inside', :s, now() + interval '1 day'
              FROM (SELECT id, version, ST_PointOnSurface(geom) p FROM grids
                     WHERE code = :c AND valid_to IS NULL) g
            RETURNING id"""), {"d": description, "s": status, "c": GRID}).scalar_one()
        conn.execute(text("INSERT INTO issue_events (issue_id, from_status, to_status, note) "
                          "VALUES (:i, NULL, 'reported', 'test'), (:i, 'reported', :s, 'test')"),
                     {"i": issue_id, "s": status})
    return issue_id


def _open_task(page, issue_id: int, button: str) -> None:
    page.get_by_role("button", name="我的任务").click()
    page.locator(f"li.card[data-issue='{issue_id}']").get_by_role("button", name=button).click()


def test_a_failed_check_reopens_the_case_with_an_after_photo(tablet, demo_engine, photo_file):
    with committed_changes(demo_engine):
        issue_id = _case_in(demo_engine, "resolved", "垃圾已清运？待核查")
        t = tablet()
        t.log_in()
        t.offline()
        _open_task(t.page, issue_id, "核查")
        t.page.get_by_role("radio", name="未处理好，返工").check()
        t.page.get_by_role("button", name="提交").click()
        t.page.get_by_text("返工须拍摄处置后照片").wait_for()  # refused on the tablet already
        t.page.get_by_label("处置后照片").set_input_files(str(photo_file))
        t.page.locator("#task-panel .thumbs li img").first.wait_for()
        t.page.get_by_label("说明").fill("东侧仍有垃圾")
        ARTIFACTS.mkdir(exist_ok=True)
        t.page.screenshot(path=str(ARTIFACTS / "field-app-tablet-landscape-核查.png"))
        t.page.get_by_role("button", name="提交").click()
        t.expect_sync("待同步 1")
        t.offline(False)
        t.wait_synced()
        [case] = _stored(demo_engine, ["垃圾已清运？待核查"])
        assert case["status"] == "reopened"
        assert [p["kind"] for p in case["photos"]] == ["after"]
        assert t.errors == []


def test_verify_accepts_a_true_report(tablet, demo_engine):
    with committed_changes(demo_engine):
        issue_id = _case_in(demo_engine, "reported", "居民反映垃圾堆积，待核实")
        t = tablet()
        t.log_in()
        _open_task(t.page, issue_id, "核实")
        t.page.get_by_role("radio", name="不属实，不予立案").check()
        t.page.get_by_role("button", name="提交").click()
        t.page.get_by_text("不予立案须填写原因").wait_for()
        t.page.get_by_role("radio", name="属实，受理").check()
        t.page.get_by_role("button", name="提交").click()
        t.wait_synced()
        [case] = _stored(demo_engine, ["居民反映垃圾堆积，待核实"])
        assert case["status"] == "accepted"


def test_self_resolve_closes_in_one_visit(tablet, demo_engine, photo_file):
    with committed_changes(demo_engine):
        t = tablet()
        t.log_in()
        t.offline()
        t.report("垃圾堆积", "垃圾堆积，已当场清理", [photo_file], after=[photo_file])
        t.expect_sync("待同步 1")
        t.offline(False)
        t.wait_synced()
        [case] = _stored(demo_engine, ["垃圾堆积，已当场清理"])
        assert case["status"] == "closed" and case["self_resolved"] is True
        assert sorted(p["kind"] for p in case["photos"]) == ["after", "before"]


def test_a_damaged_facility_opens_a_linked_issue(tablet, demo_engine, committed_sql, photo_file):
    facility_id, status, updated_at = committed_sql("""
        SELECT f.id, f.status, f.updated_at FROM facilities f JOIN grids g ON g.id = f.grid_id
         WHERE g.code = :c AND f.category = 'bench' AND f.status = 'ok' ORDER BY f.id LIMIT 1""",
                                        c=GRID)[0]
    try:
        with committed_changes(demo_engine):
            t = tablet()
            t.log_in()
            t.page.locator(f".leaflet-marker-icon[title$='#{facility_id}']").click()
            t.page.get_by_role("radio", name="损坏").check()
            t.page.get_by_label("照片", exact=True).set_input_files(str(photo_file))
            t.page.locator("#facility-panel .thumbs li img").first.wait_for()
            t.page.get_by_role("button", name="提交").click()
            t.wait_synced()
            with demo_engine.connect() as conn:
                check = conn.execute(text("""SELECT c.result, c.issue_id, f.status, i.facility_id
                    FROM facility_checks c JOIN facilities f ON f.id = c.facility_id
                    LEFT JOIN issues i ON i.id = c.issue_id WHERE c.facility_id = :f
                    ORDER BY c.id DESC LIMIT 1"""), {"f": facility_id}).one()
            assert check.result == "damaged" and check.status == "damaged"
            assert check.issue_id is not None and check.facility_id == facility_id
            with demo_engine.connect() as conn:  # the check's photo is its case's photo too
                kinds = conn.execute(text("SELECT kind FROM issue_photos WHERE issue_id = :i"),
                                     {"i": check.issue_id}).scalars().all()
            assert kinds == ["report"]
            _restore(demo_engine, facility_id, status, updated_at)
    finally:
        _restore(demo_engine, facility_id, status, updated_at)


def _restore(engine, facility_id: int, status: str, updated_at) -> None:
    """Undo the one change a check makes to an existing row: its facility's state."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE facilities SET status = :s, updated_at = :u WHERE id = :f"),
                     {"s": status, "u": updated_at, "f": facility_id})


# -- the tablet applies the server's rules ----------------------------------------------------------
def test_the_tablet_tags_points_like_the_server(tablet, committed_sql, demo_engine):
    """Random points over the community and its surroundings: the tablet's grid and method
    equal the server's grid index (a point within a metre of the 50 m tolerance may go either
    way: the tablet measures on a local plane, the server in the Gauss-Krüger zone). And every
    vertex of the grids as the tablet has them is on a boundary, given to the smallest code of
    the grids that share it."""
    import numpy as np
    from sqlalchemy.orm import Session

    from gis.geotag.index_cache import GridIndexCache

    with demo_engine.connect() as conn, Session(conn) as session:
        index = GridIndexCache(50.0).get(session).index
    x0, y0, x1, y1 = committed_sql(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e "
        "FROM grids WHERE valid_to IS NULL) s")[0]
    rng = np.random.default_rng(13)
    pad = 0.002  # about 200 m: inside, near (within 50 m) and far outside
    points = [(float(x), float(y)) for x, y in zip(rng.uniform(x0 - pad, x1 + pad, 600),
                                                   rng.uniform(y0 - pad, y1 + pad, 600),
                                                   strict=True)]
    t = tablet()
    t.log_in()
    answers = t.page.evaluate("""async (points) => {
        const geo = await import('/app/js/geo.js');
        const app = window.gridmapApp;
        const tag = ([x, y]) => {
            const r = geo.locate(x, y, app.data.grids, app.data.config.tolerance_m);
            return [r.grid ? String(r.grid.properties.code) : null, r.method, r.distance_m];
        };
        const vertices = new Map();
        for (const g of app.data.grids) {
            const polygons = g.geometry.type === 'Polygon' ? [g.geometry.coordinates] : g.geometry.coordinates;
            for (const ring of polygons.flat()) for (const [x, y] of ring) {
                const key = x + ',' + y;
                if (!vertices.has(key)) vertices.set(key, [x, y, []]);
                const codes = vertices.get(key)[2];
                if (!codes.includes(String(g.properties.code))) codes.push(String(g.properties.code));
            }
        }
        return {random: points.map(tag),
                vertices: [...vertices.values()].map(([x, y, codes]) => [codes, tag([x, y])])};
    }""", points)
    mismatched = []
    for (x, y), (code, method, distance) in zip(points, answers["random"], strict=True):
        server = index.locate(x, y)
        if (server.key, server.method) == (code, method):
            continue
        if not any(d is not None and abs(d - 50.0) < 1.0 for d in (server.distance_m, distance)):
            mismatched.append(((x, y), (server.key, server.method), (code, method)))
    assert mismatched == []
    assert {a[1] for a in answers["random"]} == {"inside", "nearest", "unassigned"}
    assert len(answers["vertices"]) > 100
    for codes, (code, method, _) in answers["vertices"]:
        assert (code, method) == (min(codes), "boundary")


# -- made for the hand and the eye ------------------------------------------------------------------
LAYOUT_CHECK = """() => {
  const visible = (el) => el.offsetParent !== null && getComputedStyle(el).visibility !== 'hidden';
  const small = [...document.querySelectorAll('button, .button, input[type=file], textarea, .choice, .leaflet-bar a')]
    .filter(visible).map((el) => [el.textContent.trim() || el.id || el.className, el.getBoundingClientRect()])
    .filter(([, r]) => r.height < 44 || r.width < 44).map(([n, r]) => `${n}: ${Math.round(r.width)}x${Math.round(r.height)}`);
  const unlabelled = [...document.querySelectorAll('input, textarea, select')].filter(visible)
    .filter((el) => el.type !== 'radio' && el.type !== 'checkbox' ? !(el.labels && el.labels.length) : !(el.labels && el.labels.length))
    .map((el) => el.id || el.name);
  const nameless = [...document.querySelectorAll('button')].filter(visible)
    .filter((el) => !el.textContent.trim()).map((el) => el.outerHTML.slice(0, 80));
  return {small, unlabelled, nameless,
          overflow: document.documentElement.scrollWidth > window.innerWidth + 1};
}"""


def test_screens_at_three_sizes_and_offline_start(tablet, demo_engine, server):
    """Screenshots of the map, the tasks and the report form at each size (artifacts); at each,
    no control under 44 px, none without a visible label, no button without text, no sideways
    scrolling. Then the time to interactive of offline reloads, and the app's size."""
    measured = {}
    with committed_changes(demo_engine):
        for name, size in SIZES.items():
            t = tablet(size)
            t.log_in()
            page = t.page
            for view in ("地图", "我的任务", "上报"):
                page.get_by_role("button", name=view).click()
                if view == "上报":
                    page.get_by_text("GPS 精度").wait_for()
                page.wait_for_timeout(300)
                layout = page.evaluate(LAYOUT_CHECK)
                assert layout == {"small": [], "unlabelled": [], "nameless": [],
                                  "overflow": False}, (name, view)
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / f"field-app-{name}-{view}.png"))
            if name == "tablet-landscape":
                # what the tablet keeps: the precached shell and the worker's data
                measured["kept_bytes"] = t.page.evaluate(
                    "() => navigator.storage.estimate().then((e) => e.usage)")
                t.offline()
                measured["offline_ready_ms"] = sorted(t.reload() for _ in range(5))
                assert t.page.locator("#net").inner_text() == "离线"
            assert t.errors == [], name
            t.close()
    size = field_app.app_size(ROOT / "node_modules")
    (ARTIFACTS / "field-app.json").write_text(json.dumps(
        {"app_bytes": size, **measured}, indent=2), encoding="utf-8")
    assert len(measured["offline_ready_ms"]) == 5


def test_the_tablet_orders_tasks_overdue_first_then_due_then_distance(tablet, server):
    t = tablet()
    t.page.goto(f"{server}/app/manifest.webmanifest")  # any page of the app's origin
    order = t.page.evaluate("""async () => {
        const { orderTasks } = await import('/app/js/tasks.js');
        const task = (id, overdue, due, lon) => ({ id, geometry: { type: 'Point', coordinates: [lon, 36.84] },
            properties: { overdue, due_at: due } });
        const tasks = [task(1, false, null, 112.0), task(2, false, '2026-12-02T09:00:00+08:00', 112.9),
                       task(3, true, '2026-11-30T09:00:00+08:00', 112.9), task(4, false, '2026-12-02T09:00:00+08:00', 112.85),
                       task(5, true, '2026-11-29T09:00:00+08:00', 113.5), task(6, false, '2026-12-01T09:00:00+08:00', 112.0)];
        return orderTasks(tasks, { lon: 112.85, lat: 36.84 }).map(({ task }) => task.id);
    }""")
    assert order == [5, 3, 6, 4, 2, 1]


def test_english_is_available(tablet):
    t = tablet()
    t.log_in()
    with t.page.expect_navigation():
        t.page.get_by_role("button", name="English").click()
    t.ready()
    for name in ("Map", "My tasks", "Report", "中文"):
        t.page.get_by_role("button", name=name).wait_for()
    assert t.page.evaluate("() => document.documentElement.lang") == "en"
    t.page.get_by_role("button", name="Report").click()
    t.page.get_by_text("Category", exact=True).wait_for()
    with t.page.expect_navigation():
        t.page.get_by_role("button", name="中文").click()
    t.ready()
    t.page.get_by_role("button", name="上报").wait_for()
    assert t.errors == []


def test_possible_duplicates_are_shown_before_sending(tablet, demo_engine):
    """An open case of the same category a few metres away, reported today: the form names it
    while the worker is still writing (online), by the server's duplicate rule."""
    with committed_changes(demo_engine):
        issue_id = _case_in(demo_engine, "reported", "门口垃圾堆积，已有人报过")
        t = tablet()
        t.log_in()
        t.page.get_by_role("button", name="上报").click()
        t.page.get_by_text("GPS 精度").wait_for()
        duplicates = t.page.locator("#duplicates")
        t.page.get_by_role("radio", name="路灯不亮").check()
        t.page.wait_for_timeout(500)
        assert duplicates.is_hidden()  # another category: no duplicate
        t.page.get_by_role("radio", name="垃圾堆积").check()
        duplicates.get_by_text(f"#{issue_id} 信息收集").wait_for()
