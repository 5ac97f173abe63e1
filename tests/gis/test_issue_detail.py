"""What the issue action page is given, read from the demo database (rolled back)."""

import pytest
from sqlalchemy import text

from gis.errors import NotFound
from gis.issues.detail import ISSUE_DETAIL_COLUMNS, issue_detail
from gis.issues.workflow import transition
from gis.people.actors import load_actor
from gis.queries import map_data
from gis.rules import TRANSITIONS

GRID = "140429100001008"


def _issue(session, where: str) -> int:
    return session.execute(text(f"""SELECT i.id FROM issues i JOIN grids g ON g.id = i.grid_id
        WHERE g.code = :c AND {where} ORDER BY i.id LIMIT 1"""), {"c": GRID}).scalar_one()


def test_whitelisted_columns_grid_worker_and_history(session):
    issue_id = _issue(session, "i.status NOT IN ('closed', 'rejected') "
                               "AND i.reporter_contact IS NOT NULL")
    data = issue_detail(session, issue_id)
    assert list(data.issue.columns) == [*ISSUE_DETAIL_COLUMNS, "worker", "geometry"]
    assert "reporter_contact" not in data.issue.columns
    row = data.issue.iloc[0]
    assert row["grid_code"] == GRID and row["worker"] and data.issue.crs.to_epsg() == 4326
    assert list(data.grid["code"]) == [GRID]
    assert data.grid.geometry.iloc[0].intersects(data.issue.geometry.iloc[0])
    assert data.category["code"] == row["category"] and data.category["name_zh"]
    events = session.execute(text("SELECT count(*) FROM issue_events WHERE issue_id = :i"),
                             {"i": issue_id}).scalar()
    assert len(data.history) == events > 0 and data.history[0]["to_status"] == "reported"
    assert data.allowed_next == TRANSITIONS[row["status"]]
    assert not data.streets.empty


def test_a_transition_shows_in_history_and_next_statuses(session):
    # Any grid's: which grid has a dispatched case depends on the day the demo is seen.
    issue_id = session.execute(text(
        "SELECT id FROM issues WHERE status = 'dispatched' ORDER BY id LIMIT 1")).scalar_one()
    before = map_data.data_version(session)
    transition(session, load_actor(session, "leader")[0], issue_id, "in_progress", "到场")
    data = issue_detail(session, issue_id)
    assert data.issue["status"].iloc[0] == "in_progress"
    assert data.history[-1] | {"id": None, "at": None} == {
        "id": None, "at": None, "actor": "leader", "from_status": "dispatched",
        "to_status": "in_progress", "note": "到场", "kind": "move", "department": None,
        "department_name": None, "details": None}
    assert data.allowed_next == ("resolved",)
    assert map_data.data_version(session) != before  # the page cache sees the change


def test_linked_facility_is_given(session):
    issue_id = _issue(session, "TRUE")
    assert issue_detail(session, issue_id).facility.empty
    facility = session.execute(text("SELECT id, code FROM facilities ORDER BY id LIMIT 1")).one()
    session.execute(text("UPDATE issues SET facility_id = :f WHERE id = :i"),
                    {"f": facility.id, "i": issue_id})
    data = issue_detail(session, issue_id)
    assert list(data.facility["code"]) == [facility.code]
    assert data.issue["facility_code"].iloc[0] == facility.code


def test_missing_issue_is_not_found(session):
    missing = session.execute(text("SELECT max(id) + 1 FROM issues")).scalar()
    with pytest.raises(NotFound, match=str(missing)):
        issue_detail(session, missing)
