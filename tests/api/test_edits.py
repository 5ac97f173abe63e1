"""Writing grids, facilities and buildings over HTTP: who may, geometry checks, tagging, history.

Every request runs in the test's transaction (the ``client`` fixture), rolled back after the
test, so the tests write freely; tests/conftest.py checks that the module leaves the demo data
exactly as it found it.
"""

from __future__ import annotations

import json
import math

import pytest

from api.schemas import BuildingPublic, FacilityPublic, GridDetailPublic, _max_vertices
from gis.geo.crs import from_wgs84

GRID_03, GRID_05 = "140429100001003", "140429100001005"
ROLES = ("anonymous", "owner", "other_worker", "leader", "admin")
# Test grids lie ~1.2 km east of the demo community (its east edge is at lon 112.867), so nothing
# of the demo is within the 50 m tolerance of them and re-tagging leaves the demo as it was.
EAST_A = (112.880, 36.836)
EAST_B = (112.892, 36.836)
TEST_CODE_PREFIX = "1404291000019"


_SNAPSHOT = """
    SELECT (SELECT md5(string_agg(concat_ws(':', id, grid_id, grid_version, assignment, status),
                                  ',' ORDER BY id)) FROM issues),
           (SELECT md5(string_agg(concat_ws(':', id, grid_id, assignment, status, ST_AsText(geom)),
                                  ',' ORDER BY id)) FROM facilities),
           (SELECT md5(string_agg(concat_ws(':', id, grid_id, name, ST_AsText(geom)), ','
                                  ORDER BY id)) FROM buildings),
           (SELECT md5(string_agg(concat_ws(':', id, code, version, valid_to, ST_AsText(geom)), ','
                                  ORDER BY id)) FROM grids),
           (SELECT md5(string_agg(concat_ws(':', grid_code, user_id), ',' ORDER BY grid_code, user_id))
              FROM grid_workers),
           (SELECT md5(string_agg(ST_AsText(geom), ',' ORDER BY id)) FROM regions),
           (SELECT count(*) FROM issue_events)
"""


@pytest.fixture(scope="module")
def inside(committed_sql):
    """A point well inside each demo grid: {code: (lon, lat)}."""
    rows = committed_sql("SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) "
                         "p FROM grids WHERE valid_to IS NULL) s")
    return {code: (x, y) for code, x, y in rows}


def point(lon: float, lat: float) -> dict:
    return {"type": "Point", "coordinates": [lon, lat]}


def square(lon: float, lat: float, metres: float = 10.0) -> dict:
    """A square of ``metres`` side around (lon, lat), counter-clockwise."""
    dx = metres / 2 / (111_320 * math.cos(math.radians(lat)))
    dy = metres / 2 / 110_540
    ring = [[lon - dx, lat - dy], [lon + dx, lat - dy], [lon + dx, lat + dy], [lon - dx, lat + dy],
            [lon - dx, lat - dy]]
    return {"type": "Polygon", "coordinates": [ring]}


def grid_body(code: str, where=EAST_A, **extra) -> dict:
    return {"code": code, "name": f"测试网格{code[-3:]}", "community": "太东社区",
            "geometry": square(*where, metres=300), "households": 100, **extra}


def make_grid(client, headers, code: str, worker: str = "worker03") -> dict:
    r = client.post("/api/v1/grids", json=grid_body(code, worker=worker), headers=headers["admin"])
    assert r.status_code == 201, r.text
    return r.json()


def make_facility(client, headers, where, role="admin", **extra) -> dict:
    body = {"geometry": point(*where), "category": "bench", "name": "测试座椅", **extra}
    r = client.post("/api/v1/facilities", json=body, headers=headers[role])
    assert r.status_code == 201, r.text
    return r.json()


def make_building(client, headers, where) -> dict:
    body = {"geometry": square(*where), "name": "测试楼", "floors": 6, "households": 24}
    r = client.post("/api/v1/buildings", json=body, headers=headers["admin"])
    assert r.status_code == 201, r.text
    return r.json()


# --- the authorization matrix -----------------------------------------------------------------

MATRIX = {  # expected status for anonymous, the grid's worker, another worker, leader, admin
    "create facility": (401, 201, 403, 201, 201),
    "change facility status": (401, 200, 403, 200, 200),
    "move facility within its grid": (401, 200, 403, 200, 200),
    "move facility into another grid": (401, 403, 403, 200, 200),
    "create building": (401, 201, 403, 201, 201),
    "change building": (401, 200, 403, 200, 200),
    "move building into another grid": (401, 403, 403, 200, 200),
    "create grid": (401, 403, 403, 403, 201),
    "redraw grid": (401, 403, 403, 403, 200),
    "retire grid": (401, 403, 403, 403, 204),
}


def _request(case: str, client, headers, inside) -> tuple[str, str, dict | None]:
    """(method, url, body) for one matrix case, after making what it acts on (as an admin)."""
    p03, p05 = inside[GRID_03], inside[GRID_05]
    near03 = (p03[0] + 0.00005, p03[1])
    if case == "create facility":
        return "POST", "/api/v1/facilities", {"geometry": point(*p03), "category": "bench"}
    if case == "create building":
        return "POST", "/api/v1/buildings", {"geometry": square(*p03), "name": "测试楼"}
    if case == "create grid":
        return "POST", "/api/v1/grids", grid_body(TEST_CODE_PREFIX + "01")
    if "facility" in case:
        fid = make_facility(client, headers, p03)["id"]
        body = {"status": "damaged"} if "status" in case else {
            "geometry": point(*(near03 if "within" in case else p05))}
        return "PATCH", f"/api/v1/facilities/{fid}", body
    if "building" in case:
        bid = make_building(client, headers, p03)["id"]
        body = {"floors": 7} if case == "change building" else {"geometry": square(*p05)}
        return "PATCH", f"/api/v1/buildings/{bid}", body
    code = TEST_CODE_PREFIX + "02"
    make_grid(client, headers, code)  # worker03 owns it: still not theirs to redraw
    if case == "redraw grid":
        return "PUT", f"/api/v1/grids/{code}", {"geometry": square(*EAST_B, metres=300)}
    return "DELETE", f"/api/v1/grids/{code}", None


@pytest.mark.parametrize("case", list(MATRIX))
@pytest.mark.parametrize("role", ROLES)
def test_authorization_matrix(client, headers, inside, sql, case, role):
    method, url, body = _request(case, client, headers, inside)
    before = sql(_SNAPSHOT)[0]
    r = client.request(method, url, json=body, headers=headers[role])
    expected = MATRIX[case][ROLES.index(role)]
    assert r.status_code == expected, f"{role} {case}: {r.status_code} {r.text}"
    if r.status_code not in (200, 201, 204):
        assert r.json()["code"] == {401: "unauthorized", 403: "forbidden"}[expected]
        assert sql(_SNAPSHOT)[0] == before  # a refused write changes nothing


def test_a_worker_may_not_place_a_facility_outside_every_grid(client, headers):
    far = {"geometry": point(113.5, 37.5), "category": "bench"}
    r = client.post("/api/v1/facilities", json=far, headers=headers["owner"])
    assert r.status_code == 403 and "(none)" in r.json()["detail"]
    # outside every grid is outside every region's grids too: only an admin places it
    r = client.post("/api/v1/facilities", json=far, headers=headers["leader"])
    assert r.status_code == 403
    r = client.post("/api/v1/facilities", json=far, headers=headers["admin"])
    assert r.status_code == 201
    props = r.json()["properties"]
    assert props["grid_code"] is None and props["assignment"] == "unassigned"


# --- facilities -------------------------------------------------------------------------------

def test_a_facility_marked_damaged_shows_in_reads(client, headers, inside):
    before = client.get(f"/api/v1/grids/{GRID_03}").json()["properties"]["facilities_by_status"]
    made = make_facility(client, headers, inside[GRID_03], role="owner")
    assert made["properties"]["grid_code"] == GRID_03 and made["properties"]["status"] == "ok"
    r = client.patch(f"/api/v1/facilities/{made['id']}", json={"status": "damaged"},
                     headers=headers["owner"])
    assert r.status_code == 200 and r.json()["properties"]["status"] == "damaged"
    listed = client.get("/api/v1/facilities", params={"grid": GRID_03, "status": "damaged",
                                                      "limit": 1000}).json()
    assert made["id"] in [f["id"] for f in listed["features"]]
    after = client.get(f"/api/v1/grids/{GRID_03}").json()["properties"]["facilities_by_status"]
    assert after["damaged"] == before["damaged"] + 1 and after["ok"] == before["ok"]
    assert client.get(f"/api/v1/facilities/{made['id']}").json()["properties"]["status"] == "damaged"


def test_a_moved_facility_is_re_tagged_with_its_new_grid(client, headers, inside):
    made = make_facility(client, headers, inside[GRID_03])
    r = client.patch(f"/api/v1/facilities/{made['id']}", json={"geometry": point(*inside[GRID_05])},
                     headers=headers["leader"])
    assert r.status_code == 200
    moved = FacilityPublic.model_validate(r.json())
    assert moved.properties.grid_code == GRID_05 and moved.properties.assignment == "inside"
    assert moved.geometry.coordinates == pytest.approx(list(inside[GRID_05]), abs=1e-7)
    assert moved.properties.name == "测试座椅"  # fields not sent stay as they were


def test_facility_input_in_gcj02_is_stored_in_wgs84(client, headers, inside):
    lon, lat = inside[GRID_03]
    gx, gy = from_wgs84(lon, lat, "gcj02")
    made = make_facility(client, headers, (gx, gy), crs="gcj02", code="1404299906990001")
    assert made["geometry"]["coordinates"] == pytest.approx([lon, lat], abs=1e-7)
    assert made["properties"]["grid_code"] == GRID_03
    assert made["properties"]["code"] == "1404299906990001"


def test_a_geojson_feature_is_accepted_with_an_old_style_crs(client, headers, inside):
    lon, lat = inside[GRID_05]
    feature = {"type": "Feature", "geometry": point(lon, lat),
               "crs": {"type": "name", "properties": {"name": "EPSG:4490"}},
               "properties": {"category": "streetlight", "name": "测试路灯", "status": "repairing",
                              "grid_code": "ignored: read-only", "props": {"pole": "8m"}}}
    r = client.post("/api/v1/facilities", json=feature, headers=headers["leader"])
    assert r.status_code == 201, r.text
    props = r.json()["properties"]
    assert (props["category"], props["status"], props["grid_code"]) == ("streetlight", "repairing",
                                                                        GRID_05)
    assert props["props"] == {"pole": "8m"} and props["category_zh"] == "路灯"


def test_facility_code_must_be_unique(client, headers, inside, sql):
    taken = sql("SELECT code FROM facilities WHERE code IS NOT NULL LIMIT 1")[0][0]
    body = {"geometry": point(*inside[GRID_03]), "category": "bench", "code": taken}
    r = client.post("/api/v1/facilities", json=body, headers=headers["admin"])
    assert r.status_code == 409 and r.json()["code"] == "conflict" and taken in r.json()["detail"]


@pytest.mark.parametrize("body, code, words", [
    ({"category": "garbage"}, "unknown_category", "garbage"),  # an issue category
    ({"category": "bench", "crs": "mars"}, "unknown_crs", "mars"),
    ({"category": "bench", "status": "gone"}, "validation_error", "status"),
    ({"category": "bench", "code": "12"}, "validation_error", "code"),
    ({"category": "bench", "colour": "red"}, "validation_error", "colour"),
])
def test_bad_facility_fields_are_422(client, headers, inside, body, code, words):
    r = client.post("/api/v1/facilities", json={"geometry": point(*inside[GRID_03]), **body},
                    headers=headers["admin"])
    assert r.status_code == 422 and r.json()["code"] == code
    assert words in r.json()["detail"]


def test_patching_a_missing_facility_is_404(client, headers):
    r = client.patch("/api/v1/facilities/99999999", json={"status": "ok"}, headers=headers["admin"])
    assert r.status_code == 404 and r.json()["code"] == "not_found"


# --- geometry checks --------------------------------------------------------------------------

def _bowtie(lon: float, lat: float) -> dict:
    d = 0.0001
    return {"type": "Polygon", "coordinates": [[[lon, lat], [lon + d, lat + d], [lon + d, lat],
                                                [lon, lat + d], [lon, lat]]]}


def _circle(lon: float, lat: float, n: int) -> dict:
    ring = [[lon + 0.0005 * math.cos(2 * math.pi * i / n), lat + 0.0005 * math.sin(2 * math.pi * i / n)]
            for i in range(n)]
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}


@pytest.mark.parametrize("path, geometry, words", [
    ("buildings", "bowtie", ["self-intersection", "at (112.8"]),
    ("buildings", {"type": "LineString", "coordinates": [[112.85, 36.84], [112.86, 36.84]]},
     ["expected a Polygon", "got LineString"]),
    ("facilities", "square", ["expected a Point", "got Polygon"]),
    ("buildings", {"type": "Polygon", "coordinates": [[[200, 36.8], [200.001, 36.8],
                                                       [200.001, 36.801], [200, 36.8]]]},
     ["lon[0] = 200", "[-180, 180]"]),
    ("facilities", point(112.86, 95), ["lat", "95", "[-90, 90]"]),
    ("buildings", "circle", ["10002 vertices", "at most 10000"]),
    ("buildings", {"type": "Polygon", "coordinates": [[[112.85, 36.84], [112.86, 36.84]]]},
     ["ring 0 is not closed"]),
    ("buildings", {"type": "Polygon", "coordinates": [[[112.85, 36.84], [112.86, 36.84],
                                                       [112.85, 36.84]]]},
     ["too few points"]),
    ("facilities", {"type": "Point", "coordinates": "112.85,36.84"}, ["cannot be read"]),
    ("buildings", {"coordinates": [1, 2]}, ["'type'"]),
])
def test_invalid_geometry_is_422_saying_what_and_where(client, headers, inside, path, geometry,
                                                       words):
    lon, lat = inside[GRID_03]
    geometry = {"bowtie": _bowtie(lon, lat), "square": square(lon, lat),
                "circle": _circle(lon, lat, 10_001)}.get(geometry, geometry) \
        if isinstance(geometry, str) else geometry
    body = {"geometry": geometry, "name": "x"} if path == "buildings" else {
        "geometry": geometry, "category": "bench"}
    r = client.post(f"/api/v1/{path}", json=body, headers=headers["leader"])
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_geometry"
    for w in words:
        assert w in r.json()["detail"]


def test_the_vertex_limit_comes_from_the_app(client, headers, inside):
    client.app.dependency_overrides[_max_vertices] = lambda: 4
    try:
        r = client.post("/api/v1/buildings", json={"geometry": square(*inside[GRID_03]), "name": "x"},
                        headers=headers["leader"])
    finally:
        del client.app.dependency_overrides[_max_vertices]
    assert r.status_code == 422 and "at most 4" in r.json()["detail"]


def test_a_self_intersection_in_a_projected_crs_is_located_in_that_crs(client, headers, inside):
    lon, lat = inside[GRID_03]
    x, y = from_wgs84(lon, lat, "EPSG:4547")
    bowtie = {"type": "Polygon", "coordinates": [[[x, y], [x + 10, y + 10], [x + 10, y],
                                                  [x, y + 10], [x, y]]]}
    r = client.post("/api/v1/buildings", json={"geometry": bowtie, "name": "x", "crs": "EPSG:4547"},
                    headers=headers["leader"])
    assert r.status_code == 422 and "in EPSG:4547" in r.json()["detail"]


# --- buildings --------------------------------------------------------------------------------

def test_a_building_goes_to_the_grid_holding_most_of_it(client, headers, sql):
    # A 40 m square around a point of the boundary grid 003 shares with a neighbour, shifted a bit.
    lon, lat = sql("""
        SELECT ST_X(p) + 0.00004, ST_Y(p) + 0.00003 FROM (
          SELECT ST_PointOnSurface(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))) p
            FROM grids a JOIN grids b ON b.code <> a.code AND b.valid_to IS NULL
             AND ST_Length(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))) > 0.0005
           WHERE a.code = :c AND a.valid_to IS NULL ORDER BY b.code LIMIT 1) s""", c=GRID_03)[0]
    geometry = square(lon, lat, 40)
    shares = sql("""
        SELECT g.code, ST_Area(ST_Intersection(g.geom, s.geom)::geography) AS m2
          FROM grids g, (SELECT ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326) AS geom) s
         WHERE g.valid_to IS NULL AND ST_Intersects(g.geom, s.geom) ORDER BY m2 DESC""",
                 g=json.dumps(geometry))
    assert len(shares) >= 2 and shares[0][1] > shares[1][1] + 10  # straddles, with a clear winner
    r = client.post("/api/v1/buildings", json={"geometry": geometry, "name": "跨界楼"},
                    headers=headers["leader"])
    assert r.status_code == 201, r.text
    assert r.json()["properties"]["grid_code"] == shares[0][0]


def test_building_in_epsg4547_with_a_compound_and_then_moved(client, headers, inside):
    lon, lat = inside[GRID_03]
    x, y = from_wgs84(lon, lat, "EPSG:4547")
    ring = [[x - 5, y - 5], [x + 5, y - 5], [x + 5, y + 5], [x - 5, y + 5], [x - 5, y - 5]]
    body = {"type": "Feature", "crs": "EPSG:4547", "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"name": "测试楼", "compound": "水利局家属院", "floors": 5, "households": 20}}
    r = client.post("/api/v1/buildings", json=body, headers=headers["owner"])
    assert r.status_code == 201, r.text
    made = BuildingPublic.model_validate(r.json())
    assert made.properties.grid_code == GRID_03 and made.properties.compound == "水利局家属院"
    lons = [c[0] for c in made.geometry.coordinates[0]]
    assert min(lons) < lon < max(lons) and max(lons) - min(lons) < 0.0002  # about 10 m
    r = client.patch(f"/api/v1/buildings/{made.id}", json={"geometry": square(*inside[GRID_05]),
                                                           "compound": None},
                     headers=headers["admin"])
    assert r.status_code == 200
    assert r.json()["properties"]["grid_code"] == GRID_05 and r.json()["properties"]["compound"] is None
    assert r.json()["properties"]["floors"] == 5
    r = client.patch(f"/api/v1/buildings/{made.id}", json={"name": None, "households": None,
                                                           "floors": None}, headers=headers["admin"])
    assert r.status_code == 200  # null for a required field leaves it; floors may be unknown
    assert (r.json()["properties"]["name"], r.json()["properties"]["households"]) == ("测试楼", 20)
    assert r.json()["properties"]["floors"] is None


def test_unknown_compound_is_404(client, headers, inside):
    r = client.post("/api/v1/buildings", json={"geometry": square(*inside[GRID_03]), "name": "x",
                                               "compound": "无此院"}, headers=headers["admin"])
    assert r.status_code == 404 and "无此院" in r.json()["detail"]


# --- grids: create, redraw (new version), retire ----------------------------------------------

def test_grid_lifecycle_keeps_history_and_re_tags(client, headers, sql):
    code = TEST_CODE_PREFIX + "10"
    made = GridDetailPublic.model_validate(make_grid(client, headers, code))
    assert (made.properties.version, made.properties.worker) == (1, "worker03")
    assert made.properties.open_issues == 0 and made.properties.community == "太东社区"
    located = client.get("/api/v1/locate", params={"lon": EAST_A[0], "lat": EAST_A[1]}).json()
    assert located["grid"]["code"] == code  # the grid index saw the new grid

    facility = make_facility(client, headers, EAST_A)
    assert facility["properties"]["grid_code"] == code
    open_id, closed_id = _issues_at(sql, code, EAST_A)

    r = client.put(f"/api/v1/grids/{code}", json={"geometry": square(*EAST_B, metres=300)},
                   headers=headers["admin"])
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["version"] == 2 and r.json()["properties"]["households"] == 100
    versions = sql("SELECT version, valid_to IS NOT NULL FROM grids WHERE code = :c ORDER BY version",
                   c=code)
    assert versions == [(1, True), (2, False)]
    assert client.get(f"/api/v1/facilities/{facility['id']}").json()["properties"]["assignment"] \
        == "unassigned"
    assert _issue_tag(sql, open_id) == (None, "unassigned")
    assert _issue_tag(sql, closed_id)[0] == code  # handled under version 1, and stays so
    assert "grid redrawn" in sql("SELECT note FROM issue_events WHERE issue_id = :i", i=open_id)[0][0]

    r = client.put(f"/api/v1/grids/{code}", json={"geometry": square(*EAST_A, metres=300),
                                                  "name": "测试网格（重划）"}, headers=headers["admin"])
    assert r.json()["properties"]["version"] == 3 and r.json()["properties"]["name"] == "测试网格（重划）"
    assert _issue_tag(sql, open_id) == (code, "inside")
    assert r.json()["properties"]["open_issues"] == 1
    assert r.json()["properties"]["facilities_by_status"]["ok"] == 1

    r = client.delete(f"/api/v1/grids/{code}", headers=headers["admin"])
    assert r.status_code == 204 and r.content == b""
    assert client.get(f"/api/v1/grids/{code}").status_code == 404
    assert sql("SELECT count(*), count(valid_to) FROM grids WHERE code = :c", c=code) == [(3, 3)]
    assert _issue_tag(sql, open_id) == (None, "unassigned")
    assert code not in [f["properties"]["code"] for f in client.get("/api/v1/grids").json()["features"]]

    again = client.post("/api/v1/grids", json=grid_body(code), headers=headers["admin"])
    assert again.status_code == 201 and again.json()["properties"]["version"] == 4


def _issues_at(sql, code: str, where) -> tuple[int, int]:
    """An open and a closed issue at ``where``, tagged with the current version of ``code``."""
    ids = [r[0] for r in sql("""
        INSERT INTO issues (category, description, geom, grid_id, grid_version, assignment, status,
                            reported_at, due_at, closed_at)
        SELECT 'garbage', '测试', ST_SetSRID(ST_MakePoint(:x, :y), 4326), g.id, g.version, 'inside',
               s, now() - interval '2 days', now() - interval '1 day',
               CASE WHEN s = 'closed' THEN now() END
          FROM grids g, unnest(ARRAY['reported', 'closed']) s
         WHERE g.code = :c AND g.valid_to IS NULL
        RETURNING id""", x=where[0], y=where[1], c=code)]
    return ids[0], ids[1]


def _issue_tag(sql, issue_id: int) -> tuple[str | None, str]:
    return sql("SELECT g.code, i.assignment FROM issues i LEFT JOIN grids g ON g.id = i.grid_id "
               "WHERE i.id = :i", i=issue_id)[0]


def test_a_grid_may_share_an_edge_but_not_area(client, headers):
    admin = headers["admin"]
    first = TEST_CODE_PREFIX + "30"
    make_grid(client, headers, first)  # 300 m square around EAST_A
    a = square(*EAST_A, metres=300)["coordinates"][0]
    (west, south), (east, north) = a[0], a[2]
    width = east - west

    def box(x0, x1):
        return {"type": "Polygon", "coordinates": [[[x0, south], [x1, south], [x1, north],
                                                    [x0, north], [x0, south]]]}

    second = TEST_CODE_PREFIX + "31"
    overlapping = {**grid_body(second), "geometry": box(east - width / 3, east + width)}
    r = client.post("/api/v1/grids", json=overlapping, headers=admin)
    assert r.status_code == 422 and r.json()["code"] == "invalid_geometry"
    assert f"overlap {first} by" in r.json()["detail"] and "m²" in r.json()["detail"]
    assert client.get(f"/api/v1/grids/{second}").status_code == 404  # nothing stored
    beside = {**grid_body(second), "geometry": box(east, east + width)}  # the shared edge
    assert client.post("/api/v1/grids", json=beside, headers=admin).status_code == 201
    # Moving the shared edge: growing the first over the second is refused, shrinking is not.
    grow = client.put(f"/api/v1/grids/{first}", json={"geometry": box(west, east + width / 3)},
                      headers=admin)
    assert grow.status_code == 422 and second in grow.json()["detail"]
    shrink = client.put(f"/api/v1/grids/{first}", json={"geometry": box(west, east - width / 3)},
                        headers=admin)
    assert shrink.status_code == 200
    took = client.put(f"/api/v1/grids/{second}", json={"geometry": box(east - width / 3, east + width)},
                      headers=admin)
    assert took.status_code == 200


def test_grid_errors(client, headers):
    admin = headers["admin"]
    r = client.post("/api/v1/grids", json=grid_body(GRID_03), headers=admin)
    assert r.status_code == 409 and r.json()["code"] == "conflict"
    r = client.post("/api/v1/grids", json=grid_body(TEST_CODE_PREFIX + "20", community="无此社区"),
                    headers=admin)
    assert r.status_code == 404 and "无此社区" in r.json()["detail"]
    r = client.post("/api/v1/grids", json=grid_body(TEST_CODE_PREFIX + "20", worker="leader"),
                    headers=admin)
    assert r.status_code == 404 and "leader" in r.json()["detail"]
    r = client.post("/api/v1/grids", json=grid_body("12345"), headers=admin)
    assert r.status_code == 422 and r.json()["code"] == "validation_error"
    unknown = TEST_CODE_PREFIX + "99"
    assert client.put(f"/api/v1/grids/{unknown}", json={"geometry": square(*EAST_B)},
                      headers=admin).status_code == 404
    assert client.delete(f"/api/v1/grids/{unknown}", headers=admin).status_code == 404
    r = client.put(f"/api/v1/grids/{GRID_03}", json={"geometry": point(*EAST_B)}, headers=admin)
    assert r.status_code == 422 and r.json()["code"] == "invalid_geometry"
    assert client.get(f"/api/v1/grids/{GRID_03}").json()["properties"]["version"] == 1
