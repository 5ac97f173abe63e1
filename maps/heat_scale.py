"""How hot a heat layer draws, and how wide: one definition for every heat layer.

A heat layer must show *where*, not everywhere: at the zoom a page opens on (a community, fitted
to the screen), the densest places in the two hottest colours and the rest of the community
mostly cool or clear. Leaflet.heat (node_modules/leaflet.heat/dist/leaflet-heat.js) decides that
with these options:

* ``radius`` and ``blur`` (pixels). It sums the points into screen squares of ``(radius +
  blur) / 2`` pixels and draws each square as a disc of ``radius`` blurred by ``blur``. The
  total ``radius + blur`` is :data:`CELLS_PER_RADIUS` times the server's cell in pixels at the
  page's zoom (clamped to :data:`RADIUS_PX`), so a cell's blob reaches over its neighbours (they
  blend into one patch) and no further (a compound does not smear over its street). The disc
  keeps 3 sigma of the blur inside it (``blur = 0.4 * total``, sigma ``blur / 2``), so a
  saturated square's centre is fully opaque: the densest cells reach the hottest colours.
* ``max``: the square sum drawn at full opacity. It is the :data:`HOT_QUANTILE` quantile of the
  square sums at the page's zoom, binned as Leaflet.heat bins them (the *rendered* weights, not
  the cells'), so about 2% of the squares saturate; each saturated blob is yellow to red over a
  few squares around it. On the demo community (tests/maps/test_heat_scale.py draws it) the
  share of its area in the two hottest colours is 25% at the 90th percentile, 13% at the 95th,
  6% at the 98th and 2% at the 99th; the 98th leaves room under the 15% the leaders asked for
  where hot squares crowd, and still colours the hot compounds rather than a few dots. The
  largest sum (75 there, against 8 at the 98th percentile) would leave even the densest cells
  pale (none hot, the tenth densest at 21%).
* ``max_zoom``, the zoom at which weights count in full: the page's zoom, so that ``max`` was
  computed on the sums the browser draws there. (Zoomed out, Leaflet.heat halves each weight per
  level while a square gathers four times the cells, so the picture gets hotter; zoomed in,
  cooler.)

``min_opacity`` stays Leaflet.heat's default 0.05: a square of one issue shows faintly. (The
0.35 this page had drew every square at least a third opaque; their overlapping blobs coloured
87% of the demo community (40% intensity or more) while 6 of its 10 densest cells stayed below
yellow.)

The weekly animation (heatmap.js, which does not bin) takes the same scale with its squares
summed week by week: its radius is ``radius + blur`` and its blur the share of it.

The page's zoom is the zoom at which the community fits a reference map view (:data:`VIEW_PX`,
the map part of a 1024x768 tablet beside the side panel), as Leaflet's ``fitBounds`` computes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TILE_PX = 256
EARTH_M = 2 * math.pi * 6378137.0  # the Web Mercator equator, metres
VIEW_PX = (684, 768)  # the heatmap page's map on a 1024x768 tablet (the side panel is 340 px)
MAX_ZOOM = 20
CELLS_PER_RADIUS = 2.5  # radius + blur, in server cells
RADIUS_PX = (10, 40)  # radius + blur: at least a finger's width, at most a block at street zoom
BLUR_SHARE = 0.4  # of radius + blur; the disc keeps 3 sigma (sigma = blur / 2) inside it
HOT_QUANTILE = 0.98
MIN_OPACITY = 0.05


@dataclass(frozen=True)
class HeatScale:
    """Leaflet.heat's options for one layer at the page's zoom (see the module text)."""

    radius: int
    blur: int
    max: float
    max_zoom: int
    min_opacity: float = MIN_OPACITY

    @property
    def reach(self) -> int:
        """Pixels from a square's centre to the edge of its blob (``radius + blur``)."""
        return self.radius + self.blur


def heat_scale(lat, lon, weights, *, cell_m: float, zoom: int, frames=None) -> HeatScale:
    """The scale of a heat layer of cells (``lat``, ``lon``, ``weights``; cells of ``cell_m``
    metres) drawn at ``zoom``; for an animation, ``frames`` names each cell's frame, and squares
    are summed frame by frame (one scale for every frame, so frames compare)."""
    lat, lon = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
    weights = np.asarray(weights, dtype=float)
    if not len(lat) == len(lon) == len(weights):
        raise ValueError(f"lat, lon and weights should have one length, got "
                         f"{len(lat)}, {len(lon)} and {len(weights)}")
    mid_lat = float(np.mean(lat)) if len(lat) else 0.0
    reach = blob_reach(cell_m / metres_per_px(mid_lat, zoom))
    radius, blur = radius_and_blur(reach)
    sums = square_sums(lat, lon, weights, zoom=zoom, side_px=reach / 2, frames=frames)
    return HeatScale(radius, blur, intensity_max(sums), zoom)


def blob_reach(cell_px: float) -> int:
    """``radius + blur`` in pixels for cells of ``cell_px`` pixels."""
    low, high = RADIUS_PX
    return int(min(max(round(CELLS_PER_RADIUS * cell_px), low), high))


def radius_and_blur(reach: int) -> tuple[int, int]:
    """``reach`` split into the disc's radius and its blur, the blur rounded down so that the
    disc keeps its 3 sigma."""
    blur = math.floor(BLUR_SHARE * reach)
    return reach - blur, blur


def intensity_max(sums) -> float:
    """The weight drawn at full opacity: the :data:`HOT_QUANTILE` quantile of ``sums`` (at
    least 1, one issue)."""
    sums = np.asarray(sums, dtype=float)
    if sums.size == 0:
        return 1.0
    return max(float(np.quantile(sums, HOT_QUANTILE)), 1.0)


def square_sums(lat, lon, weights, *, zoom: int, side_px: float, frames=None) -> np.ndarray:
    """Weights summed over screen squares of ``side_px`` at ``zoom`` (and ``frames``), as
    Leaflet.heat sums them (its squares follow the map pane, which these follow to within a
    square)."""
    if len(weights) == 0:
        return np.zeros(0)
    x, y = mercator_px(lat, lon, zoom)
    frames = np.zeros(len(weights)) if frames is None else np.asarray(frames)
    _, frame = np.unique(frames, return_inverse=True)
    squares = np.column_stack([frame.ravel(), np.floor(x / side_px),
                               np.floor(y / side_px)]).astype(np.int64)
    _, which = np.unique(squares, axis=0, return_inverse=True)
    return np.bincount(which.ravel(), weights=weights)


def fit_zoom(bounds, view_px: tuple[int, int] = VIEW_PX, max_zoom: int = MAX_ZOOM) -> int:
    """The zoom at which ``bounds`` (minx, miny, maxx, maxy, degrees) fits ``view_px``, as
    Leaflet's ``fitBounds`` picks it (whole zooms, rounded down)."""
    minx, miny, maxx, maxy = bounds
    x0, y0 = mercator_px(np.array([maxy]), np.array([minx]), 0)
    x1, y1 = mercator_px(np.array([miny]), np.array([maxx]), 0)
    width, height = max(float(x1[0] - x0[0]), 1e-12), max(float(y1[0] - y0[0]), 1e-12)
    zoom = math.floor(math.log2(min(view_px[0] / width, view_px[1] / height)))
    return int(min(max(zoom, 0), max_zoom))


def metres_per_px(lat: float, zoom: int) -> float:
    """Ground metres per screen pixel of Web Mercator at ``lat`` and ``zoom``."""
    return EARTH_M * math.cos(math.radians(lat)) / (TILE_PX * 2 ** zoom)


def mercator_px(lat, lon, zoom: int) -> tuple[np.ndarray, np.ndarray]:
    """Web Mercator pixel coordinates (x east, y south) at ``zoom``."""
    scale = TILE_PX * 2.0 ** zoom
    phi = np.radians(np.clip(np.asarray(lat, dtype=float), -85.0511287798, 85.0511287798))
    x = scale * (np.asarray(lon, dtype=float) + 180.0) / 360.0
    y = scale * (0.5 - np.log(np.tan(np.pi / 4 + phi / 2)) / (2 * np.pi))
    return x, y
