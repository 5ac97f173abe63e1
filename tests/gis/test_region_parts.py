"""A leader's or dispatcher's read scope split in two (ScopedFilter.where_parts): the cases in
the region's grids and those in no grid inside it. The halves must be disjoint and together be
exactly the scope's cases, and the heatmap's scans over them must equal one scan of the whole
scope; the grids' half must be answerable from ``issues_grid_time_idx`` alone, and the overdue
cases per grid from ``issues_timed_due_idx`` alone (migration 0015).
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from gis.people.actors import load_actor
from gis.queries import map_data, rollup
from gis.queries.filters import IssueFilter, Where
from gis.queries.reads import ScopedFilter
from gis.rules import ISSUE_STATUSES

EXAMPLES = settings(max_examples=8, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
CATEGORIES = ("garbage", "noise", "streetlight_out", "illegal_construction")

filters = st.builds(
    IssueFilter,
    categories=st.lists(st.sampled_from(CATEGORIES), max_size=2).map(tuple),
    statuses=st.lists(st.sampled_from((*ISSUE_STATUSES, "open", "final")), max_size=2).map(tuple),
    community=st.sampled_from([None, "太东社区"]),
)


def _ids(session, where: Where) -> list[int]:
    return session.execute(text(f"SELECT i.id FROM issues i WHERE {where.sql}"),
                           where.params).scalars().all()


def _unassign_some(session, share: int) -> int:
    """Take every ``share``-th located case out of its grid, as a report beyond every grid
    would be: the second half of the scope then has cases too."""
    return session.execute(text(
        "UPDATE issues SET grid_id = NULL WHERE id % :k = 0 AND geom IS NOT NULL"),
        {"k": share}).rowcount


@given(flt=filters, reader=st.sampled_from(["leader", "dispatcher", "admin", "worker01"]),
       share=st.sampled_from([0, 3, 7]))
@EXAMPLES
def test_the_halves_are_disjoint_and_make_up_the_scope(session, flt, reader, share):
    with session.begin_nested() as example:
        if share:
            assert _unassign_some(session, share) > 0
        scoped = ScopedFilter.of(flt, load_actor(session, reader)[0])
        whole = _ids(session, scoped.where(session))
        halves = [_ids(session, part) for part in scoped.where_parts(session)]
        example.rollback()
    assert sum(len(h) for h in halves) == len(whole)
    assert sorted(i for h in halves for i in h) == sorted(whole)
    assert len(halves) == (2 if reader in ("leader", "dispatcher") else 1)


@given(flt=filters, reader=st.sampled_from(["leader", "dispatcher"]),
       weeks=st.booleans(), cell_m=st.sampled_from([10.0, 40.0, 160.0]))
@EXAMPLES
def test_the_cells_of_the_halves_are_those_of_one_scan(session, flt, reader, weeks, cell_m):
    with session.begin_nested() as example:
        _unassign_some(session, 5)
        scoped = ScopedFilter.of(flt, load_actor(session, reader)[0])
        grid = rollup.cell_grid(session)
        halves = map_data._scan_cells(session, scoped.where_parts(session), grid, cell_m,
                                      weeks=weeks)
        one = map_data._scan_cells(session, [scoped.where(session)], grid, cell_m, weeks=weeks)
        spans = map_data._n_weeks(session, scoped.where_parts(session)), \
            map_data._n_weeks(session, [scoped.where(session)])
        example.rollback()
    keys = ["week", "cx", "cy"] if weeks else ["cx", "cy"]
    pd.testing.assert_frame_equal(halves.sort_values(keys, ignore_index=True),
                                  one.sort_values(keys, ignore_index=True), check_exact=True)
    assert spans[0] == spans[1]


def test_the_grids_half_is_read_from_the_covering_index_alone(session):
    leader = load_actor(session, "leader")[0]
    grids_half = ScopedFilter.of(IssueFilter(), leader).where_parts(session)[0]
    session.execute(text("SET LOCAL enable_seqscan = off"))
    session.execute(text("SET LOCAL enable_bitmapscan = off"))
    plan = "\n".join(session.execute(text(
        f"EXPLAIN SELECT {map_data.week_sql('i')}, floor(i.lon / 0.001), count(*), "
        f"sum(i.lat), min(i.reported_at) FROM issues i WHERE {grids_half.sql} "
        "AND i.lon IS NOT NULL AND i.category <> '' AND i.status <> '' GROUP BY 1, 2"),
        grids_half.params).scalars())
    assert "Index Only Scan using issues_grid_time_idx" in plan, plan


def test_overdue_per_grid_is_read_from_the_timed_index_alone(session, demo_data):
    """Overdue is never rolled up: counted per grid and status from issues_timed_due_idx, whose
    INCLUDE columns (migration 0015) answer a category or time filter too."""
    from gis.rules import overdue_sql

    session.execute(text("SET LOCAL enable_seqscan = off"))
    session.execute(text("SET LOCAL enable_bitmapscan = off"))
    # The last 90 days of the demo's (seen now, or at a pinned moment: then few of the rows
    # would lie after now() - 90 days, and the reported_at index would answer instead).
    plan = "\n".join(session.execute(text(
        f"EXPLAIN SELECT i.grid_id, i.status, count(*) FROM issues i WHERE {overdue_sql('i')} "
        "AND i.category = ANY(:c) AND i.reported_at >= :since "
        "GROUP BY 1, 2"), {"c": list(CATEGORIES),
                           "since": demo_data.seen_at - timedelta(days=90)}).scalars())
    assert "Index Only Scan using issues_timed_due_idx" in plan, plan
