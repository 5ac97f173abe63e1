"""Compounds: 43 walled 院落 and 11 estates (小区) in the demo, about one a hectare in a detailed
city; each grid's land is cut into parcels, and each compound gets a name, an age, a property
company or none, a gate and a tendency to make trouble."""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from shapely import affinity
from shapely.geometry import Polygon, box
from shapely.ops import nearest_points

from data.generator.drawing import largest_polygon, quota
from data.generator.place import DEMO_COMPOUNDS, DEMO_ESTATES
from data.generator.streets import Streets
from data.generator.town import Town

_LANE_BETWEEN = 4.0  # half the width of the alleys between neighbouring compounds
_WORK_UNITS = ("供销社", "粮食局", "电业局", "县医院", "一中", "农机公司", "邮电局", "水利局",
               "建设银行", "农业银行", "税务局", "交通局", "林业局", "棉麻公司", "百货公司",
               "人武部", "卫生局", "教育局", "化肥厂", "运输公司", "物资局", "财政局", "法院",
               "检察院", "公路段", "煤炭公司", "食品公司", "电影公司")
_DEMO_ESTATE_NAMES = ("金地小区", "太行花园", "丰州佳苑", "东湖名邸", "锦绣家园", "阳光新城",
                      "福馨苑", "盛世华庭", "温馨家园", "长乐苑", "翰林府", "御景苑")
_ESTATE_SUFFIXES = ("花园", "家园", "佳苑", "名邸", "华庭", "新城", "雅居", "嘉园", "公馆")
PROPERTY_COMPANIES = ("武乡县安居物业服务有限公司", "武乡县太行物业管理有限公司",
                       "山西锦华物业服务有限公司", "长治市恒泰物业管理有限公司",
                       "武乡县宏达物业服务有限公司")


def compound_counts(town: Town, land: list[Polygon], rng) -> tuple[np.ndarray, np.ndarray]:
    """(old compounds, estates) per grid: the demo's 43 + 11, or about one per hectare."""
    areas = np.array([p.area for p in land])
    if not town.demo:
        units = areas / 11_000
        n_est = rng.binomial(1, 0.3, len(areas)) + (rng.random(len(areas)) < 0.1) * (units > 9)
        n_old = np.maximum(np.round(units - 3 * n_est), (n_est == 0).astype(int)).astype(int)
        return n_old, n_est
    x = shapely.get_x(shapely.centroid(town.grid_geoms))
    east = (x - x.min()) / (x.max() - x.min())  # newer estates went up on the east side
    n_est = np.zeros(len(areas), int)
    for _ in range(DEMO_ESTATES):
        weight = areas * (0.5 + east) * np.where(n_est >= 2, 0.0, 0.35 ** n_est)
        n_est[rng.choice(len(areas), p=weight / weight.sum())] += 1
    n_old = quota(np.maximum(areas / 11_000 - 3 * n_est, 0.3), DEMO_COMPOUNDS)
    for g in np.flatnonzero(n_old + n_est == 0):  # every grid has homes
        n_old[np.argmax(n_old)] -= 1
        n_old[g] += 1
    return n_old, n_est


def draw_compounds(town: Town, streets: Streets, land: list[Polygon], n_old: np.ndarray,
                    n_est: np.ndarray, year: int, rng) -> pd.DataFrame:
    """Cut each grid's land into parcels, one per compound; walls stand back from the alleys."""
    rows = []
    for g, parcel_land in enumerate(land):
        # One parcel of each block is not housing: shops, a school, offices, a market.
        kinds = rng.permutation(["estate"] * n_est[g] + ["compound"] * n_old[g] + ["other"])
        weights = [_PARCEL_WEIGHT[k] * rng.uniform(0.75, 1.25) for k in kinds]
        angle = streets.facing(parcel_land.centroid)
        for kind, parcel in zip(kinds, _split_parcels(parcel_land, weights, angle), strict=True):
            if kind == "other":
                continue
            shape = largest_polygon(parcel.buffer(-_LANE_BETWEEN, join_style="mitre"))
            if shape.area < 800:
                shape = largest_polygon(parcel.buffer(-1.5, join_style="mitre"))
            rows.append({"geometry": shape, "kind": kind, "grid": g})
    frame = pd.DataFrame(rows)
    frame["angle"] = [streets.facing(p.centroid) for p in frame["geometry"]]
    _describe_compounds(frame, town, streets, year, rng)
    return frame


_PARCEL_WEIGHT = {"estate": 3.0, "compound": 1.0, "other": 1.5}  # relative parcel areas


def _split_parcels(poly, weights: list[float], angle: float) -> list:
    """Guillotine cuts across the longer side, each giving the parts their share of the area."""
    if len(weights) == 1:
        return [poly]
    k = len(weights) // 2
    first, second = _cut(poly, sum(weights[:k]) / sum(weights), angle)
    return _split_parcels(first, weights[:k], angle) + _split_parcels(second, weights[k:], angle)


def _cut(poly, fraction: float, angle: float):
    """Split ``poly`` by a line perpendicular to its longer side (in the street-aligned frame),
    placed by bisection so that the first part has ``fraction`` of the area."""
    local = affinity.rotate(poly, -angle, origin=(0, 0))
    minx, miny, maxx, maxy = local.bounds
    along_x = maxx - minx >= maxy - miny
    lo, hi = (minx, maxx) if along_x else (miny, maxy)

    def below(c: float):
        return box(minx - 1, miny - 1, c, maxy + 1) if along_x else \
            box(minx - 1, miny - 1, maxx + 1, c)

    target = fraction * local.area
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if local.intersection(below(mid)).area < target else (lo, mid)
    first = local.intersection(below((lo + hi) / 2))
    second = local.difference(below((lo + hi) / 2))
    return (affinity.rotate(first, angle, origin=(0, 0)),
            affinity.rotate(second, angle, origin=(0, 0)))


def _describe_compounds(frame: pd.DataFrame, town: Town, streets: Streets, year: int,
                        rng) -> None:
    """Names, age, property company and how much trouble each compound tends to make."""
    n = len(frame)
    old = frame["kind"].eq("compound").to_numpy()
    built = np.where(old, rng.choice(np.arange(1980, 2005), n,
                                     p=_decade_weights(np.arange(1980, 2005))),
                     rng.integers(2006, 2022, n))
    frame["built_year"] = np.minimum(built, year - 1)
    frame["has_property_company"] = ~old | (rng.random(n) < 0.3)
    frame["renovated"] = old & (rng.random(n) < 0.6)  # 老旧小区改造, 2019-2022
    frame["name"] = _compound_names(frame, town, streets, rng)
    trouble = np.where(old, 2.0, 1.0) * np.where(frame["has_property_company"], 1.0, 1.6)
    hot = rng.choice(np.flatnonzero(old), size=min(4, int(old.sum())), replace=False)
    trouble[hot] *= 3.0  # a few notorious 家属院 the whole community knows
    frame["trouble"] = trouble * rng.lognormal(0, 0.25, n)
    gates = [_gate(p, streets) for p in frame["geometry"]]
    frame["gate_x"] = [g[0] for g in gates]
    frame["gate_y"] = [g[1] for g in gates]
    companies = rng.choice(PROPERTY_COMPANIES, n)
    frame["maintainer"] = np.where(frame["has_property_company"], companies, None)


def _decade_weights(years: np.ndarray) -> np.ndarray:
    """Most 家属院 went up between the mid-1980s and late 1990s."""
    w = np.exp(-((years - 1992) / 7.0) ** 2)
    return w / w.sum()


def _compound_names(frame: pd.DataFrame, town: Town, streets: Streets, rng) -> list[str]:
    """家属院 of old work units, "<street>N号院" addresses, and estate names; all distinct."""
    names: list[str] = []
    taken: set[str] = set()
    per_street: dict[str, int] = {}
    units = list(rng.permutation(_WORK_UNITS)) if town.demo else []
    estates = list(_DEMO_ESTATE_NAMES) if town.demo else []
    for i, row in enumerate(frame.itertuples()):
        if row.kind == "estate":
            name = estates.pop(0) if estates else \
                town.grid_community_name[row.grid].removesuffix("社区") + _ESTATE_SUFFIXES[i % 9]
        elif units and rng.random() < 0.55:
            name = units.pop(0) + "家属院"
        else:
            street = streets.names[streets.nearest(row.geometry)]
            per_street[street] = per_street.get(street, 0) + 1
            name = f"{street}{per_street[street]}号院"
        while name in taken:
            name += "二期"
        names.append(name)
        taken.add(name)
    return names


def _gate(compound: Polygon, streets: Streets) -> tuple[float, float]:
    """Where the compound's gate is: the point of its wall nearest a street."""
    street = streets.lines[streets.nearest(compound)]
    gate = nearest_points(compound.exterior, street)[0]
    return gate.x, gate.y
