"""Request and response models of the read, edit and statistics endpoints.

Bodies that carry a geometry accept either a GeoJSON Feature (attributes in ``properties``) or the
geometry beside the attributes; ``crs`` names the coordinate system of the geometry (WGS84 when
absent). The geometry itself is checked in ``gis.edit.writes`` so every caller gets the same messages.

The GeoJSON response models (``XPublic``/``XsPublic``) document what ``api.geojson`` writes; the
tests validate real responses against them so the documentation cannot drift.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from api.issue_schemas import PhotoLink
from gis.geo.grid_index import METHODS
from gis.rules import (
    FACILITY_STATUSES,
    ISSUE_STATUSES,
    LIMIT_UNITS,
    LOCATION_SOURCES,
    STATUS_GROUPS,
    URGENCIES,
)

# The vocabulary of gis.rules as wire types (Literal[tuple] lists each value).
FacilityStatus = Literal[FACILITY_STATUSES]
IssueStatus = Literal[ISSUE_STATUSES]
# "open": every status but closed and rejected; "final": closed and rejected (gis.rules.STATUS_GROUPS)
IssueStatusFilter = Literal[(*ISSUE_STATUSES, *STATUS_GROUPS)]
Assignment = Literal[METHODS]
LocationSource = Literal[LOCATION_SOURCES]
Urgency = Literal[URGENCIES]
LimitUnit = Literal[LIMIT_UNITS]


def _day_or_instant(value: Any) -> Any:
    """``YYYY-MM-DD`` is a day; anything longer an instant. Pydantic alone would read
    ``2025-03-01T00:00:00Z`` as a day too (a date accepts a midnight date-time), and a day and
    an instant mean different ``until`` bounds."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    kind = "date" if len(text) == 10 else "datetime"
    try:
        return date.fromisoformat(text) if kind == "date" else datetime.fromisoformat(text)
    except ValueError as exc:
        raise PydanticCustomError(f"{kind}_parsing", "Input should be a valid {kind} "
                                  "(ISO 8601: 2025-03-01 or 2025-03-01T08:00:00+08:00), {error}",
                                  {"kind": kind, "error": str(exc)}) from exc


# A day (a whole Beijing day) or an instant (Beijing time when it has no offset).
DayOrInstant = Annotated[date | datetime, BeforeValidator(_day_or_instant)]

_GEOMETRY = ("A GeoJSON geometry, lon/lat order. In WGS84 unless `crs` says otherwise "
             "(wgs84, cgcs2000, gcj02, bd09 or EPSG:nnnn).")
_CRS = "Coordinate system of `geometry`: wgs84 (default), cgcs2000, gcj02, bd09 or EPSG:nnnn"


# --- request bodies ---------------------------------------------------------------------------

class _GeometryBody(BaseModel):
    """Accepts ``{"type": "Feature", "geometry": ..., "properties": {...}}`` as well as flat JSON."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _flatten_feature(cls, data: Any) -> Any:
        if not (isinstance(data, dict) and data.get("type") == "Feature"):
            return data
        props = data.get("properties") or {}
        # Exported features carry read-only properties (grid_code, ...): keep the editable ones.
        flat = {k: v for k, v in props.items() if k in cls.model_fields and k != "geometry"}
        flat["geometry"] = data.get("geometry")
        crs = data.get("crs", props.get("crs"))
        if isinstance(crs, dict):  # the named CRS member of pre-RFC 7946 GeoJSON
            crs = (crs.get("properties") or {}).get("name")
        if crs is not None:
            flat["crs"] = crs
        return flat


class FacilityCreate(_GeometryBody):
    geometry: dict[str, Any] = Field(description=_GEOMETRY + " A Point.",
                                     examples=[{"type": "Point", "coordinates": [112.858, 36.843]}])
    crs: str = Field("wgs84", description=_CRS)
    category: str = Field(description="Facility category code (see /api/v1/categories)",
                          examples=["streetlight"])
    code: str | None = Field(None, pattern=r"^\d{16}$", description="16-digit facility (部件) code")
    name: str | None = Field(None, max_length=100)
    status: FacilityStatus = "ok"
    install_date: date | None = None
    owner: str | None = Field(None, max_length=100)
    maintainer: str | None = Field(None, max_length=100)
    props: dict[str, Any] = Field(default_factory=dict, description="Further attributes")


class FacilityUpdate(_GeometryBody):
    """Only the fields sent change. A new geometry moves the facility and re-tags its grid."""

    geometry: dict[str, Any] | None = Field(None, description=_GEOMETRY + " A Point.")
    crs: str = Field("wgs84", description=_CRS)
    category: str | None = None
    code: str | None = Field(None, pattern=r"^\d{16}$")
    name: str | None = Field(None, max_length=100)
    status: FacilityStatus | None = Field(None, description="ok | damaged | missing | repairing")
    install_date: date | None = None
    owner: str | None = Field(None, max_length=100)
    maintainer: str | None = Field(None, max_length=100)
    props: dict[str, Any] | None = None


class BuildingCreate(_GeometryBody):
    geometry: dict[str, Any] = Field(description=_GEOMETRY + " A Polygon.")
    crs: str = Field("wgs84", description=_CRS)
    name: str = Field(max_length=100, examples=["3号楼"])
    compound: str | None = Field(None, description="Name of an existing compound (院落/小区)")
    floors: int | None = Field(None, ge=1, le=200)
    households: int = Field(0, ge=0)
    party_households: int = Field(0, ge=0, description="Party-member households (党员户)")


class BuildingUpdate(_GeometryBody):
    """Only the fields sent change. A new outline re-tags the building with its grid."""

    geometry: dict[str, Any] | None = Field(None, description=_GEOMETRY + " A Polygon.")
    crs: str = Field("wgs84", description=_CRS)
    name: str | None = Field(None, max_length=100)
    compound: str | None = None
    floors: int | None = Field(None, ge=1, le=200)
    households: int | None = Field(None, ge=0)
    party_households: int | None = Field(None, ge=0)


class GridCreate(_GeometryBody):
    code: str = Field(pattern=r"^\d{15}$", description="15-digit grid code",
                      examples=["140429100001015"])
    name: str = Field(max_length=100)
    community: str = Field(description="Name or code of an existing community")
    geometry: dict[str, Any] = Field(description=_GEOMETRY + " A Polygon or MultiPolygon.")
    crs: str = Field("wgs84", description=_CRS)
    households: int = Field(0, ge=0)
    population: int = Field(0, ge=0)
    worker: str | None = Field(None, description="Username of the grid worker to assign")


class GridUpdate(_GeometryBody):
    """A redraw: the current version is closed and this becomes the next version."""

    geometry: dict[str, Any] = Field(description=_GEOMETRY + " A Polygon or MultiPolygon.")
    crs: str = Field("wgs84", description=_CRS)
    name: str | None = Field(None, max_length=100, description="New name; unchanged when absent")
    households: int | None = Field(None, ge=0)
    population: int | None = Field(None, ge=0)


def _max_vertices(request: Request) -> int:
    return request.app.state.settings.max_vertices


MaxVertices = Annotated[int, Depends(_max_vertices)]


# --- GeoJSON responses ------------------------------------------------------------------------

P = TypeVar("P")
F = TypeVar("F")


class GeometryPublic(BaseModel):
    type: str
    coordinates: list[Any]


class Link(BaseModel):
    rel: Literal["next", "prev"]
    href: str
    type: str


class FeaturePublic(BaseModel, Generic[P]):
    type: Literal["Feature"]
    id: int | str | None
    geometry: GeometryPublic
    properties: P


class FeatureCollectionPublic(BaseModel, Generic[F]):
    type: Literal["FeatureCollection"]
    features: list[F]
    numberMatched: int = Field(description="Items matching the filters, over all pages")
    numberReturned: int
    links: list[Link] = Field(description="`next` and `prev` pages")


class GridProperties(BaseModel):
    id: int
    code: str
    name: str
    community: str
    community_code: str
    households: int
    population: int
    version: int
    valid_from: datetime
    worker: str | None = Field(description="Username of the grid worker")


class GridDetailProperties(GridProperties):
    worker_display_name: str | None
    open_issues: int | None = Field(description=(
        "Issues neither closed nor rejected, of those the caller may read (null without a log-in)"))
    overdue_issues: int | None
    open_issues_by_status: dict[str, int] | None
    facilities_by_status: dict[FacilityStatus, int]


class BuildingProperties(BaseModel):
    id: int
    name: str
    compound: str | None
    floors: int | None
    households: int
    party_households: int
    grid_code: str | None


class FacilityProperties(BaseModel):
    id: int
    code: str | None
    category: str
    category_zh: str
    category_en: str
    name: str | None
    status: FacilityStatus
    grid_code: str | None
    assignment: Assignment
    install_date: date | None
    owner: str | None
    maintainer: str | None
    props: dict[str, Any]
    updated_at: datetime


class StepDeadline(BaseModel):
    started_at: datetime
    due_at: datetime | None = Field(description="null: the category sets no limit for the step")
    done_at: datetime | None = Field(description="null while the step runs")
    overdue: bool = Field(description="Running and past its deadline")
    late: bool = Field(description="Done after its deadline")


class StepDeadlines(BaseModel):
    """The latest run of each step of a case (a reworked case handles twice: the second)."""

    accept: StepDeadline | None = None
    dispatch: StepDeadline | None = None
    handle: StepDeadline | None = None
    verify: StepDeadline | None = None


class IssueProperties(BaseModel):
    id: int
    client_uuid: str | None = Field(
        None, description="The reporting device's idempotency key: only for those who may see "
                          "the grid's personal data")
    category: str
    category_zh: str
    category_en: str
    description: str
    channel: str
    status: IssueStatus
    priority: int
    urgency: Urgency = Field(description="紧急 urgent or 一般 normal: which time limits apply")
    grid_code: str | None
    grid_version: int | None
    assignment: Assignment
    assignment_distance_m: float | None
    facility_id: int | None
    facility_code: str | None
    reported_at: datetime
    due_at: datetime | None = Field(description=(
        "The deadline promised to the resident: the handling limit counted from the report"))
    deadlines: StepDeadlines = Field(description=(
        "Each step's latest run: its deadline and whether it is overdue (steps not reached "
        "yet are absent)"))
    closed_at: datetime | None
    reporter_contact: str | None = Field(
        None, description="Present only for the grid's worker, leaders and admins (personal data)")
    photo_urls: list[str] = Field(description="Links to photos held elsewhere (Open311 media_url)")
    photos: list[PhotoLink] = Field(description="The photos uploaded for the case, oldest first")
    location_source: LocationSource = Field(description=(
        "report: the report's coordinates; photo: its first photo's GPS position (the location "
        "is null until that photo arrives)"))
    source_crs: str
    overdue: bool = Field(description="Open and past its due time")
    self_resolved: bool = Field(description="Reported and closed on site in one visit (自处理)")


class GridPublic(FeaturePublic[GridProperties]):
    pass


class GridDetailPublic(FeaturePublic[GridDetailProperties]):
    pass


class GridsPublic(FeatureCollectionPublic[GridPublic]):
    pass


class BuildingPublic(FeaturePublic[BuildingProperties]):
    pass


class BuildingsPublic(FeatureCollectionPublic[BuildingPublic]):
    pass


class FacilityPublic(FeaturePublic[FacilityProperties]):
    pass


class FacilitiesPublic(FeatureCollectionPublic[FacilityPublic]):
    pass


class IssuePublic(FeaturePublic[IssueProperties]):
    geometry: GeometryPublic | None = Field(description=(
        "null while a report sent with location_from_photo waits for its photo"))


class IssuesPublic(FeatureCollectionPublic[IssuePublic]):
    pass


# --- categories and statistics ----------------------------------------------------------------

class Limit(BaseModel):
    value: int = Field(ge=1)
    unit: LimitUnit = Field(description=(
        "minutes and hours: elapsed time, around the clock; workdays: ends at the end of the "
        "working day (17:30 Beijing time) of the N-th working day of the official calendar "
        "after the day the step starts"))


class StepLimits(BaseModel):
    """A step without a limit is absent (its cases are never overdue at it)."""

    accept: Limit | None = None
    dispatch: Limit | None = None
    handle: Limit | None = None
    verify: Limit | None = None


class CategoryLimits(BaseModel):
    normal: StepLimits
    urgent: StepLimits


class CategoryPublic(BaseModel):
    code: str
    kind: Literal["facility", "issue"]
    name_zh: str
    name_en: str
    std_code: str = Field(description="Class in the urban-management standard (部件/事件 class)")
    icon: str
    colour: str
    facility_categories: list[str] = Field(description="Issues: facility categories it may concern")
    limits: CategoryLimits | None = Field(description=(
        "Issues: the time limit of each step (accept 受理/立案, dispatch 派遣, handle 处置, verify "
        "核查) for normal (一般) and urgent (紧急) cases; null for facility categories"))


class CalendarYear(BaseModel):
    year: int
    source: Literal["official", "fallback"] = Field(description=(
        "official: the State Council's notice (chinesecalendar); fallback: Monday to Friday"))
    overrides: int = Field(description="Local overrides entered for the year")


class CalendarStatusPublic(BaseModel):
    package: str
    package_version: str
    official_years: list[int] = Field(description="First and last year the package knows")
    years: list[CalendarYear] = Field(description=(
        "The current year, the next, and every year with overrides"))
    fallback_years: list[int]
    warning: str | None = Field(description="Names the years that fall back; null when none")
    warning_zh: str | None
    workday_end: str = Field(pattern=r"^\d{2}:\d{2}$",
                             description="End of the working day, Beijing time (HH:MM)")


class CategoriesPublic(BaseModel):
    data: list[CategoryPublic]
    count: int


class _Counts(BaseModel):
    reported: int
    open: int = Field(description="Neither closed nor rejected")
    closed: int
    rejected: int
    overdue: int = Field(description="Open and past due")
    on_time_rate: float | None = Field(description="按期结案率: closed by the due time / closed")
    median_hours_to_close: float | None


class _GridKey(BaseModel):
    grid_code: str
    grid_name: str
    community: str
    households: int


class GridStatsRow(_Counts, _GridKey):  # fields in the order of the CSV columns: key first
    per_1000_households: float | None = Field(description="Reported issues per 1,000 households")


class UnassignedStats(_Counts):
    """The filtered issues that lie in no grid."""


class GridStatsPublic(BaseModel):
    data: list[GridStatsRow]
    count: int
    unassigned: UnassignedStats = Field(description=(
        "Issues matching the filters that lie in no grid (not in the CSV, whose rows are grids)"))


class _BucketKey(BaseModel):
    bucket_start: date = Field(description="First day of the bucket (Beijing time)")


class TimelineRow(_Counts, _BucketKey):
    pass


class TimelinePublic(BaseModel):
    bucket: Literal["day", "week", "month"]
    data: list[TimelineRow]
    count: int


class _WorkerKey(BaseModel):
    username: str
    display_name: str
    grids: list[str] = Field(description=(
        "The grids whose cases count for the worker: held when the cases were reported"))


class WorkerStatsRow(_Counts, _WorkerKey):
    self_resolved: int = Field(description=(
        "Of these cases, those the worker reported and closed in one visit (自处理); they are "
        "counted among `closed` too"))


class WorkerStatsPublic(BaseModel):
    data: list[WorkerStatsRow]
    count: int
