"""The leaders' dashboard over HTTP: who may see it, its numbers against independent SQL on the
demo (each test's requests and SQL in one rolled-back transaction, so they share ``now()``), its
filters and scope, bad parameters, and the page (/dash): log-in, roles, language, security policy,
and the league tables' switch to the evaluation once the app serves it.

The independent SQL spells the rules out by hand (statuses as literals, the leader's community
by its code), so that a drift in gis.rules or in the dashboard's composition of it shows here.
"""

from __future__ import annotations

import html
import json
import re
from datetime import date, datetime, timedelta

import pytest
from fastapi import APIRouter, FastAPI

from api.dashboard_schemas import (
    DashHeatPublic,
    DashSummaryPublic,
    DashTrendPublic,
    OverduePublic,
)
from api.routes.dashboard import EVALUATION_PATH, serves
from gis.queries.dashboard import PERIODS, TREND_WEEKS, period_of
from gis.rules import BEIJING
from tests.api.conftest import bearer
from tests.api.scope_data import other_places

COMMUNITY = "140429100001"  # 太东社区, the leader's region
PATHS = ("summary", "trend", "overdue", "heat")
# Open and not on hold (the command centre's 挂账 never runs late), written out by hand.
UNTIMED = "('closed', 'rejected', 'on_hold')"
# The cases a reader sees: the admin all, the leader those of the community's grids and those in
# no grid inside its boundary.
SCOPES = {
    "admin": "TRUE",
    "leader": f"""(i.grid_id IN (SELECT g.id FROM grids g JOIN regions c ON c.id = g.community_id
                                 WHERE c.code = '{COMMUNITY}')
                   OR (i.grid_id IS NULL AND EXISTS (SELECT 1 FROM regions r WHERE r.code =
                       '{COMMUNITY}' AND ST_Covers(r.geom, i.geom))))""",
}


@pytest.fixture(scope="module")
def roles(headers, app_client):
    return headers | {"dispatcher": bearer(app_client, "dispatcher"),
                      "department": bearer(app_client, "huanwei01")}


def get(client, roles, role: str, path: str, **params):
    r = client.get(f"/api/v1/dashboard/{path}", headers=roles[role], params=params)
    assert r.status_code == 200, r.text
    return r.json()


def beijing_day(value) -> date:
    return value.astimezone(BEIJING).date()


# -- who ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("role, status", [("anonymous", 401), ("owner", 403), ("department", 403),
                                          ("leader", 200), ("dispatcher", 200), ("admin", 200)])
def test_the_dashboard_is_for_leaders_dispatchers_and_admins(client, roles, path, role, status):
    r = client.get(f"/api/v1/dashboard/{path}", headers=roles[role])
    assert r.status_code == status, r.text
    if status == 403:
        assert r.json()["code"] == "forbidden"


# -- the headline ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", PERIODS)
@pytest.mark.parametrize("role", ["leader", "admin"])
def test_the_headline_matches_sql(client, roles, sql, demo_month, kind, role):
    body = DashSummaryPublic.model_validate(
        get(client, roles, role, "summary", period=kind, date=str(demo_month.first)))
    period = period_of(kind, demo_month.first)
    assert (body.period.since, body.period.until, body.period.label) == \
        (period.since, period.until, period.label)
    (expected,) = sql(f"""
        WITH p AS (SELECT CAST(:since AS date)::timestamp AT TIME ZONE 'Asia/Shanghai' AS since,
                          (CAST(:until AS date) + 1)::timestamp AT TIME ZONE 'Asia/Shanghai' AS after)
        SELECT count(*) FILTER (WHERE i.status NOT IN ('closed', 'rejected')),
               count(*) FILTER (WHERE (i.status NOT IN {UNTIMED} AND i.due_at < now())
                                   OR EXISTS (SELECT 1 FROM issue_steps s WHERE s.issue_id = i.id
                                               AND s.done_at IS NULL AND s.due_at < now())),
               count(*) FILTER (WHERE i.reported_at >= p.since AND i.reported_at < p.after),
               count(*) FILTER (WHERE i.status = 'closed' AND i.closed_at >= p.since
                                  AND i.closed_at < p.after),
               count(*) FILTER (WHERE i.status = 'closed' AND i.closed_at >= p.since
                                  AND i.closed_at < p.after AND i.due_at IS NOT NULL),
               count(*) FILTER (WHERE i.status = 'closed' AND i.closed_at >= p.since
                                  AND i.closed_at < p.after AND i.closed_at <= i.due_at)
          FROM issues i, p WHERE {SCOPES[role]}""", since=period.since, until=period.until)
    assert (body.open, body.overdue, body.reported, body.closed, body.rated, body.on_time) == \
        tuple(expected)
    assert body.closed > 0 and body.overdue > 0
    assert body.on_time_rate == round(body.on_time / body.rated, 4)


def test_the_period_is_todays_by_default(client, roles):
    body = get(client, roles, "leader", "summary", period="week")
    today = datetime.now(BEIJING).date()
    assert body["period"]["since"] <= str(today) <= body["period"]["until"]
    assert get(client, roles, "leader", "summary")["period"]["kind"] == "month"
    assert get(client, roles, "leader", "summary", period="week", date="")["period"] == \
        body["period"]  # an empty form field is no date


# -- the trends -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", PERIODS)
def test_the_weekly_trend_by_category_matches_sql(client, roles, sql, demo_month, kind):
    body = DashTrendPublic.model_validate(
        get(client, roles, "leader", "trend", period=kind, date=str(demo_month.first)))
    period = period_of(kind, demo_month.first)
    assert len(body.weeks) == TREND_WEEKS[kind]
    assert body.weeks[-1] <= period.until < body.weeks[-1] + timedelta(weeks=1)
    rows = sql(f"""
        SELECT (i.reported_at AT TIME ZONE 'Asia/Shanghai')::date AS day, i.category
          FROM issues i WHERE {SCOPES['leader']}
           AND i.reported_at >= CAST(:first AS date)::timestamp AT TIME ZONE 'Asia/Shanghai'
           AND i.reported_at < CAST(:after AS date)::timestamp AT TIME ZONE 'Asia/Shanghai'""",
               first=body.weeks[0], after=body.weeks[-1] + timedelta(weeks=1))
    expected: dict[str, list[int]] = {}
    for day, category in rows:
        week = (day - body.weeks[0]).days // 7
        expected.setdefault(category, [0] * len(body.weeks))[week] += 1
    assert {c.code: c.counts for c in body.categories} == expected
    totals = [c.total for c in body.categories]
    assert totals == sorted(totals, reverse=True) and sum(totals) == len(rows) > 0
    names = dict(sql("SELECT code, name_zh FROM categories WHERE kind = 'issue'"))
    assert all(c.zh == names[c.code] for c in body.categories)


def test_the_on_time_rate_per_week_is_of_the_cases_closed_that_week(client, roles, sql,
                                                                    demo_month):
    body = DashTrendPublic.model_validate(
        get(client, roles, "leader", "trend", period="quarter", date=str(demo_month.first)))
    rows = sql(f"""
        SELECT i.closed_at, i.due_at FROM issues i
         WHERE {SCOPES['leader']} AND i.status = 'closed'""")
    weeks = {w.week: w for w in body.on_time}
    assert list(weeks) == body.weeks
    counted = {week: [0, 0, 0] for week in weeks}
    for closed_at, due_at in rows:
        day = beijing_day(closed_at)
        monday = day - timedelta(days=day.weekday())
        if monday in counted:
            counted[monday][0] += 1
            counted[monday][1] += due_at is not None
            counted[monday][2] += due_at is not None and closed_at <= due_at
    assert {w: [v.closed, v.rated, v.on_time] for w, v in weeks.items()} == counted
    for w in body.on_time:
        assert w.on_time_rate == (round(w.on_time / w.rated, 4) if w.rated else None)
    assert sum(w.closed for w in body.on_time) > 100


def test_a_category_filter_leaves_one_category(client, roles, sql, demo_month):
    body = get(client, roles, "leader", "trend", period="quarter", date=str(demo_month.first),
               category="garbage")
    assert [c["code"] for c in body["categories"]] == ["garbage"]
    one = get(client, roles, "leader", "summary", date=str(demo_month.first), category="garbage")
    every = get(client, roles, "leader", "summary", date=str(demo_month.first))
    assert 0 < one["reported"] < every["reported"]


def test_a_community_by_code_or_name_and_another_community(client, roles, demo_month):
    params = {"date": str(demo_month.first)}
    every = get(client, roles, "admin", "summary", **params)
    assert get(client, roles, "admin", "summary", community=COMMUNITY, **params) == every
    assert get(client, roles, "admin", "summary", community="太东社区", **params) == every
    nowhere = get(client, roles, "admin", "summary", community="140430100001", **params)
    assert (nowhere["open"], nowhere["reported"], nowhere["closed"]) == (0, 0, 0)


# -- the overdue list ------------------------------------------------------------------------------
def test_the_overdue_list_matches_sql(client, roles, sql):
    body = OverduePublic.model_validate(get(client, roles, "leader", "overdue"))
    rows = sql(f"""
        SELECT i.id, i.category, g.name, d.name, i.due_at, s.step, s.due_at,
               extract(epoch FROM now() - i.due_at) / 3600 AS due_late,
               extract(epoch FROM now() - s.due_at) / 3600 AS step_late
          FROM issues i LEFT JOIN grids g ON g.id = i.grid_id
          LEFT JOIN departments d ON d.id = i.department_id
          LEFT JOIN issue_steps s ON s.issue_id = i.id AND s.done_at IS NULL
         WHERE {SCOPES['leader']}
           AND ((i.status NOT IN {UNTIMED} AND i.due_at < now()) OR s.due_at < now())""")
    assert body.count == len(rows) == len(body.data) > 0
    expected = {}
    for id_, category, grid, department, due_at, step, step_due, due_late, step_late in rows:
        due_late = float(due_late) if due_late is not None and due_late > 0 else None
        step_late = float(step_late) if step_late is not None and step_late > 0 else None
        expected[id_] = (category, grid, department, due_at, step, step_due, due_late, step_late)
    for case in body.data:
        category, grid, department, due_at, step, step_due, due_late, step_late = expected[case.id]
        assert (case.category, case.grid_name, case.department, case.due_at, case.step,
                case.step_due_at) == (category, grid, department, due_at, step, step_due)
        assert case.step_overdue == (step_late is not None)
        for got, want in ((case.due_hours_late, due_late), (case.step_hours_late, step_late)):
            assert (got is None) == (want is None) and (want is None or abs(got - want) <= 0.051)
        assert case.hours_late == max(h for h in (case.due_hours_late, case.step_hours_late)
                                      if h is not None)
    lates = [c.hours_late for c in body.data]
    assert lates == sorted(lates, reverse=True)
    assert {c.id for c in body.data} == set(expected)


def test_the_overdue_list_is_cut_but_counts_every_case(client, roles):
    every = get(client, roles, "leader", "overdue")
    first = get(client, roles, "leader", "overdue", limit=3)
    assert first["count"] == every["count"] > 3
    assert first["data"] == every["data"][:3]


def test_each_reader_sees_the_overdue_cases_of_their_region(client, roles, sql):
    places = other_places(sql)
    late = (places.same_district.issue_id, places.other_district.issue_id)
    sql("UPDATE issues SET due_at = now() - interval '3 hours' WHERE id = ANY(:ids)", ids=list(late))

    def listed(role):
        return {c["id"] for c in get(client, roles, role, "overdue", limit=1000)["data"]} & set(late)

    assert listed("leader") == set()
    assert listed("dispatcher") == {places.same_district.issue_id}
    assert listed("admin") == set(late)
    case = next(c for c in get(client, roles, "admin", "overdue", limit=1000)["data"]
                if c["id"] == late[0])
    assert case["department"] == "环卫所" and abs(case["due_hours_late"] - 3.0) <= 0.051


def test_a_case_on_time_with_a_late_step_is_listed_for_its_step(client, roles, sql):
    case = sql("""SELECT i.id FROM issues i JOIN issue_steps s ON s.issue_id = i.id
                   WHERE s.done_at IS NULL AND i.status NOT IN ('closed', 'rejected')
                   ORDER BY i.id LIMIT 1""")[0][0]
    sql("UPDATE issues SET due_at = now() + interval '2 days' WHERE id = :i", i=case)
    sql("""UPDATE issue_steps SET due_at = now() - interval '90 minutes'
            WHERE issue_id = :i AND done_at IS NULL""", i=case)
    row = next(c for c in get(client, roles, "leader", "overdue", limit=1000)["data"]
               if c["id"] == case)
    assert row["due_hours_late"] is None and row["step_overdue"]
    assert row["hours_late"] == row["step_hours_late"] == 1.5


def test_a_case_on_hold_is_open_but_never_overdue(client, roles, sql):
    """挂账: the case is parked (no step runs), counted open, and off the overdue list."""
    before = get(client, roles, "leader", "summary")
    case = get(client, roles, "leader", "overdue")["data"][0]["id"]
    sql("UPDATE issue_steps SET done_at = now() WHERE issue_id = :i AND done_at IS NULL", i=case)
    sql("UPDATE issues SET status = 'on_hold' WHERE id = :i", i=case)
    after = get(client, roles, "leader", "summary")
    assert (after["open"], after["overdue"]) == (before["open"], before["overdue"] - 1)
    assert case not in {c["id"] for c in get(client, roles, "leader", "overdue")["data"]}


# -- the heat map ------------------------------------------------------------------------------------
def test_the_heat_map_counts_the_periods_cases(client, roles, sql, demo_month):
    body = DashHeatPublic.model_validate(
        get(client, roles, "leader", "heat", date=str(demo_month.first), width=480, height=320))
    reported, located = sql(f"""
        SELECT count(*), count(i.lon) FROM issues i WHERE {SCOPES['leader']}
           AND i.reported_at >= CAST(:first AS date)::timestamp AT TIME ZONE 'Asia/Shanghai'
           AND i.reported_at < CAST(:after AS date)::timestamp AT TIME ZONE 'Asia/Shanghai'""",
                      first=demo_month.first, after=demo_month.following)[0]
    assert body.total == reported > 0
    assert sum(w for _, _, w in body.cells) == located
    minx, miny, maxx, maxy = sql("""SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (
        SELECT ST_Extent(geom) e FROM grids WHERE valid_to IS NULL) x""")[0]
    assert body.bounds == pytest.approx([minx, miny, maxx, maxy], abs=1e-6)
    assert body.scale.max_zoom == body.zoom and 10 <= body.scale.radius + body.scale.blur <= 40


# -- bad parameters ----------------------------------------------------------------------------------
@pytest.mark.parametrize("params", [{"period": "year"}, {"date": "2026-13-01"},
                                    {"date": "1999-12-31"}, {"category": "nothing"},
                                    {"width": "5"}, {"limit": "0"}])
def test_bad_parameters_are_422_in_chinese(client, roles, params):
    path = "heat" if "width" in params else "overdue" if "limit" in params else "summary"
    r = client.get(f"/api/v1/dashboard/{path}", params=params,
                   headers=roles["leader"] | {"Accept-Language": "zh-CN"})
    assert r.status_code == 422, r.text
    assert re.search(r"[\u4e00-\u9fff]", r.json()["detail"] if isinstance(r.json()["detail"], str)
                     else json.dumps(r.json()["detail"], ensure_ascii=False))


# -- the page ----------------------------------------------------------------------------------------
def page_settings(page: str) -> dict:
    raw = re.search(r'data-gm-dash="([^"]*)"', page).group(1)
    return json.loads(html.unescape(raw))


def test_the_page_sends_the_anonymous_to_log_in_and_back(client):
    r = client.get("/dash?period=week", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/dash%3Fperiod%3Dweek"


@pytest.mark.parametrize("role", ["owner", "department"])
def test_the_page_refuses_workers_and_department_staff(client, roles, role):
    r = client.get("/dash", headers=roles[role] | {"Accept": "text/html"})
    assert r.status_code == 403 and "无权访问" in r.text


@pytest.mark.parametrize("role", ["leader", "dispatcher", "admin"])
def test_the_page_is_chinese_closed_to_foreign_scripts_and_has_every_panel(client, roles, role):
    r = client.get("/dash", headers=roles[role])
    assert r.status_code == 200
    policy = r.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "connect-src 'self'" in policy
    assert r.headers["cache-control"] == "no-store"
    page = r.text
    assert '<html lang="zh-CN">' in page and "领导驾驶舱" in page
    scripts = re.findall(r"<script\b([^>]*)>", page)
    assert scripts and all('src="/static/' in attrs for attrs in scripts)  # no inline script
    assert re.findall(r'(?:src|href)="(https?:)?//', page) == []
    for panel in ("chart-trend", "chart-on-time", "heat-map", "overdue", "league-department",
                  "league-worker", "kpi-open", "kpi-overdue", "kpi-closed", "kpi-on-time"):
        assert f'id="{panel}"' in page
    assert "/static/npm/echarts/dist/echarts.common.min.js" in page


def test_the_page_in_english_keeps_its_filters(client, roles):
    r = client.get("/dash?lang=en&period=quarter&date=2026-05-20&category=garbage",
                   headers=roles["leader"])
    page = r.text
    assert '<html lang="en">' in page and "Leaders&#39; dashboard" in page
    assert '<option value="quarter" selected>' in page and 'value="2026-05-20"' in page
    assert '<option value="garbage" selected>' in page
    settings = page_settings(page)
    assert settings["period"] == {"kind": "quarter", "since": "2026-04-01", "until": "2026-06-30",
                                  "label": "2026-Q2"}
    assert settings["text"]["no_data"] == "No data yet"


def test_the_league_tables_ask_the_evaluation_when_the_app_serves_it(client, roles):
    bare = FastAPI()
    assert not serves(bare, EVALUATION_PATH)
    evaluation = APIRouter(prefix="/api/v1")
    evaluation.add_api_route("/evaluation", lambda: {}, methods=["GET"])
    bare.include_router(evaluation)
    assert serves(bare, EVALUATION_PATH)
    settings = page_settings(client.get("/dash", headers=roles["leader"]).text)
    served = serves(client.app, EVALUATION_PATH)
    assert settings["evaluation"] == (EVALUATION_PATH if served else None)
