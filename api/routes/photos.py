"""Photos of cases: the upload (multipart, one photo, idempotent per key), and the photo and its
thumbnail served to those who may read the case. The checks, the cleaning and the storing are
``gis.issues.photos`` and ``gis.media``'s; this module speaks HTTP."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Header, Path, Request, Response, UploadFile
from sqlalchemy.orm import Session

from api.deps import CurrentActor, Reader, SessionDep
from api.issue_schemas import PhotoPublic
from api.settings import Settings
from gis.issues import photos
from gis.media.photos import MEDIA_TYPE
from gis.people.actors import Actor
from gis.queries.filters import local_time
from gis.rules import PHOTO_KINDS

router = APIRouter(tags=["photos"])

# The upload's path, which the body size limit lets carry a photo of the largest size taken
# (GRIDMAP_MEDIA_MAX_BYTES) and the form's other fields (api.limits.BodySizeLimit).
# (The photos of a case, and of a facility check: api.routes.field.)
UPLOAD_PATH = re.compile(r"/api/v1/(issues|facility-checks)/[^/]+/photos")
FORM_ALLOWANCE = 64 * 1024
# A photo never changes under its URL: browsers may keep it, shared caches may not.
CACHE_CONTROL = "private, max-age=86400"
PHOTO_ANSWER = {200: {"content": {MEDIA_TYPE: {}},
                      "description": "The photo as a JPEG without metadata"},
                304: {"description": "Not modified (If-None-Match)"}}


def upload_limit(settings: Settings) -> int:
    """The largest request body taken by the upload path."""
    return max(settings.max_body_bytes, settings.media.max_bytes + FORM_ALLOWANCE)


@router.post("/api/v1/issues/{issue_id}/photos", status_code=201,
             summary="Add a photo to a case (JPEG, PNG or WebP; stored without metadata)",
             responses={200: {"description": "Replay: the photo stored earlier under this key"},
                        413: {"description": "The photo is larger than the limit"}})
def add_photo(
    request: Request, response: Response, session: SessionDep, actor: CurrentActor,
    issue_id: Annotated[int, Path(ge=1, le=2_147_483_647, description="Issue id")],
    photo: Annotated[UploadFile, File(description=(
        "The photo: JPEG, PNG or WebP by its content. Its GPS position locates a report sent "
        "with location_from_photo; it is then removed with every other piece of metadata."))],
    kind: Annotated[Literal[PHOTO_KINDS], Form(description=(
        "report (the problem as reported), before or after a fix"))] = "report",
    taken_at: Annotated[datetime | None, Form(description=(
        "When it was taken (ISO 8601; without an offset: Beijing time); else the photo's EXIF "
        "DateTimeOriginal"))] = None,
    idempotency_key: Annotated[str | None, Header(max_length=255, description=(
        "Unique per photo (a UUID is best): the same key for the same case returns the photo "
        "stored under it"))] = None,
) -> PhotoPublic:
    """Who may add one: whoever may act on the case, and its reporter (photos as reported)."""
    media = request.app.state.settings.media
    upload = photos.PhotoUpload(photo.file.read(media.max_bytes + 1), kind, local_time(taken_at),
                                idempotency_key)
    added = photos.add_photo(session, request.app.state.grid_cache, request.app.state.media,
                             actor, issue_id, upload, media.limits())
    session.commit()
    if not added.created:
        response.status_code = 200
    row = photos.photo_row(session, added.photo_id)
    row.pop("facility_check_id")
    return PhotoPublic(**row, **photo_links(request, row["id"]), located=added.located)


@router.get("/api/v1/photos/{photo_id}", name="photo", response_class=Response,
            summary="A photo of a case (for those who may read the case)", responses=PHOTO_ANSWER)
def serve_photo(request: Request, session: SessionDep, actor: Reader,
                photo_id: Annotated[int, Path(ge=1, le=2_147_483_647)]) -> Response:
    stored = _stored(request, session, actor, photo_id)
    return _serve(request, stored.content_key)


@router.get("/api/v1/photos/{photo_id}/thumbnail", name="photo_thumbnail",
            response_class=Response, summary="A photo's thumbnail (at most 320 px)",
            responses=PHOTO_ANSWER)
def serve_thumbnail(request: Request, session: SessionDep, actor: Reader,
                    photo_id: Annotated[int, Path(ge=1, le=2_147_483_647)]) -> Response:
    stored = _stored(request, session, actor, photo_id)
    return _serve(request, stored.thumbnail_key)


def _stored(request: Request, session: Session, actor: Actor | None,
            photo_id: int) -> photos.StoredPhoto:
    return photos.stored_photo(session, actor, photo_id,
                               public_read=request.app.state.settings.public_read)


def _serve(request: Request, key: str) -> Response:
    headers = {"Cache-Control": CACHE_CONTROL, "X-Content-Type-Options": "nosniff",
               "ETag": f'"{key}"'}
    if f'"{key}"' in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    with request.app.state.media.open(key) as stored:
        return Response(stored.read(), media_type=MEDIA_TYPE, headers=headers)


# -- links, for the doors that list a case's photos ---------------------------------------------
def photo_links(request: Request, photo_id: int) -> dict[str, str]:
    return {"url": str(request.url_for("photo", photo_id=photo_id)),
            "thumbnail_url": str(request.url_for("photo_thumbnail", photo_id=photo_id))}


def photo_url(request: Request, photo_id: int) -> str:
    return photo_links(request, photo_id)["url"]


def link_photos(request: Request, rows: list[dict]) -> list[dict]:
    """The rows of the issue read model with each photo's URLs (``photos``: id, kind, taken_at,
    width, height -> with url and thumbnail_url)."""
    for row in rows:
        if "photos" in row:
            row["photos"] = [{"id": p["id"], **photo_links(request, p["id"]), "kind": p["kind"],
                              "taken_at": p["taken_at"], "width": p["width"],
                              "height": p["height"]} for p in row["photos"] or []]
    return rows
