"""Queries as plain functions: sessions in, plain dicts out (the API turns them into GeoJSON).

Every list function returns a :class:`Page` (rows of one page and the total they were cut from).
Rows carry ``geometry`` as a GeoJSON dict (lon, lat order) and plain properties beside it.
Times written without an offset (``since``/``until``) are Beijing time, as the demo and imports are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.db.models import FACILITY_STATUSES
from gis.errors import InvalidCoordinates, NotFound, UnknownCategory
from gis.people.actors import Actor

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
# The loop has ended for these: they are neither open nor ever overdue.
ENDED_STATUSES = ("closed", "rejected")
OPEN_STATUS = "open"  # a filter value standing for every status not in ENDED_STATUSES
ENDED_SQL = "('closed', 'rejected')"


@dataclass(frozen=True)
class BBox:
    minx: float
    miny: float
    maxx: float
    maxy: float

    @classmethod
    def parse(cls, raw: str) -> BBox:
        """Parse ``minx,miny,maxx,maxy`` (lon/lat, RFC 7946 order)."""
        parts = raw.split(",")
        if len(parts) != 4:
            raise InvalidCoordinates(f"bbox needs 4 numbers minx,miny,maxx,maxy; got {raw!r}",
                                     zh=f"bbox 应为 4 个数：最小经度,最小纬度,最大经度,最大纬度；收到 {raw!r}")
        try:
            minx, miny, maxx, maxy = (float(p) for p in parts)
        except ValueError as exc:
            raise InvalidCoordinates(f"bbox has a value that is not a number: {raw!r}",
                                     zh=f"bbox 中有不是数字的值：{raw!r}") from exc
        box = cls(minx, miny, maxx, maxy)
        box.validate()
        return box

    def validate(self) -> None:
        if not (-180 <= self.minx <= 180 and -180 <= self.maxx <= 180):
            raise InvalidCoordinates(f"bbox longitudes must be within [-180, 180]; got {self}",
                                     zh=f"bbox 的经度应在 -180 到 180 之间；收到 {self}")
        if not (-90 <= self.miny <= 90 and -90 <= self.maxy <= 90):
            raise InvalidCoordinates(f"bbox latitudes must be within [-90, 90]; got {self}",
                                     zh=f"bbox 的纬度应在 -90 到 90 之间；收到 {self}")
        if self.minx > self.maxx or self.miny > self.maxy:
            raise InvalidCoordinates(f"bbox min must not exceed max; got {self}",
                                     zh=f"bbox 的最小值不能大于最大值；收到 {self}")


@dataclass
class Page:
    items: list[dict]
    total: int


@dataclass
class _Where:
    """SQL conditions joined by AND, and their bound parameters (never values in the SQL)."""

    clauses: list[str] = field(default_factory=list)
    params: dict = field(default_factory=dict)

    def add(self, clause: str, **params) -> None:
        self.clauses.append(clause)
        self.params |= params

    @property
    def sql(self) -> str:
        return " AND ".join(self.clauses) or "TRUE"

    def bbox(self, column: str, box: BBox | None) -> None:
        if box is not None:
            self.add(f"ST_Intersects({column}, ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326))",
                     **box.__dict__)

    def community(self, alias: str, community: str | None) -> None:
        if community:
            self.add(f"({alias}.name = :community OR {alias}.code = :community)",
                     community=community)

    def text_search(self, columns: tuple[str, ...], q: str | None) -> None:
        if q and q.strip():
            ors = " OR ".join(f"{c} ILIKE :q" for c in columns)
            self.add(f"({ors})", q=f"%{_escape_like(q.strip())}%")


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def local_time(value: datetime | None) -> datetime | None:
    """A time without an offset is Beijing time; one with an offset is kept as it is."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=LOCAL_TZ)


def _page(session: Session, select: str, source: str, where: _Where, order: str, limit: int,
          offset: int) -> Page:
    sql = (f"SELECT {select}, count(*) OVER () AS total FROM {source} WHERE {where.sql} "
           f"ORDER BY {order} LIMIT :limit OFFSET :offset")
    rows = [dict(r) for r in session.execute(text(sql), where.params | {"limit": limit,
                                                                         "offset": offset}).mappings()]
    if rows:
        total = rows[0]["total"]
    else:  # past the last page: the window count has no row to ride on
        total = session.execute(text(f"SELECT count(*) FROM {source} WHERE {where.sql}"),
                                where.params).scalar_one()
    for r in rows:
        r.pop("total")
        _decode_json(r)
    return Page(rows, total)


def _one(session: Session, select: str, source: str, where: _Where, what: str) -> dict:
    row = session.execute(text(f"SELECT {select} FROM {source} WHERE {where.sql}"),
                          where.params).mappings().first()
    if row is None:
        raise NotFound(f"no {what}", zh=f"未找到：{what}")
    return _decode_json(dict(row))


def _decode_json(row: dict) -> dict:
    for key, value in row.items():
        if key in ("geometry", "props", "photo_urls", "open_issues_by_status", "facilities_by_status") \
                and isinstance(value, str):
            row[key] = json.loads(value)
    return row


def check_categories(session: Session, kind: str, codes) -> None:
    """Raise UnknownCategory naming the codes that are not ``kind`` categories, and the known ones."""
    codes = [codes] if isinstance(codes, str) else list(codes)
    if not codes:
        return
    known = set(session.execute(text("SELECT code FROM categories WHERE kind = :k"),
                                {"k": kind}).scalars())
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise UnknownCategory(f"unknown {kind} categor{'y' if len(unknown) == 1 else 'ies'} "
                              f"{', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}",
                              zh=f"未知的{'事件' if kind == 'issue' else '部件'}类别 "
                                 f"{', '.join(map(repr, unknown))}；可用的类别：{', '.join(sorted(known))}")


# --- grids ------------------------------------------------------------------------------------

_WORKER_USERNAME = """(SELECT u.username FROM grid_workers gw JOIN users u ON u.id = gw.user_id
                        WHERE gw.grid_code = g.code ORDER BY u.username LIMIT 1)"""
_GRID_COLUMNS = f"""
    g.id, g.code, g.name, c.name AS community, c.code AS community_code, g.households,
    g.population, g.version, g.valid_from, {_WORKER_USERNAME} AS worker,
    ST_AsGeoJSON(g.geom, 7)::json AS geometry"""
_GRID_SOURCE = "grids g JOIN regions c ON c.id = g.community_id"


def list_grids(session: Session, *, bbox: BBox | None = None, community: str | None = None,
               q: str | None = None, limit: int = 100, offset: int = 0) -> Page:
    """Current grids (valid_to IS NULL), ordered by code; ``q`` searches code and name."""
    where = _Where(["g.valid_to IS NULL"])
    where.bbox("g.geom", bbox)
    where.community("c", community)
    where.text_search(("g.code", "g.name"), q)
    return _page(session, _GRID_COLUMNS, _GRID_SOURCE, where, "g.code", limit, offset)


_GRID_DETAIL_COLUMNS = _GRID_COLUMNS + f""",
    (SELECT u.display_name FROM grid_workers gw JOIN users u ON u.id = gw.user_id
      WHERE gw.grid_code = g.code ORDER BY u.username LIMIT 1) AS worker_display_name,
    (SELECT count(*) FROM issues i JOIN grids ig ON ig.id = i.grid_id
      WHERE ig.code = g.code AND i.status NOT IN {ENDED_SQL}) AS open_issues,
    (SELECT count(*) FROM issues i JOIN grids ig ON ig.id = i.grid_id
      WHERE ig.code = g.code AND i.status NOT IN {ENDED_SQL} AND i.due_at < now()) AS overdue_issues,
    (SELECT coalesce(json_object_agg(status, n ORDER BY status), '{{}}') FROM (
        SELECT i.status, count(*) AS n FROM issues i JOIN grids ig ON ig.id = i.grid_id
         WHERE ig.code = g.code AND i.status NOT IN {ENDED_SQL} GROUP BY i.status) s
    ) AS open_issues_by_status,
    (SELECT json_object_agg(st, (SELECT count(*) FROM facilities f JOIN grids fg ON fg.id = f.grid_id
                                  WHERE fg.code = g.code AND f.status = st) ORDER BY st)
       FROM unnest(CAST(:facility_statuses AS text[])) st) AS facilities_by_status"""


def get_grid(session: Session, code: str) -> dict:
    """The current version of grid ``code`` with its worker, open issues and facilities by status."""
    where = _Where(["g.valid_to IS NULL", "g.code = :code"],
                   {"code": code, "facility_statuses": list(FACILITY_STATUSES)})
    return _one(session, _GRID_DETAIL_COLUMNS, _GRID_SOURCE, where,
                f"current grid with code {code!r}")


# --- buildings --------------------------------------------------------------------------------

_BUILDING_COLUMNS = """
    b.id, b.name, cp.name AS compound, b.floors, b.households, b.party_households,
    g.code AS grid_code, ST_AsGeoJSON(b.geom, 7)::json AS geometry"""
_BUILDING_SOURCE = """buildings b LEFT JOIN compounds cp ON cp.id = b.compound_id
    LEFT JOIN grids g ON g.id = b.grid_id LEFT JOIN regions c ON c.id = g.community_id"""


def list_buildings(session: Session, *, bbox: BBox | None = None, grid: str | None = None,
                   community: str | None = None, q: str | None = None, limit: int = 100,
                   offset: int = 0) -> Page:
    """Buildings by id; ``q`` searches the building and compound names."""
    where = _Where()
    where.bbox("b.geom", bbox)
    if grid:
        where.add("g.code = :grid", grid=grid)
    where.community("c", community)
    where.text_search(("b.name", "cp.name"), q)
    return _page(session, _BUILDING_COLUMNS, _BUILDING_SOURCE, where, "b.id", limit, offset)


def get_building(session: Session, building_id: int) -> dict:
    where = _Where(["b.id = :id"], {"id": building_id})
    return _one(session, _BUILDING_COLUMNS, _BUILDING_SOURCE, where, f"building with id {building_id}")


# --- facilities -------------------------------------------------------------------------------

_FACILITY_COLUMNS = """
    f.id, f.code, f.category, k.name_zh AS category_zh, k.name_en AS category_en,
    f.name, f.status, g.code AS grid_code, f.assignment, f.install_date, f.owner, f.maintainer,
    f.props, f.updated_at, ST_AsGeoJSON(f.geom, 7)::json AS geometry"""
_FACILITY_SOURCE = """facilities f JOIN categories k ON k.code = f.category
    LEFT JOIN grids g ON g.id = f.grid_id LEFT JOIN regions c ON c.id = g.community_id"""


def list_facilities(session: Session, *, bbox: BBox | None = None, grid: str | None = None,
                    community: str | None = None, category: list[str] | None = None,
                    status: list[str] | None = None, q: str | None = None, limit: int = 100,
                    offset: int = 0) -> Page:
    """Facilities (部件) by id; ``q`` searches name and 16-digit code; categories are checked."""
    check_categories(session, "facility", category or [])
    where = _Where()
    where.bbox("f.geom", bbox)
    if grid:
        where.add("g.code = :grid", grid=grid)
    where.community("c", community)
    if category:
        where.add("f.category = ANY(:category)", category=list(category))
    if status:
        where.add("f.status = ANY(:status)", status=list(status))
    where.text_search(("f.name", "f.code"), q)
    return _page(session, _FACILITY_COLUMNS, _FACILITY_SOURCE, where, "f.id", limit, offset)


def get_facility(session: Session, facility_id: int) -> dict:
    where = _Where(["f.id = :id"], {"id": facility_id})
    return _one(session, _FACILITY_COLUMNS, _FACILITY_SOURCE, where, f"facility with id {facility_id}")


# --- issues -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class IssueFilter:
    """The filters of the issue list, shared by the statistics so both count the same issues.

    ``status`` may hold ``"open"`` for every status the loop has not ended in. ``since`` is
    inclusive and ``until`` exclusive, both on ``reported_at``.
    """

    bbox: BBox | None = None
    grid: str | None = None
    community: str | None = None
    category: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None

    def where(self, session: Session) -> _Where:
        """Conditions on ``issues i`` joined to ``grids g`` and ``regions c`` (its community)."""
        check_categories(session, "issue", self.category)
        where = _Where()
        where.bbox("i.geom", self.bbox)
        if self.grid:
            where.add("g.code = :grid", grid=self.grid)
        where.community("c", self.community)
        if self.category:
            where.add("i.category = ANY(:category)", category=list(self.category))
        self._status(where)
        if self.since is not None:
            where.add("i.reported_at >= :since", since=local_time(self.since))
        if self.until is not None:
            where.add("i.reported_at < :until", until=local_time(self.until))
        where.text_search(("i.description",), self.q)
        return where

    def _status(self, where: _Where) -> None:
        if not self.status:
            return
        named = [s for s in self.status if s != OPEN_STATUS]
        parts = ["i.status = ANY(:status)"] if named else []
        if OPEN_STATUS in self.status:
            parts.append(f"i.status NOT IN {ENDED_SQL}")
        where.add("(" + " OR ".join(parts) + ")", status=named)


ISSUE_SOURCE = """issues i JOIN categories k ON k.code = i.category
    LEFT JOIN grids g ON g.id = i.grid_id LEFT JOIN regions c ON c.id = g.community_id"""
# The same properties as gis.issues.reporting.issue_feature (the answer to a report), so a client reads
# an issue the same way whichever endpoint it came from.
_ISSUE_COLUMNS = f"""
    i.id, i.client_uuid::text AS client_uuid, i.category, k.name_zh AS category_zh,
    k.name_en AS category_en, i.description, i.channel, i.status, i.priority,
    g.code AS grid_code, i.grid_version, i.assignment, i.assignment_distance_m, i.facility_id,
    fa.code AS facility_code, i.reported_at, i.due_at, i.closed_at, i.reporter_contact,
    i.photo_urls, i.source_crs,
    coalesce(i.status NOT IN {ENDED_SQL} AND i.due_at < now(), false) AS overdue,
    ST_AsGeoJSON(i.geom, 7)::json AS geometry"""
_ISSUE_PAGE_SOURCE = ISSUE_SOURCE + " LEFT JOIN facilities fa ON fa.id = i.facility_id"


def list_issues(session: Session, actor: Actor | None, filters: IssueFilter | None = None, *,
                limit: int = 100, offset: int = 0) -> Page:
    """Issues, newest report first. ``reporter_contact`` is left out unless ``actor`` may see it."""
    where = (filters or IssueFilter()).where(session)
    page = _page(session, _ISSUE_COLUMNS, _ISSUE_PAGE_SOURCE, where, "i.reported_at DESC, i.id DESC",
                 limit, offset)
    for row in page.items:
        _hide_contact(row, actor)
    return page


def get_issue(session: Session, actor: Actor | None, issue_id: int) -> dict:
    where = _Where(["i.id = :id"], {"id": issue_id})
    row = _one(session, _ISSUE_COLUMNS, _ISSUE_PAGE_SOURCE, where, f"issue with id {issue_id}")
    return _hide_contact(row, actor)


def _hide_contact(row: dict, actor: Actor | None) -> dict:
    """Reporter contact is personal data: the grid's worker, leaders and admins only."""
    if actor is None or not actor.may_see_contact(row["grid_code"]):
        row.pop("reporter_contact", None)
    return row


# --- categories -------------------------------------------------------------------------------

def list_categories(session: Session, kind: str | None = None) -> list[dict]:
    """Facility and issue categories (code, names in Chinese and English, icon, colour, due hours)."""
    where = _Where()
    if kind:
        where.add("kind = :kind", kind=kind)
    rows = session.execute(text(
        "SELECT code, kind, name_zh, name_en, std_code, icon, colour, due_hours, facility_categories "
        f"FROM categories WHERE {where.sql} ORDER BY kind, std_code, code"), where.params).mappings()
    return [dict(r) for r in rows]


def database_ok(session: Session) -> bool:
    return session.execute(text("SELECT postgis_lib_version() IS NOT NULL")).scalar_one()
