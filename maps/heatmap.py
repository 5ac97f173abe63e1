"""The leaders' issue heatmap (``/maps/heatmap``), drawn from server-side aggregates.

Layers: a density heatmap of weighted cells (Leaflet.heat), a per-grid choropleth whose colour
switches between raw counts and counts per 1,000 households (one GeoJSON layer restyled in the
browser, so the grid outlines ship once), Getis-Ord Gi* hotspot outlines, and a weekly animation
(HeatMapWithTime). A side panel holds the filter form, the colour switch with its legend, the
significant hotspots and the busiest grids. Nothing here ships one point per issue: the page's
size depends on the cell budget and the number of grids, not on the number of issues. Over more
grids than :data:`gis.queries.map_data.AREA_BUDGET` the choropleth, hotspots and tables are of
communities or streets (``data.level``), their outlines simplified to the pixel of the zoom the
page opens on, so a whole city's page weighs about what a district's does.
"""

from __future__ import annotations

from urllib.parse import urlencode

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium import plugins

from gis.queries.map_data import HeatmapData
from gis.rules import FINAL_STATUSES, ISSUE_STATUSES, OPEN_STATUSES
from maps.base import (
    BaseMapOptions,
    PageInit,
    RawHtml,
    esc,
    fit,
    geojson,
    latlon_to_datum,
    new_map,
    swatch,
    to_datum,
)
from maps.colours import quantile_classes
from maps.heat_scale import fit_zoom, heat_scale, metres_per_px
from maps.i18n import status_label, t

HOTSPOT_COLOUR = "#7a0177"
MODES = ("raw", "rate")
INITIAL_ZOOM = 14  # before the map is fitted to the grids (and when no grid matches)
SIMPLIFY_DEG = 2e-6  # ~0.2 m: drops only collinear and near-duplicate vertices
TOP_N = 10
TOOLTIP_FIELDS = ("name", "code", "community", "worker", "issues", "per_1000", "open", "overdue",
                  "on_time_rate", "gi_z", "gi_p")
AREA_TOOLTIP_FIELDS = ("name", "code", "community", "n_grids", "issues", "per_1000", "open",
                       "overdue", "on_time_rate", "gi_z", "gi_p")
M_PER_DEG_LAT = 111_320.0
# Per level (gis.queries.map_data.AREA_LEVELS): the label of the ``community`` column (the region
# a level up), of the outlines drawn for context, of the choropleth, tables; where a row links.
_LEVEL = {
    "grid": {"up": "community", "outlines": "communities", "choropleth": "choropleth",
             "top": "top_grids", "hot": "hotspot_list", "code": "grid_code"},
    "community": {"up": "street", "outlines": "street_outlines",
                  "choropleth": "choropleth_community", "top": "top_communities",
                  "hot": "hotspot_list_community", "code": "area_code"},
    "street": {"up": "district", "outlines": "district_outlines",
               "choropleth": "choropleth_street", "top": "top_streets",
               "hot": "hotspot_list_street", "code": "area_code"},
}


def build_heatmap(data: HeatmapData, *, lang: str = "zh", options: BaseMapOptions | None = None,
                  mode: str = "raw") -> folium.Map:
    """The leader heatmap page for ``data`` (:func:`gis.queries.map_data.heatmap_data`)."""
    if mode not in MODES:
        raise ValueError(f"mode should be one of {MODES}, got {mode!r}")
    options = options or BaseMapOptions()
    datum = options.datum
    m = new_map(options, lang, title=t("heatmap_title", lang), zoom=INITIAL_ZOOM)
    level = data.level
    grids = to_datum(_simplified(data.grids, level), datum)
    fit(m, grids)
    zoom = fit_zoom(grids.total_bounds) if not grids.empty else INITIAL_ZOOM
    _context(m, grids, lang, level)
    classes = {"raw": quantile_classes(grids["issues"]),
               "rate": quantile_classes(grids["per_1000"])}
    choropleth = _choropleth(m, grids, classes, lang, level)
    heat = _heat(m, data, datum, lang, zoom)
    animation, animation_max = _animation(m, data, datum, lang, zoom)
    _hotspots(m, grids, lang)
    folium.LayerControl(position="topright", collapsed=True).add_to(m)
    plugins.Fullscreen(position="topleft", title=t("fullscreen", lang),
                       title_cancel=t("exit_fullscreen", lang)).add_to(m)
    m.get_root().html.add_child(RawHtml(panel_html(data, classes, lang, options, mode)),
                                name="gm-panel")
    layers = {"choropleth": choropleth, "heat": heat, "animation": animation}
    layers = {name: layer for name, layer in layers.items() if layer is not None}
    m.add_child(PageInit({"lang": lang, "page": "heatmap", "modes": list(MODES), "mode": mode,
                          "animationMax": animation_max, "total": data.total,
                          "cellM": data.cell_m}, layers))
    return m


def _simplified(grids: gpd.GeoDataFrame, level: str = "grid") -> gpd.GeoDataFrame:
    """Outlines with shared edges simplified together (no slivers or gaps appear): a grid's by
    :data:`SIMPLIFY_DEG`, a community's or street's to a pixel of the zoom the page opens on
    (:func:`pixel_deg`), its vertices rounded to a tenth of that."""
    if grids.empty:
        return grids
    out = grids.copy()
    if level == "grid":
        out.geometry.values[:] = shapely.coverage_simplify(grids.geometry.values, SIMPLIFY_DEG)
        return out
    tolerance = pixel_deg(grids.total_bounds)
    simple = shapely.coverage_simplify(grids.geometry.values, tolerance)
    grid_size = 10.0 ** np.floor(np.log10(tolerance / 10))
    out.geometry.values[:] = shapely.set_precision(simple, grid_size)
    return out


def pixel_deg(bounds) -> float:
    """Degrees of latitude a screen pixel spans at the zoom ``bounds`` open on."""
    mid_lat = (bounds[1] + bounds[3]) / 2
    return metres_per_px(mid_lat, fit_zoom(bounds)) / M_PER_DEG_LAT


def _context(m: folium.Map, grids: gpd.GeoDataFrame, lang: str, level: str = "grid") -> None:
    """Outlines of the regions a level up (a grid's community, a community's street...),
    dissolved from the areas drawn: readable with no base map."""
    if grids.empty:
        return
    comm = grids.dissolve(by="community", as_index=False)[["community", "geometry"]]
    folium.GeoJson(
        geojson(comm, ["community"]), name=t(_LEVEL[level]["outlines"], lang),
        style_function=lambda f: {"color": "#333", "weight": 2.5, "fill": False},
        tooltip=folium.GeoJsonTooltip(fields=["community"], labels=False),
    ).add_to(m)


def _with_gi(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` with Gi* columns, empty where none were computed (left out, or not asked)."""
    missing = {"gi_z": np.nan, "gi_p": np.nan, "hotspot": False}
    return frame.assign(**{k: v for k, v in missing.items() if k not in frame})


def _choropleth(m: folium.Map, grids: gpd.GeoDataFrame, classes: dict, lang: str,
                level: str = "grid"):
    if grids.empty:  # filters that match no grid: nothing to colour (and no tooltip fields)
        return None
    frame = grids.assign(colour_raw=[classes["raw"].colour(v) for v in grids["issues"]],
                         colour_rate=[classes["rate"].colour(v) for v in grids["per_1000"]])
    fields = TOOLTIP_FIELDS if level == "grid" else AREA_TOOLTIP_FIELDS
    labels = {"code": _LEVEL[level]["code"], "community": _LEVEL[level]["up"], "n_grids": "grids"}
    frame = _with_gi(frame)
    layer = folium.GeoJson(
        geojson(frame, [*fields, "hotspot", "colour_raw", "colour_rate"]),
        name=t(_LEVEL[level]["choropleth"], lang),
        style_function=lambda f: {"fillColor": f["properties"]["colour_raw"], "color": "#555",
                                  "weight": 1, "fillOpacity": 0.45},
        highlight_function=lambda f: {"weight": 3, "color": "#000"},
        tooltip=folium.GeoJsonTooltip(fields=list(fields),
                                      aliases=[t(labels.get(f, f), lang) for f in fields],
                                      localize=True, sticky=True),
    )
    layer.add_to(m)
    return layer


def _heat(m: folium.Map, data: HeatmapData, datum: str, lang: str, zoom: int):
    lat, lon = latlon_to_datum(data.cells["lat"], data.cells["lon"], datum)
    weights = data.cells["weight"].to_numpy(dtype=float)
    scale = heat_scale(lat, lon, weights, cell_m=data.cell_m, zoom=zoom)
    points = np.column_stack([lat, lon, weights])
    layer = plugins.HeatMap(points.tolist(), name=t("heat", lang), radius=scale.radius,
                            blur=scale.blur, min_opacity=scale.min_opacity,
                            max_zoom=scale.max_zoom, max=scale.max)
    layer.add_to(m)
    return layer


def _animation(m: folium.Map, data: HeatmapData, datum: str, lang: str, zoom: int):
    """The weekly animation (heatmap.js, which does not bin): each week's cells on one scale,
    :func:`maps.heat_scale.heat_scale` of the week cells taken week by week."""
    weeks = data.weeks
    if weeks.empty:
        return None, None
    lat, lon = latlon_to_datum(weeks["lat"], weeks["lon"], datum)
    order = np.argsort(weeks["week"].to_numpy(), kind="stable")
    week = weeks["week"].to_numpy()[order]
    weights = weeks["weight"].to_numpy(dtype=float)[order]
    scale = heat_scale(lat[order], lon[order], weights, cell_m=data.week_cell_m, zoom=zoom,
                       frames=week)
    # heatmap.js ignores an alpha above 1 (keeping the last point's), so weights above the
    # scale are capped here, as Leaflet.heat caps its own.
    rows = np.column_stack([lat[order], lon[order], np.minimum(weights, scale.max)]).tolist()
    index, starts = np.unique(week, return_index=True)
    ends = [*starts[1:].tolist(), len(rows)]
    series = [rows[a:b] for a, b in zip(starts.tolist(), ends, strict=True)]
    layer = plugins.HeatMapWithTime(series, index=index.tolist(), name=t("animation", lang),
                                    radius=scale.reach, blur=scale.blur / scale.reach,
                                    min_opacity=0.1, max_opacity=0.8, auto_play=False,
                                    show=False, position="bottomleft")
    layer.add_to(m)
    return layer, scale.max


def _hotspots(m: folium.Map, grids: gpd.GeoDataFrame, lang: str) -> None:
    hot = grids[grids["hotspot"].astype(bool)] if "hotspot" in grids else grids.iloc[0:0]
    group = folium.FeatureGroup(name=f"{t('hotspots', lang)} ({len(hot)})", show=True)
    if not hot.empty:
        folium.GeoJson(
            geojson(hot, ["name", "code", "issues", "gi_z", "gi_p"]),
            style_function=lambda f: {"color": HOTSPOT_COLOUR, "weight": 4, "fill": False},
            tooltip=folium.GeoJsonTooltip(
                fields=["name", "issues", "gi_z", "gi_p"],
                aliases=[t("name", lang), t("issues", lang), t("gi_z", lang), t("gi_p", lang)]),
        ).add_to(group)
    group.add_to(m)


# -- the side panel ---------------------------------------------------------------------------------
def panel_html(data: HeatmapData, classes: dict, lang: str, options: BaseMapOptions,
               mode: str) -> str:
    other = "zh" if lang == "en" else "en"
    query = _query(data, lang=other, basemap=options.basemap)
    parts = [
        '<div id="gm-panel">',
        f'<h1>{esc(t("heatmap_title", lang))}</h1>',
        f'<p class="gm-stat" id="gm-total">{esc(t("total", lang))}: <b>{data.total:,}</b>'
        f' ({esc(t("unassigned", lang))}: {data.unassigned:,})</p>',
        f'<p class="gm-stat">{esc(t("cell_size", lang))}: {data.cell_m:,.0f} m</p>',
        *([f'<p class="gm-stat" id="gm-level">'
           f'{esc(t("by_" + data.level, lang).format(n=f"{data.grid_count:,}"))}</p>']
          if data.level != "grid" else []),
        f'<p><a href="?{esc(query)}">{esc(t("language", lang))}</a></p>',
        _form(data, lang, options),
        f'<h2>{esc(t("colour_by", lang))}</h2><div class="gm-modes">',
    ]
    for m in MODES:
        checked = " checked" if m == mode else ""
        parts.append(f'<label><input type="radio" name="gm-colour-by" value="{m}"{checked}>'
                     f'{esc(t(m, lang))}</label>')
    parts.append("</div>")
    for m in MODES:
        rows = "".join(f'<div class="gm-legend-row">{swatch(c, label)}</div>'
                       for c, label in classes[m].labels(0 if m == "raw" else 1))
        hidden = "" if m == mode else " hidden"
        parts.append(f'<div class="gm-legend-choropleth" data-gm-mode="{m}"{hidden}>{rows}</div>')
    parts.append(f'<div class="gm-legend-row">{swatch(HOTSPOT_COLOUR, t("hotspot", lang), shape="line")}</div>')
    parts += [_hotspot_table(data, lang), _top_table(data, lang), "</div>"]
    return "".join(parts)


def _form(data: HeatmapData, lang: str, options: BaseMapOptions) -> str:
    f = data.filter
    cats = [("", t("all", lang))] + [
        (c.code, c.name_en if lang == "en" else c.name_zh) for c in data.categories.itertuples()]
    statuses = [("", t("all", lang)), ("open", t("open_statuses", lang)),
                ("final", t("final_statuses", lang))]
    statuses += [(s, status_label(s, lang)) for s in ISSUE_STATUSES]
    chosen_status = _status_choice(f.statuses)
    comms = [("", t("all", lang))] + [(c["code"], c["name"]) for c in data.communities]
    community = f.community or ""
    code_of = {c["name"]: c["code"] for c in data.communities}
    community = code_of.get(community, community)
    return "".join([
        f'<h2>{esc(t("filters", lang))}</h2>',
        '<form id="gm-filter" method="get" action="/maps/heatmap">',
        _select("category", t("category", lang), cats, f.categories[0] if f.categories else ""),
        _select("status", t("status", lang), statuses, chosen_status),
        f'<label>{esc(t("since", lang))}<input type="date" name="since" '
        f'value="{esc(f.since or "")}"></label>',
        f'<label>{esc(t("until", lang))}<input type="date" name="until" '
        f'value="{esc(f.until or "")}"></label>',
        _select("community", t("community", lang), comms, community),
        f'<label>{esc(t("grid_code", lang))}<input type="text" name="grid" inputmode="numeric" '
        f'pattern="[0-9]{{15}}" value="{esc(f.grid or "")}"></label>',
        f'<input type="hidden" name="lang" value="{esc(lang)}">',
        f'<input type="hidden" name="basemap" value="{esc(options.basemap)}">',
        f'<button type="submit" class="gm-wide">{esc(t("apply", lang))}</button>',
        f'<a class="gm-wide" href="/maps/heatmap?lang={esc(lang)}">{esc(t("reset", lang))}</a>',
        "</form>",
    ])


def _status_choice(statuses: tuple[str, ...]) -> str:
    if not statuses:
        return ""
    if set(statuses) == set(OPEN_STATUSES):
        return "open"
    if set(statuses) == set(FINAL_STATUSES):
        return "final"
    return statuses[0] if len(statuses) == 1 else ""


def _select(name: str, label: str, choices: list[tuple[str, str]], chosen: str) -> str:
    opts = "".join(f'<option value="{esc(v)}"{" selected" if v == chosen else ""}>{esc(text)}</option>'
                   for v, text in choices)
    return f'<label>{esc(label)}<select name="{name}">{opts}</select></label>'


def _link(row, level: str, lang: str) -> str:
    """A row's name, linking to its grid's map, or to the heatmap of its community."""
    if level == "grid":
        return f'<a href="/maps/grid/{esc(row.code)}?lang={lang}">{esc(row.name)}</a>'
    if level == "community":
        query = urlencode([("community", row.code), ("lang", lang)])
        return f'<a href="/maps/heatmap?{esc(query)}">{esc(row.name)}</a>'
    return esc(row.name)


def _hotspot_table(data: HeatmapData, lang: str) -> str:
    grids, level = data.grids, data.level
    head = f'<h2>{esc(t(_LEVEL[level]["hot"], lang))}</h2>'
    if data.hotspots_left_out:
        return head + f'<p id="gm-hotspots">{esc(t("hotspots_left_out", lang))}</p>'
    grids = _with_gi(grids)
    hot = grids[grids["hotspot"].astype(bool)].sort_values("gi_z", ascending=False).head(TOP_N)
    if hot.empty:
        return head + f'<p id="gm-hotspots">{esc(t("no_hotspots", lang))}</p>'
    rows = "".join(
        f'<tr><td>{_link(r, level, lang)}</td>'
        f'<td class="gm-num">{r.issues:,}</td><td class="gm-num">{r.gi_z:.2f}</td>'
        f'<td class="gm-num">{r.gi_p:.3f}</td></tr>' for r in hot.itertuples())
    return (head + f'<table id="gm-hotspots"><tr><th>{esc(t("name", lang))}</th>'
            f'<th class="gm-num">{esc(t("issues", lang))}</th><th class="gm-num">z</th>'
            f'<th class="gm-num">p</th></tr>{rows}</table>')


def _top_table(data: HeatmapData, lang: str) -> str:
    grids, level = data.grids, data.level
    top = grids.sort_values("issues", ascending=False).head(TOP_N)
    rows = "".join(
        f'<tr><td>{_link(r, level, lang)}</td>'
        f'<td>{esc(r.community)}</td><td class="gm-num">{r.issues:,}</td>'
        f'<td class="gm-num">{"—" if pd.isna(r.per_1000) else f"{r.per_1000:,.1f}"}</td></tr>'
        for r in top.itertuples())
    return (f'<h2>{esc(t(_LEVEL[level]["top"], lang))}</h2><table id="gm-top"><tr>'
            f'<th>{esc(t("name", lang))}</th><th>{esc(t(_LEVEL[level]["up"], lang))}</th>'
            f'<th class="gm-num">{esc(t("issues", lang))}</th>'
            f'<th class="gm-num">{esc(t("per_1000", lang))}</th></tr>{rows}</table>')


def _query(data: HeatmapData, **extra) -> str:
    f = data.filter
    pairs = [("category", c) for c in f.categories] + [("status", s) for s in f.statuses]
    for key in ("since", "until", "community", "grid"):
        value = getattr(f, key)
        if value:
            pairs.append((key, str(value)))
    pairs += [(k, v) for k, v in extra.items() if v]
    return urlencode(pairs)
