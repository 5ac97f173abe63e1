"""Working time over HTTP: each category's limits, a report's urgency and deadlines, and the
calendar's status."""

from __future__ import annotations

from datetime import datetime, timedelta

from api.schemas import CalendarStatusPublic, CategoriesPublic, IssuePublic
from gis.rules import BEIJING, STEPS, URGENCIES
from gis.worktime.calendar import official_years

GRID_03 = "140429100001003"


def _point(sql) -> tuple[float, float]:
    return sql("SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM grids "
               "WHERE code = :c AND valid_to IS NULL", c=GRID_03)[0]


def test_every_issue_category_gives_every_steps_limit_for_both_urgencies(client, sql):
    body = CategoriesPublic.model_validate(
        client.get("/api/v1/categories", params={"kind": "issue"}).json())
    limits = {c.code: c.limits.model_dump() for c in body.data}
    assert all(set(v) == set(URGENCIES) and all(set(v[u]) == set(STEPS) for u in URGENCIES)
               for v in limits.values())
    assert limits["illegal_construction"]["normal"]["handle"] == {"value": 15, "unit": "workdays"}
    assert limits["garbage"]["normal"]["handle"] == {"value": 1, "unit": "workdays"}
    assert limits["cover_damaged"]["urgent"]["handle"] == {"value": 2, "unit": "hours"}
    assert limits["streetlight_out"]["normal"]["handle"] == {"value": 1, "unit": "workdays"}
    for code in limits:
        assert limits[code]["urgent"]["accept"] == {"value": 10, "unit": "minutes"}
        assert limits[code]["normal"]["dispatch"] == {"value": 30, "unit": "minutes"}
        assert limits[code]["normal"]["verify"] == {"value": 2, "unit": "hours"}
    # the table is the truth: an edit there is what the API gives
    sql("UPDATE time_limits SET value = 20 WHERE category = 'illegal_construction' "
        "AND urgency = 'normal' AND step = 'handle'")
    again = client.get("/api/v1/categories", params={"kind": "issue"}).json()["data"]
    assert next(c for c in again if c["code"] == "illegal_construction")["limits"]["normal"][
        "handle"]["value"] == 20


def test_a_report_takes_its_urgency_and_answers_with_its_deadlines(client, sql, headers):
    lon, lat = _point(sql)
    r = client.post("/api/v1/issues", headers=headers["owner"], json={
        "lon": lon, "lat": lat, "category": "cover_damaged", "urgency": "urgent",
        "description": "井盖缺失"})
    assert r.status_code == 201, r.text
    issue = IssuePublic.model_validate(r.json()).properties
    assert issue.urgency == "urgent" and issue.due_at - issue.reported_at == timedelta(hours=2)
    accept = issue.deadlines.accept
    assert accept.due_at - accept.started_at == timedelta(minutes=10)
    assert accept.done_at is None and not accept.overdue and issue.deadlines.handle is None
    plain = client.post("/api/v1/issues", headers=headers["owner"], json={
        "lon": lon, "lat": lat, "category": "garbage"}).json()["properties"]
    assert plain["urgency"] == "normal"
    due = datetime.fromisoformat(plain["due_at"]).astimezone(BEIJING)
    assert (due.hour, due.minute) == (17, 30) and due.date() > datetime.now(BEIJING).date()


def test_an_unknown_urgency_is_refused(client, sql, headers):
    lon, lat = _point(sql)
    r = client.post("/api/v1/issues", headers=headers["owner"], json={
        "lon": lon, "lat": lat, "category": "garbage", "urgency": "very"})
    assert r.status_code == 422


def test_a_move_shows_in_the_issues_deadlines(client, sql, headers):
    lon, lat = _point(sql)
    issue_id = client.post("/api/v1/issues", headers=headers["owner"], json={
        "lon": lon, "lat": lat, "category": "garbage"}).json()["id"]
    r = client.post(f"/api/v1/issues/{issue_id}/transitions", headers=headers["leader"],
                    json={"to": "accepted"})
    assert r.status_code == 200, r.text
    got = client.get(f"/api/v1/issues/{issue_id}", headers=headers["leader"]).json()
    deadlines = IssuePublic.model_validate(got).properties.deadlines
    assert deadlines.accept.done_at is not None and deadlines.dispatch.done_at is None
    assert deadlines.dispatch.due_at - deadlines.dispatch.started_at == timedelta(minutes=30)


def test_the_calendar_status_names_the_years_that_fall_back(client, headers):
    assert client.get("/api/v1/calendar/status").status_code == 401
    r = client.get("/api/v1/calendar/status", headers=headers["leader"])
    body = CalendarStatusPublic.model_validate(r.json())
    this_year = datetime.now(BEIJING).year
    assert [y.year for y in body.years][:2] == [this_year, this_year + 1]
    expected = [y for y in (this_year, this_year + 1) if y not in official_years()]
    assert body.fallback_years == expected
    assert (body.warning is None) == (not expected)
    assert body.official_years == [min(official_years()), max(official_years())]
    assert body.workday_end == "17:30"
