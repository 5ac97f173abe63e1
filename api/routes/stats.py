"""Evaluation statistics for leaders, dispatchers and admins, over the cases in their scope, as
JSON or as CSV for spreadsheets (a CSV download is an export: audited). Heavy reads: they run on
the read session (a standby when there is one); the audit entry goes to the primary."""

import csv
import io
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from api.deps import CurrentActor, ReadSessionDep, SessionDep, client_address
from api.routes.issues_read import IssueFilters
from api.schemas import (
    GridStatsPublic,
    GridStatsRow,
    TimelinePublic,
    TimelineRow,
    WorkerStatsPublic,
    WorkerStatsRow,
)
from gis.people import audit
from gis.people.actors import Actor
from gis.queries import statistics

router = APIRouter(prefix="/api/v1/stats", tags=["statistics"])

Format = Annotated[Literal["json", "csv"], Query(
    description="`csv` for a spreadsheet (UTF-8 with BOM, so Excel shows Chinese)")]
_CSV = {200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with `format=csv`"}}


@router.get("/grids", summary="Per-grid counts, on-time closure rate, median time to close",
            response_model=GridStatsPublic, responses=_CSV)
def grid_stats(request: Request, session: SessionDep, actor: CurrentActor, reads: ReadSessionDep,
               filters: IssueFilters, format: Format = "json"):
    """Leaders, dispatchers and admins: the grids of their region and the cases they may read,
    selected by the same filters as `GET /api/v1/issues`."""
    rows, unassigned = statistics.grid_stats(reads, actor, filters)
    if format == "csv":
        return _csv(request, session, actor, rows, GridStatsRow, "grid-stats.csv")
    return GridStatsPublic(data=rows, count=len(rows), unassigned=unassigned)


@router.get("/timeline", summary="Issue counts and rates per day, week or month of report",
            response_model=TimelinePublic, responses=_CSV)
def timeline(request: Request, session: SessionDep, actor: CurrentActor, reads: ReadSessionDep,
             filters: IssueFilters,
             bucket: Annotated[Literal["day", "week", "month"], Query(
                 description="Bucket of report time (Beijing time; weeks start on Monday)")] = "week",
             format: Format = "json"):
    rows = statistics.timeline(reads, actor, filters, bucket)
    if format == "csv":
        return _csv(request, session, actor, rows, TimelineRow, f"timeline-{bucket}.csv")
    return TimelinePublic(bucket=bucket, data=rows, count=len(rows))


@router.get("/workers", summary="Per grid worker: the cases of their grids while they held them",
            response_model=WorkerStatsPublic, responses=_CSV)
def worker_stats(request: Request, session: SessionDep, actor: CurrentActor,
                 reads: ReadSessionDep, filters: IssueFilters, format: Format = "json"):
    """Leaders, dispatchers and admins. A case counts for the worker who held its grid when it was
    reported, so a worker who handed a grid over keeps the credit for their time."""
    rows = statistics.worker_stats(reads, actor, filters)
    if format == "csv":
        return _csv(request, session, actor, rows, WorkerStatsRow, "worker-stats.csv")
    return WorkerStatsPublic(data=rows, count=len(rows))


def _csv(request: Request, session: Session, actor: Actor, rows: list[dict],
         model: type[BaseModel], filename: str) -> Response:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(model.model_fields))
    writer.writeheader()
    writer.writerows({k: " ".join(v) if isinstance(v, list) else v for k, v in row.items()}
                     for row in rows)
    audit.record(session, "export", username=actor.username, address=client_address(request),
                 target=f"GET {request.url.path}", detail={"format": "csv", "rows": len(rows)})
    session.commit()
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
