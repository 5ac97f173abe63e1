"""City reports at scale, all vectorised: busy grids, a hotspot in each grid, edges for the
street problems; a million in a few seconds."""

from __future__ import annotations

import numpy as np
import shapely

from data.generator.drawing import choose, rng_stream
from data.generator.issue_times import Calendar, report_times
from data.generator.place import metres_per_degree
from data.generator.report_texts import TAILS
from data.generator.reports import ISSUE_MIX, Reports, issue_kinds
from data.generator.town import Town

# Where a category tends to be inside a grid, for the vectorised city reports.
_BULK_MODE = {"parking_chaos": "edge", "road_damaged": "edge", "streetlight_out": "edge",
              "cover_damaged": "edge", "other": "uniform"}  # the rest: around the grid's hotspot


def bulk_reports(town: Town, grids_lonlat: np.ndarray, n: int, cal: Calendar,
                  seed: int) -> Reports:
    """City reports, all vectorised: busy grids and a hotspot (an old compound) in each grid."""
    rng = rng_stream(seed, "bulk-issues")
    kinds = issue_kinds(n)
    weight = town.households * rng.lognormal(0, 0.5, len(grids_lonlat))
    weight *= np.where(rng.random(len(weight)) < 0.05, 4.0, 1.0)
    grid = choose(weight, n, rng)
    sampler = _PointSampler(grids_lonlat, rng)
    modes = np.array([_BULK_MODE.get(c, "hotspot") for c in ISSUE_MIX], dtype=object)[kinds]
    lon, lat = np.empty(n), np.empty(n)
    for mode in ("edge", "uniform", "hotspot"):
        rows = np.flatnonzero(modes == mode)
        lon[rows], lat[rows] = sampler.sample(grid[rows], mode)
    return Reports(
        kind=kinds, points=shapely.points(lon, lat), grid=grid,
        description=_bulk_descriptions(town, kinds, grid, rng),
        facility_code=np.full(n, None, dtype=object),
        reported=report_times(kinds, cal, rng_stream(seed, "issue-times")),
        compound=np.full(n, -1, dtype=np.int64), place_kind=np.full(n, "street", dtype=object),
    )


class _PointSampler:
    """Random points strictly inside given grids, by rejection in their bounding boxes."""

    def __init__(self, grids: np.ndarray, rng):
        self.grids, self.rng = grids, rng
        shapely.prepare(grids)
        self.bounds = shapely.bounds(grids)
        self.m_lon, self.m_lat = metres_per_degree()
        self.hotspot = np.column_stack(self._uniform(np.arange(len(grids))))
        boundaries = shapely.boundary(grids)
        self.boundaries = boundaries
        self.centre = shapely.get_coordinates(shapely.point_on_surface(grids))

    def sample(self, grid: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
        if mode == "uniform" or len(grid) == 0:
            return self._uniform(grid)
        if mode == "hotspot":
            r = np.abs(self.rng.normal(0, 30, len(grid)))
            lon, lat = self._offset(self.hotspot[grid, 0], self.hotspot[grid, 1], r)
        else:  # a few metres in from the grid edge: the kerb of the street that bounds it
            p = shapely.get_coordinates(shapely.line_interpolate_point(
                self.boundaries[grid], self.rng.random(len(grid)), normalized=True))
            lon, lat = self._towards(p, self.centre[grid], self.rng.uniform(3, 10, len(grid)))
        bad = ~shapely.contains_xy(self.grids[grid], lon, lat)
        lon[bad], lat[bad] = self._uniform(grid[bad])
        return lon, lat

    def _uniform(self, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lon, lat = np.empty(len(grid)), np.empty(len(grid))
        todo = np.arange(len(grid))
        while len(todo):
            b = self.bounds[grid[todo]]
            x = self.rng.uniform(b[:, 0], b[:, 2])
            y = self.rng.uniform(b[:, 1], b[:, 3])
            ok = shapely.contains_xy(self.grids[grid[todo]], x, y)
            lon[todo[ok]], lat[todo[ok]] = x[ok], y[ok]
            todo = todo[~ok]
        return lon, lat

    def _offset(self, lon, lat, r_m):
        t = self.rng.uniform(0, 2 * np.pi, len(lon))
        return lon + r_m * np.cos(t) / self.m_lon, lat + r_m * np.sin(t) / self.m_lat

    def _towards(self, p: np.ndarray, target: np.ndarray, d_m: np.ndarray):
        dx, dy = (target[:, 0] - p[:, 0]) * self.m_lon, (target[:, 1] - p[:, 1]) * self.m_lat
        norm = np.maximum(np.hypot(dx, dy), 1e-9)
        return p[:, 0] + dx / norm * d_m / self.m_lon, p[:, 1] + dy / norm * d_m / self.m_lat


def _bulk_descriptions(town: Town, kinds: np.ndarray, grid: np.ndarray, rng) -> np.ndarray:
    """"<community>第NN网格" + a tail of the category, without per-row Python formatting."""
    places = (town.grid_names.astype(object))
    tails, owner = [], []
    generic = {"streetlight_out": "路灯", "cover_damaged": "井盖", "garbage": "垃圾桶",
               "sewer_blocked": "污水井"}
    for (code, _kind), texts in TAILS.items():
        for text in texts:
            tails.append(text.format(label=generic.get(code, "")))
            owner.append(code)
    tails_arr, owner_arr = np.array(tails, dtype=object), np.array(owner, dtype=object)
    pick = np.empty(len(kinds), dtype=int)
    for k, code in enumerate(ISSUE_MIX):
        rows = np.flatnonzero(kinds == k)
        options = np.flatnonzero(owner_arr == code)
        pick[rows] = options[rng.integers(0, len(options), len(rows))]
    return places[grid] + tails_arr[pick]
