"""The issue rollup (gis.queries.rollup, migration 0011) against a plain scan.

Random inserts, moves, re-tags, category and location changes, report-time changes and deletes,
through SQL (one row and many rows a statement) and through the application's own functions
(reporting, the workflow), must leave the rollup equal to a scan of the issues (``check`` finds
nothing); the heatmap, the per-grid statistics and the dashboard must give, for random filters,
exactly what they give by scanning; a rollup altered behind the triggers' back is found; two
connections adding to the same key lose nothing, and statements that move issues between the
same keys in opposite orders never deadlock.
"""

from __future__ import annotations

import threading
import time
from datetime import date, datetime, timedelta

import pandas as pd
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from gis.geotag.index_cache import GridIndexCache
from gis.issues.reporting import IssueReport, report_issue
from gis.people.actors import load_actor
from gis.queries import dashboard, map_data, rollup, statistics
from gis.queries.filters import IssueFilter
from gis.queries.reads import ScopedFilter
from gis.rules import BEIJING, ISSUE_STATUSES
from tests.gis.workflow_moves import move_cases

CATEGORIES = ("garbage", "noise", "streetlight_out", "illegal_construction")
EXAMPLES = settings(max_examples=10, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
# Around the demo community, a little outside it too (unassigned).
LON, LAT = (112.84, 112.90), (36.82, 36.87)
TIMES = st.datetimes(min_value=datetime(2024, 12, 20), max_value=datetime(2025, 7, 10),
                     timezones=st.just(BEIJING))


def test_the_categories_drawn_are_known():
    from gis.db.category_seeds import ISSUE_CATEGORIES

    assert set(CATEGORIES) <= {c.code for c in ISSUE_CATEGORIES}


# -- operations ------------------------------------------------------------------------------------
def issue_rows(n_max: int = 4):
    return st.lists(st.fixed_dictionaries({
        "category": st.sampled_from(CATEGORIES),
        "status": st.sampled_from(ISSUE_STATUSES),
        "lon": st.floats(*LON), "lat": st.floats(*LAT),
        "located": st.booleans() | st.just(True),
        "grid": st.integers(-1, 13),  # -1: no grid
        "reported_at": TIMES,
        "due_h": st.none() | st.integers(-300, 300),
        "closed_h": st.none() | st.integers(-300, 300),
    }), min_size=1, max_size=n_max)


def _insert(sql, grid_ids, rows) -> list[int]:
    ids = []
    for r in rows:
        at = r["reported_at"]
        ids.append(sql("""
            INSERT INTO issues (category, status, geom, location_source, grid_id, reported_at,
                                due_at, closed_at)
            VALUES (:category, :status,
                    CASE WHEN :located THEN ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) END,
                    CASE WHEN :located THEN 'report' ELSE 'photo' END, :grid, :at, :due, :closed)
            RETURNING id""", category=r["category"], status=r["status"], located=r["located"],
            lon=r["lon"], lat=r["lat"], grid=None if r["grid"] < 0 else grid_ids[r["grid"]],
            at=at, due=None if r["due_h"] is None else at + timedelta(hours=r["due_h"]),
            closed=None if r["closed_h"] is None else at + timedelta(hours=r["closed_h"]))[0][0])
    return ids


# Each change applies to a few issues picked by position, in one statement.
CHANGES = {
    "status": ("UPDATE issues SET status = :v WHERE id = ANY(:ids)", st.sampled_from(ISSUE_STATUSES)),
    "category": ("UPDATE issues SET category = :v WHERE id = ANY(:ids)", st.sampled_from(CATEGORIES)),
    "retag": ("UPDATE issues SET grid_id = (SELECT id FROM grids ORDER BY id OFFSET :v LIMIT 1) "
              "WHERE id = ANY(:ids)", st.integers(0, 13)),
    "untag": ("UPDATE issues SET grid_id = NULL WHERE id = ANY(:ids)", st.just(0)),
    "move": ("UPDATE issues SET geom = ST_SetSRID(ST_MakePoint(:v, lat + 0.0003), 4326) "
             "WHERE id = ANY(:ids) AND geom IS NOT NULL", st.floats(*LON)),
    "report_time": ("UPDATE issues SET reported_at = reported_at + make_interval(days => :v) "
                    "WHERE id = ANY(:ids)", st.integers(-100, 100)),
    "close": ("UPDATE issues SET status = 'closed', closed_at = reported_at + "
              "make_interval(hours => :v) WHERE id = ANY(:ids)", st.integers(0, 400)),
    "due": ("UPDATE issues SET due_at = reported_at + make_interval(hours => :v) "
            "WHERE id = ANY(:ids)", st.integers(-50, 400)),
    "nothing_keyed": ("UPDATE issues SET description = description || :v WHERE id = ANY(:ids)",
                      st.just("·")),
    "delete": ("DELETE FROM issues WHERE id = ANY(:ids)", st.just(0)),
}
operations = st.lists(st.tuples(st.sampled_from(sorted(CHANGES)),
                                st.lists(st.integers(0, 50), min_size=1, max_size=4),
                                st.data()), min_size=1, max_size=8)


@given(rows=issue_rows(6), ops=operations)
@EXAMPLES
def test_sql_changes_keep_the_rollup_equal_to_a_scan(session, sql, grid_ids, rows, ops):
    with session.begin_nested() as example:
        ids = _insert(sql, grid_ids, rows)
        demo_ids = [r[0] for r in sql("SELECT id FROM issues ORDER BY id LIMIT 30")]
        pool = ids + demo_ids  # new issues and some of the demo's
        for name, picks, data in ops:
            statement, values = CHANGES[name]
            chosen = sorted({pool[p % len(pool)] for p in picks})
            sql(statement, ids=chosen, v=data.draw(values))
        assert rollup.check(session) == []
        example.rollback()


@given(reports=st.lists(st.tuples(st.floats(*LON), st.floats(*LAT), st.sampled_from(CATEGORIES)),
                        min_size=1, max_size=3),
       moves=st.lists(st.integers(0, 20), max_size=6))
@EXAMPLES
def test_reports_and_the_workflow_keep_the_rollup_equal_to_a_scan(session, reports, moves):
    worker = load_actor(session, "worker01")[0]
    admin = load_actor(session, "admin")[0]
    with session.begin_nested() as example:
        ids = [report_issue(session, GridIndexCache(), worker, IssueReport(x, y, c)).issue_id
               for x, y, c in reports]
        move_cases(session, admin, ids, moves)
        assert rollup.check(session) == []
        example.rollback()


def test_the_demo_as_loaded_is_what_a_scan_gives(session):
    assert rollup.check(session) == []
    assert all(n > 0 for n in rollup.sizes(session).values())


# -- a rollup that went wrong is found, and rebuilt ------------------------------------------------
@pytest.mark.parametrize("damage", [
    "UPDATE issue_rollup_grids SET n = n + 1 WHERE ctid = (SELECT min(ctid) FROM issue_rollup_grids)",
    "UPDATE issue_rollup_cells SET sx = sx - 1 WHERE ctid = (SELECT min(ctid) FROM issue_rollup_cells)",
    "DELETE FROM issue_rollup_weeks WHERE ctid = (SELECT min(ctid) FROM issue_rollup_weeks)",
    "UPDATE issue_rollup_grids SET on_time = on_time + 1 "
    "WHERE ctid = (SELECT max(ctid) FROM issue_rollup_grids)",
])
def test_an_altered_rollup_is_found_and_a_rebuild_repairs_it(session, sql, damage):
    sql(damage)
    found = rollup.check(session)
    assert len(found) == 1
    assert found[0]["stored"] != found[0]["scanned"]
    rollup.rebuild(session, rollup.cell_grid(session))
    assert rollup.check(session) == []


def test_issues_loaded_with_the_triggers_off_are_found_until_a_rebuild(session, sql, grid_ids):
    sql("ALTER TABLE issues DISABLE TRIGGER USER")
    _insert(sql, grid_ids, [{"category": "noise", "status": "reported", "lon": 112.86,
                             "lat": 36.84, "located": True, "grid": 2,
                             "reported_at": datetime(2025, 3, 3, tzinfo=BEIJING),
                             "due_h": 5, "closed_h": None}])
    sql("ALTER TABLE issues ENABLE TRIGGER USER")
    assert {d["table"] for d in rollup.check(session)} == {*rollup.TABLES, rollup.DAYS}
    counts = rollup.rebuild(session, rollup.cell_grid(session))
    assert rollup.check(session) == [] and counts == rollup.sizes(session)


def test_a_rebuild_on_a_coarser_base_is_exact_too(session):
    coarse = rollup.CellGrid.at(36.9, 80.0)
    rollup.rebuild(session, coarse)
    assert rollup.cell_grid(session) == coarse
    assert rollup.check(session) == []


def test_a_truncate_empties_the_rollup(session, sql):
    sql("TRUNCATE issues CASCADE")
    assert set(rollup.sizes(session).values()) == {0}


# -- the readers give what a scan gives --------------------------------------------------------------
@st.composite
def filters(draw, demo_times: tuple[date, date]) -> IssueFilter:
    first, last = demo_times
    days = st.dates(first - timedelta(days=20), last + timedelta(days=20))
    since, until = draw(st.none() | days), draw(st.none() | days)
    if since and until and since > until:
        since, until = until, since
    if since and draw(st.booleans()):
        since = _instant(since, True)
    return IssueFilter(categories=tuple(draw(st.lists(st.sampled_from(CATEGORIES), max_size=2))),
                       statuses=tuple(draw(st.lists(st.sampled_from(
                           (*ISSUE_STATUSES, "open", "final")), max_size=2))),
                       since=since, until=until,
                       **draw(st.sampled_from([{}, {"community": "太东社区"},
                                               {"grid": "140429100001005"}])))


def _instant(day: date, instant: bool):
    return datetime(day.year, day.month, day.day, 13, 7, tzinfo=BEIJING) if instant else day


READERS = (None, "admin", "leader", "dispatcher", "worker01")


def _scoped(session, flt: IssueFilter, reader: str | None) -> IssueFilter:
    if reader is None:
        return flt
    return ScopedFilter.of(flt, load_actor(session, reader)[0])


@given(data=st.data(), reader=st.sampled_from(READERS), base=st.sampled_from([10.0, 40.0]))
@EXAMPLES
def test_the_heatmap_from_the_rollup_is_the_heatmap_of_a_scan(session, demo_times, data, reader,
                                                              base):
    flt = _scoped(session, data.draw(filters(demo_times)), reader)
    with session.begin_nested() as example:
        if base != 10.0:  # a coarser base: the finer layers fall back to scans
            rollup.rebuild(session, rollup.CellGrid.at(36.84, base))
        ours = map_data.heatmap_data(session, flt, hotspots=False)
        scanned = map_data.heatmap_data(session, flt, hotspots=False, use_rollup=False)
        example.rollback()
    assert (ours.total, ours.unassigned, ours.cell_m, ours.week_cell_m) == \
        (scanned.total, scanned.unassigned, scanned.cell_m, scanned.week_cell_m)
    pd.testing.assert_frame_equal(ours.cells, scanned.cells, check_exact=True)
    pd.testing.assert_frame_equal(ours.weeks, scanned.weeks, check_exact=True)
    pd.testing.assert_frame_equal(pd.DataFrame(ours.grids.drop(columns="geometry")),
                                  pd.DataFrame(scanned.grids.drop(columns="geometry")),
                                  check_exact=True)


@given(data=st.data(), reader=st.sampled_from(READERS))
@EXAMPLES
def test_per_grid_counts_from_the_rollup_are_those_of_a_scan(session, demo_times, data, reader):
    flt = _scoped(session, data.draw(filters(demo_times)), reader)
    ours = statistics.counts_by_grid(session, flt)
    scanned = statistics.counts_by_grid(session, flt, rollup=False)
    pd.testing.assert_frame_equal(_by_code(ours), _by_code(scanned), check_exact=True)


def _by_code(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("code", na_position="first", ignore_index=True)


def test_the_rollup_is_read_for_the_unfiltered_heatmap(session, monkeypatch):
    """The readers do use the rollup where they may: with the cell sums and grid counts made
    to fail, the unfiltered heatmap cannot be built."""
    def refuse(*args, **kwargs):
        raise RuntimeError("read the rollup")
    monkeypatch.setattr(rollup, "grid_counts", refuse)
    monkeypatch.setattr(rollup, "grid_totals", refuse)
    with pytest.raises(RuntimeError, match="read the rollup"):
        statistics.counts_by_grid(session, IssueFilter())
    with pytest.raises(RuntimeError, match="read the rollup"):
        statistics.counts_by_grid(session, IssueFilter(since=date(2024, 1, 1)))
    monkeypatch.undo()
    monkeypatch.setattr(rollup, "cell_sums", refuse)
    monkeypatch.setattr(map_data, "side_by_side", lambda s, a, b: (a(s), b(s)))
    with pytest.raises(RuntimeError, match="read the rollup"):
        map_data.heatmap_data(session, IssueFilter(), hotspots=False)
    # a filter the keys cannot express is scanned
    map_data.heatmap_data(session, IssueFilter(q="垃圾"), hotspots=False)


@given(day=st.dates(date(2025, 1, 1), date(2025, 12, 31)),
       kind=st.sampled_from(dashboard.PERIODS), reader=st.sampled_from(["admin", "leader"]))
@EXAMPLES
def test_the_dashboards_heat_data_is_that_of_a_scan(session, day, kind, reader):
    actor = load_actor(session, reader)[0]
    flt = dashboard.DashFilter(dashboard.period_of(kind, day))
    ours = dashboard.heat_data(session, actor, flt)
    period = flt.period
    scanned = map_data.heatmap_data(session, ScopedFilter.of(flt.issues(period.since,
                                                                        period.until), actor),
                                    hotspots=False, use_rollup=False)
    assert ours.total == scanned.total
    pd.testing.assert_frame_equal(ours.cells, scanned.cells, check_exact=True)
    pd.testing.assert_frame_equal(ours.weeks, scanned.weeks, check_exact=True)


# -- the buckets of a time range --------------------------------------------------------------------
@given(since=st.none() | TIMES, until=st.none() | TIMES, kind=st.sampled_from(["year", "week"]))
def test_whole_buckets_lie_inside_the_range_and_leave_less_than_a_bucket_at_each_edge(
        since, until, kind):
    if since and until and since > until:
        since, until = until, since
    flt = IssueFilter(since=since, until=until)
    b = rollup.whole_buckets(kind, flt)
    longest = timedelta(days=366 if kind == "year" else 7)
    if b is None:
        assert since is not None and until is not None and until - since < 2 * longest
        return
    assert (b.lo is None) == (since is None) and (b.hi is None) == (until is None)
    if since is not None:
        assert since <= b.lo < since + longest
    if until is not None:
        assert until - longest < b.hi <= until + timedelta(microseconds=1)
    if b.lo is not None and b.hi is not None:
        assert b.lo < b.hi


@given(k=st.integers(0, 8), lon=st.floats(70, 135), lat=st.floats(15, 55),
       base=st.sampled_from([10.0, 40.0, 320.0]), lat0=st.floats(20, 50))
def test_a_coarser_cell_is_the_base_cell_shifted(k, lon, lat, base, lat0):
    """The cell of base * 2**k metres is the base cell shifted right by k bits, in floating
    point as in PostgreSQL (the rollup merges cells so; a scan at that size computes them)."""
    import math

    grid = rollup.CellGrid.at(lat0, base)
    dx, dy = grid.steps(base * 2 ** k)
    assert math.floor(lon / dx) == math.floor(lon / grid.dx) >> k
    assert math.floor(lat / dy) == math.floor(lat / grid.dy) >> k
    assert grid.shift(base * 2 ** k) == k and grid.shift(base * 2 ** k, 8) == (k - 3 if k >= 3
                                                                                else None)


# -- concurrency -----------------------------------------------------------------------------------
def _connect(demo_engine):
    url = demo_engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(url, autocommit=False)


def test_two_connections_adding_to_one_key_lose_nothing(demo_engine, committed):
    """Both sessions insert issues of the same key, each commit racing the other's."""
    per_thread, errors = 40, []
    key = ("noise", "reported")
    start = threading.Barrier(2)

    def report():
        try:
            with _connect(demo_engine) as conn:
                start.wait()
                for _ in range(per_thread):
                    conn.execute("""
                        INSERT INTO issues (category, status, geom, reported_at)
                        VALUES (%s, %s, ST_SetSRID(ST_MakePoint(112.8612, 36.8412), 4326),
                                '2025-02-11 10:00+08')""", key)
                    conn.commit()
        except Exception as exc:  # surfaced below
            errors.append(exc)

    with demo_engine.connect() as conn:
        before = _key_count(conn, key)
    threads = [threading.Thread(target=report) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with demo_engine.connect() as conn:
        assert _key_count(conn, key) == before + 2 * per_thread
        assert rollup.check(conn) == []


def _key_count(conn, key) -> int:
    return conn.execute(text("""
        SELECT coalesce(sum(n), 0) FROM issue_rollup_grids
         WHERE year = '2025-01-01' AND category = :c AND status = :s"""),
        {"c": key[0], "s": key[1]}).scalar_one()


def test_statements_moving_issues_between_keys_in_opposite_orders_never_deadlock(demo_engine,
                                                                                  committed):
    """Two sessions, each with an issue of key A and one of key B, swap their keys (category
    and cell) over and over, each transaction holding its rollup rows a moment before it
    commits; their rows come in opposite orders, but the triggers take the rollup rows in key
    order, so neither ever waits for the other in a cycle."""
    with demo_engine.begin() as conn:
        ids = [conn.execute(text("""
            INSERT INTO issues (category, status, geom, reported_at)
            VALUES (:c, 'reported', ST_SetSRID(ST_MakePoint(:x, 36.8412), 4326),
                    '2025-02-11 10:00+08') RETURNING id"""),
            {"c": c, "x": x}).scalar_one() for c, x in (("noise", 112.8612), ("garbage", 112.87),
                                                       ("garbage", 112.87), ("noise", 112.8612))]
    errors, rounds = [], 25
    start = threading.Barrier(2)

    def swap(mine):
        try:
            with _connect(demo_engine) as conn:
                start.wait()
                for _ in range(rounds):
                    conn.execute("""
                        UPDATE issues SET category = CASE category WHEN 'noise' THEN 'garbage'
                                                                   ELSE 'noise' END,
                                          geom = ST_SetSRID(ST_MakePoint(225.7312 - lon, lat), 4326)
                         WHERE id = ANY(%s)""", (mine,))
                    conn.execute("SELECT pg_sleep(0.01)")
                    conn.commit()
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=swap, args=(ids[:2],)),
               threading.Thread(target=swap, args=(ids[2:],))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with demo_engine.connect() as conn:
        assert rollup.check(conn) == []


def _waiting_for_a_lock(conn, pid: int) -> bool:
    for _ in range(500):
        if conn.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s",
                        (pid,)).fetchone()[0]:
            return True
        time.sleep(0.01)
    return False


def test_batches_of_reports_in_opposite_orders_never_deadlock(demo_engine, committed):
    """Two multi-row inserts of the same two kinds of report (grid, category), in opposite
    orders, made to overlap: a third transaction holds the first kind's rollup row, the first
    batch waits for it, the second batch starts, then the row is let go. Per row (the triggers
    before 0017) the first batch held the day's row of its first report and the second batch
    all of its second kind's: each then waited for the other (one aborted, SQLSTATE 40P01).
    Per statement, each takes its rows in key order and the second waits its turn."""
    with demo_engine.begin() as conn:
        grids = conn.execute(text(
            "SELECT id FROM grids WHERE valid_to IS NULL ORDER BY id LIMIT 2")).scalars().all()
    kinds = [(grids[0], "noise"), (grids[1], "garbage")]
    insert = """
        INSERT INTO issues (grid_id, category, status, geom, reported_at)
        VALUES (%s, %s, 'reported', ST_SetSRID(ST_MakePoint(112.8612, 36.8412), 4326),
                '2025-02-11 10:00+08'),
               (%s, %s, 'reported', ST_SetSRID(ST_MakePoint(112.8612, 36.8412), 4326),
                '2025-02-11 10:00+08')"""
    with demo_engine.begin() as conn:  # the first kind's rollup row exists
        conn.execute(text("""
            INSERT INTO issues (grid_id, category, status, geom, reported_at)
            VALUES (:g, :c, 'reported', ST_SetSRID(ST_MakePoint(112.8612, 36.8412), 4326),
                    '2025-02-11 10:00+08')"""), {"g": kinds[0][0], "c": kinds[0][1]})
    errors: list[Exception] = []
    pids: dict[str, int] = {}

    def batch(name, rows):
        try:
            with _connect(demo_engine) as conn:
                pids[name] = conn.info.backend_pid
                conn.execute(insert, [v for row in rows for v in row])
                conn.commit()
        except Exception as exc:  # surfaced below
            errors.append(exc)

    with _connect(demo_engine) as holder, _connect(demo_engine) as watcher:
        watcher.autocommit = True
        holder.execute("""
            SELECT 1 FROM issue_rollup_grids WHERE year = '2025-01-01' AND grid_id = %s
               AND category = %s AND status = 'reported' FOR UPDATE""", kinds[0])
        first = threading.Thread(target=batch, args=("first", kinds))
        first.start()
        while "first" not in pids:
            time.sleep(0.01)
        assert _waiting_for_a_lock(watcher, pids["first"])
        second = threading.Thread(target=batch, args=("second", kinds[::-1]))
        second.start()
        while "second" not in pids:
            time.sleep(0.01)
        assert _waiting_for_a_lock(watcher, pids["second"])
        holder.rollback()
        first.join()
        second.join()
    assert errors == []
    with demo_engine.connect() as conn:
        assert rollup.check(conn) == []


def test_inserts_updates_and_deletes_take_the_rollup_tables_in_one_order(session):
    """PostgreSQL fires an event's triggers in name order. An insert that took the counts before
    the statistics while an update took them the other way round could each hold a row the
    other waits for (a report and a status change in the same grid and category); every insert
    trigger works per statement (its keys in key order, migration 0017), not per row."""
    rows = session.execute(text("""
        SELECT tgname, tgtype FROM pg_trigger
         WHERE tgrelid = 'issues'::regclass AND NOT tgisinternal AND tgname LIKE 'issues_rollup_%'
         ORDER BY tgname""")).all()
    order = {}
    for event in ("insert", "update", "delete", "truncate"):
        names = [name for name, _ in rows if name.endswith(f"_{event}")]
        order[event] = [name.removeprefix("issues_rollup_").removesuffix(f"_{event}")
                        for name in names]
    assert order["insert"] == order["update"] == order["delete"] == order["truncate"]
    assert order["insert"] == ["counts", "days", "stats"]
    row_level = 1  # pg_trigger.tgtype: TRIGGER_TYPE_ROW
    assert [name for name, tgtype in rows if name.endswith("_insert") and tgtype & row_level] == []


@given(day=st.dates(date(2025, 1, 1), date(2025, 12, 31)),
       kind=st.sampled_from(dashboard.PERIODS), reader=st.sampled_from(["admin", "leader"]),
       categories=st.lists(st.sampled_from(CATEGORIES), max_size=2).map(tuple))
@EXAMPLES
def test_the_dashboards_summary_is_one_scans(session, day, kind, reader, categories):
    """The headline read in parts (rollup, indexes) against the same rules in one scan."""
    from gis.queries.reads import scoped_where
    from gis.rules import closed_sql, on_time_sql, open_sql, rated_sql

    actor = load_actor(session, reader)[0]
    flt = dashboard.DashFilter(dashboard.period_of(kind, day), categories=categories)
    where = scoped_where(session, actor, flt.issues())
    window = {"a": dashboard._window(flt.period)["p_since"],
              "b": dashboard._window(flt.period)["p_after"]}
    closed = f"{closed_sql('i')} AND i.closed_at >= :a AND i.closed_at < :b"
    scanned = session.execute(text(f"""
        SELECT count(*) FILTER (WHERE {open_sql('i')}) AS open,
               count(*) FILTER (WHERE {dashboard.overdue_now_sql()}) AS overdue,
               count(*) FILTER (WHERE i.reported_at >= :a AND i.reported_at < :b) AS reported,
               count(*) FILTER (WHERE {closed}) AS closed,
               count(*) FILTER (WHERE {closed} AND {rated_sql('i')}) AS rated,
               count(*) FILTER (WHERE {closed} AND {on_time_sql('i')}) AS on_time
          FROM issues i LEFT JOIN issue_steps s ON s.issue_id = i.id AND s.done_at IS NULL
         WHERE {where.sql}"""), where.params | window).mappings().one()
    ours = dashboard.summary(session, actor, flt)
    assert {k: ours[k] for k in scanned} == dict(scanned)
