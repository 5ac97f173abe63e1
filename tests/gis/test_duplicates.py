"""Possible duplicates: same category, open, within 30 m (geodesic) and 48 h before."""

import pytest
from pyproj import Geod
from sqlalchemy import text

from gis.db.steps import Statement, merged
from gis.issues.duplicates import (
    DUPLICATE_RADIUS_M,
    DUPLICATES_LISTED,
    nearby_statement,
    possible_duplicates,
)

GEOD = Geod(ellps="WGS84")


def _issue(session, lon, lat, *, hours_ago=1.0, category="sewer_blocked", status="reported"):
    return session.execute(text("""
        INSERT INTO issues (category, geom, status, reported_at)
        VALUES (:c, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :s,
                now() - make_interval(secs => :h * 3600)) RETURNING id"""),
        {"c": category, "lon": lon, "lat": lat, "s": status, "h": hours_ago}).scalar_one()


# Bearings matter at high latitude: a degree of longitude is shortest there, so the box that
# prefilters candidates must widen east-west (Mohe, 52.97° N; Sanya, 18.25° N; the demo).
@pytest.mark.parametrize("lon, lat", [(112.8615, 36.8415), (122.536, 52.972), (109.512, 18.252)])
@pytest.mark.parametrize("azimuth", [0, 90, 225])
def test_the_radius_is_metres_in_every_direction_and_latitude(session, lon, lat, azimuth):
    new = _issue(session, lon, lat, hours_ago=0)
    inside = _issue(session, *GEOD.fwd(lon, lat, azimuth, DUPLICATE_RADIUS_M - 1)[:2])
    outside = _issue(session, *GEOD.fwd(lon, lat, azimuth, DUPLICATE_RADIUS_M + 1)[:2])
    found = {d["id"]: d["distance_m"] for d in possible_duplicates(session, new)}
    assert inside in found and outside not in found
    assert found[inside] == pytest.approx(DUPLICATE_RADIUS_M - 1, abs=0.1)


def test_only_open_earlier_reports_of_the_same_category(session):
    lon, lat = 112.8615, 36.8415
    new = _issue(session, lon, lat, hours_ago=0)
    kept = _issue(session, lon, lat, hours_ago=47)
    left_out = [_issue(session, lon, lat, hours_ago=49), _issue(session, lon, lat, category="noise"),
                _issue(session, lon, lat, status="closed")]
    ids = [d["id"] for d in possible_duplicates(session, new)]
    assert kept in ids and not set(left_out) & set(ids)


def test_a_crowd_of_reports_lists_the_nearest_few(session):
    lon, lat = 112.8615, 36.8415
    new = _issue(session, lon, lat, hours_ago=0)
    crowd = [_issue(session, *GEOD.fwd(lon, lat, 90, 0.5 * k)[:2]) for k in range(1, 40)]
    found = possible_duplicates(session, new)
    assert [d["id"] for d in found] == crowd[:DUPLICATES_LISTED]



def test_the_search_reads_only_open_cases_of_the_category_near_the_point(session):
    """Through the open cases' index by category and place (migration 0018), not the index of
    every case ever reported there: alone (planned for its values) and as the intake sends a
    batch's searches (merged: the values are unknown when it is planned)."""
    one = Statement(*nearby_statement("sewer_blocked", 112.8615, 36.8415, None, None, public=True))
    other = Statement(*nearby_statement("garbage", 112.8625, 36.8425, None, None, public=True))
    (batch,), _ = merged([one, other])
    for statement in (one, batch):
        plan = "\n".join(session.execute(text(f"EXPLAIN {statement.sql}"),
                                          statement.params).scalars())
        assert "ix_issues_open_category_geom" in plan and "idx_issues_geom" not in plan, plan
    # Nor may the planner choose that index when the statistics change (it did, for the merged
    # form, in a database that had taken many batches): the search has no box on the geometry.
    assert "o.geom &&" not in one.sql.replace("\n", " ")
