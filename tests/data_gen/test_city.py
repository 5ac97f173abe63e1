"""The city generator (data.generator.city) on a small city: the region tree and its codes, the
area, facilities and issues tagged to the grid that holds them, the status mix and the seasons.

No database: bench/city.py loads these slices; here they are checked as drawn, against shapely
and plain pandas.
"""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from data.generator.city import (
    CityParams,
    build_city,
    facility_counts,
    facility_slices,
    issue_plan,
    issue_slices,
)
from data.generator.reports import ISSUE_MIX
from gis.geo.crs import metric_crs_for
from gis.rules import FINAL_STATUSES

SMALL = dataclasses.replace(CityParams(), grids=1_600, facilities=40_000, issues=30_000,
                            area_km2=56.0, districts=4, history_days=3, today=date(2026, 12, 1))


@pytest.fixture(scope="module")
def city():
    return build_city(SMALL)


@pytest.fixture(scope="module")
def issues(city):
    return list(issue_slices(city))


def test_region_tree_and_codes(city):
    regions = city.base.regions
    levels = regions["level"].value_counts().to_dict()
    assert levels["district"] == 4
    assert levels["street"] >= 4
    by_code = regions.set_index("code")
    for row in regions.itertuples():
        width = {"district": 6, "street": 9, "community": 12}[row.level]
        assert len(row.code) == width
        if row.level != "district":
            parent = by_code.loc[row.parent_code]
            assert row.code.startswith(row.parent_code)
            assert parent["level"] == {"street": "district", "community": "street"}[row.level]
    grids = city.base.grids
    assert len(grids) == SMALL.grids
    assert grids["code"].is_unique
    assert (grids["code"].str[:12] == grids["community_code"]).all()
    assert set(grids["community_code"]) <= set(regions.loc[regions["level"].eq("community"), "code"])


def test_area_is_as_asked(city):
    west, _, east, _ = city.base.grids.total_bounds
    metric = city.base.grids.to_crs(metric_crs_for((west + east) / 2))
    assert metric.area.sum() / 1e6 == pytest.approx(SMALL.area_km2, rel=0.03)


def test_compounds_lie_in_their_grids(city):
    grids = city.base.grids.set_index("code").geometry
    for row in city.base.compounds.itertuples():
        assert grids[row.grid_code].buffer(1e-7).contains(row.geometry)


def test_facilities_counts_and_tags(city):
    counts = {}
    for fs in facility_slices(city, chunk=7_000):
        counts[fs.category] = counts.get(fs.category, 0) + len(fs.lon)
        inside = fs.grid >= 0
        # the tag is the grid whose polygon holds the point, where one does
        holds = shapely.contains_xy(city.grids_lonlat[fs.grid[inside]], fs.lon[inside], fs.lat[inside])
        boundary = fs.method[inside] != 0
        assert holds[~boundary].all()
        assert fs.compound[fs.yard].min(initial=0) >= 0 and (fs.compound[~fs.yard] == -1).all()
    assert counts == facility_counts(SMALL)
    assert sum(counts.values()) == SMALL.facilities
    assert counts["rain_cover"] > 100 * counts["toilet"]


def test_issues_in_order_tagged_and_mostly_closed(city, issues):
    frame = pd.concat([s.issues for s in issues], ignore_index=True)
    assert len(frame) == SMALL.issues
    assert frame["reported_at"].is_monotonic_increasing
    assert frame["client_uuid"].is_unique
    grid = np.concatenate([s.grid for s in issues])
    assert (grid >= 0).all()
    assert shapely.contains_xy(city.grids_lonlat[grid], frame.geometry.x, frame.geometry.y).mean() > 0.999
    open_share = (~frame["status"].isin(FINAL_STATUSES)).mean()
    assert 0.01 <= open_share <= 0.03
    closed = frame["status"].eq("closed")
    assert frame.loc[closed, "closed_at"].notna().all()
    assert (frame.loc[closed, "closed_at"] >= frame.loc[closed, "reported_at"]).all()
    assert frame["due_at"].notna().mean() > 0.95


def test_history_only_for_the_last_days(issues):
    seen = pd.Timestamp(SMALL.seen_at, unit="s", tz="UTC")
    start = seen - pd.Timedelta(days=SMALL.history_days)
    for s in issues:
        recent = (s.issues["reported_at"] >= start).all()
        old = (s.issues["reported_at"] < start).all()
        assert recent or old
        assert s.with_history == recent
        if not s.with_history:
            assert s.history[0].empty
        else:
            assert set(s.history[0]["issue_client_uuid"].astype(str)) <= \
                set(s.issues["client_uuid"].astype(str))


def test_seasons_and_growth():
    params = dataclasses.replace(SMALL, issues=200_000)
    times, kinds, _ = issue_plan(params)
    local = pd.to_datetime(times, unit="s", utc=True).tz_convert("Asia/Shanghai")
    heating = kinds == list(ISSUE_MIX).index("heating_failure")
    winter = np.isin(local.month, (12, 1, 2))
    summer = np.isin(local.month, (6, 7, 8))
    assert heating[winter].mean() > 10 * heating[summer].mean()
    sewer = kinds == list(ISSUE_MIX).index("sewer_blocked")
    assert sewer[np.isin(local.month, (7, 8))].mean() > 1.5 * sewer[np.isin(local.month, (4, 10))].mean()
    years = pd.Series(local.year).value_counts()
    assert len(times) == params.issues
    last, before = local >= local.max() - pd.Timedelta(days=365), \
        (local < local.max() - pd.Timedelta(days=365)) & (local >= local.max() - pd.Timedelta(days=730))
    assert last.sum() > before.sum()
    assert len(years) >= 3


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**31), scale=st.sampled_from([0.002, 0.004]))
def test_same_params_same_city(seed, scale):
    params = dataclasses.replace(CityParams(seed=seed, today=date(2026, 12, 1)).scaled(scale),
                                 facilities=2_000, issues=0)
    a, b = build_city(params), build_city(params)
    assert a.base.grids["code"].tolist() == b.base.grids["code"].tolist()
    assert shapely.equals_exact(a.grids_lonlat, b.grids_lonlat, 0).all()
    fa = next(facility_slices(a))
    fb = next(facility_slices(b))
    assert np.array_equal(fa.lon, fb.lon) and np.array_equal(fa.grid, fb.grid)
