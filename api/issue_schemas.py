"""Request and response models of issue reporting and the workflow."""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    HttpUrl,
    Tag,
    ValidationError,
    field_validator,
)

from gis.rules import EVENT_KINDS, PHOTO_KINDS, TRANSITION_TARGETS, URGENCIES

Text = Annotated[str, Field(max_length=2000)]


class IssueCreate(BaseModel):
    """A report as plain fields. ``lon``/``lat`` are in ``crs`` (easting/northing for projected
    EPSG)."""

    model_config = ConfigDict(extra="forbid")

    lon: float = Field(description="Longitude (or easting) in `crs`")
    lat: float = Field(description="Latitude (or northing) in `crs`")
    location_from_photo: bool = Field(False, description=(
        "true: lon and lat may be left out (IssueCreateFromPhoto)"))
    crs: str = Field("wgs84", max_length=32, description="wgs84 | cgcs2000 | gcj02 | bd09 | EPSG:nnnn")
    category: str = Field(max_length=32, description="An issue category code, see /api/v1/categories")
    description: Text = ""
    reporter_contact: str | None = Field(None, max_length=200, description="Personal data: shown "
                                         "only to the grid's worker, leaders and admins")
    facility_id: int | None = Field(None, ge=1, description="The facility concerned, if known")
    photo_urls: list[HttpUrl] = Field(default_factory=list, max_length=10)
    channel: Literal["app", "worker", "hotline_12345", "wechat", "open311"] = "app"
    client_uuid: uuid.UUID | None = Field(None, description="Idempotency key (or the header)")
    urgency: Literal[URGENCIES] = Field("normal", description=(
        "紧急 urgent or 一般 normal: which time limits of the category apply"))

    @field_validator("lon", "lat")
    @classmethod
    def _finite(cls, v: float, info) -> float:
        if not math.isfinite(v):
            raise ValueError(f"{info.field_name} must be a finite number, got {v}")
        return v


class IssueCreateFromPhoto(IssueCreate):
    """A report that takes its location from its first photo: sent without lon/lat, it waits
    for the first photo uploaded with a GPS position (POST /api/v1/issues/{id}/photos), which
    gives it its place and grid. With lon/lat the coordinates are used."""

    lon: float | None = Field(None, description="Longitude (or easting) in `crs`, if known")
    lat: float | None = Field(None, description="Latitude (or northing) in `crs`, if known")
    location_from_photo: Literal[True] = Field(description=(
        "The location comes from the first photo's GPS position (EXIF)"))

    @field_validator("lon", "lat")
    @classmethod
    def _finite(cls, v: float | None, info) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError(f"{info.field_name} must be a finite number, got {v}")
        return v


class PointGeometry(BaseModel):
    type: Literal["Point"]
    coordinates: Annotated[list[float], Field(min_length=2, max_length=3)]


class IssueFeatureCreate(BaseModel):
    """A report as a GeoJSON Feature whose properties are the fields of IssueCreate; its
    geometry may be null only with ``properties.location_from_photo``."""

    type: Literal["Feature"]
    geometry: PointGeometry | None
    properties: dict[str, Any] = Field(default_factory=dict)

    def to_create(self) -> IssueCreate:
        """The plain fields; a problem in them is the request's validation error (422), named
        where the caller put the field (``geometry.coordinates`` or ``properties.<name>``)."""
        coordinates = dict(zip(("lon", "lat"), self.geometry.coordinates[:2], strict=True)) \
            if self.geometry else {}
        model = IssueCreateFromPhoto if _from_photo(self.properties) else IssueCreate
        try:
            return model.model_validate({**self.properties, **coordinates})
        except ValidationError as exc:
            raise RequestValidationError([
                {**e, "loc": ("body", "geometry", "coordinates") if e["loc"][:1] in (("lon",), ("lat",))
                 else ("body", "properties", *e["loc"])} for e in exc.errors()]) from exc


class Duplicate(BaseModel):
    id: int
    status: str
    reported_at: datetime
    distance_m: float


class IssueCreated(BaseModel):
    """The stored issue as a GeoJSON Feature, plus nearby open reports of the same category."""

    type: Literal["Feature"] = "Feature"
    id: int
    geometry: dict | None = Field(description="The location; null while a report waits for its "
                                  "photo's GPS position")
    properties: dict
    possible_duplicates: list[Duplicate]


class PhotoLink(BaseModel):
    """A photo of a case as issues list it: where to fetch it and its thumbnail (for those who
    may read the case), what it shows and when it was taken."""

    id: int
    url: str
    thumbnail_url: str
    kind: Literal[PHOTO_KINDS] = Field(description="report (as reported), before or after a fix")
    taken_at: datetime | None
    width: int
    height: int


class PhotoPublic(PhotoLink):
    """A stored photo, as its upload is answered."""

    issue_id: int
    bytes: int
    uploaded_at: datetime
    located: bool = Field(description="This photo's GPS position gave the report its location")


class TransitionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Literal[TRANSITION_TARGETS] = Field(description="The status to move to")
    note: Annotated[str, Field(max_length=2000)] | None = None


class HistoryEvent(BaseModel):
    """One entry of a case's history: a move (``to_status``) or, with ``to_status`` null, an
    entry that leaves the status (an extension asked for or decided, a supervision notice and
    its reply). ``actor`` null: the resident, or the system (an automatic dispatch)."""

    id: int
    at: datetime
    actor: str | None
    from_status: str | None
    to_status: str | None
    note: str | None
    kind: Literal[EVENT_KINDS] = Field(description="move, dispatch, return, hold, resume, "
                                       "extension_request|approved|refused, supervise, supervision_reply")
    department: str | None = Field(None, description="The department dispatched to, returning, "
                                   "asking or noticed")
    department_name: str | None = None
    details: dict | None = Field(None, description="dispatch: auto, rule, worker; extension: "
                                 "value, unit, due_before, due_after; resume: due_before, due_after")


def _shape(value) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if kind == "Feature":
        return "feature"
    return "from_photo" if _from_photo(value) else "plain"


def _from_photo(value) -> bool:
    flag = value.get("location_from_photo") if isinstance(value, dict) else \
        getattr(value, "location_from_photo", None)
    return flag is True


# One body, told apart by "type": "Feature" and "location_from_photo": true (so that errors
# speak of one shape only: a plain report without lat hears that lat is missing).
IssueInput = Annotated[
    Annotated[IssueCreate, Tag("plain")] | Annotated[IssueCreateFromPhoto, Tag("from_photo")]
    | Annotated[IssueFeatureCreate, Tag("feature")],
    Discriminator(_shape),
]
