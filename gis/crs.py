"""Coordinate systems GridMap accepts, and the metric CRS used for distances and areas."""

from __future__ import annotations

# CGCS2000 / 3-degree Gauss-Kruger CM 75E .. CM 135E are EPSG:4534 .. EPSG:4554 (no zone prefix
# in the easting, which keeps coordinates small and readable).
_GK3_FIRST_EPSG = 4534
_GK3_FIRST_CM = 75
_GK3_LAST_CM = 135


def metric_crs_for(lon: float) -> str:
    """The CGCS2000 3-degree Gauss-Kruger CRS whose central meridian is nearest ``lon``.

    >>> metric_crs_for(112.86)
    'EPSG:4547'
    """
    cm = 3 * round(lon / 3)
    cm = min(max(cm, _GK3_FIRST_CM), _GK3_LAST_CM)
    return f"EPSG:{_GK3_FIRST_EPSG + (cm - _GK3_FIRST_CM) // 3}"
