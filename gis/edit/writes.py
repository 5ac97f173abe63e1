"""Edits of grids, facilities and buildings: who may, what geometry is accepted, how rows are tagged.

Functions take the caller's session and never commit: the API commits once the whole edit worked.
Geometries arrive as GeoJSON dicts in any CRS ``gis.geo.crs`` accepts; they are checked (type, vertex
count, coordinate ranges, OGC validity) and stored in WGS84. A facility is tagged with the grid
its point falls in (the grid-assignment rules, the method kept in ``assignment``); a building with the
current grid holding most of its area. A grid edit keeps history: a redraw closes the old version
(``valid_to``) and adds a new one, a retirement only closes it, and both re-tag the stored rows
that the change can move (``gis.geotag.assign.assign_changed``), not the whole city.
"""

from __future__ import annotations

import json
import re
from datetime import date

import numpy as np
import shapely
from shapely.errors import GEOSException
from shapely.geometry import shape
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import Conflict, InvalidCoordinates, InvalidGeometry, NotFound
from gis.geo.crs import parse_crs, to_wgs84
from gis.geotag.assign import assign_changed
from gis.geotag.index_cache import GridIndexCache
from gis.geotag.locate import locate_point
from gis.people.actors import Actor, require_change, require_role
from gis.queries.reads import check_categories
from gis.rules import DEFAULT_TOLERANCE_M, MAX_VERTICES

MAX_GRID_OVERLAP_M2 = 1.0
POINT = ("Point",)
POLYGON = ("Polygon",)
AREAL = ("Polygon", "MultiPolygon")
_REASON_AT = re.compile(r"^(?P<reason>.*)\[(?P<x>\S+) (?P<y>\S+)\]$")


# --- geometry input ---------------------------------------------------------------------------

def read_geometry(geometry, crs: str | None = "wgs84", allowed: tuple[str, ...] = AREAL,
                  max_vertices: int = MAX_VERTICES) -> shapely.Geometry:
    """A GeoJSON geometry dict in ``crs`` -> a valid shapely geometry in WGS84.

    Raises InvalidGeometry saying what is wrong and where: a type other than ``allowed``,
    unreadable coordinates, more than ``max_vertices`` vertices, a coordinate out of range (by its
    index among the vertices) or an invalid shape (the GEOS reason and its location).
    """
    if not isinstance(geometry, dict) or not isinstance(geometry.get("type"), str):
        raise InvalidGeometry("geometry must be a GeoJSON object with 'type' and 'coordinates'; "
                              f"got {_short(geometry)}",
                              zh=f"geometry 应为含 type 和 coordinates 的 GeoJSON 对象；收到 {_short(geometry)}")
    kind = geometry["type"]
    if kind not in allowed:
        raise InvalidGeometry(f"expected a {' or '.join(allowed)} geometry, got {kind}",
                              zh=f"几何类型应为 {' 或 '.join(allowed)}，收到 {kind}")
    _check_rings_closed(geometry, kind)
    geom = _shape(geometry, kind)
    count = shapely.get_num_coordinates(geom)
    if count > max_vertices:
        raise InvalidGeometry(f"the {kind} has {count} vertices; at most {max_vertices} are accepted "
                              "(simplify it first)",
                              zh=f"该 {kind} 有 {count} 个顶点，最多接受 {max_vertices} 个（请先简化）")
    source_crs = parse_crs(crs or "wgs84")
    _check_valid(geom, kind, source_crs)
    return _to_wgs84(geom, kind, source_crs)


def _check_rings_closed(geometry: dict, kind: str) -> None:
    """RFC 7946 rings end where they start; shapely would close them silently, hiding a cut-off
    upload, so an open ring is an error that names the ring."""
    if kind not in AREAL:
        return
    coords = geometry.get("coordinates")
    polygons = [coords] if kind == "Polygon" else coords
    if not isinstance(polygons, list):
        return  # _shape reports unreadable coordinates
    for p, rings in enumerate(polygons):
        for r, ring in enumerate(rings if isinstance(rings, list) else []):
            if isinstance(ring, list) and len(ring) >= 2 and list(ring[0]) != list(ring[-1]):
                where = f"ring {r}" if kind == "Polygon" else f"polygon {p}, ring {r}"
                raise InvalidGeometry(f"the {kind}'s {where} is not closed: it starts at "
                                      f"{ring[0]} and ends at {ring[-1]}",
                                      zh=f"该 {kind} 的 {where} 未闭合：起点 {ring[0]}，终点 {ring[-1]}")


def _short(value) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _shape(geometry: dict, kind: str) -> shapely.Geometry:
    try:
        geom = shapely.force_2d(shape(geometry))
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, GEOSException) as exc:
        raise InvalidGeometry(f"the {kind} coordinates cannot be read: {exc}",
                              zh=f"无法读取该 {kind} 的坐标：{exc}") from None
    if geom.is_empty:
        raise InvalidGeometry(f"the {kind} is empty", zh=f"该 {kind} 为空")
    return geom


def _check_valid(geom: shapely.Geometry, kind: str, source_crs: str) -> None:
    coords = shapely.get_coordinates(geom)
    bad = ~np.isfinite(coords).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidGeometry(f"vertex {i} of the {kind} is {tuple(coords[i].tolist())}; "
                              "coordinates must be finite numbers",
                              zh=f"该 {kind} 的第 {i} 个顶点为 {tuple(coords[i].tolist())}；坐标应为有限的数字")
    if kind == "Point":
        return
    reason = shapely.is_valid_reason(geom)
    if reason != "Valid Geometry":
        found = _REASON_AT.match(reason)
        if found:
            reason = (f"{found['reason'].lower()} at ({found['x']}, {found['y']})"
                      f"{'' if source_crs == 'wgs84' else ' in ' + source_crs}")
        raise InvalidGeometry(f"the {kind} is not valid: {reason}",
                              zh=f"该 {kind} 无效（如自相交）：{reason}")


def _to_wgs84(geom: shapely.Geometry, kind: str, source_crs: str) -> shapely.Geometry:
    def convert(xy: np.ndarray) -> np.ndarray:
        lon, lat = to_wgs84(xy[:, 0], xy[:, 1], source_crs)
        return np.column_stack([lon, lat])

    try:
        out = shapely.transform(geom, convert)
    except InvalidCoordinates as exc:
        raise InvalidGeometry(f"the {kind} has a vertex out of range: {exc} "
                              "(the index counts vertices in the order given)",
                              zh=f"该 {kind} 有顶点超出范围：{exc.zh or exc}（序号按顶点给出的顺序）") from None
    coords = shapely.get_coordinates(out)
    bad = ~((np.abs(coords[:, 0]) <= 180) & (np.abs(coords[:, 1]) <= 90))
    if bad.any():  # a projected CRS can map far-off input to nonsense lon/lat
        i = int(np.flatnonzero(bad)[0])
        raise InvalidGeometry(f"vertex {i} of the {kind} lands outside lon [-180, 180] / "
                              f"lat [-90, 90] once converted from {source_crs}",
                              zh=f"该 {kind} 的第 {i} 个顶点从 {source_crs} 转换后超出经度 -180～180 / "
                                 "纬度 -90～90 的范围")
    return out


def _ewkt(geom: shapely.Geometry) -> str:
    return "SRID=4326;" + shapely.to_wkt(geom, rounding_precision=-1)


# --- facilities -------------------------------------------------------------------------------

_FACILITY_FIELDS = ("code", "category", "name", "status", "install_date", "owner", "maintainer",
                    "props")
_FACILITY_NOT_NULL = ("category", "status", "props")


def create_facility(session: Session, cache: GridIndexCache, actor: Actor, *, geometry: dict,
                    category: str, crs: str | None = "wgs84", max_vertices: int = MAX_VERTICES,
                    **fields) -> int:
    """Insert a facility tagged with its grid; workers only inside their own grids. Returns its id."""
    point = read_geometry(geometry, crs, POINT, max_vertices)
    check_categories(session, "facility", category)
    tag = _tag_point(session, cache, point)
    require_change(actor, tag["grid_code"], "facilities")
    values = _columns(fields, _FACILITY_FIELDS, _FACILITY_NOT_NULL) | {"category": category}
    _check_code_free(session, values.get("code"))
    names = list(values) + ["geom", "grid_id", "assignment"]
    return session.execute(text(
        f"INSERT INTO facilities ({', '.join(names)}) VALUES "
        f"({', '.join(':' + n for n in values)}, ST_GeomFromEWKT(:geom), :grid_id, :assignment) "
        "RETURNING id"), values | tag).scalar_one()


def update_facility(session: Session, cache: GridIndexCache, actor: Actor, facility_id: int, *,
                    geometry: dict | None = None, crs: str | None = "wgs84",
                    max_vertices: int = MAX_VERTICES, **fields) -> None:
    """Change a facility's status and attributes, or move it (re-tagged with its new grid).

    A worker must own the facility's grid, and for a move the grid it moves into as well.
    """
    old_grid = _current_grid_code(session, "facilities", facility_id, "facility")
    require_change(actor, old_grid, "facilities")
    values = _columns(fields, _FACILITY_FIELDS, _FACILITY_NOT_NULL)
    if "category" in values:
        check_categories(session, "facility", values["category"])
    if "code" in values:
        _check_code_free(session, values["code"], facility_id)
    sets = [f"{n} = :{n}" for n in values]
    if geometry is not None:
        tag = _tag_point(session, cache, read_geometry(geometry, crs, POINT, max_vertices))
        require_change(actor, tag["grid_code"], "facilities")
        values |= tag
        sets += ["geom = ST_GeomFromEWKT(:geom)", "grid_id = :grid_id", "assignment = :assignment"]
    session.execute(text(f"UPDATE facilities SET {', '.join([*sets, 'updated_at = now()'])} "
                         "WHERE id = :id"), values | {"id": facility_id})


def _tag_point(session: Session, cache: GridIndexCache, point: shapely.Point) -> dict:
    found = locate_point(session, cache, point.x, point.y, "wgs84")
    return {"geom": _ewkt(point), "grid_id": found.grid_id, "assignment": found.method,
            "grid_code": found.grid["code"] if found.grid else None}


def _check_code_free(session: Session, code: str | None, own_id: int | None = None) -> None:
    if code is None:
        return
    other = session.execute(text("SELECT id FROM facilities WHERE code = :c AND id IS DISTINCT FROM :i"),
                            {"c": code, "i": own_id}).scalar()
    if other is not None:
        raise Conflict(f"facility code {code!r} is already used by facility {other}",
                       zh=f"部件编码 {code!r} 已被部件 {other} 使用")


def _columns(fields: dict, allowed: tuple[str, ...], not_null: tuple[str, ...]) -> dict:
    """The editable columns given; None for a NOT NULL column means 'leave it as it is'."""
    unknown = set(fields) - set(allowed)
    if unknown:
        raise TypeError(f"not editable here: {', '.join(sorted(unknown))}")
    values = {k: v for k, v in fields.items() if not (v is None and k in not_null)}
    if isinstance(values.get("props"), dict):
        values["props"] = json.dumps(values["props"], ensure_ascii=False)
    if isinstance(values.get("install_date"), str):
        values["install_date"] = date.fromisoformat(values["install_date"])
    return values


def _current_grid_code(session: Session, table: str, row_id: int, what: str) -> str | None:
    row = session.execute(text(f"SELECT g.code FROM {table} t LEFT JOIN grids g ON g.id = t.grid_id "
                               "WHERE t.id = :id FOR UPDATE OF t"), {"id": row_id}).first()
    if row is None:
        raise NotFound(f"no {what} with id {row_id}", zh=f"未找到 id 为 {row_id} 的 {what}")
    return row[0]


# --- buildings --------------------------------------------------------------------------------

_BUILDING_FIELDS = ("name", "floors", "households", "party_households", "compound_id")
_BUILDING_NOT_NULL = ("name", "households", "party_households")


def create_building(session: Session, actor: Actor, *, geometry: dict, name: str,
                    crs: str | None = "wgs84", max_vertices: int = MAX_VERTICES, **fields) -> int:
    """Insert a building tagged with the grid holding most of its area. Returns its id."""
    polygon = read_geometry(geometry, crs, POLYGON, max_vertices)
    tag = _tag_polygon(session, polygon)
    require_change(actor, tag["grid_code"], "buildings")
    values = _building_values(session, fields) | {"name": name}
    names = list(values) + ["geom", "grid_id"]
    return session.execute(text(
        f"INSERT INTO buildings ({', '.join(names)}) VALUES "
        f"({', '.join(':' + n for n in values)}, ST_GeomFromEWKT(:geom), :grid_id) RETURNING id"),
        values | tag).scalar_one()


def update_building(session: Session, actor: Actor, building_id: int, *,
                    geometry: dict | None = None, crs: str | None = "wgs84",
                    max_vertices: int = MAX_VERTICES, **fields) -> None:
    """Change a building's attributes or outline (re-tagged); workers in their own grids only."""
    old_grid = _current_grid_code(session, "buildings", building_id, "building")
    require_change(actor, old_grid, "buildings")
    values = _building_values(session, fields)
    sets = [f"{n} = :{n}" for n in values]
    if geometry is not None:
        tag = _tag_polygon(session, read_geometry(geometry, crs, POLYGON, max_vertices))
        require_change(actor, tag["grid_code"], "buildings")
        values |= tag
        sets += ["geom = ST_GeomFromEWKT(:geom)", "grid_id = :grid_id"]
    if sets:
        session.execute(text(f"UPDATE buildings SET {', '.join(sets)} WHERE id = :id"),
                        values | {"id": building_id})


def _building_values(session: Session, fields: dict) -> dict:
    fields = dict(fields)
    if "compound" in fields:
        name = fields.pop("compound")
        fields["compound_id"] = None if name is None else _compound_id(session, name)
    return _columns(fields, _BUILDING_FIELDS, _BUILDING_NOT_NULL)


def _compound_id(session: Session, name: str) -> int:
    found = session.execute(text("SELECT id FROM compounds WHERE name = :n"), {"n": name}).scalar()
    if found is None:
        raise NotFound(f"no compound named {name!r}", zh=f"没有名为 {name!r} 的院落/小区")
    return found


def _tag_polygon(session: Session, polygon: shapely.Geometry) -> dict:
    """The current grid holding most of the polygon's area (ties: the smaller code), if any."""
    ewkt = _ewkt(polygon)
    row = session.execute(text("""
        SELECT g.id, g.code FROM grids g
         WHERE g.valid_to IS NULL AND ST_Intersects(g.geom, ST_GeomFromEWKT(:geom))
         ORDER BY ST_Area(ST_Intersection(g.geom, ST_GeomFromEWKT(:geom))) DESC, g.code
         LIMIT 1"""), {"geom": ewkt}).first()
    return {"geom": ewkt, "grid_id": row[0] if row else None, "grid_code": row[1] if row else None}


# --- grids ------------------------------------------------------------------------------------

def create_grid(session: Session, actor: Actor, *, code: str, name: str, community: str,
                geometry: dict, crs: str | None = "wgs84", households: int = 0,
                population: int = 0, worker: str | None = None,
                tolerance_m: float = DEFAULT_TOLERANCE_M, max_vertices: int = MAX_VERTICES) -> int:
    """Admins only: a new grid (version 1, or the next version of a retired code), rows re-tagged."""
    require_role(actor, "admin")
    geom = read_geometry(geometry, crs, AREAL, max_vertices)
    current = session.execute(text("SELECT id FROM grids WHERE code = :c AND valid_to IS NULL"),
                              {"c": code}).scalar()
    if current is not None:
        raise Conflict(f"grid {code} exists; redraw it with PUT /api/v1/grids/{code}",
                       zh=f"网格 {code} 已存在；请用 PUT /api/v1/grids/{code} 重新绘制")
    community_id = _community_id(session, community)
    _check_no_overlap(session, geom, code)
    last = session.execute(text("SELECT max(version) FROM grids WHERE code = :c"), {"c": code}).scalar()
    grid_id = _insert_grid(session, code=code, name=name, cid=community_id, geom=_ewkt(geom),
                           hh=households, pop=population, version=(last or 0) + 1)
    if worker is not None:
        _assign_worker(session, code, worker)
    assign_changed(session.connection(), [code], tolerance_m=tolerance_m)
    return grid_id


def redraw_grid(session: Session, actor: Actor, code: str, *, geometry: dict,
                crs: str | None = "wgs84", name: str | None = None, households: int | None = None,
                population: int | None = None, tolerance_m: float = DEFAULT_TOLERANCE_M,
                max_vertices: int = MAX_VERTICES) -> int:
    """Admins only: close the current version (valid_to) and add the next; open issues, facilities
    and buildings are re-tagged on the same connection, so it all commits or fails together."""
    require_role(actor, "admin")
    geom = read_geometry(geometry, crs, AREAL, max_vertices)
    _check_no_overlap(session, geom, code)
    old = session.execute(text(
        "UPDATE grids SET valid_to = now() WHERE code = :c AND valid_to IS NULL "
        "RETURNING name, community_id, households, population, version"), {"c": code}).first()
    if old is None:
        raise NotFound(f"no current grid with code {code!r}", zh=f"没有编码为 {code!r} 的现行网格")
    grid_id = _insert_grid(session, code=code, name=old.name if name is None else name,
                           cid=old.community_id, geom=_ewkt(geom),
                           hh=old.households if households is None else households,
                           pop=old.population if population is None else population,
                           version=old.version + 1)
    assign_changed(session.connection(), [code], tolerance_m=tolerance_m)
    return grid_id


def retire_grid(session: Session, actor: Actor, code: str, *,
                tolerance_m: float = DEFAULT_TOLERANCE_M) -> None:
    """Admins only: close the current version (nothing is deleted) and re-tag what it held."""
    require_role(actor, "admin")
    closed = session.execute(text(
        "UPDATE grids SET valid_to = now() WHERE code = :c AND valid_to IS NULL RETURNING id"),
        {"c": code}).scalar()
    if closed is None:
        raise NotFound(f"no current grid with code {code!r}", zh=f"没有编码为 {code!r} 的现行网格")
    assign_changed(session.connection(), [code], tolerance_m=tolerance_m)


def _check_no_overlap(session: Session, geom: shapely.Geometry, code: str) -> None:
    """Grids must tile their community: refuse a polygon that overlaps another current grid by
    more than :data:`MAX_GRID_OVERLAP_M2` (a shared edge or vertex is no overlap), naming each
    grid and the area. The tolerance absorbs the snapping slips of hand-drawn shared edges."""
    rows = session.execute(text("""
        SELECT g.code, ST_Area(ST_Intersection(g.geom, n.geom)::geography) AS m2
          FROM grids g, (SELECT ST_GeomFromEWKT(:geom) AS geom) n
         WHERE g.valid_to IS NULL AND g.code <> :code AND ST_Intersects(g.geom, n.geom)
         ORDER BY g.code"""), {"geom": _ewkt(geom), "code": code}).all()
    overlaps = [(c, m2) for c, m2 in rows if m2 > MAX_GRID_OVERLAP_M2]
    if overlaps:
        listed = ", ".join(f"{c} by {m2:,.1f} m²" for c, m2 in overlaps)
        raise InvalidGeometry(
            f"grid {code} would overlap {listed}; grids may share edges but not area. To move a "
            "shared boundary, first redraw the grid that gives up the area, then the other",
            zh=f"网格 {code} 将与 {listed} 重叠；网格可以共用边界，但不能重叠。要移动共用边界，"
               "请先重绘让出面积的网格，再重绘另一个")


def _insert_grid(session: Session, **values) -> int:
    return session.execute(text(
        "INSERT INTO grids (code, name, community_id, geom, households, population, version) "
        "VALUES (:code, :name, :cid, ST_Multi(ST_GeomFromEWKT(:geom)), :hh, :pop, :version) "
        "RETURNING id"), values).scalar_one()


def _community_id(session: Session, community: str) -> int:
    found = session.execute(text(
        "SELECT id FROM regions WHERE level = 'community' AND (name = :n OR code = :n)"),
        {"n": community}).scalar()
    if found is None:
        raise NotFound(f"no community named or coded {community!r}",
                       zh=f"没有名称或编码为 {community!r} 的社区")
    return found


def _assign_worker(session: Session, code: str, username: str) -> None:
    user_id = session.execute(text("SELECT id FROM users WHERE username = :u AND role = 'worker'"),
                              {"u": username}).scalar()
    if user_id is None:
        raise NotFound(f"no grid worker with username {username!r}",
                       zh=f"没有用户名为 {username!r} 的网格员")
    session.execute(text("INSERT INTO grid_workers (grid_code, user_id) VALUES (:c, :u) "
                         "ON CONFLICT DO NOTHING"), {"c": code, "u": user_id})
