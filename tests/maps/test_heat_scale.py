"""The heat layer's scale (maps/heat_scale.py): its parts, and what it draws on the demo.

The demo tests render the heatmap page's own heat layer (its weights and options as the page
ships them) the way Leaflet.heat does (tests/maps/leaflet_heat.py, checked against Chromium's
canvas in tests/maps/test_browser.py) at the page's zoom, and measure the share of the community
in the two hottest colours.
"""

from __future__ import annotations

import numpy as np
import pytest
from folium import plugins
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from gis.queries import map_data
from gis.queries.filters import IssueFilter
from maps import heat_scale as hs
from maps.base import PageInit
from maps.heatmap import build_heatmap
from tests.maps import builders
from tests.maps import leaflet_heat as lh

HOT_SHARE_CAP = 0.15  # of the community's area, in yellow or red at the page's zoom
DENSEST = 10  # the heaviest cells, which must show in yellow or red

sums = st.lists(st.integers(min_value=1, max_value=500), min_size=1, max_size=400)


# -- the parts -----------------------------------------------------------------------------------
@given(sums)
def test_few_squares_saturate_and_the_densest_always_does(values):
    top = hs.intensity_max(values)
    values = np.array(values, dtype=float)
    # saturated: at most 2% of the squares, give or take the one a quantile lands beside
    assert (values > top).mean() <= 1 - hs.HOT_QUANTILE + 1 / len(values)
    assert values.max() >= top >= 1


def test_one_outlier_does_not_set_the_scale():
    values = [2] * 97 + [3, 4, 400]
    assert hs.intensity_max(values) < 5


@given(st.floats(min_value=0.05, max_value=200))
def test_blobs_reach_over_the_neighbouring_cells_and_keep_an_opaque_centre(cell_px):
    reach = hs.blob_reach(cell_px)
    low, high = hs.RADIUS_PX
    assert low <= reach <= high
    if low < reach < high:
        assert reach >= 2 * cell_px  # a cell's blob covers its neighbours' centres
    radius, blur = hs.radius_and_blur(reach)
    assert radius + blur == reach
    assert radius >= 3 * blur / 2  # the disc holds 3 sigma of the blur (sigma = blur / 2)
    assert lh.kernel(radius, blur).max() > 0.98


@given(st.floats(min_value=20.0, max_value=50.0), st.floats(min_value=100.0, max_value=120.0),
       st.floats(min_value=1e-4, max_value=0.5), st.floats(min_value=1e-4, max_value=0.5))
def test_fit_zoom_is_the_largest_whole_zoom_that_holds_the_bounds(lat, lon, dlat, dlon):
    bounds = (lon, lat, lon + dlon, lat + dlat)
    zoom = hs.fit_zoom(bounds)

    def size(z):
        x, y = hs.mercator_px(np.array([lat + dlat, lat]), np.array([lon, lon + dlon]), z)
        return x[1] - x[0], y[1] - y[0]
    w, h = size(zoom)
    assert w <= hs.VIEW_PX[0] + 1e-6 and h <= hs.VIEW_PX[1] + 1e-6
    if zoom < hs.MAX_ZOOM:
        w, h = size(zoom + 1)
        assert w > hs.VIEW_PX[0] or h > hs.VIEW_PX[1]


def test_metres_per_pixel_is_web_mercators():
    assert hs.metres_per_px(0.0, 0) == pytest.approx(156543.03, rel=1e-6)
    assert hs.metres_per_px(60.0, 1) == pytest.approx(156543.03 / 4, rel=1e-6)


@settings(max_examples=50)
@given(st.lists(st.tuples(st.floats(0, 1e-3), st.floats(0, 1e-3), st.integers(1, 9),
                          st.sampled_from(["2025-01-06", "2025-01-13"])), min_size=1, max_size=60))
def test_square_sums_keep_every_weight_and_keep_frames_apart(cells):
    lat = np.array([36.84 + c[0] for c in cells])
    lon = np.array([112.86 + c[1] for c in cells])
    weights = np.array([c[2] for c in cells], dtype=float)
    frames = np.array([c[3] for c in cells])
    together = hs.square_sums(lat, lon, weights, zoom=16, side_px=8)
    apart = hs.square_sums(lat, lon, weights, zoom=16, side_px=8, frames=frames)
    assert together.sum() == apart.sum() == weights.sum()
    assert len(apart) >= len(together)


def test_the_page_ships_the_scale_of_its_weights():
    data = builders.heatmap_data()
    m = build_heatmap(data)
    layer = builders.children(m, plugins.HeatMap)[0]
    zoom = hs.fit_zoom(data.grids.total_bounds)
    scale = hs.heat_scale(data.cells["lat"], data.cells["lon"], data.cells["weight"],
                          cell_m=data.cell_m, zoom=zoom)
    assert layer.options == {"radius": scale.radius, "blur": scale.blur, "max": scale.max,
                             "max_zoom": zoom, "min_opacity": hs.MIN_OPACITY}
    animation = builders.children(m, plugins.HeatMapWithTime)[0]
    assert animation.radius == hs.blob_reach(
        data.week_cell_m / hs.metres_per_px(float(data.cells["lat"].mean()), zoom))


def test_animation_weights_are_capped_at_its_scale():
    # heatmap.js ignores an alpha above 1, so a week cell above the scale would take the
    # previous cell's alpha: the page caps them as Leaflet.heat caps its own.
    data = builders.heatmap_data()
    data.weeks.loc[0, "weight"] = 10_000
    m = build_heatmap(data)
    animation = builders.children(m, plugins.HeatMapWithTime)[0]
    top = max(p[2] for frame in animation.data for p in frame)
    assert top < 10_000
    assert builders.children(m, PageInit)[0].options["animationMax"] == top


# -- what the demo's page draws ------------------------------------------------------------------
def rendered(data, points, radius, blur, max_value, max_zoom, min_opacity):
    """(share of the community in the hot colours, intensity at each of the densest cells) of
    a heat layer of ``points`` (lat, lon, weight rows) drawn at the page's zoom."""
    bounds = data.grids.total_bounds
    view = lh.View.around(bounds, hs.fit_zoom(bounds))
    lat, lon, weights = np.asarray(points, dtype=float).T
    squares = lh.bins(view, lat, lon, weights, radius=radius, blur=blur, max_zoom=max_zoom,
                      max_value=max_value)
    alpha = lh.intensity(view, squares, radius=radius, blur=blur, max_value=max_value,
                         min_opacity=min_opacity)
    share = lh.hot_share(alpha, lh.area_mask(view, data.grids.union_all()))
    top = np.argsort(-weights, kind="stable")[:DENSEST]
    x, y = view.container(lat[top], lon[top])
    return share, alpha[np.floor(y).astype(int), np.floor(x).astype(int)]


@pytest.fixture(scope="module")
def demo_heat(demo_engine):
    with Session(demo_engine) as session:
        return {"all": map_data.heatmap_data(session, IssueFilter()),
                "garbage": map_data.heatmap_data(session, IssueFilter(categories=("garbage",)))}


@pytest.mark.parametrize("which", ["all", "garbage"])
def test_the_demo_heatmap_shows_where_not_everywhere(demo_heat, which):
    data = demo_heat[which]
    layer = builders.children(build_heatmap(data), plugins.HeatMap)[0]
    o = layer.options
    share, densest = rendered(data, layer.data, o["radius"], o["blur"], o["max"],
                              o["max_zoom"], o["min_opacity"])
    assert share <= HOT_SHARE_CAP, share
    assert densest.min() >= lh.HOT, densest


def test_the_old_scale_fails_the_same_check(demo_heat):
    # The page's scale before: radius 18 and blur 14 whatever the cells, every square at least
    # 35% opaque, and max the largest sum over 9-pixel squares at zoom 16 (Leaflet.heat sums
    # 16-pixel ones there, so sums above max saturated). Some of the densest cells stayed
    # below yellow while nearly the whole community was coloured.
    data = demo_heat["all"]
    cells = data.cells
    old_max = hs.square_sums(cells["lat"], cells["lon"], cells["weight"], zoom=16,
                             side_px=9).max()
    points = cells[["lat", "lon", "weight"]].to_numpy(dtype=float)
    share, densest = rendered(data, points, 18, 14, old_max, 16, 0.35)
    assert not (share <= HOT_SHARE_CAP and densest.min() >= lh.HOT), (share, densest)
