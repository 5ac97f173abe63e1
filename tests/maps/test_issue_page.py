"""The page to act on one issue, from synthetic data: details, escaping, no personal data, the
workflow form as the reader's access allows, English labels and the GCJ-02 shift."""

import html as html_lib
import json
import re
from html.parser import HTMLParser

import folium
import pytest

from gis.geo.crs import from_wgs84
from gis.issues.branches import Available
from gis.issues.detail import IssueAccess
from gis.rules import TRANSITIONS
from maps.assets import external_links
from maps.base import BaseMapOptions, render
from maps.issue_page import build_issue_page, photos_html
from maps.issue_page import panel_html as issue_panel_html
from tests.maps import builders
from tests.maps.builders import PHONE

ACTOR = IssueAccess(logged_in=True, may_act=True, personal=True)


def _page(data=None, access=ACTOR, **kwargs) -> str:
    return render(build_issue_page(data or builders.issue_detail(), access=access,
                                   now=builders.NOW, **kwargs))


def _pins(m) -> list:
    """The issue's pin (the facility is a CircleMarker, itself a Marker)."""
    return [mk for mk in builders.children(m, folium.Marker)
            if not isinstance(mk, folium.CircleMarker)]


def _buttons(html: str) -> list[str]:
    return re.findall(r'<button type="button" class="gm-transition" data-to="([a-z_]+)">', html)


def test_details_history_and_form_are_there():
    html = _page()
    for text in ("事件 #4242", "井盖破损/缺失", "任务派遣", "所属网格", "第05网格 (140429100001005)",
                 "网格员5",
                 "污水井盖2 (1404290102000002)", "2025-12-28 20:00", "2025-12-31 15:00",
                 "已超期", "3 天", "处理记录 (2)", "12345热线转办", "leader", "信息收集 → 案卷建立",
                 '<label class="gm-note" for="gm-note">备注 (可选)</label>', 'id="gm-error"'):
        assert text in html, text
    assert 'type="password"' not in html  # the log-in is the session cookie, not a form here
    assert 'href="/maps/grid/140429100001005?lang=zh"' in html
    assert external_links(html) == []
    assert "/static/gridmap/issue.js" in html and "/static/gridmap/gridmap.js" in html


def test_user_text_is_shown_as_text():
    data = builders.issue_detail(description='<script>alert("x")</script> & 井盖')
    html = _page(data)
    assert '<script>alert("x")</script>' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; 井盖" in html
    assert "<i>立案</i>" not in html and "&lt;i&gt;立案&lt;/i&gt;" in html  # history notes too


def test_user_text_is_never_read_as_a_template():
    # The panel is static HTML: a description like a Jinja expression is shown as written.
    data = builders.issue_detail(description="{{ 7*7 }} {% if true %}x{% endif %} {{")
    data.history[-1]["note"] = "{{ 6*7 }}"
    html = _page(data)
    assert '<span class="gm-description">{{ 7*7 }} {% if true %}x{% endif %} {{</span>' in html
    assert '<td class="gm-event-note">{{ 6*7 }}</td></tr></table>' in html


def test_only_http_photo_links_become_links():
    data = builders.issue_detail(photo_urls=["https://photos.example/1.jpg", "javascript:alert(1)"])
    html = _page(data)
    assert 'href="https://photos.example/1.jpg"' in html
    assert 'href="javascript' not in html and "照片 2: javascript:alert(1)" in html


class _Photos(HTMLParser):
    """The photo section as read from the page: per kind group (in page order) its heading and
    its thumbnails, each with the link it sits in, the image's attributes and its caption."""

    def __init__(self, html: str):
        super().__init__()
        self.groups: list[dict] = []
        self._in: str | None = None
        self._href: str | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "data-kind" in attrs:
            self.groups.append({"kind": attrs["data-kind"], "heading": "", "photos": []})
        elif tag in ("h3", "figcaption") and self.groups:
            self._in = tag
        elif tag == "a" and self.groups:
            self._href = attrs.get("href")
        elif tag == "img" and self.groups:
            self.groups[-1]["photos"].append({"href": self._href, "caption": "", **attrs})
        elif tag == "time" and self._in == "figcaption":
            self.groups[-1]["photos"][-1]["datetime"] = attrs["datetime"]

    def handle_endtag(self, tag):
        if tag == "a":
            self._href = None
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in == "h3":
            self.groups[-1]["heading"] += data
        elif self._in == "figcaption":
            self.groups[-1]["photos"][-1]["caption"] += data


def test_photos_are_thumbnails_grouped_by_kind_linking_to_the_photo():
    html = _page(photos=builders.issue_photos())
    assert "现场照片 (4)" in html
    groups = _Photos(html).groups
    assert [(g["kind"], g["heading"]) for g in groups] == [
        ("report", "上报照片 (2)"), ("before", "处置前 (1)"), ("after", "处置后 (1)")]
    report, before, after = (g["photos"] for g in groups)
    first = report[0]
    assert (first["href"], first["src"]) == ("/api/v1/photos/11", "/api/v1/photos/11/thumbnail")
    assert first["loading"] == "lazy" and (first["width"], first["height"]) == ("400", "300")
    # Beijing time: 11:00 UTC is 19:00 in Beijing
    assert first["alt"] == "事件 #4242 照片 1（上报照片），拍摄于 2025-12-28 19:00（北京时间）"
    assert first["caption"] == "拍摄于 2025-12-28 19:00"
    assert first["datetime"] == "2025-12-28T19:00:00+08:00"
    assert report[1]["alt"] == "事件 #4242 照片 2（上报照片）"  # no time taken: none claimed
    assert report[1]["caption"] == "拍摄时间不详" and "datetime" not in report[1]
    assert [(p["href"], p["alt"]) for p in before + after] == [
        ("/api/v1/photos/14", "事件 #4242 照片 1（处置前），拍摄于 2025-12-30 20:00（北京时间）"),
        ("/api/v1/photos/13", "事件 #4242 照片 1（处置后），拍摄于 2025-12-31 18:00（北京时间）")]
    assert all(p["loading"] == "lazy" and p["src"] == p["href"] + "/thumbnail"
               for g in groups for p in g["photos"])
    assert external_links(html) == []


def test_photos_in_english():
    groups = _Photos(_page(photos=builders.issue_photos(), lang="en")).groups
    assert [g["heading"] for g in groups] == ["As reported (2)", "Before (1)", "After (1)"]
    first = groups[0]["photos"][0]
    assert first["alt"] == "Issue #4242, photo 1 (as reported), taken 2025-12-28 19:00 Beijing time"
    assert first["caption"] == "Taken 2025-12-28 19:00"
    assert groups[0]["photos"][1]["caption"] == "Time taken unknown"


def test_photos_of_a_kind_alone_make_one_group():
    photos = [p for p in builders.issue_photos() if p["kind"] == "after"]
    groups = _Photos(photos_html(photos, 4242, "zh")).groups
    assert [(g["kind"], g["heading"], len(g["photos"])) for g in groups] == [
        ("after", "处置后 (1)", 1)]


def test_no_photos_no_photo_section():
    for html in (_page(), _page(photos=[])):
        assert "gm-photos" not in html and "现场照片" not in html and "<img" not in html
    assert photos_html([], 4242, "zh") == ""


@pytest.mark.parametrize("url", ["javascript:alert(1)", "//elsewhere.example/1.jpg",
                                 "data:image/jpeg;base64,AAAA"])
def test_a_photo_url_that_is_no_path_or_http_is_refused(url):
    photos = builders.issue_photos()
    photos[2]["thumbnail_url"] = url
    with pytest.raises(ValueError, match="photo URL"):
        photos_html(photos, 4242, "zh")


def test_photo_data_is_shown_as_text():
    photos = builders.issue_photos()[:1]
    photos[0]["url"] = '/api/v1/photos/11?a="><script>x</script>'
    html = photos_html(photos, 4242, "zh")
    assert "<script>" not in html and 'href="/api/v1/photos/11?a=&quot;&gt;&lt;script&gt;' in html


def test_reporter_contact_never_reaches_the_page():
    data = builders.issue_detail()
    data.issue["reporter_contact"] = "13800138000"
    with pytest.raises(ValueError, match="personal data"):
        build_issue_page(data)
    html = _page()
    assert not re.search(PHONE, html)
    assert '<td id="gm-contact"></td>' in html  # the slot issue.js fills for those allowed


def test_the_form_is_for_readers_who_may_act():
    read_only = _page(access=IssueAccess(logged_in=True, may_act=False, personal=False))
    assert _buttons(read_only) == [] and "gm-note" not in read_only
    assert "您可以查看此事件，但无权处理。" in read_only
    public = _page(access=IssueAccess())
    assert _buttons(public) == [] and "登录后可处理此事件。" in public
    assert 'href="/login?next=/maps/issue/4242%3Flang%3Dzh&amp;lang=zh"' in public
    by_default = render(build_issue_page(builders.issue_detail(), now=builders.NOW))
    assert _buttons(by_default) == [] and "登录后可处理此事件。" in by_default  # least access


def test_the_script_reveals_personal_data_only_for_those_allowed():
    def config(access):
        panel = issue_panel_html(builders.issue_detail(), "zh", builders.NOW, access)
        return json.loads(html_lib.unescape(re.search(r'data-gm-issue="([^"]*)"', panel).group(1)))

    assert config(ACTOR)["reveal"] is True
    assert config(IssueAccess(logged_in=True, may_act=True, personal=False))["reveal"] is False
    assert config(IssueAccess())["reveal"] is False
    assert 'data-gm-event="2"' in _page()  # history rows the script fills with unmasked notes


@pytest.mark.parametrize("status", ["reported", "accepted", "dispatched", "in_progress",
                                    "resolved", "reopened", "closed", "rejected"])
def test_buttons_are_the_transitions_the_workflow_allows(status):
    """Every move but a dispatch, which names who fixes the case (the command centre's form)."""
    html = _page(builders.issue_detail(status))
    assert _buttons(html) == [s for s in TRANSITIONS[status] if s != "dispatched"]
    final = "此事件已办结" in html
    assert final == (TRANSITIONS[status] == ())


def test_the_command_centre_form_offers_what_the_reader_may_do():
    access = IssueAccess(logged_in=True, may_act=True, personal=True, command=Available(
        ("dispatch", "supervise", "reply"), supervision=77,
        departments=(("huanwei", "环卫所"), ("shizheng", "市政管理所"))))
    html = _page(builders.issue_detail("accepted"), access=access)
    assert re.findall(r'class="gm-command" data-action="([^"]+)"', html) == [
        "dispatch", "supervise", "reply"]
    assert re.findall(r'<option value="([^"]*)">', html) == ["", "@worker", "huanwei", "shizheng"]
    assert ">派遣</button>" in html and ">回复督办</button>" in html and "gm-extension" not in html
    config = json.loads(html_lib.unescape(re.search(r'data-gm-issue="([^"]*)"', html).group(1)))
    assert config["supervision"] == 77
    asking = IssueAccess(logged_in=True, may_act=True, command=Available(("request_extension",)))
    html = _page(builders.issue_detail("in_progress"), access=asking, lang="en")
    assert 'id="gm-extension-value"' in html and ">working days</option>" in html
    assert "gm-command" not in _page(builders.issue_detail("accepted"))  # none open: no form


def test_closed_issue_has_no_buttons_and_is_not_overdue():
    html = _page(builders.issue_detail("closed"))
    assert _buttons(html) == [] and "gm-transition" not in html
    assert "已超期" not in html and "结案时间" in html


def test_english_labels():
    html = _page(builders.issue_detail("resolved"), lang="en")
    for text in ("Issue #4242", "Damaged or missing drain cover", "History (2)", "Note (optional)",
                 "Reporter contact", "overdue", "Back to the grid map",
                 "Reported → Accepted", ">Closed</button>", ">Reopened</button>"):
        assert text in html, text
    assert "处理记录" not in issue_panel_html(builders.issue_detail(), "en", builders.NOW)
    assert 'href="/maps/grid/140429100001005?lang=en"' in html and 'href="?lang=zh"' in html


def test_map_opens_on_the_grid_and_the_pin_without_zooming():
    m = build_issue_page(builders.issue_detail(), now=builders.NOW)
    [fit] = builders.children(m, folium.FitBounds)
    (south, west), (north, east) = fit.bounds
    grid = builders.issue_detail().grid.total_bounds
    assert (west, south, east, north) == pytest.approx(tuple(grid))
    assert fit.options["animate"] is False


def test_issue_in_no_grid_is_centred_on_its_pin():
    data = builders.issue_detail(grid=False)
    m = build_issue_page(data, now=builders.NOW)
    html = render(m)
    assert "未落入网格" in html and "/maps/grid/" not in html
    assert not builders.children(m, folium.FitBounds)
    pin = data.issue.geometry.iloc[0]
    assert m.location == pytest.approx([pin.y, pin.x])


def test_on_amap_the_pin_and_the_grid_are_shifted_to_gcj02():
    data = builders.issue_detail()
    pin = data.issue.geometry.iloc[0]
    g_lon, g_lat = from_wgs84(pin.x, pin.y, "gcj02")
    amap = build_issue_page(data, options=BaseMapOptions("amap", online=True), now=builders.NOW)
    [marker] = _pins(amap)
    assert marker.location == pytest.approx([g_lat, g_lon], abs=1e-6)
    assert abs(marker.location[1] - pin.x) > 1e-3  # hundreds of metres: visible if forgotten
    outline = [g for g in builders.children(amap, folium.GeoJson)
               if g.data["features"][0]["properties"].get("code") == "140429100001005"][0]
    x0, y0 = outline.data["features"][0]["geometry"]["coordinates"][0][0]
    wgs = data.grid.geometry.iloc[0].exterior.coords[0]
    assert (x0, y0) == pytest.approx(from_wgs84(wgs[0], wgs[1], "gcj02"), abs=1e-6)
    [offline] = _pins(build_issue_page(data, now=builders.NOW))
    assert offline.location == pytest.approx([pin.y, pin.x], abs=1e-6)


@pytest.mark.parametrize("lang, forbidden", [("zh", "您无权处理此事件"), ("en", "You may not act")])
def test_failures_are_explained_in_the_page_language(lang, forbidden):
    panel = issue_panel_html(builders.issue_detail(), lang, builders.NOW, ACTOR)
    config = json.loads(html_lib.unescape(re.search(r'data-gm-issue="([^"]*)"', panel).group(1)))
    assert set(config["why"]) == {"401", "403", "409", "422", "429", "503"}
    assert config["why"]["403"].startswith(forbidden)
    assert config["text"]["details"] == ("详情" if lang == "zh" else "Details")


def test_history_names_the_branches():
    """A branch move is led by its name and department; an entry that is no move shows its kind."""
    data = builders.issue_detail("accepted")
    at = builders.NOW
    data.history.extend([
        {"id": 3, "at": at, "actor": None, "from_status": "accepted", "to_status": "dispatched",
         "note": "自动派遣", "kind": "dispatch", "department_name": "市政管理所"},
        {"id": 4, "at": at, "actor": "shizheng01", "from_status": "dispatched",
         "to_status": "accepted", "note": "回退：非市政设施", "kind": "return",
         "department_name": "市政管理所"},
        {"id": 5, "at": at, "actor": "leader", "from_status": "accepted", "to_status": None,
         "note": "督办：请加快", "kind": "supervise", "department_name": None}])
    html = issue_panel_html(data, "zh", builders.NOW, ACTOR)
    rows = re.findall(r'<tr class="gm-event" data-gm-event="(\d)">(.*?)</tr>', html)
    changes = {int(i): re.findall(r"<td>(.*?)</td>", row)[2] for i, row in rows}
    assert changes[2] == "信息收集 → 案卷建立"
    assert changes[3] == '<span class="gm-branch">派遣 · 市政管理所</span> 案卷建立 → 任务派遣'
    assert changes[4] == '<span class="gm-branch">回退 · 市政管理所</span> 任务派遣 → 案卷建立'
    assert changes[5] == "督办"
    english = issue_panel_html(data, "en", builders.NOW, ACTOR)
    assert "return · 市政管理所" in english and "supervision notice" in english
