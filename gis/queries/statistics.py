"""Evaluation statistics (综合评价) for leaders, computed in SQL over the filtered issues.

The same :class:`~gis.queries.reads.IssueFilter` as the issue list decides which issues count, so a
leader can open the list behind any number. Definitions:

* ``open``: not closed or rejected; ``overdue``: open and past ``due_at``.
* ``on_time_rate`` (按期结案率): closed by ``due_at`` / closed issues that had a due time.
* ``median_hours_to_close``: median of ``closed_at - reported_at`` over closed issues, in hours.
* ``per_1000_households``: reported issues per 1,000 households of the grid's current version.

Timeline buckets are calendar days, ISO weeks (Monday) or months in Beijing time.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.people.actors import Actor, require_role
from gis.queries.reads import ENDED_SQL, ISSUE_SOURCE, LOCAL_TZ, IssueFilter

BUCKETS = ("day", "week", "month")

def _aggregates(t: str) -> str:
    """The counts and rates over the issues of table alias ``t`` in one group."""
    return f"""
    count({t}.id) AS reported,
    count({t}.id) FILTER (WHERE {t}.status NOT IN {ENDED_SQL}) AS open,
    count({t}.id) FILTER (WHERE {t}.status = 'closed') AS closed,
    count({t}.id) FILTER (WHERE {t}.status = 'rejected') AS rejected,
    count({t}.id) FILTER (WHERE {t}.status NOT IN {ENDED_SQL} AND {t}.due_at < now()) AS overdue,
    round((count({t}.id) FILTER (WHERE {t}.status = 'closed' AND {t}.closed_at <= {t}.due_at))::numeric
          / nullif(count({t}.id) FILTER (WHERE {t}.status = 'closed' AND {t}.due_at IS NOT NULL), 0),
          4)::float AS on_time_rate,
    round((percentile_cont(0.5) WITHIN GROUP (
              ORDER BY extract(epoch FROM {t}.closed_at - {t}.reported_at) / 3600)
           FILTER (WHERE {t}.status = 'closed'))::numeric, 1)::float AS median_hours_to_close"""


def _filtered(session: Session, filters: IssueFilter) -> tuple[str, dict]:
    """A CTE ``f`` of the issues the filters select, with their grid code."""
    where = filters.where(session)
    return (f"WITH f AS (SELECT i.*, g.code AS grid_code FROM {ISSUE_SOURCE} WHERE {where.sql})",
            where.params)


def grid_stats(session: Session, actor: Actor, filters: IssueFilter | None = None) -> list[dict]:
    """One row per current grid (all versions' issues count for the code), ordered by code."""
    return grid_stats_with_unassigned(session, actor, filters)[0]


def grid_stats_with_unassigned(session: Session, actor: Actor,
                               filters: IssueFilter | None = None) -> tuple[list[dict], dict]:
    """:func:`grid_stats`, and the same counts over the filtered issues that lie in no grid
    (reported outside every grid and beyond the assignment tolerance): work no grid worker
    sees, which a leader should. One statement: the filtered issues are read once."""
    require_role(actor, "leader", "admin")
    filters = filters or IssueFilter()
    cte, params = _filtered(session, filters)
    grids = ["cg.valid_to IS NULL"]
    if filters.grid:
        grids.append("cg.code = :grid")
    if filters.community:
        grids.append("(rc.name = :community OR rc.code = :community)")
    rows = session.execute(text(f"""{cte}
        SELECT false AS in_no_grid, cg.code AS grid_code, cg.name AS grid_name,
               rc.name AS community, cg.households, {_aggregates('f')},
               round(count(f.id) * 1000.0 / nullif(cg.households, 0), 2)::float AS per_1000_households
          FROM grids cg JOIN regions rc ON rc.id = cg.community_id
          LEFT JOIN f ON f.grid_code = cg.code
         WHERE {' AND '.join(grids)}
         GROUP BY cg.code, cg.name, rc.name, cg.households
        UNION ALL
        SELECT true, NULL, NULL, NULL, NULL, {_aggregates('f')}, NULL
          FROM f WHERE f.grid_code IS NULL
         ORDER BY in_no_grid, grid_code"""), params).mappings().all()
    per_grid = [{k: v for k, v in r.items() if k != "in_no_grid"} for r in rows[:-1]]
    counts = {k: v for k, v in rows[-1].items()
              if k not in ("in_no_grid", "grid_code", "grid_name", "community", "households",
                           "per_1000_households")}
    return per_grid, counts


def timeline(session: Session, actor: Actor, filters: IssueFilter | None = None,
             bucket: str = "week") -> list[dict]:
    """One row per bucket of report time from the first to the last report (empty ones too)."""
    require_role(actor, "leader", "admin")
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}; got {bucket!r}")
    cte, params = _filtered(session, filters or IssueFilter())
    rows = session.execute(text(f"""{cte},
        b AS (SELECT date_trunc(:bucket, f.reported_at AT TIME ZONE :tz) AS bucket, f.* FROM f)
        SELECT s.bucket::date AS bucket_start, {_aggregates('b')}
          FROM generate_series((SELECT min(bucket) FROM b), (SELECT max(bucket) FROM b),
                               CAST(:step AS interval)) AS s(bucket)
          LEFT JOIN b ON b.bucket = s.bucket
         GROUP BY s.bucket ORDER BY s.bucket"""),
        params | {"bucket": bucket, "tz": str(LOCAL_TZ), "step": f"1 {bucket}"}).mappings()
    return [dict(r) for r in rows]
