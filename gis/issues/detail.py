"""One issue as its action page shows it (``/maps/issue/{id}``): whitelisted columns, the grid it
is tagged to, the linked facility, nearby streets for the offline base map, its history and the
statuses it may move to next; and the photos uploaded for it (:func:`issue_photos`).

Maps never show personal data: reporter contact is never selected here, and the description
and history notes are masked (:func:`gis.people.privacy.mask_text`); the page's own script asks
the API for them when its reader may see them (:class:`IssueAccess`). Who may open the page at
all is the reader's scope (:func:`issue_access`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import geopandas as gpd
import pandas as pd
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import Forbidden, NotFound
from gis.issues.branches import Available, available
from gis.issues.workflow import history
from gis.people.actors import Actor, personal_sql, read_scope_sql
from gis.people.privacy import mask_text
from gis.queries.issue_model import ISSUE_FROM, select_list
from gis.rules import TRANSITIONS

WGS84 = "EPSG:4326"
# The fields of the one issue read model the page shows, and the grid worker's name beside them.
# No personal field (gis.queries.issue_model.PERSONAL_FIELDS) is among them.
ISSUE_DETAIL_COLUMNS = ("id", "category", "description", "status", "priority", "reported_at",
                        "due_at", "closed_at", "overdue", "assignment", "photo_urls", "grid_code",
                        "grid_name", "facility_code", "facility_name")
STREETS_WITHIN_DEG = 0.003  # ~300 m around the grid, as on the grid map


@dataclass
class IssueDetail:
    """``issue``: one row of :data:`ISSUE_DETAIL_COLUMNS` and ``worker``, its location as the geometry;
    ``grid``: the outline of the grid version it is tagged to (code, name; empty when in no
    grid); ``facility``: the linked facility (code, name, category, status; empty when none);
    ``streets``: streets near the grid (or the issue); ``category``: the issue category's row
    (code, name_zh, name_en, icon, colour); ``history``: the audit trail
    (:func:`gis.issues.workflow.history`); ``allowed_next``: the statuses the workflow allows next."""

    issue: gpd.GeoDataFrame
    grid: gpd.GeoDataFrame
    facility: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame
    category: dict
    history: list[dict]
    allowed_next: tuple[str, ...]


@dataclass(frozen=True)
class IssueAccess:
    """What the reader of an issue page may do there: whether they are logged in, may move the
    issue through the workflow, and may see its personal data (fetched by the page's script)."""

    logged_in: bool = False
    may_act: bool = False
    personal: bool = False
    command: Available = Available()  # the command centre's actions open to them now


def issue_access(session: Session, issue_id: int, reader: Actor | None, *,
                 public_read: bool = False) -> IssueAccess:
    """``reader``'s access to ``issue_id``: NotFound when there is no such issue, Forbidden when
    it is outside what they may read (:func:`gis.people.actors.read_scope_sql`)."""
    scope, params = read_scope_sql(reader, public_read=public_read)
    personal, personal_params = personal_sql(reader)
    row = session.execute(text(f"""
        SELECT ({scope}) AS readable, ({personal}) AS personal, g.code, i.department_id
          FROM issues i LEFT JOIN grids g ON g.id = i.grid_id WHERE i.id = :id"""),
        params | personal_params | {"id": issue_id}).first()
    if row is None:
        raise NotFound(f"issue {issue_id} does not exist", zh=f"事件 {issue_id} 不存在")
    if not row.readable:
        raise Forbidden(f"issue {issue_id} is outside what you may read",
                        zh=f"事件 {issue_id} 不在您的查看范围内")
    if reader is None:
        return IssueAccess()
    may_act = reader.may_act_on(row.code, row.department_id)
    command = available(session, reader, issue_id) if may_act else Available()
    return IssueAccess(True, may_act, bool(row.personal), command)


def issue_detail(session: Session, issue_id: int) -> IssueDetail:
    """What the action page of ``issue_id`` shows, personal data masked; NotFound when there is
    no such issue. Whether the reader may see it at all is :func:`issue_access`."""
    issue = _query(session, f"""
        SELECT {select_list(ISSUE_DETAIL_COLUMNS, geometry="wkb")},
               (SELECT u.display_name FROM grid_workers gw JOIN users u ON u.id = gw.user_id
                 WHERE gw.grid_code = g.code ORDER BY u.username LIMIT 1) AS worker
          FROM {ISSUE_FROM} WHERE i.id = :id""", {"id": issue_id},
                   [*ISSUE_DETAIL_COLUMNS, "worker"])
    if issue.empty:
        raise NotFound(f"issue {issue_id} does not exist", zh=f"事件 {issue_id} 不存在")
    grid = _query(session, """
        SELECT g.code, g.name, ST_AsBinary(g.geom) AS wkb FROM grids g
         WHERE g.id = (SELECT grid_id FROM issues WHERE id = :id)""", {"id": issue_id},
                  ["code", "name"])
    facility = _query(session, """
        SELECT f.code, f.name, f.category, f.status, ST_AsBinary(f.geom) AS wkb FROM facilities f
         WHERE f.id = (SELECT facility_id FROM issues WHERE id = :id)""", {"id": issue_id},
                      ["code", "name", "category", "status"])
    issue["description"] = issue["description"].map(mask_text)
    status = str(issue["status"].iloc[0])
    return IssueDetail(issue, grid, facility, _streets(session, issue_id),
                       _category(session, str(issue["category"].iloc[0])),
                       history(session, issue_id, personal=False), TRANSITIONS.get(status, ()))


def issue_photos(session: Session, issue_id: int) -> list[dict]:
    """The photos uploaded for ``issue_id``, oldest first, as the read model lists them
    (:data:`gis.queries.issue_model.ISSUE_FIELDS` ``photos``: id, kind, taken_at as an aware
    datetime or None, width, height); [] when it has none or does not exist. Kept apart from
    :func:`issue_detail` because the page cache is keyed on them: an upload changes no
    ``data_version``."""
    photos = session.execute(text(
        f"SELECT {select_list(('photos',), geometry=None)} FROM {ISSUE_FROM} WHERE i.id = :id"),
        {"id": issue_id}).scalar() or []
    return [p | {"taken_at": _instant(p["taken_at"])} for p in photos]


def _instant(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _streets(session: Session, issue_id: int) -> gpd.GeoDataFrame:
    return _query(session, """
        SELECT s.name, s.kind, ST_AsBinary(s.geom) AS wkb FROM streets s, issues i
          LEFT JOIN grids g ON g.id = i.grid_id
         WHERE i.id = :id AND ST_DWithin(s.geom, coalesce(g.geom, i.geom), :deg)
         ORDER BY s.id""", {"id": issue_id, "deg": STREETS_WITHIN_DEG}, ["name", "kind"])


def _category(session: Session, code: str) -> dict:
    row = session.execute(text(
        "SELECT code, name_zh, name_en, icon, colour FROM categories "
        "WHERE code = :c AND kind = 'issue'"), {"c": code}).mappings().first()
    if row is None:  # a category removed since: show its code rather than fail
        return {"code": code, "name_zh": code, "name_en": code, "icon": "question",
                "colour": "#999999"}
    return dict(row)


def _query(session: Session, sql: str, params: dict, columns: list[str]) -> gpd.GeoDataFrame:
    rows = session.execute(text(sql), params).mappings().all()
    frame = pd.DataFrame([{c: r[c] for c in columns} for r in rows], columns=columns)
    # no geometry: a report that waits for its photo's position
    geoms = shapely.from_wkb([None if r["wkb"] is None else bytes(r["wkb"]) for r in rows]) \
        if rows else []
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=WGS84), crs=WGS84)
