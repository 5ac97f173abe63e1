"""Leaflet.heat's drawing, reproduced in numpy, to measure what a heat layer shows.

node_modules/leaflet.heat/dist/leaflet-heat.js (Leaflet.heat 0.2 with simpleheat) draws a layer
in three steps, each repeated here:

1. **Binning** (``L.HeatLayer._redraw``): the points in view are summed into screen squares of
   ``(radius + blur) / 2`` pixels, aligned on the map pane; each weight is multiplied by
   ``1 / 2 ** (maxZoom - zoom)`` (clamped to 0..12 halvings), a square sits at the weighted mean
   of its points, rounded to a pixel, and its sum is capped at ``max``.
2. **Blobs** (``simpleheat.radius``/``draw``): each square is drawn as the shadow of a disc of
   ``radius`` pixels blurred by ``shadowBlur = blur`` (a Gaussian of sigma ``blur / 2`` in
   canvas), cut to a ``2 * (radius + blur)`` square, with ``globalAlpha = max(sum / max,
   minOpacity)``, composited source-over: alpha ``A <- A + a * (1 - A)``.
3. **Colour** (``simpleheat._colorize``): a pixel of alpha ``A`` takes the gradient's colour at
   ``A`` (default stops 0.4 blue, 0.6 cyan, 0.7 lime, 0.8 yellow, 1.0 red) and keeps its alpha.

So the accumulated alpha is the intensity, and ``A >= 0.8`` is the two hottest colours (yellow
through red). Canvas rounds alpha to 8 bits after each blob; this does not, which moves a share
by well under a percentage point (the browser test reads Chromium's own canvas).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely

TILE = 256
HOT = 0.8  # the gradient stop where yellow begins: yellow and red are the two hottest colours


def world_px(lat, lon, zoom: float) -> tuple[np.ndarray, np.ndarray]:
    """Leaflet's EPSG:3857 pixel coordinates (x east, y south) at ``zoom``."""
    scale = TILE * 2.0 ** zoom
    lat = np.radians(np.clip(np.asarray(lat, dtype=float), -85.0511287798, 85.0511287798))
    x = scale * (np.asarray(lon, dtype=float) + 180.0) / 360.0
    y = scale * (0.5 - np.log(np.tan(np.pi / 4 + lat / 2)) / (2 * np.pi))
    return x, y


def kernel(radius: int, blur: int) -> np.ndarray:
    """simpleheat's blob: alpha of a disc of ``radius`` blurred by ``blur`` on its 2R canvas."""
    size = 2 * (radius + blur)
    centre = size / 2
    ij = np.arange(size) + 0.5 - centre
    disc = (ij[:, None] ** 2 + ij[None, :] ** 2 <= radius ** 2).astype(float)
    sigma = blur / 2
    if sigma <= 0:
        return disc
    taps = np.arange(-math.ceil(3 * sigma), math.ceil(3 * sigma) + 1)
    gauss = np.exp(-taps ** 2 / (2 * sigma ** 2))
    gauss /= gauss.sum()
    rows = np.apply_along_axis(lambda r: np.convolve(r, gauss, mode="same"), 1, disc)
    return np.apply_along_axis(lambda c: np.convolve(c, gauss, mode="same"), 0, rows)


@dataclass(frozen=True)
class View:
    """A map view: its zoom and the world pixel of its top-left corner, ``width x height``."""

    zoom: int
    left: float
    top: float
    width: int
    height: int

    @classmethod
    def around(cls, bounds, zoom: int, margin: int = 40) -> View:
        """The view at ``zoom`` holding ``bounds`` (minx, miny, maxx, maxy) with a margin."""
        minx, miny, maxx, maxy = bounds
        x0, y0 = world_px(maxy, minx, zoom)
        x1, y1 = world_px(miny, maxx, zoom)
        left, top = math.floor(x0) - margin, math.floor(y0) - margin
        return cls(zoom, left, top, math.ceil(x1) + margin - left, math.ceil(y1) + margin - top)

    def container(self, lat, lon) -> tuple[np.ndarray, np.ndarray]:
        x, y = world_px(lat, lon, self.zoom)
        return x - self.left, y - self.top


def bins(view: View, lat, lon, weights, *, radius: int, blur: int, max_zoom: int,
         max_value: float) -> np.ndarray:
    """Leaflet.heat's screen squares: rows of (x, y, capped sum), as it hands them to simpleheat."""
    x, y = view.container(lat, lon)
    r = radius + blur
    inside = (x >= -r) & (x <= view.width + r) & (y >= -r) & (y <= view.height + r)
    x, y = x[inside], y[inside]
    w = np.asarray(weights, dtype=float)[inside] / 2.0 ** max(0, min(max_zoom - view.zoom, 12))
    side = r / 2
    col, row = np.floor(x / side).astype(np.int64), np.floor(y / side).astype(np.int64)
    _, which = np.unique(np.column_stack([col, row]), axis=0, return_inverse=True)
    which = which.ravel()
    total = np.bincount(which, weights=w)
    bx = np.bincount(which, weights=w * x) / total
    by = np.bincount(which, weights=w * y) / total
    return np.column_stack([np.round(bx), np.round(by), np.minimum(total, max_value)])


def intensity(view: View, squares: np.ndarray, *, radius: int, blur: int, max_value: float,
              min_opacity: float) -> np.ndarray:
    """The accumulated alpha (0..1) of every pixel of ``view``, rows by columns."""
    blob = kernel(radius, blur)
    r = radius + blur
    log_clear = np.zeros((view.height, view.width))  # log of (1 - A)
    for x, y, w in squares:
        a = max(w / max_value, min_opacity)
        x0, y0 = int(x) - r, int(y) - r
        xa, ya = max(x0, 0), max(y0, 0)
        xb, yb = min(x0 + 2 * r, view.width), min(y0 + 2 * r, view.height)
        if xa >= xb or ya >= yb:
            continue
        part = blob[ya - y0:yb - y0, xa - x0:xb - x0]
        log_clear[ya:yb, xa:xb] += np.log1p(-np.minimum(a * part, 1 - 1e-12))
    return -np.expm1(log_clear)


def area_mask(view: View, polygon) -> np.ndarray:
    """Pixels of ``view`` whose centre falls in ``polygon`` (lon/lat)."""
    cols, rows = np.meshgrid(np.arange(view.width) + 0.5, np.arange(view.height) + 0.5)
    scale = TILE * 2.0 ** view.zoom
    lon = (cols + view.left) / scale * 360.0 - 180.0
    merc = np.pi * (1 - 2 * (rows + view.top) / scale)
    lat = np.degrees(np.arctan(np.sinh(merc)))
    return shapely.contains_xy(polygon, lon, lat)


def hot_share(alpha: np.ndarray, mask: np.ndarray) -> float:
    """The share of the masked pixels drawn in the two hottest colours."""
    return float((alpha[mask] >= HOT).mean())
