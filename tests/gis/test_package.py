"""The offline GeoPackage of one grid, opened with pyogrio and checked against SQL counts; what a
package holds depends on who asks for it."""

from __future__ import annotations

import pyogrio
import pytest
import shapely
from pyproj import Transformer
from sqlalchemy import text

from api.cli import main as gridmap
from gis.errors import Forbidden, NotFound
from gis.exchange.grid_package import export_grid_package
from gis.people.actors import load_actor
from gis.queries.reads import PUBLIC, Reader

GRID = "140429100001005"
LAYERS = {"grid": "MultiPolygon", "neighbours": "MultiPolygon", "buildings": "Polygon",
          "facilities": "Point", "issues": "Point", "categories": None, "package_info": None}


def scalar(session, sql, **params):
    return session.execute(text(sql), params).scalar()


@pytest.fixture
def private_issue(session):
    """An open issue in the grid whose reporter left a phone number (rolled back afterwards)."""
    return scalar(session, """
        INSERT INTO issues (category, description, reporter_contact, geom, grid_id, assignment)
        SELECT 'garbage', '楼下垃圾没人清，电话13912345678', '王五 13700001111',
               ST_PointOnSurface(geom), id, 'inside'
          FROM grids WHERE code = :c AND valid_to IS NULL RETURNING id""", c=GRID)


def test_the_package_holds_the_expected_layers_and_counts(session, tmp_path, private_issue):
    path = tmp_path / "grid.gpkg"
    counts = export_grid_package(session, GRID, path, reader=PUBLIC)
    assert {name: kind for name, kind in pyogrio.list_layers(path)} == LAYERS
    expected = {
        "grid": 1,
        "buildings": scalar(session, "SELECT count(*) FROM buildings b JOIN grids g ON g.id = b.grid_id "
                                     "WHERE g.code = :c", c=GRID),
        "facilities": scalar(session, "SELECT count(*) FROM facilities f JOIN grids g ON g.id = f.grid_id "
                                      "WHERE g.code = :c", c=GRID),
        "issues": scalar(session, "SELECT count(*) FROM issues i JOIN grids g ON g.id = i.grid_id "
                                  "WHERE g.code = :c AND i.status NOT IN ('closed', 'rejected')", c=GRID),
        "categories": scalar(session, "SELECT count(*) FROM categories"),
    }
    for layer, n in expected.items():
        assert len(pyogrio.read_dataframe(path, layer=layer)) == n == counts[layer], layer
    issues = pyogrio.read_dataframe(path, layer="issues")
    assert private_issue in set(issues["id"])
    assert issues.crs.to_epsg() == 4326 and (issues.geom_type == "Point").all()


def test_the_package_carries_no_personal_data(session, tmp_path, private_issue):
    path = tmp_path / "grid.gpkg"
    export_grid_package(session, GRID, path, reader=PUBLIC)
    issues = pyogrio.read_dataframe(path, layer="issues")
    assert not {"reporter_contact", "client_uuid"} & set(issues.columns)
    raw = path.read_bytes()
    for private in ("13700001111", "王五", "13912345678"):
        assert private.encode() not in raw
    mine = issues.set_index("id").loc[private_issue, "description"]
    assert mine == "楼下垃圾没人清，电话139****5678"  # masked, even in a package for everyone


def reader(session, username: str) -> Reader:
    return Reader(load_actor(session, username)[0])


def test_a_leader_packages_the_grids_of_their_region_only(session, tmp_path):
    session.execute(text("UPDATE users SET region_id = (SELECT id FROM regions "
                         "WHERE code = '140429') WHERE username = 'leader'"))  # the county's
    export_grid_package(session, GRID, tmp_path / "a.gpkg", reader=reader(session, "leader"))
    session.execute(text("UPDATE users SET region_id = NULL WHERE username = 'leader'"))
    with pytest.raises(Forbidden, match="outside the region"):
        export_grid_package(session, GRID, tmp_path / "b.gpkg", reader=reader(session, "leader"))


def test_department_staff_get_their_departments_cases_only(session, tmp_path):
    path = tmp_path / "grid.gpkg"
    counts = export_grid_package(session, GRID, path, reader=reader(session, "huanwei01"))
    expected = scalar(session, """
        SELECT count(*) FROM issues i JOIN grids g ON g.id = i.grid_id
          JOIN departments d ON d.id = i.department_id
         WHERE g.code = :c AND d.code = 'huanwei' AND i.status NOT IN ('closed', 'rejected')""", c=GRID)
    everything = export_grid_package(session, GRID, tmp_path / "all.gpkg", reader=PUBLIC)
    assert counts["issues"] == expected < everything["issues"]
    assert counts["facilities"] == everything["facilities"]  # facilities are not case data


def test_the_grid_and_its_neighbours(session, tmp_path):
    path = tmp_path / "grid.gpkg"
    export_grid_package(session, GRID, path, reader=PUBLIC)
    grid = pyogrio.read_dataframe(path, layer="grid")
    stored = shapely.from_wkb(bytes(scalar(
        session, "SELECT ST_AsBinary(geom) FROM grids WHERE code = :c AND valid_to IS NULL", c=GRID)))
    assert grid["code"].tolist() == [GRID]
    assert shapely.equals_exact(grid.geometry.iloc[0], stored, tolerance=1e-9)
    # Neighbours worked out independently: current grids within 5 m, in UTM zone 49N metres.
    rows = session.execute(text("SELECT code, ST_AsBinary(geom) FROM grids WHERE valid_to IS NULL"))
    utm = Transformer.from_crs(4326, 32649, always_xy=True).transform
    metric = {code: shapely.transform(shapely.from_wkb(bytes(wkb)), utm, interleaved=False)
              for code, wkb in rows}
    expected = sorted(c for c, g in metric.items() if c != GRID and g.distance(metric[GRID]) <= 5)
    neighbours = pyogrio.read_dataframe(path, layer="neighbours")
    assert neighbours["code"].tolist() == expected and len(expected) >= 2


def test_package_info_says_where_reports_go(session, tmp_path):
    path = tmp_path / "grid.gpkg"
    export_grid_package(session, GRID, path, reader=PUBLIC)
    info = pyogrio.read_dataframe(path, layer="package_info", read_geometry=False)
    assert info["grid_code"].tolist() == [GRID] and info["sync_endpoint"][0] == "/api/v1/issues"


def test_an_existing_package_is_replaced_and_a_failed_export_leaves_it(session, tmp_path):
    path = tmp_path / "grid.gpkg"
    path.write_bytes(b"old")
    export_grid_package(session, GRID, path, reader=PUBLIC)
    good = path.read_bytes()
    assert good.startswith(b"SQLite format 3")
    with pytest.raises(NotFound, match="no current grid"):
        export_grid_package(session, "140429100001999", path, reader=PUBLIC)
    assert path.read_bytes() == good and list(tmp_path.iterdir()) == [path]
    with pytest.raises(ValueError, match=".gpkg"):
        export_grid_package(session, GRID, tmp_path / "grid.geojson", reader=PUBLIC)


def test_the_cli_writes_the_package(demo_engine, database_url, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    path = tmp_path / "tablet.gpkg"
    assert gridmap(["export-grid", GRID, str(path)]) == 0
    assert f"grid {GRID} packaged" in capsys.readouterr().out
    assert {name for name, _ in pyogrio.list_layers(path)} == set(LAYERS)
    assert gridmap(["export-grid", "140429100001999", str(tmp_path / "x.gpkg")]) == 1
    assert gridmap(["export-grid", GRID, str(tmp_path / "x.geojson")]) == 2
