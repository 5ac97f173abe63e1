"""A whole city for measuring at scale (bench/city.py): several districts of streets (街道) of
communities of grids, about 1,400 km² with 40,000 grids; millions of facilities (部件) along the
streets and in the compounds, and ten million issues over three years. Everything is vectorised
and drawn from one seed, in slices, so that no slice needs all rows in memory at once.

* **layout**: :func:`data.generator.city_town.city_town` (a jittered, warped street lattice cut
  into communities of about 14 grids, streets of 5 x 5 communities), scaled so the grids cover
  ``area_km2``, and its streets grouped into ``districts`` districts (a 2-row band of blocks of
  streets), every code renumbered under its district. One compound (院落 or 小区) per grid,
  cut from the grid's interior around a random point; households per grid (lognormal).
* **facilities**: :data:`FACILITY_MIX` says how many of each category and what share stands in
  a compound yard; the rest stand along the lattice's streets at the category's kerb offset
  (data.generator.facilities), on a random side. Each is tagged with
  :meth:`gis.geo.grid_index.GridIndex.locate_many` and gets a 16-digit code
  (district, category std_code, serial), a state, an install date, owner and maintainer.
* **issues**: three yearly calendars (data.generator.issue_times: heating in winter, summer
  rain, weekdays and hours) with ``growth`` more reports each year; the category mix of the
  demo; points by grid weight (households x a lognormal, some grids four times as busy) and
  by category mode (at the kerb, anywhere, or around the grid's compound, the hotspot; hot
  compounds draw a larger share); tagged with ``locate_many``. Each slice of about 200,000
  cases in reporting order goes through the demo's workflow (data.generator.workflow: who
  handles it, deadlines by the live limits, status as seen at ``today``) and, for cases
  reported in the last ``history_days`` days, the step-by-step history (issue_events,
  extension requests, supervision notices).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from data.generator import departments as dep
from data.generator.bulk_reports import _bulk_descriptions, _PointSampler
from data.generator.city_town import city_town
from data.generator.columns import COMPOUND_COLUMNS, ISSUE_COLUMNS, STREET_COLUMNS
from data.generator.dataset import (
    DemoData,
    _facility_frame,
    _gdf,
    _grid_frame,
    _issue_frames,
    _no_history,
    _region_frame,
)
from data.generator.drawing import as_multi, choose, quota, rng_stream
from data.generator.facilities import _STREET_ITEMS, _STREET_OWNERS
from data.generator.issue_times import Calendar, report_times
from data.generator.people import draw_users
from data.generator.place import DISTRICT_CODE, to_lonlat
from data.generator.reports import ISSUE_MIX, Reports, issue_kinds
from data.generator.town import Town
from gis.db.category_seeds import FACILITY_CATEGORIES
from gis.geo.grid_index import GridIndex
from gis.rules import BEIJING, FACILITY_STATUSES

# Category: (share of all facilities, share standing in compound yards). Covers and lights are
# the bulk of a city's 部件; toilets and stages are few.
FACILITY_MIX = {
    "rain_cover": (2_600, 0.20), "sewage_cover": (2_200, 0.35), "streetlight": (2_000, 0.15),
    "water_cover": (1_600, 0.30), "barrier": (1_300, 0.0), "bin": (1_252, 0.30),
    "bench": (600, 0.60), "fitness": (350, 1.0), "pavilion": (80, 1.0), "toilet": (12, 0.10),
    "stage": (6, 1.0),
}
_KERB = {c: offsets for c, _spacing, offsets, _side in _STREET_ITEMS}
_KERB |= {"bench": {"main": 12.0, "side": 7.5}}  # benches at bus stops and on wide pavements
_FACILITY_STD = {c.code: c.std_code for c in FACILITY_CATEGORIES}
_DISTRICT_NAMES = ("城东区", "城西区", "城南区", "城北区", "高新区", "经开区", "滨河区", "迎泽区",
                   "杏花区", "晋源区", "万柏林区", "尖草坪区")
_YARD_OWNER = ("{compound}业主委员会", "{compound}物业服务中心")
ISSUE_SLICE = 200_000  # cases per workflow slice (the history's memory bound)


@dataclass(frozen=True)
class CityParams:
    """What names a city: the same parameters give the same data (``today`` included)."""

    seed: int = 20221
    grids: int = 40_000
    facilities: int = 12_000_000
    issues: int = 10_000_000
    years: int = 3
    area_km2: float = 1_400.0
    districts: int = 8
    history_days: int = 7  # the history loader replays each case in Python (slow)
    growth: float = 1.1  # each year this many times the reports of the year before
    today: date = date(2026, 12, 1)

    def scaled(self, scale: float) -> CityParams:
        """The same city with ``scale`` times the grids, area, facilities and issues."""
        if scale == 1:
            return self
        return dataclasses.replace(
            self, grids=max(16, round(self.grids * scale)),
            facilities=round(self.facilities * scale), issues=round(self.issues * scale),
            area_km2=self.area_km2 * scale,
            districts=max(1, min(self.districts, round(self.districts * scale ** 0.5))))

    @property
    def seen_at(self) -> int:
        """Epoch seconds of the end of ``today`` in Beijing: nothing happens later."""
        end = datetime.combine(self.today + timedelta(days=1), time(), BEIJING)
        return int(end.timestamp()) - 1


@dataclass
class City:
    """The layout and the small tables; facilities and issues come in slices from it."""

    params: CityParams
    town: Town  # metres
    base: DemoData  # regions, grids, streets, compounds, users, departments, rules; no issues
    grids_lonlat: np.ndarray
    compounds_xy: np.ndarray  # compound polygons in metres, one per grid (row = grid)
    index: GridIndex  # over grids_lonlat, keyed by grid code

    @property
    def grid_codes(self) -> np.ndarray:
        return self.town.grid_codes.astype(object)

    @property
    def grid_districts(self) -> np.ndarray:
        """Each grid's district code."""
        if not hasattr(self, "_districts"):
            self._districts = np.array([c[:6] for c in self.town.grid_codes], dtype=object)
        return self._districts


def build_city(params: CityParams) -> City:
    """The layout (districts, streets, communities, grids), compounds, people and rules."""
    town = _districts(_scaled_town(params), params.districts)
    rng = rng_stream(params.seed, "city-households")
    town.households = np.round(rng.lognormal(math.log(550), 0.45, len(town.grid_codes))).astype(int)
    grids_lonlat = to_lonlat(town.grid_geoms)
    compounds_xy = _compound_polygons(town, rng_stream(params.seed, "city-compounds"))
    levels = np.array(town.region_levels)
    codes = np.array(town.region_codes, dtype=object)
    users = draw_users(town.grid_codes, rng_stream(params.seed, "users"),
                       community_code=codes[levels == "community"][0],
                       district_code=codes[levels == "district"][0])
    communities = np.unique(town.grid_community.astype(str))
    rules = dep.dispatch_rules(town.region_codes, town.region_levels, communities)
    events, extensions, supervisions = _no_history()
    base = DemoData(
        regions=_region_frame(town),
        grids=_grid_frame(town, grids_lonlat, users, rng_stream(params.seed, "population")),
        streets=_gdf({"name": town.street_names, "kind": town.street_kinds},
                     to_lonlat(town.street_lines), STREET_COLUMNS),
        compounds=_compound_frame(town, compounds_xy, rng_stream(params.seed, "compound-kinds")),
        buildings=_gdf({c: [] for c in ("name", "compound", "floors", "households",
                                        "party_households", "grid_code")}, [],
                       ["name", "compound", "floors", "households", "party_households",
                        "grid_code"]),
        facilities=_facility_frame(None, town), users=users, departments=dep.departments_frame(),
        dispatch_rules=rules.frame, issues=_gdf({c: [] for c in ISSUE_COLUMNS}, [], ISSUE_COLUMNS),
        issue_events=events,
        extension_requests=extensions, supervisions=supervisions,
        seen_at=datetime.fromtimestamp(params.seen_at, BEIJING))
    index = GridIndex(grids_lonlat, town.grid_codes.tolist())
    return City(params, town, base, grids_lonlat, compounds_xy, index)


# -- layout ---------------------------------------------------------------------------------------
def _scaled_town(params: CityParams) -> Town:
    """``city_town``, its plane scaled about the origin so its grids cover ``area_km2``."""
    town = city_town(params.seed, params.grids)
    factor = math.sqrt(params.area_km2 * 1e6 / float(shapely.area(town.grid_geoms).sum()))

    def scale(geoms):
        return shapely.transform(np.asarray(geoms, dtype=object), lambda xy: xy * factor)

    town.region_geoms = scale(town.region_geoms)
    town.grid_geoms = scale(town.grid_geoms)
    town.street_lines = scale(town.street_lines)
    return town


def _districts(town: Town, n_districts: int) -> Town:
    """Group the streets (街道) into districts, in two bands north and south (one band for a
    few), and renumber every code under its district: district 6 digits, street 3 more,
    community 3 more, grid 3 more."""
    levels = np.array(town.region_levels)
    codes = np.array(town.region_codes, dtype=object)
    names = np.array(town.region_names, dtype=object)
    geoms = np.asarray(town.region_geoms, dtype=object)
    st = np.flatnonzero(levels == "street")
    cm = np.flatnonzero(levels == "community")
    centre = shapely.get_coordinates(shapely.centroid(geoms[st]))
    bands = 2 if n_districts >= 4 else 1
    per_band = math.ceil(n_districts / bands)
    band = (centre[:, 1] < np.median(centre[:, 1])).astype(int) if bands == 2 else np.zeros(len(st), int)
    district = np.empty(len(st), int)
    for b in range(bands):
        rows = np.flatnonzero(band == b)
        rank = np.argsort(np.argsort(centre[rows, 0], kind="stable"), kind="stable")
        district[rows] = b * per_band + rank * per_band // max(1, len(rows))
    _, district = np.unique(district, return_inverse=True)
    n_d = int(district.max()) + 1
    d_codes = np.array([f"{DISTRICT_CODE[:4]}{i + 1:02d}" for i in range(n_d)], dtype=object)
    d_names = np.array([_DISTRICT_NAMES[i % len(_DISTRICT_NAMES)] + (str(i // len(_DISTRICT_NAMES) + 1)
                                                                     if i >= len(_DISTRICT_NAMES) else "")
                        for i in range(n_d)], dtype=object)
    d_geoms = np.array([shapely.union_all(geoms[st[district == d]]) for d in range(n_d)],
                       dtype=object)
    new_street = np.empty(len(st), dtype=object)
    for d in range(n_d):
        rows = np.flatnonzero(district == d)
        order = rows[np.argsort(codes[st[rows]], kind="stable")]  # keep the reading order
        new_street[order] = [f"{d_codes[d]}{100 + k:03d}" for k in range(len(order))]
    street_map = dict(zip(codes[st], new_street, strict=True))

    def renumber(c: str) -> str:
        return street_map[c[:9]] + c[9:]

    comm_codes = np.array([renumber(c) for c in codes[cm]], dtype=object)
    grid_codes = np.array([renumber(c) for c in town.grid_codes], dtype=object)
    grid_comm = np.array([renumber(c) for c in town.grid_community], dtype=object)
    order = np.argsort(grid_codes, kind="stable")

    return Town(
        region_codes=[*d_codes, *new_street, *comm_codes],
        region_names=[*d_names, *names[st], *names[cm]],
        region_levels=["district"] * n_d + ["street"] * len(st) + ["community"] * len(cm),
        region_parents=[None] * n_d + list(d_codes[district]) +
        [street_map[p] for p in np.array(town.region_parents, dtype=object)[cm]],
        region_geoms=as_multi(np.concatenate([d_geoms, geoms[st], geoms[cm]])),
        grid_geoms=np.asarray(town.grid_geoms, dtype=object)[order],
        grid_codes=grid_codes[order], grid_names=np.asarray(town.grid_names, dtype=object)[order],
        grid_community=grid_comm[order],
        grid_community_name=np.asarray(town.grid_community_name, dtype=object)[order],
        street_names=town.street_names, street_kinds=town.street_kinds,
        street_lines=town.street_lines)


def _compound_polygons(town: Town, rng) -> np.ndarray:
    """One compound a grid: a rotated rectangle of 60-170 m around a random interior point, cut
    to the grid's interior (8 m in from its edge, the street), its largest part."""
    inner = shapely.buffer(town.grid_geoms, -8.0, join_style="mitre")
    sampler = _PointSampler(inner, rng)
    cx, cy = sampler._uniform(np.arange(len(inner)))
    w, h = rng.uniform(60, 170, len(cx)), rng.uniform(60, 170, len(cx))
    a = rng.uniform(-0.4, 0.4, len(cx))
    corners = np.array([(-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1)], float) / 2
    dx = corners[None, :, 0] * w[:, None]
    dy = corners[None, :, 1] * h[:, None]
    x = cx[:, None] + dx * np.cos(a)[:, None] - dy * np.sin(a)[:, None]
    y = cy[:, None] + dx * np.sin(a)[:, None] + dy * np.cos(a)[:, None]
    rects = shapely.polygons(np.stack([x, y], axis=-1))
    cut = shapely.intersection(rects, inner)
    parts, idx = shapely.get_parts(cut, return_index=True)
    area = shapely.area(parts)
    best = pd.Series(area).groupby(idx).idxmax().to_numpy()
    out = np.empty(len(inner), dtype=object)
    out[idx[best]] = parts[best]
    missing = [i for i in range(len(out)) if out[i] is None or shapely.is_empty(out[i])]
    for i in missing:  # a sliver of a grid: its interior is the compound
        out[i] = inner[i] if inner[i].geom_type == "Polygon" else max(inner[i].geoms, key=lambda g: g.area)
    return shapely.polygons(shapely.get_exterior_ring(out))  # no holes


def _compound_frame(town: Town, compounds_xy: np.ndarray, rng) -> gpd.GeoDataFrame:
    n = len(compounds_xy)
    estate = rng.random(n) < 0.55
    years = np.where(estate, rng.integers(1998, 2024, n), rng.integers(1965, 2000, n))
    names = np.array([f"{cn}{c[-3:]}号{'小区' if e else '院'}" for cn, c, e in
                      zip(town.grid_community_name, town.grid_codes, estate, strict=True)],
                     dtype=object)
    return _gdf({"name": names, "kind": np.where(estate, "estate", "compound").astype(object),
                 "has_property_company": estate, "built_year": years.astype(int),
                 "grid_code": town.grid_codes.astype(object),
                 "property_company": np.where(estate, names + "物业", None).astype(object)},
                to_lonlat(compounds_xy), COMPOUND_COLUMNS)


# -- facilities -----------------------------------------------------------------------------------
@dataclass
class FacilitySlice:
    """Facilities of one category, as columns (lon/lat WGS84; grid: position in the index)."""

    category: str
    lon: np.ndarray
    lat: np.ndarray
    grid: np.ndarray  # -1: in no grid
    method: np.ndarray  # locate_many's method codes
    distance_m: np.ndarray
    yard: np.ndarray  # bool: in a compound
    compound: np.ndarray  # grid row of the compound (-1 on a street)
    status: np.ndarray  # object
    install_date: np.ndarray  # datetime64[D]


def facility_counts(params: CityParams) -> dict[str, int]:
    return dict(zip(FACILITY_MIX, quota([s for s, _ in FACILITY_MIX.values()], params.facilities),
                    strict=True))


def facility_slices(city: City, chunk: int = 1_000_000) -> Iterator[FacilitySlice]:
    """Every category's facilities, at most ``chunk`` a slice."""
    params = city.params
    segments = _street_segments(city.town)
    yard_weight = shapely.area(city.compounds_xy) * (1 + city.town.households / 550)
    yard_sampler = _PointSampler(city.compounds_xy, rng_stream(params.seed, "yard-points"))
    for k, (category, n) in enumerate(facility_counts(params).items()):
        rng = rng_stream(params.seed + k, f"facilities-{category}")
        yard_sampler.rng = rng
        share = FACILITY_MIX[category][1]
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            yard = rng.random(m) < share
            x, y = np.empty(m), np.empty(m)
            compound = np.full(m, -1)
            rows = np.flatnonzero(yard)
            compound[rows] = choose(yard_weight, len(rows), rng)
            x[rows], y[rows] = yard_sampler._uniform(compound[rows])
            rows = np.flatnonzero(~yard)
            x[rows], y[rows] = _along_streets(segments, _KERB.get(category, {"main": 9, "side": 5}),
                                              len(rows), rng)
            pts = to_lonlat(shapely.points(x, y))
            lon, lat = shapely.get_x(pts), shapely.get_y(pts)
            tags = city.index.locate_many(lon, lat)
            u = rng.random(m)
            status = np.array(FACILITY_STATUSES, dtype=object)[
                np.searchsorted(np.cumsum([0.965, 0.02, 0.007, 0.008]), u, side="right").clip(0, 3)]
            day0 = np.datetime64("1995-01-01")
            install = day0 + rng.integers(0, 30 * 365, m).astype("timedelta64[D]")
            yield FacilitySlice(category, lon, lat, tags.position, tags.method, tags.distance_m,
                                yard, compound, status, install)


@dataclass
class _Segments:
    x0: np.ndarray
    y0: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    main: np.ndarray
    cdf: np.ndarray


def _street_segments(town: Town) -> _Segments:
    coords, line = shapely.get_coordinates(town.street_lines, return_index=True)
    same = line[1:] == line[:-1]
    a, b = coords[:-1][same], coords[1:][same]
    kinds = np.array(town.street_kinds, dtype=object)[line[:-1][same]]
    d = b - a
    return _Segments(a[:, 0], a[:, 1], d[:, 0], d[:, 1], kinds == "main",
                     np.cumsum(np.hypot(d[:, 0], d[:, 1])))


def _along_streets(seg: _Segments, kerb: dict[str, float], n: int, rng):
    """``n`` points on random streets (by length), at the kerb offset of the street's kind, on
    a random side; a category with no offset for side streets stands on main roads only."""
    if n == 0:
        return np.empty(0), np.empty(0)
    weight = np.diff(seg.cdf, prepend=0.0)
    if "side" not in kerb:
        weight = weight * seg.main
    s = choose(weight, n, rng)
    t = rng.random(n)
    length = np.hypot(seg.dx[s], seg.dy[s])
    off = np.where(seg.main[s], kerb.get("main", 9.0), kerb.get("side", 5.0))
    off = (off + rng.normal(0, 0.4, n)) * np.where(rng.random(n) < 0.5, -1, 1)
    nx, ny = -seg.dy[s] / length, seg.dx[s] / length
    return seg.x0[s] + t * seg.dx[s] + off * nx, seg.y0[s] + t * seg.dy[s] + off * ny


def facility_code_parts(city: City, fs: FacilitySlice) -> tuple[np.ndarray, str]:
    """(each row's district code, the category's 4-digit std code) for the 16-digit code."""
    districts = city.grid_districts
    first = districts[0]
    return np.where(fs.grid >= 0, districts[np.maximum(fs.grid, 0)], first), _FACILITY_STD[fs.category]


def owners(city: City, fs: FacilitySlice) -> tuple[np.ndarray, np.ndarray]:
    """Owner and maintainer: the district's bureau on the street, the compound's in the yard."""
    districts = {c: n for c, n, lv in zip(city.town.region_codes, city.town.region_names,
                                          city.town.region_levels, strict=True) if lv == "district"}
    owner_t, maint_t = _STREET_OWNERS.get(fs.category, ("{county}城市管理局", "{county}城市管理局"))
    dcode = pd.Series(facility_code_parts(city, fs)[0])
    owner = dcode.map({d: owner_t.format(county=n) for d, n in districts.items()}).to_numpy(object)
    maint = dcode.map({d: maint_t.format(county=n) for d, n in districts.items()}).to_numpy(object)
    if fs.yard.any():
        names = city.base.compounds["name"].to_numpy(object)[fs.compound[fs.yard]]
        owner[fs.yard] = names + "业主委员会"
        maint[fs.yard] = names + "物业服务中心"
    return owner, maint


# -- issues ---------------------------------------------------------------------------------------
@dataclass
class IssueSlice:
    issues: gpd.GeoDataFrame  # data.generator.columns.ISSUE_COLUMNS + geometry
    grid: np.ndarray  # position in the index (-1: none)
    method: np.ndarray
    distance_m: np.ndarray
    history: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]  # events, extensions, supervisions
    with_history: bool


def issue_plan(params: CityParams) -> tuple[np.ndarray, np.ndarray, list[Calendar]]:
    """(report epoch seconds, category positions in ISSUE_MIX) of every case, in reporting order,
    and the yearly calendars. Each year has ``growth`` times the cases of the year before."""
    years = params.years
    shares = params.growth ** np.arange(years)
    per_year = quota(shares, params.issues)
    times, kinds, cals = [], [], []
    for y in range(years):  # y = 0 is the oldest year
        back = years - 1 - y
        last = params.today.replace(year=params.today.year - back) if not (
            params.today.month == 2 and params.today.day == 29) else params.today - timedelta(days=365 * back)
        seen = params.seen_at if back == 0 else int(
            datetime.combine(last + timedelta(days=1), time(), BEIJING).timestamp()) - 1
        cal = Calendar.ending(last, seen, rng_stream(params.seed + y, "weather"))
        k = issue_kinds(int(per_year[y]))
        t = report_times(k, cal, rng_stream(params.seed + y, "issue-times"))
        times.append(t)
        kinds.append(k)
        cals.append(dataclasses.replace(cal, seen_at=params.seen_at))
    t, k = np.concatenate(times), np.concatenate(kinds)
    order = np.argsort(t, kind="stable")
    return t[order], k[order], cals


_BULK_MODE = {"parking_chaos": "edge", "road_damaged": "edge", "streetlight_out": "edge",
              "cover_damaged": "edge", "other": "uniform"}  # the rest: around the compound


def issue_slices(city: City) -> Iterator[IssueSlice]:
    """Every case in reporting order, in slices of at most ISSUE_SLICE; a slice starts where the
    cases with history begin, so a slice either has history or not."""
    params = city.params
    times, kinds, cals = issue_plan(params)
    rng = rng_stream(params.seed, "city-issue-places")
    weight = city.town.households * rng.lognormal(0, 0.5, len(city.grid_codes))
    weight *= np.where(rng.random(len(weight)) < 0.05, 4.0, 1.0)  # busy grids
    hot = rng.random(len(weight)) < 0.03  # hot compounds: old, no property company
    sampler = _PointSampler(city.grids_lonlat, rng)
    centres = to_lonlat(shapely.centroid(city.compounds_xy))
    sampler.hotspot = shapely.get_coordinates(centres)
    modes = np.array([_BULK_MODE.get(c, "hotspot") for c in ISSUE_MIX], dtype=object)
    history_from = params.seen_at - params.history_days * 86_400
    cut = int(np.searchsorted(times, history_from))
    bounds = list(range(0, cut, ISSUE_SLICE)) + list(range(cut, len(times), ISSUE_SLICE)) + [len(times)]
    bounds = sorted(set(bounds))
    users = city.base.users
    rules = dep.dispatch_rules(city.town.region_codes, city.town.region_levels,
                               np.unique(city.town.grid_community.astype(str)))
    communities = np.unique(city.town.grid_community.astype(str))
    year_starts = np.array([c.start for c in cals])
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        srng = rng_stream(params.seed + i, "city-issue-slice")
        sampler.rng = srng
        k, t = kinds[a:b], times[a:b]
        n = b - a
        grid = choose(weight, n, srng)
        mode = modes[k]
        lon, lat = np.empty(n), np.empty(n)
        for m in ("edge", "uniform"):
            rows = np.flatnonzero(mode == m)
            lon[rows], lat[rows] = sampler.sample(grid[rows], m)
        rows = np.flatnonzero(mode == "hotspot")
        # around the compound (30 m), hot compounds drawing twice the share
        spread = np.where(hot[grid[rows]], 20.0, 35.0)
        r = np.abs(srng.normal(0, 1, len(rows))) * spread
        la, lt = sampler._offset(sampler.hotspot[grid[rows], 0], sampler.hotspot[grid[rows], 1], r)
        bad = ~shapely.contains_xy(city.grids_lonlat[grid[rows]], la, lt)
        la[bad], lt[bad] = sampler._uniform(grid[rows][bad])
        lon[rows], lat[rows] = la, lt
        reports = Reports(
            kind=k, points=shapely.points(lon, lat), grid=grid,
            description=_bulk_descriptions(city.town, k, grid, srng),
            facility_code=np.full(n, None, dtype=object), reported=t,
            compound=np.full(n, -1, dtype=np.int64), place_kind=np.full(n, "street", dtype=object))
        year = int(np.searchsorted(year_starts, t[0], side="right")) - 1
        cal = dataclasses.replace(cals[max(year, 0)], start=min(int(t[0]), cals[max(year, 0)].start))
        with_history = a >= cut
        issues, history = _issue_frames(reports, city.town, None, users, rules, communities, cal,
                                        params.seed + i, hold_in_every_grid=False,
                                        history=with_history)
        if not with_history:
            _stall(issues, t, params.seen_at, srng)
        tags = city.index.locate_many(issues.geometry.x.to_numpy(), issues.geometry.y.to_numpy())
        yield IssueSlice(issues, tags.position, tags.method, tags.distance_m, history,
                         with_history)


_STALLED = ("on_hold", "in_progress", "dispatched", "reopened")
_STALLED_SHARE = (0.4, 0.35, 0.15, 0.1)


def _stall(issues: gpd.GeoDataFrame, reported: np.ndarray, seen_at: int, rng) -> None:
    """Cases that never ended: a share falling with age (5.6% at a few days, 0.15% at three
    years; about 1.1% over three years) of the closed ones stays open, stuck in a step, long
    overdue. The workflow alone leaves only the last days' cases open (about 0.4%)."""
    age = (seen_at - reported) / 86_400
    p = 0.056 * np.exp(-age / 300)
    stuck = (rng.random(len(age)) < p) & issues["status"].eq("closed").to_numpy()
    if not stuck.any():
        return
    pick = np.array(_STALLED, dtype=object)[choose(np.array(_STALLED_SHARE), int(stuck.sum()), rng)]
    issues.loc[stuck, "status"] = pick
    issues.loc[stuck, "closed_at"] = pd.NaT
    issues.loc[stuck, "self_resolved"] = False
