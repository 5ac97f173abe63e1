"""Random workflow moves for the rollup's property tests: each step moves one of the given
cases along one of the transitions its status allows (gis.rules.TRANSITIONS), through the
application's own workflow, so the statement triggers see what the app writes."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.issues import workflow
from gis.people.actors import Actor
from gis.rules import TRANSITIONS


def open_case_ids(session: Session, n: int = 12) -> list[int]:
    """The first ``n`` cases whose time runs (not closed, rejected or on hold)."""
    return [r[0] for r in session.execute(text(
        "SELECT id FROM issues WHERE status NOT IN ('closed', 'rejected', 'on_hold') "
        "ORDER BY id LIMIT :n"), {"n": n})]


def move_cases(session: Session, actor: Actor, ids: list[int], steps: list[int]) -> None:
    """For each step, case ``ids[step % len(ids)]`` takes the transition ``step`` picks among
    those its status allows (none from a final status)."""
    for step in steps:
        issue_id = ids[step % len(ids)]
        status = session.execute(text("SELECT status FROM issues WHERE id = :i"),
                                 {"i": issue_id}).scalar_one()
        allowed = TRANSITIONS[status]
        if allowed:
            workflow.transition(session, actor, issue_id, allowed[step % len(allowed)])
