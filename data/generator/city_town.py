"""The city layout for benchmarks: communities of about 14 grids tiling a jittered city-wide
street lattice, grouped into streets (街道/镇) of 5 x 5 communities in one district.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely

from data.generator.drawing import as_multi, rng_stream
from data.generator.place import DEMO_GRIDS, DISTRICT_CODE, DISTRICT_NAME, to_lonlat
from data.generator.town import Town, grid_reading_order

_CITY_BLOCK = (4, 4)  # lattice cells per community block (rows, cols)
_COMMUNITIES_PER_STREET = (5, 5)  # community blocks per street (街道/镇)
_EDGE_VERTICES = 3  # extra vertices on each lattice edge, jittered so no street is ruled


def city_town(seed: int, n_grids: int) -> Town:
    """Communities of about 14 grids on a jittered city street lattice, in streets and a county."""
    rng = rng_stream(seed, "city-layout")
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
                  rng) -> Town:
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
    return Town(
        region_codes=[DISTRICT_CODE, *street_codes.tolist(), *comm_codes.tolist()],
        region_names=[DISTRICT_NAME, *_unique_names(n_streets, "街道", rng), *comm_names],
        region_levels=["district"] + ["street"] * n_streets + ["community"] * n_comm,
        region_parents=[None] + [DISTRICT_CODE] * n_streets + street_codes[street_of].tolist(),
        region_geoms=as_multi(np.array([district, *street_geoms, *comm_geoms], dtype=object)),
        grid_geoms=as_multi(polys[order]), grid_codes=grid_codes[order],
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
    street_rank = grid_reading_order(to_lonlat(street_geoms))
    street_codes = np.array([f"{DISTRICT_CODE}{100 + r:03d}" for r in street_rank], dtype=object)
    comm_rank = grid_reading_order(to_lonlat(comm_geoms), street_of)
    comm_codes = street_codes[street_of] + np.array([f"{r + 1:03d}" for r in comm_rank],
                                                    dtype=object)
    grid_rank = grid_reading_order(to_lonlat(polys), community_of)
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
