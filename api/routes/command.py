"""The command centre over HTTP: dispatch, the branches of the loop (回退, 延期, 挂账, 督办),
dispatch rules, the share dispatched automatically, and each user's notification list. The
rules are gis.issues.dispatch's, gis.issues.branches' and gis.issues.notifications'; this module
speaks HTTP. An action the case's status does not allow is a 409 whose body names what is
allowed (``allowed``)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.command_schemas import (
    Allowed,
    BranchMovePublic,
    CreatedPublic,
    DecisionPublic,
    DispatchCreate,
    DispatchRulePublic,
    DispatchRuleSet,
    DispatchSharePublic,
    ExtensionCreate,
    ExtensionDecision,
    MarkRead,
    NotificationPublic,
    NotificationsPublic,
    ReasonCreate,
    ReplyCreate,
    ResumeCreate,
    SupervisionCreate,
)
from api.deps import CurrentActor, IssueId, SessionDep
from gis.issues import branches, dispatch, notifications
from gis.issues.actions import allowed_actions
from gis.people.actors import require_role
from gis.queries.dispatching import dispatch_share
from gis.rules import BEIJING

router = APIRouter(prefix="/api/v1", tags=["command centre"])
_MOVE = {409: {"description": "The case's status does not allow this; `allowed` says what does"},
         403: {"description": "Not the caller's case or role"}}


def _moved(session: Session, issue_id: int, from_status: str) -> BranchMovePublic:
    row = session.execute(text("""
        SELECT i.status, i.due_at, d.code FROM issues i
          LEFT JOIN departments d ON d.id = i.department_id WHERE i.id = :i"""),
        {"i": issue_id}).one()
    return BranchMovePublic(id=issue_id, from_=from_status, to=row.status,
                            allowed=Allowed(**allowed_actions(row.status)), department=row.code,
                            due_at=row.due_at)


@router.post("/issues/{issue_id}/dispatch", summary="派遣: to a department or the grid's worker",
             responses=_MOVE)
def dispatch_case(issue_id: IssueId, body: DispatchCreate, session: SessionDep,
                  actor: CurrentActor) -> BranchMovePublic:
    """Dispatchers, leaders and admins, for an `accepted` or `reopened` case. Without a
    department (and `to_worker` false) the case goes where its dispatch rule suggests, else to
    the grid's worker."""
    before = session.execute(text("SELECT status FROM issues WHERE id = :i"), {"i": issue_id}).scalar()
    dispatch.dispatch(session, actor, issue_id, body.department, body.to_worker, body.note)
    session.commit()
    return _moved(session, issue_id, before)


def _branch(session: Session, issue_id: int, action) -> BranchMovePublic:
    previous = action()
    session.commit()
    return _moved(session, issue_id, previous)


@router.post("/issues/{issue_id}/return", summary="回退: not ours, back to the dispatcher",
             responses=_MOVE)
def return_case(issue_id: IssueId, body: ReasonCreate, session: SessionDep,
                actor: CurrentActor) -> BranchMovePublic:
    return _branch(session, issue_id,
                   lambda: branches.return_case(session, actor, issue_id, body.reason))


@router.post("/issues/{issue_id}/hold", summary="挂账: parked, counted, never overdue",
             responses=_MOVE)
def hold(issue_id: IssueId, body: ReasonCreate, session: SessionDep,
         actor: CurrentActor) -> BranchMovePublic:
    return _branch(session, issue_id, lambda: branches.hold(session, actor, issue_id, body.reason))


@router.post("/issues/{issue_id}/resume", summary="解除挂账: handled again, with a fresh time limit",
             responses=_MOVE)
def resume(issue_id: IssueId, body: ResumeCreate, session: SessionDep,
           actor: CurrentActor) -> BranchMovePublic:
    def act() -> str:
        branches.resume(session, actor, issue_id, body.note)
        return branches.HOLD_FROM
    return _branch(session, issue_id, act)


@router.post("/issues/{issue_id}/extensions", status_code=201, summary="延期申请: ask for more time",
             responses=_MOVE)
def request_extension(issue_id: IssueId, body: ExtensionCreate, session: SessionDep,
                      actor: CurrentActor) -> CreatedPublic:
    limit = branches.parse_limit(body.value, body.unit)
    request_id = branches.request_extension(session, actor, issue_id, limit, body.reason)
    session.commit()
    return CreatedPublic(id=request_id, issue_id=issue_id)


@router.post("/issues/{issue_id}/extensions/decision",
             summary="Approve (the deadline moves) or refuse the pending extension request")
def decide_extension(issue_id: IssueId, body: ExtensionDecision, session: SessionDep,
                     actor: CurrentActor) -> DecisionPublic:
    decision = branches.decide_extension(session, actor, issue_id, body.approve, body.note)
    session.commit()
    return DecisionPublic(request_id=decision.request_id, approved=decision.approved,
                          due_before=decision.due_before, due_after=decision.due_after)


@router.post("/issues/{issue_id}/supervisions", status_code=201,
             summary="督办: a leader's notice that requires a reply", responses=_MOVE)
def supervise(issue_id: IssueId, body: SupervisionCreate, session: SessionDep,
              actor: CurrentActor) -> CreatedPublic:
    within = (branches.parse_limit(body.reply_within.value, body.reply_within.unit)
              if body.reply_within else None)
    supervision_id = branches.supervise(session, actor, issue_id, body.note, within)
    session.commit()
    return CreatedPublic(id=supervision_id, issue_id=issue_id)


@router.post("/supervisions/{supervision_id}/reply", summary="The handler's reply to 督办")
def reply(supervision_id: Annotated[int, Path(ge=1, le=2**62)], body: ReplyCreate,
          session: SessionDep, actor: CurrentActor) -> CreatedPublic:
    issue_id = branches.reply(session, actor, supervision_id, body.reply)
    session.commit()
    return CreatedPublic(id=supervision_id, issue_id=issue_id)


# -- notifications -------------------------------------------------------------------------------
@router.get("/me/notifications", summary="The caller's notifications and unread count (poll this)")
def my_notifications(session: SessionDep, actor: CurrentActor,
                     unread: Annotated[bool, Query(description="Only the unread")] = False,
                     limit: Annotated[int, Query(ge=1, le=500)] = 50) -> NotificationsPublic:
    box = notifications.inbox(session, actor, unread_only=unread, limit=limit)
    session.commit()  # late steps found while looking are notified once, for everyone
    items = [NotificationPublic(**n) for n in box.items]
    return NotificationsPublic(unread=box.unread, data=items, count=len(items))


@router.post("/me/notifications/read", summary="Mark notifications read (ids, or all)")
def mark_read(body: MarkRead, session: SessionDep, actor: CurrentActor) -> dict:
    marked = notifications.mark_read(session, actor, None if body.all else (body.ids or []))
    session.commit()
    return {"marked": marked}


# -- dispatch rules and their share ---------------------------------------------------------------
def _rule_public(rule: dispatch.Rule) -> DispatchRulePublic:
    return DispatchRulePublic(id=rule.id, category=rule.category, region=rule.region_code,
                              region_name=rule.region_name, department=rule.target.department_code,
                              department_name=rule.target.department_name, auto=rule.auto)


@router.get("/dispatch-rules", summary="Dispatch rules: category x region -> department")
def list_rules(session: SessionDep, actor: CurrentActor) -> list[DispatchRulePublic]:
    require_role(actor, *dispatch.DISPATCHER_ROLES)
    return [_rule_public(r) for r in dispatch.list_rules(session)]


@router.put("/dispatch-rules", summary="Add or replace the rule of a category in a region (admins)")
def set_rule(body: DispatchRuleSet, session: SessionDep, actor: CurrentActor) -> DispatchRulePublic:
    rule = dispatch.set_rule(session, actor, body.category, body.region, body.department, body.auto)
    session.commit()
    return _rule_public(rule)


@router.delete("/dispatch-rules/{rule_id}", status_code=204, summary="Remove a rule (admins)")
def delete_rule(rule_id: Annotated[int, Path(ge=1, le=2_147_483_647)], session: SessionDep,
                actor: CurrentActor) -> None:
    dispatch.delete_rule(session, actor, rule_id)
    session.commit()


@router.get("/stats/dispatch", summary="The share of cases a dispatch rule dispatched (自动派遣率)")
def dispatch_stats(session: SessionDep, actor: CurrentActor,
                   since: Annotated[date | None, Query(description="First day (Beijing)")] = None,
                   until: Annotated[date | None, Query(description="Last day (Beijing)")] = None
                   ) -> DispatchSharePublic:
    require_role(actor, *dispatch.DISPATCHER_ROLES)
    start = datetime.combine(since, time(), BEIJING) if since else None
    end = datetime.combine(until + timedelta(days=1), time(), BEIJING) if until else None
    return DispatchSharePublic(**dispatch_share(session, actor, start, end))
