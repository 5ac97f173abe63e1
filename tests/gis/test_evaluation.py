"""The evaluation (gis.queries.evaluation): periods, the composite score and grade (properties),
every indicator of every role on a hand-built March 2024 whose numbers are worked out below, and
on random histories against a recount in plain Python (tests/gis/evaluation_world.py)."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from sqlalchemy import text

from gis.errors import Forbidden, InvalidParameter, SetupError
from gis.people.actors import Actor
from gis.queries.evaluation import (
    INDICATORS,
    Period,
    Scoring,
    composite,
    evaluate,
    grade_of,
    load_scoring,
    normalise,
    score_units,
)
from gis.rules import (
    DEFAULT_EVALUATION_WEIGHTS,
    DEFAULT_GRADE_THRESHOLDS,
    DEFAULT_MIN_CASES,
    EVALUATION_ROLES,
    GRADES,
)
from tests.gis.evaluation_world import (
    GRIDS,
    MARCH,
    Case,
    Move,
    add_case,
    at,
    build_world,
    random_case,
    recount,
)

G1, G2 = GRIDS
A, B = "evaltest_a", "evaltest_b"
W1, W2 = "evalworker1", "evalworker2"
THRESHOLDS = DEFAULT_GRADE_THRESHOLDS


# -- periods -------------------------------------------------------------------------------------
def test_periods_are_beijing_weeks_months_quarters_or_dates():
    week = Period.of("week", date(2026, 11, 15))  # a Sunday: its week began on Monday the 9th
    assert (week.since, week.until, week.label) == (date(2026, 11, 9), date(2026, 11, 15),
                                                    "2026-W46")
    assert week.previous().as_dict() == {"since": "2026-11-02", "until": "2026-11-08",
                                         "label": "2026-W45"}
    month = Period.of("month", date(2026, 3, 31))
    assert (month.since, month.until, month.label) == (date(2026, 3, 1), date(2026, 3, 31),
                                                       "2026-03")
    assert month.previous().label == "2026-02" and month.previous().until == date(2026, 2, 28)
    quarter = Period.of("quarter", date(2026, 1, 5))
    assert (quarter.since, quarter.until, quarter.label) == (date(2026, 1, 1), date(2026, 3, 31),
                                                             "2026-Q1")
    assert quarter.previous().label == "2025-Q4"
    dates = Period.between(date(2026, 11, 1), date(2026, 11, 15))
    assert dates.label == "2026-11-01/2026-11-15"
    assert dates.previous().as_dict() == {"since": "2026-10-17", "until": "2026-10-31",
                                          "label": "2026-10-17/2026-10-31"}
    assert month.start_at.isoformat() == "2026-03-01T00:00:00+08:00"
    assert month.end_at.isoformat() == "2026-04-01T00:00:00+08:00"
    assert Period.of("week", date(2027, 1, 1)).label == "2026-W53"  # ISO weeks: Monday's year
    with pytest.raises(InvalidParameter, match="after"):
        Period.between(date(2026, 11, 2), date(2026, 11, 1))
    with pytest.raises(InvalidParameter, match="period must be one of"):
        Period.of("year", date(2026, 1, 1))


@given(st.sampled_from(["week", "month", "quarter"]), st.dates(date(2000, 1, 1), date(2100, 1, 1)))
def test_a_period_holds_its_day_and_its_previous_ends_the_day_before(kind, day):
    period = Period.of(kind, day)
    assert period.since <= day <= period.until
    assert period.previous().until == period.since - timedelta(days=1)
    assert Period.of(kind, period.until) == period == Period.of(kind, period.since)


# -- score and grade (no database) --------------------------------------------------------------
rates = st.one_of(st.none(), st.floats(0, 1))
weights = st.one_of(st.just(0.0), st.floats(0.01, 100))  # as weights are written: no 1e-300


def _department(values: dict, weighting: dict | None = None) -> float | None:
    indicators = INDICATORS["department"]
    bests = {"dispatched": 20, "handling_hours": 4.0}
    normalised = {i.key: normalise(i, values.get(i.key), bests.get(i.key)) for i in indicators}
    return composite(normalised, weighting or DEFAULT_EVALUATION_WEIGHTS["department"])


department_values = st.fixed_dictionaries({
    "dispatched": st.integers(0, 40), "closure_rate": rates, "on_time_rate": rates,
    "rework_rate": rates, "extension_rate": rates, "return_rate": rates,
    "handling_hours": st.one_of(st.none(), st.floats(4.0, 200.0))})


@given(department_values, st.sampled_from(INDICATORS["department"]), st.floats(0, 1))
def test_the_score_never_falls_when_an_indicator_gets_better(values, indicator, step):
    """Monotone in each indicator: better (higher, or lower when lower is better) never lowers it."""
    assume(values[indicator.key] is not None)
    before = _department(values)
    value = values[indicator.key]
    if indicator.unit == "rate":
        better = min(value + step, 1.0) if indicator.better == "higher" else max(value - step, 0.0)
    elif indicator.better == "higher":
        better = value + step * 10
    else:
        better = max(value - step * 10, 4.0)
    after = _department(values | {indicator.key: better})
    if before is not None:
        assert after is not None and after >= before - 1e-9


@given(department_values, st.dictionaries(st.sampled_from([i.key for i in INDICATORS["department"]]),
                                          weights, min_size=1), st.floats(0.01, 1000))
def test_weights_are_normalised_and_the_score_stays_within_0_and_100(values, weighting, factor):
    score = _department(values, weighting)
    scaled = _department(values, {k: w * factor for k, w in weighting.items()})
    if score is None:
        assert scaled is None
        return
    assert 0.0 <= score <= 100.0
    assert abs(scaled - score) <= 0.1 + 1e-9  # at most one rounding step (0.1) apart


@given(st.lists(st.floats(0, 1), min_size=1, max_size=6), st.lists(weights, min_size=6, max_size=6))
def test_the_score_is_the_weighted_mean_of_the_values_it_has(values, ws):
    keys = [f"k{n}" for n in range(len(values))]
    normalised = dict(zip(keys, values, strict=True)) | {"missing": None}
    weighting = dict(zip(keys, ws, strict=False)) | {"missing": 50.0}
    total = sum(weighting[k] for k in keys)
    expected = None if total == 0 else 100 * sum(weighting[k] * v for k, v in zip(keys, values,
                                                                                  strict=True)) / total
    score = composite(normalised, weighting)
    assert score == (None if expected is None else pytest.approx(expected, abs=0.051))


def test_all_best_is_100_and_all_worst_is_0():
    best = {"dispatched": 20, "closure_rate": 1.0, "on_time_rate": 1.0, "rework_rate": 0.0,
            "extension_rate": 0.0, "return_rate": 0.0, "handling_hours": 4.0}
    worst = {"dispatched": 0, "closure_rate": 0.0, "on_time_rate": 0.0, "rework_rate": 1.0,
             "extension_rate": 1.0, "return_rate": 1.0, "handling_hours": 10 ** 9}
    assert _department(best) == 100.0
    assert _department(worst) == 0.0
    assert _department(dict.fromkeys(best)) is None  # nothing to judge by


@given(st.one_of(st.none(), st.floats(0, 100)), st.floats(0, 100))
def test_grades_follow_the_thresholds_and_rise_with_the_score(score, more):
    grade = grade_of(score, THRESHOLDS)
    if score is None:
        assert grade is None
        return
    assert grade in GRADES and score >= THRESHOLDS[grade]
    assert all(score < THRESHOLDS[g] for g in GRADES[:GRADES.index(grade)])
    higher = grade_of(min(score + more, 100.0), THRESHOLDS)
    assert GRADES.index(higher) <= GRADES.index(grade)


def test_the_default_grades_are_90_75_60_40():
    assert [grade_of(s, THRESHOLDS) for s in (100, 90, 89.9, 75, 74.9, 60, 59.9, 40, 39.9, 0)] == \
        ["A", "A", "B", "B", "C", "C", "D", "D", "E", "E"]


def test_a_unit_below_the_minimum_is_neither_scored_nor_anyones_benchmark():
    scoring = Scoring(DEFAULT_EVALUATION_WEIGHTS, THRESHOLDS, dict.fromkeys(EVALUATION_ROLES, 5))
    values = {
        "big": {"cases": 50, "per_1000_households": 20.0, "closure_rate": 1.0, "on_time_rate": 1.0},
        "tiny": {"cases": 4, "per_1000_households": 1.0, "closure_rate": 1.0, "on_time_rate": 1.0},
    }
    scores = score_units("grid", values, scoring)
    assert scores["tiny"] == (None, None)
    assert scores["big"] == (100.0, "A")  # its 20 per 1,000 is the best of the graded


# -- the database's weights, grades and minimums --------------------------------------------------
def test_the_seeded_scoring_is_the_rules_defaults(session):
    scoring = load_scoring(session)
    assert scoring.thresholds == THRESHOLDS
    assert scoring.min_cases == dict.fromkeys(EVALUATION_ROLES, DEFAULT_MIN_CASES)
    assert scoring.weights == {r: {k: float(w) for k, w in ws.items()}
                               for r, ws in DEFAULT_EVALUATION_WEIGHTS.items()}
    for role in EVALUATION_ROLES:
        assert [i.key for i in INDICATORS[role]] == list(DEFAULT_EVALUATION_WEIGHTS[role])


def test_the_migration_writes_the_defaults_out_as_history():
    import importlib

    m = importlib.import_module("gis.db.migrations.versions.0010_evaluation")
    assert m.WEIGHTS == DEFAULT_EVALUATION_WEIGHTS
    assert m.GRADES == THRESHOLDS and m.MIN_CASES == DEFAULT_MIN_CASES
    assert m.ROLES == EVALUATION_ROLES


def test_the_database_refuses_an_indicator_a_role_does_not_have(session):
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError, match="indicator_valid"), session.begin_nested():
        session.execute(text("INSERT INTO evaluation_weights VALUES ('worker', 'rework_rate', 1)"))
    with pytest.raises(IntegrityError, match="weight_not_negative"), session.begin_nested():
        session.execute(text("UPDATE evaluation_weights SET weight = -1"))


def test_thresholds_that_do_not_fall_from_a_to_e_are_a_setup_error(session):
    session.execute(text("UPDATE evaluation_grades SET min_score = 95 WHERE grade = 'C'"))
    with pytest.raises(SetupError, match="fall from A to E"):
        load_scoring(session)


# -- March 2024, worked out by hand -----------------------------------------------------------------
def march_cases() -> dict[str, Case]:
    """Garbage cases (accept within 30 minutes, handling 1 working day, check within 2 hours);
    due 24 hours after the report unless said. March 2024 has no holiday; 4 March is a Monday.
    evalworker1 holds grid 001 until 16 March, evalworker2 after it and grid 002 throughout."""
    return {
        # evalworker1's report, verified and checked by them on time; handled 09:20-13:00 (3 h 40)
        "c1": Case(G1, at("2024-03-04", 9), [
            Move(at("2024-03-04", 9, 10), "accepted", actor=W1),
            Move(at("2024-03-04", 9, 20), "dispatched", A, "dispatcher"),
            Move(at("2024-03-04", 10), "in_progress"), Move(at("2024-03-04", 13), "resolved"),
            Move(at("2024-03-04", 14), "closed", actor=W1)], reporter=W1),
        # a resident's, accepted late by the desk; returned by A, handled by B (11:20 to 15:00
        # next day: 6 h 10 + 6 h 30), checked late by evalworker1, closed late
        "c2": Case(G1, at("2024-03-05", 9), [
            Move(at("2024-03-05", 10), "accepted", actor="dispatcher"),
            Move(at("2024-03-05", 10, 10), "dispatched", A),
            Move(at("2024-03-05", 11, 10), "accepted"),
            Move(at("2024-03-05", 11, 20), "dispatched", B),
            Move(at("2024-03-05", 12), "in_progress"), Move(at("2024-03-06", 15), "resolved"),
            Move(at("2024-03-06", 18), "closed", actor=W1)]),
        # evalworker1's, accepted by the desk; extended, reworked (handled 7 h, then 17:00-11:00
        # next day: 3 h; the failed check is evalworker1's, on time), closed late after the
        # leader's check
        "c3": Case(G1, at("2024-03-07", 9), [
            Move(at("2024-03-07", 9, 5), "accepted", actor="dispatcher"),
            Move(at("2024-03-07", 9, 15), "dispatched", A),
            Move(at("2024-03-07", 9, 30), "in_progress"),
            Move(at("2024-03-07", 16, 15), "resolved"),
            Move(at("2024-03-07", 17), "reopened", actor=W1),
            Move(at("2024-03-08", 9), "in_progress"), Move(at("2024-03-08", 11), "resolved"),
            Move(at("2024-03-08", 12), "closed", actor="leader")],
            extensions=[(at("2024-03-07", 10), True)], reporter=W1),
        # evalworker1's, dispatched in February, handled into 1 March (8 h 10 + 2 h), checked by
        # evalworker1 on time, closed late
        "c4": Case(G1, at("2024-02-29", 9), [
            Move(at("2024-02-29", 9, 10), "accepted", actor="dispatcher"),
            Move(at("2024-02-29", 9, 20), "dispatched", A),
            Move(at("2024-02-29", 10), "in_progress"), Move(at("2024-03-01", 10, 30), "resolved"),
            Move(at("2024-03-01", 11), "closed", actor=W1)], reporter=W1),
        # a resident's, verified late by evalworker1 (40 minutes), still being handled; its
        # extension was refused
        "c5": Case(G1, at("2024-03-11", 9), [
            Move(at("2024-03-11", 9, 40), "accepted", actor=W1),
            Move(at("2024-03-11", 9, 50), "dispatched", A),
            Move(at("2024-03-11", 10), "in_progress")],
            extensions=[(at("2024-03-11", 11), False)]),
        # 自处理 by evalworker2 in grid 002
        "c6": Case(G2, at("2024-03-12", 10), [Move(at("2024-03-12", 10, 20), "closed", actor=W2)],
                   reporter=W2),
        # evalworker2's report in grid 001 after the handover, rejected by the desk
        "c7": Case(G1, at("2024-03-18", 9), [Move(at("2024-03-18", 9, 20), "rejected",
                                                  actor="dispatcher")], reporter=W2),
        # a resident's, verified and checked by evalworker2 on time; put on hold and resumed
        # (handled 1 h 40, then 1 h); no due time
        "c8": Case(G2, at("2024-03-19", 9), [
            Move(at("2024-03-19", 9, 10), "accepted", actor=W2),
            Move(at("2024-03-19", 9, 20), "dispatched", B),
            Move(at("2024-03-19", 10), "in_progress"), Move(at("2024-03-19", 11), "on_hold"),
            Move(at("2024-03-20", 9), "in_progress"), Move(at("2024-03-20", 10), "resolved"),
            Move(at("2024-03-20", 11), "closed", actor=W2)], due_hours=None),
        # evalworker1's, dispatched to the grid worker (no department), closed on time
        "c9": Case(G1, at("2024-03-14", 9), [
            Move(at("2024-03-14", 9, 10), "accepted", actor="dispatcher"),
            Move(at("2024-03-14", 9, 20), "dispatched", None),
            Move(at("2024-03-14", 10), "in_progress"), Move(at("2024-03-14", 12), "resolved"),
            Move(at("2024-03-14", 12, 30), "closed", actor=W1)], reporter=W1),
    }


@pytest.fixture
def march(session):
    world = build_world(session)
    for case in march_cases().values():
        add_case(session, world, case)
    return world


def _values(result: dict) -> dict[str, dict]:
    return {row["key"]: row["values"] for row in result["data"]}


def test_departments_in_march(session, march):
    found = _values(evaluate(session, march.leader, "department", MARCH))
    assert found[A] == {"dispatched": 4, "return_rate": 0.25, "closure_rate": 0.6667,
                        "on_time_rate": 0.5, "rework_rate": 0.3333, "extension_rate": 0.3333,
                        # (3 h 40 + 7 h + 3 h + 10 h 10) / 4: c4's step ended in March
                        "handling_hours": round((220 + 420 + 180 + 610) / 60 / 4, 2)}
    assert found[B] == {"dispatched": 2, "return_rate": 0.0, "closure_rate": 1.0,
                        "on_time_rate": 0.0, "rework_rate": 0.0, "extension_rate": 0.0,
                        "handling_hours": round((760 + 100 + 60) / 60 / 3, 2)}
    february = _values(evaluate(session, march.leader, "department", MARCH.previous()))
    assert february[A] == {"dispatched": 1, "return_rate": 0.0, "closure_rate": 1.0,
                           "on_time_rate": 0.0, "rework_rate": 0.0, "extension_rate": 0.0,
                           "handling_hours": None}
    assert found["huanwei"] == {"dispatched": 0, **dict.fromkeys(
        ["return_rate", "closure_rate", "on_time_rate", "rework_rate", "extension_rate",
         "handling_hours"])}  # a department with nothing of the leader's in March


def test_workers_in_march(session, march):
    found = _values(evaluate(session, march.leader, "worker", MARCH))
    assert set(found) == {W1, W2}  # who held the community's grids in March
    # reports c1, c3, c9 (c4 came in February), all accepted; verified c1 on time, c5 late;
    # checked c1, c3 (failed), c4, c9 on time and c2 late (c3's last check was the leader's)
    assert found[W1] == {"reports": 3, "valid_report_rate": 1.0, "on_time_verify_rate": 0.5,
                         "on_time_check_rate": 0.8, "self_resolved": 0}
    # reports c6 (自处理) and c7 (rejected); verified and checked c8 on time
    assert found[W2] == {"reports": 2, "valid_report_rate": 0.5, "on_time_verify_rate": 1.0,
                         "on_time_check_rate": 1.0, "self_resolved": 1}
    # the minimum (5) counts reports, verifications and checks: 3 + 2 + 5 and 2 + 1 + 1
    rows = {r["key"]: r for r in evaluate(session, march.leader, "worker", MARCH)["data"]}
    assert rows[W1]["score"] == 30 * 1.0 + 35 * 0.5 + 35 * 0.8 == 75.5
    assert (rows[W1]["grade"], rows[W2]["score"], rows[W2]["grade"]) == ("B", None, None)


def test_grids_and_the_community_in_march(session, march):
    grids = _values(evaluate(session, march.leader, "grid", MARCH))
    assert grids == {
        G1: {"cases": 6, "per_1000_households": 15.0, "closure_rate": 0.8, "on_time_rate": 0.5},
        G2: {"cases": 2, "per_1000_households": 8.0, "closure_rate": 1.0, "on_time_rate": 1.0}}
    community = _values(evaluate(session, march.leader, "community", MARCH))
    assert community == {"140429100009": {"cases": 8, "per_1000_households": 12.31,
                                          "closure_rate": 0.8571, "on_time_rate": 0.6}}


def test_scores_grades_and_the_change_in_march(session, march):
    session.execute(text("UPDATE evaluation_minimums SET min_cases = 2"))
    result = evaluate(session, march.leader, "grid", MARCH)
    assert [r["key"] for r in result["data"]] == [G2, G1]  # best score first
    g2, g1 = result["data"]
    # grid 001: 20 x 8/15 (the best per 1,000 households over its own) + 30 x 0.8 + 50 x 0.5
    assert g1["score"] == round(20 * 8 / 15 + 30 * 0.8 + 50 * 0.5, 1) == 59.7
    assert (g1["grade"], g2["score"], g2["grade"]) == ("D", 100.0, "A")
    assert g1["previous_score"] is None and g1["score_change"] is None  # no case in February
    departments = {r["key"]: r for r in evaluate(session, march.leader, "department", MARCH)["data"]}
    a = departments[A]
    assert a["previous_grade"] is None  # one dispatch in February: below the minimum
    session.execute(text("UPDATE evaluation_minimums SET min_cases = 1"))
    a = {r["key"]: r for r in evaluate(session, march.leader, "department", MARCH)["data"]}[A]
    # February: closed (1), not on time (0), no rework, extension or return; no hours
    assert a["previous_score"] == round(100 * (25 + 0 + 15 + 10 + 10) / 90, 1)
    assert a["score_change"] == round(a["score"] - a["previous_score"], 1)
    assert a["grade"] == grade_of(a["score"], THRESHOLDS)


def test_who_is_listed(session, march):
    """Active departments, and inactive ones with something in the period; the workers who held
    a grid in the period, and those whose cases had something in it."""
    session.execute(text("UPDATE departments SET active = false WHERE code = :b"), {"b": B})
    session.execute(text("UPDATE grid_assignments SET valid_to = :t WHERE valid_to = :h"),
                    {"t": at("2024-02-29", 23), "h": at("2024-03-16", 12)})
    departments = _values(evaluate(session, march.leader, "department", MARCH))
    assert {A, B} <= set(departments)
    quiet = Period.of("month", date(2023, 1, 1))
    assert A in _values(evaluate(session, march.leader, "department", quiet))
    assert B not in _values(evaluate(session, march.leader, "department", quiet))
    # evalworker1 handed grid 001 over before March (in this test); what they did in March counts
    workers = _values(evaluate(session, march.leader, "worker", MARCH))
    assert workers[W1]["on_time_check_rate"] == 0.8


def test_the_scope_and_the_roles(session, march):
    other = Actor(0, "elsewhere", "别处", "leader", region_id=1,
                  region_grid_codes=frozenset({"140429100001003"}))
    assert _values(evaluate(session, other, "department", MARCH))[A]["dispatched"] == 0
    assert G1 not in _values(evaluate(session, other, "grid", MARCH))
    admin = _values(evaluate(session, march.admin, "grid", MARCH))
    assert admin[G1] == _values(evaluate(session, march.leader, "grid", MARCH))[G1]
    worker = Actor(0, W1, "测试甲", "worker", grid_codes=frozenset({G1}))
    with pytest.raises(Forbidden):
        evaluate(session, worker, "grid", MARCH)
    with pytest.raises(InvalidParameter, match="role must be one of"):
        evaluate(session, march.admin, "street", MARCH)


# -- random histories against the recount ---------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_indicator_equals_the_recount_on_random_histories(session, seed):
    world = build_world(session)
    rng = random.Random(seed)
    for _ in range(120):
        add_case(session, world, random_case(rng, datetime(2024, 1, 25, tzinfo=MARCH.start_at.tzinfo),
                                             80))
    for actor in (world.leader, world.admin):
        for period in (MARCH, MARCH.previous(), Period.of("week", date(2024, 3, 13)),
                       Period.between(date(2024, 3, 10), date(2024, 4, 2))):
            for role in EVALUATION_ROLES:
                result = evaluate(session, actor, role, period)
                found = _values(result)
                assert found == recount(session, actor, role, period, list(found)), (role, period)
    rich = _values(evaluate(session, world.leader, "department", MARCH))
    assert all(rich[d]["return_rate"] is not None for d in (A, B))  # the data is not trivial
