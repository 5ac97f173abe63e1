"""The overview page's Folium objects, from synthetic grids."""

import folium
import geopandas as gpd

from gis.queries.map_data import OverviewData
from maps.base import render
from maps.overview import build_overview
from tests.maps import builders


def _data(**changes) -> OverviewData:
    grids = builders.grids()
    grids["open"] = [0, 1, 2, 3, 4, 5, 6, 7, 8]
    grids["overdue"] = 0
    grids["on_time_rate"] = [None, 1.0, 0.5, 0.75, None, 0.9, 1.0, 0.8, 0.6667]
    for column, (row, value) in changes.items():
        grids.loc[row, column] = value
    communities = gpd.GeoDataFrame({"code": ["140429100001"], "name": ["太东社区"],
                                    "street": ["丰州镇"]}, geometry=[grids.union_all()],
                                   crs="EPSG:4326")
    return OverviewData(communities, grids)


def _grid_layer(m) -> folium.GeoJson:
    return [g for g in builders.children(m, folium.GeoJson) if g.layer_name == "网格"][0]


def test_grid_labels_are_short_and_link_to_each_grid_map():
    data = _data(name=(0, "太东社区第01网格"))
    m = build_overview(data)
    props = [f["properties"] for f in _grid_layer(m).data["features"]]
    assert props[0]["label"] == "第01网格<br>网格员1 · 0"  # the community's name is on the map
    assert props[8]["label"].endswith(" · 8")
    html = render(m)
    assert "/maps/grid/140429100001005?lang=zh" in html


def test_names_and_workers_reach_the_labels_as_text():
    data = _data(name=(1, "<b>坏</b>"), worker=(1, '<img src=x onerror="alert(1)">'))
    props = _grid_layer(build_overview(data)).data["features"][1]["properties"]
    assert props["label"] == ("&lt;b&gt;坏&lt;/b&gt;<br>"
                              "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; · 1")
    assert props["name"] == "&lt;b&gt;坏&lt;/b&gt;"  # the hover tooltip's value
    assert "<b>坏</b>" not in props["link"]
