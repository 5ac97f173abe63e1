"""The leader heatmap's Folium objects, from synthetic aggregates."""

import folium
import pytest
from folium import plugins

from maps.base import BaseMapOptions, render
from maps.heatmap import build_heatmap
from tests.maps import builders


def test_layers_heat_choropleth_animation_hotspots():
    data = builders.heatmap_data()
    m = build_heatmap(data)
    heat = builders.children(m, plugins.HeatMap)
    assert len(heat) == 1
    assert sum(p[2] for p in heat[0].data) == data.cells["weight"].sum()
    anim = builders.children(m, plugins.HeatMapWithTime)
    assert len(anim) == 1 and anim[0].index == ["2025-01-06", "2025-01-13"]
    for week, frame in zip(anim[0].index, anim[0].data, strict=True):
        expected = data.weeks.loc[data.weeks["week"] == week, "weight"]
        assert sorted(p[2] for p in frame) == sorted(expected)
    choropleth = [g for g in builders.children(m, folium.GeoJson) if g.layer_name == "网格事件数"][0]
    features = choropleth.data["features"]
    assert len(features) == 9
    props = features[4]["properties"]
    assert {"issues", "per_1000", "gi_z", "gi_p", "colour_raw", "colour_rate"} <= set(props)
    assert props["issues"] == 40 and props["per_1000"] == pytest.approx(74.1)
    names = {layer.layer_name for layer in builders.children(m, folium.map.Layer)}
    assert any(n.startswith("热点网格") for n in names) and "事件热力" in names


def test_choropleth_colours_follow_counts_and_rates():
    m = build_heatmap(builders.heatmap_data())
    choropleth = [g for g in builders.children(m, folium.GeoJson) if g.layer_name == "网格事件数"][0]
    by_count = sorted(choropleth.data["features"], key=lambda f: f["properties"]["issues"])
    assert by_count[0]["properties"]["colour_raw"] != by_count[-1]["properties"]["colour_raw"]
    assert by_count[-1]["properties"]["colour_raw"] == "#bd0026"  # the darkest class on top


def test_panel_has_the_filter_form_hotspots_and_top_grids():
    data = builders.heatmap_data()
    html = render(build_heatmap(data, mode="rate"))
    assert '<form id="gm-filter" method="get" action="/maps/heatmap">' in html
    for name in ("category", "status", "since", "until", "community", "grid"):
        assert f'name="{name}"' in html
    assert 'value="rate" checked' in html
    assert 'id="gm-top"' in html and "/maps/grid/140429100001005" in html
    assert 'id="gm-hotspots"' in html


def test_heat_points_shift_on_amap():
    data = builders.heatmap_data()
    wgs = builders.children(build_heatmap(data), plugins.HeatMap)[0].data[0]
    gcj = builders.children(build_heatmap(data, options=BaseMapOptions("amap", online=True)),
                    plugins.HeatMap)[0].data[0]
    assert gcj[1] - wgs[1] == pytest.approx(0.0066, abs=0.002)  # ~600 m east at 太东社区
    assert gcj[2] == wgs[2]


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mode"):
        build_heatmap(builders.heatmap_data(), mode="log")



def test_names_from_data_are_text_not_templates():
    # The side panel is static HTML: a grid named like a Jinja expression must be shown as
    # written, never evaluated on the server.
    data = builders.heatmap_data()
    data.grids.loc[4, "name"] = "{{ 7*7 }}<b>"
    html = render(build_heatmap(data))
    assert "{{ 7*7 }}&lt;b&gt;" in html
    assert ">49<" not in html
