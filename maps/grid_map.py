"""The grid worker's tablet map (``/maps/grid/{code}``).

The grid outline is drawn strongly and its neighbours dimmed; buildings carry a label (name and
households); facilities a disc in their category's colour and icon, ringed in red when damaged or
missing; open issues a pin with a popup (category, description, age, due time, status and a link
to act on it, the issue page ``/maps/issue/{id}`` by default), clustered when there are many.
Controls: locate-me, fullscreen, a layer switcher and a collapsible legend, all at least 44 px
for fingers. Laid out for 1024x768 either way up.

Popups are built from :data:`gis.queries.map_data.ISSUE_MAP_COLUMNS` only: reporter contact (personal
data) never reaches this module, and :func:`build_grid_map` refuses a frame that carries it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import folium
import geopandas as gpd
import pandas as pd
from folium import plugins
from folium.utilities import JsCode

from gis.queries.map_data import GridMapData
from maps.base import (
    BaseMapOptions,
    HtmlControl,
    PageInit,
    age_text,
    esc,
    geojson,
    legend_html,
    local_time,
    new_map,
    page_query,
    swatch,
    to_datum,
    with_query,
)
from maps.i18n import facility_status_label, status_label, t

GRID_COLOUR = "#d7301f"
NEIGHBOUR_COLOUR = "#6b6b6b"
BUILDING_COLOUR = "#8c6d4f"
STREET_COLOUR = "#b8b2a7"
BAD_FACILITY = ("damaged", "missing")
CLUSTER_ABOVE = 25  # open issues drawn one by one up to this many, clustered above
LABEL_MIN_ZOOM = 17
PII_COLUMNS = frozenset({"reporter_contact", "phone", "reporter", "contact"})


def build_grid_map(data: GridMapData, *, lang: str = "zh", options: BaseMapOptions | None = None,
                   issue_link: str = "/maps/issue/{id}", now: datetime | None = None) -> folium.Map:
    """The worker's map of one grid, from :func:`gis.queries.map_data.grid_map_data`'s frames.
    ``issue_link`` is where a popup's action link goes ({id}: the issue id); the page's
    language and base map are passed on in its query (:func:`maps.base.page_query`)."""
    _refuse_pii(data.issues)
    options = options or BaseMapOptions()
    datum = options.datum
    now = now or datetime.now(UTC)
    grid = to_datum(data.grid, datum)
    row = grid.iloc[0]
    title = f"{row['name']} · {t('grid_title', lang)}"
    m = new_map(options, lang, title=title, zoom=17)
    minx, miny, maxx, maxy = grid.total_bounds
    m.fit_bounds([[miny, minx], [maxy, maxx]], padding=(20, 20))
    _context(m, data, datum, lang)
    _neighbours(m, to_datum(data.neighbours, datum), lang, options)
    grid_outline(m, grid, lang)
    _buildings(m, to_datum(data.buildings, datum), lang)
    _facilities(m, to_datum(data.facilities, datum), data.facility_categories, lang)
    issue_layer = _issues(m, to_datum(data.issues, datum), data.issue_categories, lang,
                          with_query(issue_link, page_query(lang, options)), now)
    plugins.LocateControl(position="topleft", keepCurrentZoomLevel=False, flyTo=True,
                          strings={"title": t("locate_title", lang)},
                          locateOptions={"enableHighAccuracy": True, "maxZoom": 19}).add_to(m)
    plugins.Fullscreen(position="topleft", title=t("fullscreen", lang),
                       title_cancel=t("exit_fullscreen", lang)).add_to(m)
    folium.LayerControl(position="topright", collapsed=True).add_to(m)
    m.add_child(HtmlControl(_info_html(row, len(data.issues), lang, options), position="bottomleft",
                            css_class="gm-info"))
    m.add_child(HtmlControl(_legend(data, lang), position="bottomright", css_class="gm-legend"))
    m.add_child(PageInit({"lang": lang, "labelMinZoom": LABEL_MIN_ZOOM, "page": "grid",
                          "locateInsecure": t("locate_insecure", lang)},
                         {"issues": issue_layer}))
    return m


def _refuse_pii(issues: pd.DataFrame) -> None:
    leaked = PII_COLUMNS & set(issues.columns)
    if leaked:
        raise ValueError(f"issue rows for a map must not carry personal data; drop {sorted(leaked)}")


def _context(m: folium.Map, data: GridMapData, datum: str, lang: str) -> None:
    """Community outline and streets: the offline base map's own content."""
    group = folium.FeatureGroup(name=t("streets", lang), show=True)
    streets = to_datum(data.streets, datum)
    if not streets.empty:
        folium.GeoJson(
            geojson(streets, ["name"]), name=t("streets", lang),
            style_function=lambda f: {"color": STREET_COLOUR, "weight": 6, "opacity": 0.9},
            tooltip=folium.GeoJsonTooltip(fields=["name"], labels=False),
        ).add_to(group)
    community = to_datum(data.community, datum)
    if not community.empty:
        folium.GeoJson(
            geojson(community, ["name"]),
            style_function=lambda f: {"color": "#444", "weight": 2, "dashArray": "8 6",
                                      "fill": False},
            interactive=False,
        ).add_to(group)
    group.add_to(m)


def grid_outline(m: folium.Map, grid: gpd.GeoDataFrame, lang: str) -> None:
    """The worker's own grid, drawn strongly (also on the issue page)."""
    if grid.empty:
        return
    folium.GeoJson(
        geojson(grid, ["code", "name"]), name=t("grid", lang),
        style_function=lambda f: {"color": GRID_COLOUR, "weight": 5, "fillColor": GRID_COLOUR,
                                  "fillOpacity": 0.06},
        interactive=False,
    ).add_to(m)


def _neighbours(m: folium.Map, neighbours: gpd.GeoDataFrame, lang: str,
                options: BaseMapOptions) -> None:
    if neighbours.empty:
        return
    query = esc(page_query(lang, options))
    frame = neighbours.assign(link=[
        f'<b>{esc(n)}</b><br><a href="/maps/grid/{esc(c)}?{query}">{esc(t("open_grid_map", lang))}</a>'
        for n, c in zip(neighbours["name"], neighbours["code"], strict=True)])
    folium.GeoJson(
        geojson(frame, ["code", "name", "worker", "link"], html=("link",)),
        name=t("neighbours", lang),
        style_function=lambda f: {"color": NEIGHBOUR_COLOUR, "weight": 2, "dashArray": "4 4",
                                  "fillColor": "#9e9e9e", "fillOpacity": 0.18},
        tooltip=folium.GeoJsonTooltip(fields=["name", "worker"],
                                      aliases=[t("name", lang), t("worker", lang)]),
        popup=folium.GeoJsonPopup(fields=["link"], labels=False),
    ).add_to(m)


def _buildings(m: folium.Map, buildings: gpd.GeoDataFrame, lang: str) -> None:
    if buildings.empty:
        return
    unit = "户" if lang != "en" else " hh"
    frame = buildings.assign(label=[f"{n} · {h}{unit}" for n, h in
                                    zip(buildings["name"], buildings["households"], strict=True)])
    folium.GeoJson(
        geojson(frame, ["name", "compound", "floors", "households", "party_households", "label"]),
        name=t("buildings", lang),
        style_function=lambda f: {"color": BUILDING_COLOUR, "weight": 1, "fillColor": "#d9c7b0",
                                  "fillOpacity": 0.8},
        # A permanent label per building (a tooltip bound to the whole layer shows only one).
        on_each_feature=JsCode(
            "function (feature, layer) { layer.bindTooltip(feature.properties.label, "
            "{permanent: true, direction: 'center', className: 'gm-building-label'}); }"),
        popup=folium.GeoJsonPopup(
            fields=["name", "compound", "floors", "households", "party_households"],
            aliases=[t("name", lang), t("compound", lang), t("floors", lang),
                     t("households", lang), t("party_households", lang)]),
    ).add_to(m)


def _facilities(m: folium.Map, facilities: gpd.GeoDataFrame, cats: pd.DataFrame,
                lang: str) -> None:
    group = folium.FeatureGroup(name=t("facilities", lang), show=True)
    lookup = cats.set_index("code").to_dict("index") if not cats.empty else {}
    for f in facilities.itertuples():
        cat = lookup.get(f.category, {"name_zh": f.category, "name_en": f.category,
                                      "icon": "circle", "colour": "#777777"})
        state = "bad" if f.status in BAD_FACILITY else ("repairing" if f.status == "repairing" else "ok")
        name = cat["name_en"] if lang == "en" else cat["name_zh"]
        icon = folium.DivIcon(
            html=f'<div style="background:{esc(cat["colour"])}"><i class="fa fa-{esc(cat["icon"])}"></i></div>',
            icon_size=(30, 30), icon_anchor=(15, 15),
            class_name=f"gm-fac gm-fac-{state} gm-fac-{esc(f.category)}")
        popup = _table([(t("category", lang), name), (t("name", lang), f.name),
                        (t("facility_code", lang), f.code),
                        (t("status", lang), facility_status_label(f.status, lang))])
        folium.Marker([f.geometry.y, f.geometry.x], icon=icon,
                      tooltip=f"{name} · {facility_status_label(f.status, lang)}",
                      popup=folium.Popup(popup, max_width=320)).add_to(group)
    group.add_to(m)


def _issues(m: folium.Map, issues: gpd.GeoDataFrame, cats: pd.DataFrame, lang: str,
            issue_link: str, now: datetime):
    name = f"{t('open_issues', lang)} ({len(issues)})"
    if len(issues) > CLUSTER_ABOVE:
        layer = plugins.MarkerCluster(name=name, show=True,
                                      options={"maxClusterRadius": 40, "spiderfyOnMaxZoom": True})
    else:
        layer = folium.FeatureGroup(name=name, show=True)
    lookup = cats.set_index("code").to_dict("index") if not cats.empty else {}
    for i in issues.itertuples():
        cat = lookup.get(i.category, {"name_zh": i.category, "name_en": i.category,
                                      "icon": "question", "colour": "#999999"})
        overdue = bool(i.overdue)  # the read model's flag: open, with a due time, past it
        icon = folium.DivIcon(
            html=f'<div style="background:{esc(cat["colour"])}"><i class="fa fa-{esc(cat["icon"])}"></i></div>',
            icon_size=(34, 34), icon_anchor=(17, 34),
            class_name="gm-issue" + (" gm-issue-overdue" if overdue else ""))
        popup = issue_popup_html(i, cat, lang, issue_link, now)
        folium.Marker([i.geometry.y, i.geometry.x], icon=icon,
                      popup=folium.Popup(popup, max_width=340,
                                          auto_pan_padding_top_left=[70, 20])).add_to(layer)
    layer.add_to(m)
    return layer


def issue_popup_html(issue, cat: dict, lang: str, issue_link: str, now: datetime) -> str:
    """Category, description, age, due time, status and the action link; nothing else."""
    name = cat["name_en"] if lang == "en" else cat["name_zh"]
    due = "—"
    if issue.due_at is not None and not pd.isna(issue.due_at):
        due = local_time(issue.due_at)
        if issue.overdue:
            due += f' <span class="gm-overdue">({esc(t("overdue", lang))})</span>'
    rows = [(t("category", lang), name), (t("description", lang), issue.description),
            (t("reported", lang), local_time(issue.reported_at)),
            (t("age", lang), age_text(issue.reported_at, now, lang)),
            (t("status", lang), status_label(issue.status, lang))]
    link = esc(issue_link.format(id=int(issue.id)))
    return (_table(rows) + _table([(t("due", lang), due)], raw=True)
            + f'<a class="gm-act" href="{link}">{esc(t("act", lang))}</a>')


def _table(rows: list[tuple[str, object]], raw: bool = False) -> str:
    cells = "".join(f"<tr><td>{esc(k)}</td><td>{v if raw else esc(v)}</td></tr>" for k, v in rows)
    return f'<table class="gm-popup-table">{cells}</table>'


def _info_html(row, n_open: int, lang: str, options: BaseMapOptions) -> str:
    other = page_query("zh" if lang == "en" else "en", options)
    return (f"<h1>{esc(row['name'])}</h1><p>{esc(t('code', lang))}: {esc(row['code'])}</p>"
            f"<p>{esc(t('community', lang))}: {esc(row['community'])}</p>"
            f"<p>{esc(t('worker', lang))}: {esc(row['worker'] or '—')}</p>"
            f"<p>{esc(t('households', lang))}: {esc(row['households'])} · "
            f"{esc(t('open_issues', lang))}: <b>{n_open}</b></p>"
            f'<p><a href="?{esc(other)}">{esc(t("language", lang))}</a></p>')


def _legend(data: GridMapData, lang: str) -> str:
    rows = [swatch(GRID_COLOUR, t("grid", lang), shape="line"),
            swatch(NEIGHBOUR_COLOUR, t("neighbours", lang), shape="line"),
            swatch("#d9c7b0", t("buildings", lang))]
    present = set(data.facilities["category"]) if not data.facilities.empty else set()
    for c in data.facility_categories.itertuples():
        if c.code in present:
            rows.append(swatch(c.colour, c.name_en if lang == "en" else c.name_zh,
                               shape="circle", icon=c.icon))
    rows.append(swatch("#ffffff", t("facility_state_bad", lang), shape="ring"))
    rows.append(swatch("#1f6feb", t("issue_marker", lang), shape="circle", icon="map-marker"))
    return legend_html(t("legend", lang), rows)
