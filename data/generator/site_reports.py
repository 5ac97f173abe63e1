"""Where demo reports happen: each is placed by its category's habits (at a facility, on a
street, in a yard, in a flat, by a wall, on a square) and described in words."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import LineString, Point

from data.generator.drawing import choose, quota, rng_stream
from data.generator.issue_times import Calendar, report_times
from data.generator.place import to_lonlat
from data.generator.report_texts import TAILS
from data.generator.reports import ISSUE_CODES, ISSUE_MIX, Reports, issue_kinds
from data.generator.site import Site
from data.generator.streets import Streets

# Where each category happens in the demo: (share, kind of place, which weights or facilities).
_WHERE: dict[str, tuple[tuple[float, str, object], ...]] = {
    "streetlight_out": ((1.0, "facility", ("streetlight",)),),
    "cover_damaged": ((1.0, "facility", ("rain_cover", "sewage_cover", "water_cover")),),
    "garbage": ((0.75, "facility", ("bin",)), (0.25, "yard", "trouble")),
    "parking_chaos": ((0.65, "street", "traffic"), (0.35, "yard", "parking")),
    "heating_failure": ((1.0, "room", "heating"),),
    "elevator_failure": ((1.0, "unit", "elevator"),),
    "sewer_blocked": ((0.5, "facility", ("sewage_cover",)), (0.5, "unit", "old")),
    "noise": ((0.55, "room", "dense"), (0.25, "square", ("fitness", "stage", "pavilion")),
              (0.2, "street", "traffic")),
    "neighbour_dispute": ((1.0, "unit", "dense"),),
    "illegal_construction": ((1.0, "side", "old"),),
    "road_damaged": ((0.7, "street", "lanes"), (0.3, "yard", "old")),
    "other": ((0.6, "side", "trouble"), (0.4, "street", "traffic")),
    "greenery": ((0.6, "street", "lanes"), (0.4, "square", ("fitness", "pavilion"))),
}
# How residents name a facility in a report (streetlights by their painted pole number).
_SPOKEN = {"rain_cover": "雨水井盖", "sewage_cover": "污水井盖", "water_cover": "自来水井盖",
           "bin": "垃圾桶", "fitness": "健身器材", "stage": "舞台", "pavilion": "凉亭"}
_SIDES = ("东侧", "北侧", "西侧", "南侧")


@dataclass
class _Spot:
    x: float
    y: float
    place: str
    kind: str
    facility: int = -1  # row in the site's facilities
    label: str = ""
    compound: int = -1  # row in the site's compounds: the yard or building it is in or at


class _Placer:
    """Puts each demo report where such a problem happens, and says where in words.

    Rows are looked up in plain lists and arrays (not pandas) because this runs per report.
    """

    def __init__(self, site: Site, rng):
        self.site, self.rng = site, rng
        self.grids, self.streets = site.grids, site.streets
        self.cps = site.compounds.to_dict("records")
        self.blds = site.buildings.to_dict("records")
        self.facs = site.facilities.to_dict("records")
        self.fac_category = site.facilities["category"].to_numpy()
        self.fac_weight = self._facility_weights(site)
        self.by_compound: dict[int, list[int]] = {}
        for i, b in enumerate(self.blds):
            self.by_compound.setdefault(b["compound"], []).append(i)
        self.gates = site.compounds[["gate_x", "gate_y"]].to_numpy()
        self.building_weights, self.compound_weights = _home_weights(site)
        self.street_weights = _street_weights(site)
        self.building_tree = shapely.STRtree(site.buildings["geometry"].to_numpy())
        self.crossings = _crossings(site.streets)
        self.grid_union = shapely.union_all(site.grids.geoms)
        self.segments = [line.intersection(self.grid_union) for line in site.streets.lines]
        # The kinds of place of _WHERE, each with the method that finds one spot of it.
        self.spot_of_kind = {"facility": self._facility, "street": self._street,
                             "yard": self._yard, "room": self._room, "unit": self._unit,
                             "side": self._side, "square": self._square}

    @staticmethod
    def _facility_weights(site: Site) -> np.ndarray:
        """Broken facilities draw reports; so do covers in troubled yards and busy streets."""
        f = site.facilities
        in_yard = f["compound"].to_numpy() >= 0
        trouble = site.compounds["trouble"].to_numpy()[f["compound"].to_numpy().clip(0)]
        return np.where(f["status"].to_numpy() != "ok", 6.0, 1.0) * \
            np.where(in_yard, trouble, 1.5)

    def spots(self, category: str, n: int) -> list[_Spot]:
        shares = [w[0] for w in _WHERE[category]]
        out: list[_Spot] = []
        for (_, kind, arg), k in zip(_WHERE[category], quota(shares, n), strict=True):
            spot_of = self.spot_of_kind[kind]
            out += [spot_of(arg) for _ in range(k)]
        return [out[i] for i in self.rng.permutation(len(out))]

    # -- one spot of each kind --------------------------------------------------------------
    def _facility(self, categories) -> _Spot:
        pool = np.flatnonzero(np.isin(self.fac_category, categories))
        i = int(pool[choose(self.fac_weight[pool], 1, self.rng)[0]])
        f = self.facs[i]
        x, y = self._near(f["x"], f["y"], 0.3, 2.5)
        label = f["label"] if f["category"] == "streetlight" else _SPOKEN[f["category"]]
        place = self._yard_place(f["compound"], x, y) if f["compound"] >= 0 else \
            self._street_place(f["street"], x, y)
        return _Spot(x, y, place, "facility", i, label, int(f["compound"]))

    def _street(self, weights: str) -> _Spot:
        streets = self.streets
        for _ in range(200):
            i = int(choose(self.street_weights[weights], 1, self.rng)[0])
            line, hw = streets.lines[i], streets.half_width[i]
            offset = self.rng.choice((-1, 1)) * max(1.0, hw + self.rng.uniform(-3, 3))
            x, y = _along_at(line, self.rng.uniform(0, line.length), offset)
            if self._inside(x, y) and \
                    not streets.in_other_corridor(np.array([i]), np.array([x]), np.array([y]))[0]:
                return _Spot(x, y, self._street_place(i, x, y), "street")
        raise RuntimeError("no street spot found")

    def _yard(self, weights: str) -> _Spot:
        c = int(choose(self.compound_weights[weights], 1, self.rng)[0])
        poly = self.cps[c]["geometry"]
        minx, miny, maxx, maxy = poly.bounds
        for _ in range(500):
            x, y = self.rng.uniform(minx, maxx), self.rng.uniform(miny, maxy)
            if poly.contains(Point(x, y).buffer(1.0, quad_segs=2)) and not self._in_building(x, y):
                return _Spot(x, y, self.cps[c]["name"], "yard", compound=c)
        raise RuntimeError(f"no free ground in {self.cps[c]['name']}")

    def _room(self, weights: str) -> _Spot:
        spot, b = self._inside_building(weights)
        floor = int(self.rng.integers(1, b["floors"] + 1))
        door = int(self.rng.integers(1, 3))
        spot.place += f"{floor}{door:02d}室"
        spot.kind = "room"
        return spot

    def _unit(self, weights: str) -> _Spot:
        return self._inside_building(weights)[0]

    def _side(self, weights: str) -> _Spot:
        """Just outside one wall of a building, where sheds get built and clutter piles up."""
        b = self.blds[int(choose(self.building_weights[weights], 1, self.rng)[0])]
        wall = self.cps[b["compound"]]["geometry"]
        for _ in range(50):
            side = int(self.rng.integers(0, 4))
            along_x = side % 2 == 0
            half = (b["length"] if along_x else b["depth"]) / 2 + self.rng.uniform(1.5, 4)
            along = self.rng.uniform(-0.4, 0.4) * (b["depth"] if along_x else b["length"])
            u, v = [(half, along), (along, half), (-half, along), (along, -half)][side]
            x, y = _from_building_frame(b, u, v)
            if wall.contains(Point(x, y).buffer(0.5, quad_segs=2)) and not self._in_building(x, y):
                return _Spot(x, y, b["compound_name"] + b["name"] + _side_of(b, x, y), "side",
                             compound=int(b["compound"]))
        spot = self._inside_building_row(b)
        spot.kind = "side"
        return spot

    def _square(self, categories) -> _Spot:
        pool = np.flatnonzero(np.isin(self.fac_category, categories))
        f = self.facs[int(pool[self.rng.integers(0, len(pool))])]
        x, y = self._near(f["x"], f["y"], 2.0, 8.0)
        name = self.cps[f["compound"]]["name"]
        return _Spot(x, y, f"{name}{_SPOKEN[f['category']]}附近", "square",
                     compound=int(f["compound"]))

    # -- helpers ----------------------------------------------------------------------------
    def _inside_building(self, weights: str):
        b = self.blds[int(choose(self.building_weights[weights], 1, self.rng)[0])]
        return self._inside_building_row(b), b

    def _inside_building_row(self, b: dict) -> _Spot:
        u = self.rng.uniform(-0.4, 0.4) * b["length"]
        v = self.rng.uniform(-0.4, 0.4) * b["depth"]
        x, y = _from_building_frame(b, u, v)
        unit = int(self.rng.integers(1, b["units"] + 1))
        return _Spot(x, y, f"{b['compound_name']}{b['name']}{unit}单元", "unit",
                     compound=int(b["compound"]))

    def _near(self, x0: float, y0: float, r_min: float, r_max: float) -> tuple[float, float]:
        """A point a few metres from (x0, y0) that is still strictly inside a grid."""
        for _ in range(30):
            r, t = self.rng.uniform(r_min, r_max), self.rng.uniform(0, 2 * math.pi)
            x, y = x0 + r * math.cos(t), y0 + r * math.sin(t)
            if self._inside(x, y) and not self._in_building(x, y):
                return x, y
        return x0, y0

    def _inside(self, x: float, y: float) -> bool:
        return len(self.grids.tree.query(Point(x, y), predicate="within")) > 0

    def _in_building(self, x: float, y: float) -> bool:
        return len(self.building_tree.query(Point(x, y), predicate="within")) > 0

    def _yard_place(self, c: int, x: float, y: float) -> str:
        """"<compound><building><side>" for the nearest building of the compound."""
        name = self.cps[c]["name"]
        mine = self.by_compound.get(c, [])
        if not mine:
            return name + "院内"
        near = min((self.blds[i] for i in mine),
                   key=lambda b: (b["cx"] - x) ** 2 + (b["cy"] - y) ** 2)
        return name + near["name"] + _side_of(near, x, y)

    def _street_place(self, i: int, x: float, y: float) -> str:
        """"A与B交叉口", "<street><compound>门口" or "<street>东段", whichever fits best."""
        name = self.streets.names[i]
        near = [(math.hypot(cx - x, cy - y), other) for j, other, cx, cy in self.crossings
                if j == i]
        if near and min(near)[0] < 40:
            return f"{name}与{min(near)[1]}交叉口"
        gate_d = np.hypot(self.gates[:, 0] - x, self.gates[:, 1] - y)
        if len(gate_d) and gate_d.min() < 35:
            compound = self.cps[int(np.argmin(gate_d))]["name"]
            return (compound if compound.startswith(name) else name + compound) + "门口"
        return name + _segment_name(self.segments[i], x, y)


def _home_weights(site: Site) -> tuple[dict, dict]:
    """How likely each building and compound is to report, by category group.

    Old compounds heat worse, overflow more and get more sheds; dense ones quarrel more; a few
    notorious ones (high ``trouble``) report more of everything.
    """
    cps, b = site.compounds, site.buildings
    old = cps["kind"].eq("compound").to_numpy()
    trouble = cps["trouble"].to_numpy()
    density = cps["households"].to_numpy() / shapely.area(cps["geometry"].to_numpy())
    density /= density.mean()
    hh, c = b["households"].to_numpy(float), b["compound"].to_numpy()
    buildings = {
        "heating": hh * np.where(old[c], 2.2, 1.0) * np.sqrt(trouble[c]),
        "elevator": (b["units"] * b["floors"] * (b["floors"] >= 7)).to_numpy(float),
        "old": hh * old[c] * trouble[c],
        "dense": hh * density[c] ** 3 * np.sqrt(trouble[c]),
        "trouble": hh * trouble[c],
    }
    cp_hh = cps["households"].to_numpy(float)
    compounds = {"trouble": cp_hh * trouble, "parking": cp_hh * (1 + 0.5 * old),
                 "old": cp_hh * old * trouble}
    return buildings, compounds


def _street_weights(site: Site) -> dict[str, np.ndarray]:
    """Parking trouble follows traffic (太行街 most); potholes the neglected lanes."""
    streets = site.streets
    inside = shapely.length(shapely.intersection(streets.lines,
                                                 shapely.union_all(site.grids.geoms)))
    kinds = pd.Series(streets.kinds)
    return {"traffic": inside * kinds.map({"main": 3, "side": 1.5, "lane": 0.7}).to_numpy(),
            "lanes": inside * kinds.map({"main": 0.6, "side": 1, "lane": 2.5}).to_numpy()}


def _from_building_frame(b: dict, u: float, v: float) -> tuple[float, float]:
    """World coordinates of (u along, v across) a building, from its centre."""
    a = math.radians(b["angle"])
    return b["cx"] + u * math.cos(a) - v * math.sin(a), b["cy"] + u * math.sin(a) + v * math.cos(a)


def _crossings(streets: Streets) -> list[tuple[int, str, float, float]]:
    """(street, other street's name, x, y) for every junction of two streets."""
    out = []
    for i, a in enumerate(streets.lines):
        for j, b in enumerate(streets.lines):
            if i != j:
                for p in shapely.get_parts(a.intersection(b)):
                    if p.geom_type == "Point":
                        out.append((i, streets.names[j], p.x, p.y))
    return out


def _along_at(line: LineString, s: float, offset: float) -> tuple[float, float]:
    """The point ``s`` metres along ``line`` and ``offset`` metres to its left."""
    p, a, b = (line.interpolate(v) for v in (s, max(s - 1, 0), min(s + 1, line.length)))
    t = np.array([b.x - a.x, b.y - a.y])
    t /= np.linalg.norm(t)
    return p.x - offset * t[1], p.y + offset * t[0]


def _side_of(building, x: float, y: float) -> str:
    """Which side of the building (东/北/西/南侧) the point is on, by compass direction."""
    angle = math.degrees(math.atan2(y - building["cy"], x - building["cx"]))
    return _SIDES[int(((angle + 45) % 360) // 90)]


def _segment_name(inside, x: float, y: float) -> str:
    """东段/中段/西段 (or 北/中/南) of ``inside``, the stretch of a street within the grids."""
    minx, miny, maxx, maxy = inside.bounds if not inside.is_empty else (x, y, x + 1, y + 1)
    if maxx - minx >= maxy - miny:
        t, names = (x - minx) / max(maxx - minx, 1), ("西段", "中段", "东段")
    else:
        t, names = (y - miny) / max(maxy - miny, 1), ("南段", "中段", "北段")
    return names[min(2, max(0, int(t * 3)))]


def site_reports(site: Site, n: int, cal: Calendar, seed: int) -> Reports:
    """Demo reports: each placed by its category's habits and described in words."""
    rng = rng_stream(seed, "issue-places")
    kinds = issue_kinds(n)
    categories = ISSUE_CODES[kinds]
    placer = _Placer(site, rng)
    spots = np.empty(n, dtype=object)
    for k, code in enumerate(ISSUE_MIX):
        rows = np.flatnonzero(kinds == k)
        spots[rows] = placer.spots(code, len(rows))
    x = np.array([s.x for s in spots])
    y = np.array([s.y for s in spots])
    codes = site.facilities["code"].to_numpy()
    description = np.array([
        s.place + rng.choice(TAILS[(c, s.kind)]).format(label=s.label)
        for c, s in zip(categories, spots, strict=True)], dtype=object)
    return Reports(
        kind=kinds, points=to_lonlat(shapely.points(x, y)),
        grid=site.grids.locate(x, y), description=description,
        facility_code=np.array([codes[s.facility] if s.facility >= 0 else None for s in spots],
                               dtype=object),
        reported=report_times(kinds, cal, rng_stream(seed, "issue-times")),
        compound=np.array([s.compound for s in spots], dtype=np.int64),
        place_kind=np.array([s.kind for s in spots], dtype=object),
    )
