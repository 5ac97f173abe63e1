"""Work on site, for the grid worker's tablet: 核实 (verify), 核查 (check), 自处理 (resolve at
once), facility checks and their photos, my tasks, and the duplicates of a report about to be
sent. The rules are ``gis.issues.field``'s, ``gis.issues.duplicates``' and
``gis.queries.reads.list_tasks``'; this module speaks HTTP.

Every write takes an optional ``Idempotency-Key`` header: sent again with the same key (a tablet
retrying after a lost answer), the action is not done twice and the answer is the first one's
(200); the same key for another action is a 409.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, Header, Path, Query, Request, Response, UploadFile

from api.deps import CurrentActor, IssueId, SessionDep
from api.field_schemas import (
    CheckCreate,
    CheckPhotoPublic,
    DuplicatePublic,
    FacilityCheckCreate,
    FacilityCheckPublic,
    MovePublic,
    SelfResolveCreate,
    TasksPublic,
    VerifyCreate,
)
from api.geojson import feature
from api.routes.issues_read import record_reveal
from api.routes.photos import link_photos, photo_links
from gis.issues import duplicates, field, photos
from gis.queries import reads
from gis.queries.filters import local_time

router = APIRouter(prefix="/api/v1", tags=["work on site"])
IdempotencyKey = Annotated[str | None, Header(max_length=255, description=(
    "Unique per action (a UUID is best): the same key again returns the first answer"))]
_MOVE_ERRORS = {409: {"description": "The case is not in the status the action is for, or the "
                                     "key was used for another action"},
                422: {"description": "A reason or a photo is missing"}}


def _moved(result: field.Moved) -> MovePublic:
    return MovePublic(id=result.issue_id, from_=result.from_status, to=result.to_status,
                      allowed_next=list(result.allowed_next), replayed=result.replayed)


@router.post("/issues/{issue_id}/verify", summary="核实: a report checked on site, valid or not",
             responses=_MOVE_ERRORS)
def verify(issue_id: IssueId, body: VerifyCreate, session: SessionDep, actor: CurrentActor,
           idempotency_key: IdempotencyKey = None) -> MovePublic:
    """For a case in `reported`: valid -> `accepted`, not valid -> `rejected` (with a reason)."""
    moved = field.verify(session, actor, issue_id, body.valid, body.reason, idempotency_key)
    session.commit()
    return _moved(moved)


@router.post("/issues/{issue_id}/check", summary="核查: a fix checked on site, passed or not",
             responses=_MOVE_ERRORS)
def check(issue_id: IssueId, body: CheckCreate, session: SessionDep, actor: CurrentActor,
          idempotency_key: IdempotencyKey = None) -> MovePublic:
    """For a case in `resolved`: passed -> `closed`; failed -> `reopened` (返工), once a photo
    of kind `after` was uploaded since it was resolved (else 422 `after_photo_required`)."""
    moved = field.check(session, actor, issue_id, body.passed, body.note, idempotency_key)
    session.commit()
    return _moved(moved)


@router.post("/issues/{issue_id}/self-resolve", summary="自处理: reported and closed on site at once",
             responses=_MOVE_ERRORS)
def self_resolve(issue_id: IssueId, body: SelfResolveCreate, session: SessionDep,
                 actor: CurrentActor, idempotency_key: IdempotencyKey = None) -> MovePublic:
    """For a case in `reported` with a `before` and an `after` photo (else 422
    `photo_required`): `closed` in one step, counted apart (`self_resolved`)."""
    moved = field.self_resolve(session, actor, issue_id, body.note, idempotency_key)
    session.commit()
    return _moved(moved)


@router.post("/facilities/{facility_id}/checks", status_code=201,
             summary="部件巡检: a facility found ok, damaged or missing",
             responses={200: {"description": "Replay: the check stored earlier under this key"}})
def check_facility(
    request: Request, response: Response, session: SessionDep, actor: CurrentActor,
    facility_id: Annotated[int, Path(ge=1, le=2_147_483_647, description="Facility id")],
    body: FacilityCheckCreate, idempotency_key: IdempotencyKey = None,
) -> FacilityCheckPublic:
    """The facility's status becomes the result; damaged or missing opens a case at the
    facility (or joins the case of that category already open for it). Whoever may change
    facilities in its grid."""
    checked = field.check_facility(session, request.app.state.grid_cache, actor, facility_id,
                                   body.result, body.note, body.category, idempotency_key)
    session.commit()
    if not checked.created:
        response.status_code = 200
    return FacilityCheckPublic(
        id=checked.id, facility_id=checked.facility_id, result=checked.result,
        issue_id=checked.issue_id, issue_created=checked.issue_created,
        checked_at=checked.checked_at, facility_status=checked.facility_status)


@router.post("/facility-checks/{check_id}/photos", status_code=201,
             summary="Add a photo to a facility check (and to the case it opened)",
             responses={200: {"description": "Replay: the photo stored earlier under this key"},
                        413: {"description": "The photo is larger than the limit"}})
def add_check_photo(
    request: Request, response: Response, session: SessionDep, actor: CurrentActor,
    check_id: Annotated[int, Path(ge=1, le=2_147_483_647, description="Facility check id")],
    photo: Annotated[UploadFile, File(description="The photo: JPEG, PNG or WebP; stored "
                                                  "without any metadata")],
    taken_at: Annotated[datetime | None, Form(description=(
        "When it was taken (ISO 8601; without an offset: Beijing time); else its EXIF"))] = None,
    idempotency_key: IdempotencyKey = None,
) -> CheckPhotoPublic:
    """By whoever made the check or may change facilities in its grid."""
    media = request.app.state.settings.media
    upload = photos.PhotoUpload(photo.file.read(media.max_bytes + 1), "report",
                                local_time(taken_at), idempotency_key)
    added = photos.add_check_photo(session, request.app.state.media, actor, check_id, upload,
                                   media.limits())
    session.commit()
    if not added.created:
        response.status_code = 200
    row = photos.photo_row(session, added.photo_id)
    return CheckPhotoPublic(**row, **photo_links(request, row["id"]))


@router.get("/me/tasks", summary="我的任务: the open cases the caller may act on",
            responses={200: {"model": TasksPublic}}, response_model=None)
def my_tasks(
    request: Request, session: SessionDep, actor: CurrentActor,
    lon: Annotated[float | None, Query(ge=-180, le=180, description="Where the caller is "
                                       "(WGS84), for distance_m and the order")] = None,
    lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
) -> dict:
    """A worker's: open cases in the grids they hold; everyone else's: open cases in their
    scope (at most 500). Overdue first, then by due time, then nearest, then by id; each with
    the action it waits for (`verify`, `check` or null)."""
    page = reads.list_tasks(session, actor, lon, lat)
    record_reveal(request, session, actor, page.revealed)
    return {"type": "FeatureCollection", "features": [
        feature(row) for row in link_photos(request, page.items)],
        "numberMatched": page.total, "numberReturned": len(page.items), "links": []}


@router.get("/issues/duplicates", summary="Possible duplicates of a report about to be sent")
def duplicates_near(
    session: SessionDep, actor: CurrentActor,
    lon: Annotated[float, Query(description="Longitude, or easting for a projected EPSG CRS")],
    lat: Annotated[float, Query(description="Latitude, or northing for a projected EPSG CRS")],
    category: Annotated[str, Query(max_length=32, description="The report's issue category")],
    crs: Annotated[str, Query(max_length=32, description=(
        "wgs84 | cgcs2000 | gcj02 | bd09 | EPSG:nnnn"))] = "wgs84",
) -> list[DuplicatePublic]:
    """Open cases of the category within 30 m reported in the last 48 h, nearest first, of those
    the caller may read: the rule of a stored report's `possible_duplicates`."""
    found = duplicates.duplicates_near(session, actor, category, lon, lat, crs)
    return [DuplicatePublic(**row) for row in found]
