"""Evaluation (综合评价, docs/ARCHITECTURE.md "Evaluation"): per period and per role, the standard
indicators of digital urban management, a composite score 0-100 and a grade A-E, beside those of
the period before.

**Periods.** A Beijing calendar week (Monday to Sunday), month or quarter containing a day, or
explicit dates; both ends inclusive, whole Beijing days. The previous period is the one of the
same kind just before (the previous week, month, quarter), or as many days just before.

**Cohorts: what a period's numbers are about.** Each indicator counts the things that *happened
in the period* (a dispatch, a decision on a report, a check, a report), and judges their outcome
*as things stand when the evaluation is asked for*: a case dispatched in March and closed in
April counts in March's closure rate once it is closed. A period's numbers can therefore still
rise while its cases are being closed, never by events after it being counted in it.

**Departments (专业部门).** A dispatch (an ``issue_events`` row of kind ``dispatch``) hands a case
to its department until the case's next dispatch: the dispatch's *span*. The department
*returned* it (回退) when a ``return`` event falls in the span. Its *cases* of a period are the
cases dispatched to it in the period that it did not return (each counted once, however often it
was dispatched to it):

* 派遣数 ``dispatched``: dispatches to it in the period;
* 结案率 ``closure_rate``: its cases now closed / its cases;
* 按期结案率 ``on_time_rate``: its cases closed by their due time / its closed cases that had one
  (:func:`gis.rules.on_time_sql`, :func:`~gis.rules.rated_sql`: the statistics' definition);
* 返工率 ``rework_rate``: its cases moved to ``reopened`` (返工) during its span / its cases;
* 延期率 ``extension_rate``: its cases with an extension request (延期申请) made during its span
  and approved / its cases;
* 回退率 ``return_rate``: its dispatches of the period that it returned / its dispatches;
* 平均处置时长 ``handling_hours``: the mean, in working hours (office hours of working days,
  :func:`gis.worktime.limits.working_hours`), of the handling steps (``issue_steps`` of step
  ``handle``) done in the period while the case was with it (in the span of a dispatch to it that
  it did not return). A hold (挂账) ends a handling step and the resume starts another.

**Grid workers (网格员).** What a worker did themselves: the moves whose actor they are (they may
act only in the grids they hold, so these are cases of their grids). A case a dispatcher accepted
from the office was not verified by the worker, and a resident's report is not the worker's:

* 上报数 ``reports``: the cases they reported in the period (the report's actor);
* 有效上报率 ``valid_report_rate``: of their reports decided in the period (the move out of
  ``reported``: accepted, rejected or resolved on site), those not rejected;
* 按时核实率 ``on_time_verify_rate``: of their verifications in the period (moves ``reported`` ->
  ``accepted`` or ``rejected``), those whose accept step ended by its deadline
  (:func:`gis.rules.step_on_time_sql`), over those whose accept step had one;
* 按时核查率 ``on_time_check_rate``: of their checks in the period (moves ``resolved`` ->
  ``closed`` or ``reopened``), those whose verify step (核查) ended by its deadline, over those
  whose verify step had one;
* 自处理数 ``self_resolved``: their reports of the period resolved on site (``issues.self_resolved``).

**Grids and communities (网格, 社区).** Their cases of a period are those reported in the period in
the grid (any version of it) or in the community's grids: 案件数 ``cases``; 千户案件数
``per_1000_households`` (cases per 1,000 households of the current grids); 结案率 ``closure_rate``
(closed / cases not rejected: a rejected report is no case to close) and 按期结案率
``on_time_rate`` as above.

**Score and grade.** Each indicator becomes a number from 0 to 1 (:func:`normalise`): a rate as
it is, or 1 - rate when lower is better; a count, hours or cases per 1,000 households against the
best of the role's graded peers in the period (higher is better: own / best; lower: best / own).
The composite score is 100 x the weighted mean of those that have a value (:func:`composite`),
the weights from ``evaluation_weights``; the grade the best whose threshold the score reaches
(``evaluation_grades``: A 90, B 75, C 60, D 40, E 0). Below the role's minimum
(``evaluation_minimums``, 5) of what its indicators judge — a department's dispatches, a worker's
reports, verifications and checks, a grid's or community's cases — there is no score or grade.

Everything is over the cases the reader may read (leaders, dispatchers and admins; a leader's
region), as the statistics are.
"""

from __future__ import annotations

import calendar as month_calendar
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.db.engine import tune_for_aggregates
from gis.errors import InvalidParameter, SetupError
from gis.people.actors import Actor, read_scope_sql, require_role
from gis.queries.concurrent import side_by_side
from gis.queries.statistics import STATISTICS_ROLES
from gis.rules import (
    BEIJING,
    BEIJING_TZ_NAME,
    DEFAULT_MIN_CASES,
    EVALUATION_INDICATORS,
    EVALUATION_PERIODS,
    EVALUATION_ROLES,
    GRADES,
    REGION_ROLES,
    closed_sql,
    on_time_rate,
    on_time_sql,
    rated_sql,
    step_on_time_sql,
    step_rated_sql,
)
from gis.worktime.limits import office_hours
from gis.worktime.store import load_calendar, workday_end, workday_start

Values = dict[str, float | int | None]
Found = tuple[dict[str, Values], dict[str, int]]  # values per unit, and the basis of the minimum


# -- the indicators ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Indicator:
    key: str
    zh: str
    en: str
    unit: str  # gis.rules.INDICATOR_UNITS
    better: str  # higher | lower

    def as_dict(self) -> dict:
        return {"key": self.key, "zh": self.zh, "en": self.en, "unit": self.unit,
                "better": self.better}


INDICATORS: dict[str, tuple[Indicator, ...]] = {
    role: tuple(Indicator(*row) for row in rows) for role, rows in EVALUATION_INDICATORS.items()}


def check_role(role: str) -> None:
    if role not in EVALUATION_ROLES:
        raise InvalidParameter(f"role must be one of {', '.join(EVALUATION_ROLES)}; got {role!r}",
                               zh=f"role 须为 {'、'.join(EVALUATION_ROLES)} 之一，收到 {role!r}")


# -- periods -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Period:
    """Whole Beijing days from ``since`` to ``until``, both inclusive; ``kind`` week, month,
    quarter, or None for explicit dates."""

    since: date
    until: date
    kind: str | None = None

    @classmethod
    def of(cls, kind: str, day: date) -> Period:
        """The week (from Monday), month or quarter that contains ``day``."""
        if kind not in EVALUATION_PERIODS:
            raise InvalidParameter(
                f"period must be one of {', '.join(EVALUATION_PERIODS)}; got {kind!r}",
                zh=f"period 须为 {'、'.join(EVALUATION_PERIODS)} 之一，收到 {kind!r}")
        if kind == "week":
            monday = day - timedelta(days=day.weekday())
            return cls(monday, monday + timedelta(days=6), kind)
        first_month = day.month if kind == "month" else 3 * ((day.month - 1) // 3) + 1
        last_month = first_month + (0 if kind == "month" else 2)
        last_day = month_calendar.monthrange(day.year, last_month)[1]
        return cls(date(day.year, first_month, 1), date(day.year, last_month, last_day), kind)

    @classmethod
    def between(cls, since: date, until: date) -> Period:
        if since > until:
            raise InvalidParameter(f"since ({since}) is after until ({until})",
                                   zh=f"起始日期 since({since})晚于结束日期 until({until})")
        return cls(since, until)

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    def previous(self) -> Period:
        """The period of the same kind just before (as many days, for explicit dates)."""
        if self.kind is not None:
            return Period.of(self.kind, self.since - timedelta(days=1))
        return Period(self.since - timedelta(days=self.days), self.since - timedelta(days=1))

    @property
    def label(self) -> str:
        """'2026-W46', '2026-11', '2026-Q4', or '2026-11-01/2026-11-15' (ISO 8601)."""
        if self.kind == "week":
            year, week, _ = self.since.isocalendar()
            return f"{year}-W{week:02d}"
        if self.kind == "month":
            return f"{self.since:%Y-%m}"
        if self.kind == "quarter":
            return f"{self.since.year}-Q{(self.since.month - 1) // 3 + 1}"
        return f"{self.since.isoformat()}/{self.until.isoformat()}"

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.since, time.min, tzinfo=BEIJING)

    @property
    def end_at(self) -> datetime:
        """The first instant after the period."""
        return datetime.combine(self.until + timedelta(days=1), time.min, tzinfo=BEIJING)

    def params(self) -> dict:
        return {"since": self.start_at, "until": self.end_at}

    def as_dict(self) -> dict:
        return {"since": self.since.isoformat(), "until": self.until.isoformat(),
                "label": self.label}


# The longest explicit period (two years and a day): what one evaluation may scan.
MAX_PERIOD_DAYS = 731


# The days an evaluation may be about (a period and the one before it stay within the calendar).
FIRST_DAY, LAST_DAY = date(1950, 1, 1), date(2199, 12, 31)


def period_from(kind: str | None, day: date | None, since: date | None, until: date | None,
                today: date) -> Period:
    """The period a request names: ``since`` and ``until`` (both, and nothing else), or the
    ``kind`` (default month) containing ``day`` (default ``today``)."""
    for name, value in (("date", day), ("since", since), ("until", until)):
        if value is not None and not FIRST_DAY <= value <= LAST_DAY:
            raise InvalidParameter(f"{name} must be within {FIRST_DAY} and {LAST_DAY}; got {value}",
                                   zh=f"{name} 须在 {FIRST_DAY} 至 {LAST_DAY} 之间，收到 {value}")
    if since is None and until is None:
        return Period.of(kind or "month", day or today)
    if since is None or until is None:
        raise InvalidParameter("explicit dates need both since and until",
                               zh="按日期评价需要同时给出 since 和 until")
    if kind is not None or day is not None:
        raise InvalidParameter("give either period and date, or since and until, not both",
                               zh="period/date 与 since/until 只能二选一")
    period = Period.between(since, until)
    if period.days > MAX_PERIOD_DAYS:
        raise InvalidParameter(f"a period is at most {MAX_PERIOD_DAYS} days; got {period.days}",
                               zh=f"评价周期最长 {MAX_PERIOD_DAYS} 天，收到 {period.days} 天")
    return period


# -- score and grade -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Scoring:
    """The data the scores are made with: weights per role and indicator, the lowest score of
    each grade, the fewest cases for a grade per role."""

    weights: dict[str, dict[str, float]]
    thresholds: dict[str, float]
    min_cases: dict[str, int]


def load_scoring(session: Session) -> Scoring:
    weights: dict[str, dict[str, float]] = {role: {} for role in EVALUATION_ROLES}
    for role, indicator, weight in session.execute(text(
            "SELECT role, indicator, weight FROM evaluation_weights")).all():
        weights[role][indicator] = weight
    thresholds = dict(session.execute(text(
        "SELECT grade, min_score FROM evaluation_grades")).all())
    minimums = dict(session.execute(text("SELECT role, min_cases FROM evaluation_minimums")).all())
    _check_thresholds(thresholds)
    return Scoring(weights, thresholds,
                   {role: minimums.get(role, DEFAULT_MIN_CASES) for role in EVALUATION_ROLES})


def _check_thresholds(thresholds: dict[str, float]) -> None:
    scores = [thresholds[g] for g in GRADES if g in thresholds]
    if any(a <= b for a, b in zip(scores, scores[1:], strict=False)):
        raise SetupError(f"evaluation_grades must fall from A to E; they are {thresholds}")


def normalise(indicator: Indicator, value: float | None, best: float | None) -> float | None:
    """``value`` as a number from 0 (worst) to 1 (best): a rate as it is, or 1 - rate when
    lower is better; anything else against ``best``, the best value of the graded peers (own /
    best when higher is better, best / own when lower is). None when it cannot be judged."""
    if value is None:
        return None
    if indicator.unit == "rate":
        share = min(max(float(value), 0.0), 1.0)
        return share if indicator.better == "higher" else 1.0 - share
    if indicator.better == "higher":
        return None if best is None or best <= 0 else min(max(value / best, 0.0), 1.0)
    if value <= 0:
        return 1.0
    return None if best is None else min(max(best / value, 0.0), 1.0)


def best_of(indicator: Indicator, values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    return max(present) if indicator.better == "higher" else min(present)


def composite(normalised: dict[str, float | None], weights: dict[str, float]) -> float | None:
    """100 x the weighted mean of the indicators that have a value (weights need not add up to
    anything: they are normalised over those); None when none of them weighs anything."""
    pairs = [(weights.get(k, 0.0), v) for k, v in normalised.items() if v is not None]
    total = sum(w for w, _ in pairs if w > 0)
    if total <= 0:
        return None
    return round(100.0 * sum(w * v for w, v in pairs if w > 0) / total, 1)


def grade_of(score: float | None, thresholds: dict[str, float]) -> str | None:
    """The best grade whose lowest score ``score`` reaches."""
    if score is None:
        return None
    return next((g for g in GRADES if g in thresholds and score >= thresholds[g]), None)


def score_units(role: str, values: dict[str, Values], scoring: Scoring,
                basis: dict[str, int] | None = None) -> dict[str, tuple[float | None, str | None]]:
    """(score, grade) per unit; units whose ``basis`` (how many cases their indicators judge;
    by default the role's first indicator) is below the role's minimum get neither and are not
    the best of anything."""
    indicators = INDICATORS[role]
    if basis is None:
        basis = {k: v.get(indicators[0].key) or 0 for k, v in values.items()}
    graded = {k: v for k, v in values.items() if basis.get(k, 0) >= scoring.min_cases[role]}
    bests = {i.key: best_of(i, [v.get(i.key) for v in graded.values()]) for i in indicators}
    out: dict[str, tuple[float | None, str | None]] = {}
    for key, unit in values.items():
        if key not in graded:
            out[key] = (None, None)
            continue
        score = composite({i.key: normalise(i, unit.get(i.key), bests[i.key]) for i in indicators},
                          scoring.weights[role])
        out[key] = (score, grade_of(score, scoring.thresholds))
    return out


# -- the evaluation --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Unit:
    key: str
    name: str


def evaluate(session: Session, actor: Actor, role: str, period: Period,
             scoring: Scoring | None = None) -> dict:
    """The evaluation of ``role`` in ``period`` over what ``actor`` may read: the period and the
    one before, the indicators, and per unit its values, score, grade and those of the period
    before; best score first."""
    require_role(actor, *STATISTICS_ROLES)
    check_role(role)
    tune_for_aggregates(session)
    scoring = scoring or load_scoring(session)
    previous = period.previous()
    # The period and the one before read the same tables for different days: at once.
    (now, now_basis), (before, before_basis) = side_by_side(
        session, lambda s: _VALUES[role](s, actor, period),
        lambda s: _VALUES[role](s, actor, previous))
    units = _UNITS[role](session, actor, period, sorted(k for k, v in now.items() if _any(v)))
    rows = [_row(role, unit, now, before) for unit in units]
    scores = score_units(role, {r["key"]: r["values"] for r in rows}, scoring, now_basis)
    previous_scores = score_units(role, {u.key: before.get(u.key) or _empty(role) for u in units},
                                  scoring, before_basis)
    for row in rows:
        row["score"], row["grade"] = scores[row["key"]]
        row["previous_score"], row["previous_grade"] = previous_scores[row["key"]]
        row["score_change"] = (None if row["score"] is None or row["previous_score"] is None
                               else round(row["score"] - row["previous_score"], 1))
    rows.sort(key=lambda r: (r["score"] is None, -(r["score"] or 0), r["key"]))
    return {"role": role, "period": period.as_dict(), "previous": previous.as_dict(),
            "indicators": [i.as_dict() for i in INDICATORS[role]], "data": rows,
            "count": len(rows)}


def evaluate_all(session: Session, actor: Actor, period: Period) -> dict[str, dict]:
    """Every role's evaluation (the workbook's sheets)."""
    scoring = load_scoring(session)
    return {role: evaluate(session, actor, role, period, scoring) for role in EVALUATION_ROLES}


def _any(values: Values) -> bool:
    """Something happened: a count above 0 or a rate with a value."""
    return any(v not in (None, 0) for v in values.values())


def _empty(role: str) -> Values:
    """A unit with nothing in the period: its counts 0, the rest without a value."""
    return {i.key: 0 if i.unit == "count" else None for i in INDICATORS[role]}


def _row(role: str, unit: Unit, now: dict[str, Values], before: dict[str, Values]) -> dict:
    return {"key": unit.key, "name": unit.name, "values": now.get(unit.key) or _empty(role)}


def _scope(actor: Actor, t: str = "i") -> tuple[str, dict]:
    return read_scope_sql(actor, t)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# -- departments -----------------------------------------------------------------------------------
def _spans_sql(cases: str, *, steps: bool = False) -> str:
    """Each dispatch (to a department) of the cases ``cases`` (a sub-query of issue ids) and
    what falls in its span, from the case's history read once: ``returned``, ``reworked``
    (a move to ``reopened``) and ``extended`` (an approved extension request) when one falls in
    it. With ``steps``, the handling steps done in the period (``:since`` to ``:until``) are in
    ``history`` too (``step``), each in the span its end falls in.

    A span runs from its dispatch until the case's next dispatch (in the order of time, then
    id): so the span a moment falls in is numbered by how many of the case's dispatches came at
    or before it (``span``, 0: before the first), which one window over the case's history
    counts, dispatches first among rows of the same instant."""
    handled = """
                    UNION ALL
                    SELECT st.issue_id, st.done_at, st.id, false, NULL, false, false, false,
                           true, st.started_at
                      FROM cases c JOIN issue_steps st ON st.issue_id = c.issue_id
                     WHERE st.step = 'handle' AND st.done_at >= :since
                       AND st.done_at < :until""" if steps else ""
    return f"""
        cases AS MATERIALIZED ({cases}),
        history AS MATERIALIZED (
            SELECT h.*, count(*) FILTER (WHERE h.dispatch) OVER (
                       PARTITION BY h.issue_id ORDER BY h.at, NOT h.dispatch, h.id
                       ROWS UNBOUNDED PRECEDING) AS span
              FROM (SELECT e.issue_id, e.at, e.id::bigint AS id, e.kind = 'dispatch' AS dispatch,
                           e.department_id, e.kind = 'return' AS returned,
                           e.to_status IS NOT DISTINCT FROM 'reopened' AS reworked,
                           false AS extended, false AS step, NULL::timestamptz AS started_at
                      FROM cases c JOIN issue_events e ON e.issue_id = c.issue_id
                     WHERE e.kind IN ('dispatch', 'return') OR e.to_status = 'reopened'
                    UNION ALL
                    SELECT x.issue_id, x.requested_at, x.id, false, NULL, false, false, true,
                           false, NULL
                      FROM cases c JOIN extension_requests x ON x.issue_id = c.issue_id
                     WHERE x.approved{handled}) h),
        dispatches AS MATERIALIZED (
            SELECT d.id, d.issue_id, d.department_id, d.at, d.span, f.returned, f.reworked,
                   f.extended
              FROM history d JOIN (
                   SELECT issue_id, span, bool_or(returned) AS returned,
                          bool_or(reworked) AS reworked, bool_or(extended) AS extended
                     FROM history WHERE span > 0 GROUP BY issue_id, span) f USING (issue_id, span)
             WHERE d.dispatch AND d.department_id IS NOT NULL)"""


def _department_units(session: Session, actor: Actor, period: Period,
                      present: list[str]) -> list[Unit]:
    """The active departments, and any other that has something in the period."""
    rows = session.execute(text("SELECT code, name FROM departments "
                                "WHERE active OR code = ANY(:present) ORDER BY code"),
                           {"present": present}).all()
    return [Unit(*r) for r in rows]


def _first_counts(role: str, values: dict[str, Values]) -> tuple[dict[str, Values],
                                                                  dict[str, int]]:
    """The values, and as the basis of the minimum the role's first indicator."""
    first = INDICATORS[role][0].key
    return values, {k: v[first] or 0 for k, v in values.items()}


def _department_values(session: Session, actor: Actor, period: Period) -> Found:
    scope, params = _scope(actor)
    rows = session.execute(text(f"""
        WITH {_spans_sql("SELECT DISTINCT issue_id FROM issue_events WHERE kind = 'dispatch' "
                         "AND at >= :since AND at < :until")}
        SELECT dep.code, count(*) AS dispatched,
               count(*) FILTER (WHERE f.returned) AS returned,
               count(DISTINCT f.issue_id) FILTER (WHERE NOT f.returned) AS cases,
               count(DISTINCT f.issue_id) FILTER (WHERE NOT f.returned AND {closed_sql('i')})
                   AS closed,
               count(DISTINCT f.issue_id) FILTER (WHERE NOT f.returned AND {rated_sql('i')})
                   AS rated,
               count(DISTINCT f.issue_id) FILTER (WHERE NOT f.returned AND {on_time_sql('i')})
                   AS on_time,
               count(DISTINCT f.issue_id) FILTER (WHERE NOT f.returned AND f.reworked) AS reworked,
               count(DISTINCT f.issue_id) FILTER (WHERE NOT f.returned AND f.extended) AS extended
          FROM dispatches f JOIN issues i ON i.id = f.issue_id
          JOIN departments dep ON dep.id = f.department_id
         WHERE f.at >= :since AND f.at < :until AND {scope}
         GROUP BY dep.code"""), params | period.params()).mappings()
    hours = _handling_hours(session, actor, period)
    out: dict[str, Values] = {}
    for r in rows:
        out[r["code"]] = {
            "dispatched": r["dispatched"],
            "closure_rate": _rate(r["closed"], r["cases"]),
            "on_time_rate": on_time_rate(r["on_time"], r["rated"]),
            "rework_rate": _rate(r["reworked"], r["cases"]),
            "extension_rate": _rate(r["extended"], r["cases"]),
            "return_rate": _rate(r["returned"], r["dispatched"]),
            "handling_hours": hours.get(r["code"]),
        }
    for code, mean in hours.items():  # handled in the period what was dispatched before it
        out.setdefault(code, {"dispatched": 0, "closure_rate": None, "on_time_rate": None,
                              "rework_rate": None, "extension_rate": None, "return_rate": None,
                              "handling_hours": mean})
    return _first_counts("department", out)


def handling_steps(session: Session, actor: Actor, period: Period) -> list[tuple]:
    """(department code, started, done) of the handling steps done in ``period`` while their
    case was with a department that did not return it; the times as Beijing wall-clock
    microseconds (:func:`gis.worktime.limits.office_hours`)."""
    scope, params = _scope(actor)
    return session.execute(text(f"""
        WITH {_spans_sql("SELECT DISTINCT issue_id FROM issue_steps WHERE step = 'handle' "
                         "AND done_at >= :since AND done_at < :until", steps=True)}
        SELECT dep.code, {_wall_clock_us("st.started_at")}, {_wall_clock_us("st.at")}
          FROM history st
          JOIN dispatches d ON d.issue_id = st.issue_id AND d.span = st.span
          JOIN departments dep ON dep.id = d.department_id
          JOIN issues i ON i.id = st.issue_id
         WHERE st.step AND NOT d.returned AND {scope}"""), params | period.params()).all()


def _wall_clock_us(t: str) -> str:
    return f"(extract(epoch FROM {t} AT TIME ZONE '{BEIJING_TZ_NAME}') * 1000000)::bigint"


def _handling_hours(session: Session, actor: Actor, period: Period) -> dict[str, float]:
    steps = handling_steps(session, actor, period)
    if not steps:
        return {}
    codes, started, done = zip(*steps, strict=True)
    started, done = np.array(started, dtype=np.int64), np.array(done, dtype=np.int64)
    first_day = date(1970, 1, 1) + timedelta(days=int(started.min() // 86_400_000_000))
    hours = office_hours(started, done, load_calendar(session, first_day),
                         workday_start(session), workday_end(session))
    per_department: dict[str, list[float]] = defaultdict(list)
    for code, h in zip(codes, hours.tolist(), strict=True):
        per_department[code].append(h)
    return {code: round(sum(h) / len(h), 2) for code, h in per_department.items()}


# -- grid workers ----------------------------------------------------------------------------------
def _worker_units(session: Session, actor: Actor, period: Period,
                  present: list[str]) -> list[Unit]:
    """Whoever held a grid of the reader's region (an admin's: any) during the period, and any
    other grid worker who did something in it on the reader's cases."""
    region = ""
    params = period.params() | {"present": present}
    if actor.role in REGION_ROLES:
        region = "AND ga.grid_code = ANY(:region_grids)"
        params["region_grids"] = sorted(actor.region_grid_codes)
    rows = session.execute(text(f"""
        SELECT u.username, u.display_name FROM users u
         WHERE u.username = ANY(:present)
            OR u.id IN (SELECT ga.user_id FROM grid_assignments ga
                         WHERE ga.valid_from < :until AND (ga.valid_to IS NULL OR ga.valid_to > :since)
                               {region})
         ORDER BY u.username"""), params).all()
    return [Unit(*r) for r in rows]


# The statuses the moves a worker is judged by leave: a decision on a report and a
# verification leave 'reported', a check leaves 'resolved'.
_JUDGED_MOVES_FROM = ("reported", "resolved")


def _worker_values(session: Session, actor: Actor, period: Period) -> Found:
    """Per grid worker (whoever has held a grid), what they did themselves: the moves of the
    reader's cases whose actor they are. The basis of the minimum is all they did: their
    reports, verifications and checks. Workers who did nothing in the period are left out:
    their values are :func:`_empty`'s, and their basis 0.

    The moves are read by their time (``issue_events_moves_at_idx``) and the reports by the
    cases' report time (``issues_reported_at_idx``): what a period holds, not the history."""
    scope, params = _scope(actor)
    in_scope = "" if scope == "TRUE" else \
        f"AND EXISTS (SELECT 1 FROM issues i WHERE i.id = e.issue_id AND {scope})"
    rows = session.execute(text(f"""
        WITH moves AS MATERIALIZED (
            SELECT e.issue_id, e.actor_id, e.at, e.from_status, e.to_status
              FROM issue_events e
             WHERE e.to_status IS NOT NULL AND e.from_status = ANY(:judged_from)
               AND e.at >= :since AND e.at < :until {in_scope}),
        reports AS (
            SELECT e.actor_id AS user_id, count(*) AS reports,
                   count(*) FILTER (WHERE i.self_resolved) AS self
              FROM issues i JOIN issue_events e ON e.issue_id = i.id
             WHERE i.reported_at >= :since AND i.reported_at < :until AND {scope}
               AND e.from_status IS NULL AND e.to_status IS NOT NULL
             GROUP BY e.actor_id),
        decisions AS (
            SELECT r.actor_id AS user_id, count(*) AS decided,
                   count(*) FILTER (WHERE d.to_status <> 'rejected') AS valid
              FROM moves d JOIN issue_events r ON r.issue_id = d.issue_id
                   AND r.from_status IS NULL AND r.to_status IS NOT NULL
             WHERE d.from_status = 'reported'
             GROUP BY r.actor_id),
        verifications AS ({_timed_moves_sql('reported', ('accepted', 'rejected'), 'accept')}),
        checks AS ({_timed_moves_sql('resolved', ('closed', 'reopened'), 'verify')}),
        active AS (SELECT user_id FROM reports UNION SELECT user_id FROM decisions
                   UNION SELECT user_id FROM verifications UNION SELECT user_id FROM checks)
        SELECT u.username, coalesce(r.reports, 0) AS reports, coalesce(r.self, 0) AS self,
               coalesce(d.decided, 0) AS decided, coalesce(d.valid, 0) AS valid,
               coalesce(v.rated, 0) AS verify_rated, coalesce(v.on_time, 0) AS verify_on_time,
               coalesce(k.rated, 0) AS check_rated, coalesce(k.on_time, 0) AS check_on_time,
               coalesce(r.reports, 0) + coalesce(v.moves, 0) + coalesce(k.moves, 0) AS basis
          FROM active a JOIN users u ON u.id = a.user_id
          LEFT JOIN reports r ON r.user_id = u.id
          LEFT JOIN decisions d ON d.user_id = u.id
          LEFT JOIN verifications v ON v.user_id = u.id
          LEFT JOIN checks k ON k.user_id = u.id
         WHERE u.id IN (SELECT user_id FROM grid_assignments)"""),
        params | period.params() | {"judged_from": list(_JUDGED_MOVES_FROM)}).all()
    values, basis = {}, {}
    for (username, reports, self_resolved, decided, valid, verify_rated, verify_on_time,
         check_rated, check_on_time, done) in rows:
        values[username] = {
            "reports": reports,
            "valid_report_rate": _rate(valid, decided),
            "on_time_verify_rate": on_time_rate(verify_on_time, verify_rated),
            "on_time_check_rate": on_time_rate(check_on_time, check_rated),
            "self_resolved": self_resolved,
        }
        basis[username] = done
    return values, basis


def _timed_moves_sql(from_status: str, to_statuses: tuple[str, str], step: str) -> str:
    """Per actor: their moves in the period from ``from_status`` to one of ``to_statuses``
    whose ``step`` (the one the move ended: the latest started by then) had a deadline
    (``rated``), and those done by it (``on_time``)."""
    return f"""
            SELECT m.actor_id AS user_id, count(*) AS moves,
                   count(*) FILTER (WHERE {step_rated_sql('s')}) AS rated,
                   count(*) FILTER (WHERE {step_on_time_sql('s')}) AS on_time
              FROM moves m
              CROSS JOIN LATERAL (
                  SELECT st.due_at, st.done_at FROM issue_steps st
                   WHERE st.issue_id = m.issue_id AND st.step = '{step}' AND st.started_at <= m.at
                   ORDER BY st.started_at DESC, st.id DESC LIMIT 1) s
             WHERE m.from_status = '{from_status}'
               AND m.to_status IN ('{to_statuses[0]}', '{to_statuses[1]}')
               AND m.at >= :since AND m.at < :until
             GROUP BY m.actor_id"""


# -- grids and communities -------------------------------------------------------------------------
def _region_grids(actor: Actor) -> tuple[str, dict]:
    if actor.role in REGION_ROLES:
        return "cg.code = ANY(:region_grids)", {"region_grids": sorted(actor.region_grid_codes)}
    return "TRUE", {}


def _area_units(session: Session, actor: Actor, level: str) -> list[Unit]:
    region, params = _region_grids(actor)
    unit = "cg" if level == "grid" else "rc"
    rows = session.execute(text(f"""
        SELECT DISTINCT {unit}.code, {unit}.name FROM grids cg
          JOIN regions rc ON rc.id = cg.community_id
         WHERE cg.valid_to IS NULL AND {region} ORDER BY {unit}.code"""), params).all()
    return [Unit(*r) for r in rows]


def _area_values(session: Session, actor: Actor, period: Period, level: str) -> Found:
    scope, params = _scope(actor)
    unit = "g.code" if level == "grid" else "rc.code"
    households = dict(session.execute(text(f"""
        SELECT {'g.code' if level == 'grid' else 'rc.code'}, sum(g.households)
          FROM grids g JOIN regions rc ON rc.id = g.community_id
         WHERE g.valid_to IS NULL GROUP BY 1""")).all())
    rows = session.execute(text(f"""
        SELECT {unit} AS code, count(*) AS cases,
               count(*) FILTER (WHERE i.status <> 'rejected') AS taken,
               count(*) FILTER (WHERE {closed_sql('i')}) AS closed,
               count(*) FILTER (WHERE {rated_sql('i')}) AS rated,
               count(*) FILTER (WHERE {on_time_sql('i')}) AS on_time
          FROM issues i JOIN grids g ON g.id = i.grid_id
          JOIN regions rc ON rc.id = g.community_id
         WHERE i.reported_at >= :since AND i.reported_at < :until AND {scope}
         GROUP BY {unit}"""), params | period.params()).mappings()
    out: dict[str, Values] = {code: {  # no case: none per 1,000 households
        "cases": 0, "per_1000_households": _per_1000(0, n), "closure_rate": None,
        "on_time_rate": None} for code, n in households.items()}
    for r in rows:
        out[r["code"]] = {
            "cases": r["cases"],
            "per_1000_households": _per_1000(r["cases"], households.get(r["code"])),
            "closure_rate": _rate(r["closed"], r["taken"]),
            "on_time_rate": on_time_rate(r["on_time"], r["rated"]),
        }
    return _first_counts(level, out)


def _per_1000(cases: int, households: int | None) -> float | None:
    return round(cases * 1000.0 / households, 2) if households else None


_UNITS: dict[str, Callable[[Session, Actor, Period, list[str]], list[Unit]]] = {
    "department": _department_units,
    "worker": _worker_units,
    "grid": lambda s, a, p, present: _area_units(s, a, "grid"),
    "community": lambda s, a, p, present: _area_units(s, a, "community"),
}
_VALUES: dict[str, Callable[[Session, Actor, Period], Found]] = {
    "department": _department_values,
    "worker": _worker_values,
    "grid": lambda s, a, p: _area_values(s, a, p, "grid"),
    "community": lambda s, a, p: _area_values(s, a, p, "community"),
}
