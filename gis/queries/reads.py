"""Queries as plain functions: sessions in, plain dicts out (the API turns them into GeoJSON).

Every list function returns a :class:`Page` (rows of one page and the total they were cut from).
Rows carry ``geometry`` as a GeoJSON dict (lon, lat order) and plain properties beside it.
Issues are selected by the one :class:`~gis.queries.filters.IssueFilter` and read through the one
read model (:mod:`gis.queries.issue_model`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.db.engine import cached_text
from gis.errors import Forbidden, InvalidCoordinates, NotFound
from gis.people.actors import Actor, act_scope_sql, read_scope_sql, region_parts_sql
from gis.queries.filters import BBox, IssueFilter, Where, check_categories
from gis.queries.issue_model import API_FIELDS, ISSUE_FROM, personal_column, present, select_list
from gis.rules import FACILITY_STATUSES, REGION_ROLES, field_action_sql, open_sql, overdue_sql
from gis.worktime.store import limits_json_sql


@dataclass(frozen=True)
class Reader:
    """Who reads, for doors that pass it on: the actor (None: anonymous) and whether
    ``GRIDMAP_PUBLIC_READ`` opens a masked public read."""

    actor: Actor | None = None
    public_read: bool = False


ANONYMOUS = Reader()
PUBLIC = Reader(public_read=True)  # every case, masked: what GRIDMAP_PUBLIC_READ shows the anonymous


@dataclass
class Page:
    items: list[dict]
    total: int
    revealed: list[int] = field(default_factory=list)  # ids whose personal data is in view


def _page(session: Session, select: str, source: str, where: Where, order: str, limit: int,
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


def _one(session: Session, select: str, source: str, where: Where, what: str) -> dict:
    row = session.execute(text(f"SELECT {select} FROM {source} WHERE {where.sql}"),
                          where.params).mappings().first()
    if row is None:
        raise NotFound(f"no {what}", zh=f"未找到：{what}")
    return _decode_json(dict(row))


def _decode_json(row: dict) -> dict:
    for key, value in row.items():
        if key in ("geometry", "props", "photo_urls", "photos", "open_issues_by_status",
                   "facilities_by_status") \
                and isinstance(value, str):
            row[key] = json.loads(value)
    return row


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
    where = Where(["g.valid_to IS NULL"])
    where.bbox("g.geom", bbox)
    where.community("c", community)
    where.text_search(("g.code", "g.name"), q)
    return _page(session, _GRID_COLUMNS, _GRID_SOURCE, where, "g.code", limit, offset)


def _grid_detail_columns(scope: str) -> str:
    """The grid's columns, its worker, and counts of the open issues the reader may read
    (``scope``: :func:`gis.people.actors.read_scope_sql` on ``i``) and of its facilities."""
    in_grid = f"ig.code = g.code AND {open_sql('i')} AND ({scope})"
    return _GRID_COLUMNS + f""",
    (SELECT u.display_name FROM grid_workers gw JOIN users u ON u.id = gw.user_id
      WHERE gw.grid_code = g.code ORDER BY u.username LIMIT 1) AS worker_display_name,
    (SELECT count(*) FROM issues i JOIN grids ig ON ig.id = i.grid_id
      WHERE {in_grid}) AS open_issues,
    (SELECT count(*) FROM issues i JOIN grids ig ON ig.id = i.grid_id
      WHERE {in_grid} AND {overdue_sql('i')}) AS overdue_issues,
    (SELECT coalesce(json_object_agg(status, n ORDER BY status), '{{}}') FROM (
        SELECT i.status, count(*) AS n FROM issues i JOIN grids ig ON ig.id = i.grid_id
         WHERE {in_grid} GROUP BY i.status) s
    ) AS open_issues_by_status,
    (SELECT json_object_agg(st, (SELECT count(*) FROM facilities f JOIN grids fg ON fg.id = f.grid_id
                                  WHERE fg.code = g.code AND f.status = st) ORDER BY st)
       FROM unnest(CAST(:facility_statuses AS text[])) st) AS facilities_by_status"""


ISSUE_COUNTS = ("open_issues", "overdue_issues", "open_issues_by_status")


def get_grid(session: Session, code: str, actor: Actor | None = None, *,
             public_read: bool = False) -> dict:
    """The current version of grid ``code`` with its worker, facilities by status, and the open
    issues ``actor`` may read (counts are case data: None for the anonymous, unless
    ``public_read``)."""
    scope, params = read_scope_sql(actor, public_read=public_read)
    where = Where(["g.valid_to IS NULL", "g.code = :code"],
                  {"code": code, "facility_statuses": list(FACILITY_STATUSES), **params})
    row = _one(session, _grid_detail_columns(scope), _GRID_SOURCE, where,
               f"current grid with code {code!r}")
    if actor is None and not public_read:
        row.update(dict.fromkeys(ISSUE_COUNTS))
    return row


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
    where = Where()
    where.bbox("b.geom", bbox)
    if grid:
        where.add("g.code = :grid", grid=grid)
    where.community("c", community)
    where.text_search(("b.name", "cp.name"), q)
    return _page(session, _BUILDING_COLUMNS, _BUILDING_SOURCE, where, "b.id", limit, offset)


def get_building(session: Session, building_id: int) -> dict:
    where = Where(["b.id = :id"], {"id": building_id})
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
    where = Where()
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
    where = Where(["f.id = :id"], {"id": facility_id})
    return _one(session, _FACILITY_COLUMNS, _FACILITY_SOURCE, where, f"facility with id {facility_id}")


# --- issues -----------------------------------------------------------------------------------

def list_issues(session: Session, actor: Actor | None, filters: IssueFilter | None = None, *,
                limit: int = 100, offset: int = 0, public_read: bool = False) -> Page:
    """The issues ``actor`` may read, newest report first, as
    :func:`gis.queries.issue_model.present` lets them see each."""
    where = scoped_where(session, actor, filters, public_read=public_read)
    personal, params = personal_column(actor)
    where.params |= params
    page = _page(session, f"{select_list(API_FIELDS)}, {personal}", ISSUE_FROM, where,
                 "i.reported_at DESC, i.id DESC", limit, offset)
    page.revealed = [row["id"] for row in page.items if present(row, actor)]
    return page


TASKS_LISTED = 500


def list_tasks(session: Session, actor: Actor, lon: float | None = None, lat: float | None = None,
               *, limit: int = TASKS_LISTED) -> Page:
    """我的任务: the open cases ``actor`` may act on (a worker: in the grids they hold; everyone
    else: in their scope), read as :func:`list_issues` reads them, each with the action on site
    it waits for (:func:`gis.rules.field_action_sql`: ``verify``, ``check`` or None) and its
    distance in metres from (``lon``, ``lat``) in WGS84 (None without them). Overdue first, then
    by due time (none last), then nearest (with a position), then by id; at most ``limit``."""
    if (lon is None) != (lat is None):
        raise InvalidCoordinates("give both lon and lat, or neither",
                                 zh="经度和纬度须同时提供，或都不提供")
    where = Where([open_sql("i")])
    scope, params = act_scope_sql(actor)
    if scope != "TRUE":
        where.add(scope, **params)
    distance = "CAST(NULL AS float)"
    if lon is not None and lat is not None:
        distance = ("round(ST_Distance(i.geom::geography, ST_SetSRID(ST_MakePoint(:here_lon, "
                    ":here_lat), 4326)::geography)::numeric, 1)::float")
        where.params |= {"here_lon": lon, "here_lat": lat}
    personal, personal_params = personal_column(actor)
    where.params |= personal_params
    select = (f"{select_list(API_FIELDS)}, {field_action_sql('i')} AS action, "
              f"{distance} AS distance_m, {personal}")
    order = f"{overdue_sql('i')} DESC, i.due_at ASC NULLS LAST, distance_m ASC NULLS LAST, i.id"
    page = _page(session, select, ISSUE_FROM, where, order, limit, 0)
    page.revealed = [row["id"] for row in page.items if present(row, actor)]
    return page


def scoped_where(session: Session, actor: Actor | None, filters: IssueFilter | None, *,
                 public_read: bool = False, t: str = "i") -> Where:
    """The filter's conditions and the reader's scope (out-of-scope cases are absent)."""
    where = (filters or IssueFilter()).where(session, t)
    _add_scope(where, actor, t, public_read)
    return where


def _add_scope(where: Where, actor: Actor | None, t: str, public_read: bool) -> None:
    scope, params = read_scope_sql(actor, t, public_read=public_read)
    if scope != "TRUE":
        where.add(scope, **params)


@dataclass(frozen=True)
class ScopedFilter(IssueFilter):
    """An :class:`IssueFilter` as ``reader`` applies it: its :meth:`where` adds the reader's
    scope, so every query composed from a filter (statistics, the map aggregates) counts only the
    cases the reader may read, and its :meth:`key` tells readers of different scopes apart."""

    reader: Actor | None = None
    public_read: bool = False

    @classmethod
    def of(cls, filters: IssueFilter, reader: Actor | None, *,
           public_read: bool = False) -> ScopedFilter:
        """``filters`` as ``reader`` applies them."""
        own = {f.name: getattr(filters, f.name) for f in fields(IssueFilter)}
        return cls(**own, reader=reader, public_read=public_read)

    def where(self, session: Session, t: str = "i") -> Where:
        where = super().where(session, t)
        _add_scope(where, self.reader, t, self.public_read)
        return where

    def where_parts(self, session: Session, t: str = "i") -> list[Where]:
        """Disjoint conditions whose union is :meth:`where`: for a leader or dispatcher the
        cases in the region's grids (first) and those in no grid inside it
        (:func:`gis.people.actors.region_parts_sql`), so that a scan of indexed columns reads
        each from an index alone; for every other reader :meth:`where` itself."""
        if self.reader is None or self.reader.role not in REGION_ROLES:
            return [self.where(session, t)]
        halves, params = region_parts_sql(self.reader, t)
        parts = []
        for half in halves:
            part = super().where(session, t)
            part.add(half, **params)
            parts.append(part)
        return parts

    def key(self) -> tuple:
        scope = self.reader.scope_key() if self.reader is not None else None
        return (*super().key(), scope, self.public_read)

    def region_grids(self) -> frozenset[str] | None:
        """The current grids of a leader's or dispatcher's region; None for every other reader
        (whose scope is not a set of grids)."""
        if self.reader is not None and self.reader.role in REGION_ROLES:
            return self.reader.region_grid_codes
        return None


def get_issue(session: Session, actor: Actor | None, issue_id: int, *,
              public_read: bool = False) -> tuple[dict, bool, bool]:
    """One issue as ``actor`` may see it; whether they may see its personal data; whether
    personal data is in view (an audited reveal). 404 when it does not exist, 403 when it is
    outside the reader's scope."""
    sql, params = issue_statement(actor, issue_id, public_read=public_read)
    return issue_from_rows(session.execute(cached_text(sql), params).mappings().all(), actor, issue_id)


def issue_statement(actor: Actor | None, issue_id: int | None = None, *,
                    public_read: bool = False, client_uuid=None) -> tuple[str, dict]:
    """The SQL and parameters of :func:`get_issue` (for :mod:`gis.db.steps`); the issue by its
    ``client_uuid`` instead of its id (a report's answer read before its id is known)."""
    where = Where(["i.id = :id"], {"id": issue_id}) if client_uuid is None else \
        Where(["i.client_uuid = CAST(:key AS uuid)"], {"key": client_uuid})
    scope, params = read_scope_sql(actor, public_read=public_read)
    personal, personal_params = personal_column(actor)
    return (f"SELECT {select_list(API_FIELDS)}, {personal}, ({scope}) AS _readable "
            f"FROM {ISSUE_FROM} WHERE {where.sql}"), where.params | params | personal_params


def issue_from_rows(rows, actor: Actor | None, issue_id: int) -> tuple[dict, bool, bool]:
    """:func:`get_issue`'s answer from the rows of :func:`issue_statement`."""
    if not rows:
        raise NotFound(f"no issue with id {issue_id}", zh=f"未找到：事件 {issue_id}")
    row = _decode_json(dict(rows[0]))
    if not row.pop("_readable"):
        raise Forbidden(f"issue {issue_id} is outside what you may read",
                        zh=f"事件 {issue_id} 不在您的查看范围内")
    personal = bool(row["_personal"])
    return row, personal, present(row, actor)


# --- categories -------------------------------------------------------------------------------

def list_categories(session: Session, kind: str | None = None) -> list[dict]:
    """Facility and issue categories (code, names in Chinese and English, icon, colour; for
    issues the time limits of each step by urgency, gis.worktime.store.limits_json_sql)."""
    where = Where()
    if kind:
        where.add("k.kind = :kind", kind=kind)
    rows = session.execute(text(
        "SELECT code, kind, name_zh, name_en, std_code, icon, colour, facility_categories, "
        f"CASE WHEN kind = 'issue' THEN {limits_json_sql('k')} END AS limits "
        f"FROM categories k WHERE {where.sql} ORDER BY kind, std_code, code"), where.params).mappings()
    return [dict(r) for r in rows]


def database_ok(session: Session) -> bool:
    return session.execute(text("SELECT postgis_lib_version() IS NOT NULL")).scalar_one()
