"""Issue reports: the first step of the closed loop (docs/ARCHITECTURE.md, "The issue workflow").

A report is geotagged on write with the same grid index as everything else, linked to the
facility it concerns, given its deadlines (the handling limit of its category and urgency
counted from the report as ``due_at``, the deadline promised to the resident, and the running
accept step's; docs/ARCHITECTURE.md, "Working time"), and made idempotent by its client UUID: a
tablet that retries the same report gets the same issue back, never a second row.

A report may come without coordinates when it says ``location_from_photo``: it is stored without
a location, and the first photo that carries a GPS position gives it one
(:func:`place_from_photo`), tagged and linked by the same rules as a report with coordinates.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import (
    Conflict,
    Forbidden,
    InvalidCoordinates,
    InvalidParameter,
    NotFound,
    UnknownCategory,
)
from gis.geotag.index_cache import GridIndexCache
from gis.geotag.locate import locate_point
from gis.issues import duplicates
from gis.people import audit
from gis.people.actors import Actor
from gis.queries import reads
from gis.rules import BEIJING_TZ_NAME, DEFAULT_URGENCY, URGENCIES
from gis.worktime.calendar import WorkCalendar
from gis.worktime.limits import Limit, deadline
from gis.worktime.steps import promised_due, step_change
from gis.worktime.store import limits_json_sql, workday_end

FACILITY_LINK_M = 20.0
REPORTED_NOTE = "上报 / reported"
KEY_NAMESPACE = uuid.UUID("6f1d6a52-3c47-4b8e-9a53-5d0c1f2e7a10")


@dataclass
class IssueReport:
    """A report. ``x``/``y`` are in ``crs``; both None only with ``location_from_photo`` (the
    location comes from the first photo's GPS position)."""

    x: float | None
    y: float | None
    category: str
    crs: str = "wgs84"
    description: str = ""
    reporter_contact: str | None = None
    facility_id: int | None = None
    photo_urls: list[str] = field(default_factory=list)
    channel: str = "app"
    client_uuid: uuid.UUID | None = None
    location_from_photo: bool = False
    urgency: str = DEFAULT_URGENCY  # normal (一般) or urgent (紧急): which limits apply

    def __post_init__(self) -> None:
        if self.urgency not in URGENCIES:
            raise InvalidParameter(f"urgency is one of {', '.join(URGENCIES)}, got {self.urgency!r}",
                                   zh=f"紧急程度须为 {'、'.join(URGENCIES)} 之一，而不是 {self.urgency!r}")
        if (self.x is None) != (self.y is None):
            raise InvalidCoordinates("give both lon and lat, or neither (with location_from_photo)",
                                     zh="经度和纬度须同时提供，或都不提供（并设置 location_from_photo）")
        if self.x is None and not self.location_from_photo:
            raise InvalidCoordinates(
                "a report needs lon and lat, unless it says location_from_photo: true (its "
                "first photo with a GPS position then gives it its location)",
                zh="上报需要经纬度（lon、lat）；若设置 location_from_photo: true，"
                   "则以第一张带 GPS 位置的照片确定位置")

    @property
    def waits_for_photo(self) -> bool:
        return self.x is None


@dataclass(frozen=True)
class _Nowhere:
    """The place of a report waiting for its photo: no location, no grid yet."""

    lon: None = None
    lat: None = None
    source_crs: str = "wgs84"  # what the photo's EXIF GPS will be in
    method: str = "unassigned"
    distance_m: None = None
    grid_id: None = None
    grid_version: None = None


_NOWHERE = _Nowhere()


@dataclass
class Reported:
    """A stored report; for a new one also what its possible duplicates are looked up by (lon
    and lat None while it waits for its photo's position)."""

    issue_id: int
    created: bool
    category: str | None = None
    lon: float | None = None
    lat: float | None = None
    reported_at: datetime | None = None
    audited: bool = False  # the audit entry given to report_issue was written with the issue


# The closest facility of a related category within :data:`FACILITY_LINK_M` (the parameters
# :facility_categories, :lon, :lat, :r and :deg, a box half-width from :func:`_degrees_covering`
# that lets the GiST index cut the candidates before the exact geodesic distance).
_NEAREST_FACILITY_SQL = """
        SELECT id FROM facilities
         WHERE category = ANY(CAST(:facility_categories AS varchar[]))
           AND geom && ST_Expand(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :deg)
           AND ST_DWithin(geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, :r)
         ORDER BY geom::geography <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, id
         LIMIT 1"""

# The issue, the first step of its history and its running step in one statement, linked to the
# given facility or else the nearest related one, and stored only while the grid index the
# report was tagged with is current (:index_version, the grid_index_state version the process's
# index was built at): otherwise nothing is written and ``index_version`` tells the caller to
# rebuild and tag again. ``id`` None with the version current: the key was stored concurrently.
# With :audited the request's audit entry (the :audit_* parameters) is written with the issue.
_INSERT = text(f"""
        WITH state AS (SELECT version FROM grid_index_state WHERE id = 1),
        new AS (
            INSERT INTO issues (client_uuid, category, description, channel, reporter_contact,
                                photo_urls, geom, location_source, source_crs, source_x, source_y,
                                grid_id, grid_version, assignment, assignment_distance_m,
                                facility_id, urgency, reported_at, due_at)
            SELECT :uuid, :category, :description, :channel, :contact, CAST(:photos AS jsonb),
                   ST_SetSRID(ST_MakePoint(CAST(:lon AS float8), CAST(:lat AS float8)), 4326),
                   :source, :crs, :x, :y, :grid_id, :grid_version, :method, :distance,
                   coalesce(CAST(:facility_id AS integer),
                            CASE WHEN CAST(:lon AS float8) IS NOT NULL THEN ({_NEAREST_FACILITY_SQL}) END),
                   :urgency, :now, :due_at
              FROM state WHERE state.version = :index_version OR CAST(:no_place AS boolean)
            ON CONFLICT (client_uuid) DO NOTHING
            RETURNING id),
        event AS (
            INSERT INTO issue_events (issue_id, actor_id, from_status, to_status, note)
            SELECT id, :actor, NULL, 'reported', :note FROM new),
        step AS (
            INSERT INTO issue_steps (issue_id, step, started_at, due_at)
            SELECT id, :step, :now, :step_due FROM new),
        audit AS (
            INSERT INTO audit_log ({audit.ENTRY_COLUMNS})
            SELECT {audit.entry_values_sql("audit_")} FROM new WHERE CAST(:audited AS boolean))
        SELECT (SELECT id FROM new) AS id, (SELECT version FROM state) AS index_version""")


def key_to_uuid(key: str) -> uuid.UUID:
    """An Idempotency-Key header as a UUID: itself if it is one, else a stable UUIDv5 of it."""
    try:
        return uuid.UUID(key)
    except ValueError:
        return uuid.uuid5(KEY_NAMESPACE, key)


def report_issue(session: Session, cache: GridIndexCache, actor: Actor, report: IssueReport,
                 audit_entry: dict | None = None) -> Reported:
    """Store a report, or return the one already stored under the same client UUID.

    ``audit_entry`` (the keywords of :func:`gis.people.audit.record`, action included) is written
    by the insert itself when it stores a new issue (``audited`` in the answer); otherwise, a
    replay, the caller still has to record it.

    Three statements on the intake's hot path: the category with any earlier issue under the key
    (:func:`_category_and_earlier`), the insert (:data:`_INSERT`: the issue, its first event and
    step, its facility link, and the check that the grid index used is current), and, by the
    caller, the commit."""
    client_uuid = report.client_uuid or uuid.uuid4()
    audit_params = _audit_params(audit_entry)
    category = _category_and_earlier(session, report.category, client_uuid)
    if category.id is not None:  # this key was stored before: a retry
        return _replay(category, report)
    due_at, accept_due = _deadlines(session, category, report.urgency)
    if report.facility_id is not None:
        _check_facility(session, report.facility_id)
    grids = cache.latest(session)
    while True:
        place = _NOWHERE if report.waits_for_photo else locate_point(
            session, cache, report.x, report.y, report.crs, with_grid=False, grids=grids)
        row = session.execute(_INSERT, _insert_params(client_uuid, report, place, category, actor,
                                                      grids.index.version, due_at, accept_due)
                              | audit_params).one()
        if row.id is not None or row.index_version == grids.index.version:
            break
        grids = cache.get(session)  # the grids changed since this process built its index
    if row.id is None:  # a concurrent retry with the same key won the race
        return _replay(_by_client_uuid(session, client_uuid), report)
    return Reported(row.id, created=True, category=report.category, lon=place.lon, lat=place.lat,
                    reported_at=category.now, audited=audit_entry is not None)


_NO_AUDIT = {"audited": False} | {k: None for k in audit.entry_params("write", username=None, prefix="audit_")}


def _audit_params(entry: dict | None) -> dict:
    if entry is None:
        return _NO_AUDIT
    return {"audited": True} | audit.entry_params(**entry, prefix="audit_")


def read_back(session: Session, actor: Actor, stored: Reported) -> tuple[dict, list[dict]]:
    """The answer to a report: the issue as the reporter may see it (as the public would, when
    it lies outside their scope) and its possible duplicates. Read inside the report's own
    transaction, before its commit, so a report costs one connection checkout."""
    try:
        row, _, _ = reads.get_issue(session, actor, stored.issue_id)
    except Forbidden:
        row, _, _ = reads.get_issue(session, None, stored.issue_id, public_read=True)
    if not stored.created:
        return row, duplicates.possible_duplicates(session, stored.issue_id, actor)
    return row, duplicates.duplicates_of_new_report(session, stored.issue_id, stored.category,
                                                    stored.lon, stored.lat, stored.reported_at, actor)


def _insert_params(client_uuid: uuid.UUID, report: IssueReport, place, category, actor: Actor,
                   index_version: int, due_at, accept_due) -> dict:
    return {
        "uuid": client_uuid, "category": report.category, "description": report.description,
        "channel": report.channel, "contact": report.reporter_contact,
        "photos": _json(report.photo_urls), "lon": place.lon, "lat": place.lat,
        "source": "photo" if report.waits_for_photo else "report",
        "no_place": report.waits_for_photo,  # no grid yet, so no index to be current
        "crs": place.source_crs, "x": report.x, "y": report.y, "grid_id": place.grid_id,
        "grid_version": place.grid_version, "method": place.method, "distance": place.distance_m,
        "facility_id": report.facility_id, "facility_categories": list(category.facility_categories or []),
        "deg": _degrees_covering(FACILITY_LINK_M, place.lat) if place.lat is not None else 0.0,
        "r": FACILITY_LINK_M, "urgency": report.urgency, "now": category.now,
        "due_at": due_at,  # none: no time limit, never overdue
        "step": step_change(None, "reported").starts, "step_due": accept_due,
        "actor": actor.id if actor else None, "note": REPORTED_NOTE, "index_version": index_version}


def _deadlines(session: Session, category, urgency: str):
    """The deadline promised to the resident (``due_at``) and the accept step's, counted from
    the report (the transaction's ``now``) under the category's limits for ``urgency``."""
    limits = {step: Limit(**spec) for step, spec in category.limits[urgency].items()}
    calendar = WorkCalendar({date.fromisoformat(d): w for d, w in (category.overrides or {}).items()})
    end = workday_end(session)
    accept = limits.get(step_change(None, "reported").starts)
    return (promised_due(category.now, limits, calendar, end),
            deadline(category.now, accept, calendar, end) if accept else None)


_CATEGORY_AND_EARLIER = text(f"""
        SELECT now() AS now, {limits_json_sql("c")} AS limits, c.facility_categories,
               (SELECT json_object_agg(o.day, o.working) FROM calendar_overrides o
                 WHERE o.day >= CAST(now() AT TIME ZONE '{BEIJING_TZ_NAME}' AS date)) AS overrides,
               e.id, e.category, e.location_source, e.source_x, e.source_y
          FROM categories c LEFT JOIN issues e ON e.client_uuid = :u
         WHERE c.code = :c AND c.kind = 'issue'""")


def _category_and_earlier(session: Session, code: str, client_uuid: uuid.UUID):
    """The issue category's limits and related facility categories, the calendar overrides from
    today on and the transaction's time (``now``), with the issue stored earlier under
    ``client_uuid`` if any (id, category, location_source, source_x, source_y; None when new).
    One round trip: this is the intake's hot path."""
    row = session.execute(_CATEGORY_AND_EARLIER, {"c": code, "u": client_uuid}).first()
    if row is None:
        known = session.execute(text(
            "SELECT string_agg(code, ', ' ORDER BY code) FROM categories WHERE kind = 'issue'")).scalar()
        raise UnknownCategory(f"unknown issue category {code!r}; known: {known}",
                              zh=f"未知的事件类别 {code!r}；可用的类别：{known}")
    return row


def _by_client_uuid(session: Session, client_uuid: uuid.UUID):
    return session.execute(text(
        "SELECT id, category, location_source, source_x, source_y "
        "FROM issues WHERE client_uuid = :u"), {"u": client_uuid}).first()


def _replay(existing, report: IssueReport) -> Reported:
    """The same key must mean the same report; a reused key with other content is a conflict."""
    if report.waits_for_photo:
        same_place = existing.location_source == "photo"
    else:
        same_place = (existing.location_source == "report" and existing.source_x is not None
                      and abs(existing.source_x - report.x) < 1e-9
                      and abs(existing.source_y - report.y) < 1e-9)
    if existing.category != report.category or not same_place:
        raise Conflict(f"idempotency key already used for issue {existing.id} with a different "
                       "category or location; use a new key for a new report",
                       zh=f"该幂等键（Idempotency-Key）已用于事件 {existing.id}，但类别或位置不同；"
                          "新的上报请使用新的键")
    return Reported(existing.id, created=False)


def place_from_photo(session: Session, cache: GridIndexCache, issue_id: int, lon: float,
                     lat: float) -> bool:
    """Give the report ``issue_id``, which waits for its photo's position, the place (lon, lat)
    (WGS84, from the photo's EXIF GPS): tagged with its grid and linked to the nearest matching
    facility by the same rules as a report sent with coordinates. False when it has a location
    already (another photo gave it one first)."""
    row = session.execute(text("""
        SELECT i.facility_id, k.facility_categories FROM issues i
          JOIN categories k ON k.code = i.category
         WHERE i.id = :id AND i.geom IS NULL FOR UPDATE OF i"""), {"id": issue_id}).first()
    if row is None:
        return False
    place = locate_point(session, cache, lon, lat, "wgs84", with_grid=False)
    facility_id = row.facility_id or nearest_facility(session, place.lon, place.lat,
                                                      list(row.facility_categories or []))
    session.execute(text("""
        UPDATE issues SET geom = ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), source_crs = :crs,
               source_x = :lon, source_y = :lat, grid_id = :grid_id, grid_version = :grid_version,
               assignment = :method, assignment_distance_m = :distance, facility_id = :facility_id,
               updated_at = now()
         WHERE id = :id"""), {
        "lon": place.lon, "lat": place.lat, "crs": place.source_crs, "grid_id": place.grid_id,
        "grid_version": place.grid_version, "method": place.method, "distance": place.distance_m,
        "facility_id": facility_id, "id": issue_id})
    return True


def nearest_facility(session: Session, lon: float, lat: float, categories: list[str]) -> int | None:
    """The closest facility of a related category within 20 m (a broken cover -> that cover)."""
    if not categories:
        return None
    return session.execute(text(f"SELECT ({_NEAREST_FACILITY_SQL})"), {
        "facility_categories": categories, "lon": lon, "lat": lat, "r": FACILITY_LINK_M,
        "deg": _degrees_covering(FACILITY_LINK_M, lat)}).scalar()


def _degrees_covering(metres: float, lat: float) -> float:
    """A box half-width in degrees that surely holds every point within ``metres`` (GiST prefilter
    before the exact geography distance); longitude degrees shrink with cos(lat)."""
    return 2 * metres / (111_320 * max(math.cos(math.radians(abs(lat))), 0.05))


def _check_facility(session: Session, facility_id: int) -> None:
    if session.execute(text("SELECT 1 FROM facilities WHERE id = :i"), {"i": facility_id}).first() is None:
        raise NotFound(f"facility {facility_id} does not exist", zh=f"部件 {facility_id} 不存在")


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False)
