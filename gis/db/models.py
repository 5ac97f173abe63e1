"""The PostGIS schema (docs/ARCHITECTURE.md, "The data model") as SQLAlchemy 2 / GeoAlchemy2 tables.

Geometries are stored in WGS84 (SRID 4326); CGCS2000 input is treated as identical at this scale.
GeoAlchemy2 gives every geometry column a GiST index (``spatial_index=True`` is its default).
Alembic migrations in ``gis/db/migrations`` create and upgrade this schema; keep them in step.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from gis.geo.grid_index import METHODS
from gis.rules import (
    EVALUATION_INDICATORS,
    EVALUATION_ROLES,
    EVENT_KINDS,
    FACILITY_CHECK_RESULTS,
    FACILITY_STATUSES,
    GRADES,
    ISSUE_STATUSES,
    LIMIT_UNITS,
    LOCATION_SOURCES,
    MOVE_EVENT_KINDS,
    NOTIFICATION_KINDS,
    PHOTO_KINDS,
    REGION_LEVELS,
    ROLES,
    STEPS,
    URGENCIES,
    facility_min_zoom_sql,
    world_pixel_sql,
)

SRID = 4326
ASSIGNMENTS = METHODS  # how an issue or facility was tagged with its grid


def _one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=f"{column}_valid")


class Base(DeclarativeBase):
    pass


class Region(Base):
    """District (区县), street (街道/镇) or community (社区): the hierarchy above grids."""

    __tablename__ = "regions"
    __table_args__ = (_one_of("level", REGION_LEVELS),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=SRID), nullable=False)

    parent: Mapped[Region | None] = relationship(remote_side="Region.id")


class Grid(Base):
    """One version of a grid (网格). A redraw closes the old row (valid_to) and adds a new version."""

    __tablename__ = "grids"
    __table_args__ = (
        UniqueConstraint("code", "version", name="grids_code_version_key"),
        Index("grids_current_code_key", "code", unique=True, postgresql_where="valid_to IS NULL"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(15))
    name: Mapped[str] = mapped_column(String(100))
    community_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=SRID), nullable=False)
    households: Mapped[int] = mapped_column(Integer, server_default="0")
    population: Mapped[int] = mapped_column(Integer, server_default="0")
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    community: Mapped[Region] = relationship()


class IssueEditState(Base):
    """A single-row counter bumped by a trigger when issues are deleted or edited in place
    (migration 0004), part of the maps' data version."""

    __tablename__ = "issue_edit_state"
    __table_args__ = (CheckConstraint("id = 1", name="issue_edit_state_single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, server_default="1")
    version: Mapped[int] = mapped_column(BigInteger, server_default="0")


class IssueRollupReference(Base):
    """The cell grid of the issue rollup (migration 0011, gis.queries.rollup): one row."""

    __tablename__ = "issue_rollup_reference"
    __table_args__ = (CheckConstraint("id = 1", name="issue_rollup_reference_single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, server_default="1")
    lat0: Mapped[float] = mapped_column(Float)
    base_cell_m: Mapped[float] = mapped_column(Float)
    dx: Mapped[float] = mapped_column(Float)
    dy: Mapped[float] = mapped_column(Float)


class IssueRollupGrids(Base):
    """Issues per year, grid (0: none), category and status, kept by triggers (migration
    0011, gis.queries.rollup)."""

    __tablename__ = "issue_rollup_grids"

    year: Mapped[date] = mapped_column(Date, primary_key=True)
    grid_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)
    rated: Mapped[int] = mapped_column(BigInteger)
    on_time: Mapped[int] = mapped_column(BigInteger)


class IssueRollupCells(Base):
    """Located issues per year, base cell, category and status, with the sums of their
    positions in 1e-7 degrees (migration 0011, gis.queries.rollup)."""

    __tablename__ = "issue_rollup_cells"

    year: Mapped[date] = mapped_column(Date, primary_key=True)
    cx: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    cy: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)
    sx: Mapped[int] = mapped_column(BigInteger)
    sy: Mapped[int] = mapped_column(BigInteger)


class IssueRollupWeeks(Base):
    """Located issues per week, weekly cell, category and status (migration 0011,
    gis.queries.rollup)."""

    __tablename__ = "issue_rollup_weeks"

    week: Mapped[int] = mapped_column(Integer, primary_key=True)
    cx: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    cy: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)
    sx: Mapped[int] = mapped_column(BigInteger)
    sy: Mapped[int] = mapped_column(BigInteger)


class GridIndexState(Base):
    """A single-row counter bumped by a trigger whenever grids change, so every process can tell
    that its in-memory grid index is stale without rebuilding it per request."""

    __tablename__ = "grid_index_state"
    __table_args__ = (CheckConstraint("id = 1", name="grid_index_state_single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, server_default="1")
    version: Mapped[int] = mapped_column(BigInteger, server_default="0")


class Version(Base):
    """A counter per kind of thing a server process keeps in memory, bumped by triggers whenever
    the tables it is read from change (migration 0019): 'rules' (issue categories, their time
    limits, the calendar's overrides) and 'people' (users, their grids, regions, grids). A copy
    is current while its counter is the one it was read at."""

    __tablename__ = "versions"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, server_default="0")


class Department(Base):
    """A department that fixes what is dispatched to it (专业部门: 环卫, 市政, 园林, 供热...): the issue
    categories it handles and the region it serves."""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    categories: Mapped[list[str]] = mapped_column(ARRAY(String(32)), server_default="{}")
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(f"role IN ({', '.join(repr(r) for r in ROLES)})",
                                      name="users_role_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    must_change_password: Mapped[bool] = mapped_column(Boolean, server_default="false")
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A session started before this is over (a new password, a disabled account).
    sessions_valid_after: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class GridAssignment(Base):
    """Who held a grid, from when to when (``valid_to`` NULL: holds it now). Keyed by grid code so
    the assignment survives redraws (new versions); the view ``grid_workers`` lists the current
    holders."""

    __tablename__ = "grid_assignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    grid_code: Mapped[str] = mapped_column(String(15))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UserSession(Base):
    """A log-in: a bearer token (``token``) or a page's cookie (``page``). Only the token's SHA-256
    is stored."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    address: Mapped[str | None] = mapped_column(String(64))
    password_change_only: Mapped[bool] = mapped_column(Boolean, server_default="false")


class AuditEntry(Base):
    """One line of the append-only audit trail (the database refuses UPDATE and early DELETE)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.clock_timestamp())
    username: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16), server_default="ok")
    detail: Mapped[dict] = mapped_column(JSONB, server_default="{}")


class Category(Base):
    """Facility (部件) and issue (事件) categories: data, seeded once, edited by admins."""

    __tablename__ = "categories"
    __table_args__ = (_one_of("kind", ("facility", "issue")),)

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(64))
    std_code: Mapped[str] = mapped_column(String(16))
    icon: Mapped[str] = mapped_column(String(32))
    colour: Mapped[str] = mapped_column(String(16))
    facility_categories: Mapped[list[str]] = mapped_column(ARRAY(String(32)), server_default="{}")


class Street(Base):
    """Street centre lines: drawn on the offline base map and used to place facilities."""

    __tablename__ = "streets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    geom = mapped_column(Geometry("LINESTRING", srid=SRID), nullable=False)


class Compound(Base):
    """A housing compound (院落) or estate (小区)."""

    __tablename__ = "compounds"
    __table_args__ = (_one_of("kind", ("compound", "estate")),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    has_property_company: Mapped[bool] = mapped_column(Boolean, server_default="false")
    built_year: Mapped[int | None] = mapped_column(Integer)
    geom = mapped_column(Geometry("POLYGON", srid=SRID), nullable=False)


class Building(Base):
    __tablename__ = "buildings"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    compound_id: Mapped[int | None] = mapped_column(ForeignKey("compounds.id"))
    geom = mapped_column(Geometry("POLYGON", srid=SRID), nullable=False)
    floors: Mapped[int | None] = mapped_column(Integer)
    households: Mapped[int] = mapped_column(Integer, server_default="0")
    party_households: Mapped[int] = mapped_column(Integer, server_default="0")
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))

    compound: Mapped[Compound | None] = relationship()


class Facility(Base):
    """A point asset (部件) with its 16-digit code, category, state and owning grid."""

    __tablename__ = "facilities"
    __table_args__ = (_one_of("status", FACILITY_STATUSES), _one_of("assignment", ASSIGNMENTS))

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str | None] = mapped_column(String(16), unique=True)
    category: Mapped[str] = mapped_column(ForeignKey("categories.code"))
    name: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), server_default="ok")
    geom = mapped_column(Geometry("POINT", srid=SRID), nullable=False)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    assignment: Mapped[str] = mapped_column(String(16), server_default="unassigned")
    install_date: Mapped[date | None] = mapped_column(Date)
    owner: Mapped[str | None] = mapped_column(String(100))
    maintainer: Mapped[str | None] = mapped_column(String(100))
    props: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # The first zoom whose tiles show it (gis.rules.facility_min_zoom; migration 0012)
    min_zoom: Mapped[int] = mapped_column(SmallInteger, Computed(facility_min_zoom_sql(None),
                                                                persisted=True))

    grid: Mapped[Grid | None] = relationship()


class Issue(Base):
    """A geotagged problem report (事件) and where it stands in the workflow."""

    __tablename__ = "issues"
    __table_args__ = (
        _one_of("status", ISSUE_STATUSES),
        _one_of("urgency", URGENCIES),
        _one_of("assignment", ASSIGNMENTS),
        _one_of("location_source", LOCATION_SOURCES),
        # Only a report waiting for its photo's GPS position (migration 0006) has no location.
        CheckConstraint("geom IS NOT NULL OR location_source = 'photo'",
                        name="issues_located_or_waiting_for_photo"),
        Index("issues_reported_at_idx", "reported_at"),
        # A region's cases by grid and time, read from the index alone (migration 0015).
        Index("issues_grid_time_idx", "grid_id", "reported_at",
              postgresql_include=["status", "category", "lon", "lat"]),
        # The issues whose time runs, by due time: overdue counts (migration 0011), from the
        # index alone (0015).
        Index("issues_timed_due_idx", "due_at",
              postgresql_include=["grid_id", "status", "category", "reported_at"],
              postgresql_where=text("status NOT IN ('closed', 'rejected', 'on_hold')")),
        # The closed issues by closing time, with their due time: on-time counts (0011, 0014).
        Index("issues_closed_at_idx", "closed_at", postgresql_include=["due_at"],
              postgresql_where=text("status = 'closed'")),
        # The few issues without a location, which the rollup's cells do not hold (0014).
        Index("issues_unlocated_idx", "reported_at", postgresql_where=text("lon IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_uuid: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True, server_default=func.gen_random_uuid())
    category: Mapped[str] = mapped_column(ForeignKey("categories.code"))
    description: Mapped[str] = mapped_column(Text, server_default="")
    channel: Mapped[str] = mapped_column(String(32), server_default="app")
    reporter_contact: Mapped[str | None] = mapped_column(String(200))
    photo_urls: Mapped[list] = mapped_column(JSONB, server_default="[]")  # links from other systems
    geom = mapped_column(Geometry("POINT", srid=SRID), nullable=True)  # None: waiting for a photo
    location_source: Mapped[str] = mapped_column(String(16), server_default="report")
    # Generated from geom (migration 0003): the heatmap's scans read plain floats.
    lon: Mapped[float] = mapped_column(Float, Computed("ST_X(geom)", persisted=True))
    lat: Mapped[float] = mapped_column(Float, Computed("ST_Y(geom)", persisted=True))
    # Web Mercator pixels of a 2^30-pixel world (migration 0012): the issues tile layer's cells
    wx: Mapped[int | None] = mapped_column(Integer, Computed(world_pixel_sql("x"), persisted=True))
    wy: Mapped[int | None] = mapped_column(Integer, Computed(world_pixel_sql("y"), persisted=True))
    source_crs: Mapped[str] = mapped_column(String(32), server_default="wgs84")
    source_x: Mapped[float | None] = mapped_column(Float)
    source_y: Mapped[float | None] = mapped_column(Float)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    grid_version: Mapped[int | None] = mapped_column(Integer)
    assignment: Mapped[str] = mapped_column(String(16), server_default="unassigned")
    assignment_distance_m: Mapped[float | None] = mapped_column(Float)
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facilities.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    status: Mapped[str] = mapped_column(String(16), server_default="reported")
    urgency: Mapped[str] = mapped_column(String(8), server_default="normal")  # migration 0008
    priority: Mapped[int] = mapped_column(Integer, server_default="3")
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Reported and closed by the worker in one visit (自处理, migration 0007)
    self_resolved: Mapped[bool] = mapped_column(Boolean, server_default="false")

    grid: Mapped[Grid | None] = relationship()
    events: Mapped[list[IssueEvent]] = relationship(back_populates="issue", order_by="IssueEvent.at")


class IssuePhoto(Base):
    """A photo of a case or of a facility check (or both: the photo of a check that opened a
    case, migration 0007), re-encoded without metadata and kept in the media store under the
    SHA-256 of its bytes (``gis.media``); the idempotency key of its upload is unique per case
    and per check."""

    __tablename__ = "issue_photos"
    __table_args__ = (
        _one_of("kind", PHOTO_KINDS),
        UniqueConstraint("issue_id", "idempotency_key", name="issue_photos_issue_key"),
        UniqueConstraint("facility_check_id", "idempotency_key", name="issue_photos_check_key"),
        CheckConstraint("issue_id IS NOT NULL OR facility_check_id IS NOT NULL",
                        name="issue_photos_of_a_case_or_check"),
        Index("ix_issue_photos_issue", "issue_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int | None] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    facility_check_id: Mapped[int | None] = mapped_column(
        ForeignKey("facility_checks.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8), server_default="report")
    content_key: Mapped[str] = mapped_column(String(64))
    thumbnail_key: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(Integer)
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))


class IssueEvent(Base):
    """One step of an issue's history: the audit trail of the closed loop. ``client_key`` is the
    Idempotency-Key of the action on site that made it, unique per case (migration 0007)."""

    __tablename__ = "issue_events"
    __table_args__ = (
        UniqueConstraint("issue_id", "client_key", name="issue_events_issue_key"),
        _one_of("kind", EVENT_KINDS),
        CheckConstraint(f"(kind IN ({', '.join(repr(k) for k in MOVE_EVENT_KINDS)})) = "
                        "(to_status IS NOT NULL)", name="moves_have_a_status"),
        Index("ix_issue_events_kind", "kind", "at", postgresql_where="kind <> 'move'"),
        # The moves of a period by the status they leave, for the evaluation (migration 0014).
        Index("issue_events_moves_at_idx", "from_status", "at",
              postgresql_include=["issue_id", "actor_id", "to_status"],
              postgresql_where="to_status IS NOT NULL"),
        # Each case's dispatches, returns and rework, for the spans of dispatches (0014).
        Index("issue_events_spans_idx", "issue_id",
              postgresql_include=["at", "id", "kind", "department_id", "to_status"],
              postgresql_where="kind IN ('dispatch', 'return') OR to_status = 'reopened'"),
        # Each case's report with its actor (migration 0014).
        Index("issue_events_reports_idx", "issue_id", postgresql_include=["actor_id"],
              postgresql_where="from_status IS NULL AND to_status IS NOT NULL"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))  # None: not a move (migration 0009)
    note: Mapped[str | None] = mapped_column(Text)
    client_key: Mapped[str | None] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(24), server_default="move")
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    details: Mapped[dict | None] = mapped_column(JSONB)

    issue: Mapped[Issue] = relationship(back_populates="events")


class TimeLimit(Base):
    """The time limit of one step of a category's cases at one urgency (migration 0008), in
    minutes, hours or working days (gis.worktime.limits)."""

    __tablename__ = "time_limits"
    __table_args__ = (_one_of("urgency", URGENCIES), _one_of("step", STEPS),
                      _one_of("unit", LIMIT_UNITS),
                      CheckConstraint("value > 0", name="value_positive"))

    category: Mapped[str] = mapped_column(
        ForeignKey("categories.code", ondelete="CASCADE", onupdate="CASCADE"), primary_key=True)
    urgency: Mapped[str] = mapped_column(String(8), primary_key=True)
    step: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(8))


class CalendarOverride(Base):
    """A day made a working day or a holiday locally, winning over the official calendar
    (gis.worktime.calendar; migration 0008)."""

    __tablename__ = "calendar_overrides"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    working: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str] = mapped_column(Text, server_default="")
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class IssueStep(Base):
    """A step of a case (accept, dispatch, handle, verify): when it started, its deadline and
    when it was done; at most one runs at a time (gis.worktime.steps; migration 0008)."""

    __tablename__ = "issue_steps"
    __table_args__ = (
        _one_of("step", STEPS),
        CheckConstraint("done_at IS NULL OR done_at >= started_at", name="done_after_start"),
        Index("ix_issue_steps_issue", "issue_id", "started_at", "id"),
        Index("issue_steps_one_running", "issue_id", unique=True,
              postgresql_where="done_at IS NULL"),
        Index("ix_issue_steps_running_due", "due_at", postgresql_where="done_at IS NULL"),
        # A case's steps of one kind by start, with deadline and end (migration 0014).
        Index("issue_steps_issue_step_idx", "issue_id", "step", "started_at", "id",
              postgresql_include=["due_at", "done_at"]),
        # The handling steps done in a period (migration 0014).
        Index("issue_steps_handle_done_idx", "done_at", postgresql_where="step = 'handle'"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StepAlert(Base):
    """A late step whose lateness has been notified, once (gis.issues.notifications; 0009)."""

    __tablename__ = "step_alerts"

    step_id: Mapped[int] = mapped_column(ForeignKey("issue_steps.id", ondelete="CASCADE"),
                                         primary_key=True)
    notified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DispatchRule(Base):
    """Category x region -> department (None: the grid's worker), applied on acceptance when
    ``auto``, otherwise only suggested; the most specific region wins (migration 0009)."""

    __tablename__ = "dispatch_rules"
    __table_args__ = (UniqueConstraint("category", "region_id", name="one_rule_per_category_and_region",
                                       postgresql_nulls_not_distinct=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    category: Mapped[str] = mapped_column(
        ForeignKey("categories.code", ondelete="CASCADE", onupdate="CASCADE"))
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id", ondelete="CASCADE"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"))
    auto: Mapped[bool] = mapped_column(Boolean, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ExtensionRequest(Base):
    """延期申请: a department asks for more time; a dispatcher approves (the deadline moves) or
    refuses. At most one is pending per case (migration 0009)."""

    __tablename__ = "extension_requests"
    __table_args__ = (
        _one_of("unit", LIMIT_UNITS),
        CheckConstraint("value > 0", name="value_positive"),
        CheckConstraint("btrim(reason) <> ''", name="reason_given"),
        CheckConstraint("(decided_at IS NULL) = (approved IS NULL)", name="decided_together"),
        Index("ix_extension_requests_issue", "issue_id"),
        Index("extension_requests_one_pending", "issue_id", unique=True,
              postgresql_where="decided_at IS NULL"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    value: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(Text)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    approved: Mapped[bool | None] = mapped_column(Boolean)
    decision_note: Mapped[str | None] = mapped_column(Text)
    due_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Supervision(Base):
    """督办: a leader's notice on a case, which the handler must answer (migration 0009)."""

    __tablename__ = "supervisions"
    __table_args__ = (
        CheckConstraint("btrim(note) <> ''", name="note_given"),
        CheckConstraint("(replied_at IS NULL) = (reply IS NULL)", name="replied_together"),
        Index("ix_supervisions_issue", "issue_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    note: Mapped[str] = mapped_column(Text)
    reply_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    replied_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    replied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reply: Mapped[str | None] = mapped_column(Text)


class Notification(Base):
    """One entry of a user's in-app notification list (migration 0009)."""

    __tablename__ = "notifications"
    __table_args__ = (
        _one_of("kind", NOTIFICATION_KINDS),
        Index("ix_notifications_user", "user_id", text("at DESC")),
        Index("ix_notifications_unread", "user_id", postgresql_where="read_at IS NULL"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    issue_id: Mapped[int | None] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    title: Mapped[str] = mapped_column(Text)
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EvaluationWeight(Base):
    """How much an indicator weighs in its role's composite score (gis.queries.evaluation;
    migration 0010). The pairs (role, indicator) are those of gis.rules.EVALUATION_INDICATORS."""

    __tablename__ = "evaluation_weights"
    __table_args__ = (
        _one_of("role", EVALUATION_ROLES),
        CheckConstraint("weight >= 0", name="weight_not_negative"),
        CheckConstraint("(role || ':' || indicator) IN ("
                        + ", ".join(f"'{role}:{i[0]}'" for role, indicators
                                    in EVALUATION_INDICATORS.items() for i in indicators) + ")",
                        name="indicator_valid"),
    )

    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    indicator: Mapped[str] = mapped_column(String(32), primary_key=True)
    weight: Mapped[float] = mapped_column(Float)


class EvaluationGrade(Base):
    """The lowest composite score of a grade A-E (migration 0010)."""

    __tablename__ = "evaluation_grades"
    __table_args__ = (
        _one_of("grade", GRADES),
        CheckConstraint("min_score >= 0 AND min_score <= 100", name="min_score_range"),
    )

    grade: Mapped[str] = mapped_column(String(1), primary_key=True)
    min_score: Mapped[float] = mapped_column(Float)


class EvaluationMinimum(Base):
    """The fewest cases in a period for a score and a grade, per role (migration 0010)."""

    __tablename__ = "evaluation_minimums"
    __table_args__ = (_one_of("role", EVALUATION_ROLES),
                      CheckConstraint("min_cases >= 0", name="min_cases_not_negative"))

    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    min_cases: Mapped[int] = mapped_column(Integer)


class FacilityCheck(Base):
    """A facility checked on patrol (部件巡检): what was found, by whom, and the case a damaged or
    missing facility opened (migration 0007)."""

    __tablename__ = "facility_checks"
    __table_args__ = (
        _one_of("result", FACILITY_CHECK_RESULTS),
        Index("ix_facility_checks_facility", "facility_id", "checked_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id", ondelete="CASCADE"))
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    result: Mapped[str] = mapped_column(String(8))
    note: Mapped[str | None] = mapped_column(Text)
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    issue_id: Mapped[int | None] = mapped_column(ForeignKey("issues.id", ondelete="SET NULL"))
    client_key: Mapped[str | None] = mapped_column(String(255), unique=True)


class ApiKey(Base):
    """A key that lets another system post Open311 service requests. Only its SHA-256 is stored:
    the key itself is shown once, when an admin creates it."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100))
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
