"""Re-tagging only what a redraw can change (assign_changed) gives exactly the full re-tag's result.

Random redraws of the demo's grids (a strip handed to a neighbour, a grid shrunk away from its
neighbours, a grid retired), then, on the same data, the scoped re-tag and the full
``assign_stored_rows``, compared row for row: every issue's grid, version, method and distance,
every facility's and building's grid, and the events recorded.
"""

from __future__ import annotations

import pytest
import shapely
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from gis.exchange.transfer import export_features, import_features
from gis.geotag.assign import assign_changed, assign_stored_rows

SNAPSHOT = {
    "issues": "SELECT id, grid_id, grid_version, assignment, round(assignment_distance_m::numeric, 6) "
              "FROM issues ORDER BY id",
    "facilities": "SELECT id, grid_id, assignment FROM facilities ORDER BY id",
    "buildings": "SELECT id, grid_id FROM buildings ORDER BY id",
    "events": "SELECT issue_id, note FROM issue_events WHERE note LIKE '网格调整%' ORDER BY 1, 2",
}


def snapshot(session) -> dict:
    return {k: session.execute(text(q)).all() for k, q in SNAPSHOT.items()}


@pytest.fixture
def grids(session):
    """The current grids, and a check that the demo starts fully tagged (a full re-tag changes
    nothing), which is what the scoped re-tag assumes."""
    before = snapshot(session)
    assign_stored_rows(session.connection())
    assert snapshot(session) == before
    return export_features(session, "grids").set_index("code", drop=False)


def _neighbour(grids, code, retired=()):
    a = grids.geometry[code]
    shared = {c: a.boundary.intersection(g.boundary).length for c, g in grids.geometry.items()
              if c != code and c not in retired}
    return max(shared, key=shared.get)


def redraw(session, grids, kind: str, pick: int, width: float, retired: set[str]) -> list[str]:
    """Apply one change to a grid not retired earlier in the example (a retired code cannot be
    redrawn: importing it would start it again at version 1); returns the codes it redrew or
    retired, and adds a retired one to ``retired``."""
    live = sorted(set(grids.index) - retired)
    code = live[pick % len(live)]
    a = grids.geometry[code]
    if kind == "retire":
        session.execute(text("UPDATE grids SET valid_to = now() WHERE code = :c AND valid_to IS NULL"),
                        {"c": code})
        retired.add(code)
        return [code]
    if kind in ("shrink", "grow"):  # a gap (points there become nearest or unassigned), or
        # a grid grown into the open land outside its community (nearest points change grid)
        others = shapely.union_all([g for c, g in grids.geometry.items() if c != code])
        changed = grids.loc[[code]].copy()
        changed.loc[code, "geometry"] = (a.buffer(-width) if kind == "shrink"
                                         else a.buffer(width).difference(others))
        import_features(session, "grids", changed.reset_index(drop=True))
        return [code]
    other = _neighbour(grids, code, retired)
    b = grids.geometry[other]
    strip = a.intersection(a.boundary.intersection(b.boundary).buffer(width))
    changed = grids.loc[[code, other]].copy()
    changed.loc[code, "geometry"] = a.difference(strip)
    changed.loc[other, "geometry"] = b.union(strip)
    import_features(session, "grids", changed.reset_index(drop=True))
    return [code, other]


CHANGES = st.lists(st.tuples(st.sampled_from(["strip", "shrink", "grow", "retire"]),
                             st.integers(0, 1000), st.floats(0.0001, 0.0008)),
                   min_size=1, max_size=2)


def compare(session, change, include_closed: bool, by_time: bool) -> None:
    """Apply ``change`` (session -> changed codes), then assert the scoped re-tag and the full one
    leave the same rows, and that the scoped one read fewer."""
    example = session.begin_nested()
    since = session.execute(text("SELECT now()")).scalar_one()
    codes = change(session)
    redrawn = snapshot(session)

    scoped_run = session.begin_nested()
    scoped = assign_changed(session.connection(), None if by_time else codes, since=since,
                            include_closed=include_closed)
    after_scoped = snapshot(session)
    scoped_run.rollback()
    assert snapshot(session) == redrawn

    full = assign_stored_rows(session.connection(), include_closed=include_closed)
    after_full = snapshot(session)
    example.rollback()

    for key in SNAPSHOT:
        assert after_scoped[key] == after_full[key], key
    for table in ("issues", "facilities", "buildings"):
        assert scoped.tables[table].changed == full.tables[table].changed, table
    assert scoped.tables["issues"].scanned < full.tables["issues"].scanned
    assert scoped.tables["facilities"].scanned < full.tables["facilities"].scanned


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=CHANGES, include_closed=st.booleans(), by_time=st.booleans())
@example(changes=[("retire", 0, 0.0005), ("shrink", 0, 0.0005)], include_closed=False,
         by_time=False)  # a grid retired, then the next one redrawn
@example(changes=[("retire", 1, 0.0005), ("strip", 0, 0.0005)], include_closed=True,
         by_time=True)
def test_the_scoped_re_tag_equals_the_full_one_row_for_row(session, grids, changes,
                                                           include_closed, by_time):
    retired: set[str] = set()
    compare(session, lambda s: sorted({c for kind, pick, width in changes
                                       for c in redraw(s, grids, kind, pick, width, retired)}),
            include_closed, by_time)


def _points_outside(grids, code: str, metres: float, n: int) -> list:
    """``n`` points about ``metres`` outside the grid's edge on the open side (outside every grid)."""
    union = shapely.union_all(list(grids.geometry))
    ring = grids.geometry[code].buffer(metres / 111_000).exterior
    spots = [ring.interpolate(f, normalized=True) for f in [i / 400 for i in range(400)]]
    outside = [p for p in spots if p.distance(union) > 0.8 * metres / 111_000]
    assert len(outside) >= n, code
    return outside[:: len(outside) // n][:n]


@pytest.mark.parametrize("kind", ["shrink", "grow"])
def test_rows_tagged_by_the_tolerance_move_too(session, grids, kind):
    """Facilities ~30 m outside a grid on the city's edge are tagged to it as nearest; the grid
    shrinks (they end up beyond the tolerance) or grows (they end up inside): the rows outside
    both versions within the tolerance of one are found only by the search band."""
    union = shapely.union_all(list(grids.geometry))
    code = next(c for c in sorted(grids.index)
                if grids.geometry[c].boundary.intersection(union.boundary).length > 0.002)
    for p in _points_outside(grids, code, 30, 12):
        session.execute(text("INSERT INTO facilities (category, geom) VALUES "
                             "('bench', ST_SetSRID(ST_MakePoint(:x, :y), 4326))"),
                        {"x": p.x, "y": p.y})
    assign_stored_rows(session.connection(), include_closed=True)
    nearest = session.execute(text(
        "SELECT count(*) FROM facilities f JOIN grids g ON g.id = f.grid_id "
        "WHERE g.code = :c AND f.assignment = 'nearest'"), {"c": code}).scalar_one()
    assert nearest >= 8
    pick = sorted(grids.index).index(code)
    width = 0.00025 if kind == "shrink" else 0.0002
    compare(session, lambda s: redraw(s, grids, kind, pick, width, set()), True, False)


def test_a_redraw_that_moves_rows_is_seen_by_the_scoped_re_tag(session, grids):
    """The comparison above is not vacuous: a strip handed over moves issues and facilities."""
    codes = redraw(session, grids, "strip", 4, 0.0008, set())
    report = assign_changed(session.connection(), codes, include_closed=True)
    assert report.tables["issues"].changed > 0 and report.tables["facilities"].changed > 0
    again = assign_changed(session.connection(), codes, include_closed=True)
    assert again.tables["issues"].changed == 0 and again.tables["facilities"].changed == 0


def test_nothing_changed_means_nothing_read(session, grids):
    report = assign_changed(session.connection(), ["999999999999999"])
    assert all(r.scanned == 0 and r.changed == 0 for r in report.tables.values())
    with pytest.raises(ValueError, match="codes or a time"):
        assign_changed(session.connection())
