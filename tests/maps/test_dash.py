"""The leaders' dashboard (/dash) in a real browser: headless Debian Chromium driven by Playwright
against a live server on the demo database, logged in as the demo leader through the log-in page.

At 1024×768 (the tablet) and 1920×1080 (the big screen, 大屏): no console error, no failed
request, nothing leaving the machine; every ECharts chart has its series and has drawn them on
its canvas; the heat map is drawn at the zoom its scale was computed for; the overdue list is the
API's; the headline is the API's; the league tables say 暂无数据 until the app serves the
evaluation, and once it does they are its rows (the contract's rendering is checked now with a
stubbed answer). The filters round-trip through the URL. The big screen holds every panel
without scrolling. Unknown visitors are sent to log in; a grid worker gets 403.

Screenshots: test-artifacts/dash-tablet.png, dash-big.png and dash-portrait.png; the page's
weight, requests and time to ready go to test-artifacts/dash.json.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from api.routes.dashboard import EVALUATION_PATH
from tests.conftest import DEMO_PASSWORD
from tests.maps.live import ARTIFACTS

TABLET = {"width": 1024, "height": 768}
PORTRAIT = {"width": 768, "height": 1024}
BIG = {"width": 1920, "height": 1080}
CHARTS = ("chart-trend", "chart-on-time")
PAGE_BUDGET_BYTES = 2_500_000  # everything /dash loads, uncompressed


def log_in(page, server: str, username: str, path: str = "/dash") -> None:
    """Open ``path``: not logged in, the page sends the visitor to log in and back."""
    page.goto(server + path)
    page.wait_for_url("**/login?next=**")
    page.get_by_label("用户名", exact=True).fill(username)
    page.get_by_label("密码", exact=True).fill(DEMO_PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="登录").click()


@pytest.fixture(scope="module")
def leader_state(browser, server) -> dict:
    context = browser.new_context()
    page = context.new_page()
    log_in(page, server, "leader")
    assert urlsplit(page.url).path == "/dash"
    state = context.storage_state()
    context.close()
    return state


class Dash:
    """The dashboard in a fresh context: its console errors, failed and off-machine requests."""

    def __init__(self, browser, server: str, viewport: dict, state: dict):
        self.server = server
        self.context = browser.new_context(viewport=viewport, storage_state=state,
                                           locale="zh-CN", has_touch=True)
        self.page = self.context.new_page()
        self.page.set_default_timeout(90_000)  # the machine's two cores may be busy
        self.errors: list[str] = []
        self.external: list[str] = []
        self.bytes: dict[str, int] = {}
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.errors.append(f"failed: {r.url}"))
        self.page.on("response", self._response)
        self.page.route("**/*", self._route)

    def _route(self, route):
        if route.request.url.startswith(self.server + "/"):
            route.continue_()
        else:
            self.external.append(route.request.url)
            route.abort()

    def _response(self, response):
        if response.status >= 400:
            self.errors.append(f"{response.status}: {response.url}")

    def open(self, path: str):
        self.page.goto(self.server + path)
        self.page.wait_for_function("() => document.body.dataset.ready === 'true'")
        return self.page

    def wait_for(self, **filters: str) -> None:
        """Until the last completed load is of ``filters`` (and the page's own)."""
        self.page.wait_for_function(
            """(want) => { const d = window.gridmapDash; if (!d || !d.loadedQuery) return false;
                 const got = new URLSearchParams(d.loadedQuery);
                 return Object.entries(want).every(([k, v]) => got.get(k) === v); }""",
            arg=filters)

    def api(self, path: str) -> dict:
        """An API answer as the page's session gets it."""
        return self.page.evaluate("""async (url) => {
            const r = await fetch(url, {credentials: 'same-origin'}); return r.json(); }""", path)

    def check_clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.external == [], self.external

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def dash(browser, server, leader_state):
    opened = []

    def make(viewport=TABLET) -> Dash:
        d = Dash(browser, server, viewport, leader_state)
        opened.append(d)
        return d
    yield make
    for d in opened:
        d.close()


# What the page drew, read off its objects and canvases.
SEEN = """() => {
  const d = window.gridmapDash;
  const inked = (canvas) => {
    if (!canvas) return 0;  // an empty heat layer has none (a period without cases)
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0; for (let k = 3; k < data.length; k += 4) if (data[k] > 0) n++; return n;
  };
  const charts = {};
  for (const id of ['chart-trend', 'chart-on-time']) {
    const chart = window.echarts.getInstanceByDom(document.getElementById(id));
    const series = chart.getOption().series.map((s) => ({type: s.type, name: s.name,
        points: s.data.filter((v) => v !== '-' && v !== null && v !== 0).length}));
    charts[id] = {series, inked: inked(document.querySelector('#' + id + ' canvas')),
                  dark: chart.__big};
  }
  const text = (id) => document.getElementById(id).textContent.trim();
  return {
    charts,
    heat: {zoom: d.map.getZoom(), maxZoom: d.heat.options.maxZoom, points: d.heat._latlngs.length,
           inked: inked(d.heat._canvas)},
    overdue: [...document.querySelectorAll('#overdue tbody tr')].map((r) => Number(r.dataset.id)),
    overdueCount: text('overdue-count'),
    kpis: ['kpi-open', 'kpi-overdue', 'kpi-reported', 'kpi-closed', 'kpi-on-time'].map(text),
    leagues: ['league-department', 'league-worker'].map((id) => ({
        state: document.getElementById(id).dataset.state, text: text(id),
        rows: [...document.querySelectorAll('#' + id + ' tbody tr')].map((r) => r.dataset.key)})),
    big: document.body.classList.contains('gm-dash-big'),
    settings: JSON.parse(document.getElementById('gm-dash').dataset.gmDash),
  };
}"""


def check_drawn(d: Dash, seen: dict, query: str, *, some_overdue: bool = True) -> None:
    """Every panel as the API says, for the page's filters ``query`` (with at least one overdue
    case unless ``some_overdue`` is False: a category fixed within a day may have none)."""
    for chart in seen["charts"].values():
        assert chart["series"] and all(s["points"] > 0 for s in chart["series"]), chart
        assert chart["inked"] > 5_000, chart  # pixels drawn on the chart's canvas
    heat = seen["heat"]
    assert heat["points"] > 0 and heat["inked"] > 0, heat
    assert heat["zoom"] == heat["maxZoom"], heat  # the scale is the one for the zoom shown
    overdue = d.api(f"/api/v1/dashboard/overdue?{query}")
    assert seen["overdue"] == [c["id"] for c in overdue["data"]]
    assert seen["overdue"] or not some_overdue
    assert seen["overdueCount"] == f"{overdue['count']:,}"
    summary = d.api(f"/api/v1/dashboard/summary?{query}")
    rate = "–" if summary["on_time_rate"] is None else f"{summary['on_time_rate'] * 100:.1f}%"
    assert seen["kpis"] == [f"{summary[k]:,}" for k in ("open", "overdue", "reported", "closed")] \
        + [rate]
    check_leagues(d, seen, query)


def check_leagues(d: Dash, seen: dict, query: str) -> None:
    """暂无数据 while the app serves no evaluation; its rows, best first, once it does."""
    if seen["settings"]["evaluation"] is None:
        for league in seen["leagues"]:
            no_data = seen["settings"]["text"]["no_data"]  # 暂无数据
            assert league["state"] == "empty" and league["text"].startswith(no_data), league
        return
    params = parse_qs(query)
    for role, league in zip(("department", "worker"), seen["leagues"], strict=True):
        answer = d.api(f"{EVALUATION_PATH}?role={role}&period={params['period'][0]}"
                       f"&date={params['date'][0]}")
        ranked = sorted(answer["data"], key=lambda r: -(r["score"] if r["score"] is not None
                                                         else -1))
        assert league["rows"] == [r["key"] for r in ranked], league


def test_the_tablet_dashboard(dash, demo_month):
    d = dash(TABLET)
    page = d.open("/dash")
    seen = page.evaluate(SEEN)
    assert not seen["big"] and not any(c["dark"] for c in seen["charts"].values())
    assert "领导驾驶舱" in page.title()
    # the filters, changed on the page, go to the URL (replaceState) and come back from it
    page.select_option("select[name=period]", "quarter")
    page.fill("input[name=date]", str(demo_month.first))
    page.dispatch_event("input[name=date]", "change")
    d.wait_for(period="quarter", date=str(demo_month.first))
    query = f"period=quarter&date={demo_month.first}"
    assert parse_qs(urlsplit(page.url).query) == {"lang": ["zh"], "period": ["quarter"],
                                                  "date": [str(demo_month.first)]}
    check_drawn(d, page.evaluate(SEEN), query)
    page.evaluate("() => document.activeElement.blur()")
    d.shot("dash-tablet")
    page.select_option("select[name=category]", "garbage")
    d.wait_for(period="quarter", category="garbage")
    page.reload()
    page.wait_for_function("() => document.body.dataset.ready === 'true'")
    assert page.input_value("select[name=period]") == "quarter"
    assert page.input_value("input[name=date]") == str(demo_month.first)
    assert page.input_value("select[name=category]") == "garbage"
    seen = page.evaluate(SEEN)
    trend = d.api(f"/api/v1/dashboard/trend?{query}&category=garbage")
    assert [s["name"] for s in seen["charts"]["chart-trend"]["series"]] == ["垃圾堆积"] == \
        [c["zh"] for c in trend["categories"]]
    check_drawn(d, seen, f"{query}&category=garbage", some_overdue=False)
    d.check_clean()


def test_the_big_screen_holds_every_panel_without_scrolling(dash, demo_month):
    d = dash(BIG)
    measured = {}
    page = d.open(f"/dash?period=quarter&date={demo_month.first}")
    seen = page.evaluate(SEEN)
    assert seen["big"] and all(c["dark"] for c in seen["charts"].values())  # by the width alone
    check_drawn(d, seen, f"period=quarter&date={demo_month.first}")
    fit = page.evaluate("""() => ({
        scroll: [document.documentElement.scrollWidth, document.documentElement.scrollHeight],
        view: [window.innerWidth, window.innerHeight],
        panels: [...document.querySelectorAll('.gm-panel, .gm-kpi')].map((p) => {
            const r = p.getBoundingClientRect();
            return [p.className, r.left, r.top, r.right, r.bottom]; })})""")
    assert fit["scroll"] == fit["view"], fit
    width, height = fit["view"]
    for name, left, top, right, bottom in fit["panels"]:
        assert left >= 0 and top >= 0 and right <= width and bottom <= height, name
        assert bottom - top > 60, name
    d.shot("dash-big")
    measured["big"] = _weight(page)
    d.check_clean()
    # ?screen=big makes a smaller screen a big one too
    d2 = dash(TABLET)
    page2 = d2.open(f"/dash?screen=big&period=quarter&date={demo_month.first}")
    assert page2.evaluate(SEEN)["big"]
    d2.check_clean()
    _write_figures(measured)


def test_the_dashboard_portrait_in_english(dash, demo_month):
    d = dash(PORTRAIT)
    page = d.open(f"/dash?lang=en&period=month&date={demo_month.first}")
    seen = page.evaluate(SEEN)
    assert page.title().startswith("Leaders' dashboard")
    assert [s["name"] for s in seen["charts"]["chart-on-time"]["series"]] == ["Closed",
                                                                             "On-time rate"]
    check_drawn(d, seen, f"period=month&date={demo_month.first}")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PORTRAIT["width"]
    d.shot("dash-portrait")
    figures = _weight(page)
    assert figures["bytes"] <= PAGE_BUDGET_BYTES, figures
    _write_figures({"portrait": figures})
    d.check_clean()


def test_the_league_tables_draw_the_evaluation_contract(dash, demo_month):
    """The evaluation arrives in its own module: its answer, as the contract gives it, stubbed
    here (the page told that the app serves it), is drawn best first with grades and changes."""
    d = dash(TABLET)
    d.page.route(re.compile(r"/dash\?"), _with_evaluation)
    d.page.route(re.compile(re.escape(EVALUATION_PATH) + r"\?"), _evaluation_answer)
    page = d.open(f"/dash?period=month&date={demo_month.first}")
    page.wait_for_function("() => document.querySelectorAll('#league-worker tbody tr').length")
    seen = page.evaluate(SEEN)
    assert seen["leagues"][0]["rows"] == ["huanwei", "shizheng", "zhifa"]
    assert seen["leagues"][1]["rows"] == ["worker02", "worker01"]
    cells = page.evaluate("""() => [...document.querySelectorAll('#league-department tbody tr')]
        .map((r) => [...r.cells].map((c) => c.textContent))""")
    assert cells[0] == ["1", "环卫所", "96.0%", "80.0%", "91.5", "A", "▲ 4.5"]
    assert cells[2] == ["3", "综合行政执法队", "–", "–", "–", "–", "–"]
    links = page.evaluate("() => [...document.querySelectorAll('#league-department .gm-exports a')]"
                          ".map((a) => a.getAttribute('href'))")
    assert links == [f"{EVALUATION_PATH}/export.xlsx?period=month&date={demo_month.first}",
                     f"{EVALUATION_PATH}/export.csv?role=department&period=month"
                     f"&date={demo_month.first}"]
    d.check_clean()


def _with_evaluation(route):
    response = route.fetch()
    body = response.text().replace("&#34;evaluation&#34;: null",
                                   f"&#34;evaluation&#34;: &#34;{EVALUATION_PATH}&#34;")
    route.fulfill(response=response, body=body)


def _evaluation_answer(route):
    role = parse_qs(urlsplit(route.request.url).query)["role"][0]
    rows = {
        "department": [
            _row("shizheng", "市政管理所", 0.9, 0.7, 78.0, "B", 80.0, "B"),
            _row("huanwei", "环卫所", 0.96, 0.8, 91.5, "A", 87.0, "B"),
            _row("zhifa", "综合行政执法队", None, None, None, None, None, None)],
        "worker": [_row("worker01", "张三", 0.5, 0.6, 55.0, "D", 61.0, "C"),
                   _row("worker02", "李四", 0.99, 0.97, 97.0, "A", None, None)],
    }[role]
    body = {"role": role, "period": {"since": "x", "until": "y", "label": "z"},
            "previous": {"since": "x", "until": "y", "label": "z"},
            "indicators": [{"key": "closure", "zh": "结案率", "en": "Closure rate", "unit": "ratio",
                            "better": "higher"},
                           {"key": "on_time", "zh": "按期结案率", "en": "On-time rate",
                            "unit": "ratio", "better": "higher"}],
            "data": rows, "count": len(rows)}
    route.fulfill(status=200, content_type="application/json", body=json.dumps(body))


def _row(key, name, closure, on_time, score, grade, previous, previous_grade) -> dict:
    return {"key": key, "name": name, "values": {"closure": closure, "on_time": on_time},
            "score": score, "grade": grade, "previous_score": previous,
            "previous_grade": previous_grade,
            "score_change": None if score is None or previous is None else score - previous}


def test_the_anonymous_log_in_first_and_a_worker_is_refused(browser, server):
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"{server}/dash?period=week")
        assert urlsplit(page.url).path == "/login"
        assert parse_qs(urlsplit(page.url).query)["next"] == ["/dash?period=week"]
        page.get_by_label("用户名", exact=True).fill("worker03")
        page.get_by_label("密码", exact=True).fill(DEMO_PASSWORD)
        with page.expect_response(lambda r: urlsplit(r.url).path == "/dash") as answer:
            page.get_by_role("button", name="登录").click()
        assert answer.value.status == 403
        page.wait_for_load_state()
        assert "无权访问" in page.content()
    finally:
        context.close()


# -- figures ----------------------------------------------------------------------------------------
def _weight(page) -> dict:
    return page.evaluate("""() => {
        const nav = performance.getEntriesByType('navigation')[0];
        const files = performance.getEntriesByType('resource');
        const bytes = files.reduce((n, f) => n + f.decodedBodySize, nav.decodedBodySize);
        const api = files.filter((f) => f.name.includes('/api/'))
                         .reduce((n, f) => n + f.decodedBodySize, 0);
        return {bytes, api_bytes: api, requests: files.length + 1,
                ready_ms: Math.round(Number(document.body.dataset.readyAt || 0))}; }""")


def _write_figures(figures: dict) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "dash.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps(known | figures, indent=2))
