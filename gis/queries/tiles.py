"""Mapbox vector tiles straight from PostGIS (ST_AsMVT) for the tablet maps: the tile SQL.

Each layer reads, at every zoom, only what its tile shows, so a tile of a whole city (zoom 10)
costs about what a street's does:

- ``regions``: the streets (街道) below zoom 12, the communities (社区) from zoom 12; simplified
  to the tile's pixel.
- ``grids`` (current versions) from zoom 13, where a tile holds a few hundred of them; above it
  the regions layer outlines them.
- ``buildings`` from zoom 15.
- ``facilities`` from zoom 10, thinned: a tile at zoom z shows the facilities whose ``min_zoom``
  (gis.rules.facility_min_zoom, a generated column) is at most z, read through the partial index
  of that zoom (migration 0012); every facility from gis.rules.FACILITY_ALL_ZOOM on.
- ``issues``: the open issues aggregated into cells of 1/32 of a tile (8 screen pixels on a
  256-pixel tile): a cell holds ``count``, ``overdue``, its most frequent ``category`` and, when
  it holds one issue, ``issue_id``. Issues are placed by their integer world pixel (``wx``,
  ``wy``, gis.rules.world_pixel), so a tile's box and cells are integer ranges, the same at every
  zoom, and the covering index of the open issues answers a tile of the whole city without
  reading the table.

Tiles carry no personal data. The issues layer is case data (``TileLayer.case_data``): its tiles
and bounds hold only the issues the reader may read (:func:`gis.people.actors.read_scope_sql`),
so the same tile differs from one reader to another. Tiles are XYZ (Web Mercator, y from the
north); ``extent`` 4096. Their TileJSON and cache headers are written by ``api/protocols/tiles.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import NotFound
from gis.people.actors import read_scope_sql
from gis.queries.reads import ANONYMOUS, Reader
from gis.rules import (
    FACILITY_ALL_ZOOM,
    FACILITY_FIRST_ZOOM,
    WORLD_LEVEL,
    open_sql,
    overdue_sql,
)

EXTENT = 4096
BUFFER = 64  # tile units drawn beyond the edge, so lines and fills join without seams
ISSUE_CELLS = 32  # aggregation cells per tile side
MAX_ZOOM = 24
SCOPE = "/*scope*/TRUE"  # in a case-data layer's SQL: replaced by the reader's scope on ``i``
GRID_MIN_ZOOM = 13
TILE_WORK_MEM = "32MB"
COMMUNITY_MIN_ZOOM = 12  # below it the regions layer shows streets (街道)


@dataclass(frozen=True)
class TileLayer:
    id: str
    minzoom: int  # below it the layer's tiles are empty
    properties: tuple[str, ...]  # what each feature carries besides its id
    rows_sql: Callable[[int], str]  # zoom -> rows with ``id`` and an MVT ``geom``, reading the
    #                                 CTE ``tile(env, box, wx0, wy0, wx1, wy1, cell, unit)``
    extent_sql: str  # FROM ... WHERE ... of the rows the layer shows
    case_data: bool = False  # issues: for logged-in readers, in their scope (SCOPE in the SQL)


# Polygons are simplified to the tile's pixel (1/EXTENT of its width) before they are clipped.
_PIXEL = f"(ST_XMax(tile.env) - ST_XMin(tile.env)) / {EXTENT}"


def _polygon_mvt(column: str) -> str:
    return (f"ST_AsMVTGeom(ST_Simplify(ST_Transform({column}, 3857), {_PIXEL}, true), tile.env, "
            f"{EXTENT}, {BUFFER}, true)")


def _regions(z: int) -> str:
    level = "community" if z >= COMMUNITY_MIN_ZOOM else "street"
    return f"""
    SELECT r.id, r.code, r.name, r.level, {_polygon_mvt("r.geom")} AS geom
      FROM regions r, tile WHERE r.level = '{level}' AND r.geom && tile.box"""


def _grids(z: int) -> str:
    return f"""
    SELECT g.id, g.code, g.name, g.households, g.population, {_polygon_mvt("g.geom")} AS geom
      FROM grids g, tile WHERE g.valid_to IS NULL AND g.geom && tile.box"""


def _buildings(z: int) -> str:
    return f"""
    SELECT b.id, b.name, c.name AS compound, b.floors, b.households,
           ST_AsMVTGeom(ST_Transform(b.geom, 3857), tile.env, {EXTENT}, {BUFFER}, true) AS geom
      FROM buildings b LEFT JOIN compounds c ON c.id = b.compound_id, tile
     WHERE b.geom && tile.box"""


# A point belongs to one tile only: west and north edges in, east and south edges out. (Clipping
# alone would keep a point a hair outside the tile once snapped to the tile grid.)
_IN_TILE = """ST_X(m.geom) >= ST_XMin(tile.env) AND ST_X(m.geom) < ST_XMax(tile.env)
              AND ST_Y(m.geom) > ST_YMin(tile.env) AND ST_Y(m.geom) <= ST_YMax(tile.env)"""


def _facilities(z: int) -> str:
    # The zoom is written into the statement, so the planner picks the partial index of that
    # zoom (``WHERE min_zoom <= z``, migration 0012); z is a checked integer.
    thinned = f"AND f.min_zoom <= {int(z)}" if z < FACILITY_ALL_ZOOM else ""
    return f"""
    SELECT f.id, f.code, f.category, f.status, f.name,
           ST_AsMVTGeom(m.geom, tile.env, {EXTENT}, 0, false) AS geom
      FROM facilities f, tile, LATERAL (SELECT ST_Transform(f.geom, 3857) AS geom) m
     WHERE f.geom && tile.box {thinned} AND {_IN_TILE}"""


# Cells are aligned to the tile, so a cell never straddles two tiles. The inner query reads only
# the columns of the covering index ix_issues_open_tiles (and those of the reader's scope), and
# counts per cell and category, so the most frequent category (ties: the first by code, as
# mode() would) needs no sort of the issues themselves.
def _issues(z: int) -> str:
    return f"""
    SELECT row_number() OVER (ORDER BY min(c.first_id)) AS id, sum(c.n)::bigint AS count,
           sum(c.overdue)::bigint AS overdue,
           (array_agg(c.category ORDER BY c.n DESC, c.category))[1] AS category,
           CASE WHEN sum(c.n) = 1 THEN min(c.first_id) END AS issue_id,
           ST_MakePoint(round(sum(c.sx) / sum(c.n)), round(sum(c.sy) / sum(c.n))) AS geom
      FROM (SELECT (i.wx - tile.wx0) / tile.cell AS cx, (i.wy - tile.wy0) / tile.cell AS cy,
                   i.category, count(*) AS n, count(*) FILTER (WHERE {overdue_sql('i')}) AS overdue,
                   min(i.id) AS first_id, sum((i.wx - tile.wx0) * tile.unit) AS sx,
                   sum((i.wy - tile.wy0) * tile.unit) AS sy
              FROM issues i, tile
             WHERE {open_sql('i')} AND i.wy >= tile.wy0 AND i.wy < tile.wy1
               AND i.wx >= tile.wx0 AND i.wx < tile.wx1 AND {SCOPE}
             GROUP BY 1, 2, 3) c
     GROUP BY c.cx, c.cy"""


LAYERS = {layer.id: layer for layer in (
    TileLayer("regions", FACILITY_FIRST_ZOOM, ("code", "name", "level"), _regions,
              "regions WHERE level IN ('street', 'community')"),
    TileLayer("grids", GRID_MIN_ZOOM, ("code", "name", "households", "population"),
              _grids, "grids WHERE valid_to IS NULL"),
    TileLayer("buildings", 15, ("name", "compound", "floors", "households"),
              _buildings, "buildings"),
    TileLayer("facilities", FACILITY_FIRST_ZOOM, ("code", "category", "status", "name"),
              _facilities, "facilities"),
    TileLayer("issues", 0, ("count", "overdue", "category", "issue_id"),
              _issues, f"issues i WHERE {open_sql('i')} AND {SCOPE}", case_data=True),
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


def tile_sql(layer: str, z: int, reader: Reader = ANONYMOUS) -> tuple[str, dict]:
    """The whole query of one layer's tile at zoom ``z``, with bound parameters ``z``, ``x``,
    ``y`` and those of the reader's scope (returned).

    Features go in by id, so the same data always makes the same bytes (and the same ETag).
    """
    spec = layer_spec(layer)
    rows, params = _scoped(spec, spec.rows_sql(z), reader)
    # wx0..wx1, wy0..wy1: the tile in world pixels (gis.rules.world_pixel), end excluded; a cell
    # is ``cell`` world pixels wide, and one world pixel is ``unit`` tile units.
    return f"""
        WITH tile AS (
            SELECT ST_TileEnvelope(:z, :x, :y) AS env,
                   ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => {BUFFER / EXTENT}), 4326) AS box,
                   span * :x AS wx0, span * :y AS wy0, span * (:x + 1) AS wx1,
                   span * (:y + 1) AS wy1, span / {ISSUE_CELLS} AS cell,
                   {EXTENT}::float8 / span AS unit
              FROM (SELECT (1::bigint << ({WORLD_LEVEL} - :z)) AS span) s)
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
    # A zoomed-out issues tile sorts tens of thousands of index entries into its cells: in
    # memory, not in temporary files (the default 4 MB spills at about 50,000).
    session.execute(text(f"SET LOCAL work_mem = '{TILE_WORK_MEM}'"))
    sql, params = tile_sql(layer, z, reader)
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
