"""Photos of cases over HTTP: the upload (multipart, idempotent), its checks (not an image 422,
over the limit 413, a decompression bomb 422), EXIF removed from what is stored and served, the
GPS position of a report sent without coordinates, who may add and who may see, and the doors
that list photos (issues, Open311's media_url).

The module's app keeps photos in a directory of its own and has small limits (a photo of at
most 300,000 bytes and 4,000,000 pixels; other request bodies at most 100,000 bytes), so that
the limits can be crossed with small files.
"""

from __future__ import annotations

import io
from datetime import datetime

import pytest
from PIL import Image

from api.settings import MediaSettings
from gis.media.storage import FileStorage
from gis.rules import BEIJING
from tests.api.conftest import bearer
from tests.api.scope_data import GRID_OTHER, GRID_OWN, add_case, grid_id, grid_point, other_places
from tests.conftest import app_settings
from tests.photo_files import (
    CAMERA_MAKE,
    NOT_AN_IMAGE,
    camera_jpeg,
    metadata_left,
    png,
    png_bomb,
    webp,
)

MAX_PHOTO_BYTES = 300_000
MAX_BODY_BYTES = 100_000
TAKEN = datetime(2026, 3, 14, 9, 26, 53, tzinfo=BEIJING)  # tests.photo_files.TAKEN
USERS = ("worker03", "worker05", "leader", "dispatcher", "shizheng01", "admin")


@pytest.fixture(scope="module")
def media_root(tmp_path_factory):
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def settings(database_url, media_root):
    return app_settings(database_url, max_body_bytes=MAX_BODY_BYTES,
                        media=MediaSettings(root=media_root, max_bytes=MAX_PHOTO_BYTES,
                                            max_pixels=4_000_000))


@pytest.fixture(scope="module")
def tokens(app_client) -> dict[str, dict]:
    return {user: bearer(app_client, user) for user in USERS}


@pytest.fixture
def case(sql) -> int:
    """A case in worker03's grid, dispatched to 市政所 (shizheng01)."""
    lon, lat = grid_point(sql, GRID_OWN)
    return add_case(sql, lon, lat, grid_id=grid_id(sql, GRID_OWN), department="shizheng")


def upload(client, issue_id: int, data: bytes, headers: dict, *, name: str = "photo.jpg",
           content_type: str = "image/jpeg", key: str | None = None, lang: str | None = None,
           **form):
    extra = {"Idempotency-Key": key} if key else {}
    if lang:
        extra["Accept-Language"] = lang
    return client.post(f"/api/v1/issues/{issue_id}/photos", headers=headers | extra,
                       files={"photo": (name, data, content_type)}, data=form)


def stored_bytes(sql, media_root, photo_id: int) -> tuple[bytes, bytes]:
    content, thumbnail = sql("SELECT content_key, thumbnail_key FROM issue_photos WHERE id = :i",
                             i=photo_id)[0]
    store = FileStorage(media_root)
    with store.open(content) as a, store.open(thumbnail) as b:
        return a.read(), b.read()


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _image(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


# -- an upload, and what is served -------------------------------------------------------------
def test_a_worker_adds_a_photo_to_a_case_in_their_grid_and_it_is_served_without_exif(
        client, tokens, case, sql, media_root):
    sent = camera_jpeg((400, 300), gps=(112.80, 36.80), orientation=6)
    r = upload(client, case, sent, tokens["worker03"], kind="before")
    assert r.status_code == 201, r.text
    photo = r.json()
    assert photo["issue_id"] == case and photo["kind"] == "before" and not photo["located"]
    assert (photo["width"], photo["height"]) == (300, 400)  # the orientation applied
    assert _instant(photo["taken_at"]) == TAKEN  # the EXIF DateTimeOriginal, Beijing time

    served = client.get(photo["url"], headers=tokens["worker05"])  # workers read every case
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["cache-control"].startswith("private")
    assert served.headers["x-content-type-options"] == "nosniff"
    assert _image(served.content).size == (300, 400)
    assert metadata_left(served.content) == []
    assert served.content == stored_bytes(sql, media_root, photo["id"])[0]

    thumb = client.get(photo["thumbnail_url"], headers=tokens["worker03"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert metadata_left(thumb.content) == []
    assert len(thumb.content) < len(served.content)
    assert max(_image(thumb.content).size) <= 320

    # the case keeps its own location: a photo's GPS only locates a report waiting for it
    assert sql("SELECT location_source, ST_X(geom) > 112.81 FROM issues WHERE id = :i",
               i=case)[0] == ("report", True)


def test_the_issue_lists_its_photos_with_their_urls(client, tokens, case):
    first = upload(client, case, camera_jpeg(), tokens["worker03"]).json()
    second = upload(client, case, png(), tokens["admin"], name="fixed.png",
                    content_type="image/png", kind="after", taken_at="2026-03-15T16:00:00").json()
    item = client.get(f"/api/v1/issues/{case}", headers=tokens["leader"]).json()
    listed = item["properties"]["photos"]
    assert [p["url"] for p in listed] == [first["url"], second["url"]]
    assert [p["thumbnail_url"] for p in listed] == [first["thumbnail_url"], second["thumbnail_url"]]
    assert [p["kind"] for p in listed] == ["report", "after"]
    assert _instant(listed[0]["taken_at"]) == TAKEN
    assert _instant(listed[1]["taken_at"]) == datetime(2026, 3, 15, 16, tzinfo=BEIJING)  # as sent
    page = client.get(f"/api/v1/issues?grid={GRID_OWN}&limit=5000", headers=tokens["admin"]).json()
    mine = next(f for f in page["features"] if f["id"] == case)
    assert mine["properties"]["photos"] == listed
    assert item["properties"]["location_source"] == "report"


@pytest.mark.parametrize("data, name, content_type, source_size", [
    (png((320, 240)), "sketch.png", "image/png", (320, 240)),
    (webp((320, 240)), "site.webp", "image/webp", (320, 240)),
    # the declared type and the name are not what decides: the content is
    (png((200, 100)), "photo.jpg", "image/jpeg", (200, 100)),
])
def test_png_and_webp_are_taken_by_their_content(client, tokens, case, data, name, content_type,
                                                 source_size):
    r = upload(client, case, data, tokens["worker03"], name=name, content_type=content_type)
    assert r.status_code == 201, r.text
    served = client.get(r.json()["url"], headers=tokens["worker03"])
    assert _image(served.content).format == "JPEG" and _image(served.content).size == source_size
    assert metadata_left(served.content) == []


def test_an_unchanged_photo_is_not_sent_again(client, tokens, case):
    url = upload(client, case, camera_jpeg(), tokens["worker03"]).json()["url"]
    first = client.get(url, headers=tokens["worker03"])
    again = client.get(url, headers=tokens["worker03"] | {"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


# -- idempotency ---------------------------------------------------------------------------------
def test_the_same_idempotency_key_twice_stores_one_photo(client, tokens, case, sql):
    sent = camera_jpeg()
    first = upload(client, case, sent, tokens["worker03"], key="tablet-7f3a-photo-1")
    again = upload(client, case, sent, tokens["worker03"], key="tablet-7f3a-photo-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert sql("SELECT count(*) FROM issue_photos WHERE issue_id = :i", i=case)[0][0] == 1
    other = upload(client, case, sent, tokens["worker03"], key="tablet-7f3a-photo-2")
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    # the same bytes are kept once, whatever rows point at them
    keys = sql("SELECT count(DISTINCT content_key) FROM issue_photos WHERE issue_id = :i", i=case)
    assert keys[0][0] == 1


# -- the checks ----------------------------------------------------------------------------------
def test_a_text_file_named_jpg_is_refused_with_a_clear_message(client, tokens, case, sql):
    r = upload(client, case, NOT_AN_IMAGE, tokens["worker03"], name="现场照片.jpg")
    assert r.status_code == 422 and r.json()["code"] == "invalid_photo"
    assert "not a JPEG, PNG or WebP image" in r.json()["detail"]
    zh = upload(client, case, NOT_AN_IMAGE, tokens["worker03"], lang="zh-CN")
    assert zh.status_code == 422 and "不是 JPEG、PNG 或 WebP 图片" in zh.json()["detail"]
    assert sql("SELECT count(*) FROM issue_photos WHERE issue_id = :i", i=case)[0][0] == 0


def test_a_photo_over_the_limit_is_413(client, tokens, case):
    just_over = b"\xff\xd8\xff" + bytes(MAX_PHOTO_BYTES - 2)  # under the upload's body limit
    r = upload(client, case, just_over, tokens["worker03"])
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
    assert f"at most {MAX_PHOTO_BYTES}" in r.json()["detail"]
    zh = upload(client, case, just_over, tokens["worker03"], lang="zh")
    assert zh.status_code == 413 and "超过上限" in zh.json()["detail"]
    far_over = upload(client, case, bytes(3 * MAX_PHOTO_BYTES), tokens["worker03"])
    assert far_over.status_code == 413  # refused by the body limit while it streams


def test_the_upload_has_a_body_limit_of_its_own(client, tokens, case):
    """A photo may be larger than other request bodies (GRIDMAP_MAX_BODY_BYTES)."""
    big = camera_jpeg((1200, 900), quality=100)
    assert MAX_BODY_BYTES < len(big) < MAX_PHOTO_BYTES
    assert upload(client, case, big, tokens["worker03"]).status_code == 201
    report = client.post("/api/v1/issues", headers=tokens["worker03"],
                         json={"category": "garbage", "lon": 112.86, "lat": 36.84,
                               "description": "x" * MAX_BODY_BYTES})
    assert report.status_code == 413


def test_a_decompression_bomb_is_422(client, tokens, case):
    bomb = png_bomb(50_000, 50_000)
    r = upload(client, case, bomb, tokens["worker03"], name="bomb.png", content_type="image/png")
    assert r.status_code == 422 and r.json()["code"] == "invalid_photo"
    assert "pixels" in r.json()["detail"]
    # under Pillow's own limit, the setting's (4,000,000 pixels here) refuses a declared size
    r = upload(client, case, png_bomb(2_500, 2_000), tokens["worker03"], lang="zh")
    assert r.status_code == 422 and "2500 × 2000 像素" in r.json()["detail"]


@pytest.mark.parametrize("form, says", [({"kind": "sideways"}, "kind"),
                                        ({"taken_at": "last tuesday"}, "taken_at")])
def test_bad_form_fields_are_422_naming_them(client, tokens, case, form, says):
    r = upload(client, case, camera_jpeg(), tokens["worker03"], **form)
    assert r.status_code == 422 and says in r.json()["detail"]


def test_an_upload_without_a_file_is_422(client, tokens, case):
    r = client.post(f"/api/v1/issues/{case}/photos", headers=tokens["worker03"],
                    data={"kind": "report"})
    assert r.status_code == 422 and "photo" in r.json()["detail"]


def test_a_missing_case_is_404(client, tokens):
    r = upload(client, 2_000_000_000, camera_jpeg(), tokens["admin"])
    assert r.status_code == 404


# -- a report that takes its location from its photo ----------------------------------------------
def _report_without_coordinates(client, headers, **extra):
    return client.post("/api/v1/issues", headers=headers,
                       json={"category": "garbage", "description": "垃圾桶满溢",
                             "location_from_photo": True, **extra})


def test_a_report_without_coordinates_takes_its_place_from_the_photos_gps_then_the_gps_is_gone(
        client, tokens, sql, media_root):
    r = _report_without_coordinates(client, tokens["worker03"])
    assert r.status_code == 201, r.text
    issue = r.json()
    assert issue["geometry"] is None and issue["properties"]["grid_code"] is None
    assert issue["properties"]["location_source"] == "photo"
    assert issue["properties"]["assignment"] == "unassigned"

    lon, lat = grid_point(sql, GRID_OTHER)  # in worker05's grid, reported by worker03
    sent = camera_jpeg((400, 300), gps=(lon, lat), orientation=6)
    assert "GPS" in metadata_left(sent)
    added = upload(client, issue["id"], sent, tokens["worker03"])  # the reporter may
    assert added.status_code == 201, added.text
    assert added.json()["located"] is True

    placed = client.get(f"/api/v1/issues/{issue['id']}", headers=tokens["admin"]).json()
    assert placed["geometry"]["coordinates"] == pytest.approx([lon, lat], abs=1e-6)
    assert placed["properties"]["grid_code"] == GRID_OTHER
    assert placed["properties"]["assignment"] == "inside"
    assert placed["properties"]["location_source"] == "photo"
    assert placed["properties"]["source_crs"] == "wgs84"

    content, thumbnail = stored_bytes(sql, media_root, added.json()["id"])
    for kept in (content, thumbnail):
        stored = _image(kept)
        assert len(stored.getexif()) == 0 and not stored.getexif().get_ifd(0x8825)
        assert metadata_left(kept) == [] and CAMERA_MAKE.encode() not in kept
    # and nothing under the media root carries EXIF
    for path in media_root.rglob("*"):
        if path.is_file():
            assert b"Exif\x00\x00" not in path.read_bytes(), path


def test_the_first_photo_places_the_report_later_ones_do_not_move_it(client, tokens, sql):
    issue = _report_without_coordinates(client, tokens["worker03"]).json()["id"]
    own = grid_point(sql, GRID_OWN)
    upload(client, issue, camera_jpeg(gps=own), tokens["worker03"])
    elsewhere = upload(client, issue, camera_jpeg(gps=grid_point(sql, GRID_OTHER)),
                       tokens["worker03"])
    assert elsewhere.status_code == 201 and elsewhere.json()["located"] is False
    assert sql("SELECT g.code FROM issues i JOIN grids g ON g.id = i.grid_id WHERE i.id = :i",
               i=issue)[0][0] == GRID_OWN


def test_a_photo_without_gps_for_a_report_without_coordinates_is_422(client, tokens, sql):
    issue = _report_without_coordinates(client, tokens["worker03"]).json()["id"]
    r = upload(client, issue, camera_jpeg(gps=None), tokens["worker03"])
    assert r.status_code == 422 and r.json()["code"] == "location_required"
    assert "without coordinates" in r.json()["detail"]
    zh = upload(client, issue, camera_jpeg(gps=None), tokens["worker03"], lang="zh")
    assert "位置" in zh.json()["detail"]
    assert sql("SELECT geom IS NULL, (SELECT count(*) FROM issue_photos WHERE issue_id = :i) "
               "FROM issues WHERE id = :i", i=issue)[0] == (True, 0)


def test_the_reporter_adds_report_photos_only(client, tokens, sql):
    issue = _report_without_coordinates(client, tokens["worker05"]).json()["id"]
    r = upload(client, issue, camera_jpeg(gps=grid_point(sql, GRID_OWN)), tokens["worker05"],
               kind="after")
    assert r.status_code == 403 and "report" in r.json()["detail"]
    # another worker may not touch a report that has no grid yet; the admin may
    other = upload(client, issue, camera_jpeg(gps=grid_point(sql, GRID_OWN)), tokens["worker03"])
    assert other.status_code == 403
    assert upload(client, issue, camera_jpeg(gps=grid_point(sql, GRID_OWN)),
                  tokens["admin"]).status_code == 201


@pytest.mark.parametrize("body, says, chinese", [
    ({"category": "garbage"}, "lon: Field required; lat: Field required", "lat: 缺少此项（必填）"),
    ({"category": "garbage", "lon": 112.86}, "lat: Field required", "lat: 缺少此项（必填）"),
    ({"category": "garbage", "location_from_photo": False}, "lat: Field required", "lat: 缺少"),
    ({"category": "garbage", "lat": 36.84, "location_from_photo": True}, "both lon and lat",
     "经度和纬度须同时提供"),
    ({"type": "Feature", "geometry": None, "properties": {"category": "garbage"}},
     "geometry.coordinates: Field required", "geometry.coordinates: 缺少此项（必填）"),
])
def test_a_report_without_coordinates_must_say_so(client, tokens, body, says, chinese):
    r = client.post("/api/v1/issues", headers=tokens["worker03"], json=body)
    assert r.status_code == 422 and says in r.json()["detail"]
    zh = client.post("/api/v1/issues", headers=tokens["worker03"] | {"Accept-Language": "zh"},
                     json=body)
    assert chinese in zh.json()["detail"]


def test_a_geojson_report_with_a_null_geometry_may_wait_for_its_photo(client, tokens):
    r = client.post("/api/v1/issues", headers=tokens["worker03"], json={
        "type": "Feature", "geometry": None,
        "properties": {"category": "garbage", "location_from_photo": True}})
    assert r.status_code == 201 and r.json()["geometry"] is None


def test_a_retried_report_without_coordinates_is_the_same_report(client, tokens, sql):
    key = {"Idempotency-Key": "tablet-report-0042"}
    first = _report_without_coordinates(client, tokens["worker03"] | key)
    again = _report_without_coordinates(client, tokens["worker03"] | key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    # after the photo placed it, a retry is still the same report
    upload(client, first.json()["id"], camera_jpeg(gps=grid_point(sql, GRID_OWN)),
           tokens["worker03"])
    assert _report_without_coordinates(client, tokens["worker03"] | key).status_code == 200
    # the same key with coordinates is another report: a conflict
    with_place = client.post("/api/v1/issues", headers=tokens["worker03"] | key,
                             json={"category": "garbage", "lon": 112.86, "lat": 36.84})
    assert with_place.status_code == 409


def test_a_report_waiting_for_its_photo_passes_every_door_without_failing(client, tokens, sql):
    issue = _report_without_coordinates(client, tokens["worker03"]).json()["id"]
    admin = tokens["admin"]
    listed = client.get("/api/v1/issues?limit=5000", headers=admin).json()["features"]
    assert next(f for f in listed if f["id"] == issue)["geometry"] is None
    ogc_items = client.get("/ogc/collections/issues/items?limit=5000", headers=admin).json()
    assert next(f for f in ogc_items["features"] if f["id"] == issue)["geometry"] is None
    open311 = client.get(f"/open311/v2/requests.json?service_request_id={issue}",
                         headers=admin).json()
    assert (open311[0]["lat"], open311[0]["long"]) == (None, None)
    for url in (f"/api/v1/issues/{issue}", f"/api/v1/issues/{issue}/history",
                f"/ogc/collections/issues/items/{issue}",
                f"/ogc/collections/issues/items/{issue}?f=html",
                f"/open311/v2/requests/{issue}.xml", "/api/v1/stats/grids",
                "/api/v1/stats/timeline", "/api/v1/stats/workers", "/maps/heatmap",
                "/maps/overview", f"/maps/issue/{issue}", f"/api/v1/grids/{GRID_OWN}/package",
                "/tiles/issues/14/13426/6294.mvt"):
        r = client.get(url, headers=admin)
        assert r.status_code < 400, (url, r.status_code, r.text[:300])


# -- who may add, who may see ----------------------------------------------------------------------
def test_the_anonymous_are_asked_to_log_in(client, tokens, case):
    assert upload(client, case, camera_jpeg(), {}).status_code == 401
    url = upload(client, case, camera_jpeg(), tokens["worker03"]).json()["url"]
    for path in (url, url + "/thumbnail"):
        r = client.get(path)
        assert r.status_code == 401 and "Bearer" in r.headers["www-authenticate"]


@pytest.mark.parametrize("user", ["worker05", "huanwei01"])
def test_those_who_may_not_act_on_the_case_may_not_add_photos(client, app_client, tokens, case,
                                                              user):
    headers = tokens.get(user) or bearer(app_client, user)
    r = upload(client, case, camera_jpeg(), headers)
    assert r.status_code == 403


@pytest.mark.parametrize("user", ["worker03", "leader", "dispatcher", "shizheng01", "admin"])
def test_those_who_may_act_on_the_case_may_add_photos(client, tokens, case, user):
    assert upload(client, case, camera_jpeg(), tokens[user], kind="after").status_code == 201


def test_photo_urls_are_served_only_to_those_who_may_read_the_case(client, tokens, sql):
    far = other_places(sql).other_district  # another district: only the admin's (and workers' read)
    added = upload(client, far.issue_id, camera_jpeg(), tokens["admin"])
    assert added.status_code == 201
    photo = added.json()
    assert upload(client, far.issue_id, camera_jpeg(), tokens["leader"]).status_code == 403
    for user, status in (("leader", 403), ("dispatcher", 403), ("shizheng01", 403),
                         ("worker05", 200), ("admin", 200)):
        for url in (photo["url"], photo["thumbnail_url"]):
            r = client.get(url, headers=tokens[user])
            assert r.status_code == status, (user, url, r.text[:200])
            if status == 403:
                assert r.headers["content-type"].startswith("application/json")
                assert "outside what you may read" in r.json()["detail"]
    assert client.get("/api/v1/photos/2000000000", headers=tokens["admin"]).status_code == 404


def test_open311_media_url_points_at_the_first_photo(client, tokens, case, sql):
    sql("UPDATE issues SET photo_urls = '[\"https://example.org/old.jpg\"]' WHERE id = :i", i=case)
    before = client.get(f"/open311/v2/requests/{case}.json", headers=tokens["admin"]).json()
    assert before[0]["media_url"] == "https://example.org/old.jpg"
    first = upload(client, case, camera_jpeg(), tokens["worker03"]).json()
    upload(client, case, png(), tokens["worker03"], kind="after")
    after = client.get(f"/open311/v2/requests/{case}.json", headers=tokens["admin"]).json()
    assert after[0]["media_url"] == first["url"]
    assert client.get(after[0]["media_url"], headers=tokens["admin"]).status_code == 200
