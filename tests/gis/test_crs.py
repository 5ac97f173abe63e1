"""gis.geo.crs: GCJ-02/BD-09 against published vectors, exact inverses, validation, pyproj routes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pyproj import CRS

from gis.errors import InvalidCoordinates, UnknownCRS
from gis.geo import crs

# Degrees are compared to 1e-9 (0.1 mm); round trips are measured in metres.
DEG_TOL = 1e-9
EARTH_RADIUS_M = 6_371_008.8

# WGS84 (lon, lat) -> GCJ-02 (lon, lat). The first three are the TESTS table of eviltransform's
# Python test suite (python/test.py: Shanghai, Shenzhen, Beijing, given there as lat, lng); the
# fourth is the wgs84togcj02(116.404, 39.915) example in the README of wandergis/coordtransform.
GCJ02_VECTORS = [
    ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),
    ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),
    ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),
    ((116.404, 39.915), (116.41024449916938, 39.91640428150164)),
]

# GCJ-02 -> BD-09: the gcj02tobd09(116.404, 39.915) example in wandergis/coordtransform's README
# (x_pi = pi * 3000 / 180).
BD09_FROM_GCJ02 = ((116.404, 39.915), (116.41036949371029, 39.92133699351021))
# BD-09 -> GCJ-02 by the published closed form: bd09togcj02(116.404, 39.915), same README. Ours is
# the exact inverse of gcj02_to_bd09, which differs from the closed form by a few centimetres.
GCJ02_FROM_BD09_CLOSED_FORM = ((116.404, 39.915), (116.39762729119315, 39.90865673957631))
# BD-09 -> WGS84 from eviltransform's TESTS_bd (python/test.py), produced by a version whose
# gcj2bd/bd2gcj use plain pi instead of x_pi (python/eviltransform.py). They are the wrong-constant
# answer: correct code must be tens of metres away from them.
PLAIN_PI_BD09_TO_WGS84 = [
    ((120.019809, 29.199786), (120.00877901149691, 29.196131605295484)),
    ((120.036455, 29.210504), (120.0253853970846, 29.206795749156136)),
]

# Mainland China's extent, well inside the out_of_china rectangle.
china_lon = st.floats(min_value=73.5, max_value=135.0)
china_lat = st.floats(min_value=18.0, max_value=53.5)
china_point = st.tuples(china_lon, china_lat)

OUTSIDE_CHINA = [(2.3522, 48.8566), (-74.006, 40.7128), (139.6917, 35.6895), (151.2093, -33.8688),
                 (72.0, 30.0), (100.0, 0.5), (100.0, 56.0)]


def metres(lon1, lat1, lon2, lat2) -> float:
    """Distance on a sphere (equirectangular is exact enough at centimetre separations)."""
    mean_lat = math.radians((lat1 + lat2) / 2)
    dx = math.radians(lon2 - lon1) * math.cos(mean_lat)
    dy = math.radians(lat2 - lat1)
    return EARTH_RADIUS_M * math.hypot(dx, dy)


def gcj02_to_bd09_plain_pi(lon, lat):
    """The widely copied wrong BD-09 formula (plain pi where x_pi belongs), for contrast."""
    r = math.hypot(lon, lat) + 0.00002 * math.sin(lat * math.pi)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * math.pi)
    return r * math.cos(theta) + 0.0065, r * math.sin(theta) + 0.006


# --- published vectors -----------------------------------------------------------------------------


@pytest.mark.parametrize(("wgs", "gcj"), GCJ02_VECTORS)
def test_wgs84_to_gcj02_matches_published_vectors(wgs, gcj):
    assert crs.wgs84_to_gcj02(*wgs) == pytest.approx(gcj, abs=DEG_TOL)


@pytest.mark.parametrize(("wgs", "gcj"), GCJ02_VECTORS)
def test_gcj02_to_wgs84_recovers_published_vectors(wgs, gcj):
    assert crs.gcj02_to_wgs84(*gcj) == pytest.approx(wgs, abs=DEG_TOL)


def test_gcj02_to_bd09_matches_published_vector():
    gcj, bd = BD09_FROM_GCJ02
    assert crs.gcj02_to_bd09(*gcj) == pytest.approx(bd, abs=DEG_TOL)


def test_bd09_to_gcj02_inverts_gcj02_to_bd09_and_stays_near_the_closed_form():
    gcj, bd = BD09_FROM_GCJ02
    assert crs.bd09_to_gcj02(*bd) == pytest.approx(gcj, abs=DEG_TOL)
    bd_in, closed_form = GCJ02_FROM_BD09_CLOSED_FORM
    ours = crs.bd09_to_gcj02(*bd_in)
    assert crs.gcj02_to_bd09(*ours) == pytest.approx(bd_in, abs=DEG_TOL)
    assert metres(*ours, *closed_form) < 0.25


def test_x_pi_is_not_plain_pi():
    """Using pi for x_pi moves BD-09 by tens of metres; the published vector catches it."""
    gcj, bd = BD09_FROM_GCJ02
    wrong = gcj02_to_bd09_plain_pi(*gcj)
    assert 10.0 < metres(*wrong, *bd) < 100.0
    assert metres(*crs.gcj02_to_bd09(*gcj), *bd) < 0.001


@pytest.mark.parametrize(("bd", "plain_pi_wgs"), PLAIN_PI_BD09_TO_WGS84)
def test_bd09_to_wgs84_is_tens_of_metres_from_plain_pi_results(bd, plain_pi_wgs):
    assert 5.0 < metres(*crs.bd09_to_wgs84(*bd), *plain_pi_wgs) < 100.0


# --- round trips and inverses ----------------------------------------------------------------------


@settings(max_examples=300)
@given(china_point)
def test_wgs84_gcj02_round_trip_within_a_centimetre(point):
    back = crs.gcj02_to_wgs84(*crs.wgs84_to_gcj02(*point))
    assert metres(*point, *back) < 0.01


@settings(max_examples=300)
@given(china_point)
def test_wgs84_bd09_round_trip_within_a_centimetre(point):
    back = crs.bd09_to_wgs84(*crs.wgs84_to_bd09(*point))
    assert metres(*point, *back) < 0.01


@settings(max_examples=200)
@given(china_point)
@example((100.0, 26.8359375))  # the closed-form BD-09 guess is already within 1e-7 here
def test_inverses_leave_residual_below_1e9_degrees(point):
    assert crs.wgs84_to_gcj02(*crs.gcj02_to_wgs84(*point)) == pytest.approx(point, abs=DEG_TOL)
    assert crs.gcj02_to_bd09(*crs.bd09_to_gcj02(*point)) == pytest.approx(point, abs=DEG_TOL)


@settings(max_examples=200)
@given(china_point, st.sampled_from(["gcj02", "bd09", "GCJ-02", "BD-09"]))
def test_to_wgs84_undoes_from_wgs84(point, name):
    back = crs.to_wgs84(*crs.from_wgs84(*point, name), name)
    assert metres(*point, *back) < 0.01


@settings(max_examples=100)
@given(china_point)
def test_shifts_have_the_known_size(point):
    """GCJ-02 moves points by up to ~700 m and BD-09 adds ~1 km: a sanity bound on the formulas."""
    assert 1.0 < metres(*point, *crs.wgs84_to_gcj02(*point)) < 1000.0
    assert 100.0 < metres(*crs.wgs84_to_gcj02(*point), *crs.wgs84_to_bd09(*point)) < 1500.0


# --- vectorised == scalar ----------------------------------------------------------------------------

TRANSFORMS = [crs.wgs84_to_gcj02, crs.gcj02_to_wgs84, crs.gcj02_to_bd09, crs.bd09_to_gcj02,
              crs.wgs84_to_bd09, crs.bd09_to_wgs84]


@settings(max_examples=50)
@given(st.lists(china_point, min_size=1, max_size=30), st.sampled_from(TRANSFORMS))
def test_vectorised_equals_scalar(points, transform):
    lon = np.array([p[0] for p in points])
    lat = np.array([p[1] for p in points])
    out_lon, out_lat = transform(lon, lat)
    expected = [transform(*p) for p in points]
    np.testing.assert_allclose(out_lon, [e[0] for e in expected], rtol=0, atol=DEG_TOL)
    np.testing.assert_allclose(out_lat, [e[1] for e in expected], rtol=0, atol=DEG_TOL)


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_arrays_keep_their_shape_and_inputs(transform):
    lon = np.array([[121.5, 116.4, 2.35], [113.9, 104.1, -74.0]])
    lat = np.array([[31.2, 39.9, 48.86], [22.5, 30.7, 40.7]])
    lon_before, lat_before = lon.copy(), lat.copy()
    out_lon, out_lat = transform(lon, lat)
    assert out_lon.shape == out_lat.shape == (2, 3)
    np.testing.assert_array_equal(lon, lon_before)  # inputs are not modified in place
    np.testing.assert_array_equal(lat, lat_before)
    assert (out_lon[0, 2], out_lat[0, 2]) == (2.35, 48.86)  # Paris is outside China


def test_scalars_give_python_floats_and_lists_work():
    lon, lat = crs.wgs84_to_gcj02(121, 31)
    assert type(lon) is float and type(lat) is float
    out_lon, out_lat = crs.to_wgs84([121.5, 116.4], [31.2, 39.9], "gcj02")
    assert isinstance(out_lon, np.ndarray) and out_lon.shape == (2,)


# --- outside China -----------------------------------------------------------------------------------


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("point", OUTSIDE_CHINA)
def test_points_outside_china_are_unchanged(transform, point):
    assert transform(*point) == point


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_arrays_shift_only_the_points_inside_china(transform):
    lon = np.array([p[0] for p in OUTSIDE_CHINA] + [121.5])
    lat = np.array([p[1] for p in OUTSIDE_CHINA] + [31.2])
    out_lon, out_lat = transform(lon, lat)
    np.testing.assert_array_equal(out_lon[:-1], lon[:-1])
    np.testing.assert_array_equal(out_lat[:-1], lat[:-1])
    assert metres(121.5, 31.2, out_lon[-1], out_lat[-1]) > 1.0


def test_out_of_china_uses_the_reference_rectangle_inclusively():
    assert crs.out_of_china(72.004, 0.8293) is False
    assert crs.out_of_china(137.8347, 55.8271) is False
    assert crs.out_of_china(72.0039, 30.0) is True
    assert crs.out_of_china(100.0, 55.8272) is True
    np.testing.assert_array_equal(
        crs.out_of_china(np.array([121.5, 2.35]), np.array([31.2, 48.86])), [False, True])


# --- to_wgs84 / from_wgs84 / parse_crs -----------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    ("wgs84", "wgs84"), ("WGS84", "wgs84"), ("EPSG:4326", "wgs84"), ("epsg:4326", "wgs84"),
    ("cgcs2000", "cgcs2000"), ("EPSG:4490", "cgcs2000"), ("CGCS2000", "cgcs2000"),
    ("gcj02", "gcj02"), ("GCJ-02", "gcj02"), ("bd09", "bd09"), (" BD-09 ", "bd09"),
    ("EPSG:4547", "EPSG:4547"), ("epsg:4547", "EPSG:4547"),
])
def test_parse_crs_normalises(name, expected):
    assert crs.parse_crs(name) == expected


@pytest.mark.parametrize("name", ["foo", "EPSG:999999", "EPSG:abc", "EPSG:", "", "gcj", 4326, None])
def test_unknown_crs_lists_accepted_names(name):
    with pytest.raises(UnknownCRS) as info:
        crs.parse_crs(name)
    message = str(info.value)
    assert repr(name) in message
    for accepted in ("wgs84", "cgcs2000", "gcj02", "bd09", "EPSG:"):
        assert accepted in message


@pytest.mark.parametrize("convert", [crs.to_wgs84, crs.from_wgs84])
def test_conversions_reject_unknown_crs(convert):
    with pytest.raises(UnknownCRS, match="accepted"):
        convert(121.5, 31.2, "mars")
    with pytest.raises(UnknownCRS):
        convert(121.5, 31.2, ["gcj02"])


@pytest.mark.parametrize("name", ["wgs84", "cgcs2000", "EPSG:4326", "EPSG:4490"])
def test_wgs84_and_cgcs2000_pass_through(name):
    assert crs.to_wgs84(121.5, 31.2, name) == (121.5, 31.2)
    assert crs.from_wgs84(121.5, 31.2, name) == (121.5, 31.2)


def test_to_wgs84_defaults_to_wgs84():
    assert crs.to_wgs84(121.5, 31.2) == (121.5, 31.2)


@pytest.mark.parametrize(("name", "forward"), [("gcj02", crs.wgs84_to_gcj02),
                                               ("bd09", crs.wgs84_to_bd09)])
def test_named_crs_route_to_the_transforms(name, forward):
    assert crs.from_wgs84(121.5, 31.2, name) == forward(121.5, 31.2)
    assert crs.to_wgs84(*forward(121.5, 31.2), name) == pytest.approx((121.5, 31.2), abs=DEG_TOL)


def test_epsg_4547_central_meridian_is_114e():
    """CGCS2000 / 3-degree GK CM 114E has no false northing and a 500 km false easting."""
    assert crs.to_wgs84(500_000.0, 0.0, "EPSG:4547") == pytest.approx((114.0, 0.0), abs=DEG_TOL)


@settings(max_examples=100)
@given(st.floats(min_value=112.5, max_value=115.5), st.floats(min_value=18.0, max_value=45.0))
def test_epsg_4547_round_trip_via_pyproj(lon, lat):
    easting, northing = crs.from_wgs84(lon, lat, "EPSG:4547")
    assert 300_000 < easting < 700_000
    assert crs.to_wgs84(easting, northing, "EPSG:4547") == pytest.approx((lon, lat), abs=DEG_TOL)


def test_epsg_arrays_match_scalars():
    east = np.array([400_000.0, 500_000.0, 600_000.0])
    north = np.array([2_500_000.0, 3_000_000.0, 3_500_000.0])
    lon, lat = crs.to_wgs84(east, north, "EPSG:4547")
    for i in range(3):
        assert (lon[i], lat[i]) == pytest.approx(crs.to_wgs84(east[i], north[i], "EPSG:4547"))


def test_epsg_failure_is_reported_not_returned_as_inf():
    with pytest.raises(InvalidCoordinates, match="EPSG:4547"):
        crs.to_wgs84(1e30, 1e30, "EPSG:4547")


# --- validation --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "x_name", "y_name"), [
    ("wgs84", "lon", "lat"), ("gcj02", "lon", "lat"), ("bd09", "lon", "lat"),
    ("EPSG:4547", "x (easting)", "y (northing)"),
])
@pytest.mark.parametrize(("lon", "lat", "bad_is_x", "shown"), [
    (math.nan, 31.2, True, "nan"), (121.5, math.nan, False, "nan"),
    (math.inf, 31.2, True, "inf"), (121.5, -math.inf, False, "-inf"),
])
def test_non_finite_values_are_named(name, x_name, y_name, lon, lat, bad_is_x, shown):
    expected = f"{x_name if bad_is_x else y_name} is {shown};"
    with pytest.raises(InvalidCoordinates) as info:
        crs.to_wgs84(lon, lat, name)
    assert expected in str(info.value)
    with pytest.raises(InvalidCoordinates, match="finite"):
        crs.from_wgs84(lon, lat, name)


@pytest.mark.parametrize(("lon", "lat", "expected"), [
    (181.0, 31.2, r"lon = 181.0 is outside \[-180, 180\]"),
    (-180.5, 31.2, r"lon = -180.5 is outside \[-180, 180\]"),
    (121.5, 90.5, r"lat = 90.5 is outside \[-90, 90\]"),
    (121.5, -91.0, r"lat = -91.0 is outside \[-90, 90\]"),
])
def test_out_of_range_says_which(lon, lat, expected):
    with pytest.raises(InvalidCoordinates, match=expected) as info:
        crs.to_wgs84(lon, lat, "gcj02")
    assert "swapped" not in str(info.value)


def test_swapped_lat_lon_gets_a_hint():
    with pytest.raises(InvalidCoordinates, match=r"lat = 121.5 .*lat/lon swapped\?"):
        crs.to_wgs84(31.2, 121.5)
    with pytest.raises(InvalidCoordinates, match="swapped"):
        crs.from_wgs84(31.2, 121.5, "gcj02")


def test_array_validation_reports_first_bad_index():
    lon = np.array([121.5, 121.6, np.nan, 200.0])
    lat = np.array([31.2, 95.0, 31.2, 31.2])
    with pytest.raises(InvalidCoordinates, match=r"lat\[1\] = 95.0"):
        crs.to_wgs84(lon, lat, "bd09")
    lat[1] = 31.2
    with pytest.raises(InvalidCoordinates, match=r"lon\[2\] is nan"):
        crs.to_wgs84(lon, lat, "bd09")


def test_array_validation_reports_nd_index_and_projected_names():
    lat = np.array([[31.2, 31.2], [31.2, -100.0]])
    with pytest.raises(InvalidCoordinates, match=r"lat\[1, 1\] = -100.0"):
        crs.to_wgs84(np.full((2, 2), 121.5), lat)
    with pytest.raises(InvalidCoordinates, match=r"y \(northing\)\[1\] is inf"):
        crs.to_wgs84([500_000.0, 500_000.0], [3e6, np.inf], "EPSG:4547")


def test_projected_inputs_are_not_range_checked_as_degrees():
    lon, lat = crs.to_wgs84(500_000.0, 3_500_000.0, "EPSG:4547")
    assert 113.0 < lon < 115.0 and 31.0 < lat < 32.0


def test_mismatched_array_shapes_are_invalid():
    with pytest.raises(InvalidCoordinates, match="shape"):
        crs.to_wgs84([121.5, 121.6], [31.2, 31.3, 31.4])


# --- metric_crs_for ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("lon", "expected"), [
    (112.86, "EPSG:4547"), (114.0, "EPSG:4547"), (115.49, "EPSG:4547"), (115.51, "EPSG:4548"),
    (75.0, "EPSG:4534"), (135.0, "EPSG:4554"), (60.0, "EPSG:4534"), (150.0, "EPSG:4554"),
])
def test_metric_crs_for(lon, expected):
    assert crs.metric_crs_for(lon) == expected


@pytest.mark.parametrize("cm", range(75, 136, 3))
def test_metric_crs_central_meridian_is_nearest(cm):
    """The EPSG range really is CGCS2000 GK 3-degree zones: check each zone's central meridian."""
    code = crs.metric_crs_for(cm + 1.0)
    params = {p.name: p.value for p in CRS.from_user_input(code).coordinate_operation.params}
    assert params["Longitude of natural origin"] == cm
    assert params["False easting"] == 500_000
