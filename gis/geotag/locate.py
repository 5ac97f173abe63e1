"""Point -> grid (and so -> grid worker), from any coordinate system a device sends."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.geo.crs import parse_crs, to_wgs84
from gis.geotag.assign import CurrentGrids
from gis.geotag.index_cache import GridIndexCache


@dataclass(frozen=True)
class Located:
    lon: float  # WGS84
    lat: float
    source_crs: str
    method: str
    distance_m: float | None
    grid_id: int | None
    grid_version: int | None
    grid: dict | None  # code, name, worker (username, display name)


def locate_point(session: Session, cache: GridIndexCache, x: float, y: float,
                 crs: str = "wgs84", *, with_grid: bool = True,
                 grids: CurrentGrids | None = None) -> Located:
    """Convert ``(x, y)`` from ``crs`` to WGS84 and apply the grid-assignment rules
    (docs/ARCHITECTURE.md).

    ``with_grid=False`` skips reading the grid's name and worker (writes need only its id).
    ``grids``: the index to use instead of the cache's current one (a writer that checks the
    index's version in its own write, :meth:`GridIndexCache.latest`).
    """
    source_crs = parse_crs(crs)
    lon, lat = to_wgs84(x, y, source_crs)
    grids = grids if grids is not None else cache.get(session)
    found = grids.index.locate(lon, lat)
    if found.position is None:
        return Located(lon, lat, source_crs, found.method, None, None, None, None)
    distance = None if found.distance_m is None or math.isnan(found.distance_m) else found.distance_m
    grid_id = int(grids.ids[found.position])
    return Located(lon, lat, source_crs, found.method, distance, grid_id,
                   int(grids.versions[found.position]),
                   grid_summary(session, grid_id) if with_grid else None)


def grid_summary(session: Session, grid_id: int) -> dict:
    row = session.execute(text("""
        SELECT g.code, g.name,
               (SELECT json_build_object('username', u.username, 'display_name', u.display_name)
                  FROM grid_workers gw JOIN users u ON u.id = gw.user_id
                 WHERE gw.grid_code = g.code ORDER BY u.username LIMIT 1) AS worker
          FROM grids g WHERE g.id = :id"""), {"id": grid_id}).mappings().one()
    return dict(row)
