"""Read and write the four GridMap layers (grids, buildings, facilities, issues) as files.

``read_layer`` reads GeoJSON, GeoPackage, Shapefile (also zipped) and CSV, converts to WGS84
(EPSG:4326), checks every row against what the layer kind expects and either returns the whole
layer or raises :class:`gis.errors.ImportFailed` listing every bad row: nothing is half-returned.
``write_layer`` writes a GeoDataFrame in the format its file extension names.

No database here: the CLI and the API hand the result to ``gis.queries.reads``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError
from shapely.geometry import MultiPolygon

from gis.errors import ImportFailed, InvalidCoordinates, UnknownCRS
from gis.rules import BEIJING_TZ_NAME  # times written without an offset are Beijing time

KINDS = ("grids", "buildings", "facilities", "issues")

WGS84 = "EPSG:4326"

# CSV coordinate column pairs, tried in this order (matched case-insensitively).
_LONLAT_COLUMNS = (("lon", "lat"), ("lng", "lat"), ("longitude", "latitude"), ("x", "y"))
_WKT_COLUMNS = ("wkt", "geometry")
_READ_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".zip", ".csv")
_WRITE_DRIVERS = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GPKG",
    ".shp": "ESRI Shapefile",
    ".csv": "CSV",
}
_SHAPEFILE_NAME_LIMIT = 10
_GEOJSON_PEEK_BYTES = 4096


@dataclass(frozen=True)
class _KindSpec:
    """What one layer kind expects of a file."""

    geom_types: tuple[str, ...]
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    integers: tuple[str, ...] = ()  # whole numbers >= 0 when present
    unique: tuple[str, ...] = ()  # no two rows share a (non-empty) value
    multipolygon: bool = False  # always returned as MultiPolygon

    @property
    def properties(self) -> tuple[str, ...]:
        return self.required + self.optional

    @property
    def text(self) -> tuple[str, ...]:
        return tuple(p for p in self.properties if p not in self.integers and p != "reported_at")


_SPECS = {
    "grids": _KindSpec(
        ("Polygon", "MultiPolygon"),
        ("code", "name", "community"),
        unique=("code",),
        multipolygon=True,
    ),
    "buildings": _KindSpec(
        ("Polygon",),
        ("name",),
        ("compound", "floors", "households"),
        integers=("floors", "households"),
    ),
    "facilities": _KindSpec(
        ("Point",), ("category",), ("name", "status", "code"), unique=("code",)
    ),
    "issues": _KindSpec(
        ("Point",),
        ("category",),
        ("description", "reported_at", "status", "client_uuid"),
        unique=("client_uuid",),
    ),
}


# ---------------------------------------------------------------------------------------------
# read


def read_layer(
    path: str | Path,
    kind: str,
    *,
    fix: bool = False,
    crs: str | int | CRS | None = None,
    layer: str | None = None,
) -> gpd.GeoDataFrame:
    """Read a layer file of ``kind`` (one of :data:`KINDS`) and return it in EPSG:4326.

    Formats: GeoJSON (``.geojson``/``.json``), GeoPackage (``.gpkg``, pick a layer with ``layer``;
    with several layers and none named, the one called ``kind`` is read), Shapefile (``.shp``, or a
    ``.zip`` holding one) and CSV (``.csv``) with a lon/lat column pair (``lon``/``lat``, ``lng``/
    ``lat``, ``longitude``/``latitude`` or ``x``/``y``) or a ``wkt`` column. CSV is read as UTF-8
    (with or without BOM) or, failing that, GB18030 (what Excel saves on Chinese Windows).

    The file's own CRS is used; ``crs`` says what CRS a file *without* one is in (a shapefile
    without its ``.prj``, a CSV, which otherwise counts as WGS84, or an old-style GeoJSON without
    a ``"crs"`` member, which otherwise counts as WGS84 too). A file with no CRS and no ``crs`` is
    refused; so is a ``crs`` that contradicts the CRS the file declares.

    Every row is checked and every problem collected: a missing required property, a geometry of
    the wrong type, a null or empty geometry, coordinates that are not finite or not lon/lat after
    conversion, an invalid polygon (with GEOS's reason, e.g. ``Self-intersection[112.86 36.84]``),
    an unclosed ring, a CSV cell that is not a number, a repeated ``code``/``client_uuid``. Any
    problem raises :class:`~gis.errors.ImportFailed` whose ``rows`` lists ``(row, reason)``.

    Rows are numbered from 1 in file order, counting data rows only: the first feature of a
    GeoJSON/GeoPackage/Shapefile is row 1; in a CSV the line after the header is row 1 (so row =
    line number - 1 as long as no quoted value spans lines).

    With ``fix=True`` invalid polygons and unclosed rings are repaired (``shapely.make_valid``,
    keeping the polygonal parts) instead of refused; rows that cannot be repaired are still
    reported. The repaired row numbers are in ``result.attrs["repaired_rows"]``.

    Grids come back as MultiPolygon; buildings as Polygon (a one-part MultiPolygon is unwrapped);
    facilities and issues as Point. Columns: the kind's properties (absent optional ones are added
    empty), then any other columns of the file, then ``geometry``; the index is 0..n-1. Text
    properties are ``str`` (numeric codes turned back into text), ``floors``/``households`` are
    ``Int64`` and ``reported_at`` is a timezone-aware datetime in Asia/Shanghai (a time without an
    offset is taken to be Beijing time).
    """
    spec = _spec_for(kind)
    path = Path(path)
    assumed = _parse_crs(crs)
    if path.suffix.lower() not in _READ_SUFFIXES:
        raise ImportFailed(
            f"{path.name}: expected a file ending in {', '.join(_READ_SUFFIXES)}, "
            f"got '{path.suffix or '(no extension)'}'",
            zh=f"{path.name}：文件扩展名应为 {', '.join(_READ_SUFFIXES)} 之一，"
               f"收到 '{path.suffix or '（无扩展名）'}'",
        )
    if not path.exists():
        raise ImportFailed(f"{path}: no such file", zh=f"{path}：文件不存在")
    return _read_checked(path, kind, spec, fix=fix, assumed=assumed, layer=layer)


def _spec_for(kind: str) -> _KindSpec:
    if kind not in _SPECS:
        raise ValueError(f"'kind' should be one of {', '.join(KINDS)}, got {kind!r}")
    return _SPECS[kind]


def _parse_crs(crs: str | int | CRS | None) -> CRS | None:
    if crs is None:
        return None
    try:
        return CRS.from_user_input(crs)
    except CRSError as exc:
        raise UnknownCRS(f"expected a CRS such as 'EPSG:4326' or 'EPSG:4547', got {crs!r}",
                         zh=f"坐标系应形如 'EPSG:4326' 或 'EPSG:4547'，收到 {crs!r}") from exc


def _read_checked(path, kind, spec, *, fix, assumed, layer) -> gpd.GeoDataFrame:
    """While checking, the frame's index holds the row numbers the problems refer to."""
    if path.suffix.lower() == ".csv":
        frame, problems, repaired = *_read_csv(path, assumed), []
    else:
        frame, problems, repaired = _read_vector(path, kind, layer, fix=fix)
    unreadable = {row for row, _ in problems}
    frame = _restore_property_names(_to_wgs84(frame, assumed, path), spec)
    missing = [p for p in spec.required if p not in frame.columns]
    problems += _check_properties(frame, spec)
    geometry, geometry_problems, fixed = _check_geometries(frame.geometry, spec, fix, unreadable)
    problems += geometry_problems
    if missing or problems:
        problems.sort(key=lambda problem: problem[0])
        raise ImportFailed(
            _failure_message(path, kind, spec, missing, problems, len(frame)), rows=problems,
            zh=_failure_message(path, kind, spec, missing, problems, len(frame), "zh"),
        )
    result = _finish(frame.set_geometry(geometry), spec)
    result.attrs["repaired_rows"] = sorted(set(repaired + fixed))
    return result


# --- reading the file -------------------------------------------------------------------------


def _read_vector(path: Path, kind: str, layer: str | None, *, fix: bool):
    """Read a GDAL vector file; geometries GEOS cannot even build (unclosed rings) become None and
    are reported, or closed when ``fix``."""
    layer = _choose_layer(path, kind, layer)
    with warnings.catch_warnings():
        # GDAL warns about unclosed rings; we report them per row instead.
        warnings.filterwarnings("ignore", message="Non closed ring detected")
        # a column mixing numbers and text stays text; the row checks say what is wrong with it
        warnings.filterwarnings("ignore", message="Could not parse column")
        frame = gpd.read_file(
            path,
            engine="pyogrio",
            layer=layer,
            force_2d=True,
            on_invalid="ignore",
            datetime_as_string=True,
        )
        frame.index = pd.RangeIndex(1, len(frame) + 1)
        problems, mended = _unreadable_geometries(frame, path, layer, fix=fix)
    return frame, problems, mended


def _choose_layer(path: Path, kind: str, layer: str | None) -> str | None:
    try:
        names = [str(name) for name in pyogrio.list_layers(path)[:, 0]]
    except pyogrio.errors.DataSourceError as exc:
        raise ImportFailed(f"{path.name}: not a readable GIS file ({exc})",
                           zh=f"{path.name}：不是可读取的 GIS 文件（{exc}）") from exc
    if layer is not None and layer not in names:
        raise ImportFailed(f"{path.name}: expected a layer named {layer!r}, found {names}",
                           zh=f"{path.name}：没有名为 {layer!r} 的图层，只有 {names}")
    if layer is None and len(names) > 1:
        if kind not in names:
            raise ImportFailed(f"{path.name} holds several layers {names}; say which with layer=",
                               zh=f"{path.name} 含有多个图层 {names}；请用 layer= 指定")
        return kind
    return layer


def _unreadable_geometries(frame: gpd.GeoDataFrame, path: Path, layer, *, fix: bool):
    """Rows whose stored geometry exists but failed to parse: say why, or mend them if ``fix``."""
    null = np.flatnonzero(frame.geometry.isna().to_numpy())
    problems, mended = [], []
    if len(null) == 0:
        return problems, mended
    _, _, wkb, _ = pyogrio.raw.read(path, layer=layer, columns=[], force_2d=True)
    for i in null:
        row = int(frame.index[i])
        if wkb[i] is None:
            continue
        if fix and (geom := shapely.from_wkb(wkb[i], on_invalid="fix")) is not None:
            frame.loc[row, "geometry"] = geom
            mended.append(row)
        else:
            problems.append((row, f"unreadable geometry: {_geos_reason(wkb[i])}"))
    return problems, mended


def _geos_reason(wkb: bytes) -> str:
    try:
        shapely.from_wkb(wkb)
    except shapely.errors.GEOSException as exc:
        return _geos_message(exc)
    return "unknown reason"


def _geos_message(exc: Exception) -> str:
    """GEOS's message without its exception class name, with a plain hint where it helps."""
    reason = str(exc).split(": ", 1)[-1]
    if "closed linestring" in reason:
        reason += " (unclosed ring)"
    return reason


def _read_csv(path: Path, assumed: CRS | None):
    table = _read_csv_table(path)
    crs = assumed or CRS.from_user_input(WGS84)
    wkt_column = _find_column(table, _WKT_COLUMNS)
    if wkt_column is not None:
        geometry, problems = _geometries_from_wkt(table[wkt_column])
        table = table.drop(columns=[wkt_column])
    else:
        lon_column, lat_column = _lonlat_columns(table, path)
        geometry, problems = _points_from_columns(table[lon_column], table[lat_column])
        table = table.drop(columns=[lon_column, lat_column])
    table = table.where(table.apply(lambda column: column.str.strip()) != "", None)
    return gpd.GeoDataFrame(table, geometry=geometry, crs=crs), problems


def _read_csv_table(path: Path) -> pd.DataFrame:
    """All cells as text (codes keep their leading zeros); blank lines skipped but counted."""
    options = dict(dtype=str, keep_default_na=False, skip_blank_lines=False)
    try:
        try:
            table = pd.read_csv(path, encoding="utf-8-sig", **options)
        except UnicodeDecodeError:
            table = pd.read_csv(path, encoding="gb18030", **options)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ImportFailed(f"{path.name}: expected a CSV file with a header line ({exc})",
                           zh=f"{path.name}：应为带表头行的 CSV 文件（{exc}）") from exc
    table.columns = [str(c).strip() for c in table.columns]
    table.index = pd.RangeIndex(1, len(table) + 1)
    blank = (table.apply(lambda col: col.str.strip()) == "").all(axis=1)
    return table[~blank]


def _find_column(table: pd.DataFrame, names) -> str | None:
    lowered = {str(c).lower(): c for c in table.columns}
    return next((lowered[n] for n in names if n in lowered), None)


def _lonlat_columns(table: pd.DataFrame, path: Path) -> tuple[str, str]:
    for lon, lat in _LONLAT_COLUMNS:
        lon_column, lat_column = _find_column(table, [lon]), _find_column(table, [lat])
        if lon_column is not None and lat_column is not None:
            return lon_column, lat_column
    pairs = ", ".join(f"{lon}/{lat}" for lon, lat in _LONLAT_COLUMNS)
    raise ImportFailed(
        f"{path.name}: expected coordinate columns ({pairs}) or a 'wkt' column, "
        f"got columns {list(table.columns)}",
        zh=f"{path.name}：应有坐标列（{pairs}）或 'wkt' 列，实际列为 {list(table.columns)}",
    )


def _points_from_columns(lon: pd.Series, lat: pd.Series):
    x = pd.to_numeric(lon.str.strip(), errors="coerce")
    y = pd.to_numeric(lat.str.strip(), errors="coerce")
    problems = _bad_numbers(lon, x, "lon") + _bad_numbers(lat, y, "lat")
    ok = x.notna() & y.notna()
    geometry = np.full(len(lon), None, dtype=object)
    geometry[ok.to_numpy()] = shapely.points(x[ok].to_numpy(), y[ok].to_numpy())
    return gpd.GeoSeries(geometry, index=lon.index), problems


def _bad_numbers(raw: pd.Series, number: pd.Series, name: str) -> list[tuple[int, str]]:
    return [
        (
            int(row),
            f"{name} {raw[row]!r} is not a number" if raw[row].strip() else f"{name} is empty",
        )
        for row in raw.index[number.isna()]
    ]


def _geometries_from_wkt(wkt: pd.Series):
    geometry = np.full(len(wkt), None, dtype=object)
    problems = []
    for position, (row, text) in enumerate(wkt.items()):
        if not text.strip():
            continue  # reported as "no geometry" later
        try:
            geometry[position] = shapely.from_wkt(text)
        except shapely.errors.GEOSException as exc:
            problems.append((int(row), f"unreadable WKT geometry: {_geos_message(exc)}"))
    return gpd.GeoSeries(geometry, index=wkt.index), problems


# --- CRS ----------------------------------------------------------------------------------------


def _to_wgs84(frame: gpd.GeoDataFrame, assumed: CRS | None, path: Path) -> gpd.GeoDataFrame:
    if frame.crs is None:
        if assumed is None:
            raise ImportFailed(
                f"{path.name} does not say which coordinate system it uses (a shapefile without "
                "its .prj file?); expected a CRS in the file, or pass crs=, e.g. crs='EPSG:4326' "
                "for WGS84 lon/lat or crs='EPSG:4547' for CGCS2000 Gauss-Kruger CM 114E",
                zh=f"{path.name} 未说明所用坐标系（是否缺少 shapefile 的 .prj 文件？）；请在文件中"
                   "给出坐标系，或传入 crs=，如 WGS84 经纬度用 crs='EPSG:4326'，"
                   "CGCS2000 高斯-克吕格 114°E 中央经线用 crs='EPSG:4547'",
            )
        frame = frame.set_crs(assumed)
    elif assumed is not None and not CRS(frame.crs).equals(assumed, ignore_axis_order=True):
        if _crs_only_by_geojson_default(path):
            return frame.set_crs(assumed, allow_override=True).to_crs(WGS84)
        raise ImportFailed(
            f"{path.name} declares its CRS as {CRS(frame.crs).to_string()}, but crs="
            f"{assumed.to_string()} was given; crs= is only for files that declare none",
            zh=f"{path.name} 已声明坐标系为 {CRS(frame.crs).to_string()}，却又给了 crs="
               f"{assumed.to_string()}；crs= 只用于未声明坐标系的文件",
        )
    return frame.to_crs(WGS84)


def _crs_only_by_geojson_default(path: Path) -> bool:
    """GDAL gives every GeoJSON WGS84 (RFC 7946), also an old-style one in projected coordinates
    without a "crs" member. For such a file ``crs=`` is what the sender says it is in."""
    if path.suffix.lower() not in (".geojson", ".json"):
        return False
    with path.open("rb") as fh:
        head = fh.read(_GEOJSON_PEEK_BYTES)
        fh.seek(max(path.stat().st_size - _GEOJSON_PEEK_BYTES, 0))
        tail = fh.read()
    # a top-level "crs" member comes before "features" (GDAL) or after it, at the end (geopandas)
    return b'"crs"' not in head.split(b'"features"', 1)[0] and b'"crs"' not in tail


# --- checking rows -------------------------------------------------------------------------------


def _restore_property_names(frame: gpd.GeoDataFrame, spec: _KindSpec) -> gpd.GeoDataFrame:
    """Match columns to the kind's properties ignoring case and the shapefile's 10-character
    truncation (``client_uui`` -> ``client_uuid``)."""
    renames = {}
    for prop in spec.properties:
        if prop in frame.columns:
            continue
        for column in frame.columns:
            name = str(column).lower()
            truncated = len(name) == _SHAPEFILE_NAME_LIMIT and prop.startswith(name)
            if column not in renames and (name == prop or truncated):
                renames[column] = prop
                break
    return frame.rename(columns=renames)


def _check_properties(frame: gpd.GeoDataFrame, spec: _KindSpec) -> list[tuple[int, str]]:
    problems = []
    for prop in spec.required:
        if prop in frame.columns:
            empty = frame[prop].map(_is_blank)
            problems += [
                (int(row), f"missing required property '{prop}'") for row in frame.index[empty]
            ]
    for prop in spec.integers:
        if prop in frame.columns:
            problems += _check_whole_numbers(frame[prop], prop)
    if "reported_at" in spec.properties and "reported_at" in frame.columns:
        problems += _check_timestamps(frame["reported_at"])
    for prop in spec.unique:
        if prop in frame.columns:
            problems += _check_unique(frame[prop].map(_as_text), prop)
    return problems


def _is_blank(value) -> bool:
    return (
        value is None
        or (isinstance(value, float) and np.isnan(value))
        or (isinstance(value, str) and not value.strip())
        or value is pd.NA
        or value is pd.NaT
    )


def _as_text(value):
    """Identifiers read as numbers (140429001001001 or 3.0) become text again."""
    if _is_blank(value):
        return None
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _as_whole_number(value):
    if _is_blank(value):
        return None
    number = float(value)
    if not number.is_integer() or number < 0:
        raise ValueError(value)
    return int(number)


def _check_whole_numbers(values: pd.Series, prop: str) -> list[tuple[int, str]]:
    problems = []
    for row, value in values.items():
        try:
            _as_whole_number(value)
        except (TypeError, ValueError):
            problems.append((int(row), f"{prop} should be a whole number >= 0, got {value!r}"))
    return problems


def _check_timestamps(values: pd.Series) -> list[tuple[int, str]]:
    problems = []
    for row, value in values.items():
        if _is_blank(value):
            continue
        try:
            _as_timestamp(value)
        except (TypeError, ValueError):
            problems.append((int(row), f"reported_at should be a date and time, got {value!r}"))
    return problems


def _as_timestamp(value) -> pd.Timestamp:
    if _is_blank(value):
        return pd.NaT
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        return stamp.tz_localize(BEIJING_TZ_NAME)
    return stamp.tz_convert(BEIJING_TZ_NAME)


def _check_unique(values: pd.Series, prop: str) -> list[tuple[int, str]]:
    first_row: dict[str, int] = {}
    problems = []
    for row, value in values.items():
        if value is None:
            continue
        if value in first_row:
            problems.append((int(row), f"{prop} {value!r} repeats row {first_row[value]}"))
        else:
            first_row[value] = int(row)
    return problems


def _check_geometries(geometry: gpd.GeoSeries, spec: _KindSpec, fix: bool, unreadable: set[int]):
    """Check (and with ``fix`` repair) each geometry, skipping rows already reported unreadable.
    Returns the (possibly repaired) geometries, the problems and the repaired rows."""
    rows = geometry.index.to_numpy()
    geoms = _unwrap_single_parts(geometry.to_numpy(), spec)
    invalid = _invalid_positions(geoms)
    problems, repaired = [], []
    if fix and invalid:
        geoms, failed = _repair(geoms, invalid, spec)
        problems += [(int(rows[i]), reason) for i, reason in failed.items()]
        repaired = [int(rows[i]) for i in invalid if i not in failed]
        invalid = set()
    for i, geom in enumerate(geoms):
        if rows[i] in unreadable:
            continue
        reason = _geometry_problem(geom, spec)
        if reason is None and i in invalid:
            reason = f"invalid geometry: {shapely.is_valid_reason(geom)}"
        if reason is not None:
            problems.append((int(rows[i]), reason))
    return gpd.GeoSeries(geoms, index=geometry.index, crs=geometry.crs), problems, repaired


def _unwrap_single_parts(geoms: np.ndarray, spec: _KindSpec) -> np.ndarray:
    """A single-part kind accepts a multi-geometry with exactly one part."""
    geoms = geoms.copy()
    if "MultiPolygon" in spec.geom_types:
        return geoms
    for i, geom in enumerate(geoms):
        if geom is not None and geom.geom_type.startswith("Multi") and len(geom.geoms) == 1:
            geoms[i] = geom.geoms[0]
    return geoms


def _invalid_positions(geoms: np.ndarray) -> set[int]:
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    return {int(i) for i in np.flatnonzero(present & ~shapely.is_valid(geoms))}


def _geometry_problem(geom, spec: _KindSpec) -> str | None:
    """The first reason, if any, that ``geom`` does not fit ``spec`` (validity aside)."""
    if geom is None:
        return "no geometry"
    if geom.is_empty:
        return "empty geometry"
    if geom.geom_type not in spec.geom_types:
        return f"expected {' or '.join(spec.geom_types)}, got {_describe(geom)}"
    return _coordinate_problem(geom)


def _describe(geom) -> str:
    if geom.geom_type.startswith("Multi") or geom.geom_type == "GeometryCollection":
        return f"{geom.geom_type} with {len(geom.geoms)} parts"
    return geom.geom_type


def _coordinate_problem(geom) -> str | None:
    xy = shapely.get_coordinates(geom)
    if not np.isfinite(xy).all():
        return "coordinates are not finite numbers after conversion to WGS84"
    bad = (np.abs(xy[:, 0]) > 180) | (np.abs(xy[:, 1]) > 90)
    if not bad.any():
        return None
    lon, lat = xy[np.argmax(bad)]
    if abs(lat) <= 180 and abs(lon) <= 90:
        hint = " (lon and lat swapped?)"
    elif max(abs(lon), abs(lat)) > 1000:
        hint = " (metres of a projected CRS? say which with crs=)"
    else:
        hint = ""
    return (
        f"expected lon within +-180 and lat within +-90 after conversion to WGS84, "
        f"got lon {lon:g}, lat {lat:g}{hint}"
    )


def _repair(geoms: np.ndarray, invalid: set[int], spec: _KindSpec):
    """Repair the invalid positions; returns the geometries and {position: why not} failures."""
    geoms, failed = geoms.copy(), {}
    for i in sorted(invalid):
        mended = _polygonal_part(shapely.make_valid(geoms[i]))
        if not spec.multipolygon and mended is not None and len(mended.geoms) == 1:
            mended = mended.geoms[0]
        reason = _repair_failure(geoms[i], mended, spec)
        if reason is None:
            geoms[i] = mended
        else:
            failed[i] = reason
    return geoms, failed


def _polygonal_part(geom):
    polygons = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    if not polygons:
        return None
    union = shapely.union_all(polygons)
    return union if isinstance(union, MultiPolygon) else MultiPolygon([union])


def _repair_failure(original, mended, spec: _KindSpec) -> str | None:
    reason = shapely.is_valid_reason(original)
    if mended is None or mended.is_empty:
        return f"invalid geometry that could not be repaired (nothing polygonal left): {reason}"
    if mended.geom_type not in spec.geom_types:
        return (
            f"invalid geometry that could not be repaired: {reason}; repair gave "
            f"{_describe(mended)}, expected {' or '.join(spec.geom_types)}"
        )
    return None


# --- result -----------------------------------------------------------------------------------------


def _finish(frame: gpd.GeoDataFrame, spec: _KindSpec) -> gpd.GeoDataFrame:
    frame = frame.reset_index(drop=True)
    for prop in spec.properties:
        if prop not in frame.columns:
            frame[prop] = None
    for prop in spec.text:
        frame[prop] = frame[prop].map(_as_text).astype(object)
    for prop in spec.integers:
        frame[prop] = frame[prop].map(_as_whole_number).astype("Int64")
    if "reported_at" in spec.properties:
        stamps = frame["reported_at"].map(_as_timestamp)
        frame["reported_at"] = pd.to_datetime(stamps, utc=True).dt.tz_convert(BEIJING_TZ_NAME)
    # RFC 7946 ring order (exterior counter-clockwise), whatever the format stored.
    geoms = shapely.orient_polygons(frame.geometry.to_numpy())
    if spec.multipolygon:
        geoms = [MultiPolygon([g]) if g.geom_type == "Polygon" else g for g in geoms]
    frame = frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index, crs=frame.crs))
    others = [c for c in frame.columns if c not in spec.properties and c != "geometry"]
    return frame[[*spec.properties, *others, "geometry"]]


_FAILURE_WORDS = {
    "en": ("missing column {missing} (expected {required})",
           "{bad} of {total} rows are bad (first: row {row}: {reason})",
           "{name} cannot be imported as {kind}: {found}", "; "),
    "zh": ("缺少列 {missing}（必需的列：{required}）",
           "{total} 行中有 {bad} 行有误（第一处：第 {row} 行：{reason}）",
           "{name} 无法作为 {kind} 导入：{found}", "；"),
}


def _failure_message(path, kind, spec, missing, problems, total, lang: str = "en") -> str:
    """One line for people, in English or Chinese (the row's reason stays as ``rows`` has it);
    the full list is ``ImportFailed.rows``."""
    missing_text, rows_text, line, joiner = _FAILURE_WORDS[lang]
    found = []
    if missing:
        found.append(missing_text.format(missing=", ".join(missing),
                                          required=", ".join(spec.required)))
    if problems:
        row, reason = problems[0]
        found.append(rows_text.format(bad=len({r for r, _ in problems}), total=total, row=row,
                                      reason=reason))
    return line.format(name=path.name, kind=kind, found=joiner.join(found))


# ---------------------------------------------------------------------------------------------
# write


def write_layer(gdf: gpd.GeoDataFrame, path: str | Path, *, layer: str | None = None) -> Path:
    """Write ``gdf`` to ``path`` in the format its extension names and return the path.

    ``.geojson``/``.json`` -> GeoJSON, ``.gpkg`` -> GeoPackage (``layer`` names the layer, default
    the file name; other layers in the file are kept), ``.shp`` -> Shapefile (field names are cut to
    10 characters; :func:`read_layer` restores GridMap's own), ``.csv`` -> CSV in UTF-8 with BOM
    (Excel opens it correctly): ``lon``/``lat`` columns when every geometry is a point (``x``/``y``
    in a projected CRS), otherwise a ``wkt`` column. Coordinates are written in the CRS of ``gdf``;
    a GeoDataFrame without CRS is taken to be WGS84 (EPSG:4326). An existing single-layer file is
    replaced.
    """
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise TypeError(f"'gdf' should be GeoDataFrame, got {type(gdf).__name__}")
    path = Path(path)
    driver = _WRITE_DRIVERS.get(path.suffix.lower())
    if driver is None:
        raise ValueError(
            f"cannot write {path.name}: expected a file ending in "
            f"{', '.join(_WRITE_DRIVERS)}, got '{path.suffix or '(no extension)'}'"
        )
    if layer is not None and driver != "GPKG":
        raise ValueError(f"'layer' applies to GeoPackage (.gpkg) only, got {path.name}")
    gdf = _with_crs(gdf)
    if driver == "CSV":
        _write_csv(gdf, path)
    else:
        _write_vector(gdf, path, driver, layer)
    return path


def _with_crs(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if gdf.crs is not None:
        return gdf
    xy = shapely.get_coordinates(gdf.geometry.to_numpy())
    if len(xy) and ((np.abs(xy[:, 0]) > 180).any() or (np.abs(xy[:, 1]) > 90).any()):
        raise InvalidCoordinates(
            "the GeoDataFrame has no CRS and coordinates that are not lon/lat; expected a CRS "
            "(gdf.set_crs(...)) or WGS84 coordinates"
        )
    return gdf.set_crs(WGS84)


def _write_vector(gdf: gpd.GeoDataFrame, path: Path, driver: str, layer: str | None) -> None:
    if driver == "ESRI Shapefile":
        gdf = _datetimes_as_text(gdf)  # a shapefile date field would drop the time of day
    elif driver == "GPKG":
        gdf = _datetimes_in_utc(gdf)  # GeoPackage stores times as UTC ('...Z')
    with warnings.catch_warnings():
        # documented: shapefile field names are cut to 10 characters, read_layer restores ours
        warnings.filterwarnings("ignore", message="Column names longer than 10 characters")
        warnings.filterwarnings("ignore", message="Normalized/laundered field name")
        gdf.to_file(path, driver=driver, layer=layer, engine="pyogrio")


def _datetimes_in_utc(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    zoned = [c for c in gdf.columns if isinstance(gdf[c].dtype, pd.DatetimeTZDtype)]
    if not zoned:
        return gdf
    gdf = gdf.copy()
    for column in zoned:
        gdf[column] = gdf[column].dt.tz_convert("UTC")
    return gdf


def _datetimes_as_text(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    gdf = gdf.copy()
    for column in gdf.columns:
        if column != gdf.geometry.name and pd.api.types.is_datetime64_any_dtype(gdf[column]):
            gdf[column] = [None if pd.isna(t) else t.isoformat() for t in gdf[column]]
    return gdf


def _write_csv(gdf: gpd.GeoDataFrame, path: Path) -> None:
    geoms = gdf.geometry.to_numpy()
    table = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    present = ~shapely.is_missing(geoms)
    if present.any() and (shapely.get_type_id(geoms[present]) == 0).all():  # 0: Point
        x_name, y_name = ("lon", "lat") if CRS(gdf.crs).is_geographic else ("x", "y")
        table[x_name] = shapely.get_x(geoms)
        table[y_name] = shapely.get_y(geoms)
    else:
        table["wkt"] = shapely.to_wkt(geoms, rounding_precision=-1)
    table.to_csv(path, index=False, encoding="utf-8-sig")
