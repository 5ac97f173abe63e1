"""The evaluation's departments and grid workers, read in one pass over each case's history
(gis.queries.evaluation), equal the recount in plain Python (tests/gis/evaluation_world.py) on
the demo when many things happen at the same instant: the history of some cases snapped to the
hour or the day, so that dispatches, returns, rework, extension requests, moves and the ends of
handling steps tie, and a moment on a span's edge belongs to the span it opens. Each example
rolls back.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from gis.people.actors import load_actor
from gis.queries.evaluation import Period, evaluate
from tests.gis.evaluation_world import recount

EXAMPLES = settings(max_examples=5, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
SNAPPED = ("issue_events", "at"), ("extension_requests", "requested_at")


def snap(session, unit: str, modulus: int, remainder: int) -> int:
    """Truncate to ``unit`` the history times of the cases whose id is ``remainder`` modulo
    ``modulus``; returns how many history rows moved."""
    where = "issue_id % :m = :r"
    moved = 0
    for table, column in SNAPPED:
        moved += session.execute(text(f"""
            UPDATE {table} SET {column} = date_trunc(:u, {column}, 'Asia/Shanghai')
             WHERE {where} AND {column} <> date_trunc(:u, {column}, 'Asia/Shanghai')"""),
            {"u": unit, "m": modulus, "r": remainder}).rowcount
    session.execute(text(f"""
        UPDATE issue_steps SET started_at = date_trunc(:u, started_at, 'Asia/Shanghai'),
                               done_at = date_trunc(:u, done_at, 'Asia/Shanghai')
         WHERE {where}"""), {"u": unit, "m": modulus, "r": remainder})
    return moved


@EXAMPLES
@given(unit=st.sampled_from(["hour", "day"]), modulus=st.integers(1, 3), remainder=st.integers(0, 2),
       reader=st.sampled_from(["admin", "leader"]), kind=st.sampled_from(["week", "month"]),
       weeks_back=st.integers(0, 8))
def test_departments_and_workers_equal_the_recount_when_history_ties(
        session, demo_month, unit, modulus, remainder, reader, kind, weeks_back):
    savepoint = session.begin_nested()
    try:
        assert snap(session, unit, modulus, remainder % modulus) > 0
        actor = load_actor(session, reader)[0]
        day = demo_month.last.fromordinal(demo_month.last.toordinal() - 7 * weeks_back)
        period = Period.of(kind, day)
        for role in ("department", "worker"):
            found = {r["key"]: r["values"] for r in evaluate(session, actor, role, period)["data"]}
            assert found == recount(session, actor, role, period, list(found)), (role, period)
    finally:
        savepoint.rollback()


def test_snapping_makes_dispatches_tie_with_what_follows_them(session):
    """Not vacuous: snapped to the day, some case has a return, a rework or another dispatch at
    the very instant of a dispatch."""
    savepoint = session.begin_nested()
    try:
        snap(session, "day", 1, 0)
        ties = session.execute(text("""
            SELECT count(*) FROM issue_events d JOIN issue_events e ON e.issue_id = d.issue_id
             AND e.id <> d.id AND e.at = d.at
             WHERE d.kind = 'dispatch' AND (e.kind IN ('dispatch', 'return')
                                            OR e.to_status = 'reopened')""")).scalar_one()
        assert ties > 0
    finally:
        savepoint.rollback()
