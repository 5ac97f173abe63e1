"""Builders of the data that out-of-scope tests need, inside the test's rolled-back transaction.

The demo has one community (太东社区, 140429100001, under street 140429100 of district 140429), so
every case is inside the leader's region. :func:`other_places` adds two more, each with a grid, a
building, a facility and a case: a community under another street of the same district (outside
the leader's community, inside the dispatcher's district) and one in another district (outside
both). :func:`demo_cases` picks demo cases with a known department. Everything is added with the
test's ``sql`` fixture, so it disappears with the test.
"""

from __future__ import annotations

from dataclasses import dataclass

GRID_OWN = "140429100001003"  # worker03's
GRID_OTHER = "140429100001005"  # worker05's
SECRET_PHONE = "13912345678"  # in the new cases' descriptions: masked wherever personal data is not shown


@dataclass(frozen=True)
class Place:
    """A community with one grid and one of each thing in it."""

    community_code: str
    grid_code: str
    grid_id: int
    issue_id: int
    facility_id: int
    building_id: int
    lon: float
    lat: float


@dataclass(frozen=True)
class Places:
    same_district: Place  # another street of district 140429: the dispatcher's, not the leader's
    other_district: Place  # district 140430: nobody's but the admin's


def _square(lon: float, lat: float, half: float) -> str:
    return (f"SRID=4326;MULTIPOLYGON((({lon - half} {lat - half}, {lon + half} {lat - half}, "
            f"{lon + half} {lat + half}, {lon - half} {lat + half}, {lon - half} {lat - half})))")


def _region(sql, code: str, name: str, level: str, parent_code: str | None, lon: float,
            lat: float) -> int:
    found = sql("SELECT id FROM regions WHERE code = :c", c=code)
    if found:
        return found[0][0]
    return sql("""INSERT INTO regions (code, name, level, parent_id, geom)
                  VALUES (:c, :n, :l, (SELECT id FROM regions WHERE code = :p),
                          ST_GeomFromEWKT(:g)) RETURNING id""",
               c=code, n=name, l=level, p=parent_code, g=_square(lon, lat, 0.004))[0][0]


def add_place(sql, district: str, street: str, community: str, lon: float, lat: float,
              *, department: str | None = None) -> Place:
    """District (if new), street, community and grid ``community + 001`` as squares around
    (lon, lat), and in the grid a building, a streetlight and a dispatched garbage case."""
    _region(sql, district, f"测试区县{district}", "district", None, lon, lat)
    _region(sql, street, f"测试街道{street}", "street", district, lon, lat)
    community_id = _region(sql, community, f"测试社区{community}", "community", street, lon, lat)
    grid_code = f"{community}001"
    grid_id = sql("""INSERT INTO grids (code, name, community_id, geom, households, population)
                     VALUES (:c, :n, :cid, ST_GeomFromEWKT(:g), 200, 500) RETURNING id""",
                  c=grid_code, n=f"测试网格{grid_code}", cid=community_id,
                  g=_square(lon, lat, 0.002))[0][0]
    point = f"SRID=4326;POINT({lon} {lat})"
    building_id = sql("""INSERT INTO buildings (name, geom, floors, households, grid_id)
                         VALUES ('测试楼', ST_GeometryN(ST_GeomFromEWKT(:g), 1), 6, 24, :grid)
                         RETURNING id""", g=_square(lon + 0.001, lat + 0.001, 0.0002),
                      grid=grid_id)[0][0]
    facility_id = sql("""INSERT INTO facilities (category, name, geom, grid_id, assignment)
                         VALUES ('streetlight', '测试路灯', ST_GeomFromEWKT(:p), :grid, 'inside')
                         RETURNING id""", p=point, grid=grid_id)[0][0]
    issue_id = add_case(sql, lon, lat, grid_id=grid_id, department=department)
    return Place(community, grid_code, grid_id, issue_id, facility_id, building_id, lon, lat)


def add_case(sql, lon: float, lat: float, *, grid_id: int | None, department: str | None = None,
             status: str = "dispatched", category: str = "garbage") -> int:
    """A case at (lon, lat) tagged to ``grid_id`` (None: in no grid), reported an hour ago, with
    a contact and a phone number in its description."""
    return sql(f"""
        INSERT INTO issues (category, description, reporter_contact, geom, grid_id, grid_version,
                            assignment, status, department_id, reported_at, due_at)
        VALUES (:k, '路边垃圾堆积，联系电话{SECRET_PHONE}', '13900001111',
                ST_SetSRID(ST_MakePoint(:x, :y), 4326), :grid,
                CASE WHEN CAST(:grid AS int) IS NULL THEN NULL ELSE 1 END,
                CASE WHEN CAST(:grid AS int) IS NULL THEN 'unassigned' ELSE 'inside' END,
                :s, (SELECT id FROM departments WHERE code = :d),
                now() - interval '1 hour', now() + interval '1 day')
        RETURNING id""", k=category, x=lon, y=lat, grid=grid_id, s=status, d=department)[0][0]


def other_places(sql) -> Places:
    return Places(
        same_district=add_place(sql, "140429", "140429101", "140429101001", 112.90, 36.84,
                                department="huanwei"),
        other_district=add_place(sql, "140430", "140430100", "140430100001", 112.95, 36.84,
                                 department="huanwei"))


def grid_point(sql, code: str) -> tuple[float, float]:
    """A point well inside the current grid ``code``."""
    return tuple(sql("""SELECT ST_X(p), ST_Y(p) FROM (
                            SELECT ST_PointOnSurface(ST_Buffer(geom, -0.0002)) AS p FROM grids
                             WHERE code = :c AND valid_to IS NULL) g""", c=code)[0])


def grid_id(sql, code: str) -> int:
    return sql("SELECT id FROM grids WHERE code = :c AND valid_to IS NULL", c=code)[0][0]
