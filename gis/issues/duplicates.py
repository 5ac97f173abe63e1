"""Possible duplicates of a report: the same problem reported twice nearby, which the command
centre merges rather than dispatches twice.

The rule, written once in :func:`_nearby`: open cases of the same category within
:data:`DUPLICATE_RADIUS_M` metres (geodesic), reported in the :data:`DUPLICATE_WINDOW_H` hours
up to the report, the nearest :data:`DUPLICATES_LISTED` of them, of those the reader may read.
It serves a stored report (:func:`possible_duplicates`; :func:`duplicates_of_new_report` in the
answer to a report) and one not sent yet (:func:`duplicates_near`, which the tablet shows before sending).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.db.engine import cached_text
from gis.geo.crs import parse_crs, to_wgs84
from gis.people.actors import Actor, read_scope_sql
from gis.queries.filters import check_categories
from gis.rules import FINAL_SQL

DUPLICATE_RADIUS_M = 30.0
DUPLICATE_WINDOW_H = 48
DUPLICATES_LISTED = 20  # the nearest ones; a flooded street can bring a hundred reports


def possible_duplicates(session: Session, issue_id: int, reader: Actor | None = None) -> list[dict]:
    """Open issues of the same category within 30 m reported in the 48 h before this one, the
    nearest :data:`DUPLICATES_LISTED` of them; with ``reader``, only those they may read. A
    report still waiting for its photo's position has none."""
    report = session.execute(text(
        "SELECT category, lon, lat, reported_at FROM issues WHERE id = :id AND geom IS NOT NULL"),
        {"id": issue_id}).first()
    if report is None:
        return []
    return _nearby(session, report.category, report.lon, report.lat, report.reported_at,
                   reader, exclude=issue_id, public=reader is None)


def duplicates_of_new_report(session: Session, issue_id: int, category: str, lon: float | None,
                             lat: float | None, reported_at, reader: Actor | None) -> list[dict]:
    """:func:`possible_duplicates` of a report just stored, from what the insert already knows
    (its category, WGS84 position and ``reported_at``) instead of reading the row back."""
    if lon is None or lat is None:
        return []
    return _nearby(session, category, lon, lat, reported_at, reader, exclude=issue_id,
                   public=reader is None)


def duplicates_near(session: Session, reader: Actor | None, category: str, x: float, y: float,
                    crs: str = "wgs84") -> list[dict]:
    """The possible duplicates of a report of ``category`` at (x, y) in ``crs`` that is about to
    be sent now, of the cases ``reader`` may read (each with its category)."""
    check_categories(session, "issue", [category])
    lon, lat = to_wgs84(x, y, parse_crs(crs))
    return _nearby(session, category, lon, lat, None, reader)


# The positions of stored reports (:ids) their possible duplicates are looked up from; a report
# still waiting for its photo's position has none.
POSITIONS_SQL = """
        SELECT id, category, lon, lat, reported_at FROM issues
         WHERE id = ANY(CAST(:ids AS integer[])) AND geom IS NOT NULL"""


def _nearby(session: Session, category: str, lon: float, lat: float, reported_at, reader: Actor | None,
            *, exclude: int | None = None, public: bool = False) -> list[dict]:
    """The rule (see the module); ``reported_at`` None: now. ``public``: no reader, every case."""
    sql, params = nearby_statement(category, lon, lat, reported_at, reader, exclude=exclude,
                                   public=public)
    return nearby_from_rows(session.execute(cached_text(sql), params).mappings())


def nearby_statement(category: str, lon: float, lat: float, reported_at, reader: Actor | None,
                     *, exclude: int | None = None, exclude_key=None,
                     public: bool = False) -> tuple[str, dict]:
    """The SQL and parameters of :func:`_nearby` (for :mod:`gis.db.steps`); ``exclude_key``:
    the client UUID of the report itself, when its id is not known yet."""
    scope, params = ("TRUE", {}) if public else read_scope_sql(reader, "o")
    # ST_DWithin on geography reads the open cases' index by category and geography (migration
    # 0018) and nothing else: a box on the geometry besides would let the planner, which
    # cannot tell the selectivity of parameters, take the index of every case ever reported
    # instead, in the plans the intake prepares once (seven times slower in a busy place).
    return f"""
        WITH here AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS p,
                             coalesce(CAST(:at AS timestamptz), now()) AS at)
        SELECT o.id, o.status, o.category, o.reported_at,
               round(ST_Distance(o.geom::geography, here.p::geography)::numeric, 1)::float
                   AS distance_m
          FROM issues o, here
         WHERE o.category = :category AND o.id IS DISTINCT FROM CAST(:exclude AS integer)
           AND o.client_uuid IS DISTINCT FROM CAST(:exclude_key AS uuid)
           AND o.status NOT IN {FINAL_SQL}
           AND o.reported_at BETWEEN here.at - make_interval(hours => :h) AND here.at
           AND ST_DWithin(o.geom::geography, here.p::geography, :r)
           AND {scope}
         ORDER BY distance_m, o.id
         LIMIT :n""", {"category": category, "lon": lon, "lat": lat, "at": reported_at,
                       "exclude": exclude, "exclude_key": exclude_key,
                       "h": DUPLICATE_WINDOW_H, "r": DUPLICATE_RADIUS_M,
                       "n": DUPLICATES_LISTED} | params


def nearby_from_rows(rows) -> list[dict]:
    return [dict(r) for r in rows]
