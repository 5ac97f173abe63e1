"""Quality checks of a community's grids: they should tile the community with no overlap or gap.

``check_grids`` finds

- ``invalid``: grids GEOS calls invalid (with its reason) or that have no geometry;
- ``overlap``: area claimed by two grids;
- ``gap``: area of a community no grid covers (without community polygons: holes in the union of
  a community's grids that no other grid fills);
- ``outside``: area of a grid lying outside its community's polygon;
- ``sliver``: a thin piece, narrower than ``sliver_max_width_m``: a thin grid or part of a grid, or
  a gap, overlap or outside piece that thin (a digitising slip rather than a planning mistake);
- ``no_community``: a grid whose community is missing or not among the community polygons.

The overlay runs in the data's own lon/lat coordinates, where the boundaries were drawn (and where
PostGIS compares them), so vertices shared by neighbouring grids stay shared; each resulting piece
is then measured in metres in the CGCS2000 Gauss-Kruger zone of the place
(:func:`gis.geo.crs.metric_crs_for`). Pieces smaller than the minimum areas are floating-point dust and
ignored, so a correct tiling reports nothing.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass, field
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Transformer

from gis.geo.crs import metric_crs_for

PROBLEM_KINDS = ("invalid", "overlap", "gap", "outside", "sliver", "no_community")
PROBLEM_COLUMNS = ("kind", "grid_codes", "community", "area_m2", "detail")
WGS84 = "EPSG:4326"

_NEIGHBOUR_DISTANCE_DEG = 1e-7  # about 1 cm: grids this close to a gap piece are named with it
_MEASURE_SEGMENT_DEG = 1e-4  # about 10 m: edges are split this fine before being projected
_TABLE_DETAIL_WIDTH = 70


class _Problem(NamedTuple):
    kind: str
    grid_codes: list[str]
    community: str | None
    geometry: object  # shapely geometry in EPSG:4326, or None
    detail: str


@dataclass(frozen=True)
class _Limits:
    sliver_max_width_m: float
    min_gap_area_m2: float
    min_overlap_area_m2: float


@dataclass
class TopologyReport:
    """The problems ``check_grids`` found, one row per piece, geometry in EPSG:4326.

    ``problems`` columns: ``kind`` (one of :data:`PROBLEM_KINDS`), ``grid_codes`` (list of the grid
    codes involved: one grid, an overlapping pair, or the grids bordering a gap), ``community``,
    ``area_m2``, ``detail`` (a sentence for people) and ``geometry``.
    """

    problems: gpd.GeoDataFrame
    grid_count: int = 0
    metric_crs: str = ""
    limits: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return len(self.problems) == 0

    def counts(self) -> dict[str, int]:
        """Number of problems of each kind, every kind listed (zeros included)."""
        return {kind: int((self.problems["kind"] == kind).sum()) for kind in PROBLEM_KINDS}

    def to_table(self) -> str:
        """A plain-text table for the terminal (CJK names kept aligned)."""
        if self.ok:
            return f"No problems in {self.grid_count} grids."
        found = ", ".join(f"{kind} {n}" for kind, n in self.counts().items() if n)
        rows = [["kind", "grids", "community", "area m2", "detail"]]
        rows += [_table_row(problem) for problem in self.problems.itertuples(index=False)]
        return f"{len(self.problems)} problems in {self.grid_count} grids: {found}\n" + _render(
            rows
        )

    def to_geojson(self) -> str:
        """The problems as a GeoJSON FeatureCollection (RFC 7946: WGS84 lon/lat)."""
        return self.problems.to_json(drop_id=True, ensure_ascii=False)


def check_grids(
    grids: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame | None = None,
    *,
    sliver_max_width_m: float = 2.0,
    min_gap_area_m2: float = 0.01,
    min_overlap_area_m2: float = 0.01,
) -> TopologyReport:
    """Check that each community's grids tile it: see the module docstring for what is reported.

    ``grids`` needs ``code`` and ``community_code`` (matched to ``communities.code``) or
    ``community`` (matched to ``communities.name``, else ``communities.code``). ``communities``,
    if given, needs ``code`` and ``name``. Both should be in EPSG:4326 (other CRSs are converted).

    ``min_gap_area_m2`` is the smallest gap piece reported; ``min_overlap_area_m2`` the smallest
    overlap, outside piece or sliver part of a grid. A piece narrower than ``sliver_max_width_m``
    (estimated as the width of the rectangle with the piece's area and perimeter) is a sliver.
    """
    grids = _checked_frame(grids, "grids", ("code",))
    key_column = _community_column(grids)
    if communities is not None:
        communities = _checked_frame(communities, "communities", ("code", "name"))
    limits = _Limits(float(sliver_max_width_m), float(min_gap_area_m2), float(min_overlap_area_m2))
    if min(limits.sliver_max_width_m, limits.min_gap_area_m2, limits.min_overlap_area_m2) < 0:
        raise ValueError(f"widths and areas should be >= 0, got {limits}")
    metric = metric_crs_for(_centre_lon(grids, communities))
    problems = _GridChecker(grids, key_column, communities, metric, limits).run()
    return TopologyReport(_problem_frame(problems, metric), len(grids), metric, vars(limits))


def _checked_frame(frame, name: str, columns: tuple[str, ...]) -> gpd.GeoDataFrame:
    if not isinstance(frame, gpd.GeoDataFrame):
        raise TypeError(f"'{name}' should be GeoDataFrame, got {type(frame).__name__}")
    if frame.crs is None:
        raise ValueError(f"'{name}' should have a CRS (EPSG:4326), got none")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"'{name}' should have columns {list(columns)}, missing {missing}")
    return frame.to_crs(WGS84).reset_index(drop=True)


def _community_column(grids: gpd.GeoDataFrame) -> str:
    for column in ("community_code", "community"):
        if column in grids.columns:
            return column
    raise ValueError(
        f"'grids' should have a 'community_code' or 'community' column, got {list(grids.columns)}"
    )


def _centre_lon(grids: gpd.GeoDataFrame, communities: gpd.GeoDataFrame | None) -> float:
    """Middle longitude of everything given (its metric CRS is the zone the checks measure in)."""
    bounds = np.array([f.total_bounds for f in (grids, communities) if f is not None])
    west, east = np.nanmin(bounds[:, 0]), np.nanmax(bounds[:, 2])
    return float((west + east) / 2) if np.isfinite(west + east) else 0.0


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class _GridChecker:
    """One run of the checks; holds the repaired grid geometries and the community lookup."""

    def __init__(self, grids, key_column, communities, metric_crs, limits):
        self.limits = limits
        self.metric_crs = metric_crs
        self.codes = [_text(c) or f"(row {i + 1})" for i, c in enumerate(grids["code"])]
        self.keys = [_text(k) for k in grids[key_column]]
        self.raw = grids.geometry.to_numpy()
        self.geoms = np.array([_polygonal(g) for g in self.raw], dtype=object)
        self.tree = shapely.STRtree(self.geoms)
        self.labels, self.areas, self.area_problems = _community_lookup(
            communities, key_column, set(self.keys)
        )

    @functools.cached_property
    def all_grids(self):
        return shapely.union_all(self.geoms)

    def run(self) -> list[_Problem]:
        return [
            *self.area_problems,
            *self.invalid(),
            *self.unmatched(),
            *self.overlaps(),
            *self.gaps(),
            *self.outside(),
            *self.thin_grids(),
        ]

    # --- measuring ---------------------------------------------------------------------------

    def measure(self, geoms) -> tuple[np.ndarray, np.ndarray]:
        return _measure(geoms, self.metric_crs)

    def pieces(self, geom, kind, codes, community, what, min_area) -> list[_Problem]:
        """Split ``geom`` into polygons; drop dust, call thin ones slivers, the rest ``kind``."""
        parts = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon"]
        if not parts:
            return []
        areas, widths = self.measure(parts)
        found = []
        for part, area, width in zip(parts, areas, widths, strict=True):
            if area < min_area or area == 0:
                continue
            if width < self.limits.sliver_max_width_m:
                found.append(
                    _Problem(
                        "sliver", codes, community, part, f"thin {what}, about {width:.2f} m wide"
                    )
                )
            else:
                found.append(_Problem(kind, codes, community, part, what))
        return found

    def label(self, i: int) -> str | None:
        return self.labels.get(self.keys[i], self.keys[i])

    # --- the checks --------------------------------------------------------------------------

    def invalid(self) -> list[_Problem]:
        found = []
        for i, raw in enumerate(self.raw):
            if raw is None or raw.is_empty:
                found.append(
                    _Problem(
                        "invalid", [self.codes[i]], self.label(i), None, "grid has no geometry"
                    )
                )
            elif not raw.is_valid:
                found.append(
                    _Problem(
                        "invalid",
                        [self.codes[i]],
                        self.label(i),
                        self.geoms[i],
                        f"invalid grid: {shapely.is_valid_reason(raw)}",
                    )
                )
        return found

    def unmatched(self) -> list[_Problem]:
        found = []
        for i, key in enumerate(self.keys):
            if key is None or (self.areas is not None and key not in self.areas):
                detail = (
                    f"community {key!r} is not among the community polygons"
                    if key
                    else "grid has no community"
                )
                found.append(_Problem("no_community", [self.codes[i]], key, self.geoms[i], detail))
        return found

    def overlaps(self) -> list[_Problem]:
        left, right = self.tree.query(self.geoms, predicate="intersects")
        keep = left < right
        left, right = left[keep], right[keep]
        # neighbours that only touch (most pairs in a tiling) share no area: skip the overlay
        inside = ~shapely.touches(self.geoms[left], self.geoms[right])
        left, right = left[inside], right[inside]
        shared = shapely.intersection(self.geoms[left], self.geoms[right])
        areas, _ = self.measure(shared)
        found = []
        for i, j, geom in zip(left[areas > 0], right[areas > 0], shared[areas > 0], strict=True):
            community = (
                self.label(i)
                if self.keys[i] == self.keys[j]
                else f"{self.label(i)} / {self.label(j)}"
            )
            what = f"overlap of grids {self.codes[i]} and {self.codes[j]}"
            found += self.pieces(
                geom,
                "overlap",
                [self.codes[i], self.codes[j]],
                community,
                what,
                self.limits.min_overlap_area_m2,
            )
        return found

    def gaps(self) -> list[_Problem]:
        own_grids: dict[str | None, list] = {}
        for geom, key in zip(self.geoms, self.keys, strict=True):
            if geom is not None:
                own_grids.setdefault(key, []).append(geom)
        found = []
        for key in self.community_keys():
            label, own = self.labels.get(key, key), own_grids.get(key, [])
            if self.areas is None:
                uncovered = shapely.difference(_holes(shapely.union_all(own)), self.all_grids)
            elif own:
                uncovered = shapely.difference(self.areas[key], shapely.union_all(own))
            else:
                found.append(_Problem("gap", [], label, self.areas[key], "community has no grids"))
                continue
            found += self.gap_pieces(uncovered, label)
        return found

    def gap_pieces(self, uncovered, label) -> list[_Problem]:
        """Gap pieces, each naming the grids around it (who should close it)."""
        found = []
        what = f"gap in community {label}"
        for piece in self.pieces(uncovered, "gap", [], label, what, self.limits.min_gap_area_m2):
            near = self.tree.query(
                piece.geometry, predicate="dwithin", distance=_NEIGHBOUR_DISTANCE_DEG
            )
            found.append(piece._replace(grid_codes=sorted(self.codes[n] for n in near)))
        return found

    def community_keys(self) -> list[str]:
        if self.areas is not None:
            return sorted(self.areas)
        return sorted({k for k in self.keys if k is not None})

    def outside(self) -> list[_Problem]:
        if self.areas is None:
            return []
        mine = [i for i, k in enumerate(self.keys) if k in self.areas and self.geoms[i] is not None]
        outlines = [self.areas[self.keys[i]] for i in mine]
        beyond = shapely.difference(self.geoms[mine], outlines) if mine else []
        found = []
        for i, geom in zip(mine, beyond, strict=True):
            if shapely.area(geom) == 0:
                continue
            what = f"part of grid {self.codes[i]} outside community {self.label(i)}"
            found += self.pieces(
                geom,
                "outside",
                [self.codes[i]],
                self.label(i),
                what,
                self.limits.min_overlap_area_m2,
            )
        return found

    def thin_grids(self) -> list[_Problem]:
        parts, owner = shapely.get_parts(self.geoms, return_index=True)
        areas, widths = self.measure(parts)
        thin = (widths < self.limits.sliver_max_width_m) & (
            areas >= self.limits.min_overlap_area_m2
        )
        thin &= areas > 0
        return [
            _Problem(
                "sliver",
                [self.codes[i]],
                self.label(i),
                part,
                f"thin part of grid {self.codes[i]}, about {width:.2f} m wide",
            )
            for part, i, width in zip(parts[thin], owner[thin], widths[thin], strict=True)
        ]


@functools.lru_cache(maxsize=8)
def _to_metric(metric_crs: str) -> Transformer:
    # building a Transformer looks PROJ's database up (~0.1 s); Transformers are thread-safe
    return Transformer.from_crs(WGS84, metric_crs, always_xy=True)


def _measure(geoms, metric_crs: str) -> tuple[np.ndarray, np.ndarray]:
    """Area (m2) and sliver width (m) of each lon/lat geometry, measured in ``metric_crs``."""
    transformer = _to_metric(metric_crs)

    def project(xy):
        return np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))

    # Densify first: a straight lon/lat edge is a curve in the projection. Projecting only the
    # corners of a long, hair-thin piece would bend it open into square metres of false area.
    dense = shapely.segmentize(np.asarray(geoms, dtype=object), _MEASURE_SEGMENT_DEG)
    metric = shapely.transform(dense, project)
    area, perimeter = np.nan_to_num(shapely.area(metric)), shapely.length(metric)
    return area, _rectangle_width(area, perimeter)


def _polygonal(geom):
    """The polygonal content of ``geom`` as a valid (Multi)Polygon, or None."""
    if geom is None or geom.is_empty:
        return None
    if geom.is_valid and geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    polygons = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon"]
    return shapely.union_all(polygons) if polygons else None


def _holes(geom):
    """The interior rings of a (Multi)Polygon, as polygons."""
    rings = [ring for part in shapely.get_parts(geom) for ring in part.interiors]
    return shapely.union_all([shapely.Polygon(r) for r in rings]) if rings else shapely.Polygon()


def _rectangle_width(area: np.ndarray, perimeter: np.ndarray) -> np.ndarray:
    """Short side of the rectangle with this area and perimeter: exact for strips and squares,
    about 0.8 of the diameter for a disc (when no such rectangle exists, P / 4 is used)."""
    area, perimeter = np.nan_to_num(area), np.nan_to_num(perimeter)
    root = np.sqrt(np.maximum(perimeter**2 - 16 * area, 0.0))
    return (perimeter - root) / 4


def _community_lookup(communities, key_column: str, keys: set):
    """Labels (key -> community name), areas (key -> valid polygon, or None when no polygons
    were given) and problems with the community polygons themselves."""
    if communities is None:
        return {}, None, []
    codes = [_text(c) for c in communities["code"]]
    names = [_text(n) for n in communities["name"]]
    use_names = key_column == "community" and bool(keys & set(names))
    keyed = names if use_names else codes
    labels, areas, problems = {}, {}, []
    for key, name, geom in zip(keyed, names, communities.geometry, strict=True):
        labels[key] = name or key
        if geom is not None and not geom.is_empty and not geom.is_valid:
            problems.append(
                _Problem(
                    "invalid",
                    [],
                    name,
                    _polygonal(geom),
                    f"invalid community polygon: {shapely.is_valid_reason(geom)}",
                )
            )
        polygon = _polygonal(geom)
        if polygon is not None:
            areas[key] = shapely.union(areas[key], polygon) if key in areas else polygon
    return labels, areas, problems


def _problem_frame(problems: list[_Problem], metric_crs: str) -> gpd.GeoDataFrame:
    order = {kind: n for n, kind in enumerate(PROBLEM_KINDS)}
    problems = sorted(problems, key=lambda p: (order[p.kind], p.community or "", p.grid_codes))
    geometry = gpd.GeoSeries([p.geometry for p in problems], crs=WGS84)
    frame = gpd.GeoDataFrame(
        {
            "kind": [p.kind for p in problems],
            "grid_codes": [list(p.grid_codes) for p in problems],
            "community": [p.community for p in problems],
            "area_m2": _measure(geometry.to_numpy(), metric_crs)[0] if problems else [],
            "detail": [p.detail for p in problems],
        },
        geometry=geometry,
        crs=WGS84,
    )
    return frame[[*PROBLEM_COLUMNS, "geometry"]]


# --- text table ---------------------------------------------------------------------------------


def _table_row(problem) -> list[str]:
    detail = problem.detail
    if len(detail) > _TABLE_DETAIL_WIDTH:
        detail = detail[: _TABLE_DETAIL_WIDTH - 3] + "..."
    return [
        problem.kind,
        ", ".join(problem.grid_codes),
        problem.community or "",
        f"{problem.area_m2:,.2f}",
        detail,
    ]


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _render(rows: list[list[str]]) -> str:
    widths = [max(_display_width(row[c]) for row in rows) for c in range(len(rows[0]))]
    right = {3}  # the area column

    def cell(text: str, c: int) -> str:
        pad = " " * (widths[c] - _display_width(text))
        return pad + text if c in right else text + pad

    lines = ["  ".join(cell(text, c) for c, text in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
