"""Evaluation statistics (综合评价), computed in SQL over the filtered issues.

One per-grid query, :func:`counts_by_grid`, feeds ``/api/v1/stats/grids``, the heatmap's grid
panel and the overview, and the rates come from :func:`with_rates`, so the three cannot count
differently. The same :class:`~gis.queries.filters.IssueFilter` as the issue list decides which
issues count, so a leader can open the list behind any number. Definitions (:mod:`gis.rules`):

* ``open``: not in a final status; ``overdue``: open, with a due time, past it;
* ``on_time_rate`` (按期结案率): closed by ``due_at`` / closed issues that had a due time;
* ``median_hours_to_close``: median of ``closed_at - reported_at`` over closed issues, in hours;
* ``per_1000_households``: reported issues per 1,000 households of the grid's current version.

Issues tagged to an older version of a grid count for the grid of that code. Timeline buckets
are calendar days, ISO weeks (Monday) or months in Beijing time.

Statistics are for leaders, dispatchers and admins (:data:`STATISTICS_ROLES`), each over the
cases they may read (a :class:`~gis.queries.reads.ScopedFilter`, or
:func:`~gis.queries.reads.scoped_where`): a leader of a community sees its grids, and the cases
in no grid that lie inside it. Per grid worker (:func:`worker_stats`), a
case counts for whoever held its grid when it was reported (``grid_assignments``), so a worker
who handed a grid over keeps the credit for their time.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import InvalidParameter
from gis.people.actors import Actor, require_role
from gis.queries import rollup
from gis.queries.filters import IssueFilter, Where
from gis.queries.reads import ScopedFilter, scoped_where
from gis.rules import (
    BEIJING_TZ_NAME,
    CLOSED_STATUS,
    OPEN_STATUSES,
    REGION_ROLES,
    closed_sql,
    on_time_rate,
    on_time_sql,
    open_sql,
    overdue_sql,
    rated_sql,
)

BUCKETS = ("day", "week", "month")
COUNTS = ("reported", "open", "closed", "rejected", "overdue", "rated", "on_time")
STATISTICS_ROLES = ("leader", "dispatcher", "admin")


def _counts_sql(t: str) -> str:
    """:data:`COUNTS` and the median time to close over the rows ``t`` of a grouped (possibly
    outer) join: the one wording of the counts for the timeline and the workers."""
    return f"""count({t}.id) AS reported,
               count({t}.id) FILTER (WHERE {open_sql(t)}) AS open,
               count({t}.id) FILTER (WHERE {closed_sql(t)}) AS closed,
               count({t}.id) FILTER (WHERE {t}.status = 'rejected') AS rejected,
               count({t}.id) FILTER (WHERE {overdue_sql(t)}) AS overdue,
               count({t}.id) FILTER (WHERE {rated_sql(t)}) AS rated,
               count({t}.id) FILTER (WHERE {on_time_sql(t)}) AS on_time,
               round((percentile_cont(0.5) WITHIN GROUP (ORDER BY {rollup.hours_to_close_sql(t)})
                      FILTER (WHERE {closed_sql(t)}))::numeric, 1)::float AS median_hours_to_close"""


def counts_by_grid(session: Session, filters: IssueFilter, *, median: bool = False,
                   rollup: bool = True) -> pd.DataFrame:
    """One row per grid code (``code`` None: the issues in no grid) with :data:`COUNTS`, and
    ``median_hours_to_close`` when ``median`` is asked for. A
    :class:`~gis.queries.reads.ScopedFilter` counts only the cases its reader may read.

    When the rollup's keys express the filter (:func:`gis.queries.rollup.scope_of`), the cases
    of its whole years are read from ``issue_rollup_grids`` and their overdue ones from the
    issues whose time runs; the rest is scanned (``rollup=False`` scans all: the same answer).
    The scans are grouped by grid row and status: few groups, so PostgreSQL aggregates in
    parallel workers and needs no join; rows are then mapped to codes in pandas."""
    where = filters.where(session)
    frame = _grid_status_counts(session, filters, where, rollup)
    frame["open"] = frame["reported"].where(frame["status"].isin(OPEN_STATUSES), 0)
    frame["closed"] = frame["reported"].where(frame["status"] == CLOSED_STATUS, 0)
    frame["rejected"] = frame["reported"].where(frame["status"] == "rejected", 0)
    # numeric grid ids (a part with only cases in no grid holds None alone: object), so that
    # the codes come out as strings however many parts the counts were read in
    ids = pd.to_numeric(frame["grid_id"])
    codes = dict(session.execute(text("SELECT id, code FROM grids WHERE id = ANY(:ids)"),
                                 {"ids": sorted(int(i) for i in ids.dropna().unique())}).all())
    frame["code"] = ids.map(codes).astype("str")  # all None: float NaN otherwise
    out = frame.groupby("code", dropna=False, as_index=False)[list(COUNTS)].sum()
    out = out[["code", *COUNTS]].astype(dict.fromkeys(COUNTS, "int64"))
    if median:
        out = out.merge(_medians(session, filters, where, rollup), on="code", how="left")
    # One dtype for the codes however the parts came (an empty or all-None part is object).
    return out.astype({"code": "str"})


_GRID_STATUS = ["grid_id", "status", "reported", "overdue", "rated", "on_time"]


def _grid_status_counts(session: Session, filters: IssueFilter, where: Where,
                        use_rollup: bool) -> pd.DataFrame:
    """(grid_id, status) rows of counts, from the rollup where it holds the filter's cases."""
    scope = rollup.scope_of(session, filters) if use_rollup else None
    buckets = rollup.whole_buckets("year", filters) if scope is not None else None
    if scope is None or buckets is None:
        return _scan_grid_status(session, where)
    if buckets.first is None and buckets.after is None and not filters.categories:
        return _grid_totals(session, filters, scope, where)
    inside, params = buckets.inside_sql("i")
    outside = buckets.outside_sql("i") + ([scope.rest_sql] if scope.rest_sql else [])
    held = inside + (f" AND NOT ({scope.rest_sql})" if scope.rest_sql else "")
    parts = [rollup.grid_counts(session, scope, buckets).assign(overdue=0)[_GRID_STATUS],
             _scan_overdue(session, _and(_in_grids(session, filters, where), held, params))]
    if outside:
        parts.append(_scan_grid_status(session, _and(where, " OR ".join(outside), params)))
    return pd.concat([p for p in parts if not p.empty] or parts[:1], ignore_index=True)


def _grid_totals(session: Session, filters: IssueFilter, scope: rollup.Scope,
                 where: Where) -> pd.DataFrame:
    """All years and categories: the grids' totals (``issue_rollup_grid_totals``), the overdue
    ones counted as they stand, and a region's cases in no grid scanned."""
    held = f"NOT ({scope.rest_sql})" if scope.rest_sql else "TRUE"
    parts = [rollup.grid_totals(session, scope).assign(overdue=0)[_GRID_STATUS],
             _scan_overdue(session, _and(_in_grids(session, filters, where), held, {}))]
    if scope.rest_sql:
        parts.append(_scan_grid_status(session, _and(where, scope.rest_sql, {})))
    return pd.concat([p for p in parts if not p.empty] or parts[:1], ignore_index=True)


def _in_grids(session: Session, filters: IssueFilter, where: Where) -> Where:
    """``where`` for the cases held in grids: a region reader's first half
    (:meth:`ScopedFilter.where_parts`, the cases in its grids), which the overdue count reads
    from ``issues_timed_due_idx`` alone where the whole scope's OR would visit the table for
    each of the city's overdue cases; ``where`` itself for every other reader."""
    if isinstance(filters, ScopedFilter) and filters.region_grids() is not None:
        return filters.where_parts(session)[0]
    return where


def _and(where: Where, clause: str, params: dict) -> Where:
    return Where([*where.clauses, f"({clause})"], where.params | params)


def _scan_grid_status(session: Session, where: Where) -> pd.DataFrame:
    rows = session.execute(text(f"""
        SELECT i.grid_id, i.status, count(*) AS reported,
               count(*) FILTER (WHERE {overdue_sql('i')}) AS overdue,
               count(*) FILTER (WHERE {rated_sql('i')}) AS rated,
               count(*) FILTER (WHERE {on_time_sql('i')}) AS on_time
          FROM issues i WHERE {where.sql} GROUP BY i.grid_id, i.status"""), where.params).all()
    return rollup.frame_of(rows, _GRID_STATUS)


def _scan_overdue(session: Session, where: Where) -> pd.DataFrame:
    """Overdue cases per (grid_id, status): overdue depends on now(), so it is never rolled
    up; the issues whose time runs have an index of their own (issues_timed_due_idx)."""
    rows = session.execute(text(f"""
        SELECT i.grid_id, i.status, 0, count(*), 0, 0 FROM issues i
         WHERE {where.sql} AND {overdue_sql('i')} GROUP BY i.grid_id, i.status"""),
        where.params).all()
    return rollup.frame_of(rows, _GRID_STATUS)


_MEDIAN = ["code", "median_hours_to_close"]


def _median_sql(values: str) -> str:
    """The median of ``values`` (hours) as the statistics give it: rounded to 0.1 h."""
    return f"round(percentile_cont(0.5) WITHIN GROUP (ORDER BY {values})::numeric, 1)::float"


def _medians(session: Session, filters: IssueFilter, where: Where,
             use_rollup: bool) -> pd.DataFrame:
    """(code, median_hours_to_close) per grid code (None: no grid) over the filtered closed
    cases: from each grid's closings (``issue_rollup_closings``) where the rollup's keys
    express the filter's places and reader, else by a scan."""
    places = dataclasses.replace(filters, categories=(), statuses=(), since=None, until=None)
    scope = rollup.scope_of(session, places) if use_rollup else None
    if scope is None:
        return _scan_medians(session, where)
    if filters.statuses and CLOSED_STATUS not in filters.statuses:
        return pd.DataFrame(columns=_MEDIAN)
    elements = _element_where(filters)
    if elements.clauses:
        parts = [_unnest_medians(session, scope.where, elements)]
    else:
        parts = [_middle_medians(session, scope.where)]
    if scope.rest_sql:
        parts.append(_scan_medians(session, _and(where, scope.rest_sql, {})))
    return pd.concat([p for p in parts if not p.empty] or parts[:1], ignore_index=True)


def _element_where(filters: IssueFilter) -> Where:
    """The filter's categories and times on the elements ``e`` of a grid's closings."""
    where = Where()
    if filters.categories:
        where.add("e.category = ANY(:e_categories)", e_categories=list(filters.categories))
    if filters.since is not None:
        where.add("e.reported >= :e_since", e_since=filters.since_at())
    if filters.until is not None:
        where.add("e.reported <= :e_until", e_until=filters.until_at())
    return where


def _middle_medians(session: Session, grids: Where) -> pd.DataFrame:
    """Every closed case of each grid counts: its median is the middle of its sorted hours
    (the one middle value, or the two interpolated as percentile_cont does: lo + 0.5 (hi -
    lo)). A code with several grid versions merges their closings."""
    rows = session.execute(text(f"""
        SELECT x.grid_id, round((x.s[1] + 0.5 * (x.s[cardinality(x.s)] - x.s[1]))::numeric, 1)::float
          FROM (SELECT r.grid_id, r.hours[(r.n + 1) / 2 : r.n / 2 + 1] AS s
                  FROM issue_rollup_closings r WHERE {grids.sql} OFFSET 0) x"""),
        grids.params).all()
    frame = rollup.frame_of(rows, ["grid_id", "median_hours_to_close"])
    codes = dict(session.execute(text("SELECT id, code FROM grids")).all())
    frame["code"] = frame["grid_id"].map(codes)  # grid 0 (no grid): None
    merged = frame["code"].notna() & frame["code"].duplicated(keep=False)
    out = frame[~merged][_MEDIAN]
    if not merged.any():
        return out
    versions = Where(["r.grid_id = ANY(:versions)"],
                     {"versions": frame.loc[merged, "grid_id"].tolist()})
    return pd.concat([out, _unnest_medians(session, versions, Where())], ignore_index=True)


def _unnest_medians(session: Session, grids: Where, elements: Where) -> pd.DataFrame:
    rows = session.execute(text(f"""
        SELECT g.code, {_median_sql('e.hours')}
          FROM issue_rollup_closings r LEFT JOIN grids g ON g.id = r.grid_id,
               unnest(r.hours, r.reported, r.categories) AS e(hours, reported, category)
         WHERE {grids.sql} AND {elements.sql} GROUP BY g.code"""),
        grids.params | elements.params).all()
    return rollup.frame_of(rows, _MEDIAN)


def _scan_medians(session: Session, where: Where) -> pd.DataFrame:
    rows = session.execute(text(f"""
        SELECT g.code, {_median_sql(rollup.hours_to_close_sql('i'))}
          FROM issues i LEFT JOIN grids g ON g.id = i.grid_id
         WHERE {where.sql} AND {closed_sql('i')} GROUP BY g.code"""), where.params).all()
    return pd.DataFrame(rows, columns=_MEDIAN)


def with_rates(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``on_time_rate`` (:func:`gis.rules.on_time_rate`) and, where the frame has
    ``households``, ``per_1000_households``; counts missing after a merge become 0."""
    out = frame.copy()
    for col in COUNTS:
        out[col] = out[col].fillna(0).astype("int64")
    out["on_time_rate"] = [on_time_rate(n, d) for n, d in zip(out["on_time"], out["rated"],
                                                              strict=True)]
    if "households" in out:
        households = out["households"].where(out["households"] > 0)
        out["per_1000_households"] = (out["reported"] * 1000.0 / households).round(2)
    return out


def grid_stats(session: Session, actor: Actor,
               filters: IssueFilter | None = None) -> tuple[list[dict], dict]:
    """One row per current grid in the filters' scope (the grid, the community's grids, or all)
    and the reader's region, ordered by code; and the same counts over the filtered issues in
    their scope that lie in no grid (reported outside every grid and beyond the tagging
    tolerance): work no grid worker sees, which a leader should."""
    require_role(actor, *STATISTICS_ROLES)
    filters = ScopedFilter.of(filters or IssueFilter(), actor)
    counts = counts_by_grid(session, filters, median=True)
    grids = pd.DataFrame(current_grids(session, filters),
                         columns=["grid_code", "grid_name", "community", "households"])
    table = with_rates(grids.merge(counts.rename(columns={"code": "grid_code"}), on="grid_code",
                                   how="left"))
    rows = [_public(r) for r in table.to_dict("records")]
    alone = counts[counts["code"].isna()]
    if alone.empty:
        alone = pd.DataFrame([dict.fromkeys(COUNTS, 0) | {"median_hours_to_close": None}])
    unassigned = with_rates(alone)
    unassigned = _public(unassigned.iloc[0].to_dict())
    for key in ("code", "per_1000_households"):
        unassigned.pop(key, None)
    return rows, unassigned


def current_grids(session: Session, filters: IssueFilter) -> list[tuple]:
    """(code, name, community, households) of the current grids the filters name, within the
    reader's region when a :class:`~gis.queries.reads.ScopedFilter` has one."""
    where = Where(["cg.valid_to IS NULL"])
    if filters.grid:
        where.add("cg.code = :grid", grid=filters.grid)
    where.community("rc", filters.community)
    region = filters.region_grids() if isinstance(filters, ScopedFilter) else None
    if region is not None:
        where.add("cg.code = ANY(:region_grids)", region_grids=sorted(region))
    return session.execute(text(f"""
        SELECT cg.code, cg.name, rc.name, cg.households
          FROM grids cg JOIN regions rc ON rc.id = cg.community_id
         WHERE {where.sql} ORDER BY cg.code"""), where.params).all()


def _public(row: dict) -> dict:
    """A statistics row without the helper columns, NaN as None."""
    out = {k: v for k, v in row.items() if k not in ("rated", "on_time")}
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in out.items()}


def _rated(row) -> dict:
    return _public(dict(row) | {"on_time_rate": on_time_rate(row["on_time"], row["rated"])})


def timeline(session: Session, actor: Actor, filters: IssueFilter | None = None,
             bucket: str = "week") -> list[dict]:
    """One row per bucket of report time from the first to the last report (empty ones too),
    over the cases the reader may read."""
    require_role(actor, *STATISTICS_ROLES)
    if bucket not in BUCKETS:
        raise InvalidParameter(f"bucket must be one of {', '.join(BUCKETS)}; got {bucket!r}",
                               zh=f"bucket 须为 {'、'.join(BUCKETS)} 之一，收到 {bucket!r}")
    where = scoped_where(session, actor, filters)
    rows = session.execute(text(f"""
        WITH b AS (SELECT date_trunc(:bucket, i.reported_at AT TIME ZONE :tz) AS bucket, i.*
                     FROM issues i WHERE {where.sql})
        SELECT s.bucket::date AS bucket_start, {_counts_sql('b')}
          FROM generate_series((SELECT min(bucket) FROM b), (SELECT max(bucket) FROM b),
                               CAST(:step AS interval)) AS s(bucket)
          LEFT JOIN b ON b.bucket = s.bucket
         GROUP BY s.bucket ORDER BY s.bucket"""),
        where.params | {"bucket": bucket, "tz": BEIJING_TZ_NAME, "step": f"1 {bucket}"}).mappings()
    return [_rated(r) for r in rows]


def worker_stats(session: Session, actor: Actor, filters: IssueFilter | None = None) -> list[dict]:
    """One row per grid worker who has held a grid of the reader's region (an admin's: any grid),
    by username: the filtered cases in the reader's scope that were reported in a grid while the
    worker held it (``reported_at`` in [``valid_from``, ``valid_to``) of the assignment), with
    the grid statistics' counts and rates, the grids those cases came from, and how many of the
    cases were resolved on site at once (``self_resolved``, 自处理; they count among ``closed``
    too). A case reported while two workers held its grid counts for both."""
    require_role(actor, *STATISTICS_ROLES)
    where = scoped_where(session, actor, filters)
    holders = Where()
    if actor.role in REGION_ROLES:
        holders.add("ha.grid_code = ANY(:region_grids)", region_grids=sorted(actor.region_grid_codes))
    rows = session.execute(text(f"""
        WITH credited AS (
            SELECT ga.user_id, g.code AS credited_grid, i.*
              FROM issues i JOIN grids g ON g.id = i.grid_id
              JOIN grid_assignments ga ON ga.grid_code = g.code AND i.reported_at >= ga.valid_from
                   AND (ga.valid_to IS NULL OR i.reported_at < ga.valid_to)
             WHERE {where.sql})
        SELECT u.username, u.display_name,
               coalesce(array_agg(DISTINCT c.credited_grid ORDER BY c.credited_grid)
                        FILTER (WHERE c.id IS NOT NULL), '{{}}') AS grids,
               {_counts_sql('c')},
               count(c.id) FILTER (WHERE c.self_resolved) AS self_resolved
          FROM users u LEFT JOIN credited c ON c.user_id = u.id
         WHERE u.id IN (SELECT ha.user_id FROM grid_assignments ha WHERE {holders.sql})
         GROUP BY u.id ORDER BY u.username"""), where.params | holders.params).mappings()
    return [_rated(r) for r in rows]
