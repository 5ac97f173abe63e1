"""Facilities (部件): street furniture every so many metres along the streets, yard furniture in
the compounds; 16-digit codes, states, install dates, owners and maintainers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import LineString

from data.generator.place import DISTRICT_CODE, DISTRICT_NAME
from data.generator.streets import Streets
from data.generator.town import Grids, Town
from gis.db.category_seeds import FACILITY_CATEGORIES
from gis.rules import FACILITY_STATUSES

_FACILITY_BY_CODE = {c.code: c for c in FACILITY_CATEGORIES}

# Street furniture: (category, spacing in metres, offset from the centre line per street kind,
# side: "left"/"right" of the drawing direction or "alternate"). Offsets keep every asset off the
# centre line, which is the grid edge: each asset belongs to exactly one grid.
_STREET_ITEMS = (
    ("streetlight", 30.0, {"main": 10.5, "side": 6.0, "lane": 2.5}, "alternate"),
    ("rain_cover", 40.0, {"main": 11.0, "side": 6.5, "lane": 2.7}, "alternate"),
    ("sewage_cover", 55.0, {"main": 4.0, "side": 3.0, "lane": 1.5}, "right"),
    ("water_cover", 90.0, {"main": 9.0, "side": 5.0, "lane": 1.2}, "left"),
    ("bin", 70.0, {"main": 13.0, "side": 8.5, "lane": 4.2}, "alternate"),
    ("toilet", 600.0, {"main": 15.0, "side": 10.5}, "right"),
    ("barrier", 20.0, {"main": 1.2}, "left"),  # the median fence of 太行街
)
_STREET_OWNERS = {
    "streetlight": ("{county}住房和城乡建设管理局", "{county}路灯管理所"),
    "rain_cover": ("{county}住房和城乡建设管理局", "{county}市政工程管理处"),
    "sewage_cover": ("{county}住房和城乡建设管理局", "{county}排水管理所"),
    "water_cover": ("{county}供水有限公司", "{county}供水有限公司"),
    "bin": ("{county}环境卫生服务中心", "{county}环境卫生服务中心"),
    "toilet": ("{county}环境卫生服务中心", "{county}环境卫生服务中心"),
    "barrier": ("{county}公安局交通警察大队", "{county}公安局交通警察大队"),
}


def draw_facilities(town: Town, grids: Grids, streets: Streets, compounds: pd.DataFrame,
                     buildings: pd.DataFrame, year: int, rng) -> pd.DataFrame:
    """Street furniture every so many metres, yard furniture in the compounds; codes and states."""
    rows = _street_facilities(grids, streets, rng) + _yard_facilities(compounds, buildings, rng)
    frame = pd.DataFrame(rows)
    frame["grid"] = grids.locate(frame["x"].to_numpy(), frame["y"].to_numpy())
    frame = frame[frame["grid"] >= 0].sort_values(["category", "street", "compound", "along"],
                                                  kind="stable", ignore_index=True)
    _name_facilities(frame)
    _facility_states(frame, compounds, town, year, rng)
    return frame


def _street_facilities(grids: Grids, streets: Streets, rng) -> list[dict]:
    rows = []
    for category, spacing, offsets, side in _STREET_ITEMS:
        for i, (line, kind) in enumerate(zip(streets.lines, streets.kinds, strict=True)):
            if kind not in offsets:
                continue
            x, y, s = _along(line, spacing, offsets[kind], side, rng)
            own = np.full(len(x), i)
            ok = (grids.locate(x, y) >= 0) & ~streets.in_other_corridor(own, x, y)
            rows += [{"category": category, "x": a, "y": b, "place": streets.names[i],
                      "street": i, "compound": -1, "along": c}
                     for a, b, c in zip(x[ok], y[ok], s[ok], strict=True)]
    return rows


def _along(line: LineString, spacing: float, offset: float, side: str, rng):
    """Points every ``spacing`` metres (give or take 3) along a line, ``offset`` metres to one
    side, both sides in turn, or the right; returns (x, y, distance along)."""
    s = np.arange(rng.uniform(0.3, 0.8) * spacing, line.length, spacing)
    s = np.clip(s + rng.uniform(-3, 3, len(s)), 1.0, max(line.length - 1.0, 1.0))
    p = shapely.get_coordinates(shapely.line_interpolate_point(line, s))
    ahead = shapely.get_coordinates(shapely.line_interpolate_point(line, s + 1.0))
    behind = shapely.get_coordinates(shapely.line_interpolate_point(line, s - 1.0))
    t = ahead - behind
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    left = np.column_stack([-t[:, 1], t[:, 0]])
    sign = {"left": np.ones(len(s)), "right": -np.ones(len(s)),
            "alternate": np.where(np.arange(len(s)) % 2 == 0, 1.0, -1.0)}[side]
    xy = p + (sign * offset)[:, None] * left
    return xy[:, 0], xy[:, 1], s


def _yard_facilities(compounds: pd.DataFrame, buildings: pd.DataFrame, rng) -> list[dict]:
    """Covers, bins, benches, fitness corners, pavilions and stages inside the compounds."""
    by_compound = buildings.groupby("compound")
    stage_at = set(compounds[compounds["kind"].eq("estate")]
                   .assign(area=lambda f: shapely.area(f["geometry"].to_numpy()))
                   .nlargest(2, "area").index[: 1 + int(rng.random() < 0.6)])
    rows = []
    for c, cp in compounds.iterrows():
        blds = by_compound.get_group(c) if c in by_compound.groups else buildings.iloc[:0]
        yard = _Yard(cp, blds, rng)
        counts = _yard_counts(cp, c in stage_at, rng)
        for category, n in counts.items():
            for x, y in yard.place(category, n):
                rows.append({"category": category, "x": x, "y": y, "place": cp["name"],
                             "street": -1, "compound": c, "along": 0.0})
    return rows


def _yard_counts(cp, has_stage: bool, rng) -> dict[str, int]:
    """How much furniture a yard has: estates are equipped, renovated 院落 got some in 2019-22."""
    estate, renovated = cp["kind"] == "estate", bool(cp["renovated"])

    def n(lo: int, hi: int) -> int:
        return int(rng.integers(lo, hi + 1))

    return {
        "sewage_cover": -1,  # one by each building, see _Yard.place
        "rain_cover": n(3, 6) if estate else n(1, 3),
        "water_cover": n(1, 2) if estate else 1,
        "bin": n(3, 5) if estate else n(1, 2),
        "pavilion": n(1, 2) if estate else int(renovated and rng.random() < 0.7),
        "bench": n(4, 8) if estate else (n(1, 3) if renovated else 0),
        "fitness": n(4, 8) if estate else (n(2, 4) if renovated and rng.random() < 0.6 else 0),
        "stage": int(has_stage),
    }


class _Yard:
    """Free ground in a compound: inside the wall, clear of the buildings and of what is placed."""

    def __init__(self, cp, buildings: pd.DataFrame, rng):
        self.cp, self.buildings, self.rng = cp, buildings, rng
        blocked = shapely.union_all(shapely.buffer(buildings["geometry"].to_numpy(), 2.0))
        self.free = cp["geometry"].buffer(-1.5).difference(blocked)
        shapely.prepare(self.free)
        self.taken: list[tuple[float, float]] = []

    def place(self, category: str, n: int) -> list[tuple[float, float]]:
        if category == "sewage_cover":
            return self._by_buildings()
        if category in ("bin", "water_cover"):
            return self._near_gate(n)
        if category == "fitness":
            return self._cluster(n)
        clearance = {"pavilion": 4.0, "stage": 6.0}.get(category, 0.0)
        return self._spots(n, clearance=clearance)

    def _spots(self, n: int, near=None, radius: float = 0.0, clearance: float = 0.0,
               min_gap: float = 3.0) -> list[tuple[float, float]]:
        if n <= 0 or self.free.is_empty:
            return []
        m = 60 * n
        if near is None:
            minx, miny, maxx, maxy = self.free.bounds
            x, y = self.rng.uniform(minx, maxx, m), self.rng.uniform(miny, maxy, m)
        else:
            r, a = radius * np.sqrt(self.rng.random(m)), self.rng.uniform(0, 2 * np.pi, m)
            x, y = near[0] + r * np.cos(a), near[1] + r * np.sin(a)
        ok = shapely.contains_xy(self.free, x, y)
        if clearance:
            ok &= shapely.distance(self.free.boundary, shapely.points(x, y)) >= clearance
        out = []
        for px, py in zip(x[ok], y[ok], strict=True):
            if all((px - qx) ** 2 + (py - qy) ** 2 >= min_gap ** 2 for qx, qy in self.taken):
                self.taken.append((px, py))
                out.append((px, py))
                if len(out) == n:
                    break
        return out

    def _by_buildings(self) -> list[tuple[float, float]]:
        """A sewage manhole 2.5 m off the north wall of each building, where the pipes leave."""
        out = []
        for b in self.buildings.itertuples():
            a = math.radians(b.angle)
            d = b.depth / 2 + 2.5
            x, y = b.cx - d * math.sin(a), b.cy + d * math.cos(a)
            spot = self._spots(1, near=(x, y), radius=1.5, min_gap=1.5)
            out += spot or self._spots(1, near=(b.cx, b.cy), radius=b.length, min_gap=1.5)
        return out

    def _near_gate(self, n: int) -> list[tuple[float, float]]:
        gate = (self.cp["gate_x"], self.cp["gate_y"])
        first = self._spots(min(n, 2), near=gate, radius=8.0, min_gap=2.0)
        return first + self._spots(n - len(first))

    def _cluster(self, n: int) -> list[tuple[float, float]]:
        """Fitness equipment stands together on one small square."""
        centre = self._spots(1, clearance=5.0) or self._spots(1)
        if not centre:
            return []
        return centre + self._spots(n - 1, near=centre[0], radius=7.0, min_gap=2.5)


def _name_facilities(frame: pd.DataFrame) -> None:
    """16-digit codes (division + category std_code + sequence) and names like 太行街17号路灯."""
    seq = frame.groupby("category").cumcount() + 1
    std = frame["category"].map(lambda c: _FACILITY_BY_CODE[c].std_code)
    frame["code"] = DISTRICT_CODE + std + seq.map("{:06d}".format)
    number = frame.groupby(["category", "place"]).cumcount() + 1
    frame["label"] = number.astype(str) + "号" + frame["category"].map(
        lambda c: _FACILITY_BY_CODE[c].name_zh)
    frame["name"] = frame["place"] + frame["label"]


def _facility_states(frame: pd.DataFrame, compounds: pd.DataFrame, town: Town, year: int,
                     rng) -> None:
    """Status (a few % not ok), install date, owner and maintainer of each facility."""
    n = len(frame)
    status = rng.choice(FACILITY_STATUSES, n, p=[0.94, 0.03, 0.012, 0.018])
    can_go_missing = frame["category"].isin(["rain_cover", "sewage_cover", "water_cover", "bin",
                                             "bench"])
    frame["status"] = np.where((status == "missing") & ~can_go_missing, "damaged", status)
    in_yard = frame["compound"].to_numpy() >= 0
    cp = compounds.reindex(frame["compound"].where(in_yard, 0))
    street_year = rng.integers(2008, 2023, n)
    yard_year = np.where(cp["kind"].eq("estate"), cp["built_year"].to_numpy() + rng.integers(0, 2, n),
                         rng.integers(2019, 2023, n))
    built = np.minimum(np.where(in_yard, yard_year, street_year), year - 1)
    start = pd.to_datetime(built.astype(str), format="%Y")
    frame["install_date"] = [d.date() for d in start + pd.to_timedelta(rng.integers(60, 300, n),
                                                                        unit="D")]
    owners = {c: (o.format(county=DISTRICT_NAME), m.format(county=DISTRICT_NAME))
              for c, (o, m) in _STREET_OWNERS.items()}
    street_owner = frame["category"].map(lambda c: owners.get(c, ("", ""))[0]).to_numpy()
    street_keeper = frame["category"].map(lambda c: owners.get(c, ("", ""))[1]).to_numpy()
    yard_owner = cp["name"].to_numpy() + "全体业主"
    committee = np.char.add(town.grid_community_name[frame["grid"].to_numpy()].astype(str),
                            "居民委员会").astype(object)
    yard_keeper = np.where(cp["maintainer"].isna(), committee, cp["maintainer"].to_numpy())
    frame["owner"] = np.where(in_yard, yard_owner, street_owner)
    frame["maintainer"] = np.where(in_yard, yard_keeper, street_keeper)
