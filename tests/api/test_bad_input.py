"""The bad-input catalogue: each case gets a clear 4xx naming the problem, and the server keeps serving.

Cases that concern files (a shapefile without .prj, a GeoPackage in a foreign CRS, CSV with bad
rows) are in tests/gis/test_io.py; oversize bodies and throttling in tests/api/test_limits.py.
"""

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tests.api.conftest import bearer
from tests.conftest import app_settings

X, Y = 112.8600, 36.8400  # inside 太东社区
SQUARE = [[[X, Y], [X + 0.001, Y], [X + 0.001, Y + 0.001], [X, Y + 0.001], [X, Y]]]
BOW_TIE = [[[X, Y], [X + 0.001, Y + 0.001], [X + 0.001, Y], [X, Y + 0.001], [X, Y]]]
UNCLOSED = [[[X, Y], [X + 0.001, Y], [X + 0.001, Y + 0.001], [X, Y + 0.001]]]


@pytest.fixture(scope="module")
def settings(database_url):
    return app_settings(database_url, max_body_bytes=60_000_000)  # room for the huge cases


@pytest.fixture(scope="module")
def app_client(demo_engine, settings):
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def admin(app_client):
    return bearer(app_client, "admin")


def issue(**fields):
    return {"category": "garbage", "lon": X, "lat": Y, **fields}


CASES = [
    # (name, method, path, json body or raw content, expected status, words in the detail)
    ("lon NaN", "get", "/api/v1/locate?lon=nan&lat=36.84", None, 422, "nan"),
    ("lat inf", "get", "/api/v1/locate?lon=112.8&lat=inf", None, 422, "inf"),
    ("lon out of range", "get", "/api/v1/locate?lon=181&lat=36.84", None, 422, "lon"),
    ("swapped lat/lon", "post", "/api/v1/issues", issue(lon=Y, lat=X), 422, "swapped"),
    ("string for a number", "post", "/api/v1/issues", issue(lon="东经112度"), 422, "lon"),
    ("unknown CRS", "post", "/api/v1/issues", issue(crs="EPSG:123456789"), 422, "EPSG:123456789"),
    ("unknown category", "post", "/api/v1/issues", issue(category="alien_landing"), 422,
     "alien_landing"),
    ("issue as a polygon", "post", "/api/v1/issues",
     {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": SQUARE},
      "properties": {"category": "garbage"}}, 422, "point"),
    ("facility as a polygon", "post", "/api/v1/facilities",
     {"category": "bench", "geometry": {"type": "Polygon", "coordinates": SQUARE}}, 422, "point"),
    ("unknown facility category", "post", "/api/v1/facilities",
     {"category": "ufo_pad", "geometry": {"type": "Point", "coordinates": [X, Y]}}, 422, "ufo_pad"),
    ("self-intersecting building", "post", "/api/v1/buildings",
     {"name": "坏楼", "geometry": {"type": "Polygon", "coordinates": BOW_TIE}}, 422, "self-intersection"),
    ("unclosed polygon", "post", "/api/v1/buildings",
     {"name": "开口楼", "geometry": {"type": "Polygon", "coordinates": UNCLOSED}}, 422, "closed"),
    ("self-intersecting grid", "post", "/api/v1/grids",
     {"code": "140429100001901", "name": "坏网格", "community": "太东社区",
      "geometry": {"type": "Polygon", "coordinates": BOW_TIE}}, 422, "self-intersection"),
    ("bad bbox", "get", "/api/v1/issues?bbox=1,2,3", None, 422, "bbox"),
    ("NUL in a query", "get", "/api/v1/issues?community=%00", None, 422, "NUL"),
    ("NUL in a description", "post", "/api/v1/issues", issue(description="井盖\u0000坏了"), 422,
     "NUL"),
    ("broken JSON", "post", "/api/v1/issues", '{"category": "garbage", "lon": 1', 422, "json"),
    ("deeply nested JSON", "post", "/api/v1/issues",
     '{"category": "garbage", "lon": 112.86, "lat": 36.84, "description": '
     + "[" * 100_000 + "]" * 100_000 + "}", 400, "pars"),
]


@pytest.mark.parametrize("name, method, path, body, status, words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_4xx(client, admin, name, method, path, body, status, words):
    kwargs = {"headers": dict(admin)}
    if isinstance(body, str):
        kwargs["content"] = body
        kwargs["headers"]["Content-Type"] = "application/json"
    elif body is not None:
        kwargs["json"] = body
    r = getattr(client, method)(path, **kwargs)
    assert r.status_code == status, r.text[:500]
    payload = r.json()
    assert set(payload) >= {"detail", "code"}
    assert words.lower() in str(payload["detail"]).lower(), payload
    assert client.get("/health").status_code == 200  # and the server keeps serving


def test_a_polygon_of_a_million_vertices_is_refused(client, admin):
    import math

    n = 1_000_000
    ring = [[X + 0.001 * math.cos(2 * math.pi * i / n), Y + 0.001 * math.sin(2 * math.pi * i / n)]
            for i in range(n)]
    ring.append(ring[0])
    r = client.post("/api/v1/buildings", headers=admin,
                    json={"name": "巨楼", "geometry": {"type": "Polygon", "coordinates": [ring]}})
    assert r.status_code == 422 and "vertices" in r.json()["detail"]


def test_sql_and_html_in_text_are_stored_verbatim(client, admin, sql):
    nasty = "'); DROP TABLE issues; -- <script>alert('x')</script> & <b>粗</b>"
    r = client.post("/api/v1/issues", headers=admin, json=issue(description=nasty))
    assert r.status_code == 201
    assert r.json()["properties"]["description"] == nasty
    stored = sql("SELECT description FROM issues WHERE id = :i", i=r.json()["id"])
    assert stored == [(nasty,)]
