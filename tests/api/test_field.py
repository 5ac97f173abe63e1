"""Work on site over HTTP, as the tablet app calls it: 核实, 核查, 自处理 and facility checks
(each replayed with its Idempotency-Key), their refusals in Chinese, the photos of a check, my
tasks, the duplicates of a report not yet sent, and the CSRF token /me hands a page's session.

The module's app has a small body limit (100,000 bytes) and a larger one for photos, so that a
check's photo shows the upload path has the photo's limit."""

from __future__ import annotations

import pytest

from api.deps import SESSION_COOKIE, csrf_token
from api.field_schemas import TasksPublic
from api.settings import MediaSettings
from gis.geo.crs import from_wgs84
from gis.people import sessions
from gis.people.actors import load_actor
from tests.api.conftest import bearer
from tests.api.scope_data import GRID_OTHER, GRID_OWN, add_case, grid_id, grid_point
from tests.conftest import app_settings
from tests.photo_files import camera_jpeg, metadata_left

MAX_BODY_BYTES = 100_000
MAX_PHOTO_BYTES = 400_000
USERS = ("worker03", "worker05", "leader", "shizheng01", "admin")
ZH = {"Accept-Language": "zh-CN"}


@pytest.fixture(scope="module")
def settings(database_url, tmp_path_factory):
    return app_settings(database_url, max_body_bytes=MAX_BODY_BYTES,
                        media=MediaSettings(root=tmp_path_factory.mktemp("media"),
                                            max_bytes=MAX_PHOTO_BYTES))


@pytest.fixture(scope="module")
def tokens(app_client) -> dict[str, dict]:
    return {user: bearer(app_client, user) for user in USERS}


def case(sql, status="reported", code=GRID_OWN, **kw) -> int:
    lon, lat = grid_point(sql, code)
    return add_case(sql, lon, lat, grid_id=grid_id(sql, code), status=status, **kw)


def act(client, issue_id, action, body, headers, key=None, lang=None):
    extra = ({"Idempotency-Key": key} if key else {}) | (ZH if lang == "zh" else {})
    return client.post(f"/api/v1/issues/{issue_id}/{action}", json=body, headers=headers | extra)


def add_photo(client, issue_id, kind, headers):
    r = client.post(f"/api/v1/issues/{issue_id}/photos", headers=headers, data={"kind": kind},
                    files={"photo": ("p.jpg", camera_jpeg((200, 150)), "image/jpeg")})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def event_count(sql, issue_id):
    return sql("SELECT count(*) FROM issue_events WHERE issue_id = :i", i=issue_id)[0][0]


# -- 核实 ---------------------------------------------------------------------------------------
def test_verify_and_its_replay(client, tokens, sql):
    issue = case(sql)
    first = act(client, issue, "verify", {"valid": True, "reason": None}, tokens["worker03"], "v-1")
    assert first.status_code == 200
    assert first.json() == {"id": issue, "from": "reported", "to": "accepted",
                            "allowed_next": ["dispatched", "rejected"], "replayed": False}
    again = act(client, issue, "verify", {"valid": True, "reason": None}, tokens["worker03"], "v-1")
    assert again.status_code == 200 and again.json() | {"replayed": False} == first.json()
    assert again.json()["replayed"] and event_count(sql, issue) == 1
    other = act(client, issue, "verify", {"valid": False, "reason": "重复"}, tokens["worker03"], "v-1")
    assert other.status_code == 409 and other.json()["code"] == "conflict"


def test_a_valid_report_an_automatic_rule_dispatches_says_so_and_so_does_its_replay(
        client, tokens, sql):
    """核实 that accepts a case its automatic rule dispatches at once: the answer (and the replay's)
    is where the case stands, with what may follow from there."""
    sql("DELETE FROM dispatch_rules WHERE category = 'garbage'")
    sql("""INSERT INTO dispatch_rules (category, department_id, auto)
           VALUES ('garbage', (SELECT id FROM departments WHERE code = 'huanwei'), true)""")
    issue = case(sql)
    first = act(client, issue, "verify", {"valid": True}, tokens["worker03"], "v-auto")
    assert first.status_code == 200
    assert (first.json()["from"], first.json()["to"]) == ("reported", "dispatched")
    assert first.json()["allowed_next"] == ["in_progress"]
    again = act(client, issue, "verify", {"valid": True}, tokens["worker03"], "v-auto")
    assert again.json() | {"replayed": False} == first.json() and again.json()["replayed"]
    assert sql("SELECT kind FROM issue_events WHERE issue_id = :i ORDER BY id", i=issue) == [
        ("move",), ("dispatch",)]


def test_verify_refusals_in_chinese(client, tokens, sql):
    issue = case(sql)
    r = act(client, issue, "verify", {"valid": False}, tokens["worker03"], lang="zh")
    assert r.status_code == 422 and r.json() == {"detail": "核实为无效时须填写原因",
                                                 "code": "reason_required"}
    rejected = act(client, issue, "verify", {"valid": False, "reason": "现场无此问题"},
                   tokens["worker03"])
    assert rejected.json()["to"] == "rejected" and rejected.json()["allowed_next"] == []
    r = act(client, case(sql, "dispatched"), "verify", {"valid": True}, tokens["worker03"], lang="zh")
    assert r.status_code == 409 and r.json()["code"] == "illegal_transition"
    assert "核实只适用于「信息收集」" in r.json()["detail"] and "「任务处理」" in r.json()["detail"]
    assert act(client, issue, "verify", {"valid": "maybe"}, tokens["worker03"]).status_code == 422


def test_who_may_act_on_site(client, tokens, sql):
    theirs = case(sql, code=GRID_OTHER)
    r = act(client, theirs, "verify", {"valid": True}, tokens["worker03"], lang="zh")
    assert r.status_code == 403 and "网格员只能处理自己网格内的" in r.json()["detail"]
    for username, status in (("worker05", 200), ("leader", 200)):
        assert act(client, case(sql, code=GRID_OTHER), "verify", {"valid": True},
                   tokens[username]).status_code == status
    own, other = case(sql, department="shizheng"), case(sql, department="huanwei")
    assert act(client, own, "verify", {"valid": True}, tokens["shizheng01"]).status_code == 200
    assert act(client, other, "verify", {"valid": True}, tokens["shizheng01"]).status_code == 403
    assert act(client, own, "verify", {"valid": True}, {}).status_code == 401
    assert act(client, 2_000_000_000, "verify", {"valid": True}, tokens["admin"]).status_code == 404


# -- 核查 ---------------------------------------------------------------------------------------
def test_a_failed_check_needs_an_after_photo(client, tokens, sql):
    issue = case(sql, "resolved")
    sql("""INSERT INTO issue_events (issue_id, from_status, to_status, at)
           VALUES (:i, 'in_progress', 'resolved', now() - interval '1 hour')""", i=issue)
    r = act(client, issue, "check", {"passed": False, "note": "仍有积水"}, tokens["worker03"],
            lang="zh")
    assert r.status_code == 422 and r.json() == {"detail": "核查不通过须上传处置后照片",
                                                 "code": "after_photo_required"}
    add_photo(client, issue, "before", tokens["worker03"])
    assert act(client, issue, "check", {"passed": False}, tokens["worker03"]).status_code == 422
    add_photo(client, issue, "after", tokens["worker03"])
    r = act(client, issue, "check", {"passed": False, "note": "仍有积水"}, tokens["worker03"], "c-1")
    assert r.status_code == 200 and (r.json()["from"], r.json()["to"]) == ("resolved", "reopened")
    assert r.json()["allowed_next"] == ["dispatched", "in_progress"]
    replay = act(client, issue, "check", {"passed": False}, tokens["worker03"], "c-1")
    assert replay.status_code == 200 and replay.json()["replayed"]
    assert sql("SELECT count(*) FROM issue_events WHERE issue_id = :i AND to_status = 'reopened'",
               i=issue)[0][0] == 1


def test_a_passed_check_closes_and_only_a_resolved_case_is_checked(client, tokens, sql):
    issue = case(sql, "resolved")
    r = act(client, issue, "check", {"passed": True, "note": None}, tokens["worker03"])
    assert r.status_code == 200 and r.json()["to"] == "closed"
    again = act(client, issue, "check", {"passed": True}, tokens["worker03"])  # no key: a new try
    assert again.status_code == 409 and "is for cases in 'resolved'" in again.json()["detail"]


# -- 自处理 -------------------------------------------------------------------------------------
def test_self_resolve_with_before_and_after_photos_counts_apart(client, tokens, sql):
    def worker03_row():
        rows = client.get("/api/v1/stats/workers", headers=tokens["leader"]).json()["data"]
        return next(r for r in rows if r["username"] == "worker03")

    before = worker03_row()
    report = client.post("/api/v1/issues", headers=tokens["worker03"], json={
        "category": "garbage", "lon": grid_point(sql, GRID_OWN)[0],
        "lat": grid_point(sql, GRID_OWN)[1], "description": "路边垃圾"})
    issue = report.json()["id"]
    r = act(client, issue, "self-resolve", {"note": "已清理"}, tokens["worker03"], lang="zh")
    assert r.status_code == 422 and r.json()["code"] == "photo_required"
    assert "处置前" in r.json()["detail"] and "处置后" in r.json()["detail"]
    add_photo(client, issue, "before", tokens["worker03"])
    add_photo(client, issue, "after", tokens["worker03"])
    r = act(client, issue, "self-resolve", {"note": "已清理"}, tokens["worker03"], "s-1")
    assert r.status_code == 200 and (r.json()["from"], r.json()["to"]) == ("reported", "closed")
    assert act(client, issue, "self-resolve", {"note": "已清理"}, tokens["worker03"],
               "s-1").json()["replayed"]
    history = client.get(f"/api/v1/issues/{issue}/history", headers=tokens["worker03"]).json()
    assert [(e["from_status"], e["to_status"]) for e in history] == [
        (None, "reported"), ("reported", "closed")]
    assert history[-1]["note"] == "自处理 / resolved on site: 已清理"
    props = client.get(f"/api/v1/issues/{issue}", headers=tokens["worker03"]).json()["properties"]
    assert props["self_resolved"] and props["status"] == "closed"
    after = worker03_row()
    assert after["self_resolved"] == before["self_resolved"] + 1
    assert after["closed"] == before["closed"] + 1


# -- 部件巡检 -----------------------------------------------------------------------------------
def facility_in(sql, code):
    return sql("""SELECT min(f.id) FROM facilities f JOIN grids g ON g.id = f.grid_id
                   WHERE g.code = :c""", c=code)[0][0]


def test_a_damaged_facility_opens_one_case_and_its_photo_is_the_cases(client, tokens, sql):
    facility = facility_in(sql, GRID_OWN)
    count = sql("SELECT count(*) FROM issues")[0][0]
    body = {"result": "damaged", "note": "灯杆倾斜", "category": None}
    headers = tokens["worker03"] | {"Idempotency-Key": "fc-1"}
    r = client.post(f"/api/v1/facilities/{facility}/checks", json=body, headers=headers)
    assert r.status_code == 201, r.text
    checked = r.json()
    assert set(checked) == {"id", "facility_id", "result", "issue_id", "issue_created",
                            "checked_at", "facility_status"}
    assert (checked["facility_id"], checked["result"], checked["facility_status"]) == (
        facility, "damaged", "damaged")
    replay = client.post(f"/api/v1/facilities/{facility}/checks", json=body, headers=headers)
    assert replay.status_code == 200 and replay.json()["id"] == checked["id"]
    assert replay.json()["issue_id"] == checked["issue_id"]
    assert sql("SELECT count(*) FROM issues")[0][0] == count + 1
    assert client.get(f"/api/v1/facilities/{facility}").json()["properties"]["status"] == "damaged"
    issue = client.get(f"/api/v1/issues/{checked['issue_id']}", headers=tokens["worker03"]).json()
    assert issue["properties"]["facility_id"] == facility
    assert issue["properties"]["description"] == "灯杆倾斜"
    assert issue["properties"]["grid_code"] == GRID_OWN

    big = camera_jpeg((1200, 900), gps=(112.86, 36.84), quality=100)
    assert MAX_BODY_BYTES < len(big) < MAX_PHOTO_BYTES  # only the photo's own limit lets it in
    sent = {"photo": ("p.jpg", big, "image/jpeg")}
    url = f"/api/v1/facility-checks/{checked['id']}/photos"
    added = client.post(url, files=sent, headers=tokens["worker03"] | {"Idempotency-Key": "ph-1"})
    assert added.status_code == 201, added.text
    photo = added.json()
    assert (photo["issue_id"], photo["facility_check_id"], photo["kind"]) == (
        checked["issue_id"], checked["id"], "report")
    assert {"url", "thumbnail_url", "width", "height", "bytes", "taken_at", "uploaded_at"} <= set(photo)
    again = client.post(url, files=sent, headers=tokens["worker03"] | {"Idempotency-Key": "ph-1"})
    assert again.status_code == 200 and again.json()["id"] == photo["id"]
    listed = client.get(f"/api/v1/issues/{checked['issue_id']}",
                        headers=tokens["worker03"]).json()["properties"]["photos"]
    assert [(p["id"], p["kind"]) for p in listed] == [(photo["id"], "report")]
    served = client.get(photo["url"], headers=tokens["worker03"])
    assert served.status_code == 200 and metadata_left(served.content) == []
    assert client.post(url, files=sent, headers=tokens["worker05"]).status_code == 403


def test_an_ok_facility_and_the_refusals(client, tokens, sql):
    facility = facility_in(sql, GRID_OWN)
    r = client.post(f"/api/v1/facilities/{facility}/checks", json={"result": "ok"},
                    headers=tokens["worker03"])
    assert r.status_code == 201 and r.json()["issue_id"] is None
    assert r.json()["facility_status"] == "ok" and not r.json()["issue_created"]
    for body, status, code in (({"result": "broken"}, 422, "validation_error"),
                               ({"result": "damaged", "category": "ufo"}, 422, "unknown_category")):
        got = client.post(f"/api/v1/facilities/{facility}/checks", json=body,
                          headers=tokens["worker03"])
        assert (got.status_code, got.json()["code"]) == (status, code)
    theirs = client.post(f"/api/v1/facilities/{facility_in(sql, GRID_OTHER)}/checks",
                         json={"result": "ok"}, headers=tokens["worker03"] | ZH)
    assert theirs.status_code == 403 and "部件" in theirs.json()["detail"]
    missing = client.post("/api/v1/facilities/2000000000/checks", json={"result": "ok"},
                          headers=tokens["admin"])
    assert missing.status_code == 404
    assert client.post("/api/v1/facility-checks/2000000000/photos", headers=tokens["admin"],
                       files={"photo": ("p.jpg", camera_jpeg((20, 20)), "image/jpeg")}
                       ).status_code == 404


# -- 我的任务 -----------------------------------------------------------------------------------
def test_my_tasks_overdue_first_then_due_then_distance(client, tokens, sql):
    lon, lat = grid_point(sql, GRID_OWN)
    overdue, near, far = case(sql, "resolved"), case(sql), case(sql)
    sql("UPDATE issues SET due_at = now() - interval '30 days' WHERE id = :i", i=overdue)
    for issue, dx in ((near, 0.0001), (far, 0.0004)):
        sql("""UPDATE issues SET due_at = now() + interval '1 hour',
                   geom = ST_SetSRID(ST_MakePoint(:x, :y), 4326) WHERE id = :i""",
            x=lon + dx, y=lat, i=issue)
    r = client.get("/api/v1/me/tasks", params={"lon": lon, "lat": lat}, headers=tokens["worker03"])
    assert r.status_code == 200
    body = TasksPublic.model_validate(r.json())
    props = [f.properties for f in body.features]
    assert all(p.grid_code == GRID_OWN and p.status not in ("closed", "rejected") for p in props)
    assert body.numberReturned == len(props) == sql("""
        SELECT count(*) FROM issues i JOIN grids g ON g.id = i.grid_id
         WHERE g.code = :c AND i.status NOT IN ('closed', 'rejected')""", c=GRID_OWN)[0][0]
    keys = [(not p.overdue, p.due_at is None, p.due_at, p.distance_m is None, p.distance_m, p.id)
            for p in props]
    assert keys == sorted(keys)
    ids = [p.id for p in props]
    assert ids.index(overdue) < ids.index(near) == ids.index(far) - 1
    by_id = {p.id: p for p in props}
    assert (by_id[overdue].action, by_id[near].action) == ("check", "verify")
    assert by_id[near].distance_m < by_id[far].distance_m
    without = client.get("/api/v1/me/tasks", headers=tokens["worker03"]).json()
    assert all(f["properties"]["distance_m"] is None for f in without["features"])
    assert client.get("/api/v1/me/tasks", params={"lon": lon},
                      headers=tokens["worker03"]).status_code == 422
    elsewhere = client.get("/api/v1/me/tasks", headers=tokens["worker05"]).json()
    assert overdue not in {f["id"] for f in elsewhere["features"]}


def test_tasks_carry_photo_links_and_personal_fields_by_the_usual_rules(client, tokens, sql):
    issue = case(sql)
    add_photo(client, issue, "before", tokens["worker03"])
    sql("UPDATE issues SET due_at = now() - interval '10 years' WHERE id = :i", i=issue)
    mine = client.get("/api/v1/me/tasks", headers=tokens["worker03"]).json()["features"][0]
    assert mine["id"] == issue and mine["properties"]["reporter_contact"] == "13900001111"
    assert mine["properties"]["photos"][0]["url"].endswith(
        f"/api/v1/photos/{mine['properties']['photos'][0]['id']}")
    staff = client.get("/api/v1/me/tasks", headers=tokens["shizheng01"]).json()["features"]
    assert issue not in {f["id"] for f in staff}  # dispatched to no department


# -- duplicates of a report not yet sent ------------------------------------------------------
def test_duplicates_before_sending_are_those_the_report_then_gets(client, tokens, sql):
    lon, lat = grid_point(sql, GRID_OWN)
    earlier = case(sql, category="garbage")
    params = {"lon": lon, "lat": lat, "category": "garbage"}
    before = client.get("/api/v1/issues/duplicates", params=params, headers=tokens["worker03"])
    assert before.status_code == 200 and earlier in {d["id"] for d in before.json()}
    gx, gy = from_wgs84(lon, lat, "gcj02")
    shifted = client.get("/api/v1/issues/duplicates", headers=tokens["worker03"],
                         params={"lon": gx, "lat": gy, "category": "garbage", "crs": "gcj02"})
    assert [d["id"] for d in shifted.json()] == [d["id"] for d in before.json()]
    stored = client.post("/api/v1/issues", headers=tokens["worker03"],
                         json={"category": "garbage", "lon": lon, "lat": lat}).json()
    assert [{k: v for k, v in d.items() if k != "category"} for d in before.json()] == \
        stored["possible_duplicates"]
    unknown = client.get("/api/v1/issues/duplicates", headers=tokens["worker03"],
                         params=params | {"category": "ufo"})
    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_category"


def test_duplicates_follow_what_the_caller_may_read(client, tokens, sql):
    lon, lat = grid_point(sql, GRID_OWN)
    theirs, other = case(sql, department="shizheng"), case(sql, department="huanwei")
    found = {d["id"] for d in client.get(
        "/api/v1/issues/duplicates", params={"lon": lon, "lat": lat, "category": "garbage"},
        headers=tokens["shizheng01"]).json()}
    assert theirs in found and other not in found


# -- the CSRF token of a page's session ----------------------------------------------------------
def test_me_hands_the_csrf_token_to_the_cookie_and_it_lets_a_change_through(client, tokens, sql,
                                                                             session):
    assert client.get("/api/v1/me", headers=tokens["worker03"]).json()["csrf_token"] is None
    actor, _ = load_actor(session, "worker03")
    started = sessions.start_session(session, actor, kind="page", address="test",
                                     policy=sessions.SessionPolicy())
    session.commit()
    client.cookies.set(SESSION_COOKIE, started.token)
    try:
        token = client.get("/api/v1/me").json()["csrf_token"]
        assert token == csrf_token(type("R", (), {"app": client.app})(), started.session_id)
        issue = case(sql)
        refused = client.post(f"/api/v1/issues/{issue}/verify", json={"valid": True})
        assert refused.status_code == 403 and refused.json()["code"] == "csrf_failed"
        done = client.post(f"/api/v1/issues/{issue}/verify", json={"valid": True},
                           headers={"X-CSRF-Token": token})
        assert done.status_code == 200 and done.json()["to"] == "accepted"
    finally:
        client.cookies.clear()
