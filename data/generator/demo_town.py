"""The demo's layout: 太东社区, 丰州镇, 武乡县 (Shanxi), about 1.2 x 0.9 km around 112.86 E,
36.84 N. A hand-drawn, jittered street network (太行街 and its side streets and lanes) is
polygonised with the community outline into the 14 grids.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon
from shapely.ops import polygonize, unary_union

from data.generator.drawing import largest_polygon, rng_stream, wobbly
from data.generator.place import (
    COMMUNITY_CODE,
    COMMUNITY_NAME,
    DEMO_GRIDS,
    DISTRICT_CODE,
    DISTRICT_NAME,
    STREET_CODE,
    STREET_NAME,
    to_lonlat,
)
from data.generator.town import Town, grid_reading_order


@dataclass(frozen=True)
class _StreetSpec:
    name: str
    kind: str
    points: tuple[tuple[float, float], ...]
    start_on: str | None = None  # a T-junction: the street this one starts from
    end_on: str | None = None


# Control points in metres from the community centre; 太行街 is drawn by _main_street. Three side
# streets cross the whole community, the rest end on another street (T-junctions) or run out of
# the community; 东园巷 is a dead end, as every old town has some.
_DEMO_STREETS = (
    _StreetSpec("太行街", "main", ()),
    _StreetSpec("建设路", "side", ((-360, -650), (-335, -240), (-318, 0), (-350, 260),
                                (-345, 650))),
    _StreetSpec("文化路", "side", ((60, -650), (30, -250), (48, -10), (15, 300), (30, 650))),
    _StreetSpec("东关街", "side", ((330, -650), (355, -200), (368, 20), (400, 320), (385, 650))),
    _StreetSpec("育才路", "side", ((-335, 225), (-150, 250), (20, 235), (200, 265), (390, 230)),
                "建设路", "东关街"),
    _StreetSpec("槐树巷", "lane", ((-480, 20), (-500, 180), (-455, 330), (-470, 530)), "太行街"),
    _StreetSpec("南仓巷", "lane", ((-690, -200), (-520, -240), (-300, -225), (-120, -185),
                                (40, -215)), None, "文化路"),
    _StreetSpec("后营巷", "lane", ((200, 20), (175, -150), (215, -320), (205, -550)), "太行街"),
    _StreetSpec("东园巷", "lane", ((372, 300), (430, 290), (480, 315)), "东关街"),
)
_COMMUNITY_RING = ((-600, -430), (-250, -460), (100, -445), (420, -470), (610, -400),
                   (590, -100), (620, 180), (560, 440), (250, 460), (-80, 430), (-380, 455),
                   (-590, 410), (-615, 120), (-580, -180))
_JUNCTION_OVERSHOOT = 2.0  # metres a T-junction street runs past the other's centre line


def taidong_town(seed: int) -> Town:
    """太东社区: its streets cut the community outline into 14 irregular grids."""
    rng = rng_stream(seed, "taidong-layout")
    outline = Polygon(wobbly(_jitter_ring(_COMMUNITY_RING, 15.0, rng), 120.0, 6.0, rng))
    lines = _demo_streets(rng)
    blocks = _polygonise_blocks(outline, list(lines.values()))
    if len(blocks) != DEMO_GRIDS:
        raise RuntimeError(f"demo streets cut the community into {len(blocks)} blocks, "
                           f"expected {DEMO_GRIDS}")
    grid_geoms = shapely.multipolygons(blocks, indices=np.arange(len(blocks)))
    order = np.argsort(grid_reading_order(to_lonlat(grid_geoms)))
    grid_geoms = grid_geoms[order]
    community = shapely.union_all(grid_geoms)
    town_poly = _jittered_ellipse((300, 200), 3200, 2600, 18, rng)
    county_poly = _jittered_ellipse((-2000, 3000), 21000, 19000, 36, rng)
    codes = np.array([f"{COMMUNITY_CODE}{i:03d}" for i in range(1, DEMO_GRIDS + 1)])
    return Town(
        region_codes=[DISTRICT_CODE, STREET_CODE, COMMUNITY_CODE],
        region_names=[DISTRICT_NAME, STREET_NAME, COMMUNITY_NAME],
        region_levels=["district", "street", "community"],
        region_parents=[None, DISTRICT_CODE, STREET_CODE],
        region_geoms=shapely.multipolygons(
            [county_poly, town_poly, largest_polygon(community)], indices=[0, 1, 2]),
        grid_geoms=grid_geoms, grid_codes=codes,
        grid_names=np.array([f"{COMMUNITY_NAME}第{i:02d}网格" for i in range(1, DEMO_GRIDS + 1)]),
        grid_community=np.full(DEMO_GRIDS, COMMUNITY_CODE),
        grid_community_name=np.full(DEMO_GRIDS, COMMUNITY_NAME),
        street_names=list(lines), street_kinds=[s.kind for s in _DEMO_STREETS],
        street_lines=np.array(list(lines.values()), dtype=object), demo=True,
    )


def _jitter_ring(points, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    pts = np.asarray(points, dtype=float)
    pts = pts + rng.uniform(-amplitude, amplitude, pts.shape)
    return np.vstack([pts, pts[:1]])


def _jittered_ellipse(centre, rx: float, ry: float, n: int, rng) -> Polygon:
    """A rough oval: the district and town outlines only need to enclose the community."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = rng.uniform(0.9, 1.1, n)
    ring = np.column_stack([centre[0] + rx * r * np.cos(t), centre[1] + ry * r * np.sin(t)])
    return Polygon(ring)


def _main_street(rng: np.random.Generator) -> np.ndarray:
    """太行街: a gentle curve across the whole community, west to east."""
    xs = np.linspace(-850, 850, 18)
    ys = 22 * np.sin(xs / 380 + 0.4) + 15
    return wobbly(np.column_stack([xs, ys]), 60.0, 2.0, rng)


def _demo_streets(rng: np.random.Generator) -> dict[str, LineString]:
    """Draw the demo streets in order, ending T-junction streets on the ones drawn before."""
    lines: dict[str, LineString] = {}
    for spec in _DEMO_STREETS:
        coords = _main_street(rng) if spec.kind == "main" else wobbly(spec.points, 90.0, 6.0, rng)
        if spec.start_on:
            coords = _end_on(coords[::-1], lines[spec.start_on])[::-1]
        if spec.end_on:
            coords = _end_on(coords, lines[spec.end_on])
        lines[spec.name] = LineString(coords)
    return lines


def _end_on(coords: np.ndarray, target: LineString) -> np.ndarray:
    """Make the polyline end just past ``target``: extend or trim its last segment to the
    crossing, plus a short overshoot so that noding always finds the junction."""
    a, b = coords[-2], coords[-1]
    direction = (b - a) / math.hypot(*(b - a))
    probe = LineString([a, b + 80.0 * direction])
    hits = shapely.get_parts(probe.intersection(target))
    if len(hits) == 0:
        raise RuntimeError("a T-junction street misses the street it should end on")
    nearest = min(hits, key=lambda p: p.distance(Point(a)))
    end = np.array([nearest.x, nearest.y]) + _JUNCTION_OVERSHOOT * direction
    return np.vstack([coords[:-1], end[None]])


def _polygonise_blocks(outline: Polygon, streets: list[LineString]) -> list[Polygon]:
    """The faces the street network cuts the outline into; dangles (dead ends) cut nothing."""
    noded = unary_union([outline.exterior, *streets])
    faces = polygonize(shapely.get_parts(noded))
    return [f for f in shapely.get_parts(faces) if outline.contains(f.representative_point())]
