"""Base maps and the GCJ-02 shift for AMap tiles."""

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import Point, box

from gis.geo.crs import from_wgs84
from maps.base import BaseMapOptions, geojson, latlon_to_datum, new_map, render, to_datum
from tests.maps import builders


def test_gcj02_shift_moves_every_vertex_as_gis_crs_does():
    grids = builders.grids()
    shifted = to_datum(grids, "gcj02")
    before = shapely.get_coordinates(grids.geometry.values)
    after = shapely.get_coordinates(shifted.geometry.values)
    lon, lat = from_wgs84(before[:, 0], before[:, 1], "gcj02")
    np.testing.assert_allclose(after[:, 0], lon, atol=1e-6)
    np.testing.assert_allclose(after[:, 1], lat, atol=1e-6)
    # the shift at 太东社区 is hundreds of metres, east and north: visible if forgotten
    dx_m = (after[:, 0] - before[:, 0]).mean() * 89_000
    dy_m = (after[:, 1] - before[:, 1]).mean() * 111_000
    assert 300 < dx_m < 900 and 0 < dy_m < 400
    assert shapely.get_coordinates(grids.geometry.values).tolist() == before.tolist()  # input kept


def test_wgs84_datum_only_rounds_to_a_tenth_of_a_metre():
    grids = builders.grids()
    same = to_datum(grids, "wgs84")
    diff = np.abs(shapely.get_coordinates(same.geometry.values)
                  - shapely.get_coordinates(grids.geometry.values))
    assert diff.max() <= 5e-7


def test_points_shift_with_the_polygons():
    lat, lon = latlon_to_datum(np.array([36.84]), np.array([112.86]), "gcj02")
    g_lon, g_lat = from_wgs84(112.86, 36.84, "gcj02")
    assert lat[0] == pytest.approx(g_lat, abs=1e-5) and lon[0] == pytest.approx(g_lon, abs=1e-5)


def test_to_datum_checks_its_input():
    with pytest.raises(TypeError, match="GeoDataFrame"):
        to_datum([Point(0, 0)], "gcj02")
    with pytest.raises(ValueError, match="EPSG:4326"):
        to_datum(gpd.GeoDataFrame(geometry=[Point(0, 0)], crs="EPSG:3857"), "gcj02")
    with pytest.raises(ValueError, match="datum"):
        to_datum(builders.grids(), "bd09")


def test_offline_pages_request_no_tiles_at_all():
    html = render(new_map(BaseMapOptions("osm", online=False), "zh"))
    assert "L.tileLayer" not in html
    assert BaseMapOptions("amap", online=False).datum == "wgs84"


@pytest.mark.parametrize("name, url_part, datum", [
    ("osm", "tile.openstreetmap.org", "wgs84"),
    ("tianditu", "tianditu.gov.cn/vec_w/wmts", "wgs84"),
    ("amap", "is.autonavi.com/appmaptile", "gcj02"),
])
def test_online_base_maps(name, url_part, datum):
    options = BaseMapOptions(name, online=True, tianditu_key="KEY123")
    assert options.datum == datum
    html = render(new_map(options, "zh"))
    assert url_part in html
    if name == "tianditu":
        assert "tk=KEY123" in html and "cva_w" in html
    if datum == "gcj02":  # WGS84 tiles would not line up with shifted layers: not offered
        assert "openstreetmap" not in html and "tianditu" not in html


def test_tianditu_without_a_key_falls_back_to_no_base_map():
    assert BaseMapOptions("tianditu", online=True).effective == "none"
    with pytest.raises(ValueError, match="basemap"):
        BaseMapOptions("google")


def test_geojson_ships_only_the_named_columns_as_plain_json():
    frame = gpd.GeoDataFrame(
        {"name": ["东院", None], "n": np.array([3, 4], dtype=np.int64), "x": [1.5, np.nan],
         "at": pd.to_datetime(["2025-03-01T08:00:00+08:00", None]), "secret": ["a", "b"]},
        geometry=[box(112.86, 36.84, 112.861, 36.841), Point(112.87, 36.85)], crs="EPSG:4326")
    out = geojson(frame, ["name", "n", "x", "at"])
    json.dumps(out)  # plain JSON all the way down
    first, second = out["features"]
    assert first["properties"] == {"name": "东院", "n": 3, "x": 1.5,
                                   "at": "2025-03-01T08:00:00+08:00"}
    assert type(first["properties"]["n"]) is int
    assert second["properties"] == {"name": None, "n": 4, "x": None, "at": None}
    assert first["geometry"]["type"] == "Polygon"
    assert second["geometry"] == {"type": "Point", "coordinates": [112.87, 36.85]}
    assert [f["id"] for f in out["features"]] == ["0", "1"]
    assert shapely.geometry.shape(first["geometry"]).equals(frame.geometry.iloc[0])


def test_geojson_text_is_escaped_except_our_own_html():
    frame = gpd.GeoDataFrame({"name": ['<img src=x onerror="alert(1)">'], "link": ["<b>ok</b>"]},
                             geometry=[Point(112.87, 36.85)], crs="EPSG:4326")
    props = geojson(frame, ["name", "link"], html=("link",))["features"][0]["properties"]
    assert props["name"] == "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"
    assert props["link"] == "<b>ok</b>"
