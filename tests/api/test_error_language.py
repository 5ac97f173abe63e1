"""The errors a tablet or a clerk meets, asked in Chinese and in English: the same status and code,
each in its language; validation errors in Chinese keep where each problem is.

Requests go through the test's connection and are rolled back after each test (the ``client``
fixture of tests/conftest.py), so nothing stays.
"""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DataError

from api import errors as api_errors
from tests.api.conftest import bearer
from tests.conftest import app_settings

ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}
EN = {"Accept-Language": "en-US,en;q=0.9,zh-CN;q=0.8"}
X, Y = 112.8600, 36.8400  # inside 太东社区
CJK = re.compile(r"[\u4e00-\u9fff]")
CONTACT = "李四 13911112222"


@pytest.fixture(scope="module")
def settings(database_url):
    return app_settings(database_url, max_body_bytes=10_000, login_attempts_per_minute=3)


@pytest.fixture(scope="module")
def tokens(app_client):
    return {"admin": bearer(app_client, "admin"), "worker05": bearer(app_client, "worker05")}


def fresh_report(client, tokens) -> int:
    """A case waiting for acceptance, at (X, Y) in grid 008, reported through the module's
    rolled-back session: whether the demo holds one depends on the moment it is seen."""
    r = client.post("/api/v1/issues", headers=tokens["admin"],
                    json={"category": "garbage", "lon": X, "lat": Y})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def both(client, method: str, path: str, headers: dict | None = None, **kwargs):
    """The same request asked in English and in Chinese."""
    en = getattr(client, method)(path, headers={**(headers or {}), **EN}, **kwargs)
    zh = getattr(client, method)(path, headers={**(headers or {}), **ZH}, **kwargs)
    assert en.status_code == zh.status_code, (en.text, zh.text)
    assert en.json()["code"] == zh.json()["code"]
    assert en.headers["content-language"] == "en" and zh.headers["content-language"] == "zh-CN"
    return en, zh


# -- what workers and clerks meet ---------------------------------------------------------------------
@pytest.mark.parametrize("method, path, who, body, status, code, english, chinese", [
    ("post", "/api/v1/issues", "admin", {"category": "alien_landing", "lon": X, "lat": Y},
     422, "unknown_category", "unknown issue category 'alien_landing'; known: ",
     "未知的事件类别 'alien_landing'；可用的类别："),
    ("get", "/api/v1/issues?bbox=1,2,3", "admin", None, 422, "invalid_coordinates",
     "bbox needs 4 numbers", "bbox 需要 4 个数"),
    ("get", "/api/v1/issues?bbox=112,36,111,37", "admin", None, 422, "invalid_coordinates",
     "bbox min must not exceed max", "bbox 的最小值不能大于最大值"),
    ("get", "/api/v1/locate?lon=36.84&lat=112.86", None, None, 422, "invalid_coordinates",
     "lat/lon swapped?", "经纬度是否颠倒？"),
    ("post", "/api/v1/issues", "admin",
     {"category": "garbage", "lon": X, "lat": Y, "crs": "EPSG:123456789"}, 422, "unknown_crs",
     "unknown CRS 'EPSG:123456789'", "无法识别的坐标系 'EPSG:123456789'"),
    ("get", "/api/v1/issues/999999999", "admin", None, 404, "not_found",
     "no issue with id 999999999", "未找到：事件 999999999"),
    ("get", "/api/v1/grids/140429100001999", None, None, 404, "not_found", "no ", "未找到"),
    ("get", "/maps/heatmap?since=2025-03-02&until=2025-03-01", "admin", None, 422, "invalid_parameter",
     "since (2025-03-02) is after until (2025-03-01)", "起始时间 since"),
    ("get", "/api/v1/stats/grids", "worker05", None, 403, "forbidden",
     "this needs the role leader or dispatcher or admin", "此操作需要以下角色之一：领导、派遣员、管理员"),
    ("post", "/api/v1/issues", None, {"category": "garbage", "lon": X, "lat": Y}, 401,
     "unauthorized", "Log in first", "请先登录"),
    ("get", "/api/v1/me", "forged", None, 401, "unauthorized", "invalid, expired or ended",
     "登录凭证无效、已过期或已失效"),
])
def test_the_same_error_in_chinese_and_english(client, tokens, method, path, who, body, status,
                                                code, english, chinese):
    headers = {"forged": {"Authorization": "Bearer not.a.token"}}.get(who) or tokens.get(who, {})
    en, zh = both(client, method, path, headers, **({"json": body} if body else {}))
    assert en.status_code == status and en.json()["code"] == code
    assert english in en.json()["detail"] and not CJK.search(en.json()["detail"].split("'")[0])
    assert chinese in zh.json()["detail"], zh.json()["detail"]


def test_an_illegal_transition_names_the_allowed_statuses_in_chinese(client, tokens):
    issue_id = fresh_report(client, tokens)
    en, zh = both(client, "post", f"/api/v1/issues/{issue_id}/transitions", tokens["admin"],
                  json={"to": "closed"})
    assert en.status_code == 409 and en.json()["code"] == "illegal_transition"
    assert "it can go to 'accepted', 'rejected', not 'closed'" in en.json()["detail"]
    assert zh.json()["detail"] == (f"事件 {issue_id} 当前为「信息收集」，只能转为「案卷建立」、"
                                   "「不予立案」，不能转为「核查结案」")


def test_another_grids_worker_is_refused_in_chinese(client, tokens):
    issue_id = fresh_report(client, tokens)  # grid 008, not worker05's
    en, zh = both(client, "post", f"/api/v1/issues/{issue_id}/transitions", tokens["worker05"],
                  json={"to": "accepted"})
    assert en.status_code == 403 and "workers change only their own grids" in en.json()["detail"]
    assert "worker05 无权修改网格" in zh.json()["detail"] and "事件" in zh.json()["detail"]


def test_a_reused_idempotency_key_is_a_conflict_in_chinese(client, tokens):
    key = {"Idempotency-Key": str(uuid.uuid4()), **tokens["admin"]}
    first = client.post("/api/v1/issues", headers=key,
                        json={"category": "garbage", "lon": X, "lat": Y})
    assert first.status_code == 201
    en, zh = both(client, "post", "/api/v1/issues", key,
                  json={"category": "noise", "lon": X, "lat": Y})
    assert en.status_code == 409 and en.json()["code"] == "conflict"
    assert f"issue {first.json()['id']}" in en.json()["detail"]
    assert f"已用于事件 {first.json()['id']}" in zh.json()["detail"]


def test_wrong_password_and_throttling_in_chinese(client):
    form = {"username": "leader", "password": "guess"}
    en, zh = both(client, "post", "/api/v1/auth/token", data=form)
    assert en.status_code == 401 and en.json()["detail"] == "Wrong username or password."
    assert zh.json()["detail"] == "用户名或密码错误。"
    client.post("/api/v1/auth/token", data=form)  # the third attempt of three
    en, zh = both(client, "post", "/api/v1/auth/token", data=form)
    assert en.status_code == 429 and en.json()["code"] == "too_many_requests"
    assert "Too many log-in attempts" in en.json()["detail"]
    assert re.fullmatch(r"登录尝试次数过多，请 \d+ 秒后再试。", zh.json()["detail"])


def test_an_oversize_body_in_chinese(client):
    en, zh = both(client, "post", "/api/v1/issues", content=b"x" * 20_000,
                  headers={"Content-Type": "application/json"})
    assert en.status_code == 413 and en.json()["code"] == "payload_too_large"
    assert en.json()["detail"] == "The request body is larger than 10000 bytes."
    assert zh.json()["detail"] == "请求内容超过 10000 字节的上限。"


# -- validation errors ----------------------------------------------------------------------------------
def test_validation_errors_in_chinese_keep_their_locations(client, tokens):
    body = {"lon": "东经112度", "category": "x" * 40, "facility_id": 0, "channel": "fax",
            "colour": "red"}
    en, zh = both(client, "post", "/api/v1/issues", tokens["admin"], json=body)
    assert en.status_code == 422 and en.json()["code"] == "validation_error"
    detail = zh.json()["detail"]
    for problem in ("lon: 应为数字，收到 '东经112度'", "lat: 缺少此项（必填）",
                    "category: 最多 32 个字符", "facility_id: 应大于或等于 1",
                    "channel: 应为以下之一：'app'、'worker'、'hotline_12345'、'wechat'、'open311'，收到 'fax'",
                    "colour: 不接受此字段"):
        assert problem in detail.split("；"), (problem, detail)
    assert [e["loc"] for e in zh.json()["errors"]] == [e["loc"] for e in en.json()["errors"]]
    assert [e["type"] for e in zh.json()["errors"]] == [e["type"] for e in en.json()["errors"]]
    assert zh.json()["errors"][0]["msg"] == "应为数字，收到 '东经112度'"
    assert "lon: Input should be a valid number" in en.json()["detail"]


@pytest.mark.parametrize("path, chinese", [
    ("/api/v1/issues?limit=0", "query.limit: 应大于或等于 1"),
    ("/api/v1/issues?limit=ten", "query.limit: 应为整数，收到 'ten'"),
    ("/api/v1/locate?lon=east&lat=36.84", "query.lon: 应为数字，收到 'east'"),
    ("/api/v1/locate?lat=36.84", "query.lon: 缺少此项（必填）"),
    ("/maps/heatmap?since=someday", "query.since: 应为日期，如 2025-03-01"),
    ("/maps/overview?lang=fr", "query.lang: 应为以下之一：'zh'、'en'，收到 'fr'"),
])
def test_query_parameters_in_chinese(client, tokens, path, chinese):
    en, zh = both(client, "get", path, tokens["admin"])  # the map pages need a log-in
    assert en.status_code == 422 and chinese in zh.json()["detail"], zh.json()["detail"]


def test_broken_json_in_chinese(client, tokens):
    en, zh = both(client, "post", "/api/v1/issues", {**tokens["admin"], "Content-Type": "application/json"},
                  content='{"category": "garbage", "lon": 1')
    assert en.status_code == 422 and "JSON decode error" in en.json()["detail"]
    assert "JSON 格式错误" in zh.json()["detail"]


# -- the standards' formats ----------------------------------------------------------------------------
def test_open311_errors_in_chinese(client, tokens):
    en, zh = (client.get("/open311/v2/services/ufo.xml", headers=h) for h in (EN, ZH))
    assert en.status_code == zh.status_code == 404
    assert "<description>no service with service_code 'ufo'; see services.json</description>" in en.text
    assert "<description>没有 service_code 为 'ufo' 的服务；见 services.json</description>" in zh.text
    en, zh = (client.get("/open311/v2/requests.json?start_date=yesterday",
                         headers={**h, **tokens["admin"]}) for h in (EN, ZH))
    assert en.status_code == zh.status_code == 400
    assert zh.json() == [{"code": 400, "description": "start_date 应为 W3C 日期时间，如 "
                                                      "2025-03-01T08:00:00Z；收到 'yesterday'"}]


def test_ogc_errors_in_chinese(client, tokens):
    zh = client.get("/ogc/collections/issues/items?category=ufo", headers={**ZH, **tokens["admin"]})
    assert zh.status_code == 400
    assert zh.json()["description"].startswith("未知的事件类别 'ufo'")
    assert client.get("/ogc/collections/roads", headers=ZH).json()["detail"].startswith(
        "没有名为 'roads' 的数据集")


# -- what reaches the logs ------------------------------------------------------------------------------
def test_a_database_error_is_logged_without_the_values(demo_engine):
    """Reporters' contacts travel as statement parameters: SQLAlchemy hides them, and the value
    PostgreSQL quotes in its own message is left out of the log."""
    contact = CONTACT  # a variable: the traceback's source lines must not show the value
    with demo_engine.connect() as conn, pytest.raises(DataError) as caught:
        conn.execute(text("SELECT CAST(:contact AS integer)"), {"contact": contact})
    assert "parameters hidden" in str(caught.value)
    logged = api_errors.loggable(api_errors.internal_detail(caught.value))
    assert "李四" not in logged and "13911112222" not in logged
    assert "InvalidTextRepresentation (SQLSTATE 22P02)" in logged
    assert "[SQL: SELECT CAST(%(contact)s AS integer)]" in logged
