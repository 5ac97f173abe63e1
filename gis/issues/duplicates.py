"""Possible duplicates of a report: the same problem reported twice nearby, which the command
centre merges rather than dispatches twice."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.people.actors import Actor, read_scope_sql
from gis.rules import FINAL_SQL

DUPLICATE_RADIUS_M = 30.0
DUPLICATE_WINDOW_H = 48
DUPLICATES_LISTED = 20  # the nearest ones; a flooded street can bring a hundred reports


def possible_duplicates(session: Session, issue_id: int, reader: Actor | None = None) -> list[dict]:
    """Open issues of the same category within 30 m reported in the 48 h before this one, the
    nearest :data:`DUPLICATES_LISTED` of them; with ``reader``, only those they may read."""
    scope, params = read_scope_sql(reader, "o") if reader is not None else ("TRUE", {})
    rows = session.execute(text(f"""
        SELECT o.id, o.status, o.reported_at,
               round(ST_Distance(o.geom::geography, i.geom::geography)::numeric, 1)::float AS distance_m
          FROM issues i JOIN issues o
            ON o.category = i.category AND o.id <> i.id
           AND o.status NOT IN {FINAL_SQL}
           AND o.reported_at BETWEEN i.reported_at - make_interval(hours => :h) AND i.reported_at
           AND o.geom && ST_Expand(i.geom, 2 * :r / (111320 * greatest(cos(radians(i.lat)), 0.05)))
           AND ST_DWithin(o.geom::geography, i.geom::geography, :r)
         WHERE i.id = :id AND {scope}
         ORDER BY distance_m, o.id
         LIMIT :n"""), {"id": issue_id, "h": DUPLICATE_WINDOW_H, "r": DUPLICATE_RADIUS_M,
                        "n": DUPLICATES_LISTED} | params).mappings()
    return [dict(r) for r in rows]
