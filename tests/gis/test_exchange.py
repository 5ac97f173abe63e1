"""Import/export between files and the real PostGIS: round trips per format and CRS, all-or-nothing."""

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import Polygon
from sqlalchemy import text

from gis.errors import ImportFailed
from gis.exchange.files import read_layer, write_layer
from gis.exchange.transfer import export_features, import_features

FORMATS = ["geojson", "gpkg", "shp", "csv"]


def _counts(session) -> dict[str, int]:
    return {t: session.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("grids", "buildings", "facilities", "issues", "regions")}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", ["grids", "buildings", "facilities", "issues"])
def test_export_then_read_back_round_trips(session, tmp_path, kind, fmt):
    exported = export_features(session, kind)
    path = tmp_path / f"{kind}.{fmt}"
    write_layer(exported, path)
    back = read_layer(path, kind)
    assert len(back) == len(exported) > 0
    # same places, to well under a millimetre
    a, b = shapely.normalize(back.geometry.values), shapely.normalize(exported.geometry.values)
    assert shapely.equals_exact(a, b, tolerance=1e-8).all()


def test_epsg4547_geopackage_lands_where_it_belongs(session, tmp_path):
    """A CGCS2000 Gauss-Kruger file (metres) imports onto the same place as the WGS84 original."""
    grids = export_features(session, "grids").head(2)
    moved = grids.assign(code=["140429100009901", "140429100009902"],
                         community="测试社区").to_crs(4547)
    path = tmp_path / "grids_4547.gpkg"
    write_layer(moved, path)
    gdf = read_layer(path, "grids")
    assert gdf.crs.to_epsg() == 4326
    import_features(session, "grids", gdf)
    stored = session.execute(text(
        "SELECT ST_HausdorffDistance(a.geom, b.geom) FROM grids a JOIN grids b "
        "ON b.code = :orig AND b.valid_to IS NULL WHERE a.code = '140429100009901'"),
        {"orig": grids["code"].iloc[0]}).scalar_one()
    assert stored < 1e-7  # degrees: about a centimetre
    community = session.execute(text(
        "SELECT ST_Area(geom::geography) FROM regions WHERE name = '测试社区'")).scalar_one()
    assert community > 1000  # the new community took its grids' outline


def test_reimporting_a_grid_redraws_it_as_a_new_version(session):
    grids = export_features(session, "grids").head(1)
    code = grids["code"].iloc[0]
    redrawn = grids.assign(geometry=grids.geometry.buffer(-1e-5))
    import_features(session, "grids", redrawn.set_crs(4326, allow_override=True))
    rows = session.execute(text(
        "SELECT version, valid_to IS NULL FROM grids WHERE code = :c ORDER BY version"),
        {"c": code}).all()
    assert rows == [(1, False), (2, True)]


def test_a_broken_file_gets_row_errors_and_changes_nothing(session, tmp_path):
    before = _counts(session)
    bow_tie = Polygon([(112.86, 36.84), (112.87, 36.85), (112.87, 36.84), (112.86, 36.85)])
    good = Polygon([(112.86, 36.84), (112.861, 36.84), (112.861, 36.841)])
    gdf = gpd.GeoDataFrame({"code": ["140429100009990", "140429100009991"],
                            "name": ["好网格", "坏网格"], "community": ["太东社区", "太东社区"]},
                           geometry=[good, bow_tie], crs=4326)
    path = tmp_path / "broken.geojson"
    gdf.to_file(path)
    with pytest.raises(ImportFailed) as err:
        read_layer(path, "grids")
    assert err.value.rows[0][0] == 2 and "Self-intersection" in err.value.rows[0][1]
    assert _counts(session) == before


def test_unknown_category_is_a_row_error_and_nothing_is_imported(session):
    before = _counts(session)
    pts = gpd.GeoDataFrame({"category": ["streetlight", "flying_saucer"]},
                           geometry=gpd.points_from_xy([112.86, 112.861], [36.84, 36.841]), crs=4326)
    with pytest.raises(ImportFailed) as err:
        import_features(session, "facilities", pts)
    assert err.value.rows == [(2, err.value.rows[0][1])] and "flying_saucer" in err.value.rows[0][1]
    assert _counts(session) == before
