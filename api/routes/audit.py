"""Reading the audit trail (administrators only): log-ins, failures and lock-outs, writes, reads
that revealed personal data, exports. Entries are never changed or removed through the API; the
database refuses it to the server's role (gis.db.roles)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import CurrentActor, Limit, Offset, SessionDep
from api.schemas import DayOrInstant
from gis.people import audit
from gis.people.actors import require_role

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])

AuditAction = Literal[tuple(audit.ACTIONS)]


class AuditEntryPublic(BaseModel):
    id: int
    at: datetime = Field(description="When it happened")
    username: str | None = Field(description="Who (the name given, for a failed log-in)")
    action: str = Field(description="What kind of entry: " + ", ".join(
        f"`{code}` ({meaning})" for code, meaning in audit.ACTIONS.items()))
    target: str | None = Field(description="What it was done to: a request, a user, a grid")
    address: str | None = Field(description="The client's address")
    outcome: str = Field(description="`ok`, or `refused`")
    detail: dict[str, Any] = Field(description="More about it; never a password or personal data")


@router.get("", summary="The audit trail, newest first (administrators only)")
def list_entries(
    session: SessionDep, actor: CurrentActor,
    username: Annotated[str | None, Query(max_length=64, description="Only this user's entries")] = None,
    action: Annotated[AuditAction | None, Query(description="Only this kind of entry")] = None,
    since: Annotated[DayOrInstant | None, Query(
        description="At or after: a day (from its start) or an instant (ISO 8601; without an "
                    "offset: Beijing time)", examples=["2025-03-01"])] = None,
    until: Annotated[DayOrInstant | None, Query(
        description="At or before: a day (to its end, inclusive) or an instant")] = None,
    limit: Limit = 100, offset: Offset = 0,
) -> list[AuditEntryPublic]:
    require_role(actor, "admin")
    rows = audit.entries(session, username=username, action=action, since=since, until=until,
                         limit=limit, offset=offset)
    return [AuditEntryPublic(**row) for row in rows]
