"""The leaders' dashboard's small heat map: the heatmap's aggregates as the page's script draws
them, on the heatmap's own scale.

The dashboard (``/dash``) is not a Folium page: its script (``maps/static/dash.js``) draws the
charts with ECharts and a small Leaflet map with Leaflet.heat, from JSON. This module turns a
:class:`~gis.queries.map_data.HeatmapData` into that JSON: the grid outlines, the cells, and the
scale :func:`maps.heat_scale.heat_scale` gives for the zoom at which the grids fit the map's
box (:func:`maps.heat_scale.fit_zoom`, as Leaflet's ``fitBounds`` picks it), so the small map
shows *where* as the full heatmap does. It takes data, never a session.
"""

from __future__ import annotations

import json

import numpy as np
import shapely

from gis.queries.map_data import HeatmapData
from maps.heat_scale import fit_zoom, heat_scale
from maps.heatmap import SIMPLIFY_DEG

# The map's box on a 1024x768 tablet (a card of the stacked layout), when the script sends none.
DASH_VIEW_PX = (960, 360)
COORD_DECIMALS = 6


def heat_layer(data: HeatmapData, view_px: tuple[int, int] = DASH_VIEW_PX) -> dict:
    """``bounds`` (minx, miny, maxx, maxy; None without grids), the ``zoom`` they fit
    ``view_px`` at, the heat layer's ``scale`` there, its ``cells`` ([lat, lon, weight], the
    densest first), the ``grids`` (a GeoJSON FeatureCollection of code, name, community and
    issues), ``total``, ``unassigned`` and ``cell_m``."""
    grids = data.grids
    if grids.empty:
        bounds, zoom = None, None
        scale = None
    else:
        bounds = [round(float(v), COORD_DECIMALS) for v in grids.total_bounds]
        zoom = fit_zoom(bounds, view_px)
        scale = _scale(data, zoom)
    return {"bounds": bounds, "zoom": zoom, "scale": scale, "cells": _cells(data),
            "grids": _outlines(data), "total": data.total, "unassigned": data.unassigned,
            "cell_m": data.cell_m}


def _scale(data: HeatmapData, zoom: int) -> dict:
    cells = data.cells
    scale = heat_scale(cells["lat"], cells["lon"], cells["weight"], cell_m=data.cell_m, zoom=zoom)
    return {"radius": scale.radius, "blur": scale.blur, "max": scale.max,
            "max_zoom": scale.max_zoom, "min_opacity": scale.min_opacity}


def _cells(data: HeatmapData) -> list[list[float]]:
    cells = data.cells
    points = np.column_stack([np.round(cells["lat"].to_numpy(dtype=float), 5),
                              np.round(cells["lon"].to_numpy(dtype=float), 5),
                              cells["weight"].to_numpy(dtype=float)])
    return points.tolist()


def _outlines(data: HeatmapData) -> dict:
    """The grids' outlines simplified together (shared edges stay shared), with plain-text
    properties: the script writes them as text, never as HTML."""
    grids = data.grids
    geoms = shapely.coverage_simplify(grids.geometry.values, SIMPLIFY_DEG) if len(grids) else []
    features = []
    for row, geom in zip(grids.itertuples(), geoms, strict=True):
        issues = getattr(row, "issues", 0)
        features.append({
            "type": "Feature",
            "geometry": json.loads(shapely.to_geojson(geom)),
            "properties": {"code": row.code, "name": row.name, "community": row.community,
                           "issues": int(issues) if issues == issues else 0}})
    return {"type": "FeatureCollection", "features": features}
