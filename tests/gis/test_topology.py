"""gis.geo.topology: grid quality checks on constructed tilings (no database).

Expected areas are computed independently of the code under test: geodesic areas on the GRS80
ellipsoid (pyproj.Geod), not areas in the Gauss-Kruger projection the checks use.
"""

from __future__ import annotations

import json
from itertools import pairwise

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import MultiPoint, MultiPolygon, Polygon, box

from gis.geo.topology import PROBLEM_COLUMNS, PROBLEM_KINDS, TopologyReport, check_grids

LON, LAT = 112.86, 36.84  # 武乡县
STEP = 0.002  # grid size in degrees, about 180 m x 220 m
GEOD = Geod(ellps="GRS80")
METRE_LON = 1 / (GEOD.inv(LON, LAT, LON + 1, LAT)[2])  # degrees of longitude per metre here
METRE_LAT = 1 / (GEOD.inv(LON, LAT, LON, LAT + 1)[2])


def geodesic_area(geom) -> float:
    return abs(GEOD.geometry_area_perimeter(geom)[0])


def cell(col: int, row: int) -> Polygon:
    """Grid cell ``col`` east, ``row`` north of the community's south-west corner."""
    return box(LON + col * STEP, LAT + row * STEP, LON + (col + 1) * STEP, LAT + (row + 1) * STEP)


def tiling(cols: int = 3, rows: int = 3, community_code: str = "140429001001") -> gpd.GeoDataFrame:
    """A clean tiling, numbered west to east, north to south like real grid codes."""
    cells = [(c, r) for r in reversed(range(rows)) for c in range(cols)]
    return gpd.GeoDataFrame(
        {
            "code": [f"{community_code}{n + 1:03d}" for n in range(len(cells))],
            "community_code": [community_code] * len(cells),
        },
        geometry=[cell(c, r) for c, r in cells],
        crs="EPSG:4326",
    )


def community(cols: int = 3, rows: int = 3, code: str = "140429001001") -> gpd.GeoDataFrame:
    outline = box(LON, LAT, LON + cols * STEP, LAT + rows * STEP)
    return gpd.GeoDataFrame(
        {"code": [code], "name": ["东关社区"]}, geometry=[outline], crs="EPSG:4326"
    )


def only(report: TopologyReport, kind: str) -> gpd.GeoDataFrame:
    """The problems of ``kind``, after checking there are no problems of any other kind."""
    others = {k: n for k, n in report.counts().items() if k != kind and n}
    assert not others, report.to_table()
    return report.problems[report.problems["kind"] == kind]


def replace(grids: gpd.GeoDataFrame, code_suffix: str, geom) -> gpd.GeoDataFrame:
    grids = grids.copy()
    grids.loc[grids["code"].str.endswith(code_suffix), "geometry"] = geom
    return grids


# --- clean ---------------------------------------------------------------------------------


@pytest.mark.parametrize("with_communities", [True, False])
def test_clean_tiling_has_no_problems(with_communities):
    report = check_grids(tiling(), community() if with_communities else None)

    assert report.ok
    assert report.counts() == dict.fromkeys(PROBLEM_KINDS, 0)
    assert report.to_table() == "No problems in 9 grids."
    assert json.loads(report.to_geojson()) == {"type": "FeatureCollection", "features": []}
    assert list(report.problems.columns) == [*PROBLEM_COLUMNS, "geometry"]


def test_large_community_with_t_junctions_has_no_problems():
    # The community outline has only its 4 corners while 400 grids put vertices along its edges:
    # in the projected CRS those vertices leave the straight edge by centimetres. The checks
    # overlay in lon/lat, so nothing is reported.
    report = check_grids(tiling(20, 20), community(20, 20))

    assert report.ok, report.to_table()


def test_irregular_tiling_cut_from_an_outline_has_no_false_gaps():
    # Voronoi cells clipped to a wobbly outline: vertices computed by GEOS, not shared exactly,
    # and long hair-thin dust between cell and outline (which, projected corner by corner
    # only, would look like square metres of gap).
    rng = np.random.default_rng(1)
    angle = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    radius = 1 + 0.1 * rng.standard_normal(60)
    outline = Polygon(
        np.column_stack([LON + 0.02 * radius * np.cos(angle), LAT + 0.015 * radius * np.sin(angle)])
    )
    (west, east), (south, north) = outline.bounds[::2], outline.bounds[1::2]
    seeds = MultiPoint(
        np.column_stack([rng.uniform(west, east, 30), rng.uniform(south, north, 30)])
    )
    cells = shapely.intersection(
        shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=outline)), outline
    )
    cells = cells[~shapely.is_empty(cells)]
    grids = gpd.GeoDataFrame(
        {"code": [f"{i:03d}" for i in range(len(cells))], "community_code": "c"},
        geometry=list(cells),
        crs="EPSG:4326",
    )
    outlines = gpd.GeoDataFrame(
        {"code": ["c"], "name": ["太东社区"]}, geometry=[outline], crs="EPSG:4326"
    )

    report = check_grids(grids, outlines)

    assert report.ok, report.to_table()


def test_communities_are_matched_by_name_when_grids_carry_the_name():
    grids = tiling().drop(columns="community_code").assign(community="东关社区")

    assert check_grids(grids, community()).ok


# --- each kind of problem --------------------------------------------------------------------


def test_overlap_is_found_with_its_area():
    grown = box(LON + STEP, LAT + STEP, LON + 2.25 * STEP, LAT + 2 * STEP)  # middle cell, wider
    report = check_grids(replace(tiling(), "005", grown), community())

    [overlap] = only(report, "overlap").itertuples()
    expected = geodesic_area(box(LON + 2 * STEP, LAT + STEP, LON + 2.25 * STEP, LAT + 2 * STEP))
    assert overlap.area_m2 == pytest.approx(expected, rel=2e-3)
    assert overlap.grid_codes == ["140429001001005", "140429001001006"]
    assert overlap.community == "东关社区"


def test_gap_is_found_with_its_area_and_neighbours():
    shrunk = box(LON + STEP, LAT + STEP, LON + 1.8 * STEP, LAT + 2 * STEP)
    report = check_grids(replace(tiling(), "005", shrunk), community())

    [gap] = only(report, "gap").itertuples()
    expected = geodesic_area(box(LON + 1.8 * STEP, LAT + STEP, LON + 2 * STEP, LAT + 2 * STEP))
    assert gap.area_m2 == pytest.approx(expected, rel=2e-3)
    assert {"140429001001005", "140429001001006"} <= set(gap.grid_codes)


def test_hole_is_a_gap_without_community_polygons():
    grids = tiling()
    report = check_grids(grids[~grids["code"].str.endswith("005")])

    [gap] = only(report, "gap").itertuples()
    assert gap.area_m2 == pytest.approx(geodesic_area(cell(1, 1)), rel=2e-3)
    assert len(gap.grid_codes) == 8


def test_community_without_grids_is_one_big_gap():
    report = check_grids(tiling().iloc[:0], community())

    [gap] = only(report, "gap").itertuples()
    assert gap.detail == "community has no grids"
    assert gap.area_m2 == pytest.approx(geodesic_area(community().geometry[0]), rel=2e-3)


def test_thin_gap_is_a_sliver():
    width_m = 0.5
    shrunk = box(LON + STEP, LAT + STEP, LON + 2 * STEP - width_m * METRE_LON, LAT + 2 * STEP)
    report = check_grids(replace(tiling(), "005", shrunk), community())

    [sliver] = only(report, "sliver").itertuples()
    strip = box(LON + 2 * STEP - width_m * METRE_LON, LAT + STEP, LON + 2 * STEP, LAT + 2 * STEP)
    assert sliver.area_m2 == pytest.approx(geodesic_area(strip), rel=2e-3)
    assert sliver.detail.startswith("thin gap in community 东关社区, about 0.50 m wide")


def test_thin_grid_is_a_sliver():
    width_m = 1.0
    split = LON + STEP - width_m * METRE_LON
    grids = gpd.GeoDataFrame(
        {"code": ["001", "002"], "community_code": ["c", "c"]},
        geometry=[box(LON, LAT, split, LAT + STEP), box(split, LAT, LON + STEP, LAT + STEP)],
        crs="EPSG:4326",
    )
    outline = gpd.GeoDataFrame(
        {"code": ["c"], "name": ["西关社区"]},
        geometry=[box(LON, LAT, LON + STEP, LAT + STEP)],
        crs="EPSG:4326",
    )

    [sliver] = only(check_grids(grids, outline), "sliver").itertuples()

    assert sliver.grid_codes == ["002"]
    assert sliver.area_m2 == pytest.approx(geodesic_area(grids.geometry[1]), rel=2e-3)
    assert "about 1.00 m wide" in sliver.detail


def test_thin_part_of_a_multipolygon_grid_is_a_sliver():
    strip = box(LON + 3 * STEP + 0.1 * METRE_LON, LAT, LON + 3 * STEP + 0.4 * METRE_LON, LAT + STEP)
    grids = replace(tiling(), "009", MultiPolygon([cell(2, 0), strip]))
    report = check_grids(grids)

    [sliver] = only(report, "sliver").itertuples()
    assert sliver.grid_codes == ["140429001001009"]
    assert sliver.area_m2 == pytest.approx(geodesic_area(strip), rel=2e-3)


def test_bow_tie_is_invalid_with_the_reason_and_area_of_its_triangles():
    x, y = LON + STEP, LAT + STEP
    tie = Polygon([(x, y), (x + STEP, y + STEP), (x + STEP, y), (x, y + STEP), (x, y)])
    report = check_grids(replace(tiling(), "005", tie), community())

    [invalid] = report.problems[report.problems["kind"] == "invalid"].itertuples()
    assert invalid.detail == f"invalid grid: Self-intersection[{x + STEP / 2:g} {y + STEP / 2:g}]"
    assert invalid.grid_codes == ["140429001001005"]
    half_cell = geodesic_area(cell(1, 1)) / 2
    assert invalid.area_m2 == pytest.approx(half_cell, rel=2e-3)
    gaps = report.problems[report.problems["kind"] == "gap"]
    assert len(gaps) == 2  # the two triangles the bow-tie leaves uncovered
    assert gaps["area_m2"].sum() == pytest.approx(half_cell, rel=2e-3)


def test_grid_sticking_out_of_its_community_is_found_with_the_area_outside():
    wider = box(LON + 2 * STEP, LAT + STEP, LON + 3.3 * STEP, LAT + 2 * STEP)
    report = check_grids(replace(tiling(), "006", wider), community())

    [outside] = only(report, "outside").itertuples()
    beyond = box(LON + 3 * STEP, LAT + STEP, LON + 3.3 * STEP, LAT + 2 * STEP)
    assert outside.area_m2 == pytest.approx(geodesic_area(beyond), rel=2e-3)
    assert outside.grid_codes == ["140429001001006"]


def test_grid_of_an_unknown_community_is_reported():
    grids = tiling()
    grids.loc[0, "community_code"] = "140429009009"
    report = check_grids(grids, community())

    assert report.counts()["no_community"] == 1
    assert report.counts()["gap"] == 1  # the cell it left in 东关社区
    [unmatched] = report.problems[report.problems["kind"] == "no_community"].itertuples()
    assert unmatched.detail == "community '140429009009' is not among the community polygons"


def test_dust_below_the_minimum_areas_is_ignored():
    nudge = 1e-3 * METRE_LON  # a 1 mm overlap, about 0.2 m2 along the 220 m edge
    grown = box(LON + STEP, LAT + STEP, LON + 2 * STEP + nudge, LAT + 2 * STEP)
    grids = replace(tiling(), "005", grown)

    assert check_grids(grids, community(), min_overlap_area_m2=1.0).ok
    assert check_grids(grids, community()).counts()["sliver"] == 1


# --- the report ----------------------------------------------------------------------------


def test_report_renders_as_table_and_geojson():
    grown = box(LON + STEP, LAT + STEP, LON + 2.25 * STEP, LAT + 2 * STEP)
    report = check_grids(replace(tiling(), "005", grown), community())

    table = report.to_table().splitlines()
    assert table[0] == "1 problems in 9 grids: overlap 1"
    assert table[1].split() == ["kind", "grids", "community", "area", "m2", "detail"]
    assert "东关社区" in table[3]
    collection = json.loads(report.to_geojson())
    [feature] = collection["features"]
    assert feature["properties"]["grid_codes"] == ["140429001001005", "140429001001006"]
    assert feature["geometry"]["type"] == "Polygon"
    assert report.problems.crs.to_epsg() == 4326


def test_inputs_are_checked():
    with pytest.raises(TypeError, match="'grids' should be GeoDataFrame, got list"):
        check_grids([])
    with pytest.raises(ValueError, match="'grids' should have a CRS"):
        check_grids(tiling().set_crs(None, allow_override=True))
    with pytest.raises(ValueError, match="'community_code' or 'community'"):
        check_grids(tiling().drop(columns="community_code"))
    with pytest.raises(ValueError, match=r"'communities' should have columns \['code', 'name'\]"):
        check_grids(tiling(), community().drop(columns="name"))


# --- properties ----------------------------------------------------------------------------

# Cuts at least 1% apart: nearer ones make cells that collapse in floating point, which the
# checker rightly reports as invalid grids.
cuts = st.lists(st.integers(2, 98), min_size=0, max_size=4, unique=True).map(
    lambda c: [v / 100 for v in sorted(c)])


@settings(max_examples=30, deadline=None)
@given(xs=cuts, ys=cuts, width=st.floats(0.001, 0.03), height=st.floats(0.001, 0.03))
def test_any_rectangular_tiling_is_clean(xs, ys, width, height):
    xs = [LON + width * t for t in (0.0, *xs, 1.0)]
    ys = [LAT + height * t for t in (0.0, *ys, 1.0)]
    cells = [box(x0, y0, x1, y1) for x0, x1 in pairwise(xs) for y0, y1 in pairwise(ys)]
    grids = gpd.GeoDataFrame(
        {"code": [f"{i:03d}" for i in range(len(cells))], "community_code": "c"},
        geometry=cells,
        crs="EPSG:4326",
    )
    outline = gpd.GeoDataFrame(
        {"code": ["c"], "name": ["社区"]},
        geometry=[box(xs[0], ys[0], xs[-1], ys[-1])],
        crs="EPSG:4326",
    )

    report = check_grids(grids, outline, sliver_max_width_m=0.0)

    assert report.ok, report.to_table()


@settings(max_examples=30, deadline=None)
@given(fraction=st.floats(0.05, 0.95))
def test_overlap_area_follows_the_overlap(fraction):
    grown = box(LON + STEP, LAT + STEP, LON + (2 + fraction) * STEP, LAT + 2 * STEP)
    report = check_grids(replace(tiling(), "005", grown), community())

    [overlap] = only(report, "overlap").itertuples()
    expected = geodesic_area(
        box(LON + 2 * STEP, LAT + STEP, LON + (2 + fraction) * STEP, LAT + 2 * STEP)
    )
    assert overlap.area_m2 == pytest.approx(expected, rel=2e-3)
