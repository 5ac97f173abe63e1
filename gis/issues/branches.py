"""The branches of the closed loop (docs/ARCHITECTURE.md, "Dispatch and the branches"):

- 回退 :func:`return_case`: the department (or the grid's worker, for a community matter) sends
  a case that is not theirs back to the dispatcher, with a reason: it is ``accepted`` again,
  dispatched to nobody, and the dispatchers are told;
- 延期 :func:`request_extension`, :func:`decide_extension`: the handler asks for more time with a
  reason; a dispatcher approves (the promised deadline and the running step's deadline move by
  the time asked, counted from each) or refuses (with a reason; nothing moves);
- 挂账 :func:`hold`, :func:`resume`: the handler parks a case it cannot fix now, with a reason;
  it stays open and counted, runs no step and is never overdue; taken up again, it starts a fresh
  handling step and its promised deadline becomes that step's;
- 督办 :func:`supervise`, :func:`reply`: a leader's notice on an open case, which the handler
  must answer (by a deadline, one working day unless the leader says otherwise).

Every branch is an ``issue_events`` row of its own kind (gis.rules.EVENT_KINDS); an action the
case's status does not allow is a 409 naming what is allowed (gis.issues.actions).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import Conflict, Forbidden, InvalidParameter, NotFound, ReasonRequired
from gis.issues import notifications, workflow
from gis.issues.actions import allowed_actions, require_status
from gis.issues.dispatch import DISPATCHER_ROLES
from gis.people.actors import Actor, require_role
from gis.rules import BRANCH_MOVES, EVENT_KIND_NAMES, EXTENSION_STATUSES, SUPERVISION_STATUSES
from gis.worktime.limits import Limit, deadline, extended
from gis.worktime.store import load_calendar, workday_end

HANDLER_ROLES = ("department", "worker", "admin")
DECIDER_ROLES = ("dispatcher", "leader", "admin")
SUPERVISOR_ROLES = ("leader", "admin")
HOLD_FROM = BRANCH_MOVES["resume"][0][0]  # a resumed case was on hold
# A supervision notice must be answered within this unless the leader sets another limit.
DEFAULT_REPLY_LIMIT = Limit(1, "workdays")


@dataclass(frozen=True)
class Case:
    id: int
    status: str
    department_id: int | None
    due_at: datetime | None
    category: str


def _lock(session: Session, actor: Actor, issue_id: int) -> Case:
    status = workflow.lock_case(session, actor, issue_id)
    row = session.execute(text("SELECT department_id, due_at, category FROM issues WHERE id = :i"),
                          {"i": issue_id}).one()
    return Case(issue_id, status, row.department_id, row.due_at, row.category)


def _reason(value: str | None, what_en: str, what_zh: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ReasonRequired(f"{what_en} needs a reason (reason)", zh=f"{what_zh}须填写原因")
    return value


def _as_handler(actor: Actor, case: Case) -> None:
    """Only who handles the case acts as its handler: its department's staff, or the grid's
    worker when it went to no department (lock_case has checked the scope); admins too."""
    require_role(actor, *HANDLER_ROLES)
    if actor.role == "worker" and case.department_id is not None:
        raise Forbidden(f"issue {case.id} is handled by a department, not by the grid's worker",
                        zh=f"事件 {case.id} 已派遣给专业部门，由部门处理")


# -- 回退 and 挂账: the handler's moves with a reason ------------------------------------------------
def return_case(session: Session, actor: Actor, issue_id: int, reason: str | None) -> str:
    """回退: back to the dispatcher (``accepted``), dispatched to nobody. Returns the status left."""
    case, reason = _handler_move(session, actor, issue_id, "return", reason, "returning a case")
    notifications.notify_region(session, issue_id, notifications.DISPATCH_DESK, "returned",
                                f"事件 {issue_id} 被回退：{reason}", skip=actor.id)
    return case.status


def hold(session: Session, actor: Actor, issue_id: int, reason: str | None) -> str:
    """挂账: parked, open and counted, never overdue. Returns the status left."""
    case, _ = _handler_move(session, actor, issue_id, "hold", reason, "putting a case on hold")
    return case.status


def _handler_move(session: Session, actor: Actor, issue_id: int, action: str, reason: str | None,
                  what_en: str) -> tuple[Case, str]:
    """The handler's ``action`` (a branch move that needs a reason) on case ``issue_id``; a
    return also takes the case from its department."""
    case = _lock(session, actor, issue_id)
    _as_handler(actor, case)
    sources, to_status = BRANCH_MOVES[action]
    require_status(issue_id, case.status, action, sources)
    name = EVENT_KIND_NAMES[action][0]
    reason = _reason(reason, what_en, name)
    if action == "return":
        session.execute(text("UPDATE issues SET department_id = NULL WHERE id = :i"), {"i": issue_id})
    workflow.record_move(session, actor, issue_id, case.status, to_status, f"{name}：{reason}",
                         kind=action, department_id=case.department_id)
    return case, reason


def resume(session: Session, actor: Actor, issue_id: int, note: str | None = None) -> datetime | None:
    """解除挂账: handling again, with a fresh handling step; returns the new promised deadline."""
    case = _lock(session, actor, issue_id)
    if actor.role not in DECIDER_ROLES:
        _as_handler(actor, case)
    sources, to_status = BRANCH_MOVES["resume"]
    require_status(issue_id, case.status, "resume", sources)
    workflow.record_move(session, actor, issue_id, case.status, to_status,
                         f"解除挂账{('：' + note.strip()) if note and note.strip() else ''}",
                         kind="resume", department_id=case.department_id)
    due_after = session.execute(text(
        "SELECT due_at FROM issue_steps WHERE issue_id = :i AND done_at IS NULL"),
        {"i": issue_id}).scalar()
    if due_after is not None:
        session.execute(text("UPDATE issues SET due_at = :d WHERE id = :i"),
                        {"d": due_after, "i": issue_id})
    _set_last_details(session, issue_id, {"due_before": case.due_at, "due_after": due_after})
    return due_after


# -- 延期 ------------------------------------------------------------------------------------------
def request_extension(session: Session, actor: Actor, issue_id: int, limit: Limit,
                      reason: str | None) -> int:
    """延期申请: returns the request's id. One may be pending per case."""
    case = _lock(session, actor, issue_id)
    _as_handler(actor, case)
    require_status(issue_id, case.status, "request_extension", EXTENSION_STATUSES)
    reason = _reason(reason, "asking for an extension", "延期申请")
    pending = session.execute(text("SELECT id FROM extension_requests WHERE issue_id = :i "
                                   "AND decided_at IS NULL"), {"i": issue_id}).scalar()
    if pending is not None:
        raise Conflict(f"issue {issue_id} already has extension request {pending} waiting for a "
                       "decision", zh=f"事件 {issue_id} 已有待审批的延期申请（{pending}）")
    request_id = session.execute(text("""
        INSERT INTO extension_requests (issue_id, requested_by, value, unit, reason)
        VALUES (:i, :a, :v, :u, :r) RETURNING id"""),
        {"i": issue_id, "a": actor.id, "v": limit.value, "u": limit.unit, "r": reason}).scalar_one()
    workflow.add_event(session, issue_id, actor, case.status, None, f"延期申请 {limit.describe()}：{reason}",
                       kind="extension_request", department_id=case.department_id,
                       details={"request": request_id, **limit.as_dict()})
    notifications.notify_region(session, issue_id, notifications.DISPATCH_DESK, "extension_request",
                                f"事件 {issue_id} 申请延期 {limit.describe()}", skip=actor.id)
    return request_id


@dataclass(frozen=True)
class Decision:
    request_id: int
    approved: bool
    due_before: datetime | None
    due_after: datetime | None


def decide_extension(session: Session, actor: Actor, issue_id: int, approve: bool,
                     note: str | None = None) -> Decision:
    """Approve or refuse the case's pending extension request (a refusal needs a reason)."""
    require_role(actor, *DECIDER_ROLES)
    case = _lock(session, actor, issue_id)
    request = session.execute(text("""
        SELECT id, value, unit, requested_by FROM extension_requests
         WHERE issue_id = :i AND decided_at IS NULL"""), {"i": issue_id}).first()
    if request is None:
        raise Conflict(f"issue {issue_id} has no extension request waiting for a decision",
                       zh=f"事件 {issue_id} 没有待审批的延期申请")
    note = (note or "").strip() or None
    if approve:
        # A case no longer being handled (resolved, returned, held) has no handling time left to
        # extend; the request can still be refused, which clears it.
        require_status(issue_id, case.status, "approve_extension", EXTENSION_STATUSES)
    else:
        note = _reason(note, "refusing an extension", "驳回延期")
    limit = Limit(request.value, request.unit)
    due_before, due_after = case.due_at, case.due_at
    if approve:
        due_after = _extend(session, issue_id, case.due_at, limit)
    session.execute(text("""
        UPDATE extension_requests SET decided_by = :a, decided_at = now(), approved = :ok,
               decision_note = :n, due_before = :b, due_after = :d WHERE id = :r"""),
        {"a": actor.id, "ok": approve, "n": note, "b": due_before, "d": due_after, "r": request.id})
    kind = "extension_approved" if approve else "extension_refused"
    words = f"批准延期 {limit.describe()}" if approve else "驳回延期"
    workflow.add_event(session, issue_id, actor, case.status, None,
                       words + (f"：{note}" if note else ""), kind=kind,
                       department_id=case.department_id,
                       details={"request": request.id, **limit.as_dict(),
                                "due_before": due_before, "due_after": due_after})
    if request.requested_by is not None:
        notifications.notify(session, [request.requested_by], issue_id, "extension_decided",
                             f"事件 {issue_id} 的延期申请已{'批准' if approve else '驳回'}",
                             skip=actor.id)
    return Decision(request.id, approve, due_before, due_after)


def _extend(session: Session, issue_id: int, due_at: datetime | None, limit: Limit) -> datetime | None:
    """Move the promised deadline and the running handling step's by ``limit``, each counted
    from itself (a case without a deadline keeps none)."""
    calendar, end = load_calendar(session), workday_end(session)
    step = session.execute(text("SELECT id, due_at FROM issue_steps WHERE issue_id = :i "
                                "AND done_at IS NULL AND step = 'handle'"), {"i": issue_id}).first()
    if step is not None and step.due_at is not None:
        session.execute(text("UPDATE issue_steps SET due_at = :d WHERE id = :s"),
                        {"d": extended(step.due_at, limit, calendar, end), "s": step.id})
        # late again after the new deadline: to be told again
        session.execute(text("DELETE FROM step_alerts WHERE step_id = :s"), {"s": step.id})
    if due_at is None:
        return None
    due_after = extended(due_at, limit, calendar, end)
    session.execute(text("UPDATE issues SET due_at = :d WHERE id = :i"), {"d": due_after, "i": issue_id})
    return due_after


# -- 督办 ------------------------------------------------------------------------------------------
def supervise(session: Session, actor: Actor, issue_id: int, note: str | None,
              reply_within: Limit | None = None) -> int:
    """督办: a notice the handler must answer; returns its id."""
    require_role(actor, *SUPERVISOR_ROLES)
    case = _lock(session, actor, issue_id)
    require_status(issue_id, case.status, "supervise", SUPERVISION_STATUSES)
    note = _reason(note, "a supervision notice", "督办")
    row = session.execute(text("SELECT now()")).scalar_one()
    reply_due = deadline(row, reply_within or DEFAULT_REPLY_LIMIT, load_calendar(session, row.date()),
                         workday_end(session))
    supervision_id = session.execute(text("""
        INSERT INTO supervisions (issue_id, issued_by, note, reply_due_at)
        VALUES (:i, :a, :n, :d) RETURNING id"""),
        {"i": issue_id, "a": actor.id, "n": note, "d": reply_due}).scalar_one()
    workflow.add_event(session, issue_id, actor, case.status, None, f"督办：{note}", kind="supervise",
                       department_id=case.department_id,
                       details={"supervision": supervision_id, "reply_due_at": reply_due})
    notifications.notify(session, notifications.handlers(session, issue_id), issue_id,
                         "supervision", f"事件 {issue_id} 收到督办：{note}", skip=actor.id)
    return supervision_id


def reply(session: Session, actor: Actor, supervision_id: int, answer: str | None) -> int:
    """The handler's answer to a supervision notice; returns the case's id."""
    row = session.execute(text("SELECT issue_id, issued_by, replied_at FROM supervisions "
                               "WHERE id = :s"), {"s": supervision_id}).first()
    if row is None:
        raise NotFound(f"no supervision notice {supervision_id}", zh=f"督办 {supervision_id} 不存在")
    case = _lock(session, actor, row.issue_id)
    if actor.role != "dispatcher":
        _as_handler(actor, case)
    if row.replied_at is not None:
        raise Conflict(f"supervision notice {supervision_id} was answered already",
                       zh=f"督办 {supervision_id} 已回复")
    answer = _reason(answer, "a reply to a supervision notice", "督办回复")
    session.execute(text("UPDATE supervisions SET replied_by = :a, replied_at = now(), reply = :r "
                         "WHERE id = :s"), {"a": actor.id, "r": answer, "s": supervision_id})
    workflow.add_event(session, case.id, actor, case.status, None, f"督办回复：{answer}",
                       kind="supervision_reply", department_id=case.department_id,
                       details={"supervision": supervision_id})
    if row.issued_by is not None:
        notifications.notify(session, [row.issued_by], case.id, "supervision_reply",
                             f"事件 {case.id} 的督办已回复", skip=actor.id)
    return case.id


def parse_limit(value: int, unit: str) -> Limit:
    try:
        return Limit(value, unit)
    except ValueError as exc:
        raise InvalidParameter(str(exc), zh=f"期限无效：{value} {unit}") from None


def _set_last_details(session: Session, issue_id: int, details: dict) -> None:
    session.execute(text("""
        UPDATE issue_events SET details = CAST(:d AS jsonb)
         WHERE id = (SELECT max(id) FROM issue_events WHERE issue_id = :i)"""),
        {"i": issue_id, "d": workflow.details_json(details)})


# -- what a reader may do now (the issue page's buttons) ----------------------------------------
@dataclass(frozen=True)
class Available:
    """The command-centre actions ``actor`` may take on a case now: names of
    :func:`gis.issues.actions.allowed_actions` plus ``approve_extension``/``refuse_extension``
    (a request is pending) and ``reply`` (to the notice ``supervision``); the departments a
    dispatch may go to, as (code, name)."""

    actions: tuple[str, ...] = ()
    supervision: int | None = None
    departments: tuple[tuple[str, str], ...] = ()


def available(session: Session, actor: Actor, issue_id: int) -> Available:
    """What ``actor``, who may act on case ``issue_id``, may do to it with the command centre's
    actions, by the same rules the actions check (their status and role)."""
    row = session.execute(text("""
        SELECT i.status, i.department_id,
               EXISTS (SELECT 1 FROM extension_requests r WHERE r.issue_id = i.id
                        AND r.decided_at IS NULL) AS pending,
               (SELECT min(s.id) FROM supervisions s WHERE s.issue_id = i.id
                   AND s.replied_at IS NULL) AS supervision
          FROM issues i WHERE i.id = :i"""), {"i": issue_id}).one()
    handles = actor.role == "admin" or (actor.role == "department") or (
        actor.role == "worker" and row.department_id is None)
    decides = actor.role in DECIDER_ROLES
    allowed = allowed_actions(row.status)["actions"]
    wanted = {"dispatch": actor.role in DISPATCHER_ROLES, "return": handles, "hold": handles,
              "resume": handles or decides, "request_extension": handles and not row.pending,
              "supervise": actor.role in SUPERVISOR_ROLES}
    actions = [a for a in allowed if wanted.get(a)]
    if row.pending and decides:
        approvable = row.status in EXTENSION_STATUSES
        actions += ["approve_extension", "refuse_extension"] if approvable else ["refuse_extension"]
    if row.supervision is not None and (handles or actor.role == "dispatcher"):
        actions.append("reply")
    departments = ()
    if "dispatch" in actions:
        departments = tuple(tuple(d) for d in session.execute(text(
            "SELECT code, name FROM departments WHERE active ORDER BY name")).all())
    return Available(tuple(actions), row.supervision if "reply" in actions else None, departments)
