"""What the maps show, computed where the data is: issue aggregates, hotspots and map layers.

The leader heatmap must stay small and fast at a million issues, so nothing here returns one row
per issue. PostgreSQL aggregates the filtered issues into

* **cells** of a metric grid (a local equirectangular grid of ``cell_m`` metres, anchored at
  lon/lat 0 so a cell is the same cell under every filter), each with its issue count and the
  mean position of its issues (so a heat layer drawn from cells looks like one drawn from the
  points at any scale where a heat kernel is wider than a cell);
* **grids**: counts per current grid code (issues tagged to an older version of a grid count for
  the grid of that code), open, overdue and closed, and the rate per 1,000 households; over
  more grids than :data:`AREA_BUDGET` (a district, a city), the same counts summed per
  community, or per street above that many communities, since tens of thousands of grid
  outlines would not fit a page;
* **weeks x coarser cells** for the time animation.

Cell sizes are picked from the area in view against a budget of rows, and cells are merged 2x2
in numpy when a budget is still exceeded, so weights always add up to the issue count. Cells
are those of the database's cell grid (:class:`gis.queries.rollup.CellGrid`), and positions are
summed as integers, so that where the rollup's keys express the filter and a layer's cells are
no finer than the rollup's, the layer is read from the rollup (the whole years or weeks of
the time range) and a scan of the rest, with the very numbers a scan of everything gives.
Hotspots are Getis-Ord Gi* (PySAL esda) over the Queen contiguity of the areas drawn (grids,
communities or streets), with a permutation p-value.

Every map shows the cases of its reader's scope (docs/ARCHITECTURE.md, "People and scopes"): the
route passes a :class:`~gis.queries.reads.ScopedFilter`, whose conditions carry the scope into
every count and cell, and a leader's or dispatcher's heatmap and overview show their region's
grids only. Maps never show personal data: rows for the worker's tablet map are whitelisted
columns (no reporter contact is ever selected here) and their descriptions are masked
(:func:`gis.people.privacy.mask_text`); the issue page's own script asks the API for more.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.db.engine import tune_for_aggregates
from gis.errors import NotFound
from gis.people.privacy import mask_text
from gis.queries import rollup
from gis.queries.concurrent import side_by_side
from gis.queries.filters import IssueFilter, Where
from gis.queries.issue_model import ISSUE_FROM, select_list
from gis.queries.reads import ScopedFilter
from gis.queries.rollup import (
    COORD_UNITS,
    HEAT_CELL_BUDGET,
    MIN_CELL_M,
    MONDAY_0,
    WEEK_FACTOR,
    CellGrid,
    Scope,
    metres_per_degree,
    pick_cell_size,
    week_sql,
    week_start,
)
from gis.queries.statistics import COUNTS, counts_by_grid, with_rates

WGS84 = "EPSG:4326"
# Cell sizes the heat layer may use, in metres, are MIN_CELL_M * 2**k (gis.queries.rollup), so
# that 2x2 merging in numpy lands on another row's size exactly. HEAT_CELL_BUDGET: cells shipped
# to the page (~25 bytes each).
__all__ = ["HEAT_CELL_BUDGET", "MIN_CELL_M", "MONDAY_0", "metres_per_degree", "pick_cell_size",
           "week_start"]
WEEK_CELL_BUDGET = 12_000  # (week, cell) triplets for the animation
# The areas the heatmap draws (choropleth, hotspots, tables): its grids while they are at most
# this many, else its communities (社区), else its streets (街道/镇): a whole city's 40,000 grid
# outlines would weigh tens of megabytes; its streets' weigh a few hundred kilobytes.
AREA_BUDGET = 2_500
AREA_LEVELS = ("grid", "community", "street")
# Gi* permutations over more areas than this would cost seconds; the page then says they are left out.
HOTSPOT_BUDGET = AREA_BUDGET
HOTSPOT_ALPHA = 0.05
HOTSPOT_PERMUTATIONS = 999
HOTSPOT_SEED = 20221


# -- what a page cache keys on ------------------------------------------------------------------
def data_version(session: Session) -> tuple:
    """A value that changes whenever what the maps show may have changed.

    Cheap lookups (about a millisecond at a million issues): the newest issue, the issue edit
    counter (a trigger bumps it on deletions and in-place edits, migration 0004), the newest
    workflow event (every status change is an ``issue_events`` row), the grid version counter,
    the newest facility, building and street, and the number of grid-worker assignments.
    """
    row = session.execute(text("""
        SELECT (SELECT max(id) FROM issues), (SELECT version FROM issue_edit_state WHERE id = 1),
               (SELECT max(id) FROM issue_events),
               (SELECT version FROM grid_index_state WHERE id = 1),
               (SELECT max(updated_at) FROM facilities), (SELECT max(id) FROM buildings),
               (SELECT max(id) FROM streets), (SELECT count(*) FROM grid_workers)
    """)).one()
    return tuple(str(v) for v in row)


# -- categories ---------------------------------------------------------------------------------
def categories(session: Session, kind: str) -> pd.DataFrame:
    """Category rows (code, name_zh, name_en, icon, colour) of ``kind``."""
    rows = session.execute(text(
        "SELECT code, name_zh, name_en, icon, colour FROM categories "
        "WHERE kind = :kind ORDER BY std_code, code"), {"kind": kind}).mappings().all()
    return pd.DataFrame(rows, columns=["code", "name_zh", "name_en", "icon", "colour"])


# -- heatmap aggregates -------------------------------------------------------------------------
@dataclass
class HeatmapData:
    """Everything the leader heatmap draws, already aggregated.

    ``grids``: the areas drawn, EPSG:4326: at ``level`` "grid", the current grids in scope (code,
    name, community, households, worker, issues, open, overdue, closed, per_1000, gi_z, gi_p,
    hotspot); at "community" or "street" (more grids in view than :data:`AREA_BUDGET`), those
    regions with the same columns, every count the sum of their grids' counts (``community``:
    the region a level up; ``worker``: none), rates per 1,000 of their grids' households, and
    ``n_grids``. ``grid_count``: grids in scope. ``hotspots_left_out``: more areas than
    :data:`HOTSPOT_BUDGET` (no Gi*). ``cells``: lat, lon, weight. ``weeks``: week (Monday, ISO
    date), lat, lon, weight. ``total``: issues matching the filter; ``unassigned``: those of
    them in no grid.
    """

    filter: IssueFilter
    grids: gpd.GeoDataFrame
    cells: pd.DataFrame
    weeks: pd.DataFrame
    total: int
    unassigned: int
    cell_m: float
    week_cell_m: float
    communities: list[dict] = field(default_factory=list)
    categories: pd.DataFrame = field(default_factory=pd.DataFrame)
    level: str = "grid"
    grid_count: int = 0
    hotspots_left_out: bool = False


def heatmap_data(session: Session, flt: IssueFilter, *, cell_budget: int = HEAT_CELL_BUDGET,
                 week_budget: int = WEEK_CELL_BUDGET, hotspots: bool = True,
                 use_rollup: bool = True, area_budget: int = AREA_BUDGET) -> HeatmapData:
    """Aggregate the filtered issues for the leader heatmap (see the module text);
    ``use_rollup=False`` scans every issue (the same answer, slower); ``area_budget``: the
    most areas drawn (:data:`AREA_BUDGET`)."""
    n_grids, level = area_level(session, flt, area_budget)
    grids = grids_in_scope(session, flt, geometry=level == "grid")
    if flt.grid and grids.empty:
        raise NotFound(f"no current grid with code {flt.grid!r}",
                       zh=f"没有编码为 {flt.grid!r} 的现行网格")
    shapes = grids if level == "grid" else region_shapes(session, grids, level)
    area = _area_m2(shapes)
    parts = _where_parts(session, flt)
    tune_for_aggregates(session)
    cell_grid = rollup.cell_grid(session)
    scope = rollup.scope_of(session, flt) if use_rollup else None
    stats = counts_by_grid(session, flt, rollup=use_rollup)  # per grid, and unassigned
    total = int(stats["reported"].sum())
    unassigned = int(stats.loc[stats["code"].isna(), "reported"].sum())
    cell_m = pick_cell_size(area, min(total, cell_budget * 4) or 1, cell_budget)
    week_cell_m = pick_cell_size(area, min(total, week_budget * 4) or 1,
                                 week_budget / _n_weeks(session, parts), start=cell_m)
    cells, weeks = side_by_side(
        session, lambda s: _cell_layer(s, flt, parts, scope, cell_grid, cell_m),
        lambda s: _cell_layer(s, flt, parts, scope, cell_grid, week_cell_m, weeks=True))
    cells = coarsen_to_budget(cells, cell_m, cell_budget, units=COORD_UNITS)
    cell_m = cells.attrs["cell_m"]
    weeks, week_cell_m = _coarsen_weeks(weeks, week_cell_m, week_budget)
    grids = _join_stats(grids, stats[stats["code"].notna()])
    if level != "grid":
        grids = sum_by_area(grids, shapes, level)
    left_out = hotspots and len(grids) > HOTSPOT_BUDGET
    if hotspots and not left_out:
        grids = add_hotspots(grids)
    return HeatmapData(flt, grids, cells, weeks, total, unassigned, cell_m, week_cell_m,
                       communities=communities(session), categories=categories(session, "issue"),
                       level=level, grid_count=n_grids, hotspots_left_out=left_out)


def area_level(session: Session, flt: IssueFilter, budget: int = AREA_BUDGET) -> tuple[int, str]:
    """(grids in scope, the finest of :data:`AREA_LEVELS` with at most ``budget`` areas there).
    Streets only when every grid's community lies in a street, so that no grid's counts are
    left out of the sums."""
    conds, params = _grid_conds(flt)
    n_grids, n_comm, no_street = session.execute(text(f"""
        SELECT count(*), count(DISTINCT g.community_id), count(*) FILTER (WHERE s.id IS NULL)
          FROM grids g JOIN regions c ON c.id = g.community_id
          LEFT JOIN regions s ON s.id = c.parent_id AND s.level = 'street'
         WHERE {' AND '.join(conds)}"""), params).one()
    if n_grids <= budget:
        return n_grids, "grid"
    return n_grids, "community" if n_comm <= budget or no_street else "street"


def region_shapes(session: Session, grids: pd.DataFrame, level: str) -> gpd.GeoDataFrame:
    """The outlines of the communities (``level`` "community") or streets of ``grids``: code,
    name, ``community`` (the name of the region a level up)."""
    key = f"{level}_code"
    sql = """SELECT r.code, r.name, p.name AS community, ST_AsBinary(r.geom) AS wkb
               FROM regions r LEFT JOIN regions p ON p.id = r.parent_id
              WHERE r.level = :level AND r.code = ANY(:codes) ORDER BY r.code"""
    codes = sorted(grids[key].dropna().unique().tolist())
    rows = session.execute(text(sql), {"level": level, "codes": codes}).mappings().all()
    return _frame(rows, ["code", "name", "community"])


_AREA_SUMS = ("households", "population", "issues", *[c for c in COUNTS if c != "reported"])


def sum_by_area(grids: gpd.GeoDataFrame, shapes: gpd.GeoDataFrame, level: str) -> gpd.GeoDataFrame:
    """``shapes`` (:func:`region_shapes`) with their grids' counts and households summed, rates
    worked out again from the sums, ``worker`` none and ``n_grids`` their grids."""
    key = f"{level}_code"
    sums = (pd.DataFrame(grids.drop(columns="geometry", errors="ignore"))
            .groupby(key)[list(_AREA_SUMS)].sum(min_count=0))
    sums["n_grids"] = grids.groupby(key).size()
    out = shapes.merge(sums.reset_index().rename(columns={key: "code"}), on="code", how="left")
    out = with_rates(out.rename(columns={"issues": "reported"}))
    out = out.rename(columns={"reported": "issues", "per_1000_households": "per_1000"})
    out["worker"] = None
    out["n_grids"] = out["n_grids"].fillna(0).astype("int64")
    return gpd.GeoDataFrame(out, geometry="geometry", crs=WGS84)


def grids_in_scope(session: Session, flt: IssueFilter, *,
                   geometry: bool = True) -> gpd.GeoDataFrame:
    """Current grids of the filter's community (the grid's community when a grid is given; all
    grids otherwise), within the region of a leader or dispatcher reading through a
    :class:`ScopedFilter`, with households, community (name and code), street code and the
    first worker's display name; outlines and workers unless ``geometry`` is False (grids
    summed into areas: :func:`sum_by_area`)."""
    conds, params = _grid_conds(flt)
    shape = ", ST_AsBinary(g.geom)" if geometry else ""
    worker = ("""(SELECT u.display_name FROM grid_workers gw JOIN users u ON u.id = gw.user_id
                   WHERE gw.grid_code = g.code ORDER BY u.username LIMIT 1)""" if geometry
              else "NULL::text")
    sql = f"""
        SELECT g.id, g.code, g.name, c.name AS community, c.code AS community_code,
               s.code AS street_code, g.households, g.population, {worker} AS worker{shape}
          FROM grids g JOIN regions c ON c.id = g.community_id
          LEFT JOIN regions s ON s.id = c.parent_id AND s.level = 'street'
         WHERE {' AND '.join(conds)} ORDER BY g.code"""
    columns = ["id", "code", "name", "community", "community_code", "street_code", "households",
               "population", "worker"]
    rows = session.execute(text(sql), params).all()
    # Plain tuples into the frame: a mapping per row costs more than the query at 40,000 grids.
    if not geometry:
        frame, geoms = rollup.frame_of(rows, columns), None
    else:
        frame = rollup.frame_of([tuple(r)[:-1] for r in rows], columns)
        geoms = shapely.from_wkb([bytes(r[-1]) for r in rows])
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(
        [None] * len(frame) if geoms is None else geoms, crs=WGS84), crs=WGS84)


def _grid_conds(flt: IssueFilter) -> tuple[list[str], dict]:
    """The conditions on ``grids g JOIN regions c`` (its community) of :func:`grids_in_scope`."""
    conds, params = ["g.valid_to IS NULL"], {}
    region = flt.region_grids() if isinstance(flt, ScopedFilter) else None
    if region is not None:
        conds.append("g.code = ANY(:region_grids)")
        params["region_grids"] = sorted(region)
    if flt.community:
        conds.append("(c.name = :community OR c.code = :community)")
        params["community"] = flt.community
    if flt.grid:
        conds.append("g.community_id = (SELECT community_id FROM grids WHERE code = :grid "
                     "AND valid_to IS NULL)")
        params["grid"] = flt.grid
    return conds, params


def _frame(rows, columns: list[str], wkb: str = "wkb") -> gpd.GeoDataFrame:
    frame = pd.DataFrame([{c: r[c] for c in columns} for r in rows], columns=columns)
    geoms = shapely.from_wkb([bytes(r[wkb]) for r in rows]) if rows else []
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=WGS84), crs=WGS84)


def _area_m2(grids: gpd.GeoDataFrame) -> float:
    """Area of the grids' bounding box in m², the upper bound on cells a filter can fill."""
    if grids.empty:
        return 1e6
    minx, miny, maxx, maxy = grids.total_bounds
    m_lon, m_lat = metres_per_degree((miny + maxy) / 2)
    return max((maxx - minx) * m_lon * (maxy - miny) * m_lat, 1.0)


_CELL_TYPES = {"week": "int64", "cx": "int64", "cy": "int64", "weight": "int64", "sx": "int64",
               "sy": "int64"}


def _where_parts(session: Session, flt: IssueFilter) -> list[Where]:
    """The filter's cases as disjoint conditions (:meth:`ScopedFilter.where_parts`): the scans
    below sum over them, and a region's grids are then read from ``issues_grid_time_idx``
    alone."""
    if isinstance(flt, ScopedFilter):
        return flt.where_parts(session)
    return [flt.where(session)]


def _cell_layer(session: Session, flt: IssueFilter, parts: list[Where], scope: Scope | None,
                grid: CellGrid, cell_m: float, *, weeks: bool = False) -> pd.DataFrame:
    """The heat cells (``weeks``: the (week, cell) sums) of ``cell_m`` metres: from the rollup
    where ``scope`` (:func:`gis.queries.rollup.scope_of`) takes in every grid and the cells are
    no finer than the rollup's, and from a scan of the time range's partial buckets; from a
    scan of everything otherwise."""
    shift = None
    if scope is not None and scope.everywhere:
        shift = grid.shift(cell_m, WEEK_FACTOR if weeks else 1)
    buckets = None
    if shift is not None:
        buckets = rollup.whole_buckets("week" if weeks else "year", flt)
    if buckets is None:
        return _scan_cells(session, parts, grid, cell_m, weeks=weeks)
    layers = [rollup.cell_sums(session, scope, buckets, shift, weeks=weeks)]
    outside = buckets.outside_sql("i")
    if outside:
        _, params = buckets.inside_sql("i")
        rest = [Where([*w.clauses, f"({' OR '.join(outside)})"], w.params | params) for w in parts]
        layers.append(_scan_cells(session, rest, grid, cell_m, weeks=weeks))
    keys = ["week", "cx", "cy"] if weeks else ["cx", "cy"]
    return _summed(layers, keys)


def _summed(layers: list[pd.DataFrame], keys: list[str]) -> pd.DataFrame:
    """The cell sums of ``layers`` added up per cell (``keys``)."""
    frame = pd.concat([p for p in layers if not p.empty] or layers[:1], ignore_index=True)
    return (frame.groupby(keys, as_index=False)[["weight", "sx", "sy"]].sum()
            .astype({k: v for k, v in _CELL_TYPES.items() if k in frame}))


def _scan_cells(session: Session, parts: list[Where], grid: CellGrid, cell_m: float, *,
                weeks: bool = False) -> pd.DataFrame:
    """(cell, weight, sx, sy) sums of the located issues (a report waiting for its photo's
    position is counted with the unassigned, and has no cell), with ``week`` first for
    ``weeks``; positions in :data:`~gis.queries.rollup.COORD_UNITS`, as the rollup sums them.
    ``parts`` are disjoint conditions (:func:`_where_parts`), scanned in turn and summed."""
    dx, dy = grid.steps(cell_m)
    lead = f"{week_sql('i')} AS week, " if weeks else ""
    groups = "1, 2, 3" if weeks else "1, 2"
    columns = (["week"] if weeks else []) + ["cx", "cy", "weight", "sx", "sy"]
    layers = []
    for where in parts:
        sql = f"""
            SELECT {lead}floor(i.lon / :dx)::bigint AS cx, floor(i.lat / :dy)::bigint AS cy,
                   count(*) AS weight, sum({rollup.units_sql('i', 'lon')})::bigint AS sx,
                   sum({rollup.units_sql('i', 'lat')})::bigint AS sy
              FROM issues i WHERE {where.sql} AND i.lon IS NOT NULL GROUP BY {groups}"""
        rows = session.execute(text(sql), where.params | {"dx": dx, "dy": dy}).all()
        layers.append(rollup.frame_of(rows, columns).astype({c: _CELL_TYPES[c] for c in columns}))
    if len(layers) == 1:
        return layers[0]
    return _summed(layers, columns[:-3])


def coarsen_to_budget(cells: pd.DataFrame, cell_m: float, budget: int,
                      units: float = 1) -> pd.DataFrame:
    """Merge cells 2x2 until at most ``budget`` remain; return lat, lon (weighted mean position,
    ``sx``, ``sy`` being sums in ``units`` per degree), weight, with ``attrs['cell_m']`` the
    final size, heaviest first (then by cell). Weights are summed, never dropped."""
    while len(cells) > budget:
        cells = (cells.assign(cx=cells["cx"] // 2, cy=cells["cy"] // 2)
                 .groupby(["cx", "cy"], as_index=False)[["weight", "sx", "sy"]].sum())
        cell_m *= 2
    cells = cells.sort_values(["weight", "cx", "cy"], ascending=[False, True, True],
                              ignore_index=True)
    out = pd.DataFrame({"lat": cells["sy"] / cells["weight"] / units,
                        "lon": cells["sx"] / cells["weight"] / units,
                        "weight": cells["weight"].astype("int64")})
    out.attrs["cell_m"] = cell_m
    return out


def _n_weeks(session: Session, parts: list[Where]) -> int:
    """Calendar weeks the filtered issues (the disjoint ``parts``) span (at most one more than
    whole weeks)."""
    spans = [session.execute(text(
        f"SELECT min(i.reported_at), max(i.reported_at) FROM issues i WHERE {where.sql}"),
        where.params).one() for where in parts]
    firsts = [f for f, _ in spans if f is not None]
    if not firsts:
        return 1
    first, last = min(firsts), max(la for _, la in spans if la is not None)
    return int((last - first).days // 7 + 2)


def _coarsen_weeks(weeks: pd.DataFrame, cell_m: float, budget: int) -> tuple[pd.DataFrame, float]:
    while len(weeks) > budget:
        weeks = (weeks.assign(cx=weeks["cx"] // 2, cy=weeks["cy"] // 2)
                 .groupby(["week", "cx", "cy"], as_index=False)[["weight", "sx", "sy"]].sum())
        cell_m *= 2
    weeks = weeks.sort_values(["week", "weight", "cx", "cy"], ascending=[True, False, True, True],
                              ignore_index=True)
    starts = {k: week_start(k).isoformat() for k in set(weeks["week"].tolist())}
    out = pd.DataFrame({"week": weeks["week"].map(starts),
                        "lat": weeks["sy"] / weeks["weight"] / COORD_UNITS,
                        "lon": weeks["sx"] / weeks["weight"] / COORD_UNITS,
                        "weight": weeks["weight"].astype("int64")})
    return out, cell_m


def _join_stats(grids: gpd.GeoDataFrame, stats: pd.DataFrame) -> gpd.GeoDataFrame:
    """The grids with the statistics' counts and rates (:func:`gis.queries.statistics.with_rates`),
    named as the heatmap shows them (``issues`` reported, ``per_1000`` households)."""
    out = with_rates(grids.merge(stats, on="code", how="left"))
    return out.rename(columns={"reported": "issues", "per_1000_households": "per_1000"})


# -- hotspots -----------------------------------------------------------------------------------
def add_hotspots(grids: gpd.GeoDataFrame, value: str = "issues", *, alpha: float = HOTSPOT_ALPHA,
                 permutations: int = HOTSPOT_PERMUTATIONS, seed: int = HOTSPOT_SEED) -> gpd.GeoDataFrame:
    """Add Getis-Ord Gi* columns: ``gi_z`` (z-score), ``gi_p`` (pseudo p-value from conditional
    permutations, one-sided in the direction of z) and ``hotspot`` (z > 0 and p <= alpha).

    Neighbours are Queen contiguity (grids sharing an edge or a corner), binary weights, the grid
    itself included (the "star"): a hotspot is a grid whose neighbourhood has significantly more
    issues than the grids overall. Fewer than 3 grids, or grids with no neighbour, get no
    verdict (NaN, not a hotspot).
    """
    if not isinstance(grids, gpd.GeoDataFrame):
        raise TypeError(f"'grids' should be a GeoDataFrame, got {type(grids)}")
    out = grids.copy()
    out["gi_z"], out["gi_p"], out["hotspot"] = np.nan, np.nan, False
    values = out[value].to_numpy(dtype=float)
    if len(out) < 3 or np.allclose(values, values[0]):
        return out
    z, p = _gi_star(out, values, permutations, seed)
    out["gi_z"], out["gi_p"] = np.round(z, 3), np.round(p, 4)
    out["hotspot"] = (z > 0) & (p <= alpha)
    return out


def _gi_star(grids: gpd.GeoDataFrame, values: np.ndarray, permutations: int,
             seed: int) -> tuple[np.ndarray, np.ndarray]:
    import warnings

    from esda.getisord import G_Local
    from libpysal.weights import W

    neighbours = queen_neighbours(grids.geometry.values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # islands and float warnings: handled below
        w = W(neighbours, id_order=list(range(len(grids))), silence_warnings=True)
        w.transform = "B"
        g = G_Local(values, w, star=True, permutations=permutations, seed=seed,
                    keep_simulations=False, transform="B", n_jobs=1)
    z = np.asarray(g.Zs, dtype=float)
    p = np.asarray(g.p_sim if permutations else g.p_norm, dtype=float)
    islands = np.array([not neighbours[i] for i in range(len(grids))])
    z[islands], p[islands] = np.nan, np.nan
    return z, p


def queen_neighbours(geoms: np.ndarray) -> dict[int, list[int]]:
    """Queen contiguity of polygons: position -> positions of the polygons it shares a boundary
    point with (an edge or only a corner). Grids form a coverage (no overlaps), so "intersects"
    is exactly that; an STRtree query does it for 1,000 grids in milliseconds, where PySAL's
    ``Queen.from_dataframe`` walks every vertex in Python (a fifth of a second)."""
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    neighbours: dict[int, list[int]] = {i: [] for i in range(len(geoms))}
    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        if a != b:
            neighbours[a].append(b)
    return neighbours


# -- the overview ----------------------------------------------------------------------------------
def communities(session: Session) -> list[dict]:
    """Communities (code, name) with current grids, for filter forms."""
    rows = session.execute(text("""
        SELECT DISTINCT c.code, c.name FROM regions c JOIN grids g ON g.community_id = c.id
         WHERE g.valid_to IS NULL ORDER BY c.code""")).mappings().all()
    return [dict(r) for r in rows]


@dataclass
class OverviewData:
    """``communities``: code, name, outline; ``grids``: code, name, community, worker,
    households and the statistics' counts and rates (open, overdue, on_time_rate...)."""

    communities: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame


def overview_data(session: Session, flt: IssueFilter | None = None) -> OverviewData:
    """Every community's outline, and the grids with the counts of the issues ``flt`` takes in
    (all of them by default; a :class:`ScopedFilter` for a reader's scope)."""
    comm = session.execute(text("""
        SELECT c.code, c.name, p.name AS street, ST_AsBinary(c.geom) AS wkb
          FROM regions c LEFT JOIN regions p ON p.id = c.parent_id
         WHERE c.level = 'community' ORDER BY c.code""")).mappings().all()
    flt = flt if flt is not None else IssueFilter()
    grids = _join_stats(grids_in_scope(session, flt), counts_by_grid(session, flt))
    return OverviewData(_frame(comm, ["code", "name", "street"]), grids)


# -- the worker's grid map --------------------------------------------------------------------------
# The fields of an open issue that the tablet map shows (from the one issue read model). Maps never
# show personal data: no personal field (gis.queries.issue_model.PERSONAL_FIELDS) is among them,
# and the description is masked.
ISSUE_MAP_COLUMNS = ("id", "category", "description", "status", "priority", "reported_at",
                     "due_at", "assignment", "overdue")


@dataclass
class GridMapData:
    """One grid and what a worker needs around it, all EPSG:4326.

    ``grid``: one row (code, name, community, households, population, worker);
    ``neighbours``: the grids touching it; ``buildings``: name, compound, floors, households;
    ``facilities``: code, category, name, status; ``issues``: the open issues of the grid in the
    reader's scope (:data:`ISSUE_MAP_COLUMNS` only, descriptions masked); ``streets`` and
    ``community`` outline for context.
    """

    grid: gpd.GeoDataFrame
    neighbours: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    issues: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame
    community: gpd.GeoDataFrame
    facility_categories: pd.DataFrame
    issue_categories: pd.DataFrame


def grid_map_data(session: Session, code: str, scope: IssueFilter | None = None) -> GridMapData:
    """Grid ``code`` and its surroundings; its open issues as ``scope`` takes them in (every one
    by default; a :class:`ScopedFilter` for a reader's scope), whatever its own grid and status
    conditions."""
    grid = _grid_rows(session, "g.code = :code", {"code": code})
    if grid.empty:
        raise NotFound(f"no current grid with code {code!r}", zh=f"没有编码为 {code!r} 的现行网格")
    gid = int(grid["id"].iloc[0])
    neighbours = _grid_rows(session, """g.code <> :code AND ST_Intersects(g.geom,
        (SELECT geom FROM grids WHERE id = :gid))""", {"code": code, "gid": gid})
    near = "ST_DWithin(x.geom, (SELECT geom FROM grids WHERE id = :gid), 0.0005)"
    buildings = _rows(session, f"""
        SELECT x.id, x.name, c.name AS compound, x.floors, x.households, x.party_households,
               ST_AsBinary(x.geom) AS wkb
          FROM buildings x LEFT JOIN compounds c ON c.id = x.compound_id
         WHERE x.grid_id = :gid OR (x.grid_id IS NULL AND {near}) ORDER BY x.name""",
                      {"gid": gid}, ["id", "name", "compound", "floors", "households",
                                     "party_households"])
    facilities = _rows(session, f"""
        SELECT x.id, x.code, x.category, x.name, x.status, ST_AsBinary(x.geom) AS wkb
          FROM facilities x WHERE x.grid_id = :gid OR (x.grid_id IS NULL AND {near})
         ORDER BY x.code""", {"gid": gid}, ["id", "code", "category", "name", "status"])
    where = replace(scope or IssueFilter(), grid=code, statuses=("open",)).where(session)
    issues = _rows(session, f"""
        SELECT {select_list(ISSUE_MAP_COLUMNS, geometry="wkb")} FROM {ISSUE_FROM}
         WHERE {where.sql} ORDER BY i.reported_at DESC, i.id DESC""",
                   where.params, list(ISSUE_MAP_COLUMNS))
    issues["description"] = issues["description"].map(mask_text)
    streets = _rows(session, """
        SELECT x.name, x.kind, ST_AsBinary(x.geom) AS wkb FROM streets x
         WHERE ST_DWithin(x.geom, (SELECT geom FROM grids WHERE id = :gid), 0.003)""",
                    {"gid": gid}, ["name", "kind"])
    community = _rows(session, """
        SELECT c.code, c.name, ST_AsBinary(c.geom) AS wkb FROM regions c
         WHERE c.id = (SELECT community_id FROM grids WHERE id = :gid)""", {"gid": gid},
                      ["code", "name"])
    return GridMapData(grid, neighbours, buildings, facilities, issues, streets, community,
                       categories(session, "facility"), categories(session, "issue"))


def _grid_rows(session: Session, cond: str, params: dict) -> gpd.GeoDataFrame:
    return _rows(session, f"""
        SELECT g.id, g.code, g.name, c.name AS community, g.households, g.population,
               (SELECT u.display_name FROM grid_workers gw JOIN users u ON u.id = gw.user_id
                 WHERE gw.grid_code = g.code ORDER BY u.username LIMIT 1) AS worker,
               ST_AsBinary(g.geom) AS wkb
          FROM grids g JOIN regions c ON c.id = g.community_id
         WHERE g.valid_to IS NULL AND {cond} ORDER BY g.code""", params,
                 ["id", "code", "name", "community", "households", "population", "worker"])


def _rows(session: Session, sql: str, params: dict, columns: list[str]) -> gpd.GeoDataFrame:
    return _frame(session.execute(text(sql), params).mappings().all(), columns)


def warm_up() -> None:
    """Import the hotspot statistics now: PySAL takes seconds to import, which the first
    heatmap request should not pay. Safe to call from a background thread."""
    import esda.getisord  # noqa: F401
    import libpysal.weights  # noqa: F401
