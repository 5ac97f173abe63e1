"""The leaders' dashboard (``/dash``): its numbers, computed in SQL over the caller's scope.

Who: leaders, dispatchers and admins (:data:`gis.queries.statistics.STATISTICS_ROLES`), each
over the cases they may read (:func:`gis.queries.reads.scoped_where`). What counts is the one
:class:`~gis.queries.filters.IssueFilter` (a community, categories), and the rules are
:mod:`gis.rules`' (open, closed, overdue, a step overdue, on time); nothing is defined again
here. The dashboard's filter adds a *period*: the ISO week, calendar month or quarter
(Beijing time) that holds a day.

* :func:`summary`, the headline: open cases and those overdue now (whatever the period), and
  the cases reported and closed in the period with the on-time closure rate of those closed
  (按期结案率: :func:`gis.rules.on_time_rate` over :func:`gis.rules.on_time_sql`);
* :func:`trend`: cases reported per week and category, and the on-time closure rate of the
  cases closed each week, over the :data:`TREND_WEEKS` weeks that end with the period (or with
  this week, for a period still running);
* :func:`overdue`: the open cases overdue now (:func:`gis.rules.overdue_now_sql`): past the deadline
  promised to the resident (:func:`gis.rules.overdue_sql`) or with their running step past its
  own (:func:`gis.rules.step_overdue_sql`), latest first, with how late in hours;
* :func:`heat_data`: the heatmap's aggregates (:func:`gis.queries.map_data.heatmap_data`) of the
  cases reported in the period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import InvalidParameter
from gis.people.actors import Actor, require_role
from gis.queries import map_data, rollup
from gis.queries.filters import IssueFilter, Where, start_of
from gis.queries.reads import ScopedFilter, scoped_where
from gis.queries.statistics import STATISTICS_ROLES
from gis.rules import (
    BEIJING_TZ_NAME,
    CLOSED_STATUS,
    REGION_ROLES,
    STEP_NAMES,
    closed_sql,
    on_time_rate,
    on_time_sql,
    open_sql,
    overdue_now_sql,
    overdue_sql,
    rated_sql,
    step_overdue_sql,
)

PERIODS = ("week", "month", "quarter")
PERIOD_NAMES = {"week": ("周", "week"), "month": ("月", "month"), "quarter": ("季度", "quarter")}
# Weeks the trend charts show, by period: a quarter's trend reaches back half a year.
TREND_WEEKS = {"week": 12, "month": 16, "quarter": 26}
OVERDUE_LIMIT = 200  # rows of the overdue list (its count is of them all)


# -- the period and the filter ----------------------------------------------------------------------
@dataclass(frozen=True)
class Period:
    """An ISO week (Monday to Sunday), a calendar month or a quarter; ``until`` inclusive."""

    kind: str
    since: date
    until: date
    label: str  # 2026-W48, 2026-11, 2026-Q4

    def as_dict(self) -> dict:
        return {"kind": self.kind, "since": self.since, "until": self.until, "label": self.label}


def period_of(kind: str, day: date) -> Period:
    """The period of ``kind`` (:data:`PERIODS`) that holds ``day``."""
    if kind == "week":
        since = day - timedelta(days=day.weekday())
        year, week, _ = day.isocalendar()
        return Period(kind, since, since + timedelta(days=6), f"{year}-W{week:02d}")
    if kind == "month":
        return Period(kind, day.replace(day=1), _month_end(day.year, day.month),
                      f"{day.year}-{day.month:02d}")
    if kind == "quarter":
        quarter = (day.month - 1) // 3
        since = date(day.year, 3 * quarter + 1, 1)
        return Period(kind, since, _month_end(day.year, 3 * quarter + 3),
                      f"{day.year}-Q{quarter + 1}")
    raise InvalidParameter(f"period must be one of {', '.join(PERIODS)}; got {kind!r}",
                           zh=f"period 须为 {'、'.join(PERIODS)} 之一，收到 {kind!r}")


def _month_end(year: int, month: int) -> date:
    following = date(year + month // 12, month % 12 + 1, 1)
    return following - timedelta(days=1)


@dataclass(frozen=True)
class DashFilter:
    """What the dashboard shows: the period (of the day ``day``), and which cases (a community,
    categories)."""

    period: Period
    community: str | None = None
    categories: tuple[str, ...] = ()
    day: date | None = None

    def issues(self, since: date | None = None, until: date | None = None) -> IssueFilter:
        """The cases of the community and categories reported from ``since`` to ``until``."""
        return IssueFilter(community=self.community, categories=self.categories,
                           since=since, until=until)


def _window(period: Period) -> dict:
    """The period's first instant and the first instant after it (Beijing days)."""
    return {"p_since": start_of(period.since),
            "p_after": start_of(period.until + timedelta(days=1))}


# -- overdue now ----------------------------------------------------------------------------------
_RUNNING_STEP = "LEFT JOIN issue_steps s ON s.issue_id = i.id AND s.done_at IS NULL"


def _overdue_count(session: Session, where: Where) -> int:
    """How many of the cases ``where`` takes in are overdue now (:func:`gis.rules.overdue_now_sql`):
    those past their promised deadline, counted in ``issues_timed_due_idx`` (an index-only
    count when ``where`` asks nothing of the row), and those with a running step past its own
    that are not past their deadline (a case has at most one running step). No pass over the
    city's cases: both parts are read through their indexes."""
    return session.execute(text(f"""
        SELECT (SELECT count(*) FROM issues i WHERE {where.sql} AND {overdue_sql('i')})
             + (SELECT count(*) FROM issue_steps s JOIN issues i ON i.id = s.issue_id
                 WHERE {step_overdue_sql('s')} AND {where.sql} AND NOT {overdue_sql('i')})"""),
        where.params).scalar_one()


def _count(session: Session, where: Where, condition: str = "TRUE") -> int:
    return session.execute(text(f"SELECT count(*) FROM issues i WHERE {where.sql} AND {condition}"),
                           where.params).scalar_one()


# -- the headline -----------------------------------------------------------------------------------
def summary(session: Session, actor: Actor, flt: DashFilter) -> dict:
    """Open and overdue now; reported, closed, rated and closed on time in the period, and the
    on-time closure rate of the cases closed in it.

    Each number is counted through an index, never by a pass over the city's cases: open among
    the open cases (``ix_issues_open_tiles``, index-only), overdue by :func:`_overdue_count`,
    reported by the report time (``issues_reported_at_idx``), closed by the closing time
    (``issues_closed_at_idx``); a community or a leader's region narrows each to its grids."""
    require_role(actor, *STATISTICS_ROLES)
    period = flt.period
    where = ScopedFilter.of(flt.issues(), actor).where(session)
    reported = ScopedFilter.of(flt.issues(period.since, period.until), actor).where(session)
    closed = session.execute(text(f"""
        SELECT count(*) AS closed, count(*) FILTER (WHERE {rated_sql('i')}) AS rated,
               count(*) FILTER (WHERE {on_time_sql('i')}) AS on_time
          FROM issues i
         WHERE {where.sql} AND {closed_sql('i')} AND i.closed_at >= :p_since
               AND i.closed_at < :p_after"""), where.params | _window(period)).mappings().one()
    row = {"open": _count(session, where, open_sql("i")), "overdue": _overdue_count(session, where),
           "reported": _count(session, reported), **closed}
    return row | {"on_time_rate": on_time_rate(row["on_time"], row["rated"]),
                  "period": period.as_dict()}


# -- the trends -------------------------------------------------------------------------------------
def trend_weeks(period: Period, today: date) -> list[date]:
    """The Mondays of the trend: :data:`TREND_WEEKS` weeks ending with the period's last week,
    or with this week while the period runs."""
    last = min(period.until, today)
    last_monday = last - timedelta(days=last.weekday())
    n = TREND_WEEKS[period.kind]
    return [last_monday - timedelta(weeks=n - 1 - k) for k in range(n)]


def trend(session: Session, actor: Actor, flt: DashFilter, today: date) -> dict:
    """Per week (Monday, Beijing time): the cases reported, by category, and the on-time
    closure rate of the cases closed that week. Categories with no case in the weeks are
    left out; the others come busiest first."""
    require_role(actor, *STATISTICS_ROLES)
    weeks = trend_weeks(flt.period, today)
    return {"weeks": weeks, "period": flt.period.as_dict(),
            "categories": _reported_by_category(session, actor, flt, weeks),
            "on_time": _closed_by_week(session, actor, flt, weeks)}


def _reported_by_category(session: Session, actor: Actor, flt: DashFilter,
                          weeks: list[date]) -> list[dict]:
    scoped = ScopedFilter.of(flt.issues(weeks[0], weeks[-1] + timedelta(days=6)), actor)
    counts: dict[str, list[int]] = {}
    position = {w: k for k, w in enumerate(weeks)}
    for week, category, n in _weekly_reports(session, scoped):
        series = counts.setdefault(category, [0] * len(weeks))
        series[position[week]] += n
    names = _category_names(session, list(counts))
    out = [names[code] | {"counts": series, "total": sum(series)} for code, series in counts.items()
           if sum(series)]
    return sorted(out, key=lambda c: (-c["total"], c["code"]))


def _weekly_reports(session: Session, scoped: ScopedFilter) -> list[tuple[date, str, int]]:
    """(Monday, category, cases reported) of the filter's whole weeks (Beijing time). When the
    filter takes in every grid and no grid (the city, by category), the located cases of its
    weeks are the issue rollup's weekly cells (:mod:`gis.queries.rollup`), and the cases
    without a location are read through ``issues_unlocated_idx``; otherwise (a community, a
    leader's region: few cases) they are scanned."""
    scope = rollup.scope_of(session, scoped)
    buckets = rollup.whole_buckets("week", scoped) if scope is not None else None
    where = scoped.where(session)
    if scope is None or not scope.everywhere or buckets is None:
        return _scan_weekly_reports(session, where)
    held = Where(scope.where.clauses + buckets.where().clauses,
                 scope.where.params | buckets.where().params)
    rows = session.execute(text(f"""
        SELECT r.week, r.category, sum(r.n)::bigint FROM issue_rollup_weeks r
         WHERE {held.sql} GROUP BY r.week, r.category"""), held.params).all()
    located = [(rollup.week_start(week), category, n) for week, category, n in rows]
    inside, params = buckets.inside_sql("i")
    rest = " OR ".join([*buckets.outside_sql("i"), f"({inside} AND i.lon IS NULL)"])
    return located + _scan_weekly_reports(session, Where([*where.clauses, f"({rest})"],
                                                         where.params | params))


def _scan_weekly_reports(session: Session, where: Where) -> list[tuple[date, str, int]]:
    return [tuple(r) for r in session.execute(text(f"""
        SELECT date_trunc('week', i.reported_at AT TIME ZONE :tz)::date AS week, i.category,
               count(*) AS n
          FROM issues i WHERE {where.sql} GROUP BY 1, 2"""),
        where.params | {"tz": BEIJING_TZ_NAME}).all()]


def _category_names(session: Session, codes: list[str]) -> dict[str, dict]:
    rows = session.execute(text("""
        SELECT code, name_zh, name_en, colour FROM categories
         WHERE kind = 'issue' AND code = ANY(:codes)"""), {"codes": codes}).mappings()
    named = {r["code"]: {"code": r["code"], "zh": r["name_zh"], "en": r["name_en"],
                         "colour": r["colour"]} for r in rows}
    return {c: named.get(c, {"code": c, "zh": c, "en": c, "colour": None}) for c in codes}


def _closed_by_week(session: Session, actor: Actor, flt: DashFilter,
                    weeks: list[date]) -> list[dict]:
    where = scoped_where(session, actor, flt.issues())
    mondays = [start_of(w) for w in weeks]
    window = {"w_since": mondays[0], "w_after": start_of(weeks[-1] + timedelta(weeks=1)),
              "mondays": mondays}
    # The closed cases by closing time, their status known: the rules read the status of the
    # sub-query's rows, not the table's, so the count needs only issues_closed_at_idx (closing
    # and due times); width_bucket places each in its week (1: the first) by comparing instants.
    rows = session.execute(text(f"""
        SELECT width_bucket(c.closed_at, CAST(:mondays AS timestamptz[])) AS week,
               count(*) AS closed, count(*) FILTER (WHERE {rated_sql('c')}) AS rated,
               count(*) FILTER (WHERE {on_time_sql('c')}) AS on_time
          FROM (SELECT i.closed_at, i.due_at, '{CLOSED_STATUS}' AS status FROM issues i
                 WHERE {where.sql} AND {closed_sql('i')} AND i.closed_at >= :w_since
                       AND i.closed_at < :w_after) c
         GROUP BY 1"""), where.params | window).mappings()
    by_week = {weeks[r["week"] - 1]: r for r in rows}
    out = []
    for week in weeks:
        r = by_week.get(week, {"closed": 0, "rated": 0, "on_time": 0})
        out.append({"week": week, "closed": r["closed"], "rated": r["rated"],
                    "on_time": r["on_time"], "on_time_rate": on_time_rate(r["on_time"], r["rated"])})
    return out


# -- the overdue list -------------------------------------------------------------------------------
def overdue(session: Session, actor: Actor, flt: DashFilter, *,
            limit: int = OVERDUE_LIMIT) -> dict:
    """The open cases overdue now (:func:`gis.rules.overdue_now_sql`), the latest first: each
    with its category, grid, department, promised deadline and hours past it (None when not
    past), running step with its deadline and hours past it, and ``hours_late``, the larger of
    the two. ``count`` is of them all (:func:`_overdue_count`), ``data`` the first ``limit``.

    A case's place in the list is its larger lateness, so the first ``limit`` are among the
    ``limit`` latest by their promised deadline (``issues_timed_due_idx``, in order) and the
    ``limit`` latest by their running step (``ix_issue_steps_running_due``): only those are
    read and ordered."""
    require_role(actor, *STATISTICS_ROLES)
    where = scoped_where(session, actor, flt.issues())
    late = "round((extract(epoch FROM now() - {due}) / 3600)::numeric, 1)::float"
    rows = session.execute(text(f"""
        WITH latest AS (
            (SELECT i.id FROM issues i WHERE {where.sql} AND {overdue_sql('i')}
              ORDER BY i.due_at, i.id LIMIT :limit)
            UNION
            (SELECT i.id FROM issue_steps s JOIN issues i ON i.id = s.issue_id
              WHERE {step_overdue_sql('s')} AND {where.sql}
              ORDER BY s.due_at, i.id LIMIT :limit))
        SELECT i.id, i.category, c.name_zh AS category_zh, c.name_en AS category_en,
               g.code AS grid_code, g.name AS grid_name, d.code AS department_code,
               d.name AS department, i.status, i.reported_at, i.due_at,
               CASE WHEN {overdue_sql('i')} THEN {late.format(due='i.due_at')} END AS due_hours_late,
               s.step, s.due_at AS step_due_at,
               CASE WHEN {step_overdue_sql('s')} THEN {late.format(due='s.due_at')} END
                   AS step_hours_late
          FROM latest JOIN issues i ON i.id = latest.id {_RUNNING_STEP}
          LEFT JOIN categories c ON c.kind = 'issue' AND c.code = i.category
          LEFT JOIN grids g ON g.id = i.grid_id
          LEFT JOIN departments d ON d.id = i.department_id
         WHERE {overdue_now_sql()}
         ORDER BY greatest(CASE WHEN {overdue_sql('i')} THEN now() - i.due_at END,
                           CASE WHEN {step_overdue_sql('s')} THEN now() - s.due_at END) DESC,
                  i.id
         LIMIT :limit"""), where.params | {"limit": limit}).mappings().all()
    total = _overdue_count(session, where) if rows else 0
    return {"count": total, "data": [_overdue_row(r) for r in rows]}


def _overdue_row(row) -> dict:
    out = dict(row)
    lates = [h for h in (out["due_hours_late"], out["step_hours_late"]) if h is not None]
    zh, en = STEP_NAMES.get(out["step"], (None, None))
    return out | {"hours_late": max(lates), "step_overdue": out["step_hours_late"] is not None,
                  "step_zh": zh, "step_en": en}


# -- the heatmap ------------------------------------------------------------------------------------
def heat_data(session: Session, actor: Actor, flt: DashFilter) -> map_data.HeatmapData:
    """The heatmap's cells and grids (no hotspots) for the cases reported in the period."""
    require_role(actor, *STATISTICS_ROLES)
    period = flt.period
    scoped = ScopedFilter.of(flt.issues(period.since, period.until), actor)
    return map_data.heatmap_data(session, scoped, hotspots=False)


# -- what the filter form offers --------------------------------------------------------------------
def filter_choices(session: Session, actor: Actor) -> dict:
    """The communities with current grids in the reader's region (an admin's: all), and the
    issue categories (code, zh, en, colour)."""
    require_role(actor, *STATISTICS_ROLES)
    where = Where(["g.valid_to IS NULL"])
    if actor.role in REGION_ROLES:
        where.add("g.code = ANY(:region_grids)", region_grids=sorted(actor.region_grid_codes))
    communities = session.execute(text(f"""
        SELECT DISTINCT c.code, c.name FROM regions c JOIN grids g ON g.community_id = c.id
         WHERE {where.sql} ORDER BY c.code"""), where.params).mappings().all()
    categories = map_data.categories(session, "issue")
    return {"communities": [dict(r) for r in communities],
            "categories": [{"code": r.code, "zh": r.name_zh, "en": r.name_en, "colour": r.colour}
                           for r in categories.itertuples()]}
