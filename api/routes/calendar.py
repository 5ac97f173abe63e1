"""The working-day calendar's status: which years follow the State Council's notice and which
fall back to Monday to Friday (docs/ARCHITECTURE.md, "Working time")."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request

from api.deps import CurrentActor, SessionDep
from api.schemas import CalendarStatusPublic
from gis.rules import BEIJING
from gis.worktime.store import calendar_status

router = APIRouter(prefix="/api/v1/calendar", tags=["calendar"])


@router.get("/status", summary="Which years count working days by the official calendar, "
                               "which fall back to Monday-Friday (with a warning)")
def status(request: Request, session: SessionDep, actor: CurrentActor) -> CalendarStatusPublic:
    found = calendar_status(session, datetime.now(BEIJING).date())
    return CalendarStatusPublic(**found,
                                workday_end=f"{request.app.state.settings.workday_end:%H:%M}")
