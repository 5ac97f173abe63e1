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
Every issue carries a workflow (docs/ARCHITECTURE.md, "The issue workflow", "Dispatch and the
branches") simulated from its report to that moment, so recent cases are still open and their
due times lie in the near future or the recent past; nothing is reported, moved or closed after
it. The step-by-step history (``issue_events``, with the extension requests and supervision
notices) is left out above ``EVENTS_MAX_ISSUES`` issues to keep benchmark data small, while
status, closing time, due time and department are still set.

Each part of the data is drawn in its own module, from its own random stream (so that how one
part draws never shifts another): the place and its local metric frame (``place``), the two
layouts (``demo_town``, ``city_town``, on ``town``), the site with its ``streets``, ``compounds``,
``buildings`` and ``facilities``, the ``people`` and the ``departments`` (with the dispatch
rules), and the issues: what and how many (``reports``), when (``issue_times``), where
(``site_reports``, ``bulk_reports``), their deadlines (``deadlines``) and what became of them:
the path each took through the command centre (``paths``, ``workflow``) and its history, with
the extension requests and supervision notices (``history``). This module puts them together
into a :class:`DemoData`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from data.generator import departments as dep
from data.generator.bulk_reports import bulk_reports
from data.generator.city_town import city_town
from data.generator.columns import (
    BUILDING_COLUMNS,
    COMPOUND_COLUMNS,
    EVENT_COLUMNS,
    EXTENSION_COLUMNS,
    FACILITY_COLUMNS,
    GRID_COLUMNS,
    ISSUE_COLUMNS,
    REGION_COLUMNS,
    STREET_COLUMNS,
    SUPERVISION_COLUMNS,
)
from data.generator.deadlines import WorkdayTable, draw_urgency
from data.generator.demo_town import taidong_town
from data.generator.drawing import rng_stream
from data.generator.history import Names, history_frames, random_uuids, timestamps
from data.generator.issue_times import Calendar, channels
from data.generator.paths import SELF_RESOLVED
from data.generator.people import draw_users, masked_phones, staff_table
from data.generator.place import DEMO_GRIDS, ISSUES_PER_GRID, MAX_GRIDS, WGS84, to_lonlat
from data.generator.reports import ISSUE_CODES, Reports
from data.generator.site import Site, build_site
from data.generator.site_reports import site_reports
from data.generator.town import Town
from data.generator.workflow import Cases, hold_a_case_in_every_grid, simulate_workflow
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
    dispatch_rules: pd.DataFrame  # in order: a rule's number (details' "rule") is its position + 1
    issues: gpd.GeoDataFrame
    issue_events: pd.DataFrame
    extension_requests: pd.DataFrame
    supervisions: pd.DataFrame
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
    communities = np.unique(town.grid_community.astype(str))
    rules = dep.dispatch_rules(town.region_codes, town.region_levels, communities)
    issues, history = _issue_frames(reports, town, site, users, rules, communities, cal, seed)
    return DemoData(
        regions=_region_frame(town),
        grids=_grid_frame(town, grids_lonlat, users, rng_stream(seed, "population")),
        streets=_gdf({"name": town.street_names, "kind": town.street_kinds},
                     to_lonlat(town.street_lines), STREET_COLUMNS),
        compounds=_compound_frame(site, town),
        buildings=_building_frame(site, town),
        facilities=_facility_frame(site, town),
        users=users, departments=dep.departments_frame(), dispatch_rules=rules.frame,
        issues=issues, issue_events=history[0], extension_requests=history[1],
        supervisions=history[2], seen_at=datetime.fromtimestamp(cal.seen_at, BEIJING),
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
                            "built_year": "int64", "grid_code": "str",
                            "property_company": "str"}), [], COMPOUND_COLUMNS)
    cps = site.compounds
    return _gdf({"name": cps["name"], "kind": cps["kind"],
                 "has_property_company": cps["has_property_company"].astype(bool),
                 "built_year": cps["built_year"].astype(int),
                 "grid_code": town.grid_codes[cps["grid"]].astype(object),
                 "property_company": dep.property_company_of(cps["maintainer"].to_numpy())},
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


def _issue_frames(reports: Reports, town: Town, site: Site | None, users: pd.DataFrame,
                  rules: dep.Rules, communities: np.ndarray, cal: Calendar,
                  seed: int, *, hold_in_every_grid: bool = True,
                  history: bool | None = None) -> tuple[gpd.GeoDataFrame, tuple[pd.DataFrame, ...]]:
    """Issues in order of reporting, with channels, contacts, workflow state and history.

    ``history``: whether to draw the step-by-step history (default: up to EVENTS_MAX_ISSUES
    cases). ``hold_in_every_grid=False`` leaves out :func:`hold_a_case_in_every_grid`, for data
    drawn in many slices (data.generator.city), where every slice would stall a case a grid."""
    rng = rng_stream(seed, "workflow")
    order = np.argsort(reports.reported, kind="stable")
    reported = reports.reported[order]
    kinds, grid, compound = reports.kind[order], reports.grid[order], reports.compound[order]
    n = len(order)
    urgency = draw_urgency(kinds, rng_stream(seed, "urgency"))
    channel = channels(reported, rng)
    workers = users[users["role"].eq("worker")]
    worker, phone = workers["username"].to_numpy(object), workers["phone"].to_numpy(object)
    contact = np.where(channel == "worker", phone[grid], masked_phones(rng, n))
    cases = _cases(reported, kinds, urgency, channel, grid, compound, reports.place_kind[order],
                   town, site, rules, communities)
    table = WorkdayTable.around(cal.start, cal.seen_at)
    flow = simulate_workflow(cases, table, cal.seen_at, rng)
    if hold_in_every_grid:
        hold_a_case_in_every_grid(flow, grid)
    uuids = random_uuids(rng, n)
    department = flow.department()
    issues = _gdf({
        "client_uuid": uuids, "category": ISSUE_CODES[kinds],
        "description": reports.description[order], "channel": channel,
        "reporter_contact": contact, "reported_at": timestamps(reported),
        "status": flow.status, "urgency": np.array(URGENCIES, dtype=object)[urgency],
        "due_at": timestamps(flow.due()),
        "closed_at": timestamps(flow.closed_at()),
        "department": np.where(department == dep.WORKER, None,
                               dep.DEPARTMENT_CODES[np.maximum(department, 0)]).astype(object),
        "self_resolved": (flow.path == SELF_RESOLVED) & (flow.done == 2),
        "grid_code": town.grid_codes.astype(object)[grid],
        "facility_code": reports.facility_code[order],
    }, reports.points[order], ISSUE_COLUMNS)
    if not (n <= EVENTS_MAX_ISSUES if history is None else history):
        return issues, _no_history()
    names = Names(worker[grid], channel, _compound_names(site, compound), staff_table(),
                  cases.rule)
    return issues, history_frames(uuids, flow, cases, names, table, rng)


def _cases(reported, kinds, urgency, channel, grid, compound, place_kind, town: Town,
           site: Site | None, rules: dep.Rules, communities: np.ndarray) -> Cases:
    """What each case's workflow depends on: who must fix it, and the dispatch rule that
    applies in its community."""
    companies = dep.property_company_of(site.compounds["maintainer"].to_numpy()) \
        if site is not None else np.array([None], dtype=object)
    company = np.where(compound >= 0, companies[np.maximum(compound, 0)], None)
    community = np.searchsorted(communities, town.grid_community.astype(str)[grid])
    return Cases(reported, kinds, urgency, channel == "worker", grid,
                 dep.responsible(kinds, company, place_kind), rules.number[kinds, community],
                 rules.department[kinds, community], rules.auto[kinds, community])


def _compound_names(site: Site | None, compound: np.ndarray) -> np.ndarray:
    if site is None:
        return np.full(len(compound), "", dtype=object)
    names = site.compounds["name"].to_numpy(object)
    return np.where(compound >= 0, names[np.maximum(compound, 0)], "").astype(object)


def _no_history() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Typed empty history frames, for datasets too large to keep one."""
    stamp = f"datetime64[ns, {BEIJING_TZ_NAME}]"
    events = pd.DataFrame(_empty(dict.fromkeys(EVENT_COLUMNS, "object") | {"at": stamp}))
    extensions = pd.DataFrame(_empty(dict.fromkeys(EXTENSION_COLUMNS, "object") | dict.fromkeys(
        ("requested_at", "decided_at", "due_before", "due_after"), stamp)))
    supervisions = pd.DataFrame(_empty(dict.fromkeys(SUPERVISION_COLUMNS, "object") | dict.fromkeys(
        ("issued_at", "reply_due_at", "replied_at"), stamp)))
    return events, extensions, supervisions
