"""Re-tagging stored rows after a grid is redrawn (gridmap assign), on the demo in PostGIS."""

import pytest
from sqlalchemy import text

from gis.exchange.transfer import export_features, import_features
from gis.geotag.assign import assign_stored_rows

STRIP_DEG = 0.0004  # about 35-45 m


@pytest.fixture
def shrunk(session):
    """Grid 005 hands a ~40 m strip along its longest shared edge to that neighbour: both are
    redrawn (new versions), and every issue in the strip is opened so the test sees moves."""
    grids = export_features(session, "grids").set_index("code", drop=False)
    code = next(c for c in grids.index if c.endswith("005"))
    a = grids.geometry[code]
    shared = {c: a.boundary.intersection(g.boundary).length for c, g in grids.geometry.items() if c != code}
    neighbour = max(shared, key=shared.get)
    strip = a.intersection(a.boundary.intersection(grids.geometry[neighbour].boundary).buffer(STRIP_DEG))
    old_id = session.execute(text("SELECT id FROM grids WHERE code = :c AND valid_to IS NULL"),
                             {"c": code}).scalar_one()
    session.execute(text(
        "UPDATE issues SET status = 'in_progress' WHERE grid_id = :g "
        "AND ST_Contains(ST_GeomFromText(:strip, 4326), geom) AND id % 2 = 0"),
        {"g": old_id, "strip": strip.wkt})
    redrawn = grids.loc[[code, neighbour]].copy()
    redrawn.loc[code, "geometry"] = a.difference(strip)
    redrawn.loc[neighbour, "geometry"] = grids.geometry[neighbour].union(strip)
    import_features(session, "grids", redrawn.reset_index(drop=True))
    return code, old_id


def _in_strip(session, old_id: int, where: str) -> list:
    return session.execute(text(f"""
        SELECT i.id, i.status FROM issues i, grids old, grids new
         WHERE old.id = :old AND new.code = old.code AND new.valid_to IS NULL
           AND i.grid_id = :old AND NOT ST_Covers(new.geom, i.geom) AND {where}"""),
        {"old": old_id}).all()


def test_redraw_moves_open_issues_in_the_strip_and_records_why(session, shrunk):
    code, old_id = shrunk
    moved_open = _in_strip(session, old_id, "i.status NOT IN ('closed', 'rejected')")
    kept_closed = _in_strip(session, old_id, "i.status IN ('closed', 'rejected')")
    assert moved_open and kept_closed  # the fixture really cuts through reported issues
    report = assign_stored_rows(session.connection())
    issues = report.tables["issues"]
    assert issues.changed == len(moved_open)
    for issue_id, _status in moved_open:
        grid_code, note = session.execute(text("""
            SELECT g.code, e.note FROM issues i JOIN grids g ON g.id = i.grid_id
              JOIN issue_events e ON e.issue_id = i.id WHERE i.id = :id
             ORDER BY e.id DESC LIMIT 1"""), {"id": issue_id}).one()
        assert grid_code != code
        assert note.startswith("网格调整") and code in note and grid_code in note
    # closed issues keep the grid (version) they were handled under
    for issue_id, _status in kept_closed:
        assert session.execute(text("SELECT grid_id FROM issues WHERE id = :id"),
                               {"id": issue_id}).scalar_one() == old_id


def test_open_issues_still_inside_move_to_the_new_version_silently(session, shrunk):
    code, old_id = shrunk
    before_events = session.execute(text("SELECT count(*) FROM issue_events")).scalar_one()
    report = assign_stored_rows(session.connection())
    new_id, new_version = session.execute(text(
        "SELECT id, version FROM grids WHERE code = :c AND valid_to IS NULL"), {"c": code}).one()
    assert new_version == 2
    still = session.execute(text(
        "SELECT count(*) FROM issues WHERE grid_id = :n AND grid_version = 2 "
        "AND status NOT IN ('closed', 'rejected')"), {"n": new_id}).scalar_one()
    assert still > 0
    added = session.execute(text("SELECT count(*) FROM issue_events")).scalar_one() - before_events
    assert added == report.tables["issues"].changed  # events only for real moves


def test_all_re_tags_closed_issues_too(session, shrunk):
    code, old_id = shrunk
    assign_stored_rows(session.connection(), include_closed=True)
    left_on_old = session.execute(text("SELECT count(*) FROM issues WHERE grid_id = :o"),
                                  {"o": old_id}).scalar_one()
    assert left_on_old == 0


def test_a_second_run_changes_nothing(session, shrunk):
    assign_stored_rows(session.connection())
    again = assign_stored_rows(session.connection())
    assert again.tables["issues"].changed == 0 and again.tables["facilities"].changed == 0
