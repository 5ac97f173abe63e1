"""Reading issues (事件): the list with filters, and one issue. Reports and transitions are elsewhere."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from api.deps import BBoxDep, Limit, Offset, Reader, SessionDep, client_address
from api.geojson import feature, feature_collection
from api.routes.photos import link_photos
from api.schemas import DayOrInstant, IssuePublic, IssuesPublic, IssueStatusFilter
from gis.people import audit
from gis.people.actors import Actor
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
def list_issues(request: Request, session: SessionDep, actor: Reader, filters: IssueFilters,
                limit: Limit = 100, offset: Offset = 0) -> dict:
    """The issues in the caller's scope (docs/ARCHITECTURE.md, "People and scopes"); personal data
    (`reporter_contact`, `client_uuid`, phone and ID-card numbers in the description) only for
    cases the caller may act on, masked otherwise. Reads that reveal personal data are audited."""
    page = reads.list_issues(session, actor, filters, limit=limit, offset=offset,
                             public_read=request.app.state.settings.public_read)
    record_reveal(request, session, actor, page.revealed)
    return feature_collection(link_photos(request, page.items), page.total, request, limit, offset)


@router.get("/{issue_id}", summary="One issue as a GeoJSON Feature",
            responses={200: {"model": IssuePublic}}, response_model=None)
def get_issue(request: Request, session: SessionDep, actor: Reader,
              issue_id: Annotated[int, Path(description="Issue id")]) -> dict:
    row, _, revealed = reads.get_issue(session, actor, issue_id,
                                    public_read=request.app.state.settings.public_read)
    record_reveal(request, session, actor, [issue_id] if revealed else [])
    return feature(link_photos(request, [row])[0])


def record_reveal(request: Request, session, actor: Actor | None, issue_ids: list[int]) -> None:
    """An audit entry for a read that showed personal data (which cases, never what they said)."""
    if actor is None or not issue_ids:
        return
    audit.record(session, "read_personal", username=actor.username, address=client_address(request),
                 target=f"{request.method} {request.url.path}",
                 detail={"issues": issue_ids[:500], "count": len(issue_ids)})
    session.commit()
