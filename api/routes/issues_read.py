"""Reading issues (事件): the list with filters, and one issue. Reports and transitions are elsewhere."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from api.deps import BBoxDep, Limit, Offset, OptionalActor, SessionDep
from api.geojson import feature, feature_collection
from api.schemas import DayOrInstant, IssuePublic, IssuesPublic, IssueStatusFilter
from gis.queries import reads
from gis.queries.filters import IssueFilter

router = APIRouter(prefix="/api/v1/issues", tags=["issues"])


def issue_filters(
    bbox: BBoxDep,
    grid: Annotated[str | None, Query(description="Grid code (15 digits); every version counts")] = None,
    community: Annotated[str | None, Query(description="Community name or code")] = None,
    category: Annotated[list[str] | None, Query(
        description="Issue category code (see /api/v1/categories); repeat for several")] = None,
    status: Annotated[list[IssueStatusFilter] | None, Query(
        description="Workflow status, or `open` for all but closed and rejected, or `final` for "
                    "closed and rejected; repeat for several",
    )] = None,
    since: Annotated[DayOrInstant | None, Query(
        description="Reported at or after: a day (from its start) or an instant (ISO 8601; "
                    "without an offset: Beijing time)",
        examples=["2025-03-01"])] = None,
    until: Annotated[DayOrInstant | None, Query(
        description="Reported at or before: a day (to its end, inclusive) or an instant "
                    "(ISO 8601; without an offset: Beijing time)")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text the description contains")] = None,
) -> IssueFilter:
    return IssueFilter(bbox=bbox, grid=grid, community=community, categories=tuple(category or ()),
                       statuses=tuple(status or ()), since=since, until=until, q=q)


IssueFilters = Annotated[IssueFilter, Depends(issue_filters)]


@router.get("", summary="Issues as a GeoJSON FeatureCollection, newest first",
            responses={200: {"model": IssuesPublic}}, response_model=None)
def list_issues(request: Request, session: SessionDep, actor: OptionalActor, filters: IssueFilters,
                limit: Limit = 100, offset: Offset = 0) -> dict:
    """Everyone may read issues; `reporter_contact` and `client_uuid` (personal) only the grid's
    worker, leaders and admins."""
    page = reads.list_issues(session, actor, filters, limit=limit, offset=offset)
    return feature_collection(page.items, page.total, request, limit, offset)


@router.get("/{issue_id}", summary="One issue as a GeoJSON Feature",
            responses={200: {"model": IssuePublic}}, response_model=None)
def get_issue(session: SessionDep, actor: OptionalActor,
              issue_id: Annotated[int, Path(description="Issue id")]) -> dict:
    return feature(reads.get_issue(session, actor, issue_id))
