"""Where the synthetic town lies and how big the demo is: the administrative codes and names,
the demo's counts, and the local metric frame every shape is drawn in.

Geometry is drawn in metres in a local frame (the CGCS2000 Gauss-Kruger zone of the place, see
:func:`gis.geo.crs.metric_crs_for`, shifted so the demo community's centre is the origin) and
projected to WGS84 lon/lat vertex by vertex at the end, so vertices shared by two grids stay
identical.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import shapely
from pyproj import Transformer

from gis.geo.crs import metric_crs_for

WGS84 = "EPSG:4326"
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


@functools.cache
def _frame() -> tuple[Transformer, float, float]:
    """(metric -> WGS84 transformer, origin easting, origin northing) of the local frame."""
    crs = metric_crs_for(ORIGIN[0])
    x0, y0 = Transformer.from_crs(WGS84, crs, always_xy=True).transform(*ORIGIN)
    return Transformer.from_crs(crs, WGS84, always_xy=True), x0, y0


def to_lonlat(geoms) -> np.ndarray:
    """Project local-frame geometries to lon/lat, coordinate by coordinate."""
    geoms = np.asarray(geoms, dtype=object)
    if geoms.size == 0:
        return geoms
    inverse, x0, y0 = _frame()

    def project(xy: np.ndarray) -> np.ndarray:
        lon, lat = inverse.transform(xy[:, 0] + x0, xy[:, 1] + y0)
        return np.column_stack([lon, lat])

    return shapely.transform(geoms, project)


def metres_per_degree(lat: float = ORIGIN[1]) -> tuple[float, float]:
    """(metres per degree of longitude, of latitude) near ``lat``: to size offsets in degrees."""
    phi = math.radians(lat)
    m_lat = 111_132.954 - 559.822 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi)
    m_lon = 111_412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi)
    return m_lon, m_lat
