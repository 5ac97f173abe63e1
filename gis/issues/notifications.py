"""The in-app notification list (docs/ARCHITECTURE.md, "Dispatch and the branches").

Who is told what (gis.rules.NOTIFICATION_KINDS): a step past its deadline goes to the
dispatchers and leaders whose region holds the case; a case returned or an extension asked for
to its dispatchers; a supervision notice to whoever handles the case (the department's staff, or
the grid's worker for a community matter); a decided extension and a reply to a notice to who
asked. Nothing here is sent anywhere else: clients poll the unread count.

Late steps are found by :func:`notify_overdue`, which any process may run at any time (polling
for notifications runs it; so does ``gridmap escalate`` from a timer): each late step is
notified once (a ``step_alerts`` row, claimed by its primary key: of two processes looking at
once, the second waits for the first and finds it claimed), dated when the step fell due.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import NotFound
from gis.people.actors import Actor
from gis.rules import STEP_NAMES, step_overdue_sql

COMMAND_ROLES = ("dispatcher", "leader")
DISPATCH_DESK = ("dispatcher",)

# The region each case lies in, and every region above it: (issue_id, region_id) for the cases
# in :ids.
_CASE_REGIONS = """
    WITH RECURSIVE up(issue_id, region_id) AS (
        SELECT i.id, coalesce(g.community_id,
                              (SELECT r.id FROM regions r WHERE ST_Covers(r.geom, i.geom)
                                ORDER BY CASE r.level WHEN 'community' THEN 0
                                         WHEN 'street' THEN 1 ELSE 2 END LIMIT 1))
          FROM issues i LEFT JOIN grids g ON g.id = i.grid_id
         WHERE i.id = ANY(:ids)
        UNION ALL
        SELECT up.issue_id, r.parent_id FROM regions r JOIN up ON r.id = up.region_id
         WHERE r.parent_id IS NOT NULL)"""


def region_staff(session: Session, issue_ids: list[int], roles: tuple[str, ...]) -> list[tuple[int, int]]:
    """(issue_id, user_id) for the active users of ``roles`` whose region holds each case."""
    return [tuple(r) for r in session.execute(text(f"""
        {_CASE_REGIONS}
        SELECT DISTINCT up.issue_id, u.id FROM up
          JOIN users u ON u.region_id = up.region_id AND u.active AND u.role = ANY(:roles)"""),
        {"ids": issue_ids, "roles": list(roles)}).all()]


def handlers(session: Session, issue_id: int) -> list[int]:
    """Who handles the case now: its department's active staff, else its grid's worker."""
    return list(session.execute(text("""
        SELECT u.id FROM issues i JOIN users u ON u.department_id = i.department_id AND u.active
         WHERE i.id = :i AND i.department_id IS NOT NULL
        UNION
        SELECT gw.user_id FROM issues i JOIN grids g ON g.id = i.grid_id
          JOIN grid_workers gw ON gw.grid_code = g.code
         WHERE i.id = :i AND i.department_id IS NULL"""), {"i": issue_id}).scalars())


def notify(session: Session, user_ids: list[int], issue_id: int | None, kind: str, title: str,
           *, skip: int | None = None) -> int:
    """Add one notification for each of ``user_ids`` (not ``skip``, the actor themselves)."""
    rows = [{"u": u, "i": issue_id, "k": kind, "t": title} for u in dict.fromkeys(user_ids)
            if u != skip]
    if rows:
        session.execute(text("INSERT INTO notifications (user_id, issue_id, kind, title) "
                             "VALUES (:u, :i, :k, :t)"), rows)
    return len(rows)


def notify_region(session: Session, issue_id: int, roles: tuple[str, ...], kind: str, title: str,
                  *, skip: int | None = None) -> int:
    users = [u for _, u in region_staff(session, [issue_id], roles)]
    return notify(session, users, issue_id, kind, title, skip=skip)


def notify_overdue(session: Session) -> int:
    """Notify each step that is late and was not notified yet; returns how many steps."""
    late = session.execute(text(f"""
        WITH claimed AS (
            INSERT INTO step_alerts (step_id)
            SELECT s.id FROM issue_steps s
             WHERE {step_overdue_sql('s')}
               AND NOT EXISTS (SELECT 1 FROM step_alerts a WHERE a.step_id = s.id)
            ON CONFLICT (step_id) DO NOTHING
            RETURNING step_id)
        SELECT s.id, s.issue_id, s.step, s.due_at, c.name_zh AS category
          FROM claimed JOIN issue_steps s ON s.id = claimed.step_id
          JOIN issues i ON i.id = s.issue_id JOIN categories c ON c.code = i.category
         ORDER BY s.due_at""")).all()
    if not late:
        return 0
    staff: dict[int, list[int]] = {}
    for issue_id, user_id in region_staff(session, [s.issue_id for s in late], COMMAND_ROLES):
        staff.setdefault(issue_id, []).append(user_id)
    rows = [{"u": u, "i": s.issue_id, "at": s.due_at,
             "t": f"事件 {s.issue_id}（{s.category}）「{STEP_NAMES[s.step][0]}」已超时"}
            for s in late for u in staff.get(s.issue_id, [])]
    if rows:
        session.execute(text("INSERT INTO notifications (user_id, issue_id, kind, at, title) "
                             "VALUES (:u, :i, 'overdue', :at, :t)"), rows)
    return len(late)


@dataclass(frozen=True)
class Inbox:
    unread: int
    items: list[dict]


def inbox(session: Session, actor: Actor, *, unread_only: bool = False, limit: int = 50) -> Inbox:
    """The caller's notifications, newest first, and how many are unread. Late steps are looked
    for first, so that polling is enough to hear of them."""
    notify_overdue(session)
    unread = session.execute(text(
        "SELECT count(*) FROM notifications WHERE user_id = :u AND read_at IS NULL"),
        {"u": actor.id}).scalar_one()
    rows = session.execute(text("""
        SELECT n.id, n.kind, n.issue_id, n.title, n.at, n.read_at IS NOT NULL AS read
          FROM notifications n
         WHERE n.user_id = :u AND (NOT :unread_only OR n.read_at IS NULL)
         ORDER BY n.at DESC, n.id DESC LIMIT :limit"""),
        {"u": actor.id, "unread_only": unread_only, "limit": limit}).mappings()
    return Inbox(unread, [dict(r) for r in rows])


def mark_read(session: Session, actor: Actor, ids: list[int] | None = None,
              before: datetime | None = None) -> int:
    """Mark the caller's notifications read: those of ``ids``, or all (up to ``before``)."""
    if ids is not None:
        mine = set(session.execute(text(
            "SELECT id FROM notifications WHERE user_id = :u AND id = ANY(:ids)"),
            {"u": actor.id, "ids": ids}).scalars())
        if missing := sorted(set(ids) - mine):
            raise NotFound(f"no notification {', '.join(map(str, missing))} of {actor.username}",
                           zh=f"通知 {'、'.join(map(str, missing))} 不存在")
    return session.execute(text("""
        UPDATE notifications SET read_at = now()
         WHERE user_id = :u AND read_at IS NULL
           AND (CAST(:ids AS bigint[]) IS NULL OR id = ANY(:ids))
           AND (CAST(:before AS timestamptz) IS NULL OR at <= :before)"""),
        {"u": actor.id, "ids": ids, "before": before}).rowcount
