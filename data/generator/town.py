"""The layout of a town in metres (regions, grids, streets), the reading order grid codes follow,
and the strict point-in-grid test every generated point passes.

Points that must lie strictly inside a grid are kept at least half a metre from every grid edge,
far more than the projection to lon/lat could move them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

_EDGE_MARGIN = 0.5  # metres every generated point keeps from every grid edge


@dataclass
class Town:
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


def grid_reading_order(geometries, groups=None) -> np.ndarray:
    """0-based position of each grid in reading order within its group (community).

    The rule of the 15-digit grid code (numbered west to east, north to south): the group's
    latitude range is cut into ``r`` equal bands, ``r = max(1, round(sqrt(n * h / w)))`` for ``n`` grids in a group ``h`` high
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


class Grids:
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
