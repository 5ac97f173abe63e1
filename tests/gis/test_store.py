"""gis.queries.reads queries, gis.edit.writes geometry checks and edits, gis.queries.statistics rules, below the HTTP layer.

Database tests use the rolled-back ``session``, so edits here (even of demo grids) never persist.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from gis.edit import writes
from gis.errors import (
    Forbidden,
    InvalidGeometry,
    InvalidParameter,
    NotFound,
    UnknownCategory,
    UnknownCRS,
)
from gis.geo.crs import from_wgs84
from gis.geotag.index_cache import GridIndexCache
from gis.people.actors import load_actor
from gis.queries import filters, reads, statistics
from gis.queries.filters import IssueFilter

GRID_03 = "140429100001003"
# Demo accounts, loaded as the application loads them (with their grids and region).
LEADER, ADMIN, OWNER, OTHER = "leader", "admin", "worker03", "worker05"


def as_actor(session, username):
    return None if username is None else load_actor(session, username)[0]


def _square(lon: float, lat: float, d: float = 0.0001) -> dict:
    return {"type": "Polygon", "coordinates": [[[lon, lat], [lon + d, lat], [lon + d, lat + d],
                                                [lon, lat + d], [lon, lat]]]}


# --- geometry input (no database) -------------------------------------------------------------

def test_a_valid_polygon_comes_back_in_wgs84_without_z():
    geom = {"type": "Polygon", "coordinates": [[[112.85, 36.84, 900], [112.851, 36.84, 900],
                                                [112.851, 36.841, 900], [112.85, 36.84, 900]]]}
    out = writes.read_geometry(geom, "wgs84", writes.POLYGON)
    assert out.geom_type == "Polygon" and not out.has_z
    assert out.exterior.coords[0] == (112.85, 36.84)


@pytest.mark.parametrize("crs", ["gcj02", "bd09", "EPSG:4547", "cgcs2000"])
def test_points_from_other_crs_are_converted(crs):
    x, y = from_wgs84(112.86, 36.84, crs)
    out = writes.read_geometry({"type": "Point", "coordinates": [float(x), float(y)]}, crs, writes.POINT)
    assert out.x == pytest.approx(112.86, abs=1e-7) and out.y == pytest.approx(36.84, abs=1e-7)


@pytest.mark.parametrize("geometry, allowed, message", [
    (_square(112.85, 36.84), writes.POINT, "expected a Point geometry, got Polygon"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}, writes.AREAL,
     "the Polygon is not valid: self-intersection at (0.5, 0.5)"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]],
                                         [[5, 5], [6, 5], [6, 6], [5, 5]]]}, writes.AREAL,
     "hole lies outside shell"),
    ({"type": "Polygon", "coordinates": [[[112.85, 36.84], [112.86, 36.84], [112.86, 95.5],
                                          [112.85, 36.84]]]}, writes.POLYGON,
     "lat[2] = 95.5 is outside [-90, 90]"),
    ({"type": "Polygon", "coordinates": []}, writes.POLYGON, "the Polygon is empty"),
    ({"type": "Point", "coordinates": [1]}, writes.POINT, "cannot be read"),
    ("POINT (1 2)", writes.POINT, "must be a GeoJSON object"),
])
def test_bad_geometries_are_refused_saying_why(geometry, allowed, message):
    with pytest.raises(InvalidGeometry) as caught:
        writes.read_geometry(geometry, "wgs84", allowed)
    assert message.lower() in str(caught.value).lower()


def test_vertex_limit_and_crs_errors():
    ring = [[112.85 + 0.001 * math.cos(a / 50), 36.84 + 0.001 * math.sin(a / 50)] for a in range(300)]
    circle = {"type": "Polygon", "coordinates": [ring + [ring[0]]]}
    with pytest.raises(InvalidGeometry, match="301 vertices; at most 300"):
        writes.read_geometry(circle, "wgs84", writes.POLYGON, max_vertices=300)
    assert writes.read_geometry(circle, "wgs84", writes.POLYGON, max_vertices=301).is_valid
    with pytest.raises(UnknownCRS):
        writes.read_geometry(_square(112.85, 36.84), "mars", writes.POLYGON)


def test_times_without_an_offset_are_beijing_time():
    assert filters.local_time(datetime(2025, 3, 1)).utcoffset() == timedelta(hours=8)
    aware = datetime(2025, 3, 1, tzinfo=UTC)
    assert filters.local_time(aware) is aware


# --- reads ------------------------------------------------------------------------------------

def test_issue_filter_open_and_named_statuses_combine_with_or(session):
    open_or_rejected = reads.list_issues(session, as_actor(session, ADMIN), IssueFilter(statuses=("open", "rejected")),
                                         limit=1).total
    expected = session.execute(text("SELECT count(*) FROM issues WHERE status <> 'closed'")).scalar()
    assert open_or_rejected == expected


def test_free_text_escapes_like_wildcards(session):
    session.execute(text("UPDATE issues SET description = '100%_完成' WHERE id = 1"))
    found = reads.list_issues(session, as_actor(session, ADMIN), IssueFilter(q="100%_"), limit=10)
    assert [r["id"] for r in found.items] == [1]
    assert reads.list_issues(session, as_actor(session, ADMIN), IssueFilter(q="1%0"), limit=1).total == 0


@pytest.mark.parametrize("actor, sees", [(None, False), (OWNER, True), (OTHER, False),
                                         (LEADER, True), (ADMIN, True)])
def test_reporter_contact_follows_the_actor(session, actor, sees):
    """Those without the right get the contact masked and no device key; anonymous callers get
    nothing unless the service is opened for public reading."""
    actor = as_actor(session, actor)
    session.execute(text("""
        UPDATE issues SET reporter_contact = '13812345678' WHERE id IN (
            SELECT i.id FROM issues i JOIN grids g ON g.id = i.grid_id WHERE g.code = :g)"""),
        {"g": GRID_03})
    page = reads.list_issues(session, actor, IssueFilter(grid=GRID_03), limit=20, public_read=True)
    assert page.items
    for row in page.items:
        assert ("client_uuid" in row) is sees
        assert row["reporter_contact"] == ("13812345678" if sees else "138****5678")
    one = reads.get_issue(session, actor, page.items[0]["id"], public_read=True)[0]
    assert one["reporter_contact"] == ("13812345678" if sees else "138****5678")
    if actor is None:
        assert reads.list_issues(session, None, IssueFilter(grid=GRID_03)).total == 0


def test_unknown_category_lists_the_known_ones(session):
    with pytest.raises(UnknownCategory, match="unknown issue categories 'a', 'b'; known: cover_damaged"):
        reads.list_issues(session, as_actor(session, ADMIN), IssueFilter(categories=("a", "b")))


def test_grid_detail_and_missing_items(session):
    grid = reads.get_grid(session, GRID_03)
    assert grid["worker"] == "worker03" and sum(grid["facilities_by_status"].values()) > 0
    with pytest.raises(NotFound, match="no current grid with code '999'"):
        reads.get_grid(session, "999")
    with pytest.raises(NotFound):
        reads.get_facility(session, -1)


def test_paging_past_the_end_still_counts(session):
    page = reads.list_buildings(session, offset=10_000)
    assert page.items == [] and page.total == 254


def test_categories_by_kind(session):
    kinds = {c["kind"] for c in reads.list_categories(session, "issue")}
    assert kinds == {"issue"}
    assert len(reads.list_categories(session)) == 25  # 11 facility, 14 issue categories


# --- statistics -------------------------------------------------------------------------------

def test_statistics_refuse_workers_and_unknown_buckets(session):
    with pytest.raises(Forbidden):
        statistics.grid_stats(session, as_actor(session, OWNER))
    with pytest.raises(InvalidParameter, match="bucket"):
        statistics.timeline(session, as_actor(session, LEADER), bucket="year")


def test_overdue_counts_follow_the_clock(session):
    """An open issue due in the future is not overdue; moved into the past, it is."""
    issue_id = session.execute(text(
        "SELECT i.id FROM issues i JOIN grids g ON g.id = i.grid_id WHERE g.code = :c "
        "AND i.status NOT IN ('closed', 'rejected', 'on_hold') LIMIT 1"), {"c": GRID_03}).scalar()
    session.execute(text("UPDATE issues SET due_at = now() - interval '1 hour' WHERE id = :i"),
                    {"i": issue_id})
    row = next(r for r in statistics.grid_stats(session, as_actor(session, LEADER))[0] if r["grid_code"] == GRID_03)
    assert reads.get_issue(session, as_actor(session, ADMIN), issue_id)[0]["overdue"] is True
    session.execute(text("UPDATE issues SET due_at = now() + interval '1 day' WHERE id = :i"),
                    {"i": issue_id})
    later = next(r for r in statistics.grid_stats(session, as_actor(session, LEADER))[0] if r["grid_code"] == GRID_03)
    assert later["overdue"] == row["overdue"] - 1 and later["open"] == row["open"]
    assert reads.get_issue(session, as_actor(session, ADMIN), issue_id)[0]["overdue"] is False


# --- edits (rolled back) ----------------------------------------------------------------------

def _point_in(session, code: str) -> tuple[float, float]:
    return session.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p "
                                "FROM grids WHERE code = :c AND valid_to IS NULL) s"),
                           {"c": code}).one()


def test_create_facility_tags_it_and_checks_the_worker(session):
    cache = GridIndexCache()
    lon, lat = _point_in(session, GRID_03)
    geometry = {"type": "Point", "coordinates": [lon, lat]}
    with pytest.raises(Forbidden, match="worker05 may not change facilities in grid " + GRID_03):
        writes.create_facility(session, cache, as_actor(session, OTHER), geometry=geometry, category="bench")
    fid = writes.create_facility(session, cache, as_actor(session, OWNER), geometry=geometry, category="bench",
                               name="座椅", props={"colour": "绿"})
    row = reads.get_facility(session, fid)
    assert (row["grid_code"], row["assignment"], row["props"]) == (GRID_03, "inside", {"colour": "绿"})
    writes.update_facility(session, cache, as_actor(session, OWNER), fid, status="missing", name=None)
    row = reads.get_facility(session, fid)
    assert row["status"] == "missing" and row["name"] is None
    writes.update_facility(session, cache, as_actor(session, OWNER), fid, status=None)  # null = leave the status as is
    assert reads.get_facility(session, fid)["status"] == "missing"


def test_redraw_of_a_demo_grid_versions_it_and_re_tags_open_issues(session):
    """Grid 003 redrawn as a tiny square: its open issues go to their neighbours or nowhere."""
    open_before = session.execute(text(
        "SELECT i.id FROM issues i JOIN grids g ON g.id = i.grid_id WHERE g.code = :c "
        "AND i.status NOT IN ('closed', 'rejected')"), {"c": GRID_03}).scalars().all()
    closed_grid = session.execute(text(
        "SELECT i.grid_id FROM issues i JOIN grids g ON g.id = i.grid_id WHERE g.code = :c "
        "AND i.status = 'closed' LIMIT 1"), {"c": GRID_03}).scalar()
    assert open_before
    lon, lat = _point_in(session, GRID_03)
    new_id = writes.redraw_grid(session, as_actor(session, ADMIN), GRID_03, geometry=_square(lon, lat, 0.00005))
    versions = session.execute(text("SELECT id, version, valid_to IS NULL FROM grids WHERE code = :c "
                                    "ORDER BY version"), {"c": GRID_03}).all()
    assert [(v, cur) for _, v, cur in versions] == [(1, False), (2, True)] and versions[1][0] == new_id
    still = session.execute(text("SELECT count(*) FROM issues WHERE id = ANY(:i) AND grid_id = :g"),
                            {"i": open_before, "g": new_id}).scalar()
    events = session.execute(text("SELECT count(*) FROM issue_events WHERE issue_id = ANY(:i) AND "
                                  "note LIKE '%grid redrawn%'"), {"i": open_before}).scalar()
    assert still + events == len(open_before) and events > 0
    assert session.execute(text("SELECT count(*) FROM issues WHERE grid_id = :g AND status = 'closed'"),
                           {"g": closed_grid}).scalar() > 0  # closed ones keep version 1


def test_grid_edits_need_an_admin(session):
    for actor in (as_actor(session, LEADER), as_actor(session, OWNER)):
        with pytest.raises(Forbidden, match="admin"):
            writes.retire_grid(session, actor, GRID_03)
    with pytest.raises(NotFound):
        writes.retire_grid(session, as_actor(session, ADMIN), "140429100001999")
