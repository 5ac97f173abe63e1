"""An offline package for a grid worker's tablet: one GeoPackage to work from in a dead zone.

Layers: ``grid`` (the current version), ``neighbours`` (current grids within 5 m of it),
``buildings``, ``facilities`` and ``issues`` (the open ones the reader may read, without reporter
contact or client UUID, phone and ID-card numbers in descriptions masked: a package leaves the
server) of the grid, plus two tables without geometry: ``categories`` (to file reports offline) and
``package_info`` (what was exported, when, and where reports go back). Reports made offline are
sent later to ``POST /api/v1/issues`` with an Idempotency-Key, so a retried sync never
duplicates one. Coordinates are WGS84 (EPSG:4326).

A leader's or dispatcher's package is of a grid in their region (another is
:class:`~gis.errors.Forbidden`); department staff get their department's cases.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import Forbidden, NotFound
from gis.people.actors import read_scope_sql
from gis.people.privacy import mask_text
from gis.queries.issue_model import FREE_TEXT_FIELDS, ISSUE_FROM, select_list
from gis.queries.reads import Reader
from gis.rules import REGION_ROLES, open_sql
from gis.worktime.store import limits_json_sql

NEIGHBOUR_M = 5.0  # shared boundaries drawn with small gaps still make neighbours
SYNC_ENDPOINT = "/api/v1/issues"
GRID_COLUMNS = """g.code, g.name, c.name AS community, g.households, g.population, g.version,
                  g.valid_from, ST_AsBinary(g.geom) AS wkb"""

_SCOPE = "/*scope*/TRUE"  # replaced by the reader's scope on the issues row ``i``
# (layer, geometry type, SQL with :grid_id and :code)
# The fields of an open issue a tablet takes along: no personal field leaves the server.
PACKAGE_ISSUE_FIELDS = ("id", "category", "category_zh", "description", "status", "priority",
                        "facility_id", "reported_at", "due_at", "overdue")
_LAYERS = (
    ("grid", "MultiPolygon", f"""
        SELECT {GRID_COLUMNS} FROM grids g JOIN regions c ON c.id = g.community_id
         WHERE g.id = :grid_id"""),
    ("neighbours", "MultiPolygon", f"""
        SELECT {GRID_COLUMNS} FROM grids g JOIN regions c ON c.id = g.community_id,
               grids t
         WHERE t.id = :grid_id AND g.valid_to IS NULL AND g.id <> t.id
           AND g.geom && ST_Expand(t.geom, 0.001)
           AND ST_DWithin(g.geom::geography, t.geom::geography, {NEIGHBOUR_M})
         ORDER BY g.code"""),
    ("buildings", "Polygon", """
        SELECT b.id, b.name, cp.name AS compound, b.floors, b.households, b.party_households,
               ST_AsBinary(b.geom) AS wkb
          FROM buildings b JOIN grids g ON g.id = b.grid_id
          LEFT JOIN compounds cp ON cp.id = b.compound_id
         WHERE g.code = :code ORDER BY b.id"""),
    ("facilities", "Point", """
        SELECT f.id, f.code, f.category, k.name_zh AS category_zh, f.name, f.status,
               f.install_date, f.owner, f.maintainer, ST_AsBinary(f.geom) AS wkb
          FROM facilities f JOIN grids g ON g.id = f.grid_id JOIN categories k ON k.code = f.category
         WHERE g.code = :code ORDER BY f.id"""),
    # Personal data (reporter_contact) and the reporting device's key (client_uuid) stay home.
    ("issues", "Point", f"""
        SELECT {select_list(PACKAGE_ISSUE_FIELDS, geometry="wkb")} FROM {ISSUE_FROM}
         WHERE g.code = :code AND {open_sql('i')} AND {_SCOPE}
         ORDER BY i.reported_at, i.id"""),
)
# limits: the issue categories' time limits as JSON text ({"normal": {"handle": {"value",
# "unit"}, ...}, "urgent": {...}}, gis.worktime.store.limits_json_sql), null for facilities
_CATEGORIES_SQL = f"""SELECT code, kind, name_zh, name_en, icon, colour,
                        CASE WHEN kind = 'issue' THEN CAST({limits_json_sql('k')} AS text) END AS limits
                       FROM categories k ORDER BY kind, std_code, code"""


def export_grid_package(session: Session, code: str, path: str | Path, *,
                        reader: Reader) -> dict[str, int]:
    """Write the package of grid ``code`` as ``reader`` may have it to ``path`` (replacing it)
    and return rows per layer. (The ``gridmap export-grid`` command reads as
    :data:`gis.queries.reads.PUBLIC`: every case, nothing personal.)

    The file is written next to ``path`` and moved into place at the end, so a failed export
    never leaves half a package where the tablet expects one.
    """
    path = Path(path)
    if path.suffix.lower() != ".gpkg":
        raise ValueError(f"the package is a GeoPackage: expected a path ending in .gpkg, got {path.name}")
    grid_id = _current_grid_id(session, code)
    actor = reader.actor
    if actor is not None and actor.role in REGION_ROLES and not actor.in_region(code):
        raise Forbidden(f"grid {code} is outside the region of {actor.username}",
                        zh=f"网格 {code} 不在 {actor.username} 的管辖区域内")
    fd, scratch = tempfile.mkstemp(suffix=".gpkg", dir=path.parent or None)
    os.close(fd)
    os.unlink(scratch)  # GDAL creates the file itself
    try:
        counts = _write_layers(session, grid_id, code, Path(scratch), reader)
        os.replace(scratch, path)
    finally:
        if os.path.exists(scratch):
            os.unlink(scratch)
    return counts


def _current_grid_id(session: Session, code: str) -> int:
    grid_id = session.execute(text(
        "SELECT id FROM grids WHERE code = :c AND valid_to IS NULL"), {"c": code}).scalar()
    if grid_id is None:
        raise NotFound(f"no current grid with code {code!r}", zh=f"没有编码为 {code!r} 的现行网格")
    return grid_id


def _write_layers(session: Session, grid_id: int, code: str, path: Path,
                  reader: Reader) -> dict[str, int]:
    counts: dict[str, int] = {}
    scope, scope_params = read_scope_sql(reader.actor, public_read=reader.public_read)
    params = {"grid_id": grid_id, "code": code, **scope_params}
    for layer, geometry_type, sql in _LAYERS:
        frame = _geo_frame(session.execute(text(sql.replace(_SCOPE, f"({scope})")), params))
        for column in FREE_TEXT_FIELDS:
            if column in frame:
                frame[column] = frame[column].map(mask_text)
        pyogrio.write_dataframe(frame, path, layer=layer, driver="GPKG", geometry_type=geometry_type,
                                promote_to_multi=geometry_type.startswith("Multi"))
        counts[layer] = len(frame)
    categories = pd.DataFrame(session.execute(text(_CATEGORIES_SQL)).mappings().all())
    pyogrio.write_dataframe(categories, path, layer="categories", driver="GPKG")
    counts["categories"] = len(categories)
    version = session.execute(text("SELECT version FROM grids WHERE id = :i"), {"i": grid_id}).scalar()
    info = pd.DataFrame([{"grid_code": code, "grid_version": version,
                          "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
                          "sync_endpoint": SYNC_ENDPOINT,
                          "sync_note": "POST each offline report with an Idempotency-Key header"}])
    pyogrio.write_dataframe(info, path, layer="package_info", driver="GPKG")
    return counts


def _geo_frame(result) -> gpd.GeoDataFrame:
    """Rows with a ``wkb`` column as a GeoDataFrame; an empty result keeps its columns."""
    frame = pd.DataFrame(result.all(), columns=list(result.keys()))
    geometry = shapely.from_wkb([bytes(b) for b in frame.pop("wkb")])
    for column in frame.columns:
        values = frame[column].dropna()
        if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
            frame[column] = frame[column].dt.tz_convert("UTC")  # GeoPackage stores UTC
        elif frame[column].dtype == object and len(values) and all(isinstance(v, int) for v in values):
            frame[column] = frame[column].astype("Int64")  # ids that may be missing
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=4326)
