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

Every issue carries a workflow (DESIGN §5) simulated from its report to the end of ``year``;
the step-by-step history (``issue_events``) is left out above ``EVENTS_MAX_ISSUES`` issues to
keep benchmark data small, while status and closing time are still set.

Geometry is drawn in metres in a local frame (the CGCS2000 Gauss-Kruger zone of the place, see
:func:`gis.geo.crs.metric_crs_for`, shifted so the demo community's centre is the origin) and
projected to WGS84 lon/lat vertex by vertex at the end, so vertices shared by two grids stay
identical. Points that must lie strictly inside a grid are kept at least half a metre from every
grid edge, far more than the projection could move them.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from shapely import affinity
from shapely.geometry import LineString, Point, Polygon, box
from shapely.ops import nearest_points, polygonize, unary_union

from gis.db.category_seeds import FACILITY_CATEGORIES, ISSUE_CATEGORIES
from gis.db.models import FACILITY_STATUSES
from gis.geo.crs import metric_crs_for
from gis.rules import ISSUE_STATUSES

WGS84 = "EPSG:4326"
TIMEZONE = "Asia/Shanghai"
ORIGIN = (112.86, 36.84)  # lon, lat of the demo community's centre

DISTRICT_CODE, DISTRICT_NAME = "140429", "武乡县"
STREET_CODE, STREET_NAME = "140429100", "丰州镇"
COMMUNITY_CODE, COMMUNITY_NAME = "140429100001", "太东社区"

DEMO_GRIDS = 14
DEMO_COMPOUNDS = 43  # 居民楼院 (院落)
DEMO_ESTATES = 11  # 物业小区
DEMO_ISSUES = 5000
ISSUES_PER_GRID = DEMO_ISSUES / DEMO_GRIDS  # the default density, also for the city layout
MAX_GRIDS = 250_000  # street codes run 100-999: at most 900 streets of 25 communities
EVENTS_MAX_ISSUES = 200_000  # above this the per-step audit trail is left out (memory)
PEOPLE_PER_HOUSEHOLD = 2.6

# The closed loop of DESIGN §5, from the domain: generated histories must follow the same rules
# as the live workflow (tests check every generated step against TRANSITIONS).
STATUSES = ISSUE_STATUSES

CHANNELS = ("worker", "hotline_12345", "wechat", "app")

REGION_COLUMNS = ["code", "name", "level", "parent_code"]
GRID_COLUMNS = ["code", "name", "community_code", "households", "population", "worker_username"]
STREET_COLUMNS = ["name", "kind"]
COMPOUND_COLUMNS = ["name", "kind", "has_property_company", "built_year", "grid_code"]
BUILDING_COLUMNS = ["name", "compound", "floors", "households", "party_households", "grid_code"]
FACILITY_COLUMNS = ["code", "category", "name", "status", "install_date", "owner", "maintainer",
                    "grid_code"]
USER_COLUMNS = ["username", "display_name", "phone", "role", "grid_code"]
ISSUE_COLUMNS = ["client_uuid", "category", "description", "channel", "reporter_contact",
                 "reported_at", "status", "due_at", "closed_at", "grid_code", "facility_code"]
EVENT_COLUMNS = ["issue_client_uuid", "at", "actor_username", "from_status", "to_status", "note"]


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
    issues: gpd.GeoDataFrame
    issue_events: pd.DataFrame


def generate_demo(seed: int = 20221, grids: int = DEMO_GRIDS, issues: int | None = None,
                  year: int = 2025, detail: bool | None = None) -> DemoData:
    """Generate a dataset; the same arguments always give the same data.

    ``grids=14`` (the default) is the 太东社区 demo; any other count, or ``detail=False``, the city
    layout with that many grids. ``issues`` defaults to the demo's density (about 357 a grid a
    year). Issues are reported during ``year`` (Asia/Shanghai) and their workflow is seen as of
    the end of that year, so the last weeks' reports are still open.
    """
    _check_args(seed, grids, issues, year)
    n_issues = round(ISSUES_PER_GRID * grids) if issues is None else int(issues)
    if grids == DEMO_GRIDS and detail is not False:
        town = _taidong_town(seed)
        with_detail = True
    else:
        town = _city_town(seed, grids)
        with_detail = bool(detail)
    site = _build_site(town, seed, year) if with_detail else None
    return _assemble(town, site, seed, n_issues, year)


def grid_reading_order(geometries, groups=None) -> np.ndarray:
    """0-based position of each grid in reading order within its group (community).

    The rule (DESIGN §2: west to east, north to south): the group's latitude range is cut into
    ``r`` equal bands, ``r = max(1, round(sqrt(n * h / w)))`` for ``n`` grids in a group ``h`` high
    and ``w`` wide (``w`` measured along the parallel, i.e. times cos(latitude)), so bands are
    about one grid high. Grids are taken band by band from the north, and within a band from west
    to east, by the latitude and longitude of their centroids. Works on lon/lat geometries.
    """
    geoms = np.asarray(geometries, dtype=object)
    centroids = shapely.centroid(geoms)
    bounds = shapely.bounds(geoms)
    frame = pd.DataFrame({
        "group": np.zeros(len(geoms), int) if groups is None else np.asarray(groups),
        "x": shapely.get_x(centroids), "y": shapely.get_y(centroids),
        "minx": bounds[:, 0], "miny": bounds[:, 1], "maxx": bounds[:, 2], "maxy": bounds[:, 3],
    })
    ext = frame.groupby("group").agg(n=("x", "size"), minx=("minx", "min"), maxx=("maxx", "max"),
                                     miny=("miny", "min"), maxy=("maxy", "max"))
    height = ext["maxy"] - ext["miny"]
    width = (ext["maxx"] - ext["minx"]) * np.cos(np.radians((ext["maxy"] + ext["miny"]) / 2))
    rows = np.maximum(1, np.round(np.sqrt(ext["n"] * height / width))).astype(int)
    top = frame["group"].map(ext["maxy"])
    band = frame["group"].map(height / rows)
    frame["row"] = np.minimum(((top - frame["y"]) // band), frame["group"].map(rows) - 1)
    ordered = frame.sort_values(["group", "row", "x"], kind="stable")
    rank = np.empty(len(frame), dtype=int)
    rank[ordered.index.to_numpy()] = ordered.groupby("group").cumcount().to_numpy()
    return rank


def _check_args(seed, grids, issues, year) -> None:
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed should be a non-negative int, got {seed!r}")
    if not isinstance(grids, int | np.integer) or not 1 <= grids <= MAX_GRIDS:
        raise ValueError(f"grids should be an int from 1 to {MAX_GRIDS}, got {grids!r}")
    if issues is not None and (not isinstance(issues, int | np.integer) or issues < 0):
        raise ValueError(f"issues should be None or a non-negative int, got {issues!r}")
    if not isinstance(year, int | np.integer) or not 1971 <= year <= 2100:
        raise ValueError(f"year should be an int from 1971 to 2100, got {year!r}")


# ============================================================================ shared plumbing


def _rng(seed: int, stream: str) -> np.random.Generator:
    """A generator per part of the data, so that how one part draws never shifts another."""
    key = int.from_bytes(hashlib.sha256(stream.encode()).digest()[:8], "little")
    return np.random.default_rng([seed, key])


@functools.cache
def _frame() -> tuple[Transformer, float, float]:
    """(metric -> WGS84 transformer, origin easting, origin northing) of the local frame."""
    crs = metric_crs_for(ORIGIN[0])
    x0, y0 = Transformer.from_crs(WGS84, crs, always_xy=True).transform(*ORIGIN)
    return Transformer.from_crs(crs, WGS84, always_xy=True), x0, y0


def _to_lonlat(geoms) -> np.ndarray:
    """Project local-frame geometries to lon/lat, coordinate by coordinate."""
    geoms = np.asarray(geoms, dtype=object)
    if geoms.size == 0:
        return geoms
    inverse, x0, y0 = _frame()

    def project(xy: np.ndarray) -> np.ndarray:
        lon, lat = inverse.transform(xy[:, 0] + x0, xy[:, 1] + y0)
        return np.column_stack([lon, lat])

    return shapely.transform(geoms, project)


def _metres_per_degree(lat: float = ORIGIN[1]) -> tuple[float, float]:
    """(metres per degree of longitude, of latitude) near ``lat``: to size offsets in degrees."""
    phi = math.radians(lat)
    m_lat = 111_132.954 - 559.822 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi)
    m_lon = 111_412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi)
    return m_lon, m_lat


def _wobbly(points, step: float, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """Densify a control polyline and push the new vertices sideways: streets are not ruled."""
    pts = np.asarray(points, dtype=float)
    out = [pts[:1]]
    for a, b in zip(pts[:-1], pts[1:], strict=True):
        d = b - a
        length = math.hypot(*d)
        n = max(1, math.ceil(length / step))
        normal = np.array([-d[1], d[0]]) / length
        t = np.arange(1, n)[:, None] / n
        side = rng.uniform(-amplitude, amplitude, (n - 1, 1))
        out += [a + t * d + side * normal, b[None]]
    return np.vstack(out)


def _largest(geom) -> Polygon:
    """The largest polygon of a (multi)polygon result; empty Polygon if there is none."""
    parts = [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon" and not g.is_empty]
    return max(parts, key=lambda g: g.area) if parts else Polygon()


def _quota(weights: Sequence[float], total: int) -> np.ndarray:
    """Split ``total`` into integers proportional to ``weights`` (largest remainder)."""
    w = np.asarray(weights, dtype=float)
    exact = total * w / w.sum()
    counts = np.floor(exact).astype(int)
    rest = total - counts.sum()
    counts[np.argsort(-(exact - counts), kind="stable")[:rest]] += 1
    return counts


def _angle_snap(theta_deg: float) -> float:
    """A street direction folded to (-45, 45] degrees: the nearest east-west-ish frame, since
    slab blocks in north China face south whichever way the street runs."""
    return (theta_deg + 45.0) % 90.0 - 45.0


# ============================================================================ layouts


@dataclass
class _Town:
    """The layout in metres: regions, grids in code order, streets."""

    region_codes: list[str]
    region_names: list[str]
    region_levels: list[str]
    region_parents: list[str | None]
    region_geoms: np.ndarray
    grid_geoms: np.ndarray  # MultiPolygon, in code order
    grid_codes: np.ndarray
    grid_names: np.ndarray
    grid_community: np.ndarray  # community code of each grid
    grid_community_name: np.ndarray
    street_names: list[str]
    street_kinds: list[str]
    street_lines: np.ndarray
    households: np.ndarray | None = None  # set by the site (demo) or drawn (city)
    demo: bool = False


# ---------------------------------------------------------------------------- the demo


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


def _taidong_town(seed: int) -> _Town:
    """太东社区: its streets cut the community outline into 14 irregular grids."""
    rng = _rng(seed, "taidong-layout")
    outline = Polygon(_wobbly(_jitter_ring(_COMMUNITY_RING, 15.0, rng), 120.0, 6.0, rng))
    lines = _demo_streets(rng)
    blocks = _polygonise_blocks(outline, list(lines.values()))
    if len(blocks) != DEMO_GRIDS:
        raise RuntimeError(f"demo streets cut the community into {len(blocks)} blocks, "
                           f"expected {DEMO_GRIDS}")
    grid_geoms = shapely.multipolygons(blocks, indices=np.arange(len(blocks)))
    order = np.argsort(grid_reading_order(_to_lonlat(grid_geoms)))
    grid_geoms = grid_geoms[order]
    community = shapely.union_all(grid_geoms)
    town_poly = _jittered_ellipse((300, 200), 3200, 2600, 18, rng)
    county_poly = _jittered_ellipse((-2000, 3000), 21000, 19000, 36, rng)
    codes = np.array([f"{COMMUNITY_CODE}{i:03d}" for i in range(1, DEMO_GRIDS + 1)])
    return _Town(
        region_codes=[DISTRICT_CODE, STREET_CODE, COMMUNITY_CODE],
        region_names=[DISTRICT_NAME, STREET_NAME, COMMUNITY_NAME],
        region_levels=["district", "street", "community"],
        region_parents=[None, DISTRICT_CODE, STREET_CODE],
        region_geoms=shapely.multipolygons(
            [county_poly, town_poly, _largest(community)], indices=[0, 1, 2]),
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
    return _wobbly(np.column_stack([xs, ys]), 60.0, 2.0, rng)


def _demo_streets(rng: np.random.Generator) -> dict[str, LineString]:
    """Draw the demo streets in order, ending T-junction streets on the ones drawn before."""
    lines: dict[str, LineString] = {}
    for spec in _DEMO_STREETS:
        coords = _main_street(rng) if spec.kind == "main" else _wobbly(spec.points, 90.0, 6.0, rng)
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


# ---------------------------------------------------------------------------- the city

_CITY_BLOCK = (4, 4)  # lattice cells per community block (rows, cols)
_COMMUNITIES_PER_STREET = (5, 5)  # community blocks per street (街道/镇)
_EDGE_VERTICES = 3  # extra vertices on each lattice edge, jittered so no street is ruled


def _city_town(seed: int, n_grids: int) -> _Town:
    """Communities of about 14 grids on a jittered city street lattice, in streets and a county."""
    rng = _rng(seed, "city-layout")
    plan = _community_plan(n_grids, rng)
    lattice = _Lattice.draw(plan.rows * plan.block[0], plan.cols * plan.block[1], rng)
    polys, community_of = _community_grids(plan, lattice, rng)
    return _city_regions(plan, lattice, polys, community_of, rng)


@dataclass
class _Plan:
    """How many grids each community gets and where its block of lattice cells lies."""

    block: tuple[int, int]
    rows: int
    cols: int
    grids_per_community: np.ndarray


def _community_plan(n_grids: int, rng: np.random.Generator) -> _Plan:
    """About 14 grids a community; each block of 16 cells loses 0-8 cells to merges."""
    if n_grids < 8:
        block, n_comm = (1, n_grids), 1
    else:
        block = _CITY_BLOCK
        n_comm = max(round(n_grids / DEMO_GRIDS), math.ceil(n_grids / 16))
    base, extra = divmod(n_grids, n_comm)
    per = np.full(n_comm, base) + (np.arange(n_comm) < extra)
    cols = math.ceil(math.sqrt(n_comm))
    return _Plan(block, math.ceil(n_comm / cols), cols, rng.permutation(per))


@dataclass
class _Lattice:
    """A jittered street lattice; cells are built from shared edge vertices, so neighbours match
    exactly: the faces shapely.polygonize would find, without noding 10,000 cells."""

    nodes: np.ndarray  # (R+1, C+1, 2)
    h_edges: np.ndarray  # (R+1, C, k, 2): interior vertices of east-going edges
    v_edges: np.ndarray  # (R, C+1, k, 2): interior vertices of north-going edges

    @classmethod
    def draw(cls, n_rows: int, n_cols: int, rng: np.random.Generator) -> _Lattice:
        xs = np.concatenate([[0.0], np.cumsum(rng.uniform(230, 330, n_cols))])
        ys = np.concatenate([[0.0], np.cumsum(rng.uniform(200, 300, n_rows))])
        xs -= xs[-1] / 2
        ys -= ys[-1] / 2
        nodes = np.stack(np.meshgrid(xs, ys), axis=-1)
        nodes += rng.uniform(-25, 25, nodes.shape)
        h_edges = _edge_vertices(nodes[:, :-1], nodes[:, 1:], rng)
        v_edges = _edge_vertices(nodes[:-1, :], nodes[1:, :], rng)
        warp = _Warp(rng)
        return cls(warp(nodes), warp(h_edges), warp(v_edges))

    def cell_rings(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Counter-clockwise rings (n, 4k+5, 2) of cells (row from the south, col from the west)."""
        n = self.nodes
        return np.concatenate([
            n[rows, cols][:, None], self.h_edges[rows, cols],
            n[rows, cols + 1][:, None], self.v_edges[rows, cols + 1],
            n[rows + 1, cols + 1][:, None], self.h_edges[rows + 1, cols][:, ::-1],
            n[rows + 1, cols][:, None], self.v_edges[rows, cols][:, ::-1],
            n[rows, cols][:, None],
        ], axis=1)

    def street_lines(self) -> tuple[np.ndarray, np.ndarray]:
        """(east-west lines, north-south lines): each lattice line as one LineString."""
        k = self.h_edges.shape[2]
        rows, cols = self.nodes.shape[0], self.nodes.shape[1]
        ew = np.concatenate([self.nodes[:, :-1, None], self.h_edges], axis=2).reshape(rows, -1, 2)
        ew = np.concatenate([ew, self.nodes[:, -1:]], axis=1)
        v = np.swapaxes(self.v_edges, 0, 1)  # (C+1, R, k, 2)
        ns_nodes = np.swapaxes(self.nodes, 0, 1)  # (C+1, R+1, 2)
        ns = np.concatenate([ns_nodes[:, :-1, None], v], axis=2).reshape(cols, (rows - 1) * (k + 1), 2)
        ns = np.concatenate([ns, ns_nodes[:, -1:]], axis=1)
        return shapely.linestrings(ew), shapely.linestrings(ns)


class _Warp:
    """A smooth displacement of the whole plane (tens of metres over a kilometre), so that the
    lattice's streets curve like a grown town's. Its slope stays below 0.2, far too gentle to
    fold an edge over its neighbour, so the lattice keeps its topology."""

    def __init__(self, rng):
        self.amplitude = rng.uniform(30, 60, 4)
        self.wavelength = rng.uniform(900, 1800, 4)
        self.phase = rng.uniform(0, 2 * np.pi, 4)

    def __call__(self, xy: np.ndarray) -> np.ndarray:
        x, y = xy[..., 0], xy[..., 1]
        a, w, p = self.amplitude, 2 * np.pi / self.wavelength, self.phase
        dx = a[0] * np.sin(w[0] * y + p[0]) + a[1] * np.sin(w[1] * (x + y) + p[1])
        dy = a[2] * np.sin(w[2] * x + p[2]) + a[3] * np.sin(w[3] * (x - y) + p[3])
        return np.stack([x + dx, y + dy], axis=-1)


def _edge_vertices(start: np.ndarray, end: np.ndarray, rng) -> np.ndarray:
    """Interior vertices of straight-ish edges between node arrays, pushed sideways a little."""
    t = (np.arange(1, _EDGE_VERTICES + 1) / (_EDGE_VERTICES + 1))
    t = t + rng.uniform(-0.05, 0.05, (*start.shape[:-1], _EDGE_VERTICES))
    d = end - start
    length = np.linalg.norm(d, axis=-1, keepdims=True)
    normal = np.stack([-d[..., 1], d[..., 0]], axis=-1) / length
    side = rng.uniform(-8, 8, (*start.shape[:-1], _EDGE_VERTICES, 1))
    return start[..., None, :] + t[..., None] * d[..., None, :] + side * normal[..., None, :]


def _community_grids(plan: _Plan, lattice: _Lattice, rng) -> tuple[np.ndarray, np.ndarray]:
    """Grid polygons and their community index: each community's cells, some merged in pairs."""
    br, bc = plan.block
    n_comm = len(plan.grids_per_community)
    comm = np.repeat(np.arange(n_comm), br * bc)
    local = np.tile(np.arange(br * bc), n_comm)
    rows = (comm // plan.cols) * br + local // bc
    cols = (comm % plan.cols) * bc + local % bc
    cells = shapely.polygons(lattice.cell_rings(rows, cols))
    first, second = _merge_pairs(plan, rng)
    merged = shapely.union(cells[first], cells[second])
    keep = np.ones(len(cells), bool)
    keep[first] = keep[second] = False
    polys = np.concatenate([cells[keep], merged])
    community_of = np.concatenate([comm[keep], comm[first]])
    order = np.argsort(community_of, kind="stable")
    return polys[order], community_of[order]


def _merge_pairs(plan: _Plan, rng) -> tuple[np.ndarray, np.ndarray]:
    """Cell index pairs to merge so that each community has its planned number of grids.

    Each 2x2 quarter of a 4x4 block offers two dominoes of a random orientation; together they
    are eight disjoint pairs, so up to eight merges never collide. A merged grid spans two
    blocks and the side street between them, as real grids often do.
    """
    br, bc = plan.block
    size = br * bc
    firsts, seconds = [], []
    for c, n_grids in enumerate(plan.grids_per_community):
        merges = size - int(n_grids)
        if merges == 0:
            continue
        dominoes = _block_dominoes(rng) if (br, bc) == _CITY_BLOCK else []
        pick = rng.permutation(len(dominoes))[:merges]
        for i in pick:
            a, b = dominoes[i]
            firsts.append(c * size + a)
            seconds.append(c * size + b)
    return np.array(firsts, dtype=int), np.array(seconds, dtype=int)


def _block_dominoes(rng) -> list[tuple[int, int]]:
    bc = _CITY_BLOCK[1]
    out = []
    for qr in (0, 2):
        for qc in (0, 2):
            cells = [(qr + r) * bc + qc + c for r in (0, 1) for c in (0, 1)]
            if rng.random() < 0.5:  # two east-west dominoes
                out += [(cells[0], cells[1]), (cells[2], cells[3])]
            else:  # two north-south dominoes
                out += [(cells[0], cells[2]), (cells[1], cells[3])]
    return out


_NAME_CHARS_A = "东西南北中太丰安兴和平宁康乐明华新福长永文德春秋金玉青白云山河湖泉松柏桃李梅兰竹"
_NAME_CHARS_B = "阳光园林苑城庄里坊源泽田川峰台湾州岭溪桥亭关营屯堡寨口门坡塘沟坪村郊堤"


def _unique_names(n: int, suffix: str, rng) -> list[str]:
    """``n`` distinct two-character place names plus ``suffix``; numbered if the pool runs out."""
    pool = [a + b for a in _NAME_CHARS_A for b in dict.fromkeys(_NAME_CHARS_B) if a != b]
    names = [pool[i] for i in rng.permutation(len(pool))]
    return [names[i % len(names)] + (str(i // len(names) + 1) if i >= len(names) else "") + suffix
            for i in range(n)]


def _city_regions(plan: _Plan, lattice: _Lattice, polys: np.ndarray, community_of: np.ndarray,
                  rng) -> _Town:
    """Streets (街道/镇) of 5 x 5 communities in one district; codes and names for all."""
    n_comm = len(plan.grids_per_community)
    comm_geoms = _unions(polys, community_of, n_comm)
    row, col = np.arange(n_comm) // plan.cols, np.arange(n_comm) % plan.cols
    per_row = math.ceil(plan.cols / _COMMUNITIES_PER_STREET[1])
    street_block = (row // _COMMUNITIES_PER_STREET[0]) * per_row + col // _COMMUNITIES_PER_STREET[1]
    _, street_of = np.unique(street_block, return_inverse=True)
    n_streets = int(street_of.max()) + 1
    street_geoms = _unions(comm_geoms, street_of, n_streets)
    street_codes, comm_codes, grid_codes = _city_codes(street_geoms, comm_geoms, street_of,
                                                       polys, community_of)
    comm_names = np.array(_unique_names(n_comm, "社区", rng), dtype=object)
    district = shapely.convex_hull(shapely.union_all(street_geoms)).buffer(2000, quad_segs=4)
    order = np.argsort(grid_codes, kind="stable")
    grid_comm = community_of[order]
    road_names, road_kinds, road_lines = _city_roads(lattice, plan, rng)
    return _Town(
        region_codes=[DISTRICT_CODE, *street_codes.tolist(), *comm_codes.tolist()],
        region_names=[DISTRICT_NAME, *_unique_names(n_streets, "街道", rng), *comm_names],
        region_levels=["district"] + ["street"] * n_streets + ["community"] * n_comm,
        region_parents=[None] + [DISTRICT_CODE] * n_streets + street_codes[street_of].tolist(),
        region_geoms=_as_multi(np.array([district, *street_geoms, *comm_geoms], dtype=object)),
        grid_geoms=_as_multi(polys[order]), grid_codes=grid_codes[order],
        grid_names=comm_names[grid_comm] + "第" + np.array(
            [c[-2:] for c in grid_codes[order]], dtype=object) + "网格",
        grid_community=comm_codes[grid_comm], grid_community_name=comm_names[grid_comm],
        street_names=road_names, street_kinds=road_kinds, street_lines=road_lines,
    )


def _unions(geoms: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
    """The union of ``geoms`` per group 0..n-1."""
    order = np.argsort(group, kind="stable")
    starts = np.searchsorted(group[order], np.arange(n + 1))
    return np.array([shapely.union_all(geoms[order[a:b]]) for a, b in zip(starts[:-1], starts[1:],
                                                                         strict=True)],
                    dtype=object)


def _city_codes(street_geoms, comm_geoms, street_of, polys, community_of):
    """Street codes 100.., community codes 001.. per street, grid codes 001.. per community,
    each numbered in reading order (see :func:`grid_reading_order`)."""
    street_rank = grid_reading_order(_to_lonlat(street_geoms))
    street_codes = np.array([f"{DISTRICT_CODE}{100 + r:03d}" for r in street_rank], dtype=object)
    comm_rank = grid_reading_order(_to_lonlat(comm_geoms), street_of)
    comm_codes = street_codes[street_of] + np.array([f"{r + 1:03d}" for r in comm_rank],
                                                    dtype=object)
    grid_rank = grid_reading_order(_to_lonlat(polys), community_of)
    grid_codes = comm_codes[community_of] + np.array([f"{r + 1:03d}" for r in grid_rank],
                                                     dtype=object)
    return street_codes, comm_codes, grid_codes


def _city_roads(lattice: _Lattice, plan: _Plan, rng) -> tuple[list[str], list[str], np.ndarray]:
    """Every lattice line is a named road; those between communities are main roads."""
    ew, ns = lattice.street_lines()
    names = _unique_names(len(ew) + len(ns), "", rng)
    names = [n + ("路" if i < len(ew) else "街") for i, n in enumerate(names)]
    kinds = ["main" if i % plan.block[0] == 0 else "side" for i in range(len(ew))] + \
        ["main" if j % plan.block[1] == 0 else "side" for j in range(len(ns))]
    return names, kinds, np.concatenate([ew, ns])


def _as_multi(geoms: np.ndarray) -> np.ndarray:
    """Every (multi)polygon as a MultiPolygon, which the regions and grids tables hold."""
    parts, index = shapely.get_parts(geoms, return_index=True)
    return shapely.multipolygons(parts, indices=index)


# ============================================================================ the site: homes


_HALF_WIDTH = {"main": 12.0, "side": 7.5, "lane": 3.5}  # street centre line to kerb, metres
_EDGE_MARGIN = 0.5  # metres every generated point keeps from every grid edge
_LAND_SETBACK = 2.0  # pavement between the kerb and the first wall
_LANE_BETWEEN = 4.0  # half the width of the alleys between neighbouring compounds
_WORK_UNITS = ("供销社", "粮食局", "电业局", "县医院", "一中", "农机公司", "邮电局", "水利局",
               "建设银行", "农业银行", "税务局", "交通局", "林业局", "棉麻公司", "百货公司",
               "人武部", "卫生局", "教育局", "化肥厂", "运输公司", "物资局", "财政局", "法院",
               "检察院", "公路段", "煤炭公司", "食品公司", "电影公司")
_DEMO_ESTATE_NAMES = ("金地小区", "太行花园", "丰州佳苑", "东湖名邸", "锦绣家园", "阳光新城",
                      "福馨苑", "盛世华庭", "温馨家园", "长乐苑", "翰林府", "御景苑")
_ESTATE_SUFFIXES = ("花园", "家园", "佳苑", "名邸", "华庭", "新城", "雅居", "嘉园", "公馆")
_PROPERTY_COMPANIES = ("武乡县安居物业服务有限公司", "武乡县太行物业管理有限公司",
                       "山西锦华物业服务有限公司", "长治市恒泰物业管理有限公司",
                       "武乡县宏达物业服务有限公司")


class _Streets:
    """Street centre lines with their widths, and the questions the site asks of them."""

    def __init__(self, town: _Town):
        self.names = list(town.street_names)
        self.kinds = list(town.street_kinds)
        self.lines = town.street_lines
        self.half_width = np.array([_HALF_WIDTH[k] for k in self.kinds])
        self.corridors = shapely.buffer(self.lines, self.half_width, cap_style="flat")
        self.tree = shapely.STRtree(self.lines)
        self.corridor_tree = shapely.STRtree(self.corridors)

    def nearest(self, geom) -> int:
        return int(self.tree.nearest(geom))

    def direction(self, i: int, point: Point) -> float:
        """Direction (degrees from east) of street ``i`` where it passes ``point``."""
        line = self.lines[i]
        s = line.project(point)
        a = line.interpolate(max(s - 5.0, 0.0))
        b = line.interpolate(min(s + 5.0, line.length))
        return math.degrees(math.atan2(b.y - a.y, b.x - a.x))

    def facing(self, point: Point) -> float:
        """Orientation of buildings near ``point``: the nearest street's, folded to east-west."""
        return _angle_snap(self.direction(self.nearest(point), point))

    def corridors_near(self, geom):
        return shapely.union_all(self.corridors[self.corridor_tree.query(geom)])

    def in_other_corridor(self, own: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """True where a point (belonging to street ``own``) lies on another street's carriageway."""
        pts, hit = self.corridor_tree.query(shapely.points(x, y), predicate="within")
        out = np.zeros(len(x), bool)
        out[pts[hit != own[pts]]] = True
        return out


class _Grids:
    """The grids in metres, and the test every point must pass: strictly inside one grid."""

    def __init__(self, geoms: np.ndarray):
        self.geoms = geoms
        self.inner = shapely.buffer(geoms, -_EDGE_MARGIN, join_style="mitre")
        self.tree = shapely.STRtree(self.inner)
        shapely.prepare(self.inner)

    def locate(self, x, y) -> np.ndarray:
        """Index of the grid whose inner part holds each point, -1 if none."""
        x, y = np.atleast_1d(x), np.atleast_1d(y)
        out = np.full(len(x), -1)
        pts, grid = self.tree.query(shapely.points(x, y), predicate="within")
        out[pts] = grid
        return out


@dataclass
class _Site:
    """Compounds, buildings and facilities in metres (geometry columns hold metric shapes)."""

    grids: _Grids
    streets: _Streets
    compounds: pd.DataFrame
    buildings: pd.DataFrame
    facilities: pd.DataFrame


def _build_site(town: _Town, seed: int, year: int) -> _Site:
    """Cut compounds from the blocks, fill them with buildings, furnish streets and yards."""
    rng = _rng(seed, "site")
    grids = _Grids(town.grid_geoms)
    streets = _Streets(town)
    land = _grid_land(town.grid_geoms, streets)
    n_old, n_est = _compound_counts(town, land, rng)
    compounds = _draw_compounds(town, streets, land, n_old, n_est, year, rng)
    buildings = _draw_buildings(compounds, _rng(seed, "buildings"))
    compounds["households"] = buildings.groupby("compound")["households"].sum().reindex(
        compounds.index, fill_value=0).to_numpy()
    town.households = np.bincount(compounds["grid"], compounds["households"],
                                  len(town.grid_geoms)).astype(int)
    facilities = _draw_facilities(town, grids, streets, compounds, buildings, year,
                                  _rng(seed, "facilities"))
    return _Site(grids, streets, compounds, buildings, facilities)


def _grid_land(grid_geoms: np.ndarray, streets: _Streets) -> list[Polygon]:
    """What is left of each grid for homes: the blocks minus the streets and a pavement."""
    out = []
    for g in grid_geoms:
        left = g.difference(streets.corridors_near(g))
        out.append(_largest(left.buffer(-_LAND_SETBACK, join_style="mitre")))
    return out


def _compound_counts(town: _Town, land: list[Polygon], rng) -> tuple[np.ndarray, np.ndarray]:
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
    n_old = _quota(np.maximum(areas / 11_000 - 3 * n_est, 0.3), DEMO_COMPOUNDS)
    for g in np.flatnonzero(n_old + n_est == 0):  # every grid has homes
        n_old[np.argmax(n_old)] -= 1
        n_old[g] += 1
    return n_old, n_est


def _draw_compounds(town: _Town, streets: _Streets, land: list[Polygon], n_old: np.ndarray,
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
            shape = _largest(parcel.buffer(-_LANE_BETWEEN, join_style="mitre"))
            if shape.area < 800:
                shape = _largest(parcel.buffer(-1.5, join_style="mitre"))
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


def _describe_compounds(frame: pd.DataFrame, town: _Town, streets: _Streets, year: int,
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
    companies = rng.choice(_PROPERTY_COMPANIES, n)
    frame["maintainer"] = np.where(frame["has_property_company"], companies, None)


def _decade_weights(years: np.ndarray) -> np.ndarray:
    """Most 家属院 went up between the mid-1980s and late 1990s."""
    w = np.exp(-((years - 1992) / 7.0) ** 2)
    return w / w.sum()


def _compound_names(frame: pd.DataFrame, town: _Town, streets: _Streets, rng) -> list[str]:
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


def _gate(compound: Polygon, streets: _Streets) -> tuple[float, float]:
    """Where the compound's gate is: the point of its wall nearest a street."""
    street = streets.lines[streets.nearest(compound)]
    gate = nearest_points(compound.exterior, street)[0]
    return gate.x, gate.y


# ---------------------------------------------------------------------------- buildings


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


def _draw_buildings(compounds: pd.DataFrame, rng) -> pd.DataFrame:
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


# ---------------------------------------------------------------------------- facilities

_FACILITY_BY_CODE = {c.code: c for c in FACILITY_CATEGORIES}
_ISSUE_BY_CODE = {c.code: c for c in ISSUE_CATEGORIES}

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


def _draw_facilities(town: _Town, grids: _Grids, streets: _Streets, compounds: pd.DataFrame,
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


def _street_facilities(grids: _Grids, streets: _Streets, rng) -> list[dict]:
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


def _facility_states(frame: pd.DataFrame, compounds: pd.DataFrame, town: _Town, year: int,
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


# ============================================================================ people

_SURNAMES = "王李张刘陈杨赵郝贾阎武牛申段程常侯郭马梁宋韩冯董曹田任秦史乔孟白崔康"
_GIVEN = ("建国", "志强", "秀英", "丽娟", "海燕", "晓东", "文亮", "红梅", "春花", "俊峰",
          "晓敏", "玉兰", "建华", "国庆", "雪梅", "志刚", "桂芳", "卫东", "小军", "丽萍",
          "永红", "翠萍", "海军", "艳芳", "保平", "爱莲", "慧敏", "晋生", "润生", "巧玲")
_MOBILE_PREFIXES = ("134", "135", "136", "137", "138", "139", "150", "151", "152", "155", "156",
                    "158", "159", "177", "180", "186", "187", "188", "189")


def _draw_users(grid_codes: np.ndarray, rng) -> pd.DataFrame:
    """A worker per grid (worker01.. in grid code order), the community secretary and an admin.

    Phone numbers are from the 1380000xxxx block the demo reserves; names are common Shanxi
    names drawn at random, so any likeness to a real worker is chance.
    """
    n = len(grid_codes)
    width = max(2, len(str(n)))
    pool = np.array([s + g for s in _SURNAMES for g in _GIVEN], dtype=object)
    pick = rng.choice(len(pool), n + 1, replace=n + 1 > len(pool))
    usernames = [f"worker{i:0{width}d}" for i in range(1, n + 1)]
    return pd.DataFrame({
        "username": [*usernames, "leader", "admin"],
        "display_name": [*pool[pick[:n]], pool[pick[n]], "系统管理员"],
        "phone": [str(13800000000 + i) for i in range(1, n + 1)] + ["13800000000", None],
        "role": ["worker"] * n + ["leader", "admin"],
        "grid_code": [*grid_codes.tolist(), None, None],
    }, columns=USER_COLUMNS)


# ============================================================================ issues: when


# A year's reports of the demo community by category; other totals keep these proportions.
_ISSUE_MIX = {
    "garbage": 880, "parking_chaos": 800, "heating_failure": 520, "sewer_blocked": 420,
    "noise": 440, "other": 430, "streetlight_out": 360, "neighbour_dispute": 340,
    "cover_damaged": 210, "road_damaged": 200, "illegal_construction": 230,
    "elevator_failure": 170,
}
_WEEKEND_FACTOR = 0.55  # grid workers mostly patrol on weekdays; offices answer less too


@dataclass
class _Calendar:
    """The days of ``year`` and the weather and seasons that drive reports."""

    start: int  # epoch seconds of 1 January 00:00 Asia/Shanghai
    month: np.ndarray
    day: np.ndarray
    weekend: np.ndarray
    heating: np.ndarray  # 15 November - 15 March, Shanxi's heating season
    rain: np.ndarray  # how wet the last days were: 0 dry, ~1 after rain, ~2 after a storm

    @classmethod
    def of(cls, year: int, rng) -> _Calendar:
        days = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
        month, day = days.month.to_numpy(), days.day.to_numpy()
        heating = (month <= 2) | ((month == 3) & (day <= 15)) | ((month == 11) & (day >= 15)) | \
            (month == 12)
        start = int(pd.Timestamp(f"{year}-01-01", tz=TIMEZONE).timestamp())
        return cls(start, month, day, days.day_of_week.to_numpy() >= 5, heating,
                   _rain_effect(month, rng))


def _rain_effect(month: np.ndarray, rng) -> np.ndarray:
    """Rainy days of July and August (a dozen or so, a few of them storms) and the two days
    after each, when drains back up."""
    summer = np.flatnonzero((month == 7) | (month == 8))
    wet = rng.choice(summer, int(rng.integers(11, 17)), replace=False)
    amount = np.where(rng.random(len(wet)) < 0.25, 2.0, 1.0)
    effect = np.zeros(len(month))
    for lag, share in ((0, 1.0), (1, 0.6), (2, 0.3)):
        np.add.at(effect, np.minimum(wet + lag, len(month) - 1), share * amount)
    return effect


def _day_weights(category: str, cal: _Calendar) -> np.ndarray:
    """Relative chance of a report on each day: seasons, weather, weekdays."""
    m, ones = cal.month, np.ones(len(cal.month))
    start_of_heating = (m == 11) & (cal.day <= 30)  # air in the pipes, radiators cold
    season = {
        "heating_failure": np.where(cal.heating, 1.0 + 0.8 * start_of_heating + 0.3 * (m == 1),
                                    0.02),
        "sewer_blocked": 1.0 + 8.0 * cal.rain,
        "cover_damaged": 1.0 + 2.0 * cal.rain,
        "road_damaged": 1.0 + 3.0 * cal.rain + 0.8 * (m == 3),  # spring thaw breaks the asphalt
        "garbage": 1.0 + 0.3 * np.isin(m, (6, 7, 8)),
        "noise": 1.0 + 0.6 * np.isin(m, (5, 6, 7, 8, 9)),
        "illegal_construction": np.where(np.isin(m, range(4, 11)), 1.6, 0.5),
        "streetlight_out": 1.0 + 0.4 * np.isin(m, (11, 12, 1, 2)),
        "elevator_failure": 1.0 + 0.2 * np.isin(m, (6, 7, 8)),
    }.get(category, ones)
    return season * np.where(cal.weekend, _WEEKEND_FACTOR, 1.0)


_DAYTIME = (0.1, 0.05, 0.05, 0.05, 0.1, 0.2, 0.5, 1.0, 1.6, 1.8, 1.7, 1.3, 0.8, 0.8, 1.5, 1.6,
            1.5, 1.2, 0.9, 0.8, 0.6, 0.4, 0.25, 0.15)
_HOURS = {
    "noise": (1.2, 0.8, 0.4, 0.2, 0.1, 0.1, 0.3, 0.5, 0.6, 0.6, 0.6, 0.5, 0.5, 0.6, 0.6, 0.6,
              0.6, 0.7, 1.0, 1.6, 2.2, 2.4, 2.2, 1.8),
    "streetlight_out": (0.5, 0.2, 0.1, 0.1, 0.1, 0.3, 0.8, 1.2, 1.2, 1.0, 0.7, 0.5, 0.4, 0.4,
                        0.5, 0.5, 0.5, 0.7, 1.4, 2.0, 2.0, 1.7, 1.2, 0.8),
    "heating_failure": (0.3, 0.1, 0.1, 0.1, 0.2, 0.6, 1.4, 1.8, 1.6, 1.2, 1.0, 0.9, 0.8, 0.8,
                        0.9, 0.9, 1.0, 1.2, 1.6, 1.9, 1.9, 1.5, 1.0, 0.6),
}


def _report_times(kinds: np.ndarray, cal: _Calendar, rng) -> np.ndarray:
    """Epoch seconds of each report: day by the category's calendar, hour by its daily rhythm.

    ``kinds`` are positions in ``_ISSUE_MIX`` (integers are much faster than strings at 1M)."""
    out = np.empty(len(kinds), dtype=np.int64)
    for k, code in enumerate(_ISSUE_MIX):
        rows = np.flatnonzero(kinds == k)
        if len(rows) == 0:
            continue
        days = _choose(_day_weights(code, cal), len(rows), rng)
        hours = _choose(np.asarray(_HOURS.get(code, _DAYTIME)), len(rows), rng)
        out[rows] = cal.start + days * 86_400 + hours * 3_600 + rng.integers(0, 3_600, len(rows))
    return out


def _choose(weights: np.ndarray, n: int, rng) -> np.ndarray:
    """``n`` indices drawn with the given weights (inverse CDF: fast for millions)."""
    cdf = np.cumsum(weights, dtype=float)
    return np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right").clip(0, len(cdf) - 1)


_ISSUE_CODES = np.array(list(_ISSUE_MIX), dtype=object)
_DUE_HOURS = np.array([_ISSUE_BY_CODE[c].due_hours for c in _ISSUE_MIX], dtype=float)


def _issue_kinds(n: int) -> np.ndarray:
    """Category of each of ``n`` reports as a position in ``_ISSUE_MIX``, in the mix's shares."""
    return np.repeat(np.arange(len(_ISSUE_MIX)), _quota(list(_ISSUE_MIX.values()), n))


def _channels(reported: np.ndarray, rng) -> np.ndarray:
    """Grid workers report on weekday working hours; residents call 12345 or write any time."""
    local = reported + 8 * 3_600
    hour = (local % 86_400) // 3_600
    weekday = ((local // 86_400) + 3) % 7 < 5  # 1970-01-01 was a Thursday
    p_worker = np.where(weekday & (hour >= 8) & (hour < 18), 0.55, 0.08)
    u = rng.random(len(reported))
    rest = (u - p_worker) / (1 - p_worker)
    citizen = np.where(rest < 0.45, 1, np.where(rest < 0.75, 2, 3))
    return np.array(CHANNELS, dtype=object)[np.where(u < p_worker, 0, citizen)]


# ============================================================================ issues: workflow

_S = {s: i for i, s in enumerate(STATUSES)}
# The paths a case can take (status indices, -1 padded): done, rejected on intake, rejected
# after acceptance, and reworked once after failed verification.
_PATHS = np.array([
    [_S[s] for s in ("reported", "accepted", "dispatched", "in_progress", "resolved",
                     "closed")] + [-1] * 3,
    [_S["reported"], _S["rejected"]] + [-1] * 7,
    [_S["reported"], _S["accepted"], _S["rejected"]] + [-1] * 6,
    [_S[s] for s in ("reported", "accepted", "dispatched", "in_progress", "resolved",
                     "reopened", "in_progress", "resolved", "closed")],
])
_PATH_SHARES = (0.885, 0.025, 0.02, 0.07)
_STEP_SHARES = (1.0, 0.6, 2.0, 5.0, 2.0)  # Dirichlet weights: accept, dispatch, start, fix, verify


@dataclass
class _Workflow:
    path: np.ndarray  # row of _PATHS
    times: np.ndarray  # (n, 9) epoch seconds of each step; valid where the path has a status
    done: np.ndarray  # steps that happened by the end of the year

    @property
    def status(self) -> np.ndarray:
        return np.array(STATUSES, dtype=object)[_PATHS[self.path, self.done - 1]]

    def closed_at(self) -> np.ndarray:
        """Epoch seconds the case left the loop (closed or rejected), -1 while open."""
        last = _PATHS[self.path, self.done - 1]
        ended = (last == _S["closed"]) | (last == _S["rejected"])
        return np.where(ended, self.times[np.arange(len(last)), self.done - 1], -1)


def _simulate_workflow(reported: np.ndarray, due_hours: np.ndarray, as_of: int,
                       rng) -> _Workflow:
    """Each case's whole history, then cut at ``as_of`` so that recent cases are still open.

    The time to close is lognormal around 0.43 of the category's time limit, so about one case
    in ten is late; reworked cases add a second round and run late more often; one in 25 stalls
    for days to weeks at some step. Steps are at least a minute apart.
    """
    n = len(reported)
    path = _choose(np.asarray(_PATH_SHARES), n, rng)
    hours = due_hours * rng.lognormal(-0.85, 0.65, n)
    steps = hours[:, None] * rng.dirichlet(_STEP_SHARES, n)
    stalled = rng.random(n) < 0.04  # waiting for a contractor, funds or a court order
    steps[stalled, rng.integers(1, 5, stalled.sum())] += rng.uniform(3, 60, stalled.sum()) * 24
    rework = due_hours[:, None] * rng.lognormal(-1.2, 0.6, n)[:, None] * \
        rng.dirichlet((1.0, 3.0, 1.5), n)
    reject = due_hours * 0.1 * rng.lognormal(0, 0.7, n)
    dur = np.zeros((n, 8))
    dur[:, :5] = steps  # for reworked cases the fifth step is the failed verification
    dur[path == 3, 5:8] = rework[path == 3]
    dur[path == 1, 0] = reject[path == 1]
    dur[path == 2, 1] = reject[path == 2]
    seconds = np.maximum(np.round(dur * 3_600), 60).astype(np.int64)
    times = reported[:, None] + np.concatenate([np.zeros((n, 1), np.int64),
                                                np.cumsum(seconds, axis=1)], axis=1)
    valid = _PATHS[path] >= 0
    done = (valid & (times <= as_of)).sum(axis=1)
    return _Workflow(path, times, np.maximum(done, 1))


_NOTES = {
    "accepted": "核实属实，立案", "dispatched": "派遣至责任网格处置",
    "in_progress": "已到达现场，正在处置", "resolved": "处置完毕，已上传处置后照片",
    "closed": "核查通过，结案", "reopened": "核查未通过，要求返工",
}
_REPORT_NOTES = {"worker": "网格员巡查上报", "hotline_12345": "12345热线转办",
                 "wechat": "居民在社区微信群反映", "app": "居民通过APP上报"}
_REJECT_NOTES = ("重复上报，已合并处理", "不属于社区职责范围，已告知诉求人", "现场核实不属实")


def _events(uuids: np.ndarray, flow: _Workflow, channel: np.ndarray, worker: np.ndarray,
            rng) -> pd.DataFrame:
    """One row per step that happened: who moved the case from which status to which, when.

    The grid's worker reports (when the report is his), starts and resolves; the community
    secretary accepts, dispatches, verifies, rejects and sends work back. Residents' reports
    have no actor: they hold no account.
    """
    steps = np.arange(_PATHS.shape[1])
    issue, pos = np.nonzero(steps[None, :] < flow.done[:, None])
    to = _PATHS[flow.path[issue], pos]
    prev = np.where(pos > 0, _PATHS[flow.path[issue], np.maximum(pos - 1, 0)], -1)
    names = np.array(STATUSES, dtype=object)
    by_worker = np.isin(to, (_S["in_progress"], _S["resolved"])) | \
        ((to == _S["reported"]) & (channel[issue] == "worker"))
    actor = np.where(by_worker, worker[issue], "leader").astype(object)
    actor[(to == _S["reported"]) & (channel[issue] != "worker")] = None
    notes = np.array([_NOTES.get(s, "") for s in STATUSES], dtype=object)[to]
    first = to == _S["reported"]
    notes[first] = pd.Series(channel[issue[first]]).map(_REPORT_NOTES).to_numpy()
    rejected = to == _S["rejected"]
    notes[rejected] = np.array(_REJECT_NOTES, dtype=object)[
        rng.integers(0, len(_REJECT_NOTES), rejected.sum())]
    return pd.DataFrame({
        "issue_client_uuid": uuids[issue],
        "at": _timestamps(flow.times[issue, pos]),
        "actor_username": actor,
        "from_status": np.where(prev >= 0, names[np.maximum(prev, 0)], None),
        "to_status": names[to],
        "note": notes,
    }, columns=EVENT_COLUMNS)


def _timestamps(seconds: np.ndarray) -> pd.Series:
    """Epoch seconds (-1 for none) as tz-aware Asia/Shanghai timestamps (NaT for none)."""
    values = np.asarray(seconds, dtype=np.int64).astype("datetime64[s]")
    values[np.asarray(seconds) < 0] = np.datetime64("NaT")
    index = pd.DatetimeIndex(values.astype("datetime64[ns]")).tz_localize("UTC")
    return pd.Series(index.tz_convert(TIMEZONE))


def _uuids(rng, n: int) -> np.ndarray:
    """Random (version 4) UUID strings from the seeded generator, formatted with numpy."""
    raw = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    chars = np.empty((n, 32), dtype=np.uint8)
    chars[:, 0::2], chars[:, 1::2] = hexdigits[raw >> 4], hexdigits[raw & 0x0F]
    dashed = np.insert(chars, [8, 12, 16, 20], ord("-"), axis=1)
    return dashed.view("S36").ravel().astype(str).astype(object)


def _masked_phones(rng, n: int) -> np.ndarray:
    """How the hotline shows a resident's number: 139****5678."""
    prefix = np.array([p + "****" for p in _MOBILE_PREFIXES], dtype=object)
    tail = np.array([f"{i:04d}" for i in range(10_000)], dtype=object)
    return prefix[rng.integers(0, len(prefix), n)] + tail[rng.integers(0, 10_000, n)]


# ============================================================================ issues: where

# What residents and workers write, after the place ("太行街东段" + "17号路灯不亮..."), by
# category and kind of place. {label} is the facility concerned.
_TAILS: dict[tuple[str, str], tuple[str, ...]] = {
    ("streetlight_out", "facility"): ("{label}不亮，夜间行人出行不便", "{label}夜间闪烁，时亮时灭",
                                      "{label}白天常亮", "{label}灯杆倾斜，灯不亮"),
    ("cover_damaged", "facility"): ("{label}破损", "{label}缺失，存在安全隐患",
                                    "{label}松动，车辆经过有响声", "{label}下沉，与路面不平"),
    ("garbage", "facility"): ("{label}满溢，垃圾堆积未及时清运", "{label}周边散落垃圾，气味难闻",
                              "{label}旁堆放建筑垃圾"),
    ("garbage", "yard"): ("院内垃圾堆积无人清理", "院内堆放建筑垃圾", "楼道口生活垃圾堆积"),
    ("parking_chaos", "street"): ("车辆乱停乱放，影响通行", "机动车占用人行道停放",
                                  "车辆占道停放，造成拥堵", "电动车、三轮车乱停放"),
    ("parking_chaos", "yard"): ("院内车辆乱停，消防通道被占", "院内私装地锁占用车位",
                                "外来车辆进院乱停放"),
    ("heating_failure", "room"): ("暖气不热，室温不足16度", "暖气片漏水", "供暖管道漏水",
                                  "暖气不热，已持续多日", "暖气时冷时热"),
    ("elevator_failure", "unit"): ("电梯故障停运", "电梯困人，请求救援", "电梯运行有异响",
                                   "电梯门无法正常关闭"),
    ("sewer_blocked", "facility"): ("污水井堵塞，污水外溢", "污水井冒水，气味难闻",
                                    "{label}周边污水漫溢"),
    ("sewer_blocked", "unit"): ("下水道堵塞，污水外溢", "化粪池满溢", "下水管道堵塞，一楼住户家中返水"),
    ("noise", "room"): ("夜间装修噪音扰民", "楼上住户深夜噪音", "住户饲养犬只夜间吠叫扰民"),
    ("noise", "square"): ("广场舞音响声音过大", "晚间健身活动音响扰民"),
    ("noise", "street"): ("商铺高音喇叭招揽顾客，噪音扰民", "夜间烧烤摊噪音扰民", "夜间施工噪音扰民"),
    ("neighbour_dispute", "unit"): ("上下楼住户因漏水发生纠纷", "邻居因楼道堆物发生争执",
                                    "住户因停车位发生纠纷", "邻里因宠物犬发生矛盾"),
    ("illegal_construction", "side"): ("私搭乱建彩钢房", "一楼住户私自扩建小院",
                                       "占用公共绿地搭建棚子", "违规搭建储物间"),
    ("road_damaged", "street"): ("路面坑洼破损", "路面塌陷", "人行道地砖破损松动", "路沿石损坏"),
    ("road_damaged", "yard"): ("院内路面坑洼破损", "院内路面积水，无法通行"),
    ("other", "side"): ("楼道堆放杂物", "电动车飞线充电，存在安全隐患", "外墙墙皮脱落",
                        "空中线缆杂乱下垂"),
    ("other", "street"): ("流浪犬出没", "树木枝杈遮挡，存在安全隐患", "广告牌松动，存在安全隐患",
                          "占道经营"),
}
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


class _Placer:
    """Puts each demo report where such a problem happens, and says where in words.

    Rows are looked up in plain lists and arrays (not pandas) because this runs per report.
    """

    def __init__(self, site: _Site, rng):
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

    @staticmethod
    def _facility_weights(site: _Site) -> np.ndarray:
        """Broken facilities draw reports; so do covers in troubled yards and busy streets."""
        f = site.facilities
        in_yard = f["compound"].to_numpy() >= 0
        trouble = site.compounds["trouble"].to_numpy()[f["compound"].to_numpy().clip(0)]
        return np.where(f["status"].to_numpy() != "ok", 6.0, 1.0) * \
            np.where(in_yard, trouble, 1.5)

    def spots(self, category: str, n: int) -> list[_Spot]:
        shares = [w[0] for w in _WHERE[category]]
        out: list[_Spot] = []
        for (_, kind, arg), k in zip(_WHERE[category], _quota(shares, n), strict=True):
            out += [getattr(self, "_" + kind)(arg) for _ in range(k)]
        return [out[i] for i in self.rng.permutation(len(out))]

    # -- one spot of each kind --------------------------------------------------------------
    def _facility(self, categories) -> _Spot:
        pool = np.flatnonzero(np.isin(self.fac_category, categories))
        i = int(pool[_choose(self.fac_weight[pool], 1, self.rng)[0]])
        f = self.facs[i]
        x, y = self._near(f["x"], f["y"], 0.3, 2.5)
        label = f["label"] if f["category"] == "streetlight" else _SPOKEN[f["category"]]
        place = self._yard_place(f["compound"], x, y) if f["compound"] >= 0 else \
            self._street_place(f["street"], x, y)
        return _Spot(x, y, place, "facility", i, label)

    def _street(self, weights: str) -> _Spot:
        streets = self.streets
        for _ in range(200):
            i = int(_choose(self.street_weights[weights], 1, self.rng)[0])
            line, hw = streets.lines[i], streets.half_width[i]
            offset = self.rng.choice((-1, 1)) * max(1.0, hw + self.rng.uniform(-3, 3))
            x, y = _along_at(line, self.rng.uniform(0, line.length), offset)
            if self._inside(x, y) and \
                    not streets.in_other_corridor(np.array([i]), np.array([x]), np.array([y]))[0]:
                return _Spot(x, y, self._street_place(i, x, y), "street")
        raise RuntimeError("no street spot found")

    def _yard(self, weights: str) -> _Spot:
        c = int(_choose(self.compound_weights[weights], 1, self.rng)[0])
        poly = self.cps[c]["geometry"]
        minx, miny, maxx, maxy = poly.bounds
        for _ in range(500):
            x, y = self.rng.uniform(minx, maxx), self.rng.uniform(miny, maxy)
            if poly.contains(Point(x, y).buffer(1.0, quad_segs=2)) and not self._in_building(x, y):
                return _Spot(x, y, self.cps[c]["name"], "yard")
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
        b = self.blds[int(_choose(self.building_weights[weights], 1, self.rng)[0])]
        wall = self.cps[b["compound"]]["geometry"]
        for _ in range(50):
            side = int(self.rng.integers(0, 4))
            along_x = side % 2 == 0
            half = (b["length"] if along_x else b["depth"]) / 2 + self.rng.uniform(1.5, 4)
            along = self.rng.uniform(-0.4, 0.4) * (b["depth"] if along_x else b["length"])
            u, v = [(half, along), (along, half), (-half, along), (along, -half)][side]
            x, y = _from_building_frame(b, u, v)
            if wall.contains(Point(x, y).buffer(0.5, quad_segs=2)) and not self._in_building(x, y):
                return _Spot(x, y, b["compound_name"] + b["name"] + _side_of(b, x, y), "side")
        spot = self._inside_building_row(b)
        spot.kind = "side"
        return spot

    def _square(self, categories) -> _Spot:
        pool = np.flatnonzero(np.isin(self.fac_category, categories))
        f = self.facs[int(pool[self.rng.integers(0, len(pool))])]
        x, y = self._near(f["x"], f["y"], 2.0, 8.0)
        name = self.cps[f["compound"]]["name"]
        return _Spot(x, y, f"{name}{_SPOKEN[f['category']]}附近", "square")

    # -- helpers ----------------------------------------------------------------------------
    def _inside_building(self, weights: str):
        b = self.blds[int(_choose(self.building_weights[weights], 1, self.rng)[0])]
        return self._inside_building_row(b), b

    def _inside_building_row(self, b: dict) -> _Spot:
        u = self.rng.uniform(-0.4, 0.4) * b["length"]
        v = self.rng.uniform(-0.4, 0.4) * b["depth"]
        x, y = _from_building_frame(b, u, v)
        unit = int(self.rng.integers(1, b["units"] + 1))
        return _Spot(x, y, f"{b['compound_name']}{b['name']}{unit}单元", "unit")

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


def _home_weights(site: _Site) -> tuple[dict, dict]:
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


def _street_weights(site: _Site) -> dict[str, np.ndarray]:
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


def _crossings(streets: _Streets) -> list[tuple[int, str, float, float]]:
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


@dataclass
class _Reports:
    """Issues before the workflow: what, where (lon/lat points), which grid, when."""

    kind: np.ndarray  # category as a position in _ISSUE_MIX
    points: np.ndarray
    grid: np.ndarray
    description: np.ndarray
    facility_code: np.ndarray
    reported: np.ndarray


def _site_reports(site: _Site, n: int, cal: _Calendar, seed: int) -> _Reports:
    """Demo reports: each placed by its category's habits and described in words."""
    rng = _rng(seed, "issue-places")
    kinds = _issue_kinds(n)
    categories = _ISSUE_CODES[kinds]
    placer = _Placer(site, rng)
    spots = np.empty(n, dtype=object)
    for k, code in enumerate(_ISSUE_MIX):
        rows = np.flatnonzero(kinds == k)
        spots[rows] = placer.spots(code, len(rows))
    x = np.array([s.x for s in spots])
    y = np.array([s.y for s in spots])
    codes = site.facilities["code"].to_numpy()
    description = np.array([
        s.place + rng.choice(_TAILS[(c, s.kind)]).format(label=s.label)
        for c, s in zip(categories, spots, strict=True)], dtype=object)
    return _Reports(
        kind=kinds, points=_to_lonlat(shapely.points(x, y)),
        grid=site.grids.locate(x, y), description=description,
        facility_code=np.array([codes[s.facility] if s.facility >= 0 else None for s in spots],
                               dtype=object),
        reported=_report_times(kinds, cal, _rng(seed, "issue-times")),
    )


# ---------------------------------------------------------------------------- at scale

# Where a category tends to be inside a grid, for the vectorised city reports.
_BULK_MODE = {"parking_chaos": "edge", "road_damaged": "edge", "streetlight_out": "edge",
              "cover_damaged": "edge", "other": "uniform"}  # the rest: around the grid's hotspot


def _bulk_reports(town: _Town, grids_lonlat: np.ndarray, n: int, cal: _Calendar,
                  seed: int) -> _Reports:
    """City reports, all vectorised: busy grids and a hotspot (an old compound) in each grid."""
    rng = _rng(seed, "bulk-issues")
    kinds = _issue_kinds(n)
    weight = town.households * rng.lognormal(0, 0.5, len(grids_lonlat))
    weight *= np.where(rng.random(len(weight)) < 0.05, 4.0, 1.0)
    grid = _choose(weight, n, rng)
    sampler = _PointSampler(grids_lonlat, rng)
    modes = np.array([_BULK_MODE.get(c, "hotspot") for c in _ISSUE_MIX], dtype=object)[kinds]
    lon, lat = np.empty(n), np.empty(n)
    for mode in ("edge", "uniform", "hotspot"):
        rows = np.flatnonzero(modes == mode)
        lon[rows], lat[rows] = sampler.sample(grid[rows], mode)
    return _Reports(
        kind=kinds, points=shapely.points(lon, lat), grid=grid,
        description=_bulk_descriptions(town, kinds, grid, rng),
        facility_code=np.full(n, None, dtype=object),
        reported=_report_times(kinds, cal, _rng(seed, "issue-times")),
    )


class _PointSampler:
    """Random points strictly inside given grids, by rejection in their bounding boxes."""

    def __init__(self, grids: np.ndarray, rng):
        self.grids, self.rng = grids, rng
        shapely.prepare(grids)
        self.bounds = shapely.bounds(grids)
        self.m_lon, self.m_lat = _metres_per_degree()
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


def _bulk_descriptions(town: _Town, kinds: np.ndarray, grid: np.ndarray, rng) -> np.ndarray:
    """"<community>第NN网格" + a tail of the category, without per-row Python formatting."""
    places = (town.grid_names.astype(object))
    tails, owner = [], []
    generic = {"streetlight_out": "路灯", "cover_damaged": "井盖", "garbage": "垃圾桶",
               "sewer_blocked": "污水井"}
    for (code, _kind), texts in _TAILS.items():
        for text in texts:
            tails.append(text.format(label=generic.get(code, "")))
            owner.append(code)
    tails_arr, owner_arr = np.array(tails, dtype=object), np.array(owner, dtype=object)
    pick = np.empty(len(kinds), dtype=int)
    for k, code in enumerate(_ISSUE_MIX):
        rows = np.flatnonzero(kinds == k)
        options = np.flatnonzero(owner_arr == code)
        pick[rows] = options[rng.integers(0, len(options), len(rows))]
    return places[grid] + tails_arr[pick]


# ============================================================================ assembly


def _assemble(town: _Town, site: _Site | None, seed: int, n_issues: int, year: int) -> DemoData:
    grids_lonlat = _to_lonlat(town.grid_geoms)
    if town.households is None:
        rng = _rng(seed, "households")
        town.households = np.round(rng.lognormal(math.log(550), 0.45, len(grids_lonlat))).astype(int)
    users = _draw_users(town.grid_codes, _rng(seed, "users"))
    cal = _Calendar.of(year, _rng(seed, "weather"))
    if site is not None and n_issues <= EVENTS_MAX_ISSUES:
        reports = _site_reports(site, n_issues, cal, seed)
    else:
        reports = _bulk_reports(town, grids_lonlat, n_issues, cal, seed)
    issues, events = _issue_frames(reports, town, users, cal, seed)
    return DemoData(
        regions=_region_frame(town),
        grids=_grid_frame(town, grids_lonlat, users, _rng(seed, "population")),
        streets=_gdf({"name": town.street_names, "kind": town.street_kinds},
                     _to_lonlat(town.street_lines), STREET_COLUMNS),
        compounds=_compound_frame(site, town),
        buildings=_building_frame(site, town),
        facilities=_facility_frame(site, town),
        users=users, issues=issues, issue_events=events,
    )


def _gdf(columns: dict, geometry, order: list[str]) -> gpd.GeoDataFrame:
    frame = pd.DataFrame(columns, columns=order)
    geoms = gpd.GeoSeries(np.asarray(geometry, dtype=object), crs=WGS84, index=frame.index)
    return gpd.GeoDataFrame(frame, geometry=geoms, crs=WGS84)


def _region_frame(town: _Town) -> gpd.GeoDataFrame:
    """District, then streets, then communities, each by code."""
    frame = _gdf({"code": town.region_codes, "name": town.region_names,
                  "level": town.region_levels, "parent_code": town.region_parents},
                 _to_lonlat(town.region_geoms), REGION_COLUMNS)
    order = np.lexsort((frame["code"].to_numpy(dtype=str), frame["code"].str.len().to_numpy()))
    return frame.iloc[order].reset_index(drop=True)


def _grid_frame(town: _Town, grids_lonlat, users: pd.DataFrame, rng) -> gpd.GeoDataFrame:
    population = np.round(town.households * rng.uniform(2.45, 2.75, len(town.households)))
    workers = users.loc[users["role"].eq("worker"), "username"].to_numpy()
    return _gdf({"code": town.grid_codes.astype(object), "name": town.grid_names.astype(object),
                 "community_code": town.grid_community.astype(object),
                 "households": town.households.astype(int), "population": population.astype(int),
                 "worker_username": workers}, grids_lonlat, GRID_COLUMNS)


def _empty(dtypes: dict[str, str]) -> dict[str, pd.Series]:
    """Typed empty columns, so that frames without detail still concatenate and compare."""
    return {c: pd.Series(dtype=t) for c, t in dtypes.items()}


def _compound_frame(site: _Site | None, town: _Town) -> gpd.GeoDataFrame:
    if site is None:
        return _gdf(_empty({"name": "str", "kind": "str", "has_property_company": "bool",
                            "built_year": "int64", "grid_code": "str"}), [], COMPOUND_COLUMNS)
    cps = site.compounds
    return _gdf({"name": cps["name"], "kind": cps["kind"],
                 "has_property_company": cps["has_property_company"].astype(bool),
                 "built_year": cps["built_year"].astype(int),
                 "grid_code": town.grid_codes[cps["grid"]].astype(object)},
                _to_lonlat(cps["geometry"].to_numpy()), COMPOUND_COLUMNS)


def _building_frame(site: _Site | None, town: _Town) -> gpd.GeoDataFrame:
    if site is None:
        return _gdf(_empty({"name": "str", "compound": "str", "floors": "int64",
                            "households": "int64", "party_households": "int64",
                            "grid_code": "str"}), [], BUILDING_COLUMNS)
    b = site.buildings
    return _gdf({"name": b["name"], "compound": b["compound_name"], "floors": b["floors"],
                 "households": b["households"], "party_households": b["party_households"],
                 "grid_code": town.grid_codes[b["grid"]].astype(object)},
                _to_lonlat(b["geometry"].to_numpy()), BUILDING_COLUMNS)


def _facility_frame(site: _Site | None, town: _Town) -> gpd.GeoDataFrame:
    if site is None:
        return _gdf(_empty(dict.fromkeys(FACILITY_COLUMNS, "str") | {"install_date": "object"}),
                    [], FACILITY_COLUMNS)
    f = site.facilities
    points = _to_lonlat(shapely.points(f["x"].to_numpy(), f["y"].to_numpy()))
    return _gdf({c: f[c] for c in FACILITY_COLUMNS[:-1]}
                | {"grid_code": town.grid_codes[f["grid"]].astype(object)}, points,
                FACILITY_COLUMNS)


def _issue_frames(reports: _Reports, town: _Town, users: pd.DataFrame, cal: _Calendar,
                  seed: int) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Issues in order of reporting, with channels, contacts, workflow state and history."""
    rng = _rng(seed, "workflow")
    order = np.argsort(reports.reported, kind="stable")
    reported = reports.reported[order]
    kinds, grid = reports.kind[order], reports.grid[order]
    n = len(order)
    due_hours = _DUE_HOURS[kinds]
    channel = _channels(reported, rng)
    workers = users[users["role"].eq("worker")]
    worker, phone = workers["username"].to_numpy(object), workers["phone"].to_numpy(object)
    contact = np.where(channel == "worker", phone[grid], _masked_phones(rng, n))
    as_of = cal.start + len(cal.month) * 86_400 - 1
    flow = _simulate_workflow(reported, due_hours, as_of, rng)
    uuids = _uuids(rng, n)
    due = reported + np.round(due_hours * 3_600).astype(np.int64)
    issues = _gdf({
        "client_uuid": uuids, "category": _ISSUE_CODES[kinds],
        "description": reports.description[order], "channel": channel,
        "reporter_contact": contact, "reported_at": _timestamps(reported),
        "status": flow.status, "due_at": _timestamps(due),
        "closed_at": _timestamps(flow.closed_at()),
        "grid_code": town.grid_codes.astype(object)[grid],
        "facility_code": reports.facility_code[order],
    }, reports.points[order], ISSUE_COLUMNS)
    if n > EVENTS_MAX_ISSUES:
        return issues, pd.DataFrame(_empty(dict.fromkeys(EVENT_COLUMNS, "str")
                                           | {"at": f"datetime64[ns, {TIMEZONE}]"}))
    return issues, _events(uuids, flow, channel, worker[grid], rng)
