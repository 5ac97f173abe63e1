"""People administration over HTTP: accounts (admins only), departments, grid assignment history.
Against the demo in PostGIS; every test's requests roll back (the ``client`` fixture)."""

from __future__ import annotations

import pytest

from tests.api.conftest import bearer

GRID_03, GRID_05, GRID_06 = "140429100001003", "140429100001005", "140429100001006"
OWN = "My-Own-Secret-77"
NEW = {"username": "wang.li", "display_name": "王力", "role": "网格员", "phone": "13800007777",
       "grids": [GRID_05, GRID_06]}


def login(client, username, password):
    return client.post("/api/v1/auth/token", data={"username": username, "password": password})


def create(client, headers, **body):
    r = client.post("/api/v1/users", json=NEW | body, headers=headers["admin"])
    assert r.status_code == 201, r.text
    return r.json()


def test_an_admin_adds_reads_changes_and_lists_people(client, headers):
    made = create(client, headers)
    assert made["role"] == "worker" and made["role_zh"] == "网格员"
    assert made["grids"] == [GRID_05, GRID_06] and made["must_change_password"] is True
    assert len(made["initial_password"]) >= 10 and "password_hash" not in made
    got = client.get("/api/v1/users/wang.li", headers=headers["admin"]).json()
    assert got == {k: v for k, v in made.items() if k != "initial_password"}
    r = client.patch("/api/v1/users/wang.li", headers=headers["admin"],
                     json={"display_name": "王立", "phone": None, "grids": [GRID_03]})
    assert r.status_code == 200, r.text
    assert (r.json()["display_name"], r.json()["phone"], r.json()["grids"]) == ("王立", None, [GRID_03])
    answer = client.get("/api/v1/users", headers=headers["admin"])
    listed = answer.json()
    names = [u["username"] for u in listed["data"]]
    assert listed["count"] == len(names) and {"wang.li", "worker03", "admin"} <= set(names)
    assert "$argon2" not in answer.text and not any("hash" in key for u in listed["data"] for key in u)
    history = client.get(f"/api/v1/users/assignments?grid={GRID_05}", headers=headers["admin"]).json()
    assert [(h["username"], h["valid_to"] is None) for h in history["data"]][-1] == ("wang.li", False)


def test_a_leader_is_moved_to_another_role_and_region(client, headers):
    create(client, headers, username="zhao.min", role="leader", grids=None, region="太东社区")
    r = client.patch("/api/v1/users/zhao.min", headers=headers["admin"],
                     json={"role": "派遣员", "region": "140429"})
    assert r.status_code == 200 and (r.json()["role"], r.json()["region_code"]) == ("dispatcher", "140429")
    r = client.patch("/api/v1/users/zhao.min", headers=headers["admin"],
                     json={"role": "department", "department": "huanwei"})
    assert (r.json()["department"], r.json()["region_code"]) == ("huanwei", None)


def test_a_created_users_first_log_in_may_only_change_the_password(client, headers):
    made = create(client, headers)
    r = login(client, "wang.li", made["initial_password"])
    assert r.status_code == 200 and r.json()["password_change_required"] is True
    pending = {"Authorization": f"Bearer {r.json()['access_token']}"}
    blocked = client.get("/api/v1/issues?limit=1", headers=pending)
    assert blocked.status_code == 403 and blocked.json()["code"] == "password_change_required"
    done = client.post("/api/v1/me/password", headers=pending,
                       json={"old_password": made["initial_password"], "new_password": OWN})
    assert done.status_code == 200
    fresh = {"Authorization": f"Bearer {done.json()['access_token']}"}
    assert client.get("/api/v1/issues?limit=1", headers=fresh).status_code == 200


def test_a_given_password_is_not_echoed_and_is_initial(client, headers):
    made = create(client, headers, password="Given-Pass-2026")
    assert made["initial_password"] is None
    assert login(client, "wang.li", "Given-Pass-2026").json()["password_change_required"] is True


def test_a_disabled_user_is_out_on_the_next_request_and_enabled_again(client, headers):
    token = bearer(client, "worker09")
    assert client.get("/api/v1/me", headers=token).status_code == 200
    r = client.post("/api/v1/users/worker09/disable", headers=headers["admin"])
    assert r.status_code == 200 and r.json()["active"] is False and r.json()["grids"] == []
    assert client.get("/api/v1/me", headers=token).status_code == 401
    r = client.post("/api/v1/users/worker09/enable", headers=headers["admin"])
    assert r.status_code == 200 and r.json()["active"] is True
    assert client.get("/api/v1/me", headers=bearer(client, "worker09")).status_code == 200


def test_a_password_reset_answers_a_generated_one_once_and_ends_the_sessions(client, headers):
    token = bearer(client, "worker10")
    r = client.post("/api/v1/users/worker10/password", headers=headers["admin"])
    assert r.status_code == 200 and r.json()["must_change_password"] is True
    generated = r.json()["initial_password"]
    assert client.get("/api/v1/me", headers=token).status_code == 401
    assert login(client, "worker10", generated).json()["password_change_required"] is True
    r = client.post("/api/v1/users/worker10/password", headers=headers["admin"],
                    json={"password": "Chosen-By-Admin-1"})
    assert r.status_code == 200 and r.json()["initial_password"] is None
    weak = client.post("/api/v1/users/worker10/password", headers=headers["admin"], json={"password": "abc"})
    assert weak.status_code == 422 and weak.json()["code"] == "weak_password"


@pytest.mark.parametrize("body, words", [
    ({"role": "保安"}, "unknown role '保安'"),
    ({"role": "leader", "grids": None, "region": "火星社区"}, "no region with code or name '火星社区'"),
    ({"role": "leader", "grids": None}, "a leader needs a region"),
    ({"role": "department", "grids": None, "department": "nowhere"}, "no department with code or name"),
    ({"grids": ["140429100001099"]}, "no current grid with code 140429100001099"),
    ({"phone": "12345"}, "is not a mainland mobile number"),
    ({"password": "short"}, "the password must be at least 10 characters"),
    ({"username": "x"}, "username 'x' must be 2-64 letters"),
    ({"role": "leader", "region": "太东社区"}, "only grid workers hold grids"),
])
def test_bad_values_are_422_saying_what_is_wrong(client, headers, body, words):
    r = client.post("/api/v1/users", json=NEW | body, headers=headers["admin"])
    assert r.status_code == 422 and words in r.json()["detail"], r.text


def test_bad_values_are_worded_in_chinese_for_chinese_callers(client, headers):
    r = client.post("/api/v1/users", json=NEW | {"role": "保安"},
                    headers=headers["admin"] | {"Accept-Language": "zh-CN"})
    assert r.status_code == 422 and "未知的角色" in r.json()["detail"]


def test_unknown_users_are_404_and_existing_usernames_409(client, headers):
    admin = headers["admin"]
    assert client.get("/api/v1/users/nobody", headers=admin).status_code == 404
    assert client.patch("/api/v1/users/nobody", json={"phone": None}, headers=admin).status_code == 404
    assert client.post("/api/v1/users/nobody/disable", headers=admin).status_code == 404
    assert client.post("/api/v1/users/nobody/password", headers=admin).status_code == 404
    r = client.post("/api/v1/users", json=NEW | {"username": "worker01"}, headers=admin)
    assert r.status_code == 409 and "already exists" in r.json()["detail"]
    r = client.patch("/api/v1/users/worker01", json={"password": "Sneaky-Pass-2026"}, headers=admin)
    assert r.status_code == 422  # a password is never set by a PATCH


def test_the_last_admin_can_be_neither_disabled_nor_demoted(client, headers):
    r = client.post("/api/v1/users/admin/disable", headers=headers["admin"])
    assert r.status_code == 409 and "last active admin" in r.json()["detail"]
    r = client.patch("/api/v1/users/admin", json={"role": "worker"}, headers=headers["admin"])
    assert r.status_code == 409
    create(client, headers, username="admin2", role="管理员", grids=None)
    assert client.post("/api/v1/users/admin2/disable", headers=headers["admin"]).status_code == 200


ADMIN_ONLY = [("get", "/api/v1/users", None), ("post", "/api/v1/users", NEW),
              ("get", "/api/v1/users/worker01", None), ("patch", "/api/v1/users/worker01", {"phone": None}),
              ("post", "/api/v1/users/worker01/disable", None),
              ("post", "/api/v1/users/worker01/enable", None),
              ("post", "/api/v1/users/worker01/password", None),
              ("post", "/api/v1/departments", {"code": "shuiwu", "name": "水务所"})]


@pytest.mark.parametrize("method, path, body", ADMIN_ONLY)
def test_people_administration_is_for_admins(client, headers, method, path, body, sql):
    before = sql("SELECT md5(string_agg(u::text, ',' ORDER BY id)) FROM users u")
    for role, status in (("anonymous", 401), ("owner", 403), ("leader", 403)):
        r = client.request(method, path, json=body, headers=headers[role])
        assert r.status_code == status, (role, r.text)
    dispatcher = client.request(method, path, json=body, headers=bearer(client, "dispatcher"))
    assert dispatcher.status_code == 403
    assert sql("SELECT md5(string_agg(u::text, ',' ORDER BY id)) FROM users u") == before


def test_departments_are_read_by_anyone_logged_in_and_added_by_admins(client, headers):
    assert client.get("/api/v1/departments").status_code == 401
    listed = client.get("/api/v1/departments", headers=headers["owner"]).json()
    shizheng = next(d for d in listed["data"] if d["code"] == "shizheng")
    assert shizheng["name"] == "市政所" and "sewer_blocked" in shizheng["categories"]
    assert shizheng["staff"] == 2
    body = {"code": "shuiwu", "name": "水务所", "categories": ["sewer_blocked"], "region": "武乡县"}
    r = client.post("/api/v1/departments", json=body, headers=headers["admin"])
    assert r.status_code == 201, r.text
    assert (r.json()["region_code"], r.json()["staff"]) == ("140429", 0)
    assert client.post("/api/v1/departments", json=body, headers=headers["admin"]).status_code == 409
    r = client.post("/api/v1/departments", json=body | {"code": "x2", "categories": ["flying_saucer"]},
                    headers=headers["admin"])
    assert r.status_code == 422 and "unknown issue categories flying_saucer" in r.json()["detail"]
    create(client, headers, username="lin.feng", role="部门人员", grids=None, department="shuiwu")
    assert client.get("/api/v1/users/lin.feng", headers=headers["admin"]).json()["department_name"] == "水务所"


@pytest.fixture
def second_community(sql):
    """A community beside 太东社区 in the same street, with one grid, inside the test's transaction."""
    sql("""
        WITH c AS (
            INSERT INTO regions (code, name, level, parent_id, geom)
            SELECT '140429100002', '测试社区', 'community', parent_id,
                   ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(112.90, 36.84), 4326), 0.002))
              FROM regions WHERE code = '140429100001' RETURNING id, geom)
        INSERT INTO grids (code, name, community_id, geom)
        SELECT '140429100002001', '测试网格', id, geom FROM c""")
    return "140429100002001"


def test_grid_history_is_for_admins_and_leaders_and_dispatchers_of_its_region(client, headers,
                                                                             second_community):
    path = "/api/v1/users/assignments?grid="
    ours = client.get(path + GRID_03, headers=headers["leader"])
    assert ours.status_code == 200 and [h["username"] for h in ours.json()["data"]] == ["worker03"]
    assert client.get(path + second_community, headers=headers["leader"]).status_code == 403
    assert client.get(path + second_community, headers=bearer(client, "dispatcher")).status_code == 200
    assert client.get(path + second_community, headers=headers["admin"]).json()["count"] == 0
    assert client.get(path + GRID_03, headers=headers["owner"]).status_code == 403
    assert client.get(path + GRID_03).status_code == 401
    assert client.get(path + "140429100001099", headers=headers["admin"]).status_code == 404
