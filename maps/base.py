"""What every GridMap page shares: the map and its base layers, the datum shift for GCJ-02 tiles,
our page assets, HTML controls, and rendering to an offline page.

Base maps (docs/ARCHITECTURE.md, "Maps offline"):
offline, no tiles at all, only our own layers on a plain background; with
internet, OpenStreetMap and Tianditu (天地图, CGCS2000, which agrees with WGS84 to well under a
metre, so our layers need no shift) or AMap (高德, GCJ-02). GCJ-02 tiles are offset by a few
hundred metres from WGS84, so on AMap every layer is drawn through :func:`to_datum`; the layer
switcher only offers base maps of the datum the page was built in, and the other datum is a
link that rebuilds the page.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import datetime

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, Figure, MacroElement

from gis.geo.crs import from_wgs84
from gis.rules import BEIJING_TZ_NAME
from maps.assets import PAGE_CSS, PAGE_JS, render_page
from maps.i18n import check_lang, t

try:
    from folium.elements import JSCSSMixin
except ImportError:  # pragma: no cover - folium < 0.15
    from folium.map import JSCSSMixin  # type: ignore[no-redef]

from folium.template import Template

BASEMAPS = ("none", "osm", "tianditu", "amap")
DATUM = {"none": "wgs84", "osm": "wgs84", "tianditu": "wgs84", "amap": "gcj02"}
COORD_DECIMALS = 6  # 0.1 m: below anything a grid or a GPS resolves, and short to ship


@dataclass(frozen=True)
class BaseMapOptions:
    """Which base map to draw. ``online`` says whether the deployment reaches tile servers;
    without it only "none" is possible, whatever is asked."""

    basemap: str = "none"
    online: bool = False
    tianditu_key: str | None = None

    def __post_init__(self) -> None:
        if self.basemap not in BASEMAPS:
            raise ValueError(f"basemap should be one of {BASEMAPS}, got {self.basemap!r}")

    @property
    def effective(self) -> str:
        if not self.online:
            return "none"
        if self.basemap == "tianditu" and not self.tianditu_key:
            return "none"
        return self.basemap

    @property
    def datum(self) -> str:
        return DATUM[self.effective]

    def available(self) -> list[str]:
        """Base maps a page of this datum can switch between."""
        if not self.online:
            return ["none"]
        names = ["none", "osm"] + (["tianditu"] if self.tianditu_key else [])
        return ["none", "amap"] if self.datum == "gcj02" else names


# -- the datum shift --------------------------------------------------------------------------------
def to_datum(frame: gpd.GeoDataFrame, datum: str) -> gpd.GeoDataFrame:
    """``frame`` (EPSG:4326) with coordinates moved to ``datum`` ("wgs84": unchanged, "gcj02":
    shifted as AMap's tiles are) and rounded to COORD_DECIMALS. The CRS label stays EPSG:4326:
    GCJ-02 has no EPSG code, and the shifted frame only ever goes to the browser."""
    if not isinstance(frame, gpd.GeoDataFrame):
        raise TypeError(f"'frame' should be a GeoDataFrame, got {type(frame)}")
    if frame.crs is None or frame.crs.to_epsg() != 4326:
        raise ValueError(f"'frame' should be in EPSG:4326, got {frame.crs}")
    if datum not in ("wgs84", "gcj02"):
        raise ValueError(f"datum should be 'wgs84' or 'gcj02', got {datum!r}")
    out = frame.copy()
    if frame.empty:
        return out

    def move(coords: np.ndarray) -> np.ndarray:
        if datum == "gcj02":
            lon, lat = from_wgs84(coords[:, 0], coords[:, 1], "gcj02")
            coords = np.column_stack([lon, lat])
        return np.round(coords, COORD_DECIMALS)

    out.geometry.values[:] = shapely.transform(frame.geometry.values, move)
    return out


def latlon_to_datum(lat: np.ndarray, lon: np.ndarray, datum: str) -> tuple[np.ndarray, np.ndarray]:
    """Point arrays moved to ``datum`` (see :func:`to_datum`), rounded to 5 decimals (1 m),
    which is finer than any heat kernel."""
    lat, lon = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
    if datum == "gcj02" and lat.size:
        lon, lat = from_wgs84(lon, lat, "gcj02")
    return np.round(lat, 5), np.round(lon, 5)


# -- the map --------------------------------------------------------------------------------------------
def new_map(options: BaseMapOptions, lang: str, *, location=(36.84, 112.86), zoom: int = 15,
            title: str = "GridMap", max_zoom: int = 20) -> folium.Map:
    """A Folium map in its own Figure, with the base layers of ``options`` and our page assets."""
    check_lang(lang)
    figure = Figure(title=title)
    figure.header.add_child(RawHtml(
        '<meta name="viewport" content="width=device-width, initial-scale=1.0, '
        'maximum-scale=1.0, user-scalable=no">'), name="viewport")
    m = folium.Map(location=list(location), zoom_start=zoom, tiles=None, max_zoom=max_zoom,
                   control_scale=True, prefer_canvas=False, zoom_control=True)
    figure.add_child(m)
    m.add_child(PageAssets())
    _add_base_layers(m, options, lang)
    return m


def _add_base_layers(m: folium.Map, options: BaseMapOptions, lang: str) -> None:
    chosen, names = options.effective, options.available()
    for name in names:
        layer = _base_layer(name, options, lang)
        layer.show = name == chosen
        layer.control = len(names) > 1
        m.add_child(layer)
        if name == "tianditu":  # Tianditu's labels are a separate layer
            label = _tianditu_labels(options, lang)
            label.show = name == chosen
            m.add_child(label)


def _base_layer(name: str, options: BaseMapOptions, lang: str) -> folium.map.Layer:
    label = t(f"basemap_{name}", lang)
    if name == "none":
        # No tiles at all: an empty base layer over the page's plain background, so the offline
        # map makes no tile request (the community outlines and streets come from our data).
        return folium.FeatureGroup(name=label, overlay=False)
    if name == "osm":
        return folium.TileLayer(
            tiles="https://tile.openstreetmap.org/{z}/{x}/{y}.png", name=label, overlay=False,
            attr='&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a>',
            max_zoom=20, max_native_zoom=19)
    if name == "tianditu":
        return folium.TileLayer(
            tiles=_tianditu_url("vec", options.tianditu_key), name=label, overlay=False,
            attr="&copy; 天地图 GS(2024)0568号", subdomains="01234567", max_zoom=20,
            max_native_zoom=18)
    return folium.TileLayer(  # amap
        tiles="https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
              "&x={x}&y={y}&z={z}",
        name=label, overlay=False, attr="&copy; 高德地图 (GCJ-02)", subdomains="1234",
        max_zoom=20, max_native_zoom=18)


def _tianditu_url(layer: str, key: str | None) -> str:
    # "_w" tile matrix: Web Mercator on CGCS2000, the one Leaflet's default CRS can show.
    return (f"https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile"
            f"&VERSION=1.0.0&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
            f"&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}")


def _tianditu_labels(options: BaseMapOptions, lang: str) -> folium.TileLayer:
    layer = "eva" if lang == "en" else "cva"
    return folium.TileLayer(tiles=_tianditu_url(layer, options.tianditu_key), attr="天地图",
                            name=t("basemap_tianditu", lang) + " (注记)", overlay=True,
                            control=False, subdomains="01234567", max_zoom=20, max_native_zoom=18)


# -- page assets and controls -------------------------------------------------------------------------
class PageAssets(JSCSSMixin):
    """Links our own CSS and JS (maps/static) into the page header, after folium's."""

    _template = Template("")
    default_js = [(f"gridmap-js-{i}", url) for i, url in enumerate(PAGE_JS)]
    default_css = [(f"gridmap-css-{i}", url) for i, url in enumerate(PAGE_CSS)]


class RawHtml(Element):
    """HTML put into the page as it is. branca's ``Element(text)`` compiles its text as a Jinja
    template, so a name from data such as "{{ 7*7 }}" would be evaluated on the server; here the
    text is only ever a value. The HTML must already be escaped."""

    _template = Template("{{ this.html }}")

    def __init__(self, html_text: str):
        super().__init__()
        self._name = "RawHtml"
        self.html = html_text


class HtmlControl(MacroElement):
    """A Leaflet control holding static HTML (legends, info cards). ``css_class`` names it for
    styles and tests. The HTML must already be escaped."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.control({position: {{ this.position|tojson }}});
        {{ this.get_name() }}.onAdd = function () {
            var div = L.DomUtil.create('div', {{ this.css_class|tojson }});
            div.innerHTML = {{ this.html|tojson }};
            L.DomEvent.disableClickPropagation(div);
            L.DomEvent.disableScrollPropagation(div);
            return div;
        };
        {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, html_text: str, *, position: str = "bottomright", css_class: str = ""):
        super().__init__()
        self._name = "HtmlControl"
        self.html = html_text
        self.position = position
        self.css_class = f"leaflet-control gm-control {css_class}".strip()


class PageInit(MacroElement):
    """Calls ``GridMap.init(map, options)`` (maps/static/gridmap.js) once the map's layers
    exist; ``layers`` maps option names to Folium layers whose JS variables are passed."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        GridMap.init({{ this._parent.get_name() }}, Object.assign({{ this.options|tojson }}, {
            {%- for key, layer in this.layers.items() %}
            {{ key|tojson }}: {{ layer.get_name() }},
            {%- endfor %}
        }));
        {% endmacro %}
    """)

    def __init__(self, options: dict, layers: dict | None = None):
        super().__init__()
        self._name = "PageInit"
        self.options = options
        self.layers = layers or {}


def legend_html(title: str, rows: list[str]) -> str:
    """A collapsible legend: a header button (touch-sized) and its rows (escaped HTML)."""
    body = "".join(f'<div class="gm-legend-row">{r}</div>' for r in rows)
    return (f'<button type="button" class="gm-legend-toggle" aria-expanded="true">'
            f'{esc(title)}</button><div class="gm-legend-body">{body}</div>')


def swatch(colour: str, label: str, *, shape: str = "box", icon: str | None = None) -> str:
    inner = f'<i class="fa fa-{esc(icon)}"></i>' if icon else ""
    return (f'<span class="gm-swatch gm-swatch-{shape}" style="background:{esc(colour)}">{inner}'
            f'</span><span>{esc(label)}</span>')


def page_query(lang: str, options: BaseMapOptions) -> str:
    """The query that carries a page's language and base map on to the pages it links to."""
    query = f"lang={lang}"
    return query + (f"&basemap={options.basemap}" if options.basemap != "none" else "")


def with_query(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


def esc(value) -> str:
    """HTML-escape anything shown from data: descriptions and names are user input."""
    return html.escape("" if value is None else str(value), quote=True)


def local_time(ts) -> str:
    """A timestamp as Beijing time to the minute, as the community reads it."""
    return pd.Timestamp(ts).tz_convert(BEIJING_TZ_NAME).strftime("%Y-%m-%d %H:%M")


def age_text(ts, now: datetime, lang: str) -> str:
    """How long ago ``ts`` was: hours up to two days, days after."""
    hours = max((now - pd.Timestamp(ts)).total_seconds() / 3600.0, 0.0)
    if hours < 48:
        return f"{hours:.0f} {t('hours', lang)}"
    return f"{hours / 24:.0f} {t('days', lang)}"


def render(m: folium.Map) -> str:
    """The page as HTML with every asset under /static/ (raises if a CDN link would remain)."""
    return render_page(m)


def fit(m: folium.Map, frame: gpd.GeoDataFrame) -> None:
    if frame is not None and not frame.empty:
        minx, miny, maxx, maxy = frame.total_bounds
        m.fit_bounds([[miny, minx], [maxy, maxx]])


def geojson(frame: gpd.GeoDataFrame, columns: list[str], *, html: tuple[str, ...] = ()) -> dict:
    """GeoJSON of ``columns`` only (a page ships what it shows, nothing more), NaN and NaT as
    null, numpy scalars and timestamps as plain JSON values. Geometries go through GEOS's own
    writer (``shapely.to_geojson``): a few times faster than ``__geo_interface__`` per feature.

    Text is HTML-escaped, except in the ``html`` columns (HTML we built and escaped ourselves):
    folium's GeoJSON tooltips and popups and Leaflet's bound tooltips put property values into
    the page as HTML, so a name from data must arrive as text."""
    values = frame[columns].astype(object)
    values = values.where(frame[columns].notna(), None)
    raw = [c in html for c in columns]
    records = [{c: _plain(v, keep) for c, v, keep in zip(columns, row, raw, strict=True)}
               for row in values.itertuples(index=False, name=None)]
    shapes = shapely.to_geojson(frame.geometry.values)
    features = [{"id": str(i), "type": "Feature", "properties": props,
                 "geometry": None if shape is None else json.loads(shape)}
                for i, (props, shape) in enumerate(zip(records, shapes, strict=True))]
    return {"type": "FeatureCollection", "features": features}


def _plain(value, html: bool = False):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str):
        return value if html else esc(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
