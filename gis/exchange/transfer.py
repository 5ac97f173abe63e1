"""Moving validated GeoDataFrames (from ``gis.exchange.files``) into and out of PostGIS.

An import is one transaction: either every row lands or none does. Rows that name an unknown
category are reported row by row, like the geometry problems ``gis.exchange.files`` finds.
"""

from __future__ import annotations

import uuid

import geopandas as gpd
import pandas as pd
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import ImportFailed
from gis.queries.issue_model import ISSUE_FROM, select_list
from gis.rules import BEIJING_TZ_NAME, DEFAULT_URGENCY, URGENCIES
from gis.worktime.steps import promised_due
from gis.worktime.store import all_limits, load_calendar, workday_end

EXPORT_ISSUE_FIELDS = ("id", "client_uuid", "category", "description", "status", "urgency",
                       "reported_at",
                       "closed_at", "grid_code", "assignment")
_EXPORT_SQL = {
    "grids": """SELECT g.code, g.name, c.name AS community, g.households, g.population, g.version,
                       ST_AsBinary(g.geom) AS wkb
                  FROM grids g JOIN regions c ON c.id = g.community_id
                 WHERE g.valid_to IS NULL ORDER BY g.code""",
    "buildings": """SELECT b.id, b.name, c.name AS compound, b.floors, b.households,
                           b.party_households, g.code AS grid_code, ST_AsBinary(b.geom) AS wkb
                      FROM buildings b LEFT JOIN compounds c ON c.id = b.compound_id
                      LEFT JOIN grids g ON g.id = b.grid_id ORDER BY b.id""",
    "facilities": """SELECT f.id, f.code, f.category, f.name, f.status, g.code AS grid_code,
                            ST_AsBinary(f.geom) AS wkb
                       FROM facilities f LEFT JOIN grids g ON g.id = f.grid_id ORDER BY f.id""",
    # Personal data (reporter_contact) never leaves through an export. The idempotency key goes
    # along (the export is an administrator's act on the server): re-importing the file then
    # finds the same issues instead of duplicating them.
    # A report still waiting for its photo's location has no place to export yet.
    "issues": f"""SELECT {select_list(EXPORT_ISSUE_FIELDS, geometry="wkb")}
                    FROM {ISSUE_FROM} WHERE i.geom IS NOT NULL ORDER BY i.id""",
}


def export_features(session: Session, kind: str) -> gpd.GeoDataFrame:
    """The stored rows of ``kind`` as a GeoDataFrame in EPSG:4326."""
    frame = pd.DataFrame(session.execute(text(_EXPORT_SQL[kind])).mappings().all())
    if frame.empty:
        return gpd.GeoDataFrame(columns=["geometry"], geometry="geometry", crs=4326)
    geoms = shapely.from_wkb([bytes(b) for b in frame.pop("wkb")])
    for col in ("reported_at", "closed_at"):
        if col in frame:
            frame[col] = pd.to_datetime(frame[col], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S%z")
    return gpd.GeoDataFrame(frame, geometry=geoms, crs=4326)


def import_features(session: Session, kind: str, gdf: gpd.GeoDataFrame) -> int:
    """Insert the rows of ``kind``; raises ImportFailed (and writes nothing) on bad rows."""
    if gdf.crs is None or gdf.crs.to_epsg() != 4326:
        raise ImportFailed(f"import_features expects EPSG:4326 data, got {gdf.crs}",
                           zh=f"导入的数据应为 EPSG:4326 坐标，收到 {gdf.crs}")
    importer = {"grids": _import_grids, "buildings": _import_buildings,
                "facilities": _import_facilities, "issues": _import_issues}[kind]
    return importer(session, gdf.reset_index(drop=True))


def _ewkt(geom) -> str:
    return "SRID=4326;" + shapely.to_wkt(geom, rounding_precision=-1)


def _check_categories(session: Session, gdf: gpd.GeoDataFrame, kind: str) -> None:
    known = set(session.execute(text("SELECT code FROM categories WHERE kind = :k"),
                                {"k": kind}).scalars())
    bad = [(i + 1, f"unknown {kind} category {c!r}; known: {', '.join(sorted(known))}")
           for i, c in enumerate(gdf["category"]) if c not in known]
    if bad:
        raise ImportFailed(f"{len(bad)} row(s) name an unknown category", rows=bad,
                           zh=f"有 {len(bad)} 行的类别无法识别（第一处：第 {bad[0][0]} 行，"
                              f"{gdf['category'].iloc[bad[0][0] - 1]!r}）；"
                              f"可用的类别：{', '.join(sorted(known))}")


def _import_grids(session: Session, gdf: gpd.GeoDataFrame) -> int:
    """New codes become version 1; an existing code is redrawn: the old version is closed."""
    for row in gdf.itertuples():
        community_id = _community_id(session, str(row.community))
        old = session.execute(text(
            "UPDATE grids SET valid_to = now() WHERE code = :code AND valid_to IS NULL "
            "RETURNING version, households, population"), {"code": str(row.code)}).first()
        session.execute(text(
            "INSERT INTO grids (code, name, community_id, geom, households, population, version) "
            "VALUES (:code, :name, :cid, ST_Multi(ST_GeomFromEWKT(:geom)), :hh, :pop, :version)"),
            {"code": str(row.code), "name": str(row.name), "cid": community_id,
             "geom": _ewkt(row.geometry), "version": (old.version + 1) if old else 1,
             "hh": _int(getattr(row, "households", None), old.households if old else 0),
             "pop": _int(getattr(row, "population", None), old.population if old else 0)})
    grow_communities(session)
    return len(gdf)


def _community_id(session: Session, name: str) -> int:
    found = session.execute(text(
        "SELECT id FROM regions WHERE level = 'community' AND (name = :n OR code = :n)"),
        {"n": name}).scalar()
    if found is not None:
        return found
    # A new community: its outline starts empty and grows with its grids (see grow_communities).
    code = "X" + uuid.uuid5(uuid.NAMESPACE_URL, name).hex[:11]
    return session.execute(text(
        "INSERT INTO regions (code, name, level, geom) "
        "VALUES (:code, :name, 'community', ST_GeomFromText('MULTIPOLYGON EMPTY', 4326)) RETURNING id"),
        {"code": code, "name": name}).scalar_one()


def _int(value, default: int) -> int:
    return default if value is None or pd.isna(value) else int(value)


def _import_buildings(session: Session, gdf: gpd.GeoDataFrame) -> int:
    for row in gdf.itertuples():
        compound = getattr(row, "compound", None)
        compound_id = session.execute(text("SELECT id FROM compounds WHERE name = :n"),
                                      {"n": compound}).scalar() if compound else None
        session.execute(text(
            "INSERT INTO buildings (name, compound_id, geom, floors, households) "
            "VALUES (:name, :cid, ST_GeomFromEWKT(:geom), :floors, :hh)"),
            {"name": str(row.name), "cid": compound_id, "geom": _ewkt(row.geometry),
             "floors": _int(getattr(row, "floors", None), 0) or None,
             "hh": _int(getattr(row, "households", None), 0)})
    return len(gdf)


def _import_facilities(session: Session, gdf: gpd.GeoDataFrame) -> int:
    _check_categories(session, gdf, "facility")
    for row in gdf.itertuples():
        session.execute(text(
            "INSERT INTO facilities (code, category, name, status, geom) "
            "VALUES (:code, :category, :name, :status, ST_GeomFromEWKT(:geom))"),
            {"code": _text(getattr(row, "code", None)), "category": row.category,
             "name": _text(getattr(row, "name", None)),
             "status": _text(getattr(row, "status", None)) or "ok", "geom": _ewkt(row.geometry)})
    return len(gdf)


def _import_issues(session: Session, gdf: gpd.GeoDataFrame) -> int:
    """Historical cases: each one's due_at is its handling limit counted from its reported_at by
    the live rule (gis.worktime.steps.promised_due). They come without a history, so they have
    no step rows."""
    _check_categories(session, gdf, "issue")
    _check_urgencies(gdf)
    limits, calendar, end = all_limits(session), load_calendar(session), workday_end(session)
    for row in gdf.itertuples():
        reported_at = _time(getattr(row, "reported_at", None))
        urgency = _urgency(getattr(row, "urgency", None))
        session.execute(text(
            "INSERT INTO issues (client_uuid, category, description, status, urgency, reported_at, "
            "geom, source_x, source_y, due_at) "
            "VALUES (:uuid, :category, :description, :status, :urgency, :reported_at, "
            "ST_GeomFromEWKT(:geom), :x, :y, :due_at) "
            "ON CONFLICT (client_uuid) DO NOTHING"),
            {"uuid": _text(getattr(row, "client_uuid", None)) or str(uuid.uuid4()),
             "category": row.category, "description": _text(getattr(row, "description", None)) or "",
             "status": _text(getattr(row, "status", None)) or "reported", "urgency": urgency,
             "reported_at": reported_at, "geom": _ewkt(row.geometry),
             "x": row.geometry.x, "y": row.geometry.y,
             "due_at": promised_due(reported_at, limits.get(row.category, {}).get(urgency, {}),
                                    calendar, end)})
    return len(gdf)


def _urgency(value) -> str:
    return _text(value) or DEFAULT_URGENCY


def _check_urgencies(gdf: gpd.GeoDataFrame) -> None:
    if "urgency" not in gdf:
        return
    bad = [(i + 1, f"urgency is one of {', '.join(URGENCIES)}, got {u!r}")
           for i, u in enumerate(gdf["urgency"]) if _urgency(u) not in URGENCIES]
    if bad:
        raise ImportFailed(f"{len(bad)} row(s) name an unknown urgency", rows=bad,
                           zh=f"有 {len(bad)} 行的紧急程度无法识别（第一处：第 {bad[0][0]} 行）；"
                              f"可用的值：{'、'.join(URGENCIES)}")


def _text(value) -> str | None:
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def _time(value):
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return pd.Timestamp.now(tz="UTC").to_pydatetime()
    ts = pd.Timestamp(value)
    return (ts.tz_localize(BEIJING_TZ_NAME) if ts.tzinfo is None else ts).to_pydatetime()


def grow_communities(session: Session) -> None:
    """Communities created by an import take the union of their grids as outline."""
    session.execute(text("""
        UPDATE regions r SET geom = ST_Multi(u.geom)
          FROM (SELECT community_id, ST_Union(geom) AS geom FROM grids
                 WHERE valid_to IS NULL GROUP BY community_id) u
         WHERE r.id = u.community_id AND ST_IsEmpty(r.geom)
    """))


def export_communities(session: Session) -> gpd.GeoDataFrame:
    frame = pd.DataFrame(session.execute(text(
        "SELECT code, name, ST_AsBinary(geom) AS wkb FROM regions WHERE level = 'community' "
        "ORDER BY code")).mappings().all())
    geoms = shapely.from_wkb([bytes(b) for b in frame.pop("wkb")]) if len(frame) else []
    return gpd.GeoDataFrame(frame, geometry=list(geoms), crs=4326)
