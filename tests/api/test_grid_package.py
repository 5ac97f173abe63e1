"""GET /api/v1/grids/{code}/package: the tablet's offline GeoPackage over HTTP, for those logged in,
in their scope, audited."""

from __future__ import annotations

import pyogrio
import pytest

from tests.api.scope_data import SECRET_PHONE, add_case, grid_id, grid_point, other_places

GRID = "140429100001003"


def test_the_package_downloads_and_opens(client, headers, tmp_path):
    r = client.get(f"/api/v1/grids/{GRID}/package", headers=headers["owner"])
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/geopackage+sqlite3"
    assert f'filename="grid-{GRID}.gpkg"' in r.headers["content-disposition"]
    path = tmp_path / "p.gpkg"
    path.write_bytes(r.content)
    layers = {name for name, _ in pyogrio.list_layers(path)}
    assert {"grid", "neighbours", "buildings", "facilities", "issues", "categories"} <= layers
    assert pyogrio.read_dataframe(path, layer="grid")["code"].tolist() == [GRID]


@pytest.mark.parametrize("code, status", [("140429100001999", 404), ("abc", 422)])
def test_unknown_or_malformed_grids(client, headers, code, status):
    assert client.get(f"/api/v1/grids/{code}/package", headers=headers["owner"]).status_code == status


def test_a_package_needs_a_log_in(client):
    r = client.get(f"/api/v1/grids/{GRID}/package")
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"


def test_each_package_is_audited_and_holds_no_personal_data(client, headers, sql, tmp_path):
    case = add_case(sql, *grid_point(sql, GRID), grid_id=grid_id(sql, GRID))
    r = client.get(f"/api/v1/grids/{GRID}/package", headers=headers["owner"])
    path = tmp_path / "p.gpkg"
    path.write_bytes(r.content)
    issues = pyogrio.read_dataframe(path, layer="issues").set_index("id")
    assert SECRET_PHONE not in issues.loc[case, "description"]  # even for the grid's own worker
    assert "139****5678" in issues.loc[case, "description"]
    assert SECRET_PHONE.encode() not in r.content and b"13900001111" not in r.content
    entry = sql("""SELECT username, target, detail->>'grid_code', (detail->'rows'->>'issues')::int
                     FROM audit_log
                    WHERE action = 'package' AND at >= now()""")
    assert entry == [("worker03", f"GET /api/v1/grids/{GRID}/package", GRID, len(issues))]


def test_a_leader_packages_grids_of_their_region_only(client, headers, sql):
    other = other_places(sql).same_district.grid_code
    r = client.get(f"/api/v1/grids/{other}/package", headers=headers["leader"])
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    assert client.get(f"/api/v1/grids/{other}/package", headers=headers["admin"]).status_code == 200
    assert not sql("SELECT 1 FROM audit_log WHERE action = 'package' AND username = 'leader' "
                   "AND at >= now()")
