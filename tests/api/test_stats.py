"""Leader statistics over HTTP: who may see them, the numbers against SQL and Python, CSV output."""

from __future__ import annotations

import csv
import io
import statistics
from datetime import date, timedelta

import pytest

from api.schemas import GridStatsPublic, GridStatsRow, TimelinePublic, TimelineRow

GRID_03 = "140429100001003"


@pytest.fixture(scope="module")
def leader(headers):
    return headers["leader"]


def months_of_the_issues(sql) -> list[date]:
    """The first days of the calendar months (Beijing time) from the oldest issue to the newest."""
    oldest, newest = sql("""SELECT min(reported_at AT TIME ZONE 'Asia/Shanghai')::date,
                                   max(reported_at AT TIME ZONE 'Asia/Shanghai')::date
                              FROM issues""")[0]
    months, month = [], oldest.replace(day=1)
    while month <= newest:
        months.append(month)
        month = (month + timedelta(days=31)).replace(day=1)
    return months


def after_everything(demo_data) -> str:
    """A day after the demo's issues and after any a test reports now."""
    return f"{max(demo_data.seen_at.date(), date.today()) + timedelta(days=2)}"


@pytest.mark.parametrize("path", ["/api/v1/stats/grids", "/api/v1/stats/timeline"])
@pytest.mark.parametrize("role, status", [("anonymous", 401), ("owner", 403), ("leader", 200),
                                          ("admin", 200)])
def test_statistics_are_for_leaders_and_admins(client, headers, path, role, status):
    r = client.get(path, headers=headers[role])
    assert r.status_code == status
    if status != 200:
        assert r.json()["code"] == {401: "unauthorized", 403: "forbidden"}[status]
    if role == "owner":
        assert "leader or admin" in r.json()["detail"]


def test_grid_rows_match_sql_counts(client, leader, sql):
    body = GridStatsPublic.model_validate(client.get("/api/v1/stats/grids", headers=leader).json())
    assert body.count == 14 == len(body.data)
    expected = {r[0]: r[1:] for r in sql("""
        SELECT g.code,
               count(*),
               sum(CASE WHEN i.status IN ('closed', 'rejected') THEN 0 ELSE 1 END),
               sum(CASE WHEN i.status = 'closed' THEN 1 ELSE 0 END),
               sum(CASE WHEN i.status = 'rejected' THEN 1 ELSE 0 END),
               sum(CASE WHEN i.status NOT IN ('closed', 'rejected') AND i.due_at < now()
                        THEN 1 ELSE 0 END)
          FROM issues i JOIN grids g ON g.id = i.grid_id GROUP BY g.code""")}
    for row in body.data:
        assert (row.reported, row.open, row.closed, row.rejected, row.overdue) == expected[row.grid_code]
    assert sum(r.reported for r in body.data) == sql("SELECT count(*) FROM issues "
                                                     "WHERE grid_id IS NOT NULL")[0][0]


def test_rates_medians_and_households_match_python(client, leader, sql):
    rows = client.get("/api/v1/stats/grids", headers=leader).json()["data"]
    row = next(r for r in rows if r["grid_code"] == GRID_03)
    closed = sql("""SELECT i.reported_at, i.due_at, i.closed_at FROM issues i JOIN grids g
                     ON g.id = i.grid_id WHERE g.code = :c AND i.status = 'closed'""", c=GRID_03)
    hours = [(c - r).total_seconds() / 3600 for r, _, c in closed]
    assert row["median_hours_to_close"] == pytest.approx(statistics.median(hours), abs=0.051)
    with_due = [(d, c) for _, d, c in closed if d is not None]
    on_time = sum(c <= d for d, c in with_due) / len(with_due)
    assert row["on_time_rate"] == pytest.approx(on_time, abs=1e-4)
    households = sql("SELECT households FROM grids WHERE code = :c AND valid_to IS NULL",
                     c=GRID_03)[0][0]
    assert row["households"] == households
    assert row["per_1000_households"] == pytest.approx(row["reported"] * 1000 / households, abs=0.01)


def test_grid_stats_take_the_issue_list_filters(client, leader, demo_month):
    params = {"category": "garbage", "since": f"{demo_month.first}",
              "until": f"{demo_month.following}"}
    rows = client.get("/api/v1/stats/grids", params=params, headers=leader).json()["data"]
    listed = client.get("/api/v1/issues", params={**params, "limit": 1}).json()["numberMatched"]
    assert sum(r["reported"] for r in rows) == listed > 0
    one = client.get("/api/v1/stats/grids", params={"grid": GRID_03, "status": "open"},
                     headers=leader).json()
    assert [r["grid_code"] for r in one["data"]] == [GRID_03]
    assert one["data"][0]["closed"] == 0 and one["data"][0]["median_hours_to_close"] is None
    assert one["data"][0]["reported"] == client.get("/api/v1/grids/" + GRID_03).json()[
        "properties"]["open_issues"]


def test_grid_stats_reject_bad_filters(client, leader):
    r = client.get("/api/v1/stats/grids", params={"category": "nope"}, headers=leader)
    assert r.status_code == 422 and r.json()["code"] == "unknown_category"


@pytest.mark.parametrize("bucket, step_days", [("day", 1), ("week", 7), ("month", None)])
def test_timeline_buckets_are_contiguous_and_sum_to_the_total(client, leader, sql, bucket,
                                                              step_days):
    body = TimelinePublic.model_validate(client.get(
        "/api/v1/stats/timeline", params={"bucket": bucket}, headers=leader).json())
    assert body.bucket == bucket and body.count == len(body.data)
    assert sum(r.reported for r in body.data) == sql("SELECT count(*) FROM issues")[0][0]
    starts = [r.bucket_start for r in body.data]
    if step_days:
        assert all(b - a == timedelta(days=step_days) for a, b in zip(starts, starts[1:],
                                                                       strict=False))
    else:
        assert starts == months_of_the_issues(sql)
    if bucket == "week":
        assert all(s.weekday() == 0 for s in starts)  # ISO weeks start on Monday


def test_timeline_months_match_sql_in_beijing_time(client, leader, sql):
    expected = dict(sql("""SELECT date_trunc('month', reported_at AT TIME ZONE 'Asia/Shanghai')::date,
                                  count(*) FROM issues WHERE category = 'noise' GROUP BY 1"""))
    rows = client.get("/api/v1/stats/timeline", params={"bucket": "month", "category": "noise"},
                      headers=leader).json()["data"]
    assert {date.fromisoformat(r["bucket_start"]): r["reported"] for r in rows} == expected


def test_timeline_with_nothing_matching_is_empty(client, leader, demo_data):
    body = client.get("/api/v1/stats/timeline", params={"since": after_everything(demo_data)},
                      headers=leader).json()
    assert body["data"] == [] and body["count"] == 0


def test_unknown_bucket_is_422(client, leader):
    r = client.get("/api/v1/stats/timeline", params={"bucket": "year"}, headers=leader)
    assert r.status_code == 422 and r.json()["code"] == "validation_error"


def test_grid_stats_as_csv_open_in_excel(client, leader):
    r = client.get("/api/v1/stats/grids", params={"format": "csv"}, headers=leader)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "grid-stats.csv" in r.headers["content-disposition"]
    assert r.content.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel then reads Chinese right
    reader = csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")))
    rows = list(reader)
    assert reader.fieldnames == list(GridStatsRow.model_fields) and len(rows) == 14
    assert rows[0]["grid_name"].startswith("太东社区") and rows[0]["community"] == "太东社区"
    as_json = client.get("/api/v1/stats/grids", headers=leader).json()["data"]
    assert [int(r["reported"]) for r in rows] == [r["reported"] for r in as_json]


def test_timeline_as_csv(client, leader, sql, demo_data):
    r = client.get("/api/v1/stats/timeline", params={"format": "csv", "bucket": "month"},
                   headers=leader)
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    months = months_of_the_issues(sql)
    assert [r["bucket_start"] for r in rows] == [m.isoformat() for m in months]
    empty = client.get("/api/v1/stats/timeline",
                       params={"format": "csv", "since": after_everything(demo_data)},
                       headers=leader)
    assert empty.content.decode("utf-8-sig").splitlines() == [",".join(TimelineRow.model_fields)]


def test_csv_needs_a_leader_too(client, headers):
    r = client.get("/api/v1/stats/grids", params={"format": "csv"}, headers=headers["owner"])
    assert r.status_code == 403


def test_issues_in_no_grid_are_counted_apart(client, leader, sql):
    sql("""
        INSERT INTO issues (category, description, geom, status, reported_at, due_at, closed_at)
        VALUES ('garbage', 'stats: in no grid', ST_SetSRID(ST_MakePoint(113.5, 37.5), 4326),
                'reported', now() - interval '3 days', now() - interval '1 day', NULL),
               ('garbage', 'stats: in no grid', ST_SetSRID(ST_MakePoint(113.5, 37.5), 4326),
                'closed', now() - interval '3 days', now() - interval '1 day',
                now() - interval '2 days')
        RETURNING id""")
    body = GridStatsPublic.model_validate(client.get("/api/v1/stats/grids", headers=leader).json())
    out = body.unassigned
    expected = sql("SELECT count(*) FROM issues WHERE grid_id IS NULL")[0][0]
    assert out.reported == expected >= 2
    assert out.open >= 1 and out.overdue >= 1 and out.closed >= 1
    total = sql("SELECT count(*) FROM issues")[0][0]
    assert sum(r.reported for r in body.data) + out.reported == total
    noise = client.get("/api/v1/stats/grids", params={"category": "noise"},
                       headers=leader).json()["unassigned"]
    assert noise["reported"] == sql("SELECT count(*) FROM issues WHERE grid_id IS NULL "
                                    "AND category = 'noise'")[0][0]
