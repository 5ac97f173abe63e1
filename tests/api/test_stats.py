"""Statistics over HTTP: who may see them (leaders, dispatchers, admins, each over their scope),
the numbers against SQL and Python, per-worker credit by assignment history, CSV output (an
audited export)."""

from __future__ import annotations

import csv
import io
import statistics
from datetime import date, timedelta

import pytest

from api.schemas import (
    GridStatsPublic,
    GridStatsRow,
    TimelinePublic,
    TimelineRow,
    WorkerStatsPublic,
    WorkerStatsRow,
)
from tests.api.conftest import bearer
from tests.api.scope_data import add_case, grid_point, other_places

GRID_03 = "140429100001003"


@pytest.fixture(scope="module")
def leader(headers):
    return headers["leader"]


@pytest.fixture(scope="module")
def admin(headers):
    """Totals over every case are the admin's (the leader's cover their community)."""
    return headers["admin"]


@pytest.fixture(scope="module")
def roles(headers, app_client):
    return headers | {"dispatcher": bearer(app_client, "dispatcher"),
                      "department": bearer(app_client, "huanwei01")}


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


@pytest.mark.parametrize("path", ["/api/v1/stats/grids", "/api/v1/stats/timeline",
                                  "/api/v1/stats/workers"])
@pytest.mark.parametrize("role, status", [("anonymous", 401), ("owner", 403), ("department", 403),
                                          ("leader", 200), ("dispatcher", 200), ("admin", 200)])
def test_statistics_are_for_leaders_dispatchers_and_admins(client, roles, path, role, status):
    r = client.get(path, headers=roles[role])
    assert r.status_code == status
    if status != 200:
        assert r.json()["code"] == {401: "unauthorized", 403: "forbidden"}[status]
    if status == 403:
        assert "leader or dispatcher or admin" in r.json()["detail"]


def test_grid_rows_match_sql_counts(client, leader, sql):
    body = GridStatsPublic.model_validate(client.get("/api/v1/stats/grids", headers=leader).json())
    assert body.count == 14 == len(body.data)
    expected = {r[0]: r[1:] for r in sql("""
        SELECT g.code,
               count(*),
               sum(CASE WHEN i.status IN ('closed', 'rejected') THEN 0 ELSE 1 END),
               sum(CASE WHEN i.status = 'closed' THEN 1 ELSE 0 END),
               sum(CASE WHEN i.status = 'rejected' THEN 1 ELSE 0 END),
               sum(CASE WHEN i.status NOT IN ('closed', 'rejected', 'on_hold') AND i.due_at < now()
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
    listed = client.get("/api/v1/issues", params={**params, "limit": 1},
                        headers=leader).json()["numberMatched"]
    assert sum(r["reported"] for r in rows) == listed > 0
    one = client.get("/api/v1/stats/grids", params={"grid": GRID_03, "status": "open"},
                     headers=leader).json()
    assert [r["grid_code"] for r in one["data"]] == [GRID_03]
    assert one["data"][0]["closed"] == 0 and one["data"][0]["median_hours_to_close"] is None
    assert one["data"][0]["reported"] == client.get("/api/v1/grids/" + GRID_03, headers=leader).json()[
        "properties"]["open_issues"]


def test_grid_stats_reject_bad_filters(client, leader):
    r = client.get("/api/v1/stats/grids", params={"category": "nope"}, headers=leader)
    assert r.status_code == 422 and r.json()["code"] == "unknown_category"


# Medians that come out empty, or for cases in no grid only: the counts' merge with them must
# hold whatever dtype the empty side takes (a case a schema fuzzer found).
@pytest.mark.parametrize("params", [
    {"since": "2099-01-01"},
    {"until": "1990-01-01"},
    {"status": "closed", "since": "2099-01-01"},
    {"grid": GRID_03, "since": "2099-01-01"},
    {"grid": "no-such-grid"},
    {"community": "no-such-community"},
    {"status": "closed", "grid": "no-such-grid"},
    {"category": "noise", "status": "closed", "until": "1990-01-01"},
])
def test_grid_stats_with_nothing_closed_in_any_grid(client, admin, params):
    r = client.get("/api/v1/stats/grids", params=params, headers=admin)
    assert r.status_code in (200, 422), r.text
    if r.status_code == 200:
        assert all(row["median_hours_to_close"] is None for row in r.json()["data"])


@pytest.mark.parametrize("bucket, step_days", [("day", 1), ("week", 7), ("month", None)])
def test_timeline_buckets_are_contiguous_and_sum_to_the_total(client, admin, sql, bucket,
                                                              step_days):
    body = TimelinePublic.model_validate(client.get(
        "/api/v1/stats/timeline", params={"bucket": bucket}, headers=admin).json())
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


def test_timeline_months_match_sql_in_beijing_time(client, admin, sql):
    expected = dict(sql("""SELECT date_trunc('month', reported_at AT TIME ZONE 'Asia/Shanghai')::date,
                                  count(*) FROM issues WHERE category = 'noise' GROUP BY 1"""))
    rows = client.get("/api/v1/stats/timeline", params={"bucket": "month", "category": "noise"},
                      headers=admin).json()["data"]
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


def test_timeline_as_csv(client, admin, sql, demo_data):
    r = client.get("/api/v1/stats/timeline", params={"format": "csv", "bucket": "month"},
                   headers=admin)
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    months = months_of_the_issues(sql)
    assert [r["bucket_start"] for r in rows] == [m.isoformat() for m in months]
    empty = client.get("/api/v1/stats/timeline",
                       params={"format": "csv", "since": after_everything(demo_data)},
                       headers=admin)
    assert empty.content.decode("utf-8-sig").splitlines() == [",".join(TimelineRow.model_fields)]


def test_csv_needs_a_leader_too(client, headers):
    r = client.get("/api/v1/stats/grids", params={"format": "csv"}, headers=headers["owner"])
    assert r.status_code == 403


def test_issues_in_no_grid_are_counted_apart(client, admin, sql):
    sql("""
        INSERT INTO issues (category, description, geom, status, reported_at, due_at, closed_at)
        VALUES ('garbage', 'stats: in no grid', ST_SetSRID(ST_MakePoint(113.5, 37.5), 4326),
                'reported', now() - interval '3 days', now() - interval '1 day', NULL),
               ('garbage', 'stats: in no grid', ST_SetSRID(ST_MakePoint(113.5, 37.5), 4326),
                'closed', now() - interval '3 days', now() - interval '1 day',
                now() - interval '2 days')
        RETURNING id""")
    body = GridStatsPublic.model_validate(client.get("/api/v1/stats/grids", headers=admin).json())
    out = body.unassigned
    expected = sql("SELECT count(*) FROM issues WHERE grid_id IS NULL")[0][0]
    assert out.reported == expected >= 2
    assert out.open >= 1 and out.overdue >= 1 and out.closed >= 1
    total = sql("SELECT count(*) FROM issues")[0][0]
    assert sum(r.reported for r in body.data) + out.reported == total
    noise = client.get("/api/v1/stats/grids", params={"category": "noise"},
                       headers=admin).json()["unassigned"]
    assert noise["reported"] == sql("SELECT count(*) FROM issues WHERE grid_id IS NULL "
                                    "AND category = 'noise'")[0][0]


# -- each over their region -------------------------------------------------------------------------
def test_a_leader_counts_their_community_and_a_dispatcher_their_district(client, roles, sql):
    places = other_places(sql)
    near, far = places.same_district, places.other_district
    # in no grid: one inside the leader's community, one far outside every region
    community = sql("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM regions "
                    "WHERE code = '140429100001') r")[0]
    add_case(sql, *community, grid_id=None)
    add_case(sql, 113.5, 37.5, grid_id=None)
    counted, bodies = {}, {}
    for role in ("leader", "dispatcher", "admin"):
        bodies[role] = body = client.get("/api/v1/stats/grids", headers=roles[role]).json()
        counted[role] = ({r["grid_code"] for r in body["data"]}, body["unassigned"]["reported"])
    demo = {c for (c,) in sql("SELECT g.code FROM grids g JOIN regions c ON c.id = g.community_id "
                              "WHERE c.code = '140429100001' AND g.valid_to IS NULL")}
    in_no_grid_inside = sql("""SELECT count(*) FROM issues i, regions r WHERE i.grid_id IS NULL
                                AND r.code = :r AND ST_Covers(r.geom, i.geom)""", r="140429100001")[0][0]
    assert counted["leader"] == (demo, in_no_grid_inside)
    assert counted["dispatcher"][0] == demo | {near.grid_code}
    assert counted["admin"][0] == demo | {near.grid_code, far.grid_code}
    assert counted["admin"][1] == sql("SELECT count(*) FROM issues WHERE grid_id IS NULL")[0][0]
    assert counted["admin"][1] > counted["leader"][1] >= 1
    near_row = next(r for r in bodies["dispatcher"]["data"] if r["grid_code"] == near.grid_code)
    assert near_row["reported"] == near_row["open"] == 1
    for role, body in bodies.items():  # the timeline counts the same cases
        total = sum(r["reported"] for r in client.get("/api/v1/stats/timeline",
                                                      headers=roles[role]).json()["data"])
        assert total == sum(r["reported"] for r in body["data"]) + body["unassigned"]["reported"]


# -- per grid worker, by who held the grid when ----------------------------------------------------
def test_a_worker_keeps_the_credit_for_the_time_they_held_a_grid(client, roles, sql):
    lon, lat = grid_point(sql, GRID_03)
    before = {r["username"]: r["reported"] for r in client.get(
        "/api/v1/stats/workers", headers=roles["admin"]).json()["data"]}
    # worker03 hands grid 003 to worker05 two days ago; what was reported before stays theirs
    sql("""UPDATE grid_assignments SET valid_to = now() - interval '2 days'
            WHERE grid_code = :g AND valid_to IS NULL""", g=GRID_03)
    sql("""INSERT INTO grid_assignments (grid_code, user_id, valid_from)
           SELECT :g, id, now() - interval '2 days' FROM users WHERE username = 'worker05'""",
        g=GRID_03)
    old = add_case(sql, lon, lat, grid_id=_grid_id(sql), status="reported")
    sql("UPDATE issues SET reported_at = now() - interval '3 days' WHERE id = :i", i=old)
    add_case(sql, lon, lat, grid_id=_grid_id(sql), status="reported")  # an hour ago
    handed_over = sql("""SELECT count(*) FROM issues i JOIN grids g ON g.id = i.grid_id
                          WHERE g.code = :g AND i.reported_at >= now() - interval '2 days'
                            AND i.id <> ALL(SELECT id FROM issues ORDER BY id DESC LIMIT 2)""",
                      g=GRID_03)[0][0]  # the demo's cases of the last two days in grid 003
    body = WorkerStatsPublic.model_validate(client.get(
        "/api/v1/stats/workers", headers=roles["admin"]).json())
    after = {r.username: r for r in body.data}
    assert after["worker03"].reported == before["worker03"] - handed_over + 1
    assert after["worker05"].reported == before["worker05"] + handed_over + 1
    assert after["worker05"].grids == sorted({GRID_03, "140429100001005"})
    assert after["worker03"].grids == [GRID_03]
    credited = sql("""SELECT u.username, count(*) FROM issues i JOIN grids g ON g.id = i.grid_id
                        JOIN grid_assignments ga ON ga.grid_code = g.code
                         AND i.reported_at >= ga.valid_from
                         AND (ga.valid_to IS NULL OR i.reported_at < ga.valid_to)
                        JOIN users u ON u.id = ga.user_id GROUP BY u.username""")
    assert {u: r.reported for u, r in after.items()} == dict(credited)
    assert body.count == 14 and sum(before.values()) + 2 == sum(r.reported for r in body.data)


def _grid_id(sql) -> int:
    return sql("SELECT id FROM grids WHERE code = :c AND valid_to IS NULL", c=GRID_03)[0][0]


def test_worker_rates_match_sql_and_a_leader_sees_the_workers_of_their_region(client, roles, sql):
    rows = {r["username"]: r for r in client.get("/api/v1/stats/workers",
                                                 headers=roles["leader"]).json()["data"]}
    assert set(rows) == {f"worker{n:02d}" for n in range(1, 15)}
    closed = sql("""SELECT i.due_at, i.closed_at FROM issues i JOIN grids g ON g.id = i.grid_id
                     WHERE g.code = :c AND i.status = 'closed'""", c=GRID_03)
    with_due = [(d, c) for d, c in closed if d is not None]
    assert rows["worker03"]["on_time_rate"] == pytest.approx(
        sum(c <= d for d, c in with_due) / len(with_due), abs=1e-4)
    assert rows["worker03"]["grids"] == [GRID_03]
    places = other_places(sql)  # a worker of another street is not the leader's to see
    sql("""INSERT INTO grid_assignments (grid_code, user_id, valid_from)
           SELECT :g, id, now() - interval '1 day' FROM users WHERE username = 'worker14'""",
        g=places.same_district.grid_code)
    leader_view = {r["username"]: r for r in client.get(
        "/api/v1/stats/workers", headers=roles["leader"]).json()["data"]}
    dispatcher_view = {r["username"]: r for r in client.get(
        "/api/v1/stats/workers", headers=roles["dispatcher"]).json()["data"]}
    assert places.same_district.grid_code not in leader_view["worker14"]["grids"]
    assert places.same_district.grid_code in dispatcher_view["worker14"]["grids"]
    assert dispatcher_view["worker14"]["reported"] == leader_view["worker14"]["reported"] + 1


# -- CSV: an export, audited ------------------------------------------------------------------------
def test_worker_stats_as_csv_and_every_csv_is_an_audited_export(client, leader, sql):
    r = client.get("/api/v1/stats/workers", params={"format": "csv"}, headers=leader)
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert list(rows[0]) == list(WorkerStatsRow.model_fields) and len(rows) == 14
    assert next(x for x in rows if x["username"] == "worker03")["grids"] == GRID_03
    client.get("/api/v1/stats/grids", params={"format": "csv"}, headers=leader)
    client.get("/api/v1/stats/grids", headers=leader)  # JSON is a read, not an export
    exports = sql("""SELECT target, detail->>'format' FROM audit_log WHERE action = 'export'
                      AND username = 'leader' AND at >= now() ORDER BY id""")
    assert exports == [("GET /api/v1/stats/workers", "csv"), ("GET /api/v1/stats/grids", "csv")]
