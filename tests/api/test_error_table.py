"""The error table, the caller's language, the formats' templates and errors, without a database
(the app here runs on a database that cannot be reached)."""

from __future__ import annotations

import enum
import logging
import re
import xml.etree.ElementTree as ET
from datetime import date, datetime
from typing import Literal

import pytest
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException

from api import errors as api_errors
from api.cli import main as gridmap
from api.i18n import VALIDATION_ZH, preferred_language, validation_message
from api.main import create_app
from api.protocols import ogc, open311
from api.protocols import tiles as tile_format
from gis import errors
from gis.db.engine import make_engine
from gis.queries import feature_collections, tiles
from tests.conftest import app_settings

UNREACHABLE = "postgresql://nobody:x@127.0.0.1:1/none"
CJK = re.compile(r"[\u4e00-\u9fff]")


# -- the caller's language ------------------------------------------------------------------------
@pytest.mark.parametrize("header, lang", [
    (None, "en"), ("", "en"), ("zh", "zh"), ("zh-CN", "zh"), ("zh-Hans", "zh"),
    ("zh-Hans-CN", "zh"), ("ZH-cn", "zh"), ("en", "en"), ("fr", "en"), ("*", "en"),
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),  # a Chinese browser
    ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),  # an English one that also reads Chinese
    ("en;q=0.5, zh;q=0.6", "zh"),  # the weights decide, not the order
    ("zh;q=0.6, en;q=0.7", "en"),
    ("en, zh", "en"), ("zh, en", "zh"),  # equal weights: the first named
    ("zh;q=0", "en"),  # not acceptable
    ("fr, zh;q=0.3", "zh"),  # Chinese is preferred to English, which is not asked for
    ("zh;q=0.5, *", "en"),  # the wildcard gives English 1.0
    ("zh;q=abc", "en"),  # a malformed weight counts as 0
])
def test_the_preferred_of_chinese_and_english(header, lang):
    assert preferred_language(header) == lang


# -- the table ---------------------------------------------------------------------------------------
def _all_errors(cls=errors.GridMapError):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_errors(sub)


def test_every_error_code_has_a_status_and_both_languages():
    for kind in (errors.GridMapError, *_all_errors()):
        assert kind.code in api_errors.ERRORS, kind
    for code, entry in api_errors.ERRORS.items():
        assert 400 <= entry.status < 600, code
        assert entry.en and not CJK.search(entry.en), code
        assert CJK.search(entry.zh), code


@pytest.mark.parametrize("exc, status", [
    (errors.NotFound("x"), 404), (errors.Forbidden("x"), 403),
    (errors.InvalidCoordinates("x"), 422), (errors.UnknownCRS("x"), 422),
    (errors.InvalidGeometry("x"), 422), (errors.UnknownCategory("x"), 422),
    (errors.ImportFailed("x"), 422), (errors.InvalidParameter("x"), 422),
    (errors.IllegalTransition("x"), 409), (errors.Conflict("x"), 409),
    (errors.DatabaseUnavailable("x"), 503), (errors.SetupError("x"), 503),
    (ogc.InvalidParameter("x"), 422), (open311.BadRequest("x"), 422),  # the protocols say 400
    (HTTPException(401, "x"), 401), (HTTPException(418, "x"), 418),
    (RequestValidationError([]), 422),
    (OperationalError("SELECT 1", {}, Exception("server closed the connection")), 503),
    (DataError("INSERT", {}, Exception("invalid byte sequence: 0x00 NUL")), 422),
    (DataError("INSERT", {}, Exception("numeric field overflow")), 500),
    (RuntimeError("a bug"), 500),
])
def test_status_for_every_kind_of_exception(exc, status):
    assert api_errors.status_for(exc) == status


def test_a_domain_error_says_what_is_wrong_in_either_language():
    specific = errors.UnknownCategory("unknown issue category 'ufo'", zh="未知的事件类别 'ufo'")
    generic = errors.UnknownCategory("unknown issue category 'ufo'")
    assert api_errors.message_for(specific, "en") == "unknown issue category 'ufo'"
    assert api_errors.message_for(specific, "zh") == "未知的事件类别 'ufo'"
    assert api_errors.message_for(generic, "zh") == api_errors.ERRORS["unknown_category"].zh
    assert api_errors.code_for(specific) == api_errors.code_for(generic) == "unknown_category"


def test_a_5xx_tells_the_client_nothing_internal():
    down = errors.DatabaseUnavailable("the database cannot be reached: port 5432 refused")
    for lang in ("en", "zh"):
        message = api_errors.message_for(down, lang)
        assert "5432" not in message and message == getattr(
            api_errors.ERRORS["database_unavailable"], lang)
    assert api_errors.message_for(RuntimeError("secret"), "en") == "Internal server error."


def test_http_errors_of_the_api_carry_both_languages():
    exc = api_errors.LocalizedHTTPException(401, "Wrong username or password.", zh="用户名或密码错误。")
    assert api_errors.message_for(exc, "en") == "Wrong username or password."
    assert api_errors.message_for(exc, "zh") == "用户名或密码错误。"
    plain = HTTPException(405, "Method Not Allowed")  # raised by Starlette: the table's Chinese
    assert api_errors.message_for(plain, "zh") == api_errors.ERRORS["method_not_allowed"].zh


# -- validation errors in Chinese -------------------------------------------------------------------
class Colour(enum.Enum):
    red = "red"
    green = "green"


class Everything(BaseModel):
    model_config = ConfigDict(extra="forbid")

    needed: str
    count: int
    ratio: float
    flag: bool
    at: datetime
    day: date
    positive: int = Field(gt=0)
    small: int = Field(le=10)
    name: str = Field(max_length=3)
    code: str = Field(min_length=5)
    colour: Colour
    channel: Literal["app", "wechat"]


BAD = {"count": "three", "ratio": "half", "flag": "maybe", "at": "yesterday", "day": "someday",
       "positive": 0, "small": 11, "name": "too long", "code": "abc", "colour": "blue",
       "channel": "fax", "colour_name": "red"}


def test_the_common_validation_errors_read_in_chinese():
    with pytest.raises(ValidationError) as caught:
        Everything.model_validate(BAD)
    problems = {e["loc"][0]: e for e in caught.value.errors()}
    assert {e["type"] for e in problems.values()} == {
        "missing", "int_parsing", "float_parsing", "bool_parsing", "datetime_from_date_parsing",
        "date_from_datetime_parsing", "greater_than", "less_than_equal", "string_too_long",
        "string_too_short", "enum", "literal_error", "extra_forbidden"}
    zh = {loc: validation_message(e, "zh") for loc, e in problems.items()}
    for loc, text in zh.items():
        assert CJK.search(text), (loc, text)
        assert VALIDATION_ZH.get(problems[loc]["type"]), problems[loc]["type"]
    assert zh["needed"] == "缺少此项（必填）"
    assert zh["count"] == "应为整数，收到 'three'"
    assert zh["positive"] == "应大于 0" and zh["small"] == "应小于或等于 10"
    assert zh["name"] == "最多 3 个字符" and zh["code"] == "至少 5 个字符"
    assert zh["channel"] == "应为以下之一：'app'、'wechat'，收到 'fax'"
    assert zh["day"] == "应为日期，如 2025-03-01，收到 'someday'"
    assert zh["colour_name"] == "不接受此字段"
    assert validation_message(problems["count"], "en") == problems["count"]["msg"]


def test_invalid_json_reads_in_chinese_with_its_location():
    exc = RequestValidationError([{"type": "json_invalid", "loc": ("body", 31),
                                   "msg": "JSON decode error", "input": {},
                                   "ctx": {"error": "Expecting value"}}])
    assert api_errors.message_for(exc, "zh") == "31: JSON 格式错误：Expecting value"
    assert api_errors.message_for(exc, "en") == "31: JSON decode error"


def test_an_unknown_validation_type_keeps_pydantics_words():
    problem = {"type": "some_new_type", "loc": ("query", "x"), "msg": "Something new"}
    assert validation_message(problem, "zh") == "Something new"


# -- logs ---------------------------------------------------------------------------------------------
def test_personal_data_is_masked_in_logs():
    text = ("insert failed for 李四; lisi@example.cn; 13911112222, +86 139-1111-2222, "
            "0355-1234567, 14042919900101123X; issue 1234567")
    masked = api_errors.loggable(text)
    for private in ("lisi@example.cn", "13911112222", "139-1111-2222", "0355-1234567",
                    "14042919900101123X"):
        assert private not in masked
    assert "issue 1234567" in masked  # ordinary numbers stay


# -- the templates escape what users wrote ------------------------------------------------------------
NASTY = "<script>alert('x')</script> & 水利局\x01家属院"


def test_the_ogc_html_page_escapes_names():
    doc = {"type": "FeatureCollection", "numberReturned": 1, "numberMatched": 1,
           "features": [{"id": "a&b", "properties": {"name": NASTY}}],
           "links": [{"href": "http://h/ogc/collections/grids", "rel": "collection",
                      "type": "application/json", "title": "<b>grids</b>"}]}
    page = ogc.render_html(f"title {NASTY}", doc)
    assert "<script>" not in page and "<b>grids" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; 水利局" in page
    assert 'href="http://h/ogc/collections/grids/items/a%26b?f=html">a&amp;b</a>' in page


def test_the_open311_xml_escapes_descriptions():
    body = open311.to_xml("service_requests", [{"service_request_id": "7", "description": NASTY,
                                                "media_url": None, "flag": True}])
    assert b"<script>" not in body and b"&lt;script&gt;" in body and b" &amp; " in body
    parsed = ET.fromstring(body)
    assert parsed.tag == "service_requests"
    request = parsed.find("request")
    assert request.findtext("description") == NASTY.replace("\x01", "")  # XML cannot hold \x01
    assert request.findtext("media_url") == "" and request.findtext("flag") == "true"


# -- formats agree with the data they describe ----------------------------------------------------------
def test_tilejson_fields_are_the_properties_tiles_carry():
    assert tile_format.LAYER_INFO.keys() == tiles.LAYERS.keys()
    for layer, spec in tiles.LAYERS.items():
        assert tuple(tile_format.LAYER_INFO[layer].fields) == spec.properties
        doc = tile_format.tilejson(layer, "http://h/{z}/{x}/{y}.mvt", None)
        assert doc["bounds"] == list(tile_format.WEB_MERCATOR_WORLD)


def test_ogc_describes_each_collection_the_reads_serve():
    assert tuple(ogc.COLLECTIONS) == feature_collections.COLLECTION_IDS


def test_etags_match_weak_strong_and_star():
    tag = tile_format.etag(b"tile")
    assert tile_format.etag_matches(tag, tag) and tile_format.etag_matches(f"W/{tag}", tag)
    assert tile_format.etag_matches('"other", *', tag)
    assert not tile_format.etag_matches('"other"', tag) and not tile_format.etag_matches(None, tag)


# -- the database down ----------------------------------------------------------------------------------
def test_the_engine_raises_database_unavailable_when_postgresql_cannot_be_reached():
    engine = make_engine(UNREACHABLE)
    with pytest.raises(errors.DatabaseUnavailable, match="cannot be reached") as caught, \
            engine.connect():
        pass
    assert type(caught.value.__cause__).__name__ == "OperationalError"  # the driver's, chained
    assert api_errors.status_for(caught.value) == 503


def test_the_cli_says_the_database_cannot_be_reached(monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE)
    assert gridmap(["api-key", "list"]) == 1
    assert "gridmap: the database cannot be reached" in capsys.readouterr().err


# -- every format answers with status_for, in the caller's language (no database needed) ---------
@pytest.fixture(scope="module")
def offline():
    """The app on a database that cannot be reached: nothing here needs one."""
    with TestClient(create_app(app_settings(UNREACHABLE)),
                    raise_server_exceptions=False) as client:
        yield client


DOMAIN_ERRORS = [errors.NotFound("no such thing", zh="没有这个"),
                 errors.Forbidden("not yours", zh="不是你的"),
                 errors.UnknownCategory("unknown 'ufo'", zh="未知 'ufo'"),
                 errors.IllegalTransition("cannot go there", zh="不能转到那里"),
                 errors.Conflict("key reused", zh="键已用过"),
                 open311.BadRequest("bad field", zh="字段有误"),
                 errors.SetupError("assets missing in /srv/secret")]


@pytest.mark.parametrize("exc", DOMAIN_ERRORS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_open311_errors_take_their_status_from_status_for(offline, monkeypatch, exc, fmt):
    def fail(session):
        raise exc

    monkeypatch.setattr(open311, "list_services", fail)
    expected = open311.spec_status(api_errors.status_for(exc))
    for lang, header in (("en", "en-US"), ("zh", "zh-CN,zh;q=0.9")):
        r = offline.get(f"/open311/v2/services.{fmt}", headers={"Accept-Language": header})
        assert r.status_code == expected
        message = api_errors.message_for(exc, lang)
        if fmt == "json":
            assert r.json() == [{"code": expected, "description": message}]
        else:
            error = ET.fromstring(r.content).find("error")
            assert (int(error.findtext("code")), error.findtext("description")) == (expected, message)
        assert r.headers["content-language"] == ("zh-CN" if lang == "zh" else "en")
    assert "/srv/secret" not in r.text  # a 5xx says nothing internal


def test_ogc_answers_invalid_input_with_400_in_the_callers_language(offline):
    en = offline.get("/ogc/collections/grids/items?limit=0")
    zh = offline.get("/ogc/collections/grids/items?limit=0", headers={"Accept-Language": "zh"})
    assert en.status_code == zh.status_code == 400
    assert en.json()["code"] == zh.json()["code"] == "InvalidParameterValue"
    assert en.json()["description"] == "limit must be a whole number >= 1; got '0'"
    assert zh.json()["description"] == "limit 应为不小于 1 的整数；收到 '0'"


def test_the_database_down_is_503_with_a_safe_message_and_the_reason_in_the_log(offline, caplog):
    with caplog.at_level(logging.ERROR, logger="gridmap.api"):
        en = offline.get("/api/v1/grids")
        zh = offline.get("/api/v1/grids", headers={"Accept-Language": "zh-Hans-CN"})
        spec = offline.get("/open311/v2/services.json", headers={"Accept-Language": "zh"})
    for r in (en, zh):
        assert r.status_code == 503 and r.json()["code"] == "database_unavailable"
        assert r.headers["retry-after"] == "5" and "127.0.0.1" not in r.text
    assert en.json()["detail"] == "The database is unavailable; try again shortly."
    assert zh.json()["detail"] == "数据库暂时无法访问，请稍后再试。"
    assert spec.status_code == 503 and spec.json()[0]["description"] == zh.json()["detail"]
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 3 and all("database cannot be reached" in m for m in logged)
    assert all("Connection refused" in m and "database_unavailable" in m for m in logged)
    assert offline.get("/health").status_code == 503


def test_a_failure_is_logged_without_the_reporters_contact(offline, monkeypatch, caplog):
    import api.routes.open311 as open311_routes

    def store(session, cache, key_id, post, idempotency_key=None):
        raise RuntimeError(f"could not store the report of {post.email}, {post.phone}")

    monkeypatch.setattr(open311_routes, "authenticate_api_key", lambda session, key: 1)
    monkeypatch.setattr(open311, "post_request", store)
    with caplog.at_level(logging.ERROR, logger="gridmap.api"):
        r = offline.post("/open311/v2/requests.json", data={
            "api_key": "k", "service_code": "garbage", "lat": "36.84", "long": "112.86",
            "email": "lisi@example.cn", "phone": "13911112222"}, headers={"Accept-Language": "zh"})
    assert r.status_code == 500
    assert r.json() == [{"code": 500, "description": "服务器内部错误。"}]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "could not store the report of <email>, <phone>" in logged  # with its traceback
    assert "Traceback" in logged and "lisi@example.cn" not in logged and "13911112222" not in logged


def test_an_unexpected_error_is_a_safe_json_500_in_the_callers_language(offline, monkeypatch):
    import api.routes.ogc as ogc_routes

    def broken(base):
        raise RuntimeError("the secret detail")

    monkeypatch.setattr(ogc_routes.ogc, "landing_page", broken)
    r = offline.get("/ogc/", headers={"Accept-Language": "zh"})
    assert r.status_code == 500 and r.json() == {"detail": "服务器内部错误。", "code": "internal_error"}
