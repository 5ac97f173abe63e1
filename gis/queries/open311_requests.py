"""Reads behind Open311 GeoReport v2: issue categories (its services) and issues as its service
requests. Plain rows; ``api/protocols/open311.py`` writes them in the spec's JSON and XML.

:func:`read_service_requests` and :func:`read_service_request` are the one place that says
which columns a service request shows: no reporter contact, no client UUID, free text masked
(a GeoReport client keeps what it reads). Service requests are case data: only the issues in the
reader's scope (:func:`gis.queries.reads.scoped_where`); one outside it is
:class:`~gis.errors.Forbidden`.
"""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import Forbidden, NotFound
from gis.people.actors import Actor, read_scope_sql
from gis.queries.filters import IssueFilter
from gis.queries.issue_model import ISSUE_FROM, mask_free_text, select_list
from gis.queries.reads import scoped_where
from gis.worktime.store import limits_json_sql


# -- services -------------------------------------------------------------------------------------
def issue_categories(session: Session, code: str | None = None) -> list[dict]:
    """Issue categories (all, or the one ``code``) with names, standard class, time limits
    (gis.worktime.store.limits_json_sql) and the facility categories they concern."""
    rows = session.execute(text(
        f"SELECT code, name_zh, name_en, std_code, {limits_json_sql('k')} AS limits, "
        "facility_categories FROM categories k "
        "WHERE kind = 'issue' AND (CAST(:c AS text) IS NULL OR code = :c) ORDER BY std_code, code"),
        {"c": code}).mappings()
    return [dict(r) for r in rows]


def issue_category(session: Session, code: str) -> dict | None:
    found = issue_categories(session, code)
    return found[0] if found else None


def category_names(session: Session, codes: list[str]) -> dict[str, str]:
    """Chinese names of the categories ``codes`` (those that exist)."""
    return dict(session.execute(text(
        "SELECT code, name_zh FROM categories WHERE code = ANY(:k)"), {"k": codes}).all())


# -- service requests -----------------------------------------------------------------------------
# The fields of the one issue read model a service request shows: only what the public may
# read, no personal field (gis.queries.issue_model.PERSONAL_FIELDS).
SERVICE_REQUEST_FIELDS = ("id", "category", "category_zh", "handle_limit", "description", "status",
                          "final", "reported_at", "due_at", "last_changed_at", "photo_urls",
                          "photos", "lon", "lat", "grid_code", "grid_name")
_REQUEST_SQL = f"SELECT {select_list(SERVICE_REQUEST_FIELDS, geometry=None)} FROM {ISSUE_FROM}"


def read_service_requests(session: Session, actor: Actor | None, flt: IssueFilter,
                          limit: int = 1000, *, public_read: bool = False) -> list[dict]:
    """The issues ``actor`` may read as service requests, newest first, at most ``limit``."""
    where = scoped_where(session, actor, flt, public_read=public_read)
    rows = session.execute(text(
        f"{_REQUEST_SQL} WHERE {where.sql} ORDER BY i.reported_at DESC, i.id DESC LIMIT :limit"),
        where.params | {"limit": limit}).mappings()
    return [mask_free_text(dict(r)) for r in rows]


def read_service_request(session: Session, actor: Actor | None, request_id: int, *,
                         public_read: bool = False) -> dict:
    """One issue as a service request: 404 when there is none, 403 outside the reader's scope."""
    scope, params = read_scope_sql(actor, public_read=public_read)
    row = session.execute(text(f"""
        SELECT {select_list(SERVICE_REQUEST_FIELDS, geometry=None)}, ({scope}) AS _readable
          FROM {ISSUE_FROM} WHERE i.id = :id"""), params | {"id": request_id}).mappings().first()
    if row is None:
        raise NotFound(f"no service request with service_request_id {request_id}",
                       zh=f"没有 service_request_id 为 {request_id} 的诉求")
    row = dict(row)
    if not row.pop("_readable"):
        raise Forbidden(f"service request {request_id} is outside what you may read",
                        zh=f"诉求 {request_id} 不在您的查看范围内")
    return mask_free_text(row)


# -- what a posted request names ------------------------------------------------------------------
def facility_by_code(session: Session, code: str) -> int | None:
    """The id of the facility with the 16-digit plate code ``code``."""
    return session.execute(text("SELECT id FROM facilities WHERE code = :c"), {"c": code}).scalar()


def locate_address(session: Session, address: str) -> tuple[float, float] | None:
    """(lon, lat) of a point inside the building or compound that ``address`` names (the longest
    name wins: "水利局家属院3号楼" is the building, not the compound); None when it names none."""
    compact = re.sub(r"\s+", "", address)
    row = session.execute(text("""
        SELECT ST_X(p), ST_Y(p) FROM (
            SELECT ST_PointOnSurface(b.geom) AS p, length(c.name || b.name) AS n
              FROM buildings b JOIN compounds c ON c.id = b.compound_id
             WHERE strpos(:a, c.name || b.name) > 0
            UNION ALL
            SELECT ST_PointOnSurface(c.geom), length(c.name) FROM compounds c
             WHERE strpos(:a, c.name) > 0) found
         ORDER BY n DESC LIMIT 1"""), {"a": compact}).first()
    return (row[0], row[1]) if row else None
