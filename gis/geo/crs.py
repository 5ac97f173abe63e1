"""Coordinate systems GridMap accepts, and the metric CRS used for distances and areas.

GridMap stores everything in WGS84 lon/lat. Data arrives in whatever the sender's tool produced:
GPS (WGS84), national survey data (CGCS2000, often projected Gauss-Kruger), Amap/Tencent maps
(GCJ-02, the obfuscated "Mars" datum every map published in China must use) and Baidu maps
(BD-09, Baidu's extra shift on top of GCJ-02). ``to_wgs84`` brings all of them home;
``from_wgs84`` goes the other way, e.g. to overlay our layers on a GCJ-02 basemap.

Coordinates are lon/lat (x/y) order everywhere. Every transform takes plain numbers or numpy
arrays: a pair of numbers gets a pure-``math`` path (the grid lookup budget is 20 µs per point,
numpy's per-call overhead would eat it), arrays get the vectorised path and keep their shape.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from gis.errors import InvalidCoordinates, UnknownCRS

# CGCS2000 / 3-degree Gauss-Kruger CM 75E .. CM 135E are EPSG:4534 .. EPSG:4554 (no zone prefix
# in the easting, which keeps coordinates small and readable).
_GK3_FIRST_EPSG = 4534
_GK3_FIRST_CM = 75
_GK3_LAST_CM = 135

# GCJ-02 is defined on the Krasovsky 1940 ellipsoid: semi-major axis and first eccentricity squared.
_KRASOVSKY_A = 6378245.0
_KRASOVSKY_EE = 0.00669342162296594323
# BD-09's angular wobble uses pi * 3000 / 180, not pi. Copies that use plain pi are tens of metres off.
_BD_X_PI = math.pi * 3000.0 / 180.0
_BD_DLON = 0.0065
_BD_DLAT = 0.006

# The rectangle the reference implementations treat as "China": outside it nothing is shifted.
_CHINA_LON_MIN, _CHINA_LON_MAX = 72.004, 137.8347
_CHINA_LAT_MIN, _CHINA_LAT_MAX = 0.8293, 55.8271

# Inverse transforms stop once a correction step is below these many degrees. Each step shrinks
# the error by at least ~160x for GCJ-02 and ~50x for BD-09 (worst measured over China), so what
# is left after the last step is < 1e-9 degrees (0.1 mm). The step cap only guards against
# pathological input.
_GCJ_STEP_TOL_DEG = 1e-7
_BD_STEP_TOL_DEG = 2e-8
_INVERSE_MAX_STEPS = 20

# numpy's versions of the math functions the formulas use. The scalar path gets math's as default
# arguments, which Python reads as fast locals; each formula ignores the ones it does not need.
_NUMPY_FNS = {"sin": np.sin, "cos": np.cos, "sqrt": np.sqrt, "hypot": np.hypot,
              "atan2": np.arctan2}

_ALIASES = {
    "wgs84": "wgs84", "wgs-84": "wgs84", "epsg:4326": "wgs84",
    "cgcs2000": "cgcs2000", "epsg:4490": "cgcs2000",
    "gcj02": "gcj02", "gcj-02": "gcj02",
    "bd09": "bd09", "bd-09": "bd09",
}
_ACCEPTED = ("wgs84, cgcs2000, gcj02, bd09 (aliases EPSG:4326, EPSG:4490, gcj-02, bd-09) "
             "or EPSG:nnnn for any CRS in the EPSG registry")


def metric_crs_for(lon: float) -> str:
    """The CGCS2000 3-degree Gauss-Kruger CRS whose central meridian is nearest ``lon``.

    >>> metric_crs_for(112.86)
    'EPSG:4547'
    """
    cm = 3 * round(lon / 3)
    cm = min(max(cm, _GK3_FIRST_CM), _GK3_LAST_CM)
    return f"EPSG:{_GK3_FIRST_EPSG + (cm - _GK3_FIRST_CM) // 3}"


# --- scalar / array plumbing -------------------------------------------------------------------


def _is_scalar(lon, lat) -> bool:
    """Both plain numbers: worth the math fast path (numpy scalars count; np.float64 is a float)."""
    return isinstance(lon, (float, int, np.number)) and isinstance(lat, (float, int, np.number))


def _as_arrays(lon, lat) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Flat float copies of the (broadcast) inputs plus the shape to give results back in."""
    try:
        lon_b, lat_b = np.broadcast_arrays(np.asarray(lon, dtype=float),
                                           np.asarray(lat, dtype=float))
    except (TypeError, ValueError) as exc:
        raise InvalidCoordinates(f"lon and lat must be numbers or arrays of one shape: {exc}",
                                 zh=f"经度和纬度应为数字，或形状相同的数组：{exc}") from exc
    return lon_b.ravel().copy(), lat_b.ravel().copy(), lon_b.shape


def _dispatch(scalar_fn, array_fn, lon, lat):
    """Send a pair of numbers to ``scalar_fn`` and arrays to ``array_fn``, keeping the shape."""
    if _is_scalar(lon, lat):
        return scalar_fn(float(lon), float(lat))
    x, y, shape = _as_arrays(lon, lat)
    x, y = array_fn(x, y)
    return x.reshape(shape), y.reshape(shape)


def out_of_china(lon, lat):
    """True where no GCJ-02/BD-09 shift applies (the reference implementations' rectangle).

    Numbers give a bool, arrays a bool array of the same shape. Within ~1 km of the rectangle's
    edge a point and its shifted image can fall on opposite sides, so round trips there are not
    exact; the reference implementations share this, and the edges run outside China's land.
    """
    if _is_scalar(lon, lat):
        return not (_CHINA_LON_MIN <= lon <= _CHINA_LON_MAX
                    and _CHINA_LAT_MIN <= lat <= _CHINA_LAT_MAX)
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    inside = ((lon >= _CHINA_LON_MIN) & (lon <= _CHINA_LON_MAX)
              & (lat >= _CHINA_LAT_MIN) & (lat <= _CHINA_LAT_MAX))
    return ~inside


# --- the published formulas, written once for both math and numpy ------------------------------

# Degrees per "metre" of the GCJ-02 shift fields, on the Krasovsky ellipsoid: the meridian radius
# is A(1-ee)/w^3 and the parallel radius A cos(lat)/w, with w = sqrt(1 - ee sin^2(lat)).
_DEG_PER_M_LAT = 180.0 / (math.pi * _KRASOVSKY_A * (1.0 - _KRASOVSKY_EE))
_DEG_PER_M_LON = 180.0 / (math.pi * _KRASOVSKY_A)
_PI = math.pi


def _gcj_forward(lon, lat, sin=math.sin, cos=math.cos, sqrt=math.sqrt, **_):
    """WGS84 -> GCJ-02 without the China test (the inverse iterates on this).

    The published transform: two polynomial-plus-sine fields in metres around (105E, 35N)
    (the 20/40/160/320 and 150/300 sine amplitudes times 2/3, multiplied out here), turned
    into degrees by the Krasovsky radii of curvature at ``lat``.
    """
    x, y = lon - 105.0, lat - 35.0
    px, py = x * _PI, y * _PI
    root_x = sqrt(abs(x))
    shared = 0.1 * x * y + (sin(6.0 * px) + sin(2.0 * px)) * (40.0 / 3.0)
    north = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.2 * root_x + shared
             + (40.0 / 3.0) * sin(py) + (80.0 / 3.0) * sin(py / 3.0)
             + (320.0 / 3.0) * sin(py / 12.0) + (640.0 / 3.0) * sin(py / 30.0))
    east = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * root_x + shared
            + (40.0 / 3.0) * sin(px) + (80.0 / 3.0) * sin(px / 3.0)
            + 100.0 * sin(px / 12.0) + 200.0 * sin(px / 30.0))
    rad_lat = lat * (_PI / 180.0)
    sin_lat = sin(rad_lat)
    w2 = 1.0 - _KRASOVSKY_EE * sin_lat * sin_lat
    w = sqrt(w2)
    return (lon + east * w * _DEG_PER_M_LON / cos(rad_lat),
            lat + north * w2 * w * _DEG_PER_M_LAT)


def _bd_forward(lon, lat, sin=math.sin, cos=math.cos, hypot=math.hypot, atan2=math.atan2, **_):
    """GCJ-02 -> BD-09 (published formula): a tiny radial and angular wobble, then a fixed offset."""
    r = hypot(lon, lat) + 0.00002 * sin(lat * _BD_X_PI)
    theta = atan2(lat, lon) + 0.000003 * cos(lon * _BD_X_PI)
    return r * cos(theta) + _BD_DLON, r * sin(theta) + _BD_DLAT


def _bd_backward_approx(lon, lat, sin=math.sin, cos=math.cos, hypot=math.hypot,
                        atan2=math.atan2, **_):
    """BD-09 -> GCJ-02 by the published closed form, good to ~0.2 m: the starting guess for
    the exact inverse, which layers need to survive a round trip through BD-09."""
    x, y = lon - _BD_DLON, lat - _BD_DLAT
    r = hypot(x, y) - 0.00002 * sin(y * _BD_X_PI)
    theta = atan2(y, x) - 0.000003 * cos(x * _BD_X_PI)
    return r * cos(theta), r * sin(theta)


# --- iterative inverses --------------------------------------------------------------------------


def _invert_scalar(forward, tol, target_lon, target_lat, lon, lat):
    """Solve forward(p) = target by p -= forward(p) - target from (lon, lat), until a step < tol.

    The fixed point is attracting because the shifts change slowly with position, so each step
    divides the error by a large factor (see _GCJ_STEP_TOL_DEG); 2-4 steps suffice.
    """
    for _ in range(_INVERSE_MAX_STEPS):
        f_lon, f_lat = forward(lon, lat)
        d_lon, d_lat = f_lon - target_lon, f_lat - target_lat
        lon, lat = lon - d_lon, lat - d_lat
        if abs(d_lon) < tol and abs(d_lat) < tol:
            break
    return lon, lat


def _invert_array(forward, tol, target_lon, target_lat, lon, lat):
    """The array twin of :func:`_invert_scalar`; stops once every point has converged."""
    for _ in range(_INVERSE_MAX_STEPS):
        f_lon, f_lat = forward(lon, lat, **_NUMPY_FNS)
        d_lon, d_lat = f_lon - target_lon, f_lat - target_lat
        lon, lat = lon - d_lon, lat - d_lat
        worst = max(np.max(np.abs(d_lon), initial=0.0), np.max(np.abs(d_lat), initial=0.0))
        if worst < tol:
            break
    return lon, lat


# --- the conversions, scalar and array ------------------------------------------------------------


def _outside_1(lon: float, lat: float) -> bool:
    return not (_CHINA_LON_MIN <= lon <= _CHINA_LON_MAX and _CHINA_LAT_MIN <= lat <= _CHINA_LAT_MAX)


def _wgs_gcj_1(lon, lat):
    if _outside_1(lon, lat):
        return lon, lat
    return _gcj_forward(lon, lat)


def _gcj_wgs_1(lon, lat):
    if _outside_1(lon, lat):
        return lon, lat
    return _invert_scalar(_gcj_forward, _GCJ_STEP_TOL_DEG, lon, lat, lon, lat)


def _gcj_bd_1(lon, lat):
    if _outside_1(lon, lat):
        return lon, lat
    return _bd_forward(lon, lat)


def _bd_gcj_1(lon, lat):
    if _outside_1(lon, lat):
        return lon, lat
    guess_lon, guess_lat = _bd_backward_approx(lon, lat)
    return _invert_scalar(_bd_forward, _BD_STEP_TOL_DEG, lon, lat, guess_lon, guess_lat)


def _wgs_gcj_n(lon, lat):
    ok = ~out_of_china(lon, lat)
    lon[ok], lat[ok] = _gcj_forward(lon[ok], lat[ok], **_NUMPY_FNS)
    return lon, lat


def _gcj_wgs_n(lon, lat):
    ok = ~out_of_china(lon, lat)
    t_lon, t_lat = lon[ok], lat[ok]
    lon[ok], lat[ok] = _invert_array(_gcj_forward, _GCJ_STEP_TOL_DEG, t_lon, t_lat, t_lon, t_lat)
    return lon, lat


def _gcj_bd_n(lon, lat):
    ok = ~out_of_china(lon, lat)
    lon[ok], lat[ok] = _bd_forward(lon[ok], lat[ok], **_NUMPY_FNS)
    return lon, lat


def _bd_gcj_n(lon, lat):
    ok = ~out_of_china(lon, lat)
    t_lon, t_lat = lon[ok], lat[ok]
    g_lon, g_lat = _bd_backward_approx(t_lon, t_lat, **_NUMPY_FNS)
    lon[ok], lat[ok] = _invert_array(_bd_forward, _BD_STEP_TOL_DEG, t_lon, t_lat, g_lon, g_lat)
    return lon, lat


def _wgs_bd_1(lon, lat):
    return _gcj_bd_1(*_wgs_gcj_1(lon, lat))


def _bd_wgs_1(lon, lat):
    return _gcj_wgs_1(*_bd_gcj_1(lon, lat))


def _wgs_bd_n(lon, lat):
    return _gcj_bd_n(*_wgs_gcj_n(lon, lat))


def _bd_wgs_n(lon, lat):
    return _gcj_wgs_n(*_bd_gcj_n(lon, lat))


def wgs84_to_gcj02(lon, lat):
    """WGS84 -> GCJ-02 (the published forward transform, Krasovsky ellipsoid).

    Points outside China are returned unchanged, as the reference implementations do.
    """
    return _dispatch(_wgs_gcj_1, _wgs_gcj_n, lon, lat)


def gcj02_to_wgs84(lon, lat):
    """GCJ-02 -> WGS84 by iterating the forward transform to < 1e-9 degrees (0.1 mm).

    The common one-step inverse (subtract the shift found at the GCJ point) is metres off;
    iterating brings the error far below 0.01 m. Points outside China are returned unchanged.
    """
    return _dispatch(_gcj_wgs_1, _gcj_wgs_n, lon, lat)


def gcj02_to_bd09(lon, lat):
    """GCJ-02 -> BD-09 (published formula, x_pi = pi*3000/180). Outside China: unchanged."""
    return _dispatch(_gcj_bd_1, _gcj_bd_n, lon, lat)


def bd09_to_gcj02(lon, lat):
    """BD-09 -> GCJ-02, the exact inverse of :func:`gcj02_to_bd09`.

    Starts from the published closed form, which is only ~0.2 m accurate as an inverse (layers
    would drift on every BD-09 round trip), and iterates to < 1e-9 degrees. Outside China:
    unchanged.
    """
    return _dispatch(_bd_gcj_1, _bd_gcj_n, lon, lat)


def wgs84_to_bd09(lon, lat):
    """WGS84 -> BD-09 via GCJ-02. Outside China: unchanged."""
    return _dispatch(_wgs_bd_1, _wgs_bd_n, lon, lat)


def bd09_to_wgs84(lon, lat):
    """BD-09 -> WGS84 via GCJ-02 (exact inverses both ways). Outside China: unchanged."""
    return _dispatch(_bd_wgs_1, _bd_wgs_n, lon, lat)


# --- CRS names -----------------------------------------------------------------------------------


def parse_crs(name) -> str:
    """Normalise a CRS name to "wgs84", "cgcs2000", "gcj02", "bd09" or "EPSG:nnnn".

    Case and surrounding blanks are ignored. EPSG codes are checked against PROJ's registry so a
    typo fails here, with a message listing what is accepted, rather than deep in a transform.
    """
    if not isinstance(name, str):
        raise UnknownCRS(f"CRS must be a name, got {name!r}; accepted: {_ACCEPTED}",
                         zh=f"坐标系应为名称，收到 {name!r}；可用：{_ACCEPTED}")
    return _parse_crs_str(name)


@lru_cache(maxsize=256)
def _parse_crs_str(name: str) -> str:
    key = name.strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    code = key.removeprefix("epsg:")
    if code != key and code.isdigit():
        normalised = f"EPSG:{int(code)}"
        if normalised in ("EPSG:4326", "EPSG:4490"):
            return _ALIASES[normalised.lower()]
        try:
            CRS.from_user_input(normalised)
        except CRSError:
            raise UnknownCRS(f"unknown CRS {name!r}: not in the EPSG registry; "
                             f"accepted: {_ACCEPTED}",
                             zh=f"无法识别的坐标系 {name!r}：EPSG 库中没有此编码；可用：{_ACCEPTED}") from None
        return normalised
    raise UnknownCRS(f"unknown CRS {name!r}; accepted: {_ACCEPTED}",
                     zh=f"无法识别的坐标系 {name!r}；可用：{_ACCEPTED}")


@lru_cache(maxsize=64)
def _pyproj(epsg: str) -> tuple[Transformer, Transformer, bool]:
    """(to WGS84, from WGS84, is geographic) for an EPSG CRS; building a Transformer costs ms,
    so each is made once. pyproj >= 3.1 Transformers are thread-safe."""
    crs = CRS.from_user_input(epsg)
    return (Transformer.from_crs(crs, "EPSG:4326", always_xy=True),
            Transformer.from_crs("EPSG:4326", crs, always_xy=True),
            crs.is_geographic)


# --- validation ----------------------------------------------------------------------------------


def _check_point(lon: float, lat: float, geographic: bool, where: str = "") -> None:
    """Raise InvalidCoordinates naming the bad value; ``where`` is an array index like "[3]"."""
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise _not_finite(lon, lat, geographic, where)
    if geographic and not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise _out_of_range(lon, lat, where)


def _not_finite(lon: float, lat: float, geographic: bool, where: str) -> InvalidCoordinates:
    x_name, y_name = ("lon", "lat") if geographic else ("x (easting)", "y (northing)")
    name, value = (x_name, lon) if not math.isfinite(lon) else (y_name, lat)
    return InvalidCoordinates(f"{name}{where} is {value}; coordinates must be finite numbers",
                              zh=f"{name}{where} 为 {value}；坐标应为有限的数字")


def _out_of_range(lon: float, lat: float, where: str) -> InvalidCoordinates:
    """Say which of lon/lat is out of range, hinting at the classic lat/lon swap when it fits."""
    hint = hint_zh = ""
    if abs(lat) <= 180.0 and abs(lon) <= 90.0:
        hint = f" (lat/lon swapped? got lon={lon}, lat={lat}; the order is lon, lat)"
        hint_zh = f"（经纬度是否颠倒？收到 lon={lon}, lat={lat}；顺序应为先经度后纬度）"
    if not -180.0 <= lon <= 180.0:
        return InvalidCoordinates(f"lon{where} = {lon} is outside [-180, 180]{hint}",
                                  zh=f"经度 lon{where} = {lon} 超出 -180 到 180 的范围{hint_zh}")
    return InvalidCoordinates(f"lat{where} = {lat} is outside [-90, 90]{hint}",
                              zh=f"纬度 lat{where} = {lat} 超出 -90 到 90 的范围{hint_zh}")


def _check_arrays(lon, lat, shape, geographic: bool) -> None:
    """Validate flat arrays; the first bad point is reported with its index in ``shape``."""
    bad = ~(np.isfinite(lon) & np.isfinite(lat))
    if geographic:
        bad |= (np.abs(lon) > 180.0) | (np.abs(lat) > 90.0)
    if not bad.any():
        return
    flat = int(np.flatnonzero(bad)[0])
    where = ""
    if shape:
        where = "[" + ", ".join(str(int(i)) for i in np.unravel_index(flat, shape)) + "]"
    _check_point(float(lon[flat]), float(lat[flat]), geographic, where)


# --- public entry points -------------------------------------------------------------------------


def _identity(lon, lat):
    return lon, lat


# (scalar fn, array fn) per named CRS and direction; EPSG codes are routed through pyproj.
_TO_WGS84 = {"wgs84": (_identity, _identity), "cgcs2000": (_identity, _identity),
             "gcj02": (_gcj_wgs_1, _gcj_wgs_n), "bd09": (_bd_wgs_1, _bd_wgs_n)}
_FROM_WGS84 = {"wgs84": (_identity, _identity), "cgcs2000": (_identity, _identity),
               "gcj02": (_wgs_gcj_1, _wgs_gcj_n), "bd09": (_wgs_bd_1, _wgs_bd_n)}


def _pyproj_fns(transformer: Transformer, name: str):
    """(scalar fn, array fn) running ``transformer`` but failing loudly where PROJ would quietly
    return inf. The scalar one uses math.isfinite: numpy's costs ~5 µs on a plain float."""

    def failed() -> InvalidCoordinates:
        return InvalidCoordinates(f"coordinates could not be transformed with {name} "
                                  "(outside the area the CRS is defined for?)")

    def scalar(x: float, y: float):
        out_x, out_y = transformer.transform(x, y)
        if not (math.isfinite(out_x) and math.isfinite(out_y)):
            raise failed()
        return out_x, out_y

    def array(x, y):
        out_x, out_y = transformer.transform(x, y)
        if not (np.isfinite(out_x).all() and np.isfinite(out_y).all()):
            raise failed()
        return out_x, out_y

    return scalar, array


@lru_cache(maxsize=256)
def _route(crs: str, direction: int):
    """(scalar fn, array fn, input is lon/lat) for a CRS as the caller spelt it; direction 0 is
    to WGS84, 1 from WGS84. Cached so a call pays one lookup, not a parse."""
    name = parse_crs(crs)
    table = (_TO_WGS84, _FROM_WGS84)[direction]
    if name in table:
        return (*table[name], True)
    to_wgs, from_wgs, geographic = _pyproj(name)
    scalar_fn, array_fn = _pyproj_fns((to_wgs, from_wgs)[direction], name)
    return scalar_fn, array_fn, geographic or direction == 1


def _convert(lon, lat, crs, direction: int):
    """Validate, then run the conversion on a pair of numbers or on arrays."""
    if type(crs) is not str:
        parse_crs(crs)  # raises UnknownCRS (and keeps unhashable values away from the cache)
    scalar_fn, array_fn, geographic = _route(crs, direction)
    if _is_scalar(lon, lat):
        lon, lat = float(lon), float(lat)
        # One chained test passes every valid lon/lat (NaN and inf fail it); details on failure.
        if not (geographic and -180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
            _check_point(lon, lat, geographic)
        return scalar_fn(lon, lat)
    x, y, shape = _as_arrays(lon, lat)
    _check_arrays(x, y, shape, geographic)
    out_x, out_y = array_fn(x, y)
    return np.asarray(out_x).reshape(shape), np.asarray(out_y).reshape(shape)


def to_wgs84(lon, lat, crs: str = "wgs84"):
    """Convert coordinates in ``crs`` to WGS84 (lon, lat); numbers or arrays of any shape.

    ``crs`` is "wgs84", "cgcs2000", "gcj02", "bd09" (any case; aliases EPSG:4326, EPSG:4490,
    gcj-02, bd-09) or any "EPSG:nnnn" PROJ knows. CGCS2000 is returned unchanged: it and WGS84
    agree to well under a metre, below what a grid or a phone GPS resolves. For a projected CRS
    such as EPSG:4547 pass easting/northing in lon/lat's places.

    Raises InvalidCoordinates for NaN/inf or out-of-range lon/lat (first bad index for arrays),
    UnknownCRS for a name outside the list above.
    """
    return _convert(lon, lat, crs, 0)


def from_wgs84(lon, lat, crs: str):
    """Convert WGS84 (lon, lat) to ``crs``: the reverse of :func:`to_wgs84`, same names and rules.

    Used to shift our layers onto GCJ-02/BD-09 basemaps or to project into a metric CRS.
    """
    return _convert(lon, lat, crs, 1)
