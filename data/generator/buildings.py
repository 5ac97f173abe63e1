"""Buildings: rows of walk-ups in the old compounds, slabs and towers in the estates, parallel
to the street and spaced for winter sun."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from shapely import affinity
from shapely.geometry import Polygon, box


@dataclass
class _BuildingType:
    length: float
    depth: float
    floors: int
    units: int
    per_floor: int  # households per floor per unit
    gap: float  # clear distance to the next row, for winter sun


def _building_type(kind: str, built_year: int, rng, shrink: float = 1.0) -> _BuildingType:
    """Walk-ups of 3-6 floors in old compounds; slabs and towers of 6-18 floors in estates."""
    if kind == "compound":
        floors = int(rng.integers(3, 6) if built_year < 1988 else rng.integers(4, 7))
        length = rng.uniform(30, 60) * shrink
        per_floor = 2 if rng.random() < 0.8 else 3
        units = max(1, round(length / 12))
        depth, gap = rng.uniform(10, 12), float(np.clip(floors * 2.9, 8, 18))
    elif built_year >= 2012 and rng.random() < 0.6:
        floors = int(rng.integers(11, 19))
        length, depth, units, per_floor = rng.uniform(24, 32) * shrink, rng.uniform(16, 20), 1, 4
        gap = float(np.clip(floors * 2.9 * 1.2, 12, 40))
    else:
        floors = int(rng.integers(6, 12))
        length, depth = rng.uniform(40, 65) * shrink, rng.uniform(12, 14)
        units, per_floor = max(1, round(length / 14)), 2
        gap = float(np.clip(floors * 2.9 * 1.2, 12, 40))
    depth *= max(shrink, 0.7)
    return _BuildingType(length, depth, floors, units, per_floor, gap * shrink)


def draw_buildings(compounds: pd.DataFrame, rng) -> pd.DataFrame:
    rows = []
    for c, cp in enumerate(compounds.itertuples()):
        for k, b in enumerate(_layout_buildings(cp.geometry, cp.angle, cp.kind, cp.built_year,
                                                rng), start=1):
            share = 0.06 if cp.kind == "compound" else 0.03  # retired cadres in the 家属院
            households = b["type"].floors * b["type"].units * b["type"].per_floor
            rows.append({
                "geometry": b["geometry"], "name": f"{k}号楼", "compound": c,
                "compound_name": cp.name, "grid": cp.grid, "floors": b["type"].floors,
                "units": b["type"].units, "households": households,
                "party_households": int(rng.binomial(households, share)),
                "cx": b["centre"][0], "cy": b["centre"][1], "angle": cp.angle,
                "length": b["type"].length, "depth": b["type"].depth,
            })
    return pd.DataFrame(rows)


def _layout_buildings(compound: Polygon, angle: float, kind: str, built_year: int, rng) -> list:
    """Rows of rectangles parallel to the street, south to north, inside the compound's yard.

    Rows keep a sun-spacing gap; within a row buildings keep 6-12 m apart. If nothing fits (a
    small or odd-shaped compound) smaller buildings are tried, down to a few rooms.
    """
    centre = compound.centroid
    local = affinity.rotate(compound, -angle, origin=centre)
    inner = local.buffer(-3.0 if kind == "compound" else -5.0, join_style="mitre")
    if inner.is_empty or inner.area < 200:
        inner = local.buffer(-1.0, join_style="mitre")
    shapely.prepare(inner)
    for shrink in (1.0, 0.6, 0.35, 0.2):
        placed = _scan_rows(inner, kind, built_year, rng, shrink)
        if placed:
            break
    else:
        raise RuntimeError(f"no building fits a compound of {compound.area:.0f} m²")
    out = []
    for rect, btype in placed:
        world = affinity.rotate(rect, angle, origin=centre)
        out.append({"geometry": world, "type": btype,
                    "centre": (world.centroid.x, world.centroid.y)})
    return out


def _scan_rows(inner, kind: str, built_year: int, rng, shrink: float) -> list:
    minx, miny, maxx, maxy = inner.bounds
    step = 4.0 * max(shrink, 0.5)
    placed = []
    y = miny + rng.uniform(0, 3)
    while y < maxy:
        btype = _building_type(kind, built_year, rng, shrink)
        x, in_row = minx + rng.uniform(0, 3), 0
        while x + btype.length <= maxx:
            rect = box(x, y, x + btype.length, y + btype.depth)
            if inner.contains(rect):
                placed.append((rect, btype))
                in_row += 1
                x += btype.length + rng.uniform(6, 12)
            else:
                x += step
        y += btype.depth + btype.gap if in_row else step
    return placed
