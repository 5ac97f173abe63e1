"""The map pages over HTTP (in-process): status codes, filters, the page cache, static files."""

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.main import create_app
from gis.rules import TRANSITIONS
from maps.assets import external_links
from tests.api.conftest import bearer

GRID = "140429100001005"


@pytest.fixture(scope="module")
def admin(app_client):
    return bearer(app_client, "admin")


@pytest.fixture
def client(client, admin):
    """The pages are closed (tests/api/test_pages.py): this module reads them as the admin."""
    client.headers.update(admin)
    yield client
    client.headers.pop("Authorization")


def test_the_three_pages_are_html_with_local_assets_only(client):
    for path in (f"/maps/grid/{GRID}", "/maps/heatmap", "/maps/overview"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html")
        assert external_links(r.text) == [], path
        assert "/static/npm/leaflet/dist/leaflet.js" in r.text


def test_pages_are_cached_by_filter_and_data_version(client, sql):
    params = {"category": "garbage", "status": "open"}
    first = client.get("/maps/heatmap", params=params)
    again = client.get("/maps/heatmap", params=params)
    assert again.headers["x-page-cache"] == "hit" and again.text == first.text
    other = client.get("/maps/heatmap", params={"category": "noise"})
    assert other.headers["x-page-cache"] == "miss"
    sql("""INSERT INTO issues (category, geom, status, description)
           VALUES ('garbage', ST_SetSRID(ST_MakePoint(112.861, 36.841), 4326), 'reported',
                   'cache test')""")  # new data: a new version, so a fresh page
    after = client.get("/maps/heatmap", params=params)
    assert after.headers["x-page-cache"] == "miss"


def test_filters_change_the_page(client):
    everything = client.get("/maps/heatmap").text
    garbage = client.get("/maps/heatmap", params={"category": "garbage"}).text

    def total(html):
        return int(re.search(r'id="gm-total">[^<]*<b>([\d,]+)</b>', html).group(1).replace(",", ""))

    assert 0 < total(garbage) < total(everything)
    assert '<option value="garbage" selected>' in garbage


@pytest.mark.parametrize("params", [{"status": "lost"}, {"category": "nonsense"},
                                    {"since": "not-a-date"}, {"mode": "log"}, {"lang": "fr"}])
def test_bad_filters_are_422(client, params):
    assert client.get("/maps/heatmap", params=params).status_code == 422


def test_unknown_grid_is_404(client):
    assert client.get("/maps/grid/999999999999999").status_code == 404


def _open_issue(demo_engine, grid: str = GRID) -> tuple[int, str]:
    with demo_engine.connect() as conn:
        return tuple(conn.execute(text("""SELECT i.id, i.status FROM issues i
            JOIN grids g ON g.id = i.grid_id WHERE g.code = :c
             AND i.status NOT IN ('closed', 'rejected') ORDER BY i.id LIMIT 1"""), {"c": grid}).one())


def test_issue_page_shows_the_issue_and_its_history(client, demo_engine):
    issue_id, status = _open_issue(demo_engine)
    r = client.get(f"/maps/issue/{issue_id}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert external_links(r.text) == []
    assert f"事件 #{issue_id}" in r.text and GRID in r.text
    with demo_engine.connect() as conn:
        events = conn.execute(text("SELECT count(*) FROM issue_events WHERE issue_id = :i"),
                              {"i": issue_id}).scalar()
    assert r.text.count('<tr class="gm-event" ') == events > 0
    assert re.findall(r'class="gm-transition" data-to="([a-z_]+)"', r.text) == \
        list(TRANSITIONS[status])
    again = client.get(f"/maps/issue/{issue_id}")
    assert again.headers["x-page-cache"] == "hit"
    english = client.get(f"/maps/issue/{issue_id}", params={"lang": "en"})
    assert english.headers["x-page-cache"] == "miss" and f"Issue #{issue_id}" in english.text


def test_issue_page_shows_the_photos_uploaded_since_it_was_cached(client, demo_engine, sql):
    issue_id, _ = _open_issue(demo_engine)
    before = client.get(f"/maps/issue/{issue_id}")
    assert "gm-photos" not in before.text
    [photo_id] = sql("""INSERT INTO issue_photos (issue_id, kind, content_key, thumbnail_key,
                            width, height, bytes, taken_at)
                        VALUES (:i, 'before', 'c', 't', 400, 300, 1000,
                                '2026-03-14T01:26:00Z') RETURNING id""", i=issue_id)[0]
    after = client.get(f"/maps/issue/{issue_id}")  # an upload changes no data version
    assert after.headers["x-page-cache"] == "miss"
    # Paths, not absolute URLs: the cached page is served under any host name.
    assert (f'<a href="/api/v1/photos/{photo_id}" target="_blank" rel="noopener">'
            f'<img src="/api/v1/photos/{photo_id}/thumbnail" ') in after.text
    assert "处置前 (1)" in after.text and "拍摄于 2026-03-14 09:26" in after.text
    assert client.get(f"/maps/issue/{issue_id}").headers["x-page-cache"] == "hit"


def test_issue_page_is_404_for_a_missing_issue_and_422_for_a_bad_id(client, demo_engine):
    with demo_engine.connect() as conn:
        missing = conn.execute(text("SELECT max(id) + 1000 FROM issues")).scalar()
    r = client.get(f"/maps/issue/{missing}")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert str(missing) in r.json()["detail"]
    for bad in ("abc", "0", "-3", "99999999999"):
        assert client.get(f"/maps/issue/{bad}").status_code == 422, bad
    assert client.get("/maps/issue/1", params={"lang": "fr"}).status_code == 422


def test_grid_map_popups_link_to_the_issue_page_in_the_same_language(client, demo_engine):
    issue_id, _ = _open_issue(demo_engine)
    zh = client.get(f"/maps/grid/{GRID}").text
    en = client.get(f"/maps/grid/{GRID}", params={"lang": "en"}).text
    assert f'href="/maps/issue/{issue_id}?lang=zh"' in zh
    assert f'href="/maps/issue/{issue_id}?lang=en"' in en
    assert "/api/v1/issues/" not in zh


def test_grid_page_in_english_and_on_amap_when_online(client, settings):
    online = settings.model_copy(update={"maps": settings.maps.model_copy(update={"online": True})})
    with TestClient(create_app(online)) as online_client:
        r = online_client.get(f"/maps/grid/{GRID}", params={"lang": "en", "basemap": "amap"},
                              headers=bearer(online_client, "admin"))
    assert r.status_code == 200 and "autonavi.com" in r.text and "Open issues" in r.text
    offline = client.get(f"/maps/grid/{GRID}", params={"basemap": "amap"})
    assert "autonavi" not in offline.text  # offline deployments never reach for tiles


def test_no_reporter_contact_on_any_page(client, demo_engine):
    with demo_engine.connect() as conn:
        contacts = {c for (c,) in conn.execute(text(
            "SELECT DISTINCT reporter_contact FROM issues WHERE reporter_contact IS NOT NULL "
            "AND status NOT IN ('closed', 'rejected')")) if len(c) >= 6}
    assert contacts  # the demo has reporters' contacts: the test would be empty without them
    with demo_engine.connect() as conn:
        with_contact = [i for (i,) in conn.execute(text(
            "SELECT id FROM issues WHERE reporter_contact IS NOT NULL ORDER BY id LIMIT 5"))]
    issue_pages = [f"/maps/issue/{i}" for i in with_contact]
    for path in [f"/maps/grid/140429100001{k:03d}" for k in range(1, 15)] + ["/maps/overview",
                                                                           *issue_pages]:
        page = client.get(path).text
        assert not [c for c in contacts if c in page], path


def test_static_files_are_served(client):
    r = client.get("/static/npm/leaflet/dist/leaflet.js")
    assert r.status_code == 200 and "Leaflet" in r.text[:500]
    css = client.get("/static/patched/leaflet-timedimension/dist/leaflet.timedimension.control.css")
    assert css.status_code == 200 and "netdna" not in css.text
    assert client.get("/static/patched/leaflet/dist/leaflet.js").status_code == 404
    assert client.get("/static/gridmap/gridmap.js").status_code == 200
    assert client.get("/static/npm/../package.json").status_code == 404


@pytest.mark.parametrize("params", [{"community": "无此社区"},
                                    {"since": "2100-01-01"},  # after any day the demo can end on
                                    {"category": "noise", "status": "reopened"}])
def test_filters_matching_nothing_give_an_empty_heatmap_not_an_error(client, params):
    """Found by schemathesis: a filter that matched no grid made the choropleth fail with 500."""
    r = client.get("/maps/heatmap", params=params)
    assert r.status_code == 200, r.text[:300]
