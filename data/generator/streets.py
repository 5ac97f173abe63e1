"""Street centre lines with their widths, and the questions the site asks of them: which street
is nearest, which way it runs, where its carriageway is."""

from __future__ import annotations

import math

import numpy as np
import shapely
from shapely.geometry import Point

from data.generator.drawing import angle_snap
from data.generator.town import Town

_HALF_WIDTH = {"main": 12.0, "side": 7.5, "lane": 3.5}  # street centre line to kerb, metres


class Streets:
    """Street centre lines with their widths, and the questions the site asks of them."""

    def __init__(self, town: Town):
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
        return angle_snap(self.direction(self.nearest(point), point))

    def corridors_near(self, geom):
        return shapely.union_all(self.corridors[self.corridor_tree.query(geom)])

    def in_other_corridor(self, own: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """True where a point (belonging to street ``own``) lies on another street's carriageway."""
        pts, hit = self.corridor_tree.query(shapely.points(x, y), predicate="within")
        out = np.zeros(len(x), bool)
        out[pts[hit != own[pts]]] = True
        return out
