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
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import InvalidParameter
from gis.people.actors import Actor, require_role
from gis.queries.filters import IssueFilter, Where
from gis.rules import (
    BEIJING_TZ_NAME,
    CLOSED_STATUS,
    OPEN_STATUSES,
    closed_sql,
    on_time_rate,
    on_time_sql,
    open_sql,
    overdue_sql,
    rated_sql,
)

BUCKETS = ("day", "week", "month")
COUNTS = ("reported", "open", "closed", "rejected", "overdue", "rated", "on_time")


def counts_by_grid(session: Session, filters: IssueFilter, *,
                   median: bool = False) -> pd.DataFrame:
    """One row per grid code (``code`` None: the issues in no grid) with :data:`COUNTS`, the
    first and last report time, and ``median_hours_to_close`` when ``median`` is asked for.

    The scan is grouped by grid row and status: few groups, so PostgreSQL aggregates in parallel
    workers and needs no join; rows are then mapped to codes in pandas."""
    where = filters.where(session)
    rows = session.execute(text(f"""
        SELECT i.grid_id, i.status, count(*) AS reported,
               count(*) FILTER (WHERE {overdue_sql('i')}) AS overdue,
               count(*) FILTER (WHERE {rated_sql('i')}) AS rated,
               count(*) FILTER (WHERE {on_time_sql('i')}) AS on_time,
               min(i.reported_at) AS first, max(i.reported_at) AS last
          FROM issues i WHERE {where.sql} GROUP BY i.grid_id, i.status"""), where.params).all()
    frame = pd.DataFrame(rows, columns=["grid_id", "status", "reported", "overdue", "rated",
                                        "on_time", "first", "last"])
    frame["open"] = frame["reported"].where(frame["status"].isin(OPEN_STATUSES), 0)
    frame["closed"] = frame["reported"].where(frame["status"] == CLOSED_STATUS, 0)
    frame["rejected"] = frame["reported"].where(frame["status"] == "rejected", 0)
    codes = dict(session.execute(text("SELECT id, code FROM grids")).all())
    frame["code"] = frame["grid_id"].map(codes)
    out = frame.groupby("code", dropna=False, as_index=False).agg(
        {**dict.fromkeys(COUNTS, "sum"), "first": "min", "last": "max"})
    out = out[["code", *COUNTS, "first", "last"]].astype(dict.fromkeys(COUNTS, "int64"))
    if median:
        out = out.merge(_median_hours(session, where), on="code", how="left")
    return out


def _median_hours(session: Session, where: Where) -> pd.DataFrame:
    rows = session.execute(text(f"""
        SELECT g.code, round(percentile_cont(0.5) WITHIN GROUP (
                   ORDER BY extract(epoch FROM i.closed_at - i.reported_at) / 3600)::numeric, 1)::float
          FROM issues i LEFT JOIN grids g ON g.id = i.grid_id
         WHERE {where.sql} AND {closed_sql('i')} GROUP BY g.code"""), where.params).all()
    return pd.DataFrame(rows, columns=["code", "median_hours_to_close"])


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
    """One row per current grid in the filters' scope (the grid, the community's grids, or all),
    ordered by code; and the same counts over the filtered issues that lie in no grid (reported
    outside every grid and beyond the tagging tolerance): work no grid worker sees, which a
    leader should."""
    require_role(actor, "leader", "admin")
    filters = filters or IssueFilter()
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
    """(code, name, community, households) of the current grids the filters name."""
    where = Where(["cg.valid_to IS NULL"])
    if filters.grid:
        where.add("cg.code = :grid", grid=filters.grid)
    where.community("rc", filters.community)
    return session.execute(text(f"""
        SELECT cg.code, cg.name, rc.name, cg.households
          FROM grids cg JOIN regions rc ON rc.id = cg.community_id
         WHERE {where.sql} ORDER BY cg.code"""), where.params).all()


def _public(row: dict) -> dict:
    """A statistics row without the helper columns, NaN as None."""
    out = {k: v for k, v in row.items() if k not in ("first", "last", "rated", "on_time")}
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in out.items()}


def timeline(session: Session, actor: Actor, filters: IssueFilter | None = None,
             bucket: str = "week") -> list[dict]:
    """One row per bucket of report time from the first to the last report (empty ones too)."""
    require_role(actor, "leader", "admin")
    if bucket not in BUCKETS:
        raise InvalidParameter(f"bucket must be one of {', '.join(BUCKETS)}; got {bucket!r}",
                               zh=f"bucket 须为 {'、'.join(BUCKETS)} 之一，收到 {bucket!r}")
    where = (filters or IssueFilter()).where(session)
    rows = session.execute(text(f"""
        WITH b AS (SELECT date_trunc(:bucket, i.reported_at AT TIME ZONE :tz) AS bucket, i.*
                     FROM issues i WHERE {where.sql})
        SELECT s.bucket::date AS bucket_start,
               count(b.id) AS reported,
               count(b.id) FILTER (WHERE {open_sql('b')}) AS open,
               count(b.id) FILTER (WHERE {closed_sql('b')}) AS closed,
               count(b.id) FILTER (WHERE b.status = 'rejected') AS rejected,
               count(b.id) FILTER (WHERE {overdue_sql('b')}) AS overdue,
               count(b.id) FILTER (WHERE {rated_sql('b')}) AS rated,
               count(b.id) FILTER (WHERE {on_time_sql('b')}) AS on_time,
               round((percentile_cont(0.5) WITHIN GROUP (
                         ORDER BY extract(epoch FROM b.closed_at - b.reported_at) / 3600)
                      FILTER (WHERE {closed_sql('b')}))::numeric, 1)::float AS median_hours_to_close
          FROM generate_series((SELECT min(bucket) FROM b), (SELECT max(bucket) FROM b),
                               CAST(:step AS interval)) AS s(bucket)
          LEFT JOIN b ON b.bucket = s.bucket
         GROUP BY s.bucket ORDER BY s.bucket"""),
        where.params | {"bucket": bucket, "tz": BEIJING_TZ_NAME, "step": f"1 {bucket}"}).mappings()
    return [_public(dict(r) | {"on_time_rate": on_time_rate(r["on_time"], r["rated"])})
            for r in rows]
