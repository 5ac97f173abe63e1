"""Open311 GeoReport v2 against a real server, read with the `georeport` client from PyPI.

`georeport` cannot post, so requests are posted the way the spec describes with a plain HTTP
client (form-encoded body with api_key) and read back through `georeport` in JSON and in XML.
Reading requests needs a log-in: `georeport` (which takes no credentials) reads as the admin
through a netrc file, which its HTTP library honours, as a desktop user would set one up;
services and discovery stay public.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, time, timedelta

import httpx
import pytest
from georeport import GeoReport
from sqlalchemy import text

from api.cli import main as gridmap
from api.protocols import open311
from gis.db.engine import session_scope
from gis.people import api_keys
from gis.rules import BEIJING
from gis.worktime.calendar import WorkCalendar
from gis.worktime.limits import Limit, deadline
from tests.api.live import live_server
from tests.conftest import DEMO_PASSWORD, committed_changes

EMAIL, PHONE = "lisi@example.cn", "13911112222"
ADMIN = ("admin", DEMO_PASSWORD)


@pytest.fixture(scope="module")
def base(demo_engine, app_database_url):
    """A live server for the `georeport` client. What the module posts and the keys it makes are
    committed (the server and the CLI use connections of their own): deleted when it ends."""
    with committed_changes(demo_engine), live_server(app_database_url) as url:
        yield url


@pytest.fixture(scope="module")
def endpoint(base, tmp_path_factory):
    """The endpoint; `georeport` logs in to it as the admin with the netrc file in NETRC."""
    netrc = tmp_path_factory.mktemp("netrc") / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login {ADMIN[0]} password {ADMIN[1]}\n")
    netrc.chmod(0o600)
    before = os.environ.get("NETRC")
    os.environ["NETRC"] = str(netrc)
    try:
        yield f"{base}/open311/v2"
    finally:
        if before is None:
            os.environ.pop("NETRC", None)
        else:
            os.environ["NETRC"] = before


@pytest.fixture(scope="module")
def api_key(base, demo_engine):
    with session_scope(demo_engine) as session:
        return api_keys.create_api_key(session, "12345 hotline", "test")[1]


@pytest.fixture(scope="module")
def grid05(demo_engine):
    """A point well inside grid 005, and the grid's code."""
    with demo_engine.connect() as conn:
        return conn.execute(text("""
            SELECT ST_Y(p), ST_X(p), code FROM (
                SELECT ST_PointOnSurface(ST_Buffer(geom, -0.0002)) AS p, code FROM grids
                 WHERE code LIKE '%005' AND valid_to IS NULL) g""")).one()


@pytest.fixture(scope="module")
def sql(demo_engine):
    def run(query, **params):
        with demo_engine.connect() as conn:
            return conn.execute(text(query), params).all()
    return run


def post(endpoint, fmt="json", headers=None, **form):
    return httpx.post(f"{endpoint}/requests.{fmt}", data=form, headers=headers or {}, timeout=30)


@pytest.fixture(scope="module")
def posted(endpoint, api_key, grid05):
    """One request posted exactly as the spec shows: form-encoded, with api_key and contact."""
    lat, lon, _ = grid05
    r = post(endpoint, api_key=api_key, service_code="garbage", lat=str(lat), long=str(lon),
             description="垃圾桶满了，垃圾堆在路边", email=EMAIL, phone=PHONE, first_name="四",
             last_name="李", media_url="https://example.cn/photos/1.jpg")
    assert r.status_code == 201, r.text
    return r


# -- services -----------------------------------------------------------------------------------
def test_georeport_lists_the_issue_categories_as_services(endpoint, sql):
    codes = {c for (c,) in sql("SELECT code FROM categories WHERE kind = 'issue'")}
    as_json = GeoReport(endpoint).get_service_list()
    as_xml = GeoReport(endpoint, output_format="xml").get_service_list()
    assert {s["service_code"] for s in as_json} == codes == {s["service_code"] for s in as_xml}
    garbage = next(s for s in as_json if s["service_code"] == "garbage")
    assert garbage["service_name"] == "垃圾堆积" and garbage["metadata"] is True
    assert garbage["type"] == "realtime" and garbage["group"] == "市容环境"
    noise = next(s for s in as_xml if s["service_code"] == "noise")
    assert noise["metadata"] == "false" and noise["service_name"] == "噪音扰民"


def test_georeport_reads_service_definitions(endpoint):
    covers = GeoReport(endpoint).get_service_definition("cover_damaged")
    assert covers["service_code"] == "cover_damaged"
    assert [a["code"] for a in covers["attributes"]] == ["facility_code", "facility_kind"]
    kind = covers["attributes"][1]
    assert kind["datatype"] == "singlevaluelist" and kind["required"] is False
    assert {v["key"] for v in kind["values"]} == {"rain_cover", "sewage_cover", "water_cover"}
    xml = GeoReport(endpoint, output_format="xml").get_service_definition("cover_damaged")
    attributes = xml["attributes"]["attribute"]
    assert [a["code"] for a in attributes] == ["facility_code", "facility_kind"]
    assert [v["key"] for v in attributes[1]["values"]["value"]] == ["rain_cover", "sewage_cover",
                                                                    "water_cover"]
    assert GeoReport(endpoint).get_service_definition("noise")["attributes"] == []


# -- posting and reading back ---------------------------------------------------------------------
def test_a_posted_request_is_read_back_in_json_and_xml(endpoint, posted, grid05):
    body = posted.json()
    assert body[0]["service_notice"] and body[0]["account_id"] is None
    request_id = body[0]["service_request_id"]
    lat, lon, code = grid05
    for fmt in ("json", "xml"):
        read = GeoReport(endpoint, output_format=fmt).get_service_request(request_id)
        assert read["service_request_id"] == request_id
        assert read["service_code"] == "garbage" and read["status"] == "open"
        assert read["description"] == "垃圾桶满了，垃圾堆在路边"
        assert read["media_url"] == "https://example.cn/photos/1.jpg"
        assert float(read["lat"]) == pytest.approx(lat, abs=1e-7)
        assert float(read["long"]) == pytest.approx(lon, abs=1e-7)
        assert code in read["agency_responsible"]  # geotagged to its grid like any report
        assert datetime.fromisoformat(read["requested_datetime"]).utcoffset() == timedelta(hours=8)


def test_a_request_posted_in_xml_answers_in_xml(endpoint, api_key, grid05):
    lat, lon, _ = grid05
    r = post(endpoint, "xml", api_key=api_key, service_code="noise", lat=str(lat), long=str(lon),
             description="广场舞音响太吵")
    assert r.status_code == 201 and r.headers["content-type"].startswith("text/xml")
    assert "<service_requests><request><service_request_id>" in r.text
    request_id = r.text.split("<service_request_id>")[1].split("<")[0]
    found = GeoReport(endpoint, output_format="xml").get_service_requests(service_request_id=request_id)
    assert found["service_code"] == "noise"  # xmltodict: a single request is a dict


def test_the_report_is_stored_like_any_other_with_its_contact(posted, sql, grid05):
    request_id = int(posted.json()[0]["service_request_id"])
    row = sql("""SELECT i.channel, i.assignment, g.code, i.reporter_contact, i.reported_at, i.due_at,
                        (SELECT count(*) FROM issue_events e WHERE e.issue_id = i.id)
                   FROM issues i JOIN grids g ON g.id = i.grid_id WHERE i.id = :i""", i=request_id)[0]
    assert row[0] == "open311" and row[1] == "inside" and row[2] == grid05[2]
    assert EMAIL in row[3] and PHONE in row[3] and "李 四" in row[3]  # for the grid's worker
    # garbage, normal: within 1 working day (gis.worktime), the rule every report follows
    assert row[5] == deadline(row[4], Limit(1, "workdays"), WorkCalendar()) and row[6] == 1


def test_gets_never_show_personal_data(endpoint, posted):
    request_id = posted.json()[0]["service_request_id"]
    now = datetime.now().astimezone()
    for fmt in ("json", "xml"):
        for url, params in ((f"requests.{fmt}", {"service_request_id": request_id}),
                            (f"requests/{request_id}.{fmt}", {}),
                            (f"requests.{fmt}", {"start_date": (now - timedelta(days=1)).isoformat(),
                                                 "end_date": (now + timedelta(days=1)).isoformat()})):
            r = httpx.get(f"{endpoint}/{url}", params=params, auth=ADMIN)
            assert r.status_code == 200 and request_id in r.text
            for private in (EMAIL, PHONE, "李", "email", "phone", "contact"):
                assert private not in r.text


# -- filters --------------------------------------------------------------------------------------
def test_requests_filter_by_dates_status_and_code(endpoint, sql, demo_data):
    # The demo's last 30 days: recent enough for open cases, within Open311's 90-day limit.
    end = datetime.combine(demo_data.seen_at.date() + timedelta(days=1), time(), BEIJING)
    start, end = (end - timedelta(days=30)).isoformat(), end.isoformat()
    client = GeoReport(endpoint)
    found = client.get_service_requests(start_date=start, end_date=end, status="open")
    expected = {str(i) for (i,) in sql(
        "SELECT id FROM issues WHERE reported_at >= :s AND reported_at <= :e "
        "AND status NOT IN ('closed', 'rejected')", s=start, e=end)}
    assert {r["service_request_id"] for r in found} == expected and expected
    codes = client.get_service_requests(start_date=start, end_date=end, service_code="noise,garbage")
    expected = {str(i) for (i,) in sql(
        "SELECT id FROM issues WHERE reported_at >= :s AND reported_at <= :e "
        "AND category IN ('noise', 'garbage')", s=start, e=end)}
    assert {r["service_request_id"] for r in codes} == expected and expected
    closed = client.get_service_requests(start_date=start, end_date=end, status="closed")
    assert closed and all(r["status"] == "closed" for r in closed)
    final = {str(i) for (i,) in sql(  # Open311's closed: the loop has ended (closed or rejected)
        "SELECT id FROM issues WHERE reported_at >= :s AND reported_at <= :e "
        "AND status IN ('closed', 'rejected')", s=start, e=end)}
    assert {r["service_request_id"] for r in closed} == final
    both = client.get_service_requests(start_date=start, end_date=end, status="open,closed")
    assert len(both) == len(closed) + len(found)


def test_a_rejected_issue_reads_as_closed(endpoint, api_key, base, grid05):
    lat, lon, _ = grid05
    request_id = post(endpoint, api_key=api_key, service_code="parking_chaos", lat=str(lat),
                      long=str(lon)).json()[0]["service_request_id"]
    token = httpx.post(f"{base}/api/v1/auth/token",
                       data={"username": "admin", "password": DEMO_PASSWORD}).json()["access_token"]
    r = httpx.post(f"{base}/api/v1/issues/{request_id}/transitions", json={"to": "rejected"},
                   headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    read = GeoReport(endpoint).get_service_request(request_id)
    assert read["status"] == "closed" and "rejected" in read["status_notes"]
    window = {"start_date": (datetime.now().astimezone() - timedelta(hours=1)).isoformat(),
              "service_code": "parking_chaos"}
    ids = {r["service_request_id"] for r in GeoReport(endpoint).get_service_requests(
        status="closed", **window)}
    assert request_id in ids
    assert request_id not in {r["service_request_id"] for r in GeoReport(endpoint).get_service_requests(
        status="open", **window)}


# -- keys, idempotency, locating --------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_posting_without_a_valid_key_is_403_in_the_spec_format(endpoint, fmt, demo_engine, grid05):
    lat, lon, _ = grid05
    with session_scope(demo_engine) as session:
        key_id, revoked = api_keys.create_api_key(session, "old app")
        api_keys.revoke_api_key(session, key_id)
    for key in (None, "gm311_not-a-key", revoked):
        r = post(endpoint, fmt, service_code="garbage", lat=str(lat), long=str(lon),
                 **({"api_key": key} if key else {}))
        assert r.status_code == 403
        if fmt == "json":
            assert r.json()[0]["code"] == 403 and "api_key" in r.json()[0]["description"]
        else:
            assert "<errors><error><code>403</code><description>api_key" in r.text


def test_the_same_idempotency_key_returns_the_same_request(endpoint, api_key, demo_engine, grid05):
    lat, lon, _ = grid05
    key = str(uuid.uuid4())
    form = {"service_code": "garbage", "lat": str(lat), "long": str(lon)}
    first = post(endpoint, headers={"Idempotency-Key": key}, api_key=api_key, **form)
    again = post(endpoint, headers={"Idempotency-Key": key}, api_key=api_key, **form)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()[0]["service_request_id"] == again.json()[0]["service_request_id"]
    with session_scope(demo_engine) as session:  # keys are scoped per api key
        other_key = api_keys.create_api_key(session, "wechat")[1]
    other = post(endpoint, headers={"Idempotency-Key": key}, api_key=other_key, **form)
    assert other.status_code == 201
    assert other.json()[0]["service_request_id"] != first.json()[0]["service_request_id"]


def test_an_address_string_names_a_building(endpoint, api_key, sql):
    r = post(endpoint, api_key=api_key, service_code="elevator_failure",
             address_string="水利局家属院 3号楼", description="电梯停在5楼")
    assert r.status_code == 201, r.text
    request_id = int(r.json()[0]["service_request_id"])
    inside, same_grid = sql("""
        SELECT ST_Contains(b.geom, i.geom), b.grid_id = i.grid_id
          FROM issues i, buildings b JOIN compounds c ON c.id = b.compound_id
         WHERE i.id = :i AND c.name = '水利局家属院' AND b.name = '3号楼'""", i=request_id)[0]
    assert inside and same_grid


def test_attributes_link_the_facility(endpoint, api_key, sql):
    fid, code, lat, lon = sql("""SELECT id, code, ST_Y(geom), ST_X(geom) FROM facilities
                                  WHERE category = 'sewage_cover' AND code IS NOT NULL
                                  ORDER BY id LIMIT 1""")[0]
    by_code = post(endpoint, api_key=api_key, service_code="cover_damaged", lat=str(lat + 0.001),
                   long=str(lon), **{"attribute[facility_code]": code})
    by_kind = post(endpoint, api_key=api_key, service_code="cover_damaged", lat=str(lat),
                   long=str(lon + 0.00003), **{"attribute[facility_kind]": "sewage_cover"})
    for r in (by_code, by_kind):
        assert r.status_code == 201, r.text
        linked = sql("SELECT facility_id FROM issues WHERE id = :i",
                     i=int(r.json()[0]["service_request_id"]))[0][0]
        assert linked == fid


# -- errors -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("method, path, form, status, words", [
    ("get", "services/ufo.json", None, 404, "service_code 'ufo'"),
    ("get", "services/ufo.xml", None, 404, "service_code 'ufo'"),
    ("get", "requests/999999999.json", None, 404, "999999999"),
    ("get", "requests/999999999.xml", None, 404, "999999999"),
    ("get", "nothing-here.json", None, 404, "no such"),
    ("get", "requests.json?status=pending", None, 400, "open or closed"),
    ("get", "requests.xml?start_date=yesterday", None, 400, "start_date"),
    ("get", "requests.json?start_date=2025-01-01&end_date=2025-06-01", None, 400, "90 days"),
    ("get", "requests.json?service_request_id=abc", None, 400, "number"),
    ("get", "requests.json?service_code=ufo", None, 400, "ufo"),
    ("post", "requests.json", {"service_code": "garbage"}, 400, "location is required"),
    ("post", "requests.xml", {"service_code": "ufo", "lat": "36.84", "long": "112.86"}, 400, "ufo"),
    ("post", "requests.json", {"service_code": "garbage", "lat": "36.84"}, 400, "lat and long"),
    ("post", "requests.json", {"service_code": "garbage", "lat": "north", "long": "112.86"}, 400,
     "decimal degrees"),
    ("post", "requests.json", {"service_code": "garbage", "address_string": "火星基地"}, 400,
     "send lat and long"),
    ("post", "requests.json", {"service_code": "cover_damaged", "lat": "36.84", "long": "112.86",
                               "attribute[facility_kind]": "bench"}, 400, "facility_kind"),
    ("post", "requests.json", {"service_code": "cover_damaged", "lat": "36.84", "long": "112.86",
                               "attribute[facility_code]": "0000"}, 400, "facility_code"),
    ("post", "requests.json", {"service_code": "garbage", "lat": "36.84", "long": "112.86",
                               "media_url": "javascript:alert(1)"}, 400, "media_url"),
])
def test_errors_use_the_spec_format(endpoint, api_key, method, path, form, status, words):
    if method == "get":
        r = httpx.get(f"{endpoint}/{path}", auth=ADMIN)
    else:
        r = httpx.post(f"{endpoint}/{path}", data={"api_key": api_key, **form})
    assert r.status_code == status, r.text
    if path.split("?")[0].endswith(".xml"):
        assert r.headers["content-type"].startswith("text/xml")
        assert f"<errors><error><code>{status}</code><description>" in r.text
        assert words in r.text
    else:
        assert r.json() == [{"code": status, "description": r.json()[0]["description"]}]
        assert words in r.json()[0]["description"]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_reading_requests_needs_a_log_in_services_do_not(endpoint, posted, fmt):
    request_id = posted.json()[0]["service_request_id"]
    for path in (f"requests.{fmt}", f"requests/{request_id}.{fmt}"):
        for auth in (None, ("admin", "wrong")):
            r = httpx.get(f"{endpoint}/{path}", auth=auth)
            assert r.status_code == 401 and "Basic" in r.headers["www-authenticate"]
            if fmt == "json":
                assert r.json()[0]["code"] == 401
            else:
                assert "<errors><error><code>401</code>" in r.text
        assert httpx.get(f"{endpoint}/{path}", auth=ADMIN).status_code == 200
    for path in (f"services.{fmt}", f"services/garbage.{fmt}", f"discovery.{fmt}"):
        assert httpx.get(f"{endpoint}/{path}").status_code == 200


def test_department_staff_read_their_departments_requests_only(endpoint, posted, sql, demo_data):
    # Two months of the demo's own (it may be seen at a pinned moment long past).
    window = {"start_date": (demo_data.seen_at - timedelta(days=60)).isoformat(),
              "end_date": (demo_data.seen_at + timedelta(days=1)).isoformat()}
    huanwei = ("huanwei01", DEMO_PASSWORD)
    got = httpx.get(f"{endpoint}/requests.json", params=window, auth=huanwei).json()
    expected = {str(i) for (i,) in sql(
        "SELECT i.id FROM issues i JOIN departments d ON d.id = i.department_id "
        "WHERE d.code = 'huanwei' AND i.reported_at >= :s AND i.reported_at <= :e",
        s=window["start_date"], e=window["end_date"])}
    assert {r["service_request_id"] for r in got} == expected and expected
    other = sql("SELECT min(i.id) FROM issues i JOIN departments d ON d.id = i.department_id "
                "WHERE d.code = 'zhifa'")[0][0]
    r = httpx.get(f"{endpoint}/requests/{other}.json", auth=huanwei)
    assert r.status_code == 403 and r.json()[0]["code"] == 403


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_discovery(endpoint, fmt):
    r = httpx.get(f"{endpoint}/discovery.{fmt}")
    assert r.status_code == 200
    if fmt == "json":
        found = r.json()["endpoints"][0]
        assert found["url"] == endpoint and found["specification"] == open311.SPEC_URL
        assert set(found["formats"]) == {"text/xml", "application/json"}
    else:
        assert f"<url>{endpoint}</url>" in r.text and "<format>text/xml</format>" in r.text


def test_admins_manage_keys_with_the_cli(database_url, monkeypatch, capsys, endpoint, grid05):
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert gridmap(["api-key", "create", "--label", "城管通 app", "--by", "admin"]) == 0
    out = capsys.readouterr().out
    key = out.strip().splitlines()[-1]
    key_id = int(out.split()[2])
    assert key.startswith("gm311_")
    assert gridmap(["api-key", "list"]) == 0
    listing = capsys.readouterr().out
    assert "城管通 app" in listing and key not in listing
    lat, lon, _ = grid05
    assert post(endpoint, api_key=key, service_code="garbage", lat=str(lat), long=str(lon)).status_code == 201
    assert gridmap(["api-key", "revoke", str(key_id)]) == 0
    assert post(endpoint, api_key=key, service_code="garbage", lat=str(lat), long=str(lon)).status_code == 403
    assert gridmap(["api-key", "revoke", "999999"]) == 1
