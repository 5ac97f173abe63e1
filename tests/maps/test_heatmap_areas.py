"""The heatmap over more grids than its area budget: communities (or streets) drawn instead of
grids, their counts the sums of their grids', and the page within its byte budget. The layout is
the generator's city of 3,000 grids (data.generator, no database)."""

from dataclasses import replace
from datetime import date

import folium
import geopandas as gpd
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data.generator import generate_demo
from gis.queries.map_data import add_hotspots, sum_by_area
from gis.queries.statistics import with_rates
from maps.base import render
from maps.heatmap import build_heatmap
from tests.maps import builders

PAGE_BUDGET = 3_000_000  # bytes: the whole-city page's budget (issue 15)
COUNTED = ["issues", "open", "closed", "rejected", "overdue", "rated", "on_time"]


@pytest.fixture(scope="module")
def city():
    return generate_demo(grids=3000, issues=0, today=date(2025, 6, 30))


def _grids(city, seed: int) -> gpd.GeoDataFrame:
    """The city's grids with counts as gis.queries.map_data joins them (random, some zero)."""
    rng = np.random.default_rng(seed)
    parents = city.regions.set_index("code")["parent_code"]
    g = city.grids.rename(columns={"worker_username": "worker"}).copy()
    g["street_code"] = g["community_code"].map(parents)
    g["community"] = g["community_code"]
    n = len(g)
    g["reported"] = rng.poisson(rng.gamma(0.6, 40, n))
    g["open"] = rng.binomial(g["reported"], 0.3)
    g["closed"] = g["reported"] - g["open"]
    g["rejected"] = 0
    g["overdue"] = rng.binomial(g["open"], 0.2)
    g["rated"] = g["closed"]
    g["on_time"] = rng.binomial(g["closed"], 0.8)
    out = with_rates(g).rename(columns={"reported": "issues", "per_1000_households": "per_1000"})
    return gpd.GeoDataFrame(out, geometry="geometry", crs="EPSG:4326")


def _shapes(city, level: str) -> gpd.GeoDataFrame:
    regions = city.regions
    names = regions.set_index("code")["name"]
    rows = regions[regions["level"] == level]
    return gpd.GeoDataFrame({"code": rows["code"].to_numpy(), "name": rows["name"].to_numpy(),
                             "community": rows["parent_code"].map(names).to_numpy()},
                            geometry=rows.geometry.to_numpy(), crs="EPSG:4326")


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), level=st.sampled_from(["community", "street"]))
def test_area_counts_are_their_grids_counts(city, seed, level):
    grids = _grids(city, seed)
    areas = sum_by_area(grids, _shapes(city, level), level).set_index("code")
    by_grid = grids.groupby(f"{level}_code")[[*COUNTED, "households"]].sum()
    assert sorted(areas.index) == sorted(by_grid.index)
    for col in [*COUNTED, "households"]:
        assert (areas.loc[by_grid.index, col] == by_grid[col]).all(), col
    assert areas["issues"].sum() == grids["issues"].sum()
    assert (areas.loc[by_grid.index, "n_grids"]
            == grids.groupby(f"{level}_code").size()).all()
    rate = (by_grid["issues"] * 1000.0 / by_grid["households"]).round(2)
    assert np.allclose(areas.loc[by_grid.index, "per_1000"], rate, equal_nan=True)


@pytest.mark.parametrize("level", ["community", "street"])
def test_a_page_over_many_grids_stays_in_its_budget(city, level):
    grids = _grids(city, 1)
    areas = add_hotspots(sum_by_area(grids, _shapes(city, level), level), permutations=99)
    data = replace(builders.heatmap_data(), grids=areas, level=level, grid_count=len(grids))
    m = build_heatmap(data)
    page = render(m)
    assert len(page.encode()) < PAGE_BUDGET
    choropleth = [g for g in builders.children(m, folium.GeoJson)
                  if g.layer_name in ("社区事件数", "街道事件数")][0]
    features = choropleth.data["features"]
    assert len(features) == len(areas)
    assert sum(f["properties"]["issues"] for f in features) == grids["issues"].sum()
    assert f"{len(grids):,}" in page  # the page says how many grids it sums


def test_the_area_page_is_lighter_than_the_grid_page(city):
    grids = _grids(city, 2)
    areas = sum_by_area(grids, _shapes(city, "community"), "community")
    base = builders.heatmap_data()
    by_area = render(build_heatmap(replace(base, grids=areas.assign(hotspot=False),
                                           level="community", grid_count=len(grids))))
    by_grid = render(build_heatmap(replace(base, grids=grids.assign(hotspot=False, gi_z=np.nan,
                                                                    gi_p=np.nan))))
    assert len(by_area.encode()) * 3 < len(by_grid.encode())


def test_hotspots_left_out_are_stated():
    base = builders.heatmap_data()
    data = replace(base, grids=base.grids.assign(n_grids=3), hotspots_left_out=True,
                   level="community", grid_count=5000)
    page = render(build_heatmap(data, lang="en"))
    assert "Too many areas: no hotspot analysis" in page
