"""GET /api/v1/audit: administrators read who did what, when and from where; nobody else reads it;
no password or phone number ever lands in it. In-process tests roll back; the one against a live
server shows the server doing it all as the application's role."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from gis.people.audit import ACTIONS
from gis.rules import BEIJING, LOCKOUT_FAILURES
from tests.api.conftest import bearer
from tests.api.live import live_server
from tests.conftest import DEMO_PASSWORD

AUDIT = "/api/v1/audit"
WRONG_PASSWORD = "Zebra-Wrong-Horse-8841"
PHONE = "13912345678"


def login(client, username, password=DEMO_PASSWORD):
    return client.post("/api/v1/auth/token", data={"username": username, "password": password})


def entries(client, headers, **params) -> list[dict]:
    r = client.get(AUDIT, params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def clock(sql) -> datetime:
    """The database's clock (the entries' ``at`` is ``clock_timestamp()`` too)."""
    return sql("SELECT clock_timestamp()")[0][0]


@pytest.fixture(scope="module")
def grid05_point(committed_sql):
    """A point inside grid 005, which worker05 holds."""
    return tuple(committed_sql(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM grids "
        "WHERE code = '140429100001005' AND valid_to IS NULL) g")[0])


# -- who may read it ------------------------------------------------------------------------------
@pytest.mark.parametrize(("who", "status"), [("anonymous", 401), ("owner", 403),
                                             ("leader", 403), ("admin", 200)])
def test_only_administrators_read_the_audit_trail(client, headers, who, status):
    r = client.get(AUDIT, headers=headers[who])
    assert r.status_code == status, r.text
    if status == 403:
        assert r.json()["code"] == "forbidden" and "admin" in r.json()["detail"]


def test_department_staff_and_dispatchers_are_refused_too(client):
    for username in ("dispatcher", "shizheng01"):
        assert client.get(AUDIT, headers=bearer(client, username)).status_code == 403


# -- what it holds ----------------------------------------------------------------------------------
def test_log_ins_failures_and_a_lock_out_appear_with_who_when_and_where(client, headers, sql):
    started = clock(sql)
    assert login(client, "worker09").status_code == 200
    for _ in range(LOCKOUT_FAILURES - 1):
        assert login(client, "worker10", WRONG_PASSWORD).status_code == 401
    assert login(client, "worker10", WRONG_PASSWORD).status_code == 423
    assert login(client, "worker10").status_code == 423  # the right password, locked out
    ended = clock(sql)

    mine = entries(client, headers["admin"], username="worker09")
    assert mine[0]["action"] == "login" and mine[0]["outcome"] == "ok"
    assert mine[0]["address"] == "testclient" and mine[0]["detail"]["kind"] == "token"
    locked = entries(client, headers["admin"], username="worker10")
    assert [e["action"] for e in locked] == ["login_locked", "lockout"] + ["login_failed"] * LOCKOUT_FAILURES
    assert [e["detail"].get("failures") for e in locked[2:]] == list(range(LOCKOUT_FAILURES, 0, -1))
    assert {e["outcome"] for e in locked} == {"refused"}
    times = [datetime.fromisoformat(e["at"]) for e in locked]
    assert times == sorted(times, reverse=True)  # newest first
    assert all(started <= t <= ended for t in [*times, datetime.fromisoformat(mine[0]["at"])])


def test_a_write_and_a_reveal_appear_with_what_they_touched(client, headers, sql, grid05_point):
    worker = bearer(client, "worker05")
    lon, lat = grid05_point
    r = client.post("/api/v1/issues", headers=worker, json={
        "category": "garbage", "lon": lon, "lat": lat, "description": "垃圾桶满了",
        "reporter_contact": PHONE})  # personal data: reading it back is a reveal
    assert r.status_code == 201, r.text
    issue_id = r.json()["properties"]["id"]
    assert client.get(f"/api/v1/issues/{issue_id}", headers=worker).status_code == 200

    write = entries(client, headers["admin"], username="worker05", action="write")[0]
    assert write["target"] == "POST /api/v1/issues" and write["address"] == "testclient"
    reveal = entries(client, headers["admin"], username="worker05", action="read_personal")[0]
    assert reveal["target"] == f"GET /api/v1/issues/{issue_id}"
    assert reveal["detail"] == {"issues": [issue_id], "count": 1}


def test_each_report_request_is_audited_once_new_replayed_or_refused(client, sql, grid05_point):
    """The insert writes a new report's entry itself; a replay's comes with the commit; a refused
    reuse of the key (409) writes nothing: one entry per accepted request, as for other writes."""
    worker = bearer(client, "worker05")
    lon, lat = grid05_point

    def writes() -> int:
        return sql("SELECT count(*) FROM audit_log WHERE username = 'worker05' AND action = 'write' "
                   "AND target = 'POST /api/v1/issues'")[0][0]

    before = writes()
    key = {"Idempotency-Key": "audit-once-7f3a"}
    body = {"category": "garbage", "lon": lon, "lat": lat}
    assert client.post("/api/v1/issues", headers=worker | key, json=body).status_code == 201
    assert writes() == before + 1
    assert client.post("/api/v1/issues", headers=worker | key, json=body).status_code == 200
    assert writes() == before + 2
    other = body | {"category": "noise"}
    assert client.post("/api/v1/issues", headers=worker | key, json=other).status_code == 409
    assert writes() == before + 2


def test_no_password_or_phone_number_is_ever_written_to_it(client, headers, sql, grid05_point):
    assert login(client, "worker11", WRONG_PASSWORD).status_code == 401
    assert login(client, "no-such-user", WRONG_PASSWORD).status_code == 401
    lon, lat = grid05_point
    worker = bearer(client, "worker05")
    r = client.post("/api/v1/issues", headers=worker, json={
        "category": "garbage", "lon": lon, "lat": lat, "reporter_contact": PHONE,
        "description": f"垃圾没人清理，请打 {PHONE} 联系张先生"})
    assert r.status_code == 201, r.text
    issue_id = r.json()["properties"]["id"]
    assert client.get(f"/api/v1/issues/{issue_id}", headers=worker).json()[
        "properties"]["reporter_contact"] == PHONE  # revealed to the grid's worker...
    everything = " ".join(row[0] for row in sql("SELECT a::text FROM audit_log a"))
    assert "worker11" in everything and "read_personal" in everything  # ...and audited
    for secret in (WRONG_PASSWORD, DEMO_PASSWORD, PHONE, PHONE[3:]):
        assert secret not in everything
    shown = client.get(AUDIT, params={"limit": 10_000}, headers=headers["admin"]).text
    assert PHONE[3:] not in shown and WRONG_PASSWORD not in shown


# -- filters ----------------------------------------------------------------------------------------
@pytest.fixture
def dated(sql):
    """Five entries of one user at known Beijing times (the owner may set ``at``)."""
    times = ["2024-03-01 09:00", "2024-03-02 00:00", "2024-03-02 23:59:59",
             "2024-03-03 00:00", "2024-03-04 12:00"]
    for i, at in enumerate(times):
        sql("INSERT INTO audit_log (at, username, action, target) VALUES "
            "(CAST(:at AS timestamp) AT TIME ZONE 'Asia/Shanghai', 'audit-filter', :a, :t)",
            at=at, a="export" if i % 2 else "write", t=f"entry {i}")
    return "audit-filter"


def targets(client, headers, **params) -> list[str]:
    return [e["target"] for e in entries(client, headers["admin"], username="audit-filter", **params)]


def test_filters_by_user_action_and_time(client, headers, dated):
    assert targets(client, headers) == [f"entry {i}" for i in (4, 3, 2, 1, 0)]
    assert targets(client, headers, action="export") == ["entry 3", "entry 1"]
    assert targets(client, headers, since="2024-03-02", until="2024-03-02") == ["entry 2", "entry 1"]
    assert targets(client, headers, since="2024-03-02T12:00:00", until="2024-03-03") == [
        "entry 3", "entry 2"]  # an instant without an offset is Beijing time
    assert targets(client, headers, until="2024-03-01T16:00:00Z") == ["entry 1", "entry 0"]
    assert targets(client, headers, since="2024-03-03T00:00:00+08:00") == ["entry 4", "entry 3"]
    assert targets(client, headers, limit=2, offset=1) == ["entry 3", "entry 2"]
    assert entries(client, headers["admin"], username="nobody-at-all") == []


def test_entries_are_typed_as_documented(client, headers, dated):
    entry = entries(client, headers["admin"], username="audit-filter", limit=1)[0]
    assert set(entry) == {"id", "at", "username", "action", "target", "address", "outcome", "detail"}
    assert datetime.fromisoformat(entry["at"]) == datetime(2024, 3, 4, 12, 0, tzinfo=BEIJING)
    assert entry["outcome"] == "ok" and entry["detail"] == {} and entry["address"] is None


def test_an_unknown_action_is_refused_naming_the_known_ones(client, headers):
    r = client.get(AUDIT, params={"action": "delete_everything"}, headers=headers["admin"])
    assert r.status_code == 422
    assert all(f"'{action}'" in r.text for action in ACTIONS)
    zh = client.get(AUDIT, params={"action": "delete_everything"},
                    headers={**headers["admin"], "Accept-Language": "zh-CN"})
    assert zh.status_code == 422 and "应为以下之一" in zh.text and "login_failed" in zh.text


@pytest.mark.parametrize(("params", "says"), [
    ({"since": "2024-03-05", "until": "2024-03-01"}, "since (2024-03-05) is after until (2024-03-01)"),
    ({"since": "yesterday"}, "valid date"),
    ({"limit": 0}, "greater than or equal to 1"),
    ({"offset": -1}, "greater than or equal to 0"),
])
def test_bad_filters_are_422_saying_what_is_wrong(client, headers, params, says):
    r = client.get(AUDIT, params=params, headers=headers["admin"])
    assert r.status_code == 422 and says in r.text, r.text


# -- the server as the application's role ---------------------------------------------------------
def test_a_live_server_audits_as_the_application_role(app_database_url, demo_engine):
    """Log-ins by a real server (which commit, as every log-in does) land in the trail, written
    by the role that may not change them."""
    role = make_url(app_database_url).username
    with live_server(app_database_url) as base, httpx.Client(base_url=base, timeout=30) as http:
        r = http.post("/api/v1/auth/token", data={"username": "admin", "password": DEMO_PASSWORD})
        assert r.status_code == 200, r.text
        admin = {"Authorization": f"Bearer {r.json()['access_token']}"}
        found = http.get(AUDIT, params={"username": "admin", "action": "login", "limit": 1},
                         headers=admin).json()[0]
        assert found["detail"]["kind"] == "token" and found["address"] == "127.0.0.1"
        with demo_engine.connect() as conn:
            users = set(conn.execute(text(
                "SELECT usename FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend'")).scalars())
    assert role in users  # the server's pool keeps its connections, all of them the role's
