"""Reading grids, buildings, facilities, issues and categories over HTTP, on the demo data.

Every filter is checked against a count written independently in SQL (or in Python over rows
fetched by SQL), paging is followed to the end through the `next` links, and reporter contact
is checked per role. Issues are case data: they are read as the admin (who reads every case)
unless a test is about another role.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from api.schemas import (
    BuildingPublic,
    BuildingsPublic,
    CategoriesPublic,
    FacilitiesPublic,
    FacilityPublic,
    GridDetailPublic,
    GridsPublic,
    IssuePublic,
    IssuesPublic,
)
from gis.people.privacy import mask_text

GRID_03 = "140429100001003"
ADMIN: dict = {}  # the admin's bearer header, filled once per module (fixture `admin_reads`)


@pytest.fixture(scope="module", autouse=True)
def admin_reads(headers):
    ADMIN.update(headers["admin"])


@pytest.fixture(scope="module")
def community(committed_sql):
    return committed_sql("SELECT name, code FROM regions WHERE level = 'community'")[0]


def get_all(client, path: str, params: dict | None = None, headers: dict | None = None,
            limit: int = 500) -> list[dict]:
    """Follow the `next` links from the first page to the last (as the admin unless ``headers``
    say otherwise); check the counts on the way."""
    headers = ADMIN if headers is None else headers
    r = client.get(path, params={**(params or {}), "limit": limit}, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    features, total = list(body["features"]), body["numberMatched"]
    while nxt := [link["href"] for link in body["links"] if link["rel"] == "next"]:
        body = client.get(nxt[0], headers=headers).json()
        assert body["numberMatched"] == total
        assert len(body["features"]) == body["numberReturned"] <= limit
        features += body["features"]
    assert len(features) == total
    assert len({f["id"] for f in features}) == total  # no item twice across pages
    return features


def count(client, path: str, **params) -> int:
    r = client.get(path, params={**params, "limit": 1}, headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()["numberMatched"]


# --- grids ------------------------------------------------------------------------------------

def test_grid_detail_has_worker_open_issues_and_facilities_by_status(client, sql):
    r = client.get(f"/api/v1/grids/{GRID_03}", headers=ADMIN)
    assert r.status_code == 200
    feature = GridDetailPublic.model_validate(r.json())
    props = feature.properties
    assert props.code == GRID_03 and props.worker == "worker03" and props.worker_display_name
    open_by_status = dict(sql("""
        SELECT i.status, count(*) FROM issues i JOIN grids g ON g.id = i.grid_id
         WHERE g.code = :c AND i.status NOT IN ('closed', 'rejected') GROUP BY 1""", c=GRID_03))
    assert props.open_issues_by_status == open_by_status
    assert props.open_issues == sum(open_by_status.values())
    facilities = dict(sql("""SELECT f.status, count(*) FROM facilities f JOIN grids g
                              ON g.id = f.grid_id WHERE g.code = :c GROUP BY 1""", c=GRID_03))
    assert {k: v for k, v in props.facilities_by_status.items() if v} == facilities
    assert set(props.facilities_by_status) == {"ok", "damaged", "missing", "repairing"}
    assert feature.geometry.type == "MultiPolygon"
    anonymous = client.get(f"/api/v1/grids/{GRID_03}").json()["properties"]  # public, but not
    assert anonymous["worker"] == "worker03" and anonymous["open_issues"] is None  # case counts
    assert anonymous["open_issues_by_status"] is None and anonymous["facilities_by_status"]


def test_unknown_grid_is_404_and_a_malformed_code_422(client):
    r = client.get("/api/v1/grids/140429100001999")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert "140429100001999" in r.json()["detail"]
    r = client.get("/api/v1/grids/3")
    assert r.status_code == 422 and r.json()["code"] == "validation_error"


def test_grid_list_filters(client, community):
    name, code = community
    assert count(client, "/api/v1/grids", community=name) == 14
    assert count(client, "/api/v1/grids", community=code) == 14
    assert count(client, "/api/v1/grids", community="无此社区") == 0
    assert count(client, "/api/v1/grids", q="第03") == 1
    GridsPublic.model_validate(client.get("/api/v1/grids").json())


# --- buildings --------------------------------------------------------------------------------

def test_buildings_paged_to_the_end_match_the_table(client, sql):
    features = get_all(client, "/api/v1/buildings", limit=60)
    ids = sorted(r[0] for r in sql("SELECT id FROM buildings"))
    assert sorted(f["id"] for f in features) == ids
    BuildingsPublic.model_validate(client.get("/api/v1/buildings", params={"limit": 3}).json())


def test_building_filters_match_sql(client, sql, community):
    box = sql("""SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM
                 (SELECT ST_Expand(ST_Envelope(geom), -0.0005) e FROM grids WHERE code = :c) s""",
              c=GRID_03)[0]
    expected = sql("""SELECT count(*) FROM buildings WHERE ST_Intersects(geom,
                      ST_MakeEnvelope(:a, :b, :c, :d, 4326))""", a=box[0], b=box[1], c=box[2],
                   d=box[3])[0][0]
    assert 0 < expected < 254
    assert count(client, "/api/v1/buildings", bbox=",".join(map(str, box))) == expected
    in_grid = sql("SELECT count(*) FROM buildings b JOIN grids g ON g.id = b.grid_id "
                  "WHERE g.code = :c", c=GRID_03)[0][0]
    assert count(client, "/api/v1/buildings", grid=GRID_03) == in_grid > 0
    assert count(client, "/api/v1/buildings", community=community[0]) == 254
    names = [r[0] + " " + (r[1] or "") for r in sql(
        "SELECT b.name, c.name FROM buildings b LEFT JOIN compounds c ON c.id = b.compound_id")]
    assert count(client, "/api/v1/buildings", q="家属院") == sum("家属院" in n for n in names) > 0


def test_one_building_and_a_missing_one(client):
    r = client.get("/api/v1/buildings/1")
    assert r.status_code == 200
    assert BuildingPublic.model_validate(r.json()).properties.grid_code
    r = client.get("/api/v1/buildings/999999")
    assert r.status_code == 404 and r.json() == {"detail": "no building with id 999999",
                                                 "code": "not_found"}


# --- facilities -------------------------------------------------------------------------------

@pytest.mark.parametrize("params, where", [
    ({"status": "damaged"}, "f.status = 'damaged'"),
    ({"status": ["damaged", "missing"]}, "f.status IN ('damaged', 'missing')"),
    ({"category": "streetlight"}, "f.category = 'streetlight'"),
    ({"category": ["bin", "bench"], "status": "ok"}, "f.category IN ('bin', 'bench') AND f.status = 'ok'"),
    ({"grid": GRID_03}, f"g.code = '{GRID_03}'"),
    ({"q": "路灯"}, "f.name LIKE '%路灯%'"),
    ({"q": "14042999"}, "f.code LIKE '%14042999%'"),
])
def test_facility_filters_match_sql(client, sql, params, where):
    expected = sql(f"SELECT count(*) FROM facilities f LEFT JOIN grids g ON g.id = f.grid_id "
                   f"WHERE {where}")[0][0]
    assert expected > 0
    assert count(client, "/api/v1/facilities", **params) == expected


def test_facilities_paged_to_the_end_and_typed(client, sql):
    features = get_all(client, "/api/v1/facilities", {"status": ["damaged", "repairing"]}, limit=10)
    expected = {r[0] for r in sql("SELECT id FROM facilities WHERE status IN ('damaged', 'repairing')")}
    assert {f["id"] for f in features} == expected
    FacilitiesPublic.model_validate(client.get("/api/v1/facilities", params={"limit": 5}).json())
    one = client.get(f"/api/v1/facilities/{features[0]['id']}").json()
    assert FacilityPublic.model_validate(one).properties.category_zh


def test_facility_errors(client):
    r = client.get("/api/v1/facilities", params={"category": "garbage"})  # an issue category
    assert r.status_code == 422 and r.json()["code"] == "unknown_category"
    assert "garbage" in r.json()["detail"] and "streetlight" in r.json()["detail"]
    r = client.get("/api/v1/facilities", params={"status": "broken"})
    assert r.status_code == 422 and r.json()["code"] == "validation_error"
    assert client.get("/api/v1/facilities/999999").status_code == 404


# --- issues -----------------------------------------------------------------------------------

def test_issues_are_rfc7946_newest_first_with_the_documented_properties(client):
    body = client.get("/api/v1/issues", params={"limit": 50}, headers=ADMIN).json()
    IssuesPublic.model_validate(body)
    times = [f["properties"]["reported_at"] for f in body["features"]]
    assert times == sorted(times, reverse=True)
    lon, lat = body["features"][0]["geometry"]["coordinates"]
    assert 112.8 < lon < 112.9 and 36.8 < lat < 36.9  # lon first
    props = body["features"][0]["properties"]
    assert {"category_zh", "category_en", "overdue", "grid_code", "due_at"} <= set(props)


def test_all_issues_paged_to_the_end(client, sql):
    features = get_all(client, "/api/v1/issues", limit=1000)
    assert {f["id"] for f in features} == {r[0] for r in sql("SELECT id FROM issues")}


def test_next_and_prev_links_keep_the_filters(client, sql):
    body = client.get("/api/v1/issues", params={"category": "noise", "limit": 100,
                                                "offset": 100}, headers=ADMIN).json()
    links = {link["rel"]: link["href"] for link in body["links"]}
    assert "category=noise" in links["next"] and "offset=200" in links["next"]
    assert "offset=0" in links["prev"]
    last = client.get("/api/v1/issues", params={"category": "noise", "offset": 10_000},
                      headers=ADMIN).json()
    noise = sql("SELECT count(*) FROM issues WHERE category = 'noise'")[0][0]
    assert last["numberReturned"] == 0 and last["numberMatched"] == noise > 200
    assert [link["rel"] for link in last["links"]] == ["prev"]


def _issue_ids(sql, where: str, **params) -> set[int]:
    return {r[0] for r in sql(f"SELECT i.id FROM issues i LEFT JOIN grids g ON g.id = i.grid_id "
                              f"LEFT JOIN regions r ON r.id = g.community_id WHERE {where}", **params)}


@pytest.mark.parametrize("params, where", [
    ({"category": "garbage"}, "i.category = 'garbage'"),
    ({"category": ["noise", "garbage"]}, "i.category IN ('noise', 'garbage')"),
    ({"status": "closed"}, "i.status = 'closed'"),
    ({"status": "open"}, "i.status IN ('reported', 'accepted', 'dispatched', 'in_progress', "
                         "'resolved', 'reopened', 'on_hold')"),
    ({"status": ["open", "rejected"]}, "i.status <> 'closed'"),
    ({"grid": GRID_03}, f"g.code = '{GRID_03}'"),
    ({"grid": GRID_03, "status": "closed", "category": "noise"},
     f"g.code = '{GRID_03}' AND i.status = 'closed' AND i.category = 'noise'"),
    # since and until are both inclusive: an instant as it is, a day as the whole Beijing day.
    # Dates inside the demo's year of issues: {first} is the first day of ``demo_month``, {eve}
    # the day before it, {last} its last day, {following} the first day of the next month.
    ({"since": "{first}T00:00:00+08:00", "until": "{following}T00:00:00+08:00"},
     "i.reported_at >= '{eve} 16:00Z' AND i.reported_at <= '{last} 16:00Z'"),
    ({"since": "{first}", "until": "{last}"},  # days: Beijing time, until to its end
     "i.reported_at >= '{eve} 16:00Z' AND i.reported_at < '{last} 16:00Z'"),
    ({"since": "{first}T00:00:00", "until": "{last}T23:59:59"},  # no offset: Beijing
     "i.reported_at >= '{eve} 16:00Z' AND i.reported_at <= '{last} 15:59:59Z'"),
    ({"since": "{first}T00:00:00Z"}, "i.reported_at >= '{first} 00:00Z'"),
    ({"until": "{mid}T12:00:00Z", "category": "garbage"},
     "i.reported_at <= '{mid} 12:00Z' AND i.category = 'garbage'"),
])
def test_issue_filters_match_sql(client, sql, demo_month, params, where):
    days = {"first": demo_month.first, "last": demo_month.last, "following": demo_month.following,
            "eve": demo_month.first - timedelta(days=1),
            "mid": demo_month.first + timedelta(days=14)}
    params = {k: v.format(**days) if isinstance(v, str) else v for k, v in params.items()}
    where = where.format(**days)
    expected = _issue_ids(sql, where)
    assert expected
    features = get_all(client, "/api/v1/issues", params, limit=2000)
    assert {f["id"] for f in features} == expected


def test_issue_bbox_matches_sql_on_coordinates(client, sql):
    minx, miny, maxx, maxy = 112.856, 36.836, 112.861, 36.841
    expected = _issue_ids(sql, "ST_X(i.geom) BETWEEN :a AND :c AND ST_Y(i.geom) BETWEEN :b AND :d",
                          a=minx, b=miny, c=maxx, d=maxy)
    assert 0 < len(expected) < 5000
    features = get_all(client, "/api/v1/issues", {"bbox": f"{minx},{miny},{maxx},{maxy}"})
    assert {f["id"] for f in features} == expected
    assert all(minx <= f["geometry"]["coordinates"][0] <= maxx for f in features)


def test_issue_community_filter(client, sql, community):
    name, code = community
    everything = len(_issue_ids(sql, "r.name = :n", n=name))
    assert count(client, "/api/v1/issues", community=name) == everything
    assert count(client, "/api/v1/issues", community=code) == everything
    assert count(client, "/api/v1/issues", community="无此社区") == 0


@pytest.mark.parametrize("q", ["垃圾", "电梯故障", "噪音扰民"])
def test_free_text_matches_python_substring_search(client, sql, q):
    descriptions = sql("SELECT id, description FROM issues")
    expected = {i for i, d in descriptions if q in d}
    assert expected
    assert {f["id"] for f in get_all(client, "/api/v1/issues", {"q": q}, limit=1000)} == expected


def test_free_text_wildcards_are_literal(client):
    assert count(client, "/api/v1/issues", q="%") == 0
    assert count(client, "/api/v1/issues", q="_") == 0


def test_overdue_is_open_and_past_due(client, sql):
    features = get_all(client, "/api/v1/issues", {"status": "open"})
    overdue = {f["id"] for f in features if f["properties"]["overdue"]}
    # open, not on hold (挂账 stops the clock), and past due
    assert overdue == _issue_ids(sql, "i.status NOT IN ('closed', 'rejected', 'on_hold') "
                                      "AND i.due_at < now()")
    closed = client.get("/api/v1/issues", params={"status": "closed", "limit": 200},
                        headers=ADMIN).json()
    assert not any(f["properties"]["overdue"] for f in closed["features"])


@pytest.mark.parametrize("params, code", [
    ({"category": "streetlight"}, "unknown_category"),  # a facility category
    ({"status": "done"}, "validation_error"),
    ({"since": "yesterday"}, "validation_error"),
    ({"bbox": "1,2,3"}, "invalid_coordinates"),
    ({"limit": 0}, "validation_error"),
    ({"offset": -1}, "validation_error"),
])
def test_bad_issue_filters_are_422(client, params, code):
    r = client.get("/api/v1/issues", params=params, headers=ADMIN)
    assert r.status_code == 422 and r.json()["code"] == code
    assert r.json()["detail"]


def test_one_issue_and_a_missing_one(client):
    r = client.get("/api/v1/issues/1", headers=ADMIN)
    assert r.status_code == 200
    assert IssuePublic.model_validate(r.json()).id == 1
    r = client.get("/api/v1/issues/99999999", headers=ADMIN)
    assert r.status_code == 404 and r.json()["code"] == "not_found"


# --- personal data ----------------------------------------------------------------------------

@pytest.mark.parametrize("role, sees", [("owner", True), ("other_worker", False),
                                        ("leader", True), ("admin", True)])
def test_reporter_contact_only_for_the_grids_worker_leaders_and_admins(client, headers, sql, role,
                                                                       sees):
    stored = dict(sql("SELECT id, reporter_contact FROM issues"))
    issue_id, contact = sql("SELECT i.id, i.reporter_contact FROM issues i JOIN grids g "
                            "ON g.id = i.grid_id WHERE g.code = :c AND i.reporter_contact "
                            "IS NOT NULL ORDER BY i.id LIMIT 1", c=GRID_03)[0]
    one = client.get(f"/api/v1/issues/{issue_id}", headers=headers[role]).json()["properties"]
    assert one["reporter_contact"] == (contact if sees else mask_text(contact))
    assert ("client_uuid" in one) is sees
    listed = client.get("/api/v1/issues", params={"grid": GRID_03, "limit": 50},
                        headers=headers[role]).json()["features"]
    for f in listed:
        contact = stored[f["id"]]
        assert f["properties"]["reporter_contact"] == (contact if sees else mask_text(contact))


def test_a_worker_sees_contact_in_their_grid_only(client, headers, sql):
    stored = dict(sql("SELECT id, reporter_contact FROM issues"))
    features = get_all(client, "/api/v1/issues", {"category": "noise"}, headers=headers["owner"])
    for f in features:
        own = f["properties"]["grid_code"] == GRID_03
        assert ("client_uuid" in f["properties"]) is own
        assert f["properties"]["reporter_contact"] == (stored[f["id"]] if own
                                                       else mask_text(stored[f["id"]]))
    assert any(f["properties"]["grid_code"] == GRID_03 for f in features)
    assert any(mask_text(stored[f["id"]]) != stored[f["id"]] for f in features)  # can fail


def test_issues_need_a_log_in(client):
    for path in ("/api/v1/issues", "/api/v1/issues/1"):
        r = client.get(path)
        assert r.status_code == 401 and r.json()["code"] == "unauthorized"


def test_a_bad_token_is_401_not_anonymous(client):
    r = client.get("/api/v1/issues", headers={"Authorization": "Bearer nonsense"})
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"


# --- categories and documentation -------------------------------------------------------------

def test_categories_list_both_kinds_with_chinese_and_english_names(client, sql):
    body = CategoriesPublic.model_validate(client.get("/api/v1/categories").json())
    assert body.count == sql("SELECT count(*) FROM categories")[0][0] == len(body.data)
    by_code = {c.code: c for c in body.data}
    assert by_code["streetlight"].name_zh == "路灯" and by_code["streetlight"].name_en == "Streetlight"
    assert by_code["garbage"].kind == "issue"
    assert by_code["garbage"].limits.normal.handle.model_dump() == {"value": 1, "unit": "workdays"}
    assert by_code["streetlight"].limits is None  # facilities have no time limits
    facility = client.get("/api/v1/categories", params={"kind": "facility"}).json()
    assert {c["kind"] for c in facility["data"]} == {"facility"} and facility["count"] == 11
    assert client.get("/api/v1/categories", params={"kind": "other"}).status_code == 422


MY_PATHS = ("/api/v1/grids", "/api/v1/buildings", "/api/v1/facilities", "/api/v1/issues",
            "/api/v1/categories", "/api/v1/stats")


def test_openapi_describes_every_parameter(client):
    spec = client.get("/openapi.json").json()
    seen = 0
    for path, operations in spec["paths"].items():
        if not path.startswith(MY_PATHS):
            continue
        for method, op in operations.items():
            for param in op.get("parameters", []):
                seen += 1
                assert param.get("description"), f"{method.upper()} {path}: {param['name']}"
    assert seen > 40
    assert client.get("/docs").status_code == 200


def test_times_without_offset_are_beijing_time(client, sql, demo_month):
    """since=<day> means midnight in Beijing: 8 hours earlier than midnight UTC."""
    day = sql("""SELECT min((reported_at AT TIME ZONE 'Asia/Shanghai')::date) FROM issues
                  WHERE reported_at >= :a AND reported_at < :b
                    AND extract(hour FROM reported_at AT TIME ZONE 'Asia/Shanghai') < 8""",
              a=f"{demo_month.first}T00:00+08", b=f"{demo_month.following}T00:00+08")[0][0]
    window = sql("SELECT count(*) FROM issues WHERE reported_at >= :a AND reported_at < :b",
                 a=f"{day - timedelta(days=1)} 16:00Z", b=f"{day} 00:00Z")[0][0]
    assert window > 0
    naive = count(client, "/api/v1/issues", since=f"{day}")
    utc = count(client, "/api/v1/issues", since=f"{day}T00:00:00Z")
    assert naive - utc == window
