"""Request and response models of the command centre: dispatch, the branches (回退, 延期, 挂账,
督办), dispatch rules and notifications (api/routes/command.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from gis.rules import ISSUE_STATUSES, LIMIT_UNITS, NOTIFICATION_KINDS

Reason = Annotated[str, Field(min_length=1, max_length=2000)]
Note = Annotated[str, Field(max_length=2000)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DispatchCreate(Strict):
    department: str | None = Field(None, max_length=32, description=(
        "Department code; leave out (and to_worker false) for the dispatch rule's suggestion"))
    to_worker: bool = Field(False, description="A community matter: to the grid's worker")
    note: Note | None = None


class ReasonCreate(Strict):
    reason: Reason


class ResumeCreate(Strict):
    note: Note | None = None


class LimitBody(Strict):
    value: int = Field(ge=1, le=527_040)
    unit: Literal[LIMIT_UNITS]


class ExtensionCreate(Strict):
    value: int = Field(ge=1, le=527_040, description="How much more time")
    unit: Literal[LIMIT_UNITS]
    reason: Reason


class ExtensionDecision(Strict):
    approve: bool
    note: Note | None = Field(None, description="Required when refusing")


class SupervisionCreate(Strict):
    note: Reason
    reply_within: LimitBody | None = Field(None, description="Default: 1 working day")


class ReplyCreate(Strict):
    reply: Reason


class Allowed(BaseModel):
    to: list[Literal[ISSUE_STATUSES]] = Field(description="Statuses a transition may lead to")
    actions: list[str] = Field(description="Named actions allowed (dispatch, return, hold...)")


class BranchMovePublic(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: int
    from_: Literal[ISSUE_STATUSES] = Field(alias="from")
    to: Literal[ISSUE_STATUSES]
    allowed: Allowed
    department: str | None = None
    due_at: datetime | None = None


class CreatedPublic(BaseModel):
    id: int
    issue_id: int


class DecisionPublic(BaseModel):
    request_id: int
    approved: bool
    due_before: datetime | None
    due_after: datetime | None


class DispatchRuleSet(Strict):
    category: str = Field(max_length=32)
    region: str | None = Field(None, max_length=12, description="Region code; none: anywhere")
    department: str | None = Field(None, max_length=32, description="None: the grid's worker")
    auto: bool = Field(True, description="Dispatch on acceptance; false: only suggest")


class DispatchRulePublic(BaseModel):
    id: int
    category: str
    region: str | None
    region_name: str | None
    department: str | None
    department_name: str | None
    auto: bool


class NotificationPublic(BaseModel):
    id: int
    kind: Literal[NOTIFICATION_KINDS]
    issue_id: int | None
    title: str
    at: datetime
    read: bool


class NotificationsPublic(BaseModel):
    unread: int
    data: list[NotificationPublic]
    count: int


class MarkRead(Strict):
    ids: list[Annotated[int, Field(ge=1)]] | None = Field(None, max_length=1000)
    all: bool = Field(False, description="Mark every notification read")


class DispatchSharePublic(BaseModel):
    since: datetime | None
    until: datetime | None
    dispatches: int = Field(description="First dispatches of cases in the period")
    automatic: int = Field(description="Of which a dispatch rule made")
    share: float | None = Field(description="automatic / dispatches")
