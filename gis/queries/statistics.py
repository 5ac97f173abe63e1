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
import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.db.engine import tune_for_aggregates
from gis.errors import InvalidParameter
from gis.people.actors import Actor, require_role
from gis.queries import rollup
from gis.queries.filters import IssueFilter, Where
from gis.queries.reads import ScopedFilter, scoped_where
from gis.queries.rollup import int_array, tuples_from
from gis.rules import (
    BEIJING_TZ_NAME,
    CLOSED_STATUS,
    OPEN_STATUSES,
    REGION_ROLES,
    STATUS_GROUPS,
    closed_sql,
    hours_to_close_sql,
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
               round((percentile_cont(0.5) WITHIN GROUP (ORDER BY {hours_to_close_sql(t)})
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
    codes = dict(tuples_from(session.execute(
        text("SELECT id, code FROM grids WHERE id = ANY(CAST(:ids AS integer[]))"),
        {"ids": int_array(ids.dropna().unique())})))
    frame["code"] = ids.map(codes).astype("str")  # all None: float NaN otherwise
    out = frame.groupby("code", dropna=False, as_index=False)[list(COUNTS)].sum()
    out = out[["code", *COUNTS]].astype(dict.fromkeys(COUNTS, "int64"))
    if median:
        # The medians' codes in the counts' dtype: an empty or all-None side comes as float or
        # object, which pandas refuses to merge with str.
        medians = _medians(session, filters, where, rollup).astype({"code": "str"})
        out = out.merge(medians, on="code", how="left")
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
    frame = rollup.frame_from(session.execute(text(f"""
        SELECT x.grid_id, g.code,
               round((x.s[1] + 0.5 * (x.s[cardinality(x.s)] - x.s[1]))::numeric, 1)::float
          FROM (SELECT r.grid_id, r.hours[(r.n + 1) / 2 : r.n / 2 + 1] AS s
                  FROM issue_rollup_closings r WHERE {grids.sql} OFFSET 0) x
          LEFT JOIN grids g ON g.id = x.grid_id"""),  # grid 0 (no grid): code None
        grids.params), ["grid_id", *_MEDIAN])
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
        SELECT g.code, {_median_sql(hours_to_close_sql('i'))}
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
    tune_for_aggregates(session)
    filters = ScopedFilter.of(filters or IssueFilter(), actor)
    counts = counts_by_grid(session, filters, median=True)
    grids = rollup.frame_of(current_grids(session, filters),
                            ["grid_code", "grid_name", "community", "households"])
    table = with_rates(grids.merge(counts.rename(columns={"code": "grid_code"}), on="grid_code",
                                   how="left"))
    rows = _public_records(table)
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


def _public_records(frame: pd.DataFrame) -> list[dict]:
    """:func:`_public` of every row of ``frame``, column by column: 40,000 grids' rows through
    ``to_dict`` and a comprehension each took a second."""
    frame = frame.drop(columns=[c for c in ("rated", "on_time") if c in frame])
    columns = [frame[c].astype(object).where(frame[c].notna(), None).tolist() for c in frame]
    keys = list(frame.columns)
    return [dict(zip(keys, values, strict=True)) for values in zip(*columns, strict=True)]


def _public(row: dict) -> dict:
    """A statistics row without the helper columns, NaN as None."""
    out = {k: v for k, v in row.items() if k not in ("rated", "on_time")}
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in out.items()}


def _rated(row) -> dict:
    return _public(dict(row) | {"on_time_rate": on_time_rate(row["on_time"], row["rated"])})


def timeline(session: Session, actor: Actor, filters: IssueFilter | None = None,
             bucket: str = "week", *, use_rollup: bool = True) -> list[dict]:
    """One row per bucket of report time from the first to the last report (empty ones too),
    over the cases the reader may read.

    When the rollup's keys express the filter for the whole city (no grid, community or
    region), the whole days inside its time range are read from ``issue_rollup_days`` (counts,
    and each bucket's median from the sorted hours of its days), their overdue cases from the
    issues whose time runs, and the partial days at the range's edges are scanned;
    ``use_rollup=False`` scans all: the same answer."""
    require_role(actor, *STATISTICS_ROLES)
    tune_for_aggregates(session)
    if bucket not in BUCKETS:
        raise InvalidParameter(f"bucket must be one of {', '.join(BUCKETS)}; got {bucket!r}",
                               zh=f"bucket 须为 {'、'.join(BUCKETS)} 之一，收到 {bucket!r}")
    where = scoped_where(session, actor, filters)
    if use_rollup:
        rows = _rollup_timeline(session, actor, filters or IssueFilter(), where, bucket)
        if rows is not None:
            return rows
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


_DAY_STATUS = ["day", "status", "reported", "overdue", "rated", "on_time"]


def _rollup_timeline(session: Session, actor: Actor, filters: IssueFilter, where: Where,
                     bucket: str) -> list[dict] | None:
    """The timeline from the day table, or None when its keys cannot express the filter."""
    scope = rollup.scope_of(session, ScopedFilter.of(filters, actor))
    if scope is None or not scope.everywhere or scope.rest_sql:
        return None
    days = rollup.whole_buckets("day", filters)
    if days is None:
        return None
    inside, params = days.inside_sql("i")
    outside = " OR ".join(days.outside_sql("i"))
    held = Where(scope.where.clauses + days.where().clauses,
                 scope.where.params | days.where().params)
    counts = session.execute(text(f"""
        SELECT r.day, r.status, sum(r.n)::bigint, 0, sum(r.rated)::bigint, sum(r.on_time)::bigint
          FROM {rollup.DAYS} r WHERE {held.sql} GROUP BY r.day, r.status"""), held.params).all()
    overdue = _and(where, inside, params)
    counts += session.execute(text(f"""
        SELECT {rollup.day_sql('i')}, i.status, 0, count(*), 0, 0 FROM issues i
         WHERE {overdue.sql} AND {overdue_sql('i')} GROUP BY 1, 2"""), overdue.params).all()
    hours: list[tuple[date, float]] = []
    if outside:
        edges = _and(where, outside, params)
        counts += session.execute(text(f"""
            SELECT {rollup.day_sql('i')}, i.status, count(*), count(*) FILTER (WHERE {overdue_sql('i')}),
                   count(*) FILTER (WHERE {rated_sql('i')}), count(*) FILTER (WHERE {on_time_sql('i')})
              FROM issues i WHERE {edges.sql} GROUP BY 1, 2"""), edges.params).all()
        hours += [(day, h) for day, h in session.execute(text(f"""
            SELECT {rollup.day_sql('i')}, {hours_to_close_sql('i')} FROM issues i
             WHERE {edges.sql} AND {rollup.closing_sql('i')}"""), edges.params)]
    frame = rollup.frame_of(counts, _DAY_STATUS)
    if not (frame["reported"] > 0).any():
        return []
    frame["bucket"] = [_bucket_of(d, bucket) for d in frame["day"]]
    frame["open"] = frame["reported"].where(frame["status"].isin(OPEN_STATUSES), 0)
    frame["closed"] = frame["reported"].where(frame["status"] == CLOSED_STATUS, 0)
    frame["rejected"] = frame["reported"].where(frame["status"] == "rejected", 0)
    sums = frame.groupby("bucket")[list(COUNTS)].sum()
    present = frame.loc[frame["reported"] > 0, "bucket"]
    starts = _bucket_series(present.min(), present.max(), bucket)
    medians = _bucket_medians(session, held, hours, bucket)
    out = []
    for start in starts:
        row = {"bucket_start": start}
        if start in sums.index:
            row |= {c: int(sums.at[start, c]) for c in COUNTS}
        else:
            row |= dict.fromkeys(COUNTS, 0)
        row["median_hours_to_close"] = medians.get(start)
        out.append(_rated(row))
    return out


def _bucket_of(day: date, bucket: str) -> date:
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    return day


def _bucket_series(first: date, last: date, bucket: str) -> list[date]:
    out, at = [], first
    while at <= last:
        out.append(at)
        if bucket == "day":
            at += timedelta(days=1)
        elif bucket == "week":
            at += timedelta(weeks=1)
        else:
            at = date(at.year + at.month // 12, at.month % 12 + 1, 1)
    return out


SAMPLES = 16  # a day row's hours are sampled at its 15 sixteenths to place its bucket's median
MEDIAN_MARGIN = 1.0  # how wide (times the sampling's error) the first guess of the middle is


def _bucket_medians(session: Session, held: Where, edges: list[tuple[date, float]],
                    bucket: str) -> dict[date, float]:
    """The median hours to close per bucket over the closed rows of the day table that ``held``
    takes in and the scanned ``edges`` (day, hours), exactly as percentile_cont gives it.

    A bucket's hours are the sorted arrays of its days, thousands of values each; not all are
    read. Samples of each array place the middle between two values ``lo`` and ``hi``;
    ``width_bucket`` counts each array's values up to them (a binary search of the sorted
    array) and only the values between them are read; the two middle ones are chosen from
    those in numpy (a bucket the guess missed reads all its values), and they are interpolated
    and rounded in SQL, the very float arithmetic of a scan."""
    trunc = f"date_trunc('{bucket}', r.day)::date"
    closed = Where([*held.clauses, "r.status = :m_closed"],
                   held.params | {"m_closed": CLOSED_STATUS})
    samples = session.execute(text(f"""
        SELECT x.b, (x.s).n, (x.s).samples
          FROM (SELECT {trunc} AS b, gridmap_sorted_samples(r.hours, {SAMPLES}) AS s
                  FROM {rollup.DAYS} r WHERE {closed.sql} OFFSET 0) x
         WHERE (x.s).n > 0"""), closed.params).all()
    extra: dict[date, list[float]] = {}
    for day, h in edges:
        extra.setdefault(_bucket_of(day, bucket), []).append(h)
    guesses = _guess_middles(samples, extra)
    if not guesses:
        return {}
    middles = _read_middles(session, closed, trunc, guesses, extra)
    missed = {b: (-np.inf, np.inf, k1, k2) for b, (lo, hi, k1, k2) in guesses.items()
              if b not in middles}
    if missed:
        middles |= _read_middles(session, closed, trunc, missed, extra)
    starts = sorted(middles)
    rows = session.execute(text("""
        SELECT round((CASE WHEN m.lo = m.hi THEN m.lo ELSE m.lo + (m.hi - m.lo) * 0.5 END)
                     ::numeric, 1)::float
          FROM unnest(CAST(:lo AS float8[]), CAST(:hi AS float8[])) WITH ORDINALITY
               AS m(lo, hi, k) ORDER BY m.k"""),
        {"lo": [middles[b][0] for b in starts], "hi": [middles[b][1] for b in starts]}).scalars()
    return dict(zip(starts, rows, strict=True))


def _guess_middles(samples, extra: dict[date, list[float]]) -> dict[date, tuple]:
    """Per bucket: (lo, hi, k1, k2), the middle ranks k1 and k2 (from 0; equal for an odd
    count) and values around them guessed from the samples (infinite when unsure)."""
    per: dict[date, list] = {}
    for b, n, values in samples:
        per.setdefault(b, []).append((n, values))
    out = {}
    for b in per.keys() | extra.keys():
        rows = per.get(b, [])
        loose = extra.get(b, [])
        total = sum(n for n, _ in rows) + len(loose)
        values = np.array([v for _, vs in rows for v in vs] + loose, dtype=np.float64)
        weights = np.array([n / SAMPLES for n, vs in rows for _ in vs] + [1.0] * len(loose))
        k1, k2 = (total - 1) // 2, total // 2
        order = np.argsort(values, kind="stable")
        # a row with s samples up to a value has s to s + 1 sixteenths of its values up to it
        cum = np.cumsum(weights[order]) + sum(n for n, _ in rows) / (2 * SAMPLES)
        # each row's rank of a value is known to n/SAMPLES; the errors of many rows mostly cancel
        error = MEDIAN_MARGIN * (3 * math.sqrt(sum((n / SAMPLES) ** 2 for n, _ in rows)) + 8)
        at_lo = np.searchsorted(cum, k1 - error)
        at_hi = np.searchsorted(cum, k2 + 1 + error)
        lo = values[order[at_lo - 1]] if k1 - error > 0 and at_lo > 0 else -np.inf
        hi = values[order[at_hi]] if at_hi < len(cum) else np.inf
        out[b] = (float(lo), float(hi), k1, k2)
    return out


def _read_middles(session: Session, closed: Where, trunc: str, guesses: dict[date, tuple],
                  extra: dict[date, list[float]]) -> dict[date, tuple[float, float]]:
    """(lo, hi) middle values per bucket whose guess holds them: the values of its arrays
    between the guesses (counted below with width_bucket) and of its loose ``extra`` ones."""
    buckets = sorted(guesses)
    rows = session.execute(text(f"""
        SELECT x.b, (x.m).below, (x.m).vals
          FROM (SELECT g.b, gridmap_sorted_between(r.hours, g.lo, g.hi) AS m
                  FROM {rollup.DAYS} r
                  JOIN unnest(CAST(:m_b AS date[]), CAST(:m_lo AS float8[]),
                              CAST(:m_hi AS float8[])) AS g(b, lo, hi) ON g.b = {trunc}
                 WHERE {closed.sql} OFFSET 0) x"""),
        closed.params | {"m_b": buckets, "m_lo": [guesses[b][0] for b in buckets],
                         "m_hi": [guesses[b][1] for b in buckets]}).all()
    below: dict[date, int] = dict.fromkeys(buckets, 0)
    between: dict[date, list] = {b: [] for b in buckets}
    for b, n_below, values in rows:
        below[b] += n_below
        if values:
            between[b].append(np.array(values, dtype=np.float64))
    out = {}
    for b in buckets:
        lo, hi, k1, k2 = guesses[b]
        loose = np.array(extra.get(b, []), dtype=np.float64)
        below[b] += int((loose <= lo).sum())
        between[b].append(loose[(loose > lo) & (loose <= hi)])
        values = np.concatenate(between[b])
        i1, i2 = k1 - below[b], k2 - below[b]
        if i1 < 0 or i2 >= len(values):
            continue  # the guess missed
        middle = np.partition(values, [i1, i2])
        out[b] = (float(middle[i1]), float(middle[i2]))
    return out


def worker_stats(session: Session, actor: Actor, filters: IssueFilter | None = None, *,
                 use_rollup: bool = True) -> list[dict]:
    """One row per grid worker who has held a grid of the reader's region (an admin's: any grid),
    by username: the filtered cases in the reader's scope that were reported in a grid while the
    worker held it (``reported_at`` in [``valid_from``, ``valid_to``) of the assignment), with
    the grid statistics' counts and rates, the grids those cases came from, and how many of the
    cases were resolved on site at once (``self_resolved``, 自处理; they count among ``closed``
    too). A case reported while two workers held its grid counts for both.

    A worker with one assignment that covers every report (from before the first, with no end
    or one after the last) is credited with all of the grid's cases: when the rollup's keys
    express the filter (no category or time range), those are read from the grids' totals and
    closings, the overdue and self-resolved ones counted through their indexes; the other
    workers are scanned (``use_rollup=False`` scans all: the same answer)."""
    require_role(actor, *STATISTICS_ROLES)
    tune_for_aggregates(session)
    filters = filters or IssueFilter()
    where = scoped_where(session, actor, filters)
    holders = Where()
    if actor.role in REGION_ROLES:
        holders.add("ha.grid_code = ANY(:region_grids)", region_grids=sorted(actor.region_grid_codes))
    if use_rollup:
        rows = _rollup_workers(session, actor, filters, where, holders)
        if rows is not None:
            return rows
    return _scan_workers(session, where, holders)


def _scan_workers(session: Session, where: Where, holders: Where,
                  users: list[int] | None = None) -> list[dict]:
    """The workers' rows by a scan of their credited cases (of ``users`` alone if given)."""
    only = Where([*holders.clauses], dict(holders.params))
    if users is not None:
        only.add("ha.user_id = ANY(:only_users)", only_users=users)
    rows = session.execute(text(f"""
        WITH credited AS (
            SELECT ga.user_id, g.code AS credited_grid, i.*
              FROM issues i JOIN grids g ON g.id = i.grid_id
              JOIN grid_assignments ga ON ga.grid_code = g.code AND i.reported_at >= ga.valid_from
                   AND (ga.valid_to IS NULL OR i.reported_at < ga.valid_to)
             WHERE {where.sql}{" AND ga.user_id = ANY(:only_users)" if users is not None else ""})
        SELECT u.username, u.display_name,
               coalesce(array_agg(DISTINCT c.credited_grid ORDER BY c.credited_grid)
                        FILTER (WHERE c.id IS NOT NULL), '{{}}') AS grids,
               {_counts_sql('c')},
               count(c.id) FILTER (WHERE c.self_resolved) AS self_resolved
          FROM users u LEFT JOIN credited c ON c.user_id = u.id
         WHERE u.id IN (SELECT ha.user_id FROM grid_assignments ha WHERE {only.sql})
         GROUP BY u.id ORDER BY u.username"""), where.params | only.params).mappings()
    return [_rated(r) for r in rows]


def _rollup_workers(session: Session, actor: Actor, filters: IssueFilter, where: Where,
                    holders: Where) -> list[dict] | None:
    """The workers' rows from the grids' totals and closings for those credited with whole
    grids, scans for the rest; None when the rollup's keys cannot express the filter."""
    if filters.categories or filters.since is not None or filters.until is not None:
        return None
    scope = rollup.scope_of(session, ScopedFilter.of(filters, actor))
    places = rollup.scope_of(session, ScopedFilter.of(
        dataclasses.replace(filters, statuses=()), actor))
    if scope is None or places is None:
        return None
    users = rollup.tuples_from(session.execute(text(f"""
        SELECT u.id, u.username, u.display_name FROM users u
         WHERE u.id IN (SELECT ha.user_id FROM grid_assignments ha WHERE {holders.sql})
         ORDER BY u.username"""), holders.params))
    first, last = session.execute(text(
        "SELECT min(reported_at), max(reported_at) FROM issues")).one()
    whole = "TRUE" if first is None else \
        "ga.valid_from <= :first AND (ga.valid_to IS NULL OR ga.valid_to > :last)"
    simple = {r[0]: r[1:] for r in _whole_grid_workers(session, scope, where, holders, whole,
                                                        {"first": first, "last": last})}
    others = sorted({u[0] for u in users} - simple.keys())
    scanned = {r["username"]: r for r in _scan_workers(session, where, holders, others)} \
        if others else {}
    medians: dict = {}
    if not filters.statuses or CLOSED_STATUS in _statuses(filters):
        frame = _middle_medians(session, places.where)
        medians = dict(zip(frame["code"].tolist(), frame["median_hours_to_close"].tolist(),
                           strict=True))
    out = []
    for user_id, username, display_name in users:
        if user_id not in simple:
            out.append(scanned[username])
            continue
        code, reported, open_, closed, rejected, rated, on_time, overdue, selves = simple[user_id]
        median = medians.get(code) if reported else None
        out.append({"username": username, "display_name": display_name,
                    "grids": [code] if reported else [], "reported": reported, "open": open_,
                    "closed": closed, "rejected": rejected, "overdue": overdue,
                    "median_hours_to_close": None if median is None or median != median
                    else float(median),
                    "self_resolved": selves, "on_time_rate": on_time_rate(on_time, rated)})
    return out


def _whole_grid_workers(session: Session, scope: rollup.Scope, where: Where, holders: Where,
                        whole: str, params: dict) -> list[tuple]:
    """(user_id, code, reported, open, closed, rejected, rated, on_time, overdue,
    self_resolved) of the workers whose one assignment is ``whole``, over all the cases of its
    grid that the filter and reader take in: counts from the grids' totals, the overdue and
    self-resolved cases counted through their indexes."""
    def n(condition: str = "TRUE") -> str:
        return f"coalesce(sum(r.n) FILTER (WHERE {condition}), 0)::bigint"
    values = ", ".join(f"coalesce(c.{k}, 0)::bigint" for k in (
        "reported", "open", "closed", "rejected", "rated", "on_time", "overdue", "selves"))
    return rollup.tuples_from(session.execute(text(f"""
        WITH held AS (
            SELECT ga.user_id, min(ga.grid_code) AS code FROM grid_assignments ga
             WHERE ga.user_id IN (SELECT ha.user_id FROM grid_assignments ha WHERE {holders.sql})
             GROUP BY ga.user_id HAVING count(*) = 1 AND bool_and({whole})),
        per_grid AS MATERIALIZED (
            SELECT r.grid_id, {n()} AS reported, {n(open_sql('r'))} AS open,
                   {n(closed_sql('r'))} AS closed, {n("r.status = 'rejected'")} AS rejected,
                   sum(r.rated)::bigint AS rated, sum(r.on_time)::bigint AS on_time
              FROM issue_rollup_grid_totals r WHERE {scope.where.sql} GROUP BY r.grid_id),
        overdue AS MATERIALIZED (
            SELECT i.grid_id, count(*) AS n FROM issues i
             WHERE {where.sql} AND {overdue_sql('i')} GROUP BY i.grid_id),
        selves AS MATERIALIZED (
            SELECT i.grid_id, count(*) AS n FROM issues i
             WHERE {where.sql} AND i.self_resolved GROUP BY i.grid_id),
        per_code AS (
            SELECT g.code, sum(p.reported) AS reported, sum(p.open) AS open,
                   sum(p.closed) AS closed, sum(p.rejected) AS rejected, sum(p.rated) AS rated,
                   sum(p.on_time) AS on_time, sum(coalesce(o.n, 0)) AS overdue,
                   sum(coalesce(s.n, 0)) AS selves
              FROM per_grid p JOIN grids g ON g.id = p.grid_id
              LEFT JOIN overdue o ON o.grid_id = p.grid_id
              LEFT JOIN selves s ON s.grid_id = p.grid_id
             GROUP BY g.code)
        SELECT h.user_id, h.code, {values}
          FROM held h LEFT JOIN per_code c ON c.code = h.code"""),
        where.params | holders.params | scope.where.params | params))


def _statuses(filters: IssueFilter) -> set[str]:
    """The statuses a filter's status list stands for (groups expanded)."""
    out = set()
    for s in filters.statuses:
        out |= set(STATUS_GROUPS.get(s, (s,)))
    return out
