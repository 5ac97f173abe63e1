from typing import Annotated

from fastapi import APIRouter, Body, Header, Path, Request, Response

from api.deps import CurrentActor, Reader, SessionDep
from api.geojson import feature
from api.intake import IntakeDep, IntakeRoute
from api.issue_schemas import (
    HistoryEvent,
    IssueCreate,
    IssueCreated,
    IssueFeatureCreate,
    IssueInput,
    TransitionCreate,
)
from api.routes.issues_read import record_reveal
from api.routes.photos import link_photos
from gis.errors import GridMapError
from gis.issues import reporting, workflow
from gis.people.privacy import contains_personal
from gis.queries import reads
from gis.rules import TRANSITIONS

router = APIRouter(prefix="/api/v1/issues", tags=["issues"])
IssueId = Annotated[int, Path(ge=1, description="Issue id")]


async def report_issue(
    request: Request, intake: IntakeDep,
    body: Annotated[IssueInput, Body(description="Plain fields or a GeoJSON Point Feature")],
    idempotency_key: Annotated[str | None, Header(max_length=255, description=(
        "Any unique string per report (a UUID is best); the same key returns the same issue"))] = None,
) -> Response:
    """The intake's hot path, on the event loop: the report joins the process's next batch
    (:mod:`api.intake`) and is answered once that batch committed."""
    data: IssueCreate = body.to_create() if isinstance(body, IssueFeatureCreate) else body
    try:
        report: reporting.IssueReport | GridMapError = reporting.IssueReport(
            x=data.lon, y=data.lat, crs=data.crs, category=data.category,
            description=data.description, reporter_contact=data.reporter_contact,
            facility_id=data.facility_id, photo_urls=[str(u) for u in data.photo_urls],
            channel=data.channel,
            client_uuid=reporting.key_to_uuid(idempotency_key) if idempotency_key else data.client_uuid,
            location_from_photo=data.location_from_photo, urgency=data.urgency)
    except GridMapError as refused:  # heard only by a caller who may report
        report = refused
    answer = await intake.report(request, report)
    request.state.actor = answer.actor
    if isinstance(answer.outcome, Exception):
        raise answer.outcome
    issue = feature(link_photos(request, [answer.row])[0])
    # Validated here and sent as it is: FastAPI would validate it again.
    created = IssueCreated(**issue, possible_duplicates=answer.nearby)
    return Response(created.model_dump_json(), status_code=201 if answer.outcome.created else 200,
                    media_type="application/json")


router.add_api_route(
    "", report_issue, methods=["POST"], status_code=201, response_model=IssueCreated,
    summary="Report an issue; retries with the same key are safe",
    responses={200: {"description": "Replay: the issue stored earlier under this key"}},
    route_class_override=IntakeRoute)


@router.post("/{issue_id}/transitions", summary="Move an issue through the workflow")
def transition(issue_id: IssueId, body: TransitionCreate, session: SessionDep,
               actor: CurrentActor) -> dict:
    previous = workflow.transition(session, actor, issue_id, body.to, body.note)
    session.commit()
    return {"id": issue_id, "from": previous, "to": body.to,
            "allowed_next": list(TRANSITIONS[body.to])}


@router.get("/{issue_id}/history", summary="The audit trail of an issue")
def history(request: Request, issue_id: IssueId, session: SessionDep,
            actor: Reader) -> list[HistoryEvent]:
    """The steps of a case, for those who may read it; notes are masked like descriptions."""
    _, personal, _ = reads.get_issue(session, actor, issue_id,
                                     public_read=request.app.state.settings.public_read)
    events = workflow.history(session, issue_id, personal=personal)
    if personal and any(contains_personal(e["note"]) for e in events):
        record_reveal(request, session, actor, [issue_id])
    return [HistoryEvent(**e) for e in events]
