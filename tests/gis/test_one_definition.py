"""Each domain rule has one definition, and every reader of it agrees (against the demo database,
each test rolled back).

These pin the drifts found between endpoints: the on-time rate (the statistics divided by closed
cases with a due time, the heatmap by all closed cases), ``overdue`` (None in one place, False in
another), the idempotency key (private in OGC, public in the list) and a category with no time
limit (overdue at once).
"""

from __future__ import annotations

import uuid
from datetime import date

import geopandas as gpd
import pytest
from sqlalchemy import text

from gis.exchange.grid_package import export_grid_package
from gis.geotag.index_cache import GridIndexCache
from gis.issues.detail import issue_detail
from gis.issues.reporting import IssueReport, report_issue
from gis.people.actors import load_actor
from gis.queries import map_data, reads, statistics
from gis.queries.filters import IssueFilter
from gis.queries.issue_model import PERSONAL_FIELDS
from gis.rules import overdue_sql

GRID_03 = "140429100001003"
# Demo accounts, loaded as the application loads them (with their grids and region).
LEADER, OWNER, OTHER = "leader", "worker03", "worker05"


def as_actor(session, username):
    return None if username is None else load_actor(session, username)[0]


@pytest.fixture
def closed_without_due_time(session):
    """A third of grid 003's closed cases lose their due time: the case the on-time rate's two
    old definitions disagreed on."""
    changed = session.execute(text("""
        UPDATE issues SET due_at = NULL WHERE id IN (
            SELECT i.id FROM issues i JOIN grids g ON g.id = i.grid_id
             WHERE g.code = :c AND i.status = 'closed' AND i.id % 3 = 0)"""), {"c": GRID_03})
    assert changed.rowcount > 0
    return changed.rowcount


FILTERS = [IssueFilter(), IssueFilter(categories=("garbage", "noise")),
           IssueFilter(statuses=("closed",)), IssueFilter(community="太东社区"),
           IssueFilter(since=date(2000, 1, 1), until=date(2100, 12, 31))]


@pytest.mark.parametrize("flt", FILTERS, ids=lambda f: repr(f.key()[3:6]))
def test_on_time_rate_is_the_same_in_statistics_and_heatmap(session, closed_without_due_time, flt):
    rows, _ = statistics.grid_stats(session, as_actor(session, LEADER), flt)
    api = {r["grid_code"]: r["on_time_rate"] for r in rows}
    heat = map_data.heatmap_data(session, flt, hotspots=False).grids
    panel = dict(zip(heat["code"], heat["on_time_rate"], strict=True))
    assert api == panel
    assert api[GRID_03] is not None


def test_on_time_rate_is_the_same_in_statistics_heatmap_and_overview(session,
                                                                      closed_without_due_time):
    rows, _ = statistics.grid_stats(session, as_actor(session, LEADER), IssueFilter())
    api = {r["grid_code"]: r["on_time_rate"] for r in rows}
    heat = map_data.heatmap_data(session, IssueFilter(), hotspots=False).grids
    over = map_data.overview_data(session).grids
    assert api == dict(zip(heat["code"], heat["on_time_rate"], strict=True))
    assert api == dict(zip(over["code"], over["on_time_rate"], strict=True))
    # and it is the rule's definition: on time / closed cases that had a due time
    on_time, rated = session.execute(text("""
        SELECT count(*) FILTER (WHERE i.closed_at <= i.due_at),
               count(*) FILTER (WHERE i.due_at IS NOT NULL)
          FROM issues i JOIN grids g ON g.id = i.grid_id
         WHERE g.code = :c AND i.status = 'closed'"""), {"c": GRID_03}).one()
    assert api[GRID_03] == round(on_time / rated, 4)


def _open_issue_of_grid_03(session) -> int:
    """Every demo grid has an open case whose time runs (not on hold), whatever day the demo is
    seen on; its status varies."""
    return session.execute(text("""
        SELECT i.id FROM issues i JOIN grids g ON g.id = i.grid_id
         WHERE g.code = :c AND i.status NOT IN ('closed', 'rejected', 'on_hold')
         ORDER BY i.id LIMIT 1"""),
        {"c": GRID_03}).scalar_one()


@pytest.fixture
def open_issue_without_due_time(session) -> int:
    issue_id = _open_issue_of_grid_03(session)
    session.execute(text("UPDATE issues SET due_at = NULL WHERE id = :i"), {"i": issue_id})
    return issue_id


def test_overdue_is_a_boolean_wherever_an_issue_is_read(session, open_issue_without_due_time,
                                                        tmp_path):
    issue_id = open_issue_without_due_time
    assert reads.get_issue(session, as_actor(session, LEADER), issue_id)[0]["overdue"] is False
    listed = reads.list_issues(session, as_actor(session, LEADER), IssueFilter(grid=GRID_03), limit=10_000).items
    assert all(type(r["overdue"]) is bool for r in listed)
    assert next(r for r in listed if r["id"] == issue_id)["overdue"] is False
    on_map = map_data.grid_map_data(session, GRID_03).issues.set_index("id")
    assert on_map["overdue"].map(type).eq(bool).all()
    assert on_map.loc[issue_id, "overdue"] is False or not on_map.loc[issue_id, "overdue"]
    assert bool(issue_detail(session, issue_id).issue["overdue"].iloc[0]) is False
    export_grid_package(session, GRID_03, tmp_path / "g.gpkg", reader=reads.PUBLIC)
    packed = gpd.read_file(tmp_path / "g.gpkg", layer="issues").set_index("id")
    assert not packed.loc[issue_id, "overdue"]


def test_overdue_means_open_with_a_due_time_in_the_past(session):
    """Every reader's flag equals the rule, row by row, over the whole grid."""
    # Whether the grid's open cases are past due depends on the moment the demo is seen: make one.
    session.execute(text("UPDATE issues SET due_at = now() - interval '1 hour' WHERE id = :i"),
                    {"i": _open_issue_of_grid_03(session)})
    expected = dict(session.execute(text("""
        SELECT i.id, i.status NOT IN ('closed', 'rejected', 'on_hold') AND i.due_at IS NOT NULL
                     AND i.due_at < now()
          FROM issues i JOIN grids g ON g.id = i.grid_id WHERE g.code = :c"""),
        {"c": GRID_03}).all())
    assert any(expected.values()) and not all(expected.values())
    listed = reads.list_issues(session, as_actor(session, LEADER), IssueFilter(grid=GRID_03), limit=10_000).items
    assert {r["id"]: r["overdue"] for r in listed} == expected
    on_map = map_data.grid_map_data(session, GRID_03).issues
    assert {int(i): bool(o) for i, o in zip(on_map["id"], on_map["overdue"], strict=True)} == {
        i: o for i, o in expected.items() if i in set(on_map["id"])}


@pytest.mark.parametrize("actor, sees", [(None, False), (OTHER, False), (OWNER, True),
                                         (LEADER, True)])
def test_personal_fields_only_for_those_with_the_right(session, actor, sees):
    """The device key is left out and the contact masked for those without the right (and the
    anonymous read nothing unless the service is open for public reading)."""
    actor = as_actor(session, actor)
    newest = session.execute(text("""
        SELECT i.id FROM issues i JOIN grids g ON g.id = i.grid_id WHERE g.code = :g
         ORDER BY i.reported_at DESC, i.id DESC LIMIT 1"""), {"g": GRID_03}).scalar_one()
    session.execute(text("UPDATE issues SET reporter_contact = '13812345678', "
                         "description = '3号楼 电话 13912345678' WHERE id = :i"), {"i": newest})
    listed = reads.list_issues(session, actor, IssueFilter(grid=GRID_03), limit=50,
                               public_read=True).items
    one = reads.get_issue(session, actor, newest, public_read=True)[0]
    assert listed[0]["id"] == newest
    for row in [*listed, one]:
        assert ("client_uuid" in row) is sees
    for row in (listed[0], one):
        assert (row["reporter_contact"], row["description"]) == (
            ("13812345678", "3号楼 电话 13912345678") if sees else ("138****5678", "3号楼 电话 139****5678"))
    assert set(PERSONAL_FIELDS) == {"reporter_contact", "client_uuid"}


def test_no_personal_field_on_the_public_pages_data(session):
    columns = set(map_data.grid_map_data(session, GRID_03).issues.columns)
    issue_id = int(map_data.grid_map_data(session, GRID_03).issues["id"].iloc[0])
    columns |= set(issue_detail(session, issue_id).issue.columns)
    assert not columns & set(PERSONAL_FIELDS)


def test_a_category_without_time_limit_gives_an_issue_never_overdue(session):
    session.execute(text("DELETE FROM time_limits WHERE category = 'noise'"))
    lon, lat = session.execute(text(
        "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM grids "
        "WHERE code = :c AND valid_to IS NULL"), {"c": GRID_03}).one()
    worker = load_actor(session, "worker03")[0]
    stored = report_issue(session, GridIndexCache(), worker, IssueReport(
        x=lon, y=lat, category="noise", description="广场舞音响过大", client_uuid=uuid.uuid4()))
    row = reads.get_issue(session, as_actor(session, LEADER), stored.issue_id)[0]
    assert row["due_at"] is None and row["overdue"] is False
    # ten years on it is still not overdue: there is no time to be past
    ten_years_on = overdue_sql("i", now="now() + interval '10 years'")
    later = session.execute(text(f"SELECT {ten_years_on} FROM issues i WHERE i.id = :i"),
                            {"i": stored.issue_id}).scalar_one()
    assert later is False
