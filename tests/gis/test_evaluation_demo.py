"""The evaluation on the demo: every indicator of every role equals the recount in plain Python
from the raw rows (tests/gis/evaluation_world.py), for a month, the quarter around it and a week,
as the admin and as the community's leader; and it tells the good from the bad: every grade
A-E occurs among the departments, workers and grids of a quarter."""

from __future__ import annotations

import pytest

from gis.people.actors import load_actor
from gis.queries.evaluation import Period, evaluate
from gis.rules import EVALUATION_ROLES
from tests.gis.evaluation_world import recount

GRADED_ROLES = ("department", "worker", "grid")


@pytest.fixture
def readers(session):
    return {name: load_actor(session, name)[0] for name in ("admin", "leader")}


@pytest.mark.parametrize("reader", ["admin", "leader"])
@pytest.mark.parametrize("role", EVALUATION_ROLES)
def test_every_indicator_equals_the_recount_on_the_demo(session, readers, demo_month, role, reader):
    actor = readers[reader]
    for period in (Period.of("month", demo_month.first), Period.of("quarter", demo_month.first),
                   Period.of("week", demo_month.first)):
        found = {r["key"]: r["values"] for r in evaluate(session, actor, role, period)["data"]}
        assert found, (role, period)
        assert found == recount(session, actor, role, period, list(found)), (role, period.label)


@pytest.mark.parametrize("kind", ["month", "quarter"])
def test_every_grade_occurs_among_departments_workers_and_grids(session, readers, demo_month,
                                                                 kind):
    period = Period.of(kind, demo_month.first)
    grades = {role: {r["grade"] for r in evaluate(session, readers["admin"], role,
                                                  period)["data"]} - {None}
              for role in GRADED_ROLES}
    found = set().union(*grades.values())
    if kind == "quarter":
        assert found == {"A", "B", "C", "D", "E"}, grades
    else:
        # A month has a third of the cases: over twelve moments the demo was seen at, its month
        # missed one grade twice (no E at 05:30 on 2 December 2026, no D on 3 September), never
        # the best or both of the worst.
        assert "A" in found and found & {"D", "E"} and len(found) >= 4, grades
    # The demo as loaded, whatever ran before: a month of it grades its ten departments B and
    # C (it needed other test files' committed cases to reach three grades: an order-dependent
    # pass, found when the suite first ran on two processes).
    assert len(grades["department"]) >= 2 and len(grades["worker"]) >= 3, grades
