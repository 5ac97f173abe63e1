"""Queries as plain functions: sessions in, plain dicts out (the API turns them into GeoJSON)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import InvalidCoordinates


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
            raise InvalidCoordinates(f"bbox needs 4 numbers minx,miny,maxx,maxy; got {raw!r}")
        try:
            minx, miny, maxx, maxy = (float(p) for p in parts)
        except ValueError as exc:
            raise InvalidCoordinates(f"bbox has a value that is not a number: {raw!r}") from exc
        box = cls(minx, miny, maxx, maxy)
        box.validate()
        return box

    def validate(self) -> None:
        if not (-180 <= self.minx <= 180 and -180 <= self.maxx <= 180):
            raise InvalidCoordinates(f"bbox longitudes must be within [-180, 180]; got {self}")
        if not (-90 <= self.miny <= 90 and -90 <= self.maxy <= 90):
            raise InvalidCoordinates(f"bbox latitudes must be within [-90, 90]; got {self}")
        if self.minx > self.maxx or self.miny > self.maxy:
            raise InvalidCoordinates(f"bbox min must not exceed max; got {self}")


@dataclass
class Page:
    items: list[dict]
    total: int


_GRID_SELECT = """
    SELECT g.id, g.code, g.name, c.name AS community, c.code AS community_code, g.households,
           g.population, g.version, g.valid_from,
           (SELECT u.username FROM grid_workers gw JOIN users u ON u.id = gw.user_id
             WHERE gw.grid_code = g.code ORDER BY u.username LIMIT 1) AS worker,
           ST_AsGeoJSON(g.geom, 7)::json AS geometry, count(*) OVER () AS total
      FROM grids g JOIN regions c ON c.id = g.community_id
"""


def list_grids(session: Session, *, bbox: BBox | None = None, community: str | None = None,
               limit: int = 100, offset: int = 0) -> Page:
    """Current grids (valid_to IS NULL), ordered by code."""
    where, params = ["g.valid_to IS NULL"], {"limit": limit, "offset": offset}
    if bbox is not None:
        where.append("g.geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)")
        params |= bbox.__dict__
    if community:
        where.append("(c.name = :community OR c.code = :community)")
        params["community"] = community
    sql = f"{_GRID_SELECT} WHERE {' AND '.join(where)} ORDER BY g.code LIMIT :limit OFFSET :offset"
    rows = [dict(r) for r in session.execute(text(sql), params).mappings()]
    total = rows[0]["total"] if rows else _count_grids(session, where, params)
    for r in rows:
        r.pop("total")
        if isinstance(r["geometry"], str):
            r["geometry"] = json.loads(r["geometry"])
    return Page(rows, total)


def _count_grids(session: Session, where: list[str], params: dict) -> int:
    sql = f"SELECT count(*) FROM grids g JOIN regions c ON c.id = g.community_id WHERE {' AND '.join(where)}"
    return session.execute(text(sql), params).scalar_one()


def database_ok(session: Session) -> bool:
    return session.execute(text("SELECT postgis_lib_version() IS NOT NULL")).scalar_one()
