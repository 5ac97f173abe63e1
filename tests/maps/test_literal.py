"""Text from data is shown as written: Folium's render pass must never read it as a template."""

import json
import re

import pytest

from maps.base import render
from maps.grid_map import build_grid_map
from maps.heatmap import build_heatmap
from tests.api.conftest import bearer
from tests.maps import builders

# A lone "{{" used to fail the page (TemplateSyntaxError); "{{ 7*7 }}" used to come out as 49.
HOSTILE = ["井盖 {{ 坏了", "ZZ{{ 7*7 }}ZZ", "{% if x %}", "{# note", "{{ this.__class__ }}"]


@pytest.mark.parametrize("value", HOSTILE)
def test_an_issue_description_reaches_the_popup_as_written(value):
    data = builders.grid_map_data()
    data.issues.loc[0, "description"] = value
    html = render(build_grid_map(data))
    assert value.replace("<", "&lt;") in html
    assert "ZZ49ZZ" not in html and "<class" not in html


@pytest.mark.parametrize("value", HOSTILE)
def test_a_grid_name_reaches_the_tooltips_and_panel_as_written(value):
    data = builders.heatmap_data()
    data.grids.loc[4, "name"] = value
    html = render(build_heatmap(data))
    assert value in html  # the busiest-grids table
    assert json.dumps(value)[1:-1] in html  # the choropleth's data (JSON, \\u-escaped)
    assert "ZZ49ZZ" not in html and "<class" not in html


def test_branca_templates_still_render_outside_a_page_render():
    # The guard is scoped to rendering: branca's own template elements keep working.
    from branca.element import Element, Figure

    figure = Figure()
    figure.html.add_child(Element("<p>{{ 6*7 }}</p>"), name="t")
    assert "<p>42</p>" in figure.render()


def test_a_reported_description_cannot_break_the_tablet_map(client_with_issue):
    client, code, marker = client_with_issue
    r = client.get(f"/maps/grid/{code}")
    assert r.status_code == 200
    assert re.search(re.escape(marker), r.text)


@pytest.fixture(scope="module")
def admin(app_client):
    return bearer(app_client, "admin")


@pytest.fixture
def client_with_issue(client, admin, sql):
    """The app, and an issue with a template-like description in the test's transaction."""
    code, marker = "140429100001005", "ZZ{{ 7*7 }} {{ 坏了ZZ"
    sql("""INSERT INTO issues (category, geom, status, description, grid_id, assignment)
           SELECT 'garbage', ST_PointOnSurface(geom), 'reported', :d, id, 'inside'
             FROM grids WHERE code = :c AND valid_to IS NULL""", d=marker, c=code)
    client.headers.update(admin)  # pages are closed: read as the admin
    yield client, code, marker
    client.headers.pop("Authorization")
