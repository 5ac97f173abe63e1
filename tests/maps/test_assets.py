"""Offline assets: every CDN link Folium would write is replaced by a file under /static/,
per map instance, never by changing Folium's classes."""

import folium
import pytest
from folium import plugins

from api.settings import MapSettings
from maps import assets
from maps.base import BaseMapOptions, new_map, render

NODE_MODULES = MapSettings().node_modules  # where `make assets` installed them


def _all_plugins_map() -> folium.Map:
    m = new_map(BaseMapOptions(), "zh")
    plugins.HeatMap([[36.84, 112.86, 2.0]]).add_to(m)
    plugins.HeatMapWithTime([[[36.84, 112.86, 1]]], index=["2025-01-06"]).add_to(m)
    cluster = plugins.MarkerCluster().add_to(m)
    folium.Marker([36.84, 112.86], icon=folium.Icon(icon="info-sign")).add_to(cluster)
    plugins.Fullscreen().add_to(m)
    plugins.LocateControl().add_to(m)
    folium.LayerControl().add_to(m)
    return m


def test_a_page_with_every_plugin_we_use_links_nothing_outside_the_server():
    html = render(_all_plugins_map())
    assert assets.external_links(html) == []
    for local in ("/static/npm/leaflet/dist/leaflet.js", "/static/npm/leaflet.heat/dist/leaflet-heat.js",
                  "/static/npm/leaflet.markercluster/dist/leaflet.markercluster.js",
                  "/static/npm/heatmap.js/build/heatmap.min.js",
                  "/static/npm/leaflet.locatecontrol/dist/L.Control.Locate.min.js",
                  "/static/patched/leaflet-timedimension/dist/leaflet.timedimension.control.css"):
        assert local in html


def test_localizing_one_map_leaves_folium_classes_and_other_maps_alone():
    before_map, before_heat = list(folium.Map.default_js), list(plugins.HeatMap.default_js)
    render(_all_plugins_map())
    assert folium.Map.default_js == before_map
    assert plugins.HeatMap.default_js == before_heat
    plain = folium.Map()
    plugins.HeatMap([[36.84, 112.86]]).add_to(plain)
    html = plain.get_root().render()
    assert "cdn.jsdelivr.net/npm/leaflet@1.9.3" in html  # a map we did not localize keeps CDNs


def test_an_unknown_cdn_link_raises_rather_than_reaching_the_internet():
    m = new_map(BaseMapOptions(), "zh")
    plugins.MiniMap().add_to(m)  # a plugin whose assets we do not ship
    with pytest.raises(assets.UnmappedAsset, match="leaflet-minimap"):
        render(m)


def test_external_links_finds_absolute_and_protocol_relative_urls():
    html = ('<script src="/static/a.js"></script><link href="//cdn.x/a.css" rel="stylesheet">'
            '<script src="https://cdn.y/b.js"></script>')
    assert assets.external_links(html) == ["//cdn.x/a.css", "https://cdn.y/b.js"]


def test_installed_packages_match_the_pins_and_every_local_file_exists():
    assert assets.missing_assets(NODE_MODULES) == []
    for urls in assets.CDN_TO_LOCAL.values():
        for url in urls:
            assert assets.local_path(url, NODE_MODULES).is_file(), url


def test_patched_css_points_the_glyphicons_font_here():
    css = assets.patched_file("leaflet-timedimension/dist/leaflet.timedimension.control.css",
                              NODE_MODULES)
    assert "netdna" not in css
    assert "/static/npm/glyphicons-only-bootstrap/fonts/glyphicons-halflings-regular.woff" in css
    font = assets.local_path(
        "/static/npm/glyphicons-only-bootstrap/fonts/glyphicons-halflings-regular.woff", NODE_MODULES)
    assert font.is_file()


def test_static_mounts_expose_only_pinned_packages():
    prefixes = [p for p, _ in assets.static_mounts(NODE_MODULES)]
    assert "/static/npm/leaflet" in prefixes and "/static/gridmap" in prefixes
    assert len(prefixes) == len(assets.pinned_packages()) + 1
