"""The pages, closed by default: the log-in page and its cookie, the password change page, log-out,
the admin's user page, and the map pages in each reader's scope with personal data masked.

Against the demo in PostGIS; every test rolls back. The demo has one community: a second one,
with a grid and a case, is made inside the test's transaction where a test needs a case out of
a leader's scope (``elsewhere``)."""

from __future__ import annotations

import html as html_lib
import json
import re
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from api.deps import SESSION_COOKIE
from api.limits import LoginThrottle
from api.main import create_app
from api.pages.routing import safe_next
from gis.people import accounts
from gis.rules import LOCKOUT_FAILURES
from tests.api.conftest import bearer
from tests.conftest import DEMO_PASSWORD, app_settings, requests_on

GRID = "140429100001008"  # worker08's
OTHER_CODE, OTHER_GRID = "140429100002", "140429100002001"
PHONE, MASKED = "13912345678", "139****5678"
HTML = {"Accept": "text/html,application/xhtml+xml"}


@pytest.fixture(scope="module")
def settings(database_url):
    # Many log-ins per username in this module: the throttle has its own test.
    return app_settings(database_url, login_attempts_per_minute=10_000)


@pytest.fixture(autouse=True)
def no_cookies(client):
    """The module's client keeps cookies between requests: each test starts logged out."""
    client.cookies.clear()
    yield
    client.cookies.clear()


# -- helpers ---------------------------------------------------------------------------------------
def hidden(html: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', html).group(1)


def page_login(client, username, password=DEMO_PASSWORD, next_url="/maps/overview", **extra):
    form = client.get("/login", params={"next": next_url})
    assert form.status_code == 200, form.text
    data = {"username": username, "password": password, "csrf_token": hidden(form.text, "csrf_token"),
            "next": next_url} | extra
    return client.post("/login", data=data, follow_redirects=False)


def logged_in(client, username):
    r = page_login(client, username)
    assert r.status_code == 303, r.text
    return client


def session_cookie(response) -> str:
    [cookie] = [c for c in response.headers.get_list("set-cookie")
                if c.startswith(f"{SESSION_COOKIE}=")]
    return cookie


def csrf_of(client) -> str:
    """The CSRF token of the client's page session, as a page's forms carry it."""
    return hidden(client.get("/account/password").text, "csrf_token")


def total(html: str) -> int:
    return int(re.search(r'id="gm-total">[^<]*<b>([\d,]+)</b>', html).group(1).replace(",", ""))


def get(client, path, **kwargs):
    return client.get(path, follow_redirects=False, **kwargs)


@pytest.fixture
def elsewhere(sql):
    """A second community under the same street, with one grid and one open case whose
    description holds a phone number: outside the demo leader's region, inside the district."""
    community = sql("""
        INSERT INTO regions (code, name, level, parent_id, geom)
        SELECT :c, '测试二社区', 'community', parent_id,
               ST_Multi(ST_MakeEnvelope(112.90, 36.90, 112.91, 36.91, 4326))
          FROM regions WHERE code = '140429100001' RETURNING id""", c=OTHER_CODE)[0][0]
    grid = sql("""
        INSERT INTO grids (code, name, community_id, geom, households)
        VALUES (:g, '测试二社区第01网格', :c, ST_Multi(ST_MakeEnvelope(112.90, 36.90, 112.91, 36.91, 4326)),
                300) RETURNING id""", g=OTHER_GRID, c=community)[0][0]
    issue = sql("""
        INSERT INTO issues (category, geom, status, description, grid_id, assignment)
        VALUES ('garbage', ST_SetSRID(ST_MakePoint(112.905, 36.905), 4326), 'reported',
                :d, :g, 'inside') RETURNING id""", d=f"垃圾堆放，联系电话{PHONE}", g=grid)[0][0]
    return issue


@pytest.fixture
def own_case(sql):
    """An open case in worker08's grid whose description holds a phone number."""
    return sql("""
        INSERT INTO issues (category, geom, status, description, grid_id, assignment)
        SELECT 'garbage', ST_PointOnSurface(geom), 'reported', :d, id, 'inside'
          FROM grids WHERE code = :g AND valid_to IS NULL RETURNING id""",
               d=f"楼道堆物，业主电话{PHONE}", g=GRID)[0][0]


# -- the log-in page -------------------------------------------------------------------------------
def test_the_login_page_is_a_plain_form_in_chinese_or_english(client):
    r = client.get("/login")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    for text in ('<label for="gm-username">用户名</label>', 'id="gm-username" name="username"',
                 '<label for="gm-password">密码</label>', 'id="gm-password" name="password" type="password"',
                 '<button type="submit">登录</button>', '<form method="post" action="/login"'):
        assert text in r.text, text
    assert "<script" not in r.text  # works without JavaScript
    [csrf] = [c for c in r.headers.get_list("set-cookie") if c.startswith("gridmap_csrf=")]
    assert "httponly" in csrf.lower() and "samesite=lax" in csrf.lower()
    assert hidden(r.text, "csrf_token") == csrf.split(";")[0].split("=", 1)[1]
    english = client.get("/login", params={"lang": "en"})
    assert '<label for="gm-username">Username</label>' in english.text and "Log in" in english.text


def test_logging_in_sets_an_httponly_lax_cookie_and_goes_on(client, sql):
    r = page_login(client, "leader", next_url="/maps/heatmap?category=garbage")
    assert r.status_code == 303 and r.headers["location"] == "/maps/heatmap?category=garbage"
    cookie = session_cookie(r).lower()
    for part in ("httponly", "samesite=lax", "path=/", "max-age=36000"):
        assert part in cookie, cookie
    assert "secure" not in cookie  # plain HTTP here: a Secure cookie would never come back
    assert get(client, "/maps/overview").status_code == 200
    assert sql("SELECT kind FROM sessions ORDER BY id DESC LIMIT 1")[0][0] == "page"
    [(detail,)] = sql("SELECT detail FROM audit_log WHERE action = 'login' AND username = 'leader' "
                      "ORDER BY id DESC LIMIT 1")
    assert detail["kind"] == "page"


def test_the_cookie_is_secure_over_https(client):
    https = TestClient(client.app, base_url="https://testserver")
    r = page_login(https, "leader")
    assert r.status_code == 303
    assert "; secure" in session_cookie(r).lower()
    assert get(https, "/maps/overview").status_code == 200


@pytest.mark.parametrize("next_url", ["//evil.example/x", "https://evil.example/", "/\\evil.example",
                                      "javascript:alert(1)", "evil.example", "/\tevil", "",
                                      "/ok\r\nSet-Cookie: x=1"])
def test_next_never_leads_off_the_site(client, next_url):
    r = page_login(client, "leader", next_url=next_url)
    assert r.status_code == 303 and r.headers["location"] == "/maps/overview"


def test_next_keeps_a_local_path_and_its_query():
    assert safe_next("/maps/grid/140429100001008?lang=en") == "/maps/grid/140429100001008?lang=en"
    assert safe_next("/maps/issue/7") == "/maps/issue/7"
    assert safe_next(None) == safe_next("//x") == "/maps/overview"


@pytest.mark.parametrize("token", [None, "", "x" * 43])
def test_a_login_without_the_forms_token_is_refused(client, sql, token):
    client.get("/login")  # the cookie is set; the field is missing or wrong
    before = sql("SELECT count(*) FROM audit_log WHERE username = 'leader'")[0][0]
    data = {"username": "leader", "password": DEMO_PASSWORD, "next": "/maps/overview"}
    if token is not None:
        data["csrf_token"] = token
    r = client.post("/login", data=data, follow_redirects=False)
    assert r.status_code == 403 and "登录表单已过期" in r.text
    assert SESSION_COOKIE not in r.headers.get("set-cookie", "")
    assert sql("SELECT count(*) FROM audit_log WHERE username = 'leader'")[0][0] == before


def test_a_login_from_another_site_has_no_cookie_and_is_refused(client):
    form = client.get("/login")
    token = hidden(form.text, "csrf_token")
    client.cookies.clear()  # a forged form elsewhere can copy a field, not set our cookie
    r = client.post("/login", data={"username": "leader", "password": DEMO_PASSWORD,
                                     "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 403


def test_a_wrong_password_shows_the_form_again_and_is_counted(client, sql):
    r = page_login(client, "leader", "not-the-password")
    assert r.status_code == 401 and "用户名或密码错误。" in r.text
    assert 'value="leader"' in r.text  # the username is kept
    assert SESSION_COOKIE not in r.headers.get("set-cookie", "")
    assert sql("SELECT failures FROM login_failures WHERE username = 'leader'")[0][0] == 1
    english = page_login(client, "leader", "wrong", lang="en")
    assert english.status_code == 401 and "Wrong username or password." in english.text


def test_repeated_failures_lock_the_username_on_the_page_too(client):
    answers = [page_login(client, "worker04", f"wrong-{k}") for k in range(LOCKOUT_FAILURES)]
    assert [a.status_code for a in answers] == [401] * (LOCKOUT_FAILURES - 1) + [423]
    assert "已锁定 15 分钟" in answers[-1].text and int(answers[-1].headers["retry-after"]) > 60
    assert page_login(client, "worker04").status_code == 423  # the right password too


def test_the_page_login_is_throttled(client):
    state = client.app.state
    generous, state.login_throttle = state.login_throttle, LoginThrottle(2)
    try:
        codes = [page_login(client, "leader", "wrong").status_code for _ in range(3)]
        assert codes == [401, 401, 429]
        r = page_login(client, "leader")
        assert r.status_code == 429 and "登录尝试次数过多" in r.text and "retry-after" in r.headers
    finally:
        state.login_throttle = generous


def test_the_login_page_sends_a_logged_in_reader_on(client):
    logged_in(client, "leader")
    r = get(client, "/login", params={"next": "/maps/heatmap"})
    assert r.status_code == 303 and r.headers["location"] == "/maps/heatmap"


# -- closed pages ----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [f"/maps/grid/{GRID}?lang=en", "/maps/heatmap?category=garbage&status=open",
                                  "/maps/overview", "/maps/issue/1", "/admin/users", "/account/password"])
def test_the_anonymous_are_sent_to_log_in_and_back(client, path):
    r = get(client, path)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=" + quote(path, safe="/")


def test_static_assets_and_the_login_page_stay_public(client):
    for path in ("/static/gridmap/gridmap.css", "/static/gridmap/pages.css",
                 "/static/npm/leaflet/dist/leaflet.js", "/login"):
        assert get(client, path).status_code == 200, path


def test_api_calls_with_a_dead_cookie_are_401_and_pages_go_to_log_in(client):
    client.cookies.set(SESSION_COOKIE, "gms_not-a-session")
    assert client.get("/api/v1/issues").status_code == 401
    assert get(client, "/maps/overview").status_code == 303


# -- the initial password --------------------------------------------------------------------------
INITIAL, OWN = "Initial-Pass-2026", "My-Own-Secret-77"


@pytest.fixture
def newcomer(session):
    accounts.save_person(session, accounts.Person("zhao.min", "赵敏", "网格员", grids=(GRID,),
                                                  password=INITIAL), by="admin", create=True)
    session.commit()
    return "zhao.min"


def test_an_initial_password_leads_to_the_password_page_first(client, newcomer):
    r = page_login(client, newcomer, INITIAL, next_url=f"/maps/grid/{GRID}")
    assert r.status_code == 303
    assert r.headers["location"] == f"/account/password?next={quote(f'/maps/grid/{GRID}', safe='/')}&lang=zh"
    elsewhere_page = get(client, "/maps/overview")
    assert elsewhere_page.status_code == 303
    assert elsewhere_page.headers["location"] == "/account/password?next=/maps/overview"
    api = client.get("/api/v1/issues")
    assert api.status_code == 403 and api.json()["code"] == "password_change_required"
    form = get(client, r.headers["location"])
    assert form.status_code == 200
    for label in ("原密码", "新密码", "确认新密码"):
        assert f">{label}</label>" in form.text, label
    assert "您正在使用管理员设置的初始密码" in form.text


def test_the_password_page_checks_its_fields_and_starts_a_full_session(client, newcomer, sql):
    page_login(client, newcomer, INITIAL)
    token = csrf_of(client)
    fields = {"old_password": INITIAL, "new_password": OWN, "confirm_password": OWN,
              "next": f"/maps/grid/{GRID}", "csrf_token": token}
    missing = client.post("/account/password", data={**fields, "csrf_token": ""},
                          follow_redirects=False)
    assert missing.status_code == 403 and missing.json()["code"] == "csrf_failed"
    differ = client.post("/account/password", data={**fields, "confirm_password": OWN + "x"})
    assert differ.status_code == 422 and "两次输入的新密码不一致" in differ.text
    weak = client.post("/account/password", data={**fields, "new_password": "short",
                                                   "confirm_password": "short"})
    assert weak.status_code == 422 and "至少 10 个字符" in weak.text
    wrong = client.post("/account/password", data={**fields, "old_password": "guess"})
    assert wrong.status_code == 401 and "原密码错误" in wrong.text
    old_cookie = client.cookies.get(SESSION_COOKIE)
    done = client.post("/account/password", data=fields, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/maps/grid/{GRID}"
    assert "httponly" in session_cookie(done).lower()
    assert client.cookies.get(SESSION_COOKIE) != old_cookie
    assert get(client, f"/maps/grid/{GRID}").status_code == 200
    assert sql("SELECT must_change_password FROM users WHERE username = :u", u=newcomer)[0][0] is False
    client.cookies.set(SESSION_COOKIE, old_cookie)
    assert get(client, "/maps/overview").status_code == 303  # the initial session is over


# -- log-out ---------------------------------------------------------------------------------------
def test_logging_out_needs_the_forms_token_and_ends_the_session(client, sql):
    logged_in(client, "worker08")
    token = csrf_of(client)
    forged = client.post("/logout", data={}, follow_redirects=False)
    assert forged.status_code == 403
    assert get(client, "/maps/overview").status_code == 200  # still logged in
    r = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?lang=zh"
    cleared = session_cookie(r)
    assert cleared.startswith(f'{SESSION_COOKIE}=""') and "max-age=0" in cleared.lower()
    assert sql("SELECT revoked_at IS NOT NULL FROM sessions WHERE kind = 'page' "
               "ORDER BY id DESC LIMIT 1")[0][0] is True
    assert get(client, "/maps/overview").status_code == 303


def test_every_map_page_has_the_log_out_form(client):
    logged_in(client, "worker08")
    token = csrf_of(client)
    for path in (f"/maps/grid/{GRID}", "/maps/heatmap", "/maps/overview"):
        page = get(client, path).text
        assert '<form method="post" action="/logout">' in page, path
        assert hidden(page, "csrf_token") == token, path
        assert f'<meta name="csrf-token" content="{token}">' in page, path


# -- the page cache never mixes sessions or scopes -------------------------------------------------
def test_cached_pages_carry_no_session_token(client):
    logged_in(client, "leader")
    first_token = csrf_of(client)
    first = get(client, "/maps/overview")
    client.cookies.clear()
    logged_in(client, "leader")  # a second session of the same scope
    second = get(client, "/maps/overview")
    assert second.headers["x-page-cache"] == "hit"
    second_token = csrf_of(client)
    assert first_token != second_token
    assert first_token in first.text and first_token not in second.text and second_token in second.text
    cached = [page for _, page in client.app.state.map_cache._pages.values()]
    assert cached and not any("csrf-token" in page or "/logout" in page for page in cached)


def test_one_scopes_page_is_never_served_to_another(client):
    logged_in(client, "leader")
    assert get(client, "/maps/heatmap").headers["x-page-cache"] == "miss"
    assert get(client, "/maps/heatmap").headers["x-page-cache"] == "hit"
    client.cookies.clear()
    logged_in(client, "huanwei01")
    assert get(client, "/maps/heatmap").headers["x-page-cache"] == "miss"


# -- scopes ----------------------------------------------------------------------------------------
def count_in_scope(sql, where: str, **params) -> int:
    return sql(f"SELECT count(*) FROM issues i WHERE {where}", **params)[0][0]


def test_a_leader_sees_only_their_regions_cases(client, sql, elsewhere):
    in_region = count_in_scope(sql, """
        i.grid_id IN (SELECT g.id FROM grids g JOIN regions c ON c.id = g.community_id
                       WHERE c.code = '140429100001')
        OR (i.grid_id IS NULL AND ST_Covers((SELECT geom FROM regions WHERE code = '140429100001'),
                                            i.geom))""")
    logged_in(client, "leader")
    heatmap = get(client, "/maps/heatmap").text
    assert total(heatmap) == in_region
    assert OTHER_GRID not in heatmap
    overview = get(client, "/maps/overview").text
    assert OTHER_GRID not in overview and "140429100001008" in overview
    assert get(client, f"/maps/issue/{elsewhere}").status_code == 403
    page = get(client, f"/maps/issue/{elsewhere}", headers=HTML)
    assert page.status_code == 403 and "无权访问" in page.text and "不在您的查看范围内" in page.text
    grid_map = get(client, f"/maps/grid/{OTHER_GRID}")
    assert grid_map.status_code == 200 and f"/maps/issue/{elsewhere}?" not in grid_map.text


def test_the_district_dispatcher_and_the_admin_see_the_other_community(client, sql, elsewhere):
    everything = count_in_scope(sql, "TRUE")
    for username in ("dispatcher", "admin"):
        client.cookies.clear()
        logged_in(client, username)
        heatmap = get(client, "/maps/heatmap").text
        assert OTHER_GRID in heatmap, username
        assert OTHER_GRID in get(client, "/maps/overview").text, username
        assert get(client, f"/maps/issue/{elsewhere}").status_code == 200, username
        assert f"/maps/issue/{elsewhere}?" in get(client, f"/maps/grid/{OTHER_GRID}").text
        if username == "admin":
            assert total(heatmap) == everything


def test_department_staff_see_their_departments_cases(client, sql):
    department = sql("SELECT department_id FROM users WHERE username = 'huanwei01'")[0][0]
    theirs = count_in_scope(sql, "i.department_id = :d", d=department)
    assert 0 < theirs < count_in_scope(sql, "TRUE")
    logged_in(client, "huanwei01")
    assert total(get(client, "/maps/heatmap").text) == theirs
    other = sql("SELECT id FROM issues WHERE department_id IS DISTINCT FROM :d LIMIT 1", d=department)[0][0]
    assert get(client, f"/maps/issue/{other}").status_code == 403


def test_a_worker_reads_every_case(client, sql, elsewhere):
    logged_in(client, "worker01")
    assert total(get(client, "/maps/heatmap").text) == count_in_scope(sql, "TRUE")
    assert get(client, f"/maps/issue/{elsewhere}").status_code == 200


def test_a_missing_issue_page_is_404(client, sql):
    logged_in(client, "admin")
    missing = sql("SELECT max(id) + 1000 FROM issues")[0][0]
    assert get(client, f"/maps/issue/{missing}").status_code == 404
    page = get(client, f"/maps/issue/{missing}", headers=HTML)
    assert page.status_code == 404 and "未找到" in page.text and 'lang="zh-CN"' in page.text


# -- no personal data on a map page ----------------------------------------------------------------
def config_of(page: str) -> dict:
    return json.loads(html_lib.unescape(re.search(r'data-gm-issue="([^"]*)"', page).group(1)))


def test_map_popups_and_issue_pages_mask_phone_numbers(client, own_case):
    for username in ("worker08", "admin", "worker01"):
        client.cookies.clear()
        logged_in(client, username)
        grid_map = get(client, f"/maps/grid/{GRID}").text
        assert MASKED in grid_map and PHONE not in grid_map, username
        issue = get(client, f"/maps/issue/{own_case}").text
        assert MASKED in issue and PHONE not in issue, username


def test_the_issue_page_lets_its_script_reveal_and_act_only_as_allowed(client, own_case):
    logged_in(client, "worker08")
    own = get(client, f"/maps/issue/{own_case}").text
    assert config_of(own)["reveal"] is True and 'class="gm-transition"' in own
    item = client.get(f"/api/v1/issues/{own_case}")  # what the script asks for, with the cookie
    assert item.status_code == 200 and PHONE in item.json()["properties"]["description"]
    client.cookies.clear()
    logged_in(client, "worker01")
    other = get(client, f"/maps/issue/{own_case}").text
    assert config_of(other)["reveal"] is False and 'class="gm-transition"' not in other
    assert "您可以查看此事件，但无权处理。" in other


def test_the_issue_pages_script_acts_with_the_cookie_and_the_csrf_header(client, own_case, sql):
    logged_in(client, "worker08")
    page = get(client, f"/maps/issue/{own_case}").text
    token = re.search(r'<meta name="csrf-token" content="([^"]+)">', page).group(1)
    url = f"/api/v1/issues/{own_case}/transitions"
    refused = client.post(url, json={"to": "accepted"})
    assert refused.status_code == 403 and refused.json()["code"] == "csrf_failed"
    moved = client.post(url, json={"to": "accepted", "note": "已核实"}, headers={"X-CSRF-Token": token})
    assert moved.status_code == 200, moved.text
    assert sql("SELECT status FROM issues WHERE id = :i", i=own_case)[0][0] == "accepted"


# -- the admin's user page -------------------------------------------------------------------------
def row_of(page: str, username: str) -> str:
    return re.search(rf'<tr class="gm-user-row[^"]*" data-username="{re.escape(username)}">(.*?)</tr>',
                     page, re.S).group(1)


def test_the_admin_page_lists_users_with_chinese_roles(client):
    logged_in(client, "admin")
    r = get(client, "/admin/users")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    worker = row_of(r.text, "worker08")
    assert '<td class="gm-role">网格员</td>' in worker and GRID in worker
    assert '<td class="gm-active">启用</td>' in worker and '<td class="gm-must-change">否</td>' in worker
    assert "太东社区 (140429100001)" in row_of(r.text, "leader")
    assert '<td class="gm-role">部门人员</td>' in row_of(r.text, "huanwei01")
    for label in ("用户名", "姓名", "角色", "负责网格", "管辖区域", "所属部门", "新增用户"):
        assert label in r.text, label
    assert 'name="csrf_token"' in r.text
    assert "Users" in get(client, "/admin/users", params={"lang": "en"}).text


def test_the_admin_page_is_for_admins_only(client):
    assert get(client, "/admin/users").headers["location"] == "/login?next=/admin/users"
    logged_in(client, "leader")
    assert get(client, "/admin/users").status_code == 403
    page = get(client, "/admin/users", headers=HTML)
    assert page.status_code == 403 and "无权访问" in page.text and "管理员" in page.text
    token = csrf_of(client)
    r = client.post("/admin/users", data={"csrf_token": token, "username": "sneaky",
                                          "display_name": "x", "role": "admin"})
    assert r.status_code == 403


NEW_USER = {"username": "li.na", "display_name": "李娜", "role": "worker", "phone": "13600001111",
            "grids": "140429100001003, 140429100001004", "region": "", "department": ""}


def test_the_admin_adds_a_user_and_sees_the_initial_password_once(client, sql):
    logged_in(client, "admin")
    token = csrf_of(client)
    r = client.post("/admin/users", data={**NEW_USER, "csrf_token": token})
    assert r.status_code == 200 and "已新增用户 li.na。" in r.text
    password = re.search(r'<code id="gm-initial-password">([^<]+)</code>', r.text).group(1)
    assert r.headers["cache-control"] == "no-store"
    row = sql("SELECT role, display_name, must_change_password FROM users WHERE username = 'li.na'")
    assert tuple(row[0]) == ("worker", "李娜", True)
    assert sorted(c for (c,) in sql("SELECT grid_code FROM grid_workers gw JOIN users u "
                                    "ON u.id = gw.user_id WHERE u.username = 'li.na'")) == [
        "140429100001003", "140429100001004"]
    assert password not in get(client, "/admin/users").text  # shown once
    client.cookies.clear()
    first = page_login(client, "li.na", password)
    assert first.status_code == 303 and first.headers["location"].startswith("/account/password")


def test_admin_forms_need_the_csrf_field(client, sql):
    logged_in(client, "admin")
    r = client.post("/admin/users", data=NEW_USER, headers=HTML)
    assert r.status_code == 403 and "缺少 CSRF 令牌" in r.text
    assert sql("SELECT count(*) FROM users WHERE username = 'li.na'")[0][0] == 0


def test_a_refused_user_keeps_the_form_and_says_why(client, sql):
    logged_in(client, "admin")
    r = client.post("/admin/users", data={**NEW_USER, "grids": "140429100001999",
                                          "csrf_token": csrf_of(client)})
    assert r.status_code == 422 and "没有编码为 140429100001999 的现行网格" in r.text
    assert 'value="li.na"' in r.text and 'value="140429100001999"' in r.text
    assert sql("SELECT count(*) FROM users WHERE username = 'li.na'")[0][0] == 0
    leader_without_region = client.post("/admin/users", data={
        **NEW_USER, "role": "leader", "grids": "", "csrf_token": csrf_of(client)})
    assert leader_without_region.status_code == 422 and "须指定管辖区域" in leader_without_region.text


def test_the_admin_changes_a_users_role_and_scope(client, sql):
    logged_in(client, "admin")
    r = client.post("/admin/users/worker05", data={
        "display_name": "网格员五", "role": "leader", "phone": "", "grids": "",
        "region": "140429100001", "department": "", "csrf_token": csrf_of(client)})
    assert r.status_code == 200 and "已保存用户 worker05。" in r.text
    assert tuple(sql("""SELECT u.role, r.code, u.display_name FROM users u
                        JOIN regions r ON r.id = u.region_id WHERE u.username = 'worker05'""")[0]) == (
        "leader", "140429100001", "网格员五")
    assert sql("SELECT count(*) FROM grid_workers gw JOIN users u ON u.id = gw.user_id "
               "WHERE u.username = 'worker05'")[0][0] == 0
    assert '<td class="gm-role">领导</td>' in row_of(r.text, "worker05")


def test_the_admin_disables_and_enables_a_user(client, sql):
    logged_in(client, "worker06")
    worker_cookie = client.cookies.get(SESSION_COOKIE)
    client.cookies.clear()
    logged_in(client, "admin")
    r = client.post("/admin/users/worker06/active", data={"active": "0", "csrf_token": csrf_of(client)})
    assert r.status_code == 200 and '<td class="gm-active">停用</td>' in row_of(r.text, "worker06")
    assert sql("SELECT active FROM users WHERE username = 'worker06'")[0][0] is False
    enabled = client.post("/admin/users/worker06/active", data={"active": "1",
                                                               "csrf_token": csrf_of(client)})
    assert '<td class="gm-active">启用</td>' in row_of(enabled.text, "worker06")
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, worker_cookie)
    assert get(client, "/maps/overview").status_code == 303  # disabling ended the session


def test_the_admin_cannot_disable_themselves(client, sql):
    logged_in(client, "admin")
    r = client.post("/admin/users/admin/active", data={"active": "0", "csrf_token": csrf_of(client)})
    assert r.status_code == 409 and "不能停用自己的账号" in r.text
    assert sql("SELECT active FROM users WHERE username = 'admin'")[0][0] is True


def test_the_admin_resets_a_password(client, sql):
    logged_in(client, "admin")
    r = client.post("/admin/users/worker07/password", data={"csrf_token": csrf_of(client)})
    assert r.status_code == 200 and "已重置用户 worker07 的密码" in r.text
    password = re.search(r'<code id="gm-initial-password">([^<]+)</code>', r.text).group(1)
    assert sql("SELECT must_change_password FROM users WHERE username = 'worker07'")[0][0] is True
    client.cookies.clear()
    assert page_login(client, "worker07").status_code == 401  # the old password is gone
    assert page_login(client, "worker07", password).headers["location"].startswith("/account/password")


# -- a public site ---------------------------------------------------------------------------------
def test_public_read_serves_masked_pages_to_the_anonymous(database_url, db_connection, own_case):
    app = create_app(app_settings(database_url, public_read=True))
    with TestClient(app) as public, requests_on(app, db_connection):
        grid_map = get(public, f"/maps/grid/{GRID}")
        assert grid_map.status_code == 200
        assert MASKED in grid_map.text and PHONE not in grid_map.text
        assert 'name="csrf-token"' not in grid_map.text and "/logout" not in grid_map.text
        assert f'href="/login?next=/maps/grid/{GRID}' in grid_map.text
        issue = get(public, f"/maps/issue/{own_case}")
        assert issue.status_code == 200 and "登录后可处理此事件。" in issue.text
        assert config_of(issue.text)["reveal"] is False and 'class="gm-transition"' not in issue.text
        assert get(public, "/maps/heatmap").status_code == 200
        assert get(public, "/admin/users").status_code == 303  # never public
        api = public.get(f"/api/v1/issues/{own_case}")
        assert api.status_code == 200 and PHONE not in api.json()["properties"]["description"]


def test_a_bearer_token_reads_pages_as_well(client):
    """Scripts and the API tests read pages with a token instead of the cookie."""
    r = get(client, "/maps/overview", headers=bearer(client, "leader"))
    assert r.status_code == 200 and "领导" in r.text
