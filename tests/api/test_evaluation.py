"""The evaluation over HTTP: who may see it (leaders, dispatchers, admins; 403 in the caller's
language otherwise), the contract the dashboard reads, periods and their labels, the numbers
against gis.queries.evaluation on the worked March 2024, and the exports: the workbook opened
with openpyxl (sheets, headers, frozen panes, formats, widths) and the CSV, both audited."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from urllib.parse import unquote

import pytest
from openpyxl import load_workbook
from pydantic import ValidationError

from api.evaluation_schemas import EvaluationPublic
from api.settings import Settings
from gis.queries.evaluation import INDICATORS, Period, evaluate
from gis.rules import BEIJING, EVALUATION_ROLES
from tests.api.conftest import bearer
from tests.gis.evaluation_world import COMMUNITY, GRIDS, MARCH, add_case, build_world
from tests.gis.test_evaluation import march_cases

URL = "/api/v1/evaluation"
G1, G2 = GRIDS
MARCH_PARAMS = {"period": "month", "date": "2024-03-15"}
SHEETS = ["专业部门", "网格员", "网格", "社区", "说明"]


@pytest.fixture(scope="module")
def roles(headers, app_client):
    return headers | {"dispatcher": bearer(app_client, "dispatcher"),
                      "department": bearer(app_client, "huanwei01")}


@pytest.fixture
def march(session):
    """The worked March 2024 (tests/gis/test_evaluation.py) in a community of the dispatcher's
    district, outside the leader's community."""
    world = build_world(session)
    for case in march_cases().values():
        add_case(session, world, case)
    return world


# -- who ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [f"{URL}?role=grid", f"{URL}/export.xlsx",
                                  f"{URL}/export.csv?role=worker"])
@pytest.mark.parametrize("role, status", [("anonymous", 401), ("owner", 403), ("department", 403),
                                          ("leader", 200), ("dispatcher", 200), ("admin", 200)])
def test_the_evaluation_is_for_leaders_dispatchers_and_admins(client, roles, path, role, status):
    r = client.get(path, headers=roles[role])
    assert r.status_code == status, r.text
    if status == 403:
        assert r.json()["code"] == "forbidden"
        assert "leader or dispatcher or admin" in r.json()["detail"]


def test_a_refusal_speaks_chinese_to_a_chinese_caller(client, roles):
    r = client.get(URL, params={"role": "grid"},
                   headers=roles["owner"] | {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert r.status_code == 403
    assert r.json()["detail"].startswith("此操作需要以下角色之一：领导、派遣员、管理员")


# -- the contract ----------------------------------------------------------------------------------
def test_the_answer_follows_the_contract(client, roles, march):
    body = client.get(URL, params={"role": "department", **MARCH_PARAMS},
                      headers=roles["dispatcher"]).json()
    assert set(body) == {"role", "period", "previous", "indicators", "data", "count"}
    EvaluationPublic.model_validate(body)
    assert body["role"] == "department" and body["count"] == len(body["data"])
    assert body["period"] == {"since": "2024-03-01", "until": "2024-03-31", "label": "2024-03"}
    assert body["previous"] == {"since": "2024-02-01", "until": "2024-02-29", "label": "2024-02"}
    assert body["indicators"] == [i.as_dict() for i in INDICATORS["department"]]
    assert [i["zh"] for i in body["indicators"]] == ["派遣数", "结案率", "按期结案率", "返工率",
                                                     "延期率", "回退率", "平均处置时长"]
    for row in body["data"]:
        assert set(row) == {"key", "name", "values", "score", "grade", "previous_score",
                            "previous_grade", "score_change"}
        assert set(row["values"]) == {i["key"] for i in body["indicators"]}
    a = next(r for r in body["data"] if r["key"] == "evaltest_a")
    assert a["name"] == "测试甲所" and a["values"]["return_rate"] == 0.25


@pytest.mark.parametrize("params, period, previous", [
    ({"period": "week", "date": "2024-03-13"}, ("2024-03-11", "2024-03-17", "2024-W11"),
     ("2024-03-04", "2024-03-10", "2024-W10")),
    ({"period": "quarter", "date": "2024-03-13"}, ("2024-01-01", "2024-03-31", "2024-Q1"),
     ("2023-10-01", "2023-12-31", "2023-Q4")),
    ({"since": "2024-03-10", "until": "2024-03-19"},
     ("2024-03-10", "2024-03-19", "2024-03-10/2024-03-19"),
     ("2024-02-29", "2024-03-09", "2024-02-29/2024-03-09")),
])
def test_periods_and_their_labels(client, roles, params, period, previous):
    body = client.get(URL, params={"role": "community", **params}, headers=roles["admin"]).json()
    assert tuple(body["period"].values()) == period
    assert tuple(body["previous"].values()) == previous


def test_the_default_is_this_month_in_beijing(client, roles):
    from datetime import datetime

    today = datetime.now(BEIJING).date()
    body = client.get(URL, params={"role": "grid"}, headers=roles["leader"]).json()
    assert body["period"]["label"] in {f"{today:%Y-%m}", f"{today + timedelta(days=1):%Y-%m}"}


@pytest.mark.parametrize("params, says", [
    ({"role": "street"}, "role"),
    ({"role": "grid", "period": "year"}, "period"),
    ({"role": "grid", "since": "2024-03-01"}, "both since and until"),
    ({"role": "grid", "since": "2024-03-02", "until": "2024-03-01"}, "after"),
    ({"role": "grid", "period": "week", "since": "2024-03-01", "until": "2024-03-02"},
     "either period and date"),
    ({"role": "grid", "since": "2020-01-01", "until": "2024-03-02"}, "at most 731 days"),
    ({"role": "grid", "date": "2024-02-30"}, "date"),
    ({"role": "grid", "date": "9999-12-31"}, "must be within"),
])
def test_bad_parameters_are_422_naming_what_was_wrong(client, roles, params, says):
    r = client.get(URL, params=params, headers=roles["admin"])
    assert r.status_code == 422, r.text
    assert says in str(r.json()["detail"])


# -- the numbers --------------------------------------------------------------------------------
@pytest.mark.parametrize("role", EVALUATION_ROLES)
def test_the_numbers_are_the_domains_over_the_callers_scope(client, roles, session, march, role):
    body = client.get(URL, params={"role": role, **MARCH_PARAMS}, headers=roles["dispatcher"]).json()
    expected = evaluate(session, march.admin, role, MARCH)  # the whole test database: the district
    assert body["data"] == expected["data"]
    ours = {"grid": set(GRIDS), "community": {COMMUNITY}, "worker": {"evalworker1", "evalworker2"},
            "department": {"evaltest_a", "evaltest_b"}}[role]
    assert ours <= {r["key"] for r in body["data"]}
    leader = client.get(URL, params={"role": role, **MARCH_PARAMS}, headers=roles["leader"]).json()
    if role == "department":  # listed, but with nothing of the leader's community
        a = next(r for r in leader["data"] if r["key"] == "evaltest_a")
        assert a["values"]["dispatched"] == 0 and a["score"] is None
    else:  # another community's grids and workers are not the leader's
        assert not ours & {r["key"] for r in leader["data"]}


def test_grades_appear_once_there_are_enough_cases(client, roles, sql, march):
    sql("UPDATE evaluation_minimums SET min_cases = 2")
    body = client.get(URL, params={"role": "grid", **MARCH_PARAMS}, headers=roles["admin"]).json()
    rows = {r["key"]: r for r in body["data"]}
    assert (rows[G1]["score"], rows[G1]["grade"]) == (59.7, "D")
    assert (rows[G2]["score"], rows[G2]["grade"]) == (100.0, "A")
    assert [r["key"] for r in body["data"]][:2] == [G2, G1]


# -- the exports -----------------------------------------------------------------------------------
def _exports(sql) -> list:
    return sql("SELECT target, detail FROM audit_log WHERE action = 'export' "
               "AND target LIKE '%/evaluation/%' ORDER BY id")


def test_the_workbook(client, roles, sql, march):
    before = len(_exports(sql))
    r = client.get(f"{URL}/export.xlsx", params=MARCH_PARAMS, headers=roles["dispatcher"])
    assert r.status_code == 200
    assert r.headers["content-type"] == \
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    disposition = r.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="evaluation-2024-03.xlsx"; ')
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == "综合评价-2024-03.xlsx"
    assert disposition.isascii()
    book = load_workbook(io.BytesIO(r.content))
    assert book.sheetnames == SHEETS
    json_rows = {role: client.get(URL, params={"role": role, **MARCH_PARAMS},
                                  headers=roles["dispatcher"]).json()["data"]
                 for role in EVALUATION_ROLES}
    for role, name in zip(EVALUATION_ROLES, SHEETS, strict=False):
        sheet = book[name]
        headers = [c.value for c in sheet[1]]
        assert headers[2:2 + len(INDICATORS[role])] == [
            i.zh + ("（工作小时）" if i.unit == "hours" else "") for i in INDICATORS[role]]
        assert headers[-5:] == ["综合得分", "等级", "上期得分", "上期等级", "得分变化"]
        assert sheet.freeze_panes == "C2"
        assert all(c.font.bold for c in sheet[1])
        assert sheet.max_row == 1 + len(json_rows[role])
        for n, indicator in enumerate(INDICATORS[role], start=3):
            cell = sheet.cell(row=2, column=n)
            assert cell.number_format == {"rate": "0.0%", "count": "0", "hours": "0.00",
                                          "per_1000": "0.00"}[indicator.unit]
        by_key = {row[0]: row for row in sheet.iter_rows(min_row=2, values_only=True)}
        for row in json_rows[role]:
            assert list(by_key[row["key"]]) == [row["key"], row["name"],
                                                *row["values"].values(), row["score"],
                                                row["grade"], row["previous_score"],
                                                row["previous_grade"], row["score_change"]]
        # widths fit the Chinese headers (two columns per character)
        assert sheet.column_dimensions["B"].width >= 2 * len(headers[1])
    a = {row[0]: row for row in book["专业部门"].iter_rows(min_row=2, values_only=True)}
    assert a["evaltest_a"][1] == "测试甲所" and a["evaltest_a"][7] == 0.25  # 回退率
    notes = [[c for c in row if c is not None] for row in book["说明"].iter_rows(values_only=True)]
    assert notes[0][:2] == ["评价周期", "2024-03"] and notes[1][:2] == ["对比上期", "2024-02"]
    assert ["等级", "A", "B", "C", "D", "E"] in notes and ["最低得分", 90, 75, 60, 40, 0] in notes
    assert ["专业部门", "按期结案率", "on-time closure rate", "比率", "越高越好", 30, 5] in notes
    exports = _exports(sql)
    assert len(exports) == before + 1
    assert exports[-1].detail == {"format": "xlsx", "rows": sum(map(len, json_rows.values()))}


def test_the_csv_of_one_role(client, roles, sql, march):
    before = len(_exports(sql))
    params = {"role": "worker", "since": "2024-03-01", "until": "2024-03-31"}
    r = client.get(f"{URL}/export.csv", params=params, headers=roles["admin"])
    assert r.status_code == 200 and r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.content.startswith("\ufeff".encode())
    disposition = r.headers["content-disposition"]
    assert 'filename="evaluation-worker-2024-03-01_2024-03-31.csv"' in disposition
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == \
        "综合评价-网格员-2024-03-01至2024-03-31.csv"
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    body = client.get(URL, params=params, headers=roles["admin"]).json()
    assert list(rows[0]) == ["key", "name", *[i.key for i in INDICATORS["worker"]], "score",
                             "grade", "previous_score", "previous_grade", "score_change"]
    assert [r["key"] for r in rows] == [r["key"] for r in body["data"]]
    one = next(r for r in rows if r["key"] == "evalworker1")
    assert (one["name"], one["reports"], one["on_time_check_rate"]) == ("测试甲", "3", "0.8")
    assert one["score"] == "" or float(one["score"]) >= 0
    exports = _exports(sql)
    assert len(exports) == before + 1 and exports[-1].detail["format"] == "csv"


def test_office_hours_must_end_after_they_start():
    with pytest.raises(ValidationError, match="must be after GRIDMAP_WORKDAY_START"):
        Settings(workday_start="18:00", workday_end="17:30")
    assert Settings().session_info()["workday_start"].isoformat() == "08:30:00"


def test_a_period_in_a_request_is_the_domains(client, roles):
    body = client.get(URL, params={"role": "grid", "period": "week", "date": "2026-11-15"},
                      headers=roles["admin"]).json()
    assert body["period"] == Period.of("week", date(2026, 11, 15)).as_dict()
