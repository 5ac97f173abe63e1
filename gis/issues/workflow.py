"""The workflow of an issue: moves between statuses as :data:`gis.rules.TRANSITIONS` allows,
each one an ``issue_events`` row (the audit trail) that also ends and starts the case's steps
with their deadlines (:mod:`gis.worktime.steps`), and the history read back."""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import IllegalTransition, NotFound
from gis.issues.actions import allowed_actions
from gis.people.actors import Actor, require_act_on_issue
from gis.people.privacy import mask_text
from gis.rules import FINAL_SQL, STATUS_NAMES, TRANSITIONS
from gis.worktime import steps


def transition(session: Session, actor: Actor, issue_id: int, to_status: str,
               note: str | None = None) -> str:
    """Move an issue to ``to_status`` if the workflow allows it; returns the previous status."""
    current = lock_case(session, actor, issue_id)
    allowed = TRANSITIONS.get(current, ())
    if to_status not in allowed:
        raise IllegalTransition(
            f"issue {issue_id} is {current!r}; it can go to "
            f"{', '.join(repr(s) for s in allowed) if allowed else 'nothing (final)'}, not {to_status!r}",
            zh=f"事件 {issue_id} 当前为「{STATUS_NAMES[current][0]}」，只能转为"
               f"{allowed_zh(current)}，"
               f"不能转为「{STATUS_NAMES.get(to_status, (to_status,))[0]}」",
            allowed=allowed_actions(current))
    if to_status == "dispatched":
        # A dispatch names who fixes the case: the rule's department, else the grid's worker.
        from gis.issues import dispatch  # dispatch builds on this module
        dispatch.dispatch_by_rule(session, actor, issue_id, current, note)
        return current
    record_move(session, actor, issue_id, current, to_status, note)
    return current


def lock_case(session: Session, actor: Actor, issue_id: int) -> str:
    """The status of case ``issue_id``, locked until the transaction ends (moves of one case
    happen one after the other), once ``actor`` is known to be allowed to act on it."""
    row = session.execute(text("""
        SELECT i.status, g.code, i.department_id FROM issues i LEFT JOIN grids g ON g.id = i.grid_id
         WHERE i.id = :id FOR UPDATE OF i"""), {"id": issue_id}).first()
    if row is None:
        raise NotFound(f"issue {issue_id} does not exist", zh=f"事件 {issue_id} 不存在")
    current, grid_code, department_id = row
    require_act_on_issue(actor, grid_code, department_id)
    return current


def allowed_zh(status: str) -> str:
    """Where a case in ``status`` may go, in Chinese (「任务派遣」、「不予立案」)."""
    allowed = TRANSITIONS.get(status, ())
    return ("、".join(f"「{STATUS_NAMES[s][0]}」" for s in allowed) if allowed
            else "（无：已是最终状态）")


def record_move(session: Session, actor: Actor | None, issue_id: int, from_status: str,
                to_status: str, note: str | None, *, client_key: str | None = None,
                self_resolved: bool = False, kind: str = "move",
                department_id: int | None = None, details: dict | None = None) -> None:
    """Write a move the caller has checked: the status (with ``closed_at`` for a final one), the
    step of the history (of ``kind``, gis.rules.MOVE_EVENT_KINDS), under the action's
    idempotency key if it has one, and the steps with deadlines that the move ends and starts.
    A report accepted (立案) goes on to its automatic dispatch when a rule says so."""
    session.execute(text(f"""
        UPDATE issues SET status = CAST(:to AS varchar), updated_at = now(),
               closed_at = CASE WHEN CAST(:to AS varchar) IN {FINAL_SQL} THEN now() END,
               self_resolved = self_resolved OR :self_resolved
         WHERE id = :id"""), {"to": to_status, "id": issue_id, "self_resolved": self_resolved})
    add_event(session, issue_id, actor, from_status, to_status, note, client_key, kind=kind,
              department_id=department_id, details=details)
    steps.on_move(session, issue_id, from_status, to_status)
    if (from_status, to_status) == ("reported", "accepted"):
        from gis.issues import dispatch  # dispatch builds on this module
        dispatch.auto_dispatch(session, issue_id)


def history(session: Session, issue_id: int, *, personal: bool = True) -> list[dict]:
    """The steps of an issue, oldest first; notes masked unless ``personal``."""
    if session.execute(text("SELECT 1 FROM issues WHERE id = :i"), {"i": issue_id}).first() is None:
        raise NotFound(f"issue {issue_id} does not exist", zh=f"事件 {issue_id} 不存在")
    rows = session.execute(text("""
        SELECT e.id, e.at, u.username AS actor, e.from_status, e.to_status, e.note, e.kind,
               d.code AS department, d.name AS department_name, e.details
          FROM issue_events e LEFT JOIN users u ON u.id = e.actor_id
          LEFT JOIN departments d ON d.id = e.department_id
         WHERE e.issue_id = :i ORDER BY e.at, e.id"""), {"i": issue_id}).mappings()
    events = [dict(r) for r in rows]
    if not personal:
        for event in events:
            event["note"] = mask_text(event["note"])
    return events


def add_event(session: Session, issue_id: int, actor: Actor | None, from_status: str | None,
              to_status: str | None, note: str | None, client_key: str | None = None, *,
              kind: str = "move", department_id: int | None = None,
              details: dict | None = None) -> None:
    """One row of the history: a move (``to_status``) or, with ``to_status`` None, an entry that
    leaves the status as it is (an extension asked for, a supervision notice...)."""
    session.execute(text(
        "INSERT INTO issue_events (issue_id, actor_id, from_status, to_status, note, client_key, "
        "kind, department_id, details) "
        "VALUES (:i, :a, :f, :t, :n, :k, :kind, :d, CAST(:details AS jsonb))"),
        {"i": issue_id, "a": actor.id if actor else None, "f": from_status, "t": to_status,
         "n": note, "k": client_key, "kind": kind, "d": department_id,
         "details": details_json(details) if details else None})


def details_json(details: dict) -> str:
    """An event's details as JSON; times as ISO 8601 with their offset."""
    return json.dumps(details, ensure_ascii=False,
                      default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v))
