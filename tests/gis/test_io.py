"""gis.exchange.files: reading and writing layer files, and refusing bad ones row by row (no database)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Point, Polygon, box

from gis.errors import ImportFailed, UnknownCRS
from gis.exchange.files import KINDS, read_layer, write_layer

# 武乡县 (Wuxiang county, Shanxi), in the CGCS2000 Gauss-Kruger zone CM 114E (EPSG:4547).
LON, LAT = 112.86, 36.84
STEP = 0.002  # about 180 m east-west, 220 m north-south
FORMATS = ("geojson", "gpkg", "shp", "csv")


def bow_tie(x=LON, y=LAT, d=STEP) -> Polygon:
    """Two triangles meeting at the centre: invalid, Self-intersection at (x + d/2, y + d/2)."""
    return Polygon([(x, y), (x + d, y + d), (x + d, y), (x, y + d), (x, y)])


def grids_frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "code": ["140429001001001", "140429001001002", "140429001001003"],
            "name": ["第一网格", "第二网格", "第三网格"],
            "community": ["东关社区"] * 3,
        },
        geometry=[
            MultiPolygon([box(LON + i * STEP, LAT, LON + (i + 1) * STEP, LAT + STEP)])
            for i in range(3)
        ],
        crs="EPSG:4326",
    )


def buildings_frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "name": ["1号楼", "2号楼"],
            "compound": ["幸福小区", None],
            "floors": pd.array([6, 18], dtype="Int64"),
            "households": pd.array([24, None], dtype="Int64"),
        },
        geometry=[
            box(LON, LAT, LON + 0.0003, LAT + 0.0001),
            Polygon(
                [(LON, LAT + 0.001), (LON + 0.0004, LAT + 0.001), (LON + 0.0002, LAT + 0.0013)]
            ),
        ],
        crs="EPSG:4326",
    )


def facilities_frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "category": ["0102", "0101", "路灯"],
            "name": ["污水井盖", None, "东街路灯"],
            "status": ["ok", "damaged", "missing"],
            "code": ["1404290102000001", "1404290101000002", None],
        },
        geometry=[Point(LON + 0.0001 * i, LAT + 0.0002 * i) for i in range(3)],
        crs="EPSG:4326",
    )


def issues_frame() -> gpd.GeoDataFrame:
    reported = pd.to_datetime(["2024-05-01T08:30:00+08:00", "2024-05-02T17:05:30+08:00"])
    return gpd.GeoDataFrame(
        {
            "category": ["暴露垃圾", "井盖缺失"],
            "description": ["东街口垃圾堆放", None],
            "reported_at": reported.tz_convert("Asia/Shanghai"),
            "status": ["reported", "accepted"],
            "client_uuid": ["5b7f1c1e-8f0a-4c61-9d7e-0a1b2c3d4e5f", None],
        },
        geometry=[Point(LON + 0.0005, LAT + 0.0005), Point(LON + 0.0011, LAT + 0.0003)],
        crs="EPSG:4326",
    )


BUILDERS = {
    "grids": grids_frame,
    "buildings": buildings_frame,
    "facilities": facilities_frame,
    "issues": issues_frame,
}


def assert_same_layer(got: gpd.GeoDataFrame, expected: gpd.GeoDataFrame, tolerance=1e-9):
    assert got.crs.to_epsg() == 4326
    assert len(got) == len(expected)
    for column in expected.columns.drop("geometry"):
        got_values = [None if pd.isna(v) else v for v in got[column]]
        want_values = [None if pd.isna(v) else v for v in expected[column]]
        assert got_values == want_values, column
    # normalize: a shapefile stores rings clockwise and may start them at another vertex
    got_geoms = shapely.normalize(got.geometry.to_numpy())
    want_geoms = shapely.normalize(expected.geometry.to_numpy())
    same = shapely.equals_exact(got_geoms, want_geoms, tolerance)
    assert same.all(), list(zip(got_geoms, want_geoms, strict=True))


# --- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("suffix", FORMATS)
def test_each_kind_survives_a_round_trip_through_each_format(tmp_path, kind, suffix):
    original = BUILDERS[kind]()
    path = write_layer(original, tmp_path / f"{kind}.{suffix}")

    got = read_layer(path, kind)

    assert_same_layer(got, original)


def test_grids_come_back_as_multipolygons_and_single_part_buildings_as_polygons(tmp_path):
    grids = grids_frame().set_geometry([g.geoms[0] for g in grids_frame().geometry])
    buildings = buildings_frame().set_geometry(
        [MultiPolygon([g]) for g in buildings_frame().geometry]
    )

    got_grids = read_layer(write_layer(grids, tmp_path / "g.geojson"), "grids")
    got_buildings = read_layer(write_layer(buildings, tmp_path / "b.gpkg"), "buildings")

    assert set(got_grids.geom_type) == {"MultiPolygon"}
    assert set(got_buildings.geom_type) == {"Polygon"}


def test_csv_keeps_codes_as_text_and_reads_chinese_excel_encoding(tmp_path):
    path = tmp_path / "facilities.csv"
    path.write_bytes("category,名称,lng,lat\n0102,雨水井盖,112.86,36.84\n".encode("gb18030"))

    got = read_layer(path, "facilities")

    assert got.loc[0, "category"] == "0102"
    assert got.loc[0, "名称"] == "雨水井盖"
    assert got.geometry[0].equals(Point(112.86, 36.84))


@pytest.mark.parametrize("header", ["lon,lat", "Longitude,Latitude", "x,y", "LNG,LAT"])
def test_csv_accepts_the_usual_coordinate_column_names(tmp_path, header):
    path = tmp_path / "p.csv"
    path.write_text(f"category,{header}\nbench,112.86,36.84\n", encoding="utf-8")

    assert read_layer(path, "facilities").geometry[0].equals(Point(112.86, 36.84))


def test_cgcs2000_gauss_kruger_geopackage_lands_where_it_belongs(tmp_path):
    original = grids_frame()
    path = write_layer(original.to_crs(4547), tmp_path / "grids_4547.gpkg")

    got = read_layer(path, "grids")

    assert_same_layer(got, original, tolerance=1e-6)


def test_projected_points_from_a_csv_with_crs(tmp_path):
    original = facilities_frame()
    path = write_layer(original.to_crs(4547), tmp_path / "facilities_xy.csv")
    assert "x,y" in path.read_text(encoding="utf-8-sig").splitlines()[0]

    got = read_layer(path, "facilities", crs="EPSG:4547")

    assert_same_layer(got, original, tolerance=1e-6)


def test_geopackage_layers_are_chosen_by_name_or_kind(tmp_path):
    path = tmp_path / "community.gpkg"
    write_layer(grids_frame(), path, layer="grids")
    write_layer(facilities_frame(), path, layer="facilities")

    assert len(read_layer(path, "grids")) == 3
    assert len(read_layer(path, "facilities", layer="facilities")) == 3
    with pytest.raises(ImportFailed, match="several layers"):
        read_layer(path, "issues")
    with pytest.raises(ImportFailed, match="expected a layer named 'streets'"):
        read_layer(path, "grids", layer="streets")


def test_zipped_shapefile_is_read(tmp_path):
    import zipfile

    write_layer(facilities_frame(), tmp_path / "facilities.shp")
    archive = tmp_path / "facilities.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for part in tmp_path.glob("facilities.*"):
            if part.suffix != ".zip":
                zipped.write(part, part.name)

    assert_same_layer(read_layer(archive, "facilities"), facilities_frame())


# --- CRS ---------------------------------------------------------------------------------------


def test_shapefile_without_prj_is_refused_unless_crs_is_given(tmp_path):
    path = write_layer(grids_frame().to_crs(4547), tmp_path / "grids.shp")
    path.with_suffix(".prj").unlink()

    with pytest.raises(ImportFailed, match=r"\.prj.*crs="):
        read_layer(path, "grids")
    got = read_layer(path, "grids", crs="EPSG:4547")

    assert_same_layer(got, grids_frame(), tolerance=1e-6)


def test_old_style_geojson_in_projected_coordinates_takes_crs(tmp_path):
    path = tmp_path / "grids_4547.geojson"
    collection = json.loads(grids_frame().to_crs(4547).to_json())
    del collection["crs"]
    path.write_text(json.dumps(collection), encoding="utf-8")

    with pytest.raises(ImportFailed) as caught:
        read_layer(path, "grids")
    got = read_layer(path, "grids", crs="EPSG:4547")

    assert "projected CRS? say which with crs=" in caught.value.rows[0][1]
    assert_same_layer(got, grids_frame(), tolerance=1e-6)


def test_geojson_naming_its_crs_at_the_end_is_honoured(tmp_path):
    path = tmp_path / "grids_4547.geojson"
    path.write_text(grids_frame().to_crs(4547).to_json(), encoding="utf-8")  # "crs" comes last

    assert_same_layer(read_layer(path, "grids"), grids_frame(), tolerance=1e-6)
    with pytest.raises(ImportFailed, match="declares its CRS as EPSG:4547"):
        read_layer(path, "grids", crs="EPSG:4490")


def test_crs_that_contradicts_the_file_is_refused(tmp_path):
    path = write_layer(grids_frame(), tmp_path / "grids.gpkg")

    with pytest.raises(ImportFailed, match="declares its CRS as EPSG:4326"):
        read_layer(path, "grids", crs="EPSG:4547")
    assert len(read_layer(path, "grids", crs="EPSG:4326")) == 3


def test_unknown_crs_is_refused(tmp_path):
    path = write_layer(facilities_frame(), tmp_path / "f.csv")
    with pytest.raises(UnknownCRS, match="expected a CRS"):
        read_layer(path, "facilities", crs="EPSG:99999999")


# --- refusing bad rows -------------------------------------------------------------------------


def test_bad_grid_rows_are_all_listed_with_their_reasons(tmp_path):
    path = tmp_path / "grids.csv"
    lines = [
        "code,name,community,wkt",
        f'001,东一,东关社区,"{box(LON, LAT, LON + STEP, LAT + STEP).wkt}"',
        f'002,东二,东关社区,"{bow_tie(LON + STEP).wkt}"',
        f'003,,东关社区,"{box(LON, LAT + STEP, LON + STEP, LAT + 2 * STEP).wkt}"',
        f'004,东四,东关社区,"POLYGON (({LON} {LAT}, {LON + 1} {LAT}, {LON} {LAT + 1}))"',
        f'005,东五,东关社区,"POINT ({LON} {LAT})"',
        f'001,东六,东关社区,"{box(LON, LAT, LON + 0.001, LAT + 0.001).wkt}"',
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    with pytest.raises(ImportFailed) as caught:
        read_layer(path, "grids")

    rows = caught.value.rows
    assert [row for row, _ in rows] == [2, 3, 4, 5, 6]
    reasons = dict(rows)
    assert (
        reasons[2]
        == f"invalid geometry: Self-intersection[{LON + STEP * 1.5:.3f} {LAT + STEP / 2:.3f}]"
    )
    assert reasons[3] == "missing required property 'name'"
    assert "unclosed ring" in reasons[4]
    assert reasons[5] == "expected Polygon or MultiPolygon, got Point"
    assert reasons[6] == "code '001' repeats row 1"
    assert str(caught.value) == (
        f"grids.csv cannot be imported as grids: 5 of 6 rows are bad (first: row 2: {reasons[2]})"
    )
    assert caught.value.zh == (
        f"grids.csv 无法作为 grids 导入：6 行中有 5 行有误（第一处：第 2 行：{reasons[2]}）"
    )


def test_bad_csv_coordinates_are_listed_by_data_row(tmp_path):
    path = tmp_path / "issues.csv"
    path.write_text(
        "category,lon,lat,reported_at\n"
        "暴露垃圾,112.86,36.84,2024-05-01 08:30\n"
        "暴露垃圾,東經112,36.84,\n"
        "\n"
        "井盖缺失,36.84,112.86,\n"
        "井盖缺失,,36.84,\n"
        ",112.86,36.84,yesterday\n",
        encoding="utf-8",
    )

    with pytest.raises(ImportFailed) as caught:
        read_layer(path, "issues")

    assert caught.value.rows == [
        (2, "lon '東經112' is not a number"),
        (
            4,
            "expected lon within +-180 and lat within +-90 after conversion to WGS84, "
            "got lon 36.84, lat 112.86 (lon and lat swapped?)",
        ),
        (5, "lon is empty"),
        (6, "missing required property 'category'"),
        (6, "reported_at should be a date and time, got 'yesterday'"),
    ]


def test_bad_geojson_features_are_listed(tmp_path):
    def feature(geometry, **properties):
        return {"type": "Feature", "properties": properties, "geometry": geometry}

    square = box(LON, LAT, LON + STEP, LAT + STEP)
    unclosed = [list(xy) for xy in square.exterior.coords[:-1]]
    path = tmp_path / "buildings.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    feature(square.__geo_interface__, name="1号楼", floors=6),
                    feature(None, name="2号楼"),
                    feature({"type": "Polygon", "coordinates": [unclosed]}, name="3号楼"),
                    feature(
                        shapely.geometry.mapping(
                            MultiPolygon([square, box(LON + 1, LAT, LON + 2, LAT + 1)])
                        ),
                        name="4号楼",
                    ),
                    feature(box(LON, LAT, LON + 200, LAT + 1).__geo_interface__, name="5号楼"),
                    feature(square.__geo_interface__, name="6号楼", floors="六"),
                ],
            }
        ),
        encoding="utf-8",
    )

    with pytest.raises(ImportFailed) as caught:
        read_layer(path, "buildings")

    reasons = dict(caught.value.rows)
    assert sorted(reasons) == [2, 3, 4, 5, 6]
    assert reasons[2] == "no geometry"
    assert reasons[3].startswith("unreadable geometry") and "unclosed ring" in reasons[3]
    assert reasons[4] == "expected Polygon, got MultiPolygon with 2 parts"
    assert reasons[5].startswith("expected lon within +-180")
    assert reasons[6] == "floors should be a whole number >= 0, got '六'"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "expected a CSV file with a header line"),
        ("broken.geojson", b"{not json", "not a readable GIS file"),
        ("no_coordinates.csv", b"category,where\nbench,here\n", "expected coordinate columns"),
    ],
)
def test_unreadable_files_are_refused_with_a_reason(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)

    with pytest.raises(ImportFailed, match=message):
        read_layer(path, "facilities")


def test_missing_column_is_named_in_the_message(tmp_path):
    path = write_layer(grids_frame().drop(columns=["community"]), tmp_path / "g.geojson")

    with pytest.raises(
        ImportFailed, match=r"missing column community \(expected code, name, community\)"
    ):
        read_layer(path, "grids")


# --- repairing ---------------------------------------------------------------------------------


def test_fix_repairs_a_bow_tie_into_its_two_triangles(tmp_path):
    grids = grids_frame()
    grids.loc[1, "geometry"] = bow_tie(LON + STEP)
    path = write_layer(grids, tmp_path / "grids.gpkg")

    got = read_layer(path, "grids", fix=True)

    repaired = got.geometry[1]
    assert repaired.is_valid and repaired.geom_type == "MultiPolygon"
    assert len(repaired.geoms) == 2
    assert repaired.area == pytest.approx(STEP * STEP / 2)
    assert got.attrs["repaired_rows"] == [2]
    assert got.geometry[0].equals(grids.geometry[0])


def test_fix_closes_an_unclosed_ring(tmp_path):
    ring = [[LON, LAT], [LON + STEP, LAT], [LON + STEP, LAT + STEP], [LON, LAT + STEP]]
    path = tmp_path / "grid.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"code": "001", "name": "一", "community": "东关"},
                        "geometry": {"type": "Polygon", "coordinates": [ring]},
                    }
                ],
            }
        ),
        encoding="utf-8",
    )

    got = read_layer(path, "grids", fix=True)

    assert got.geometry[0].equals(box(LON, LAT, LON + STEP, LAT + STEP))
    assert got.attrs["repaired_rows"] == [1]


def test_fix_refuses_a_building_it_would_split_in_two(tmp_path):
    buildings = buildings_frame()
    buildings.loc[0, "geometry"] = bow_tie()
    path = write_layer(buildings, tmp_path / "b.geojson")

    with pytest.raises(ImportFailed) as caught:
        read_layer(path, "buildings", fix=True)

    [(row, reason)] = caught.value.rows
    assert row == 1
    assert "could not be repaired" in reason and "MultiPolygon with 2 parts" in reason


# --- writing -----------------------------------------------------------------------------------


def test_csv_writes_lon_lat_for_points_and_wkt_for_polygons(tmp_path):
    points = write_layer(facilities_frame(), tmp_path / "f.csv")
    polygons = write_layer(grids_frame(), tmp_path / "g.csv")

    assert (
        points.read_text(encoding="utf-8-sig").splitlines()[0]
        == "category,name,status,code,lon,lat"
    )
    assert polygons.read_text(encoding="utf-8-sig").splitlines()[0] == "code,name,community,wkt"


def test_write_refuses_unknown_extensions_and_non_frames(tmp_path):
    with pytest.raises(ValueError, match=r"expected a file ending in .geojson.*got '.kml'"):
        write_layer(grids_frame(), tmp_path / "grids.kml")
    with pytest.raises(TypeError, match="'gdf' should be GeoDataFrame, got DataFrame"):
        write_layer(pd.DataFrame({"a": [1]}), tmp_path / "a.csv")
    with pytest.raises(ValueError, match="'layer' applies to GeoPackage"):
        write_layer(grids_frame(), tmp_path / "grids.geojson", layer="grids")


def test_read_refuses_unknown_kind_and_extension(tmp_path):
    with pytest.raises(ValueError, match="'kind' should be one of grids, buildings"):
        read_layer(tmp_path / "x.geojson", "roads")
    with pytest.raises(ImportFailed, match="got '.xlsx'"):
        read_layer(tmp_path / "x.xlsx", "grids")
    with pytest.raises(ImportFailed, match="no such file"):
        read_layer(tmp_path / "missing.geojson", "grids")


def test_frame_without_crs_is_written_as_wgs84(tmp_path):
    path = write_layer(facilities_frame().set_crs(None, allow_override=True), tmp_path / "f.gpkg")

    assert read_layer(path, "facilities").crs.to_epsg() == 4326


# --- properties --------------------------------------------------------------------------------

china_lon = st.floats(73.5, 135.0, allow_nan=False)
china_lat = st.floats(18.0, 53.5, allow_nan=False)
size = st.floats(1e-5, 0.05, allow_nan=False)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    boxes=st.lists(st.tuples(china_lon, china_lat, size, size), min_size=1, max_size=5),
    suffix=st.sampled_from(FORMATS),
)
def test_random_valid_boxes_survive_a_round_trip(boxes, suffix):
    grids = gpd.GeoDataFrame(
        {
            "code": [f"{i:015d}" for i in range(len(boxes))],
            "name": [f"网格{i}" for i in range(len(boxes))],
            "community": ["社区"] * len(boxes),
        },
        geometry=[MultiPolygon([box(x, y, x + w, y + h)]) for x, y, w, h in boxes],
        crs="EPSG:4326",
    )
    with tempfile.TemporaryDirectory() as folder:
        got = read_layer(write_layer(grids, Path(folder) / f"grids.{suffix}"), "grids")

    assert_same_layer(got, grids)


@settings(max_examples=25, deadline=None)
@given(points=st.lists(st.tuples(china_lon, china_lat), min_size=1, max_size=20))
def test_random_points_survive_csv_exactly(points):
    facilities = gpd.GeoDataFrame(
        {"category": ["bench"] * len(points)},
        geometry=[Point(x, y) for x, y in points],
        crs="EPSG:4326",
    )
    with tempfile.TemporaryDirectory() as folder:
        got = read_layer(write_layer(facilities, Path(folder) / "f.csv"), "facilities")

    assert_same_layer(got, facilities, tolerance=0)
