"""GET /api/v1/locate on the demo data, in every CRS, and a grid edit made by another process."""


import pytest
from sqlalchemy import text

from gis.geo.crs import from_wgs84
from tests.api.other_process import grid_moved_elsewhere


@pytest.fixture(scope="module")
def inside_point(demo_engine):
    """A point well inside grid 005, and that grid's code and worker."""
    with demo_engine.connect() as conn:
        row = conn.execute(text(
            "SELECT ST_X(p), ST_Y(p), code FROM (SELECT ST_PointOnSurface(geom) AS p, code FROM grids "
            "WHERE code LIKE '%005' AND valid_to IS NULL) s")).one()
    return row[0], row[1], row[2]


def test_inside_a_grid_names_the_grid_and_its_worker(client, inside_point):
    lon, lat, code = inside_point
    body = client.get("/api/v1/locate", params={"lon": lon, "lat": lat}).json()
    assert body["method"] == "inside" and body["distance_m"] is None
    assert body["grid"]["code"] == code
    assert body["grid"]["worker"]["username"] == "worker05"


@pytest.mark.parametrize("crs", ["gcj02", "bd09", "cgcs2000", "EPSG:4490", "EPSG:4547"])
def test_the_same_place_sent_in_another_crs_lands_in_the_same_grid(client, inside_point, crs):
    lon, lat, code = inside_point
    x, y = from_wgs84(lon, lat, crs)
    body = client.get("/api/v1/locate", params={"lon": x, "lat": y, "crs": crs}).json()
    assert body["grid"]["code"] == code
    assert body["lon"] == pytest.approx(lon, abs=1e-7) and body["lat"] == pytest.approx(lat, abs=1e-7)


def test_gcj02_input_taken_as_wgs84_would_land_hundreds_of_metres_off(inside_point):
    lon, lat, _ = inside_point
    gx, gy = from_wgs84(lon, lat, "gcj02")
    assert abs(gx - lon) * 89_000 + abs(gy - lat) * 111_000 > 100  # why conversion matters


def test_a_point_just_outside_the_community_goes_to_the_nearest_grid(client, demo_engine):
    with demo_engine.connect() as conn:
        # 30 m west of the community's westernmost vertex
        lon, lat = conn.execute(text("""
            SELECT ST_X(p) - 30 / (111320 * cos(radians(ST_Y(p)))), ST_Y(p) FROM (
              SELECT (ST_DumpPoints(geom)).geom AS p FROM regions WHERE level = 'community') s
            ORDER BY ST_X(p) LIMIT 1""")).one()
    body = client.get("/api/v1/locate", params={"lon": lon, "lat": lat}).json()
    assert body["method"] == "nearest"
    assert 20 < body["distance_m"] <= 30.5


def test_far_away_is_unassigned(client):
    body = client.get("/api/v1/locate", params={"lon": 116.39, "lat": 39.9}).json()
    assert body == {"grid": None, "method": "unassigned", "distance_m": None, "lon": 116.39, "lat": 39.9}


@pytest.mark.parametrize("params, words", [
    ({"lon": 200, "lat": 36.8}, "lon"),
    ({"lon": 112.8, "lat": 95}, "lat"),
    ({"lon": "nan", "lat": 36.8}, "nan"),
    ({"lon": 112.8, "lat": 36.8, "crs": "EPSG:999999"}, "EPSG:999999"),
    ({"lon": 112.8, "lat": 36.8, "crs": "mars2000"}, "mars2000"),
])
def test_bad_coordinates_are_422_saying_which(client, params, words):
    r = client.get("/api/v1/locate", params=params)
    assert r.status_code == 422
    assert words.lower() in r.json()["detail"].lower()


def test_strings_for_numbers_are_422(client):
    r = client.get("/api/v1/locate", params={"lon": "east", "lat": 36.8})
    assert r.status_code == 422


def test_a_grid_edit_by_another_process_is_seen_by_the_next_lookup(client, inside_point, database_url):
    """Another process moves grid 005 away; this process's next lookup must not use stale grids."""
    lon, lat, code = inside_point
    cache = client.app.state.grid_cache
    assert client.get("/api/v1/locate", params={"lon": lon, "lat": lat}).json()["grid"]["code"] == code
    builds = cache.builds
    client.get("/api/v1/locate", params={"lon": lon, "lat": lat})
    assert cache.builds == builds  # no rebuild per request

    with grid_moved_elsewhere(database_url, code):
        moved = client.get("/api/v1/locate", params={"lon": lon, "lat": lat}).json()
        assert moved["grid"] is None or moved["grid"]["code"] != code
        assert cache.builds == builds + 1
    back = client.get("/api/v1/locate", params={"lon": lon, "lat": lat}).json()
    assert back["grid"]["code"] == code
