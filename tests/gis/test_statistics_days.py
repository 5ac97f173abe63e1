"""The timeline's rollup (migration 0016: counts and hours to close per day) against a scan.

After random changes through SQL and through the workflow the day table still equals a scan of
the issues (``check`` finds nothing), and the timeline, by day, week and month, for random
filters and readers (admin, a leader, a dispatcher), is exactly what a scan gives.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gis.people.actors import load_actor
from gis.queries import rollup, statistics
from gis.queries.filters import IssueFilter
from gis.rules import BEIJING
from tests.gis.test_rollup import EXAMPLES as ROLLUP_EXAMPLES
from tests.gis.test_rollup import filters, issue_rows
from tests.gis.test_statistics_rollup import _apply, operations
from tests.gis.workflow_moves import move_cases, open_case_ids

# Fewer examples than the rollup's own tests: the suite's time is budgeted, and each
# example here also runs the scan it is compared with.
EXAMPLES = settings(ROLLUP_EXAMPLES, max_examples=8)

READERS = ("admin", "leader", "dispatcher")


BUCKETS = st.sampled_from(statistics.BUCKETS)


def _both_ways(session, reader: str, flt: IssueFilter, bucket: str) -> tuple[list, list]:
    actor = load_actor(session, reader)[0]
    return (statistics.timeline(session, actor, flt, bucket),
            statistics.timeline(session, actor, flt, bucket, use_rollup=False))


@given(rows=issue_rows(6), ops=operations, data=st.data(), reader=st.sampled_from(READERS),
       bucket=BUCKETS)
@EXAMPLES
def test_the_timeline_from_the_days_is_that_of_a_scan(session, sql, grid_ids, demo_times, rows,
                                                      ops, data, reader, bucket):
    flt = data.draw(filters(demo_times))
    with session.begin_nested() as example:
        _apply(sql, grid_ids, rows, ops)
        found = [d for d in rollup.check(session) if d["table"] == rollup.DAYS]
        ours, scanned = _both_ways(session, reader, flt, bucket)
        example.rollback()
    assert found == []
    assert ours == scanned


HOURS = st.floats(-50, 2000).map(lambda h: round(h, 6)) | st.sampled_from([0.0, 1.25, 24.05])


@given(hours=st.lists(HOURS, min_size=1, max_size=40),
       days=st.lists(st.integers(0, 20), min_size=1, max_size=9), bucket=BUCKETS,
       margin=st.sampled_from([1.0, 0.0, 0.05]))
@EXAMPLES
def test_a_buckets_median_is_percentile_conts_to_the_bit(session, sql, grid_ids, monkeypatch,
                                                         hours, days, bucket, margin):
    """Odd and even numbers of closings spread over the days of a bucket, ties and values on
    the rounding's edges: the median chosen in numpy and interpolated in SQL is the scan's,
    whether the first guess of the middle holds it or misses (a narrow margin)."""
    monkeypatch.setattr(statistics, "MEDIAN_MARGIN", margin)
    with session.begin_nested() as example:
        sql("DELETE FROM issues")
        for k, h in enumerate(hours):
            at = datetime(2025, 3, 3, 9, tzinfo=BEIJING) + timedelta(days=days[k % len(days)])
            sql("""INSERT INTO issues (category, status, geom, grid_id, reported_at, closed_at)
                   VALUES ('noise', 'closed', ST_SetSRID(ST_MakePoint(112.86, 36.84), 4326), :g,
                           :at, :closed)""", g=grid_ids[0], at=at,
                closed=at + timedelta(microseconds=round(h * 3600e6)))
        ours, scanned = _both_ways(session, "admin", IssueFilter(), bucket)
        example.rollback()
    assert ours == scanned
    assert any(r["median_hours_to_close"] is not None for r in ours)


@given(steps=st.lists(st.integers(0, 30), min_size=1, max_size=10), bucket=BUCKETS)
@EXAMPLES
def test_the_workflow_keeps_the_days_equal_to_a_scan(session, steps, bucket):
    admin = load_actor(session, "admin")[0]
    ids = open_case_ids(session)
    with session.begin_nested() as example:
        move_cases(session, admin, ids, steps)
        found = rollup.check(session)
        ours, scanned = _both_ways(session, "admin", IssueFilter(), bucket)
        example.rollback()
    assert found == []
    assert ours == scanned


@pytest.mark.parametrize("damage", [
    "UPDATE issue_rollup_days SET n = n + 1 WHERE ctid = (SELECT min(ctid) FROM issue_rollup_days)",
    "UPDATE issue_rollup_days SET hours[1] = hours[1] + 1e-9 "
    "WHERE ctid = (SELECT min(ctid) FROM issue_rollup_days WHERE cardinality(hours) > 0)",
    "DELETE FROM issue_rollup_days WHERE ctid = (SELECT max(ctid) FROM issue_rollup_days)",
])
def test_an_altered_day_table_is_found_and_a_rebuild_repairs_it(session, sql, damage):
    sql(damage)
    found = rollup.check(session)
    assert len(found) == 1 and found[0]["table"] == rollup.DAYS
    assert found[0]["stored"] != found[0]["scanned"]
    rollup.rebuild(session, rollup.cell_grid(session))
    assert rollup.check(session) == []


def test_the_days_are_read_for_the_city_and_a_region_is_scanned(session, monkeypatch):
    """With the scan made to fail, the city's timeline still comes (from the day table); a
    leader's region, which the day table has no key for, is scanned."""
    admin, leader = load_actor(session, "admin")[0], load_actor(session, "leader")[0]
    real = session.execute

    def refuse(statement, *args, **kwargs):
        if "generate_series" in str(statement):
            raise RuntimeError("scanned")
        return real(statement, *args, **kwargs)
    monkeypatch.setattr(session, "execute", refuse)
    assert statistics.timeline(session, admin, IssueFilter(), "week")
    with pytest.raises(RuntimeError, match="scanned"):
        statistics.timeline(session, leader, IssueFilter(), "week")


# -- the workers --------------------------------------------------------------------------------
WHOLE = "UPDATE grid_assignments SET valid_from = '2000-01-01', valid_to = NULL WHERE valid_to IS NULL"
# Assignment changes: a worker's grid handed over at a drawn time to another worker (both then
# partial), a worker given a second grid, an assignment starting inside the data.
ASSIGNMENTS = {
    "handover": ("""
        WITH old AS (
            UPDATE grid_assignments SET valid_to = :at
             WHERE id = (SELECT id FROM grid_assignments WHERE valid_to IS NULL AND valid_from < :at
                          ORDER BY id OFFSET :k LIMIT 1)
            RETURNING grid_code)
        INSERT INTO grid_assignments (grid_code, user_id, valid_from)
        SELECT old.grid_code, (SELECT u.id FROM users u WHERE u.role = 'worker'
                                ORDER BY u.id OFFSET :k + 1 LIMIT 1), :at FROM old
        ON CONFLICT DO NOTHING"""),
    "second_grid": ("""
        INSERT INTO grid_assignments (grid_code, user_id, valid_from)
        SELECT (SELECT code FROM grids WHERE valid_to IS NULL ORDER BY code OFFSET :k LIMIT 1),
               (SELECT u.id FROM users u WHERE u.role = 'worker' ORDER BY u.id LIMIT 1), '2000-01-01'
        ON CONFLICT DO NOTHING"""),
    "late_start": ("""
        UPDATE grid_assignments SET valid_from = :at
         WHERE id = (SELECT id FROM grid_assignments ORDER BY id OFFSET :k LIMIT 1)
           AND (valid_to IS NULL OR valid_to >= :at)"""),
}
TIMES = st.datetimes(min_value=datetime(2024, 12, 20), max_value=datetime(2025, 7, 10),
                     timezones=st.just(BEIJING))


def _workers_both_ways(session, reader: str, flt: IssueFilter) -> tuple[list, list]:
    actor = load_actor(session, reader)[0]
    return (statistics.worker_stats(session, actor, flt),
            statistics.worker_stats(session, actor, flt, use_rollup=False))


@given(rows=issue_rows(6), ops=operations, data=st.data(), reader=st.sampled_from(READERS),
       moves=st.lists(st.tuples(st.sampled_from(sorted(ASSIGNMENTS)), st.integers(0, 12), TIMES),
                      max_size=3),
       whole=st.booleans(), plain=st.booleans())
@EXAMPLES
def test_the_workers_from_the_grids_totals_are_those_of_a_scan(session, sql, grid_ids,
                                                               demo_times, rows, ops, data,
                                                               reader, moves, whole, plain):
    flt = IssueFilter() if plain else data.draw(filters(demo_times))
    with session.begin_nested() as example:
        if whole:
            sql(WHOLE)
        for name, k, at in moves:
            sql(ASSIGNMENTS[name], k=k, at=at)
        _apply(sql, grid_ids, rows, ops)
        ours, scanned = _workers_both_ways(session, reader, flt)
        example.rollback()
    assert ours == scanned


def test_workers_holding_whole_grids_are_not_scanned(session, sql, monkeypatch):
    """Every worker holding one grid since before the first report: no scan; one handover
    later, only the two workers it concerns are scanned."""
    admin = load_actor(session, "admin")[0]
    sql(WHOLE)
    calls = []
    real = statistics._scan_workers

    def spy(session, where, holders, users=None):
        calls.append(users)
        return real(session, where, holders, users)
    monkeypatch.setattr(statistics, "_scan_workers", spy)
    rows = statistics.worker_stats(session, admin, IssueFilter())
    assert calls == [] and any(r["reported"] for r in rows)
    sql(ASSIGNMENTS["handover"], k=0, at=datetime(2025, 3, 1, tzinfo=BEIJING))
    assert statistics.worker_stats(session, admin, IssueFilter()) == \
        statistics.worker_stats(session, admin, IssueFilter(), use_rollup=False)
    assert len(calls) == 2 and len(calls[0]) == 2 and calls[1] is None
