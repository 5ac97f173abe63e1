"""The overview (``/maps/overview``): every community and grid, with the grid's worker and open
issues, each grid linking to its tablet map. Grids are coloured by open issues; a side panel
lists them by community."""

from __future__ import annotations

import folium
from folium import plugins
from folium.utilities import JsCode

from gis.queries.map_data import OverviewData
from maps.base import (
    BaseMapOptions,
    PageInit,
    RawHtml,
    esc,
    fit,
    geojson,
    new_map,
    swatch,
    to_datum,
)
from maps.colours import quantile_classes
from maps.i18n import t

LABEL_MIN_ZOOM = 15  # grid labels (name, worker, open issues) from this zoom on


def build_overview(data: OverviewData, *, lang: str = "zh",
                   options: BaseMapOptions | None = None) -> folium.Map:
    options = options or BaseMapOptions()
    datum = options.datum
    m = new_map(options, lang, title=t("overview_title", lang), zoom=14)
    grids = to_datum(data.grids, datum)
    fit(m, grids)
    classes = quantile_classes(grids["open"])
    frame = grids.assign(
        colour=[classes.colour(v) for v in grids["open"]],
        worker=grids["worker"].fillna("—"),
        link=[f'<b>{esc(n)}</b><br>{esc(t("worker", lang))}: {esc(w or "—")}<br>'
              f'{esc(t("open_issues", lang))}: {o}<br>'
              f'<a class="gm-act" href="/maps/grid/{esc(c)}?lang={lang}">'
              f'{esc(t("open_grid_map", lang))}</a>'
              for n, w, o, c in zip(grids["name"], grids["worker"], grids["open"], grids["code"],
                                    strict=True)],
        label=[f"{esc(_short(n, c))}<br>{esc(w or '—')} · {o}"
               for n, c, w, o in zip(grids["name"], grids["community"], grids["worker"],
                                     grids["open"], strict=True)])
    layer = folium.GeoJson(
        geojson(frame, ["code", "name", "community", "worker", "households", "open", "overdue",
                        "on_time_rate", "colour", "link", "label"], html=("link", "label")),
        name=t("grids", lang),
        style_function=lambda f: {"fillColor": f["properties"]["colour"], "color": "#555",
                                  "weight": 1, "fillOpacity": 0.6},
        highlight_function=lambda f: {"weight": 3, "color": "#000"},
        tooltip=folium.GeoJsonTooltip(
            fields=["name", "code", "community", "worker", "open", "overdue", "on_time_rate"],
            aliases=[t("name", lang), t("grid_code", lang), t("community", lang),
                     t("worker", lang), t("open", lang), t("overdue_n", lang),
                     t("on_time_rate", lang)]),
        popup=folium.GeoJsonPopup(fields=["link"], labels=False),
        on_each_feature=JsCode(
            "function (feature, layer) { layer.bindTooltip(feature.properties.label, "
            "{permanent: true, "
            "direction: 'center', className: 'gm-grid-label', interactive: false}); }"),
    )
    layer.add_to(m)
    communities = to_datum(data.communities, datum)
    if not communities.empty:
        folium.GeoJson(
            geojson(communities, ["code", "name", "street"]), name=t("communities", lang),
            style_function=lambda f: {"color": "#222", "weight": 3, "fill": False},
            tooltip=folium.GeoJsonTooltip(fields=["name", "street"], labels=False),
        ).add_to(m)
    folium.LayerControl(position="topright", collapsed=True).add_to(m)
    plugins.Fullscreen(position="topleft", title=t("fullscreen", lang),
                       title_cancel=t("exit_fullscreen", lang)).add_to(m)
    m.get_root().html.add_child(RawHtml(_panel(data, classes, lang)), name="gm-panel")
    m.add_child(PageInit({"lang": lang, "page": "overview", "labelMinZoom": LABEL_MIN_ZOOM},
                         {"grids": layer}))
    return m


def _panel(data: OverviewData, classes, lang: str) -> str:
    other = "zh" if lang == "en" else "en"
    legend = "".join(f'<div class="gm-legend-row">{swatch(c, label)}</div>'
                     for c, label in classes.labels(0))
    parts = [f'<div id="gm-panel"><h1>{esc(t("overview_title", lang))}</h1>',
             f'<p><a href="?lang={other}">{esc(t("language", lang))}</a> · '
             f'<a href="/maps/heatmap?lang={lang}">{esc(t("heatmap_title", lang))}</a></p>',
             f'<h2>{esc(t("open_issues", lang))}</h2>{legend}']
    for community, grids in data.grids.groupby("community", sort=True):
        rows = "".join(
            f'<tr><td><a href="/maps/grid/{esc(r.code)}?lang={lang}">{esc(r.name)}</a></td>'
            f'<td>{esc(r.worker or "—")}</td><td class="gm-num">{r.open:,}</td></tr>'
            for r in grids.sort_values("code").itertuples())
        parts.append(f'<h2>{esc(community)} ({len(grids)})</h2><table class="gm-grid-list">'
                     f'<tr><th>{esc(t("grids", lang))}</th><th>{esc(t("worker", lang))}</th>'
                     f'<th class="gm-num">{esc(t("open", lang))}</th></tr>{rows}</table>')
    parts.append("</div>")
    return "".join(parts)


def _short(name: str, community: str | None) -> str:
    """A grid's name without its community's (labels sit side by side on the overview)."""
    if community and name.startswith(community) and len(name) > len(community):
        return name[len(community):].lstrip(" ·-")
    return name
