"""Deterministic synthetic data: the 太东社区 demo community, or a city of grids for benchmarks.

Why synthetic: the demo, the tests and the benchmarks need data that behaves like a real grid
community (irregular blocks, old walled compounds, a year of 12345-hotline and grid-worker
reports with seasons and hotspots) while real data carries residents' names, phones and homes.
Everything here is drawn from one seed, so a seed names a dataset: the same seed gives the same
frames, bit for bit, on the same library versions.

Two layouts:

* **the demo** (``grids=14``): 太东社区, 丰州镇, 武乡县 (Shanxi), about 1.2 x 0.9 km around
  112.86 E, 36.84 N. A hand-drawn, jittered street network (太行街 and its side streets and lanes)
  is polygonised with the community outline into the 14 grids; 43 walled compounds (院落) and
  11 estates (小区) are cut from the blocks, filled with buildings and furnished with facilities;
  a year of issues is placed where such problems happen, with a full workflow history each.
* **the city** (any other ``grids``, or ``detail=False``): communities of about 14 grids tiling
  a jittered city-wide street lattice, grouped into streets (街道/镇) of one district. Compounds,
  buildings and facilities only with ``detail=True`` (then issues are placed as in the demo);
  otherwise issues are drawn with numpy, a million in a few seconds.

The demo lives in the present: its year of issues ends on ``today`` (by default the current
date in Beijing), and the data is *seen* at the end of that day, or now when no day is pinned.
Every issue carries a workflow (docs/ARCHITECTURE.md, "The issue workflow") simulated from its
report to that moment, so recent cases are still open and their due times lie in the near future or the recent past; nothing is
reported, moved or closed after it. The step-by-step history (``issue_events``) is left out above
``EVENTS_MAX_ISSUES`` issues to keep benchmark data small, while status and closing time are
still set.

Each part of the data is drawn in its own module, from its own random stream (so that how one
part draws never shifts another): the place and its local metric frame (``place``), the two
layouts (``demo_town``, ``city_town``, on ``town``), the site with its ``streets``, ``compounds``,
``buildings`` and ``facilities``, the ``people``, and the issues: what and how many
(``reports``), when (``issue_times``), where (``site_reports``, ``bulk_reports``) and what
became of them (``workflow``). This module puts them together into a :class:`DemoData`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from data.generator.bulk_reports import bulk_reports
from data.generator.city_town import city_town
from data.generator.columns import (
    BUILDING_COLUMNS,
    COMPOUND_COLUMNS,
    EVENT_COLUMNS,
    FACILITY_COLUMNS,
    GRID_COLUMNS,
    ISSUE_COLUMNS,
    REGION_COLUMNS,
    STREET_COLUMNS,
)
from data.generator.deadlines import draw_urgency, promised_due
from data.generator.demo_town import taidong_town
from data.generator.drawing import rng_stream
from data.generator.issue_times import Calendar, channels
from data.generator.people import departments_frame, draw_users, masked_phones
from data.generator.place import DEMO_GRIDS, ISSUES_PER_GRID, MAX_GRIDS, WGS84, to_lonlat
from data.generator.reports import ISSUE_CODES, Reports
from data.generator.site import Site, build_site
from data.generator.site_reports import site_reports
from data.generator.town import Town
from data.generator.workflow import (
    history_events,
    hold_a_case_in_every_grid,
    random_uuids,
    simulate_workflow,
    timestamps,
)
from gis.rules import BEIJING, BEIJING_TZ_NAME, URGENCIES

EVENTS_MAX_ISSUES = 200_000  # above this the per-step audit trail is left out (memory)
# Days ``today`` may be: the compounds' and facilities' histories run from the 1980s to 2022.
_FIRST_DAY, _LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)


@dataclass
class DemoData:
    """One generated dataset. GeoDataFrames are in EPSG:4326 (lon, lat).

    Beyond the columns the loader needs, ``grid_code`` on compounds, buildings, facilities and
    issues names the grid the generator put each row in (the truth an assignment benchmark can
    check against), and ``facility_code`` on issues the facility a report is about, if any.
    """

    regions: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame
    compounds: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    users: pd.DataFrame
    departments: pd.DataFrame
    issues: gpd.GeoDataFrame
    issue_events: pd.DataFrame
    seen_at: datetime  # the moment the data is seen (Beijing time): nothing in it happens later


def generate_demo(seed: int = 20221, grids: int = DEMO_GRIDS, issues: int | None = None, *,
                  today: date | datetime | None = None, detail: bool | None = None) -> DemoData:
    """Generate a dataset; the same arguments always give the same data.

    ``grids=14`` (the default) is the 太东社区 demo; any other count, or ``detail=False``, the city
    layout with that many grids. ``issues`` defaults to the demo's density (about 357 a grid a
    year). Issues are reported during the year that ends on ``today`` (Beijing time) and their
    workflow is seen as of the end of that day, so the last weeks' reports are still open.
    ``today`` may also be an aware datetime, the very moment the data is seen; by default it is
    now, which makes the data depend on the clock: pin ``today`` for repeatable data.
    """
    _check_args(seed, grids, issues)
    day, seen_at = _seen(today)
    n_issues = round(ISSUES_PER_GRID * grids) if issues is None else int(issues)
    if grids == DEMO_GRIDS and detail is not False:
        town = taidong_town(seed)
        with_detail = True
    else:
        town = city_town(seed, grids)
        with_detail = bool(detail)
    site = build_site(town, seed, day.year) if with_detail else None
    cal = Calendar.ending(day, seen_at, rng_stream(seed, "weather"))
    return _assemble(town, site, seed, n_issues, cal)


def _seen(today: date | datetime | None) -> tuple[date, int]:
    """(the last day of the data, the epoch second it is seen at) for ``generate_demo``'s
    ``today``: a date is seen at its last second in Beijing, a datetime at that moment."""
    if today is None:
        today = datetime.now(BEIJING)
    if isinstance(today, datetime):
        if today.tzinfo is None or today.utcoffset() is None:
            raise ValueError(f"today should be a date or an aware datetime, got the naive {today!r}")
        day = today.astimezone(BEIJING).date()
        seen_at = int(today.timestamp())
    elif isinstance(today, date):
        day = today
        seen_at = int(datetime.combine(day + timedelta(days=1), time(), BEIJING).timestamp()) - 1
    else:
        raise ValueError(f"today should be a date, an aware datetime or None, got {today!r}")
    if not _FIRST_DAY <= day <= _LAST_DAY:
        raise ValueError(f"today should be between {_FIRST_DAY} and {_LAST_DAY}, got {day}")
    return day, seen_at


def _check_args(seed, grids, issues) -> None:
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed should be a non-negative int, got {seed!r}")
    if not isinstance(grids, int | np.integer) or not 1 <= grids <= MAX_GRIDS:
        raise ValueError(f"grids should be an int from 1 to {MAX_GRIDS}, got {grids!r}")
    if issues is not None and (not isinstance(issues, int | np.integer) or issues < 0):
        raise ValueError(f"issues should be None or a non-negative int, got {issues!r}")


def _assemble(town: Town, site: Site | None, seed: int, n_issues: int, cal: Calendar) -> DemoData:
    grids_lonlat = to_lonlat(town.grid_geoms)
    if town.households is None:
        rng = rng_stream(seed, "households")
        town.households = np.round(rng.lognormal(math.log(550), 0.45, len(grids_lonlat))).astype(int)
    levels = dict(zip(town.region_codes, town.region_levels, strict=True))
    users = draw_users(town.grid_codes, rng_stream(seed, "users"),
                       community_code=next(c for c, lv in levels.items() if lv == "community"),
                       district_code=next(c for c, lv in levels.items() if lv == "district"))
    if site is not None and n_issues <= EVENTS_MAX_ISSUES:
        reports = site_reports(site, n_issues, cal, seed)
    else:
        reports = bulk_reports(town, grids_lonlat, n_issues, cal, seed)
    issues, events = _issue_frames(reports, town, users, cal, seed)
    return DemoData(
        regions=_region_frame(town),
        grids=_grid_frame(town, grids_lonlat, users, rng_stream(seed, "population")),
        streets=_gdf({"name": town.street_names, "kind": town.street_kinds},
                     to_lonlat(town.street_lines), STREET_COLUMNS),
        compounds=_compound_frame(site, town),
        buildings=_building_frame(site, town),
        facilities=_facility_frame(site, town),
        users=users, departments=departments_frame(), issues=issues, issue_events=events,
        seen_at=datetime.fromtimestamp(cal.seen_at, BEIJING),
    )


def _gdf(columns: dict, geometry, order: list[str]) -> gpd.GeoDataFrame:
    frame = pd.DataFrame(columns, columns=order)
    geoms = gpd.GeoSeries(np.asarray(geometry, dtype=object), crs=WGS84, index=frame.index)
    return gpd.GeoDataFrame(frame, geometry=geoms, crs=WGS84)


def _region_frame(town: Town) -> gpd.GeoDataFrame:
    """District, then streets, then communities, each by code."""
    frame = _gdf({"code": town.region_codes, "name": town.region_names,
                  "level": town.region_levels, "parent_code": town.region_parents},
                 to_lonlat(town.region_geoms), REGION_COLUMNS)
    order = np.lexsort((frame["code"].to_numpy(dtype=str), frame["code"].str.len().to_numpy()))
    return frame.iloc[order].reset_index(drop=True)


def _grid_frame(town: Town, grids_lonlat, users: pd.DataFrame, rng) -> gpd.GeoDataFrame:
    population = np.round(town.households * rng.uniform(2.45, 2.75, len(town.households)))
    workers = users.loc[users["role"].eq("worker"), "username"].to_numpy()
    return _gdf({"code": town.grid_codes.astype(object), "name": town.grid_names.astype(object),
                 "community_code": town.grid_community.astype(object),
                 "households": town.households.astype(int), "population": population.astype(int),
                 "worker_username": workers}, grids_lonlat, GRID_COLUMNS)


def _empty(dtypes: dict[str, str]) -> dict[str, pd.Series]:
    """Typed empty columns, so that frames without detail still concatenate and compare."""
    return {c: pd.Series(dtype=t) for c, t in dtypes.items()}


def _compound_frame(site: Site | None, town: Town) -> gpd.GeoDataFrame:
    if site is None:
        return _gdf(_empty({"name": "str", "kind": "str", "has_property_company": "bool",
                            "built_year": "int64", "grid_code": "str"}), [], COMPOUND_COLUMNS)
    cps = site.compounds
    return _gdf({"name": cps["name"], "kind": cps["kind"],
                 "has_property_company": cps["has_property_company"].astype(bool),
                 "built_year": cps["built_year"].astype(int),
                 "grid_code": town.grid_codes[cps["grid"]].astype(object)},
                to_lonlat(cps["geometry"].to_numpy()), COMPOUND_COLUMNS)


def _building_frame(site: Site | None, town: Town) -> gpd.GeoDataFrame:
    if site is None:
        return _gdf(_empty({"name": "str", "compound": "str", "floors": "int64",
                            "households": "int64", "party_households": "int64",
                            "grid_code": "str"}), [], BUILDING_COLUMNS)
    b = site.buildings
    return _gdf({"name": b["name"], "compound": b["compound_name"], "floors": b["floors"],
                 "households": b["households"], "party_households": b["party_households"],
                 "grid_code": town.grid_codes[b["grid"]].astype(object)},
                to_lonlat(b["geometry"].to_numpy()), BUILDING_COLUMNS)


def _facility_frame(site: Site | None, town: Town) -> gpd.GeoDataFrame:
    if site is None:
        return _gdf(_empty(dict.fromkeys(FACILITY_COLUMNS, "str") | {"install_date": "object"}),
                    [], FACILITY_COLUMNS)
    f = site.facilities
    points = to_lonlat(shapely.points(f["x"].to_numpy(), f["y"].to_numpy()))
    return _gdf({c: f[c] for c in FACILITY_COLUMNS[:-1]}
                | {"grid_code": town.grid_codes[f["grid"]].astype(object)}, points,
                FACILITY_COLUMNS)


def _issue_frames(reports: Reports, town: Town, users: pd.DataFrame, cal: Calendar,
                  seed: int) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Issues in order of reporting, with channels, contacts, workflow state and history."""
    rng = rng_stream(seed, "workflow")
    order = np.argsort(reports.reported, kind="stable")
    reported = reports.reported[order]
    kinds, grid = reports.kind[order], reports.grid[order]
    n = len(order)
    urgency = draw_urgency(kinds, rng_stream(seed, "urgency"))
    due = promised_due(reported, kinds, urgency)
    due_hours = (due - reported) / 3_600  # the scale of each case's simulated times
    channel = channels(reported, rng)
    workers = users[users["role"].eq("worker")]
    worker, phone = workers["username"].to_numpy(object), workers["phone"].to_numpy(object)
    contact = np.where(channel == "worker", phone[grid], masked_phones(rng, n))
    flow = simulate_workflow(reported, due_hours, cal.seen_at, rng)
    hold_a_case_in_every_grid(flow, grid)
    uuids = random_uuids(rng, n)
    issues = _gdf({
        "client_uuid": uuids, "category": ISSUE_CODES[kinds],
        "description": reports.description[order], "channel": channel,
        "reporter_contact": contact, "reported_at": timestamps(reported),
        "status": flow.status, "urgency": np.array(URGENCIES, dtype=object)[urgency],
        "due_at": timestamps(due),
        "closed_at": timestamps(flow.closed_at()),
        "grid_code": town.grid_codes.astype(object)[grid],
        "facility_code": reports.facility_code[order],
    }, reports.points[order], ISSUE_COLUMNS)
    if n > EVENTS_MAX_ISSUES:
        return issues, pd.DataFrame(_empty(dict.fromkeys(EVENT_COLUMNS, "str")
                                           | {"at": f"datetime64[ns, {BEIJING_TZ_NAME}]"}))
    return issues, history_events(uuids, flow, channel, worker[grid], rng)
