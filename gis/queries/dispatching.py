"""How cases were dispatched: the share a dispatch rule made (自动派遣率).

Counted over the first dispatch of each case in the caller's scope whose time falls in the
period (a re-dispatch after a return or rework is the dispatcher's correction, not a new case).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.people.actors import Actor, read_scope_sql


def dispatch_share(session: Session, actor: Actor, since: datetime | None,
                   until: datetime | None) -> dict:
    scope, params = read_scope_sql(actor, "i")
    row = session.execute(text(f"""
        SELECT count(*) AS dispatches,
               count(*) FILTER (WHERE coalesce((first.details->>'auto')::boolean, false)) AS automatic
          FROM (SELECT DISTINCT ON (e.issue_id) e.issue_id, e.at, e.details
                  FROM issue_events e WHERE e.kind = 'dispatch'
                 ORDER BY e.issue_id, e.at, e.id) first
          JOIN issues i ON i.id = first.issue_id
         WHERE ({scope})
           AND (CAST(:since AS timestamptz) IS NULL OR first.at >= :since)
           AND (CAST(:until AS timestamptz) IS NULL OR first.at < :until)"""),
        params | {"since": since, "until": until}).one()
    share = round(row.automatic / row.dispatches, 4) if row.dispatches else None
    return {"since": since, "until": until, "dispatches": row.dispatches,
            "automatic": row.automatic, "share": share}
