"""Evaluation statistics for leaders and admins, as JSON or as CSV for spreadsheets."""

import csv
import io
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel

from api.deps import CurrentActor, SessionDep
from api.routes.issues_read import IssueFilters
from api.schemas import GridStatsPublic, GridStatsRow, TimelinePublic, TimelineRow
from gis.queries import statistics

router = APIRouter(prefix="/api/v1/stats", tags=["statistics"])

Format = Annotated[Literal["json", "csv"], Query(
    description="`csv` for a spreadsheet (UTF-8 with BOM, so Excel shows Chinese)")]
_CSV = {200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with `format=csv`"}}


@router.get("/grids", summary="Per-grid counts, on-time closure rate, median time to close",
            response_model=GridStatsPublic, responses=_CSV)
def grid_stats(session: SessionDep, actor: CurrentActor, filters: IssueFilters,
               format: Format = "json"):
    """Leaders and admins. Issues are selected by the same filters as `GET /api/v1/issues`."""
    rows, unassigned = statistics.grid_stats(session, actor, filters)
    if format == "csv":
        return _csv(rows, GridStatsRow, "grid-stats.csv")
    return GridStatsPublic(data=rows, count=len(rows), unassigned=unassigned)


@router.get("/timeline", summary="Issue counts and rates per day, week or month of report",
            response_model=TimelinePublic, responses=_CSV)
def timeline(session: SessionDep, actor: CurrentActor, filters: IssueFilters,
             bucket: Annotated[Literal["day", "week", "month"], Query(
                 description="Bucket of report time (Beijing time; weeks start on Monday)")] = "week",
             format: Format = "json"):
    rows = statistics.timeline(session, actor, filters, bucket)
    if format == "csv":
        return _csv(rows, TimelineRow, f"timeline-{bucket}.csv")
    return TimelinePublic(bucket=bucket, data=rows, count=len(rows))


def _csv(rows: list[dict], model: type[BaseModel], filename: str) -> Response:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(model.model_fields))
    writer.writeheader()
    writer.writerows(rows)
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
