"""Working time in the database: a report's deadlines, the steps a move ends and starts, the
overrides and the calendar's status, imported and demo cases computed by the same rule."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import text

from gis.errors import NotFound
from gis.exchange.transfer import import_features
from gis.geotag.index_cache import GridIndexCache
from gis.issues import workflow
from gis.issues.reporting import IssueReport, report_issue
from gis.people.actors import load_actor
from gis.queries import reads
from gis.rules import BEIJING, STATUS_STEP, step_overdue_sql
from gis.worktime.calendar import official_years
from gis.worktime.limits import Limit, deadline
from gis.worktime.store import (
    calendar_status,
    category_limits,
    list_overrides,
    load_calendar,
    set_override,
    unset_override,
)

GRID = "140429100001003"


def _point(session) -> tuple[float, float]:
    return session.execute(text(
        "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM grids "
        "WHERE code = :c AND valid_to IS NULL"), {"c": GRID}).one()


def _report(session, category: str, urgency: str = "normal") -> int:
    lon, lat = _point(session)
    worker = load_actor(session, "worker03")[0]
    return report_issue(session, GridIndexCache(), worker, IssueReport(
        x=lon, y=lat, category=category, urgency=urgency, client_uuid=uuid.uuid4())).issue_id


def _steps(session, issue_id: int) -> list:
    return session.execute(text(
        "SELECT step, started_at, due_at, done_at FROM issue_steps WHERE issue_id = :i "
        "ORDER BY started_at, id"), {"i": issue_id}).all()


def test_a_reports_due_at_is_its_handling_limit_counted_from_the_report(session):
    issue_id = _report(session, "illegal_construction")
    reported_at, due_at, urgency = session.execute(text(
        "SELECT reported_at, due_at, urgency FROM issues WHERE id = :i"), {"i": issue_id}).one()
    assert urgency == "normal"
    assert due_at == deadline(reported_at, Limit(15, "workdays"), load_calendar(session))
    assert due_at.astimezone(BEIJING).hour == 17 and due_at.astimezone(BEIJING).minute == 30
    [(step, started_at, step_due, done_at)] = _steps(session, issue_id)
    assert (step, started_at, done_at) == ("accept", reported_at, None)
    assert step_due == reported_at + timedelta(minutes=30)


def test_an_urgent_missing_cover_is_due_within_two_hours_around_the_clock(session):
    issue_id = _report(session, "cover_damaged", "urgent")
    reported_at, due_at = session.execute(text(
        "SELECT reported_at, due_at FROM issues WHERE id = :i"), {"i": issue_id}).one()
    assert due_at - reported_at == timedelta(hours=2)
    assert _steps(session, issue_id)[0].due_at - reported_at == timedelta(minutes=10)


def test_an_override_counts_for_the_steps_started_after_it(session):
    today = datetime.now(BEIJING).date()
    days = [today + timedelta(days=k) for k in range(1, 30)]
    for day in days:  # the next four weeks off, but for one day
        set_override(session, day, False, "test")
    set_override(session, days[-1], True, "the one working day")
    issue_id = _report(session, "garbage")
    due_at = session.execute(text("SELECT due_at FROM issues WHERE id = :i"), {"i": issue_id}).scalar()
    assert due_at.astimezone(BEIJING).date() == days[-1]


def test_moves_end_a_step_and_start_the_next_with_its_deadline(session):
    issue_id = _report(session, "garbage")
    leader = load_actor(session, "leader")[0]
    for to in ("accepted", "dispatched", "in_progress", "resolved", "reopened", "in_progress"):
        workflow.transition(session, leader, issue_id, to)
    rows = _steps(session, issue_id)
    assert [r.step for r in rows] == ["accept", "dispatch", "handle", "verify", "handle"]
    assert all(r.done_at is not None for r in rows[:-1]) and rows[-1].done_at is None
    limits = category_limits(session, "garbage")["normal"]
    calendar = load_calendar(session)
    for r in rows:
        assert r.due_at == deadline(r.started_at, limits[r.step], calendar)
    # the read model: each step's latest run
    row = reads.get_issue(session, leader, issue_id)[0]
    assert set(row["deadlines"]) == {"accept", "dispatch", "handle", "verify"}
    assert row["deadlines"]["handle"]["done_at"] is None
    assert row["deadlines"]["verify"]["done_at"] is not None
    assert row["urgency"] == "normal"


def test_a_running_step_past_its_deadline_is_overdue_in_sql_and_in_the_read_model(session):
    issue_id = _report(session, "garbage")
    session.execute(text("UPDATE issue_steps SET due_at = now() - interval '1 minute' "
                         "WHERE issue_id = :i"), {"i": issue_id})
    overdue = session.execute(text(
        f"SELECT {step_overdue_sql('s')} FROM issue_steps s WHERE s.issue_id = :i"),
        {"i": issue_id}).scalar_one()
    row = reads.get_issue(session, load_actor(session, "leader")[0], issue_id)[0]
    assert overdue is True and row["deadlines"]["accept"]["overdue"] is True
    assert row["overdue"] is False  # the case's promise (due_at) is not past


def test_overrides_are_set_listed_and_removed(session):
    set_override(session, date(2031, 2, 3), False, "春节")
    set_override(session, date(2031, 2, 3), True, "changed: a working day after all", "admin")
    set_override(session, date(2031, 1, 25), True, "调休")
    rows = list_overrides(session, 2031)
    assert [(r.day, r.working, r.created_by) for r in rows] == [
        (date(2031, 1, 25), True, None), (date(2031, 2, 3), True, "admin")]
    unset_override(session, date(2031, 1, 25))
    with pytest.raises(NotFound):
        unset_override(session, date(2031, 1, 25))
    assert len(list_overrides(session, 2031)) == 1


def test_the_status_warns_about_the_years_that_fall_back(session):
    last = max(official_years())
    quiet = calendar_status(session, date(last - 1, 6, 1))
    assert quiet["warning"] is None and quiet["fallback_years"] == []
    found = calendar_status(session, date(last, 11, 30))
    assert found["fallback_years"] == [last + 1]
    assert str(last + 1) in found["warning"] and str(last + 1) in found["warning_zh"]
    assert {r["year"]: r["source"] for r in found["years"]} == {last: "official",
                                                                  last + 1: "fallback"}
    set_override(session, date(last + 1, 1, 2), False)
    again = calendar_status(session, date(last, 11, 30))
    assert again["years"][-1]["overrides"] == 1 and "1 overrides" in again["warning"]


def test_imported_cases_are_due_by_the_same_rule_from_their_reported_at(session):
    lon, lat = _point(session)
    gdf = gpd.GeoDataFrame({
        "category": ["illegal_construction", "cover_damaged"], "urgency": ["normal", "urgent"],
        "reported_at": ["2026-02-13T16:00:00+08:00", "2026-02-15T03:00:00+08:00"],
        "status": ["closed", "closed"], "client_uuid": [str(uuid.uuid4()), str(uuid.uuid4())]},
        geometry=[shapely.Point(lon, lat)] * 2, crs=4326)
    assert import_features(session, "issues", gdf) == 2
    due = dict(session.execute(text(
        "SELECT client_uuid::text, due_at FROM issues WHERE client_uuid = ANY(CAST(:u AS uuid[]))"),
        {"u": list(gdf["client_uuid"])}).all())
    assert due[gdf["client_uuid"][0]] == datetime(2026, 3, 12, 17, 30, tzinfo=BEIJING)
    assert due[gdf["client_uuid"][1]] == datetime(2026, 2, 15, 5, tzinfo=BEIJING)


def test_every_demo_case_with_a_history_has_the_steps_its_history_runs(session):
    """The demo's steps were replayed from its events: the running step is the one its status
    runs, and every deadline is the rule's from its start."""
    mismatched = session.execute(text("""
        SELECT count(*) FROM issues i
          LEFT JOIN issue_steps s ON s.issue_id = i.id AND s.done_at IS NULL
         WHERE EXISTS (SELECT 1 FROM issue_events e WHERE e.issue_id = i.id)
           AND s.step IS DISTINCT FROM (CASE i.status """ + " ".join(
        f"WHEN '{status}' THEN '{step}'" for status, step in STATUS_STEP.items()) + " END)")
    ).scalar_one()
    assert mismatched == 0
    sample = session.execute(text("""
        SELECT i.category, i.urgency, s.step, s.started_at, s.due_at FROM issue_steps s
          JOIN issues i ON i.id = s.issue_id
         WHERE NOT EXISTS (SELECT 1 FROM issue_events e WHERE e.issue_id = i.id
                            AND e.kind = 'extension_approved')  -- moved: test_demo_db.py
         ORDER BY s.id LIMIT 300""")).all()
    assert sample
    calendar = load_calendar(session)
    for category, urgency, step, started_at, due_at in sample:
        assert due_at == deadline(started_at, category_limits(session, category)[urgency][step],
                                  calendar)
