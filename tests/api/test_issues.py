"""Reporting issues, idempotent retries, facility links, duplicates and the workflow."""

import threading
import uuid
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import text

from api.deps import SESSION_COOKIE, csrf_token
from gis.geo.crs import from_wgs84
from gis.people import accounts, sessions
from gis.people.actors import load_actor
from gis.rules import BEIJING
from gis.worktime.calendar import WorkCalendar
from gis.worktime.limits import Limit, deadline
from tests.api.conftest import bearer
from tests.api.live import live_server
from tests.api.other_process import grid_moved_elsewhere

INITIAL = "Initial-Pass-2026"


@pytest.fixture(scope="module")
def tokens(app_client):
    return {user: bearer(app_client, user) for user in ("worker01", "worker05", "leader", "admin")}


@pytest.fixture(scope="module")
def cover(demo_engine):
    """A rain-water drain cover in grid 005 and a point 5 m east of it."""
    with demo_engine.connect() as conn:
        return conn.execute(text("""
            SELECT f.id, ST_X(f.geom) + 5 / (111320 * cos(radians(ST_Y(f.geom)))) AS lon,
                   ST_Y(f.geom) AS lat, g.code
              FROM facilities f JOIN grids g ON g.id = f.grid_id
             WHERE f.category = 'rain_cover' AND g.code LIKE '%005'
               AND NOT EXISTS (SELECT 1 FROM facilities o WHERE o.id <> f.id
                   AND o.category IN ('rain_cover', 'sewage_cover', 'water_cover')
                   AND ST_DWithin(o.geom::geography, f.geom::geography, 25))
             ORDER BY f.id LIMIT 1""")).one()


def report(client, headers, key=None, **body):
    h = dict(headers)
    if key:
        h["Idempotency-Key"] = key
    return client.post("/api/v1/issues", json=body, headers=h)


def test_a_report_is_tagged_linked_and_given_a_due_time(client, tokens, cover):
    fid, lon, lat, code = cover
    r = report(client, tokens["worker01"], category="cover_damaged", lon=lon, lat=lat,
               description="雨水井盖破损", reporter_contact="13800000000")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["type"] == "Feature" and body["geometry"]["type"] == "Point"
    props = body["properties"]
    assert props["grid_code"] == code and props["assignment"] == "inside"
    assert props["status"] == "reported" and props["facility_id"] == fid
    # worker01 does not hold grid 005: they get their own report back as any other grid's case
    assert props["reporter_contact"] == "138****0000" and "client_uuid" not in props
    # cover_damaged, normal: replaced within 1 working day (gis.worktime), 17:30 Beijing time
    reported, due = (datetime.fromisoformat(props[k]) for k in ("reported_at", "due_at"))
    assert props["urgency"] == "normal"
    assert due == deadline(reported, Limit(1, "workdays"), WorkCalendar())
    assert due.astimezone(BEIJING).strftime("%H:%M") == "17:30" and due - reported > timedelta(hours=1)
    urgent = report(client, tokens["worker01"], category="cover_damaged", lon=lon, lat=lat,
                    urgency="urgent").json()["properties"]
    assert (datetime.fromisoformat(urgent["due_at"]) - datetime.fromisoformat(urgent["reported_at"])
            == timedelta(hours=2))  # made safe within 2 hours, around the clock


def test_the_grids_worker_sees_the_contact(client, tokens, cover):
    _, lon, lat, _ = cover
    r = report(client, tokens["worker05"], category="garbage", lon=lon, lat=lat,
               reporter_contact="13800000001")
    assert r.json()["properties"]["reporter_contact"] == "13800000001"


def test_gcj02_report_lands_in_the_same_place(client, tokens, cover):
    _, lon, lat, code = cover
    gx, gy = from_wgs84(lon, lat, "gcj02")
    r = report(client, tokens["worker05"], category="other", lon=gx, lat=gy, crs="gcj02")
    coords = r.json()["geometry"]["coordinates"]
    assert coords == pytest.approx([lon, lat], abs=1e-7)
    assert r.json()["properties"]["grid_code"] == code


def test_a_geojson_feature_is_accepted(client, tokens, cover):
    _, lon, lat, code = cover
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
               "properties": {"category": "noise", "description": "夜间施工"}}
    r = client.post("/api/v1/issues", json=feature, headers=tokens["worker05"])
    assert r.status_code == 201 and r.json()["properties"]["grid_code"] == code


def test_retries_with_the_same_key_return_the_same_issue(client, tokens, cover):
    _, lon, lat, _ = cover
    key = str(uuid.uuid4())
    first = report(client, tokens["worker05"], key=key, category="garbage", lon=lon, lat=lat)
    again = report(client, tokens["worker05"], key=key, category="garbage", lon=lon, lat=lat)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    other = report(client, tokens["worker05"], key=key, category="noise", lon=lon, lat=lat)
    assert other.status_code == 409 and other.json()["code"] == "conflict"


def test_concurrent_retries_make_exactly_one_issue(tokens, cover, app_database_url, demo_engine,
                                                   committed):
    """Eight clients send the same key at once to a real server: one row, the same id for all.
    The server commits (its requests are not on the test's connection): ``committed`` deletes
    the report afterwards and checks that nothing else changed."""
    _, lon, lat, _ = cover
    key = f"tablet-7-report-{uuid.uuid4()}"
    results: list[httpx.Response] = []
    barrier = threading.Barrier(8)

    def send(base: str):
        barrier.wait()
        results.append(httpx.post(f"{base}/api/v1/issues", timeout=30,
                                  json={"category": "garbage", "lon": lon, "lat": lat},
                                  headers={**tokens["worker05"], "Idempotency-Key": key}))

    with live_server(app_database_url) as base:
        workers = [threading.Thread(target=send, args=(base,)) for _ in range(8)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    ids = {r.json()["id"] for r in results}
    assert sorted(r.status_code for r in results) == [200] * 7 + [201]
    assert len(ids) == 1
    with demo_engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM issues WHERE id = ANY(:ids)"), {"ids": list(ids)}).scalar()
    assert n == 1


def test_nearby_open_reports_are_possible_duplicates(client, tokens, cover):
    _, lon, lat, _ = cover
    first = report(client, tokens["worker05"], category="sewer_blocked", lon=lon, lat=lat)
    near = report(client, tokens["worker05"], category="sewer_blocked", lon=lon + 0.0001, lat=lat)
    dups = near.json()["possible_duplicates"]
    assert [d["id"] for d in dups] == [first.json()["id"]]
    assert 5 < dups[0]["distance_m"] < 12
    far = report(client, tokens["worker05"], category="sewer_blocked", lon=lon + 0.001, lat=lat)
    assert first.json()["id"] not in [d["id"] for d in far.json()["possible_duplicates"]]


def test_possible_duplicates_are_only_those_the_reporter_may_read(client, tokens, cover, sql):
    """Department staff read only their department's cases: a nearby case of another department
    is not listed to them (nor its existence told), while a worker, who reads every case, sees it."""
    _, lon, lat, _ = cover
    first = report(client, tokens["worker05"], category="sewer_blocked", lon=lon, lat=lat).json()["id"]
    sql("UPDATE issues SET department_id = (SELECT id FROM departments WHERE code = 'huanwei') "
        "WHERE id = :i", i=first)
    staff = bearer(client, "shizheng01")
    theirs = report(client, staff, category="sewer_blocked", lon=lon + 0.0001, lat=lat)
    assert theirs.status_code == 201 and theirs.json()["possible_duplicates"] == []
    worker = report(client, tokens["worker05"], category="sewer_blocked", lon=lon + 0.0001, lat=lat)
    assert first in [d["id"] for d in worker.json()["possible_duplicates"]]


@pytest.mark.parametrize("body, status, words", [
    ({"category": "ufo", "lon": 112.86, "lat": 36.84}, 422, "unknown issue category"),
    ({"category": "garbage", "lon": 212.86, "lat": 36.84}, 422, "lon"),
    ({"category": "garbage", "lon": 112.86, "lat": 36.84, "crs": "EPSG:0"}, 422, "EPSG:0"),
    ({"category": "garbage", "lon": "east", "lat": 36.84}, 422, "lon"),
    ({"category": "garbage", "lat": 36.84}, 422, "lon"),
    ({"category": "garbage", "lon": 112.86, "lat": 36.84, "facility_id": 99999999}, 404, "facility"),
    ({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": []}, "properties": {}}, 422, "geometry"),
])
def test_bad_reports_get_a_4xx_that_says_what(client, tokens, body, status, words):
    r = report(client, tokens["worker05"], **body)
    assert r.status_code == status, r.text
    assert words.lower() in r.json()["detail"].lower()


def test_anonymous_reports_are_401(client):
    r = client.post("/api/v1/issues", json={"category": "garbage", "lon": 112.86, "lat": 36.84})
    assert r.status_code == 401


BAD_BODIES = [  # each a 422 for a caller who may report
    ({"category": "garbage", "lon": "东经112度", "lat": 36.84}, {}),
    ({"category": "garbage"}, {}),
    ("not json", {}),
    ({"category": "garbage", "lon": 112.86, "lat": 36.84}, {"Idempotency-Key": "k" * 256}),
]


@pytest.mark.parametrize(("body", "extra"), BAD_BODIES)
def test_the_caller_is_checked_before_the_body(client, tokens, session, body, extra):
    """The report's endpoint authenticates in its own thread hop (api.deps.ActorInEndpointRoute),
    after FastAPI has validated the body: a caller who may not report still hears 401 or 403
    first, as on every other route."""
    def post(headers):
        sent = {"content": body} if isinstance(body, str) else {"json": body}
        return client.post("/api/v1/issues", headers=headers | extra, **sent)

    assert post(tokens["worker05"]).status_code == 422
    assert post({}).status_code == 401
    assert post({"Authorization": "Bearer forged-token"}).status_code == 401
    assert post({"Authorization": "Basic bm9ib2R5Ondyb25n"}).status_code == 401  # nobody:wrong
    accounts.save_person(session, accounts.Person("zhao.min", "赵敏", "网格员", grids=("140429100001007",),
                                                  password=INITIAL), by="admin", create=True)
    session.commit()
    r = client.post("/api/v1/auth/token", data={"username": "zhao.min", "password": INITIAL})
    pending = post({"Authorization": f"Bearer {r.json()['access_token']}"})
    assert pending.status_code == 403 and pending.json()["code"] == "password_change_required"


def test_a_report_by_the_session_cookie_needs_the_csrf_token(client, session, cover):
    _, lon, lat, _ = cover
    actor, _ = load_actor(session, "worker05")
    started = sessions.start_session(session, actor, kind="page", address="test",
                                     policy=sessions.SessionPolicy())
    session.commit()
    client.cookies.set(SESSION_COOKIE, started.token)
    try:
        body = {"category": "garbage", "lon": lon, "lat": lat}
        r = client.post("/api/v1/issues", json=body)
        assert r.status_code == 403 and r.json()["code"] == "csrf_failed"
        assert client.post("/api/v1/issues", json={"category": "garbage"}).status_code == 403
        good = csrf_token(type("R", (), {"app": client.app})(), started.session_id)
        assert client.post("/api/v1/issues", json=body, headers={"X-CSRF-Token": good}).status_code == 201
    finally:
        client.cookies.clear()


def test_the_workflow_goes_round_the_loop_with_history(client, tokens, cover, sql):
    """The grid's worker moves the case; dispatch is the command centre's (here the leader's: no
    rule dispatches on acceptance, and with none the case goes to the worker)."""
    sql("DELETE FROM dispatch_rules")
    _, lon, lat, _ = cover
    issue_id = report(client, tokens["worker05"], category="garbage", lon=lon, lat=lat).json()["id"]
    path = f"/api/v1/issues/{issue_id}/transitions"
    for to in ("accepted", "dispatched", "in_progress", "resolved", "reopened", "in_progress",
               "resolved", "closed"):
        who = "leader" if to == "dispatched" else "worker05"
        r = client.post(path, json={"to": to, "note": f"→ {to}"}, headers=tokens[who])
        assert r.status_code == 200, (to, r.text)
    r = client.post(path, json={"to": "accepted"}, headers=tokens["worker05"])
    assert r.status_code == 409 and "final" in r.json()["detail"]
    assert client.get(f"/api/v1/issues/{issue_id}/history").status_code == 401
    history = client.get(f"/api/v1/issues/{issue_id}/history", headers=tokens["worker05"]).json()
    assert [e["to_status"] for e in history] == ["reported", "accepted", "dispatched", "in_progress",
                                                 "resolved", "reopened", "in_progress", "resolved", "closed"]
    assert [e["actor"] for e in history] == ["worker05", "worker05", "leader"] + ["worker05"] * 6
    assert [e["kind"] for e in history].count("dispatch") == 1


def test_an_illegal_transition_names_the_allowed_ones(client, tokens, cover):
    _, lon, lat, _ = cover
    issue_id = report(client, tokens["worker05"], category="garbage", lon=lon, lat=lat).json()["id"]
    r = client.post(f"/api/v1/issues/{issue_id}/transitions", json={"to": "closed"},
                    headers=tokens["worker05"])
    assert r.status_code == 409
    assert "'accepted'" in r.json()["detail"] and "'rejected'" in r.json()["detail"]


def test_only_the_grids_worker_leaders_and_admins_move_an_issue(client, tokens, cover):
    _, lon, lat, _ = cover
    issue_id = report(client, tokens["worker05"], category="garbage", lon=lon, lat=lat).json()["id"]
    path = f"/api/v1/issues/{issue_id}/transitions"
    assert client.post(path, json={"to": "accepted"}).status_code == 401
    assert client.post(path, json={"to": "accepted"}, headers=tokens["worker01"]).status_code == 403
    assert client.post(path, json={"to": "accepted"}, headers=tokens["leader"]).status_code == 200
    assert client.post(path, json={"to": "dispatched"}, headers=tokens["admin"]).status_code == 200


def test_a_report_after_another_process_moved_its_grid_is_tagged_with_the_current_grids(
        client, tokens, cover, database_url):
    """The intake does not read the grid version before tagging: its insert checks that the
    index it tagged with is current, and on a mismatch the process rebuilds and tags again."""
    _, lon, lat, code = cover
    cache = client.app.state.grid_cache
    first = report(client, tokens["admin"], category="garbage", lon=lon, lat=lat)
    assert first.json()["properties"]["grid_code"] == code
    builds = cache.builds
    with grid_moved_elsewhere(database_url, code):
        r = report(client, tokens["admin"], category="garbage", lon=lon, lat=lat)
        assert r.status_code == 201, r.text
        assert r.json()["properties"]["grid_code"] != code
        assert cache.builds == builds + 1
    again = report(client, tokens["admin"], category="garbage", lon=lon, lat=lat)
    assert again.json()["properties"]["grid_code"] == code
