"""Mapbox vector tiles straight from PostGIS (ST_AsMVT) for the tablet maps: the tile SQL.

Layers: ``grids`` (current versions), ``buildings``, ``facilities`` and ``issues``, the open issues
aggregated into cells of 1/32 of a tile (8 screen pixels on a 256-pixel tile): a cell holds
``count``, ``overdue``, its most frequent ``category`` and, when it holds one issue, ``issue_id``.
Tiles carry no personal data. The issues layer is case data (``TileLayer.case_data``): its tiles
and bounds hold only the issues the reader may read (:func:`gis.people.actors.read_scope_sql`),
so the same tile differs from one reader to another. Tiles are XYZ (Web Mercator, y from the
north); ``extent`` 4096. Their TileJSON and cache headers are written by ``api/protocols/tiles.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import NotFound
from gis.people.actors import read_scope_sql
from gis.queries.reads import ANONYMOUS, Reader
from gis.rules import open_sql, overdue_sql

EXTENT = 4096
BUFFER = 64  # tile units drawn beyond the edge, so lines and fills join without seams
ISSUE_CELL = 128  # tile units per aggregation cell
MAX_ZOOM = 24
SCOPE = "/*scope*/TRUE"  # in a case-data layer's SQL: replaced by the reader's scope on ``i``


@dataclass(frozen=True)
class TileLayer:
    id: str
    minzoom: int  # below it the layer's tiles are empty
    properties: tuple[str, ...]  # what each feature carries besides its id
    rows_sql: str  # rows with ``id`` and an MVT ``geom``, reading the CTE ``tile(env, box)``
    extent_sql: str  # FROM ... WHERE ... of the rows the layer shows
    case_data: bool = False  # issues: for logged-in readers, in their scope (SCOPE in the SQL)


_GRIDS = f"""
    SELECT g.id, g.code, g.name, g.households, g.population,
           ST_AsMVTGeom(ST_Transform(g.geom, 3857), tile.env, {EXTENT}, {BUFFER}, true) AS geom
      FROM grids g, tile WHERE g.valid_to IS NULL AND g.geom && tile.box"""
_BUILDINGS = f"""
    SELECT b.id, b.name, c.name AS compound, b.floors, b.households,
           ST_AsMVTGeom(ST_Transform(b.geom, 3857), tile.env, {EXTENT}, {BUFFER}, true) AS geom
      FROM buildings b LEFT JOIN compounds c ON c.id = b.compound_id, tile
     WHERE b.geom && tile.box"""
# A point belongs to one tile only: west and north edges in, east and south edges out. (Clipping
# alone would keep a point a hair outside the tile once snapped to the tile grid.)
_IN_TILE = """ST_X(m.geom) >= ST_XMin(tile.env) AND ST_X(m.geom) < ST_XMax(tile.env)
              AND ST_Y(m.geom) > ST_YMin(tile.env) AND ST_Y(m.geom) <= ST_YMax(tile.env)"""
_FACILITIES = f"""
    SELECT f.id, f.code, f.category, f.status, f.name,
           ST_AsMVTGeom(m.geom, tile.env, {EXTENT}, 0, false) AS geom
      FROM facilities f, tile, LATERAL (SELECT ST_Transform(f.geom, 3857) AS geom) m
     WHERE f.geom && tile.box AND {_IN_TILE}"""
# Cells are aligned to the tile, so a cell never straddles two tiles.
_ISSUES = f"""
    SELECT row_number() OVER (ORDER BY min(p.id)) AS id, count(*) AS count,
           count(*) FILTER (WHERE p.overdue) AS overdue,
           mode() WITHIN GROUP (ORDER BY p.category) AS category,
           CASE WHEN count(*) = 1 THEN min(p.id) END AS issue_id,
           ST_SnapToGrid(ST_Centroid(ST_Collect(p.geom)), 1) AS geom
      FROM (SELECT i.id, i.category, {overdue_sql('i')} AS overdue,
                   ST_AsMVTGeom(m.geom, tile.env, {EXTENT}, 0, false) AS geom
              FROM issues i, tile, LATERAL (SELECT ST_Transform(i.geom, 3857) AS geom) m
             WHERE {open_sql('i')} AND i.geom && tile.box AND {SCOPE}
               AND {_IN_TILE}) p
     WHERE p.geom IS NOT NULL
     GROUP BY floor(ST_X(p.geom) / {ISSUE_CELL}), floor(ST_Y(p.geom) / {ISSUE_CELL})"""

LAYERS = {layer.id: layer for layer in (
    TileLayer("grids", 0, ("code", "name", "households", "population"),
              _GRIDS, "grids WHERE valid_to IS NULL"),
    TileLayer("buildings", 12, ("name", "compound", "floors", "households"),
              _BUILDINGS, "buildings"),
    TileLayer("facilities", 13, ("code", "category", "status", "name"),
              _FACILITIES, "facilities"),
    TileLayer("issues", 0, ("count", "overdue", "category", "issue_id"),
              _ISSUES, f"issues i WHERE {open_sql('i')} AND {SCOPE}", case_data=True),
)}


def layer_spec(layer: str) -> TileLayer:
    try:
        return LAYERS[layer]
    except KeyError:
        raise NotFound(f"no tile layer {layer!r}; layers: {', '.join(LAYERS)}",
                       zh=f"没有名为 {layer!r} 的瓦片图层；可用：{', '.join(LAYERS)}") from None


def check_tile(z: int, x: int, y: int) -> None:
    if not 0 <= z <= MAX_ZOOM:
        raise NotFound(f"zoom must be within 0..{MAX_ZOOM}; got {z}",
                       zh=f"缩放级别应在 0..{MAX_ZOOM} 之内；收到 {z}")
    if not (0 <= x < 2 ** z and 0 <= y < 2 ** z):
        raise NotFound(f"tile {z}/{x}/{y} is outside the {2 ** z}x{2 ** z} tiles of zoom {z}",
                       zh=f"瓦片 {z}/{x}/{y} 超出缩放级别 {z} 的 {2 ** z}x{2 ** z} 个瓦片的范围")


def _scoped(spec: TileLayer, sql: str, reader: Reader) -> tuple[str, dict]:
    if not spec.case_data:
        return sql, {}
    scope, params = read_scope_sql(reader.actor, "i", public_read=reader.public_read)
    return sql.replace(SCOPE, f"({scope})"), params


def tile_sql(layer: str, reader: Reader = ANONYMOUS) -> tuple[str, dict]:
    """The whole query of one layer's tile, with bound parameters ``z``, ``x``, ``y`` and those
    of the reader's scope (returned).

    Features go in by id, so the same data always makes the same bytes (and the same ETag).
    """
    spec = layer_spec(layer)
    rows, params = _scoped(spec, spec.rows_sql, reader)
    return f"""
        WITH tile AS (
            SELECT ST_TileEnvelope(:z, :x, :y) AS env,
                   ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => {BUFFER / EXTENT}), 4326) AS box)
        SELECT ST_AsMVT(rows.*, '{spec.id}', {EXTENT}, 'geom', 'id')
          FROM ({rows} ORDER BY id) rows WHERE rows.geom IS NOT NULL""", params


def render_tile(session: Session, layer: str, z: int, x: int, y: int,
                reader: Reader = ANONYMOUS) -> bytes:
    """The tile as MVT bytes; empty when nothing of ``layer`` is in it or z is below its minzoom."""
    spec = layer_spec(layer)
    check_tile(z, x, y)
    if z < spec.minzoom:
        return b""
    # PostGIS declares its functions costly, so a tile of a few thousand rows passes
    # jit_above_cost and PostgreSQL spends ~0.5 s compiling a query that runs in milliseconds.
    session.execute(text("SET LOCAL jit = off"))
    sql, params = tile_sql(layer, reader)
    data = session.execute(text(sql), params | {"z": z, "x": x, "y": y}).scalar()
    return bytes(data or b"")


def layer_bounds(session: Session, layer: str,
                 reader: Reader = ANONYMOUS) -> tuple[float, float, float, float] | None:
    """(west, south, east, north) in degrees of what ``layer`` shows the reader; None when it
    shows nothing."""
    spec = layer_spec(layer)
    source, params = _scoped(spec, spec.extent_sql, reader)
    box = session.execute(text(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
        f"(SELECT ST_Extent(geom) AS e FROM {source}) s"), params).one()
    return tuple(box) if box[0] is not None else None


# -- tile arithmetic (XYZ, Web Mercator) --------------------------------------------------------
def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(west, south, east, north) of a tile in degrees."""
    n = 2 ** z

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)


def tile_at(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The (x, y) of the zoom-``z`` tile holding the point."""
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    rad = math.radians(lat)
    y = int((1 - math.asinh(math.tan(rad)) / math.pi) / 2 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def tiles_covering(bounds: tuple[float, float, float, float], z: int) -> list[tuple[int, int, int]]:
    """Every zoom-``z`` tile that touches ``bounds`` (west, south, east, north)."""
    west, south, east, north = bounds
    x0, y0 = tile_at(west, north, z)
    x1, y1 = tile_at(east, south, z)
    return [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
