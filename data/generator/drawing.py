"""Seeded random streams and the small drawing helpers every part of the generator shares."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np
import shapely
from shapely.geometry import Polygon


def rng_stream(seed: int, stream: str) -> np.random.Generator:
    """A generator per part of the data, so that how one part draws never shifts another."""
    key = int.from_bytes(hashlib.sha256(stream.encode()).digest()[:8], "little")
    return np.random.default_rng([seed, key])


def wobbly(points, step: float, amplitude: float, rng: np.random.Generator) -> np.ndarray:
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


def largest_polygon(geom) -> Polygon:
    """The largest polygon of a (multi)polygon result; empty Polygon if there is none."""
    parts = [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon" and not g.is_empty]
    return max(parts, key=lambda g: g.area) if parts else Polygon()


def quota(weights: Sequence[float], total: int) -> np.ndarray:
    """Split ``total`` into integers proportional to ``weights`` (largest remainder)."""
    w = np.asarray(weights, dtype=float)
    exact = total * w / w.sum()
    counts = np.floor(exact).astype(int)
    rest = total - counts.sum()
    counts[np.argsort(-(exact - counts), kind="stable")[:rest]] += 1
    return counts


def angle_snap(theta_deg: float) -> float:
    """A street direction folded to (-45, 45] degrees: the nearest east-west-ish frame, since
    slab blocks in north China face south whichever way the street runs."""
    return (theta_deg + 45.0) % 90.0 - 45.0


def choose(weights: np.ndarray, n: int, rng) -> np.ndarray:
    """``n`` indices drawn with the given weights (inverse CDF: fast for millions)."""
    cdf = np.cumsum(weights, dtype=float)
    return np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right").clip(0, len(cdf) - 1)


def as_multi(geoms: np.ndarray) -> np.ndarray:
    """Every (multi)polygon as a MultiPolygon, which the regions and grids tables hold."""
    parts, index = shapely.get_parts(geoms, return_index=True)
    return shapely.multipolygons(parts, indices=index)
