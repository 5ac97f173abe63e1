"""The deadlines of a case's steps (docs/ARCHITECTURE.md, "Working time").

While a case is in a status, the step :data:`gis.rules.STATUS_STEP` names runs: accept while
reported, dispatch while accepted, handle while dispatched, in progress or reopened, verify while
resolved. A move to a status of another step ends the running one (``done_at``) and starts the
next with its deadline, from the limit of the case's category and urgency, counted from the
move (:func:`gis.worktime.limits.deadline`). Each step is an ``issue_steps`` row, so a step's
deadline, whether it was met and which steps are overdue now are plain queries. The same
function replays a stored history (the demo, an import with events), so that a generated case
has the steps a live one would have.

``issues.due_at`` is apart: the deadline promised to the resident, the handling limit counted
from the report (:func:`promised_due`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.rules import PROMISE_STEP, STATUS_STEP
from gis.worktime.calendar import WorkCalendar
from gis.worktime.limits import Limit, deadline, extended
from gis.worktime.store import load_calendar, workday_end


@dataclass(frozen=True)
class StepChange:
    """What a move does to the steps: end the running one, start ``starts`` (None: none)."""

    ends: bool
    starts: str | None


def step_change(from_status: str | None, to_status: str) -> StepChange:
    before, after = STATUS_STEP.get(from_status) if from_status else None, STATUS_STEP.get(to_status)
    if before == after:
        return StepChange(False, None)
    return StepChange(before is not None, after)


def promised_due(reported_at: datetime, limits: dict[str, Limit], calendar: WorkCalendar,
                 end: time) -> datetime | None:
    """``issues.due_at``: the handling limit counted from the report; None without one (never
    overdue)."""
    limit = limits.get(PROMISE_STEP)
    return deadline(reported_at, limit, calendar, end) if limit else None


@dataclass(frozen=True)
class StepRow:
    step: str
    started_at: datetime
    due_at: datetime | None
    done_at: datetime | None


def replay(moves: Iterable[tuple[datetime, str | None, str]], limits: dict[str, Limit],
           calendar: WorkCalendar, end: time,
           extensions: Iterable[tuple[datetime, Limit]] = ()) -> list[StepRow]:
    """The steps of a history of moves (at, from status, to status), oldest first, under one
    urgency's ``limits``: what :func:`on_move` would have recorded live. ``extensions`` are the
    approved extensions (at, time granted), oldest first: each moves the deadline of the step
    running then (:func:`gis.worktime.limits.extended`)."""
    rows: list[StepRow] = []
    running: tuple[str, datetime, datetime | None] | None = None
    pending = list(extensions)
    for at, from_status, to_status in moves:
        while pending and pending[0][0] <= at:
            running = _extend(running, pending.pop(0)[1], calendar, end)
        change = step_change(from_status, to_status)
        if change.ends and running is not None:
            rows.append(StepRow(*running, at))
            running = None
        if change.starts is not None:
            limit = limits.get(change.starts)
            running = (change.starts, at, deadline(at, limit, calendar, end) if limit else None)
    for _, granted in pending:
        running = _extend(running, granted, calendar, end)
    if running is not None:
        rows.append(StepRow(*running, None))
    return rows


def _extend(running: tuple[str, datetime, datetime | None] | None, granted: Limit,
            calendar: WorkCalendar, end: time) -> tuple[str, datetime, datetime | None] | None:
    if running is None or running[2] is None:
        return running
    step, started, due = running
    return step, started, extended(due, granted, calendar, end)


def on_move(session: Session, issue_id: int, from_status: str | None, to_status: str) -> None:
    """Record what a move of case ``issue_id`` made at the transaction's time (``now()``, as its
    ``issue_events`` row) does to its steps."""
    change = step_change(from_status, to_status)
    if change.ends:
        session.execute(text("UPDATE issue_steps SET done_at = now() "
                             "WHERE issue_id = :i AND done_at IS NULL"), {"i": issue_id})
    if change.starts is None:
        return
    row = session.execute(text("""
        SELECT now() AS now, t.value, t.unit FROM issues i
          LEFT JOIN time_limits t ON t.category = i.category AND t.urgency = i.urgency
                                 AND t.step = :step
         WHERE i.id = :i"""), {"i": issue_id, "step": change.starts}).one()
    due = None
    if row.value is not None:
        calendar = load_calendar(session, row.now.date())
        due = deadline(row.now, Limit(row.value, row.unit), calendar, workday_end(session))
    start_step(session, issue_id, change.starts, row.now, due)


def start_step(session: Session, issue_id: int, step: str, at: datetime,
               due_at: datetime | None) -> None:
    session.execute(text(
        "INSERT INTO issue_steps (issue_id, step, started_at, due_at) VALUES (:i, :s, :at, :due)"),
        {"i": issue_id, "s": step, "at": at, "due": due_at})

