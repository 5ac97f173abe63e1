"""The statistics' rollup (migration 0013: per-grid totals and closing times) against a scan.

After random changes through SQL (one or many rows a statement, grids redrawn into new
versions) and through the workflow, the rollup still equals a scan of the issues (``check``
finds nothing), and the per-grid statistics with their medians give, for random filters and
readers, exactly what a scan gives.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gis.people.actors import load_actor
from gis.queries import rollup, statistics
from gis.queries.filters import IssueFilter
from gis.rules import BEIJING
from tests.gis.test_rollup import (
    CHANGES,
    READERS,
    _by_code,
    _insert,
    _scoped,
    filters,
    issue_rows,
)
from tests.gis.test_rollup import (
    EXAMPLES as ROLLUP_EXAMPLES,
)
from tests.gis.workflow_moves import move_cases, open_case_ids

# Fewer examples than the rollup's own tests: the suite's time is budgeted, and each
# example here also runs the scan it is compared with.
EXAMPLES = settings(ROLLUP_EXAMPLES, max_examples=8)

# A grid redrawn: its current version retired, a new version of the same code, and the picked
# issues of the old version moved to it (a code then has closings in two grid rows).
REDRAW = ("""
    WITH old AS (
        UPDATE grids SET valid_to = now()
         WHERE valid_to IS NULL AND id = (SELECT grid_id FROM issues
                                           WHERE id = ANY(:ids) AND grid_id IS NOT NULL
                                           ORDER BY id LIMIT 1)
        RETURNING *),
    new AS (
        INSERT INTO grids (code, name, community_id, geom, households, version)
        SELECT code, name, community_id, geom, households, version + 1 FROM old
        RETURNING id)
    UPDATE issues SET grid_id = (SELECT id FROM new)
     WHERE id = ANY(:ids) AND grid_id = (SELECT id FROM old)""", st.just(0))
STATS_CHANGES = CHANGES | {
    "redraw": REDRAW,
    "close_now": ("UPDATE issues SET status = 'closed', closed_at = reported_at + "
                  "make_interval(secs => :v) WHERE id = ANY(:ids)",
                  st.floats(0, 2e6).map(lambda x: round(x, 3))),
    "closed_without_time": ("UPDATE issues SET status = 'closed', closed_at = NULL "
                            "WHERE id = ANY(:ids)", st.just(0)),
}
operations = st.lists(st.tuples(st.sampled_from(sorted(STATS_CHANGES)),
                                st.lists(st.integers(0, 50), min_size=1, max_size=4),
                                st.data()), max_size=8)


def _apply(sql, grid_ids, rows, ops) -> None:
    ids = _insert(sql, grid_ids, rows)
    pool = ids + [r[0] for r in sql("SELECT id FROM issues ORDER BY id LIMIT 30")]
    for name, picks, data in ops:
        statement, values = STATS_CHANGES[name]
        sql(statement, ids=sorted({pool[p % len(pool)] for p in picks}), v=data.draw(values))


def _both_ways(session, flt) -> tuple[pd.DataFrame, pd.DataFrame]:
    ours = statistics.counts_by_grid(session, flt, median=True)
    scanned = statistics.counts_by_grid(session, flt, median=True, rollup=False)
    return _by_code(ours), _by_code(scanned)


@given(rows=issue_rows(6), ops=operations)
@EXAMPLES
def test_changes_keep_the_statistics_rollup_equal_to_a_scan(session, sql, grid_ids, rows, ops):
    with session.begin_nested() as example:
        _apply(sql, grid_ids, rows, ops)
        found = rollup.check(session)
        example.rollback()
    assert found == []


@given(rows=issue_rows(6), ops=operations, data=st.data(), reader=st.sampled_from(READERS))
@EXAMPLES
def test_per_grid_statistics_with_medians_are_those_of_a_scan(session, sql, grid_ids, demo_times,
                                                             rows, ops, data, reader):
    flt = _scoped(session, data.draw(filters(demo_times)), reader)
    with session.begin_nested() as example:
        _apply(sql, grid_ids, rows, ops)
        ours, scanned = _both_ways(session, flt)
        example.rollback()
    pd.testing.assert_frame_equal(ours, scanned, check_exact=True)


@given(hours=st.lists(st.floats(0, 2000).map(lambda h: round(h, 6)), min_size=1, max_size=9),
       grid=st.integers(0, 13))
@EXAMPLES
def test_the_middle_of_a_grids_closings_is_percentile_conts_median(session, sql, grid_ids, hours,
                                                                   grid):
    """Odd and even numbers of closings, ties and values on the rounding's edges: the middle
    of the sorted hours, interpolated in SQL, is the scan's percentile_cont to the bit."""
    at = datetime(2025, 3, 3, 9, tzinfo=BEIJING)
    with session.begin_nested() as example:
        sql("DELETE FROM issues WHERE grid_id = :g", g=grid_ids[grid])
        for h in hours:
            sql("""INSERT INTO issues (category, status, geom, grid_id, reported_at, closed_at)
                   VALUES ('noise', 'closed', ST_SetSRID(ST_MakePoint(112.86, 36.84), 4326), :g,
                           :at, :closed)""", g=grid_ids[grid], at=at,
                closed=at + timedelta(microseconds=round(h * 3600e6)))
        ours, scanned = _both_ways(session, IssueFilter())
        example.rollback()
    pd.testing.assert_frame_equal(ours, scanned, check_exact=True)
    assert ours["median_hours_to_close"].notna().any()


@given(steps=st.lists(st.integers(0, 30), min_size=1, max_size=10))
@EXAMPLES
def test_the_workflow_keeps_the_closings_equal_to_a_scan(session, steps):
    admin = load_actor(session, "admin")[0]
    ids = open_case_ids(session)
    with session.begin_nested() as example:
        move_cases(session, admin, ids, steps)
        found = rollup.check(session)
        ours, scanned = _both_ways(session, IssueFilter())
        example.rollback()
    assert found == []
    pd.testing.assert_frame_equal(ours, scanned, check_exact=True)


@pytest.mark.parametrize("damage", [
    "UPDATE issue_rollup_grid_totals SET n = n + 1 "
    "WHERE ctid = (SELECT min(ctid) FROM issue_rollup_grid_totals)",
    "UPDATE issue_rollup_closings SET hours[1] = hours[1] + 1e-9 "
    "WHERE ctid = (SELECT min(ctid) FROM issue_rollup_closings)",
    "DELETE FROM issue_rollup_closings WHERE ctid = (SELECT max(ctid) FROM issue_rollup_closings)",
])
def test_an_altered_statistics_rollup_is_found_and_a_rebuild_repairs_it(session, sql, damage):
    sql(damage)
    found = rollup.check(session)
    assert len(found) == 1 and found[0]["stored"] != found[0]["scanned"]
    rollup.rebuild(session, rollup.cell_grid(session))
    assert rollup.check(session) == []


def test_closed_issues_loaded_with_the_triggers_off_are_found_until_a_rebuild(session, sql,
                                                                             grid_ids):
    sql("ALTER TABLE issues DISABLE TRIGGER USER")
    _insert(sql, grid_ids, [{"category": "noise", "status": "closed", "lon": 112.86,
                             "lat": 36.84, "located": True, "grid": 2,
                             "reported_at": datetime(2025, 3, 3, tzinfo=BEIJING),
                             "due_h": 5, "closed_h": 7}])
    sql("ALTER TABLE issues ENABLE TRIGGER USER")
    assert {d["table"] for d in rollup.check(session)} == {*rollup.TABLES, rollup.CLOSINGS,
                                                        rollup.DAYS}
    counts = rollup.rebuild(session, rollup.cell_grid(session))
    assert rollup.check(session) == [] and counts == rollup.sizes(session)


def test_the_closings_are_read_for_the_unfiltered_medians(session, monkeypatch):
    """With the issues made unreadable to the median's scan, the unfiltered statistics still
    come (from the closings); a filter the keys cannot express needs the scan."""
    def refuse(*args, **kwargs):
        raise RuntimeError("scanned")
    monkeypatch.setattr(statistics, "_scan_medians", refuse)
    frame = statistics.counts_by_grid(session, IssueFilter(), median=True)
    assert frame["median_hours_to_close"].notna().any()
    statistics.counts_by_grid(session, IssueFilter(categories=("noise",)), median=True)
    with pytest.raises(RuntimeError, match="scanned"):
        statistics.counts_by_grid(session, IssueFilter(q="垃圾"), median=True)
