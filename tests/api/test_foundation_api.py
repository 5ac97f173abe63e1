"""The minimal API of the foundation: /health and /api/v1/grids on the demo data."""

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tests.conftest import app_settings


def test_health_reports_database_ok(client):
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok"}


def test_health_is_503_when_the_database_is_unreachable():
    app = create_app(app_settings("postgresql://nobody:x@127.0.0.1:1/none"))
    with TestClient(app) as c:
        r = c.get("/health")
    assert r.status_code == 503
    assert r.json()["database"] == "unavailable"


def test_grids_are_an_rfc7946_feature_collection_of_14(client):
    r = client.get("/api/v1/grids")
    assert r.status_code == 200
    body = r.json()
    assert body["type"] == "FeatureCollection"
    assert body["numberMatched"] == 14 and len(body["features"]) == 14
    f = body["features"][0]
    assert f["geometry"]["type"] == "MultiPolygon"
    lon, lat = f["geometry"]["coordinates"][0][0][0]
    assert 112.8 < lon < 112.95 and 36.8 < lat < 36.9  # lon first, as RFC 7946 says
    assert len(f["properties"]["code"]) == 15
    assert f["properties"]["worker"] == "worker01"
    codes = [f["properties"]["code"] for f in body["features"]]
    assert codes == sorted(codes)


def test_grids_paging_and_bbox(client):
    page = client.get("/api/v1/grids", params={"limit": 5, "offset": 10}).json()
    assert page["numberReturned"] == 4 and page["numberMatched"] == 14
    assert any(link["rel"] == "prev" for link in page["links"])
    first = client.get("/api/v1/grids", params={"limit": 5}).json()
    assert any(link["rel"] == "next" for link in first["links"])
    empty = client.get("/api/v1/grids", params={"bbox": "0,0,1,1"}).json()
    assert empty["numberMatched"] == 0 and empty["features"] == []


@pytest.mark.parametrize("bbox", ["1,2,3", "a,b,c,d", "0,0,200,1", "5,5,1,1"])
def test_bad_bbox_is_422_with_a_message(client, bbox):
    r = client.get("/api/v1/grids", params={"bbox": bbox})
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_coordinates" and "bbox" in r.json()["detail"]
