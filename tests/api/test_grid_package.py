"""GET /api/v1/grids/{code}/package: the tablet's offline GeoPackage over HTTP."""

from __future__ import annotations

import pyogrio
import pytest


def test_the_package_downloads_and_opens(client, tmp_path):
    r = client.get("/api/v1/grids/140429100001003/package")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/geopackage+sqlite3"
    assert 'filename="grid-140429100001003.gpkg"' in r.headers["content-disposition"]
    path = tmp_path / "p.gpkg"
    path.write_bytes(r.content)
    layers = {name for name, _ in pyogrio.list_layers(path)}
    assert {"grid", "neighbours", "buildings", "facilities", "issues", "categories"} <= layers
    assert pyogrio.read_dataframe(path, layer="grid")["code"].tolist() == ["140429100001003"]


@pytest.mark.parametrize("code, status", [("140429100001999", 404), ("abc", 422)])
def test_unknown_or_malformed_grids(client, code, status):
    assert client.get(f"/api/v1/grids/{code}/package").status_code == status
