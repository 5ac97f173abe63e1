"""The worker's tablet map, from synthetic frames: layers, markers, popups, no personal data."""

import re

import folium
import pytest
from folium import plugins

from gis.geo.crs import from_wgs84
from maps.base import BaseMapOptions, HtmlControl, render
from maps.grid_map import CLUSTER_ABOVE, build_grid_map
from tests.maps import builders
from tests.maps.builders import PHONE


def test_layers_controls_and_legend_are_there():
    m = build_grid_map(builders.grid_map_data(), now=builders.NOW)
    html = render(m)
    names = {layer.layer_name for layer in builders.children(m, folium.map.Layer)}
    assert {"本网格", "相邻网格", "楼栋", "部件", "待办事件 (3)", "街巷"} <= names
    assert builders.children(m, plugins.LocateControl) and builders.children(m, plugins.Fullscreen)
    assert builders.children(m, folium.LayerControl)
    legend = [c for c in builders.children(m, HtmlControl) if "gm-legend" in c.css_class][0]
    assert "gm-legend-toggle" in legend.html and "图例" in legend.html and "gm-legend" in html
    labels = [f["properties"].get("label") for g in builders.children(m, folium.GeoJson)
              for f in g.data["features"]]
    assert "1号楼 · 48户" in labels and "2号楼 · 36户" in labels


def test_facilities_have_category_look_and_damaged_ones_stand_out():
    html = render(build_grid_map(builders.grid_map_data(bad_facility="missing"), now=builders.NOW))
    assert html.count("gm-fac gm-fac-") == 3
    assert "gm-fac-bad gm-fac-sewage_cover" in html
    assert "gm-fac-repairing gm-fac-streetlight" in html
    assert "#1f78b4" in html and "fa-lightbulb-o" in html  # category colour and icon from data


def test_issue_popup_has_what_a_worker_needs_escaped():
    html = render(build_grid_map(builders.grid_map_data(2), now=builders.NOW,
                                 issue_link="/issues/{id}/act"))
    for label in ("类别", "描述", "已过", "时限", "状态", "处理此事件", "任务派遣", "已超期"):
        assert label in html
    assert "/issues/100/act?lang=zh" in html and "/issues/101/act?lang=zh" in html
    assert "<b>问题0</b>" not in html and "&lt;b&gt;问题0&lt;/b&gt;" in html  # user text escaped
    assert "gm-issue gm-issue-overdue" in html


def test_issue_links_go_to_the_issue_page_in_the_page_language():
    zh = render(build_grid_map(builders.grid_map_data(1), now=builders.NOW))
    en = render(build_grid_map(builders.grid_map_data(1), lang="en", now=builders.NOW))
    assert 'href="/maps/issue/100?lang=zh"' in zh and 'href="/maps/issue/100?lang=en"' in en
    other = render(build_grid_map(builders.grid_map_data(1), lang="en", now=builders.NOW,
                                  issue_link="/act?issue={id}"))
    assert 'href="/act?issue=100&amp;lang=en"' in other


def test_links_keep_the_base_map():
    amap = BaseMapOptions("amap", online=True)
    m = build_grid_map(builders.grid_map_data(1), options=amap, now=builders.NOW)
    assert 'href="/maps/issue/100?lang=zh&amp;basemap=amap"' in render(m)  # the action link
    neighbours = [g for g in builders.children(m, folium.GeoJson) if g.layer_name == "相邻网格"][0]
    links = [f["properties"]["link"] for f in neighbours.data["features"]]
    assert all("?lang=zh&amp;basemap=amap" in link for link in links) and len(links) == 8
    info = [c for c in builders.children(m, HtmlControl) if "gm-info" in c.css_class][0]
    assert 'href="?lang=en&amp;basemap=amap"' in info.html  # the language switch


def test_no_reporter_contact_reaches_the_map():
    data = builders.grid_map_data(2)
    data.issues["reporter_contact"] = "13800138000"
    with pytest.raises(ValueError, match="personal data"):
        build_grid_map(data)
    clean = render(build_grid_map(builders.grid_map_data(2), now=builders.NOW))
    assert not re.search(PHONE, clean)


def test_many_issues_are_clustered_few_are_not():
    few = build_grid_map(builders.grid_map_data(3), now=builders.NOW)
    many = build_grid_map(builders.grid_map_data(CLUSTER_ABOVE + 5), now=builders.NOW)
    assert not builders.children(few, plugins.MarkerCluster)
    assert len(builders.children(many, plugins.MarkerCluster)) == 1


def test_english_labels():
    html = render(build_grid_map(builders.grid_map_data(), lang="en", now=builders.NOW))
    assert "Open issues" in html and "Act on this issue" in html and "Legend" in html


def test_on_amap_markers_and_outlines_are_shifted_to_gcj02():
    data = builders.grid_map_data(1)
    m = build_grid_map(data, options=BaseMapOptions("amap", online=True), now=builders.NOW)
    issue = data.issues.geometry.iloc[0]
    g_lon, g_lat = from_wgs84(issue.x, issue.y, "gcj02")
    locations = [tuple(mk.location) for mk in builders.children(m, folium.Marker)]
    assert any(abs(lat - g_lat) < 1e-6 and abs(lon - g_lon) < 1e-6 for lat, lon in locations)
    assert not any(abs(lat - issue.y) < 1e-6 and abs(lon - issue.x) < 1e-6 for lat, lon in locations)


def test_building_labels_are_text():
    # Leaflet puts a bound tooltip's string into the page as HTML.
    data = builders.grid_map_data(1)
    data.buildings.loc[0, "name"] = '<img src=x onerror="alert(1)">'
    m = build_grid_map(data, now=builders.NOW)
    layer = [g for g in builders.children(m, folium.GeoJson) if g.layer_name == "楼栋"][0]
    label = layer.data["features"][0]["properties"]["label"]
    assert label.startswith("&lt;img src=x onerror=&quot;alert(1)&quot;&gt; · 48")
