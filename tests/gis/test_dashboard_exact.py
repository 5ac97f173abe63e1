"""The dashboard's counts read through indexes and the issue rollup give exactly what a plain
scan of the cases gives (gis.queries.dashboard): the headline, the weekly trends and the overdue
list with its count, on the demo, for readers drawn from the admin, the dispatcher (a district),
the community's leader, a street's leader and a leader of some of the grids, with filters
(community, categories), periods and days drawn, after random changes that the fast paths must
follow: deadlines made equal (ties in the overdue list), running steps made late, cases without
a location, and closing and report times on the very edges of weeks. Each example rolls back.

The plain paths below are the dashboard's queries before it was made fast for the city: one
scan of the reader's cases each, ordered and counted by window (the rules from gis.rules).
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from gis.people.actors import load_actor
from gis.queries import dashboard, rollup
from gis.queries.dashboard import PERIODS, DashFilter, period_of, trend_weeks
from gis.queries.filters import start_of
from gis.queries.reads import ScopedFilter, scoped_where
from gis.rules import (
    BEIJING,
    BEIJING_TZ_NAME,
    closed_sql,
    on_time_rate,
    on_time_sql,
    open_sql,
    overdue_now_sql,
    overdue_sql,
    rated_sql,
    step_overdue_sql,
)

EXAMPLES = settings(max_examples=8, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
COMMUNITY, COMMUNITY_NAME, STREET = "140429100001", "太东社区", "140429100"
CATEGORIES = ("garbage", "noise", "streetlight_out", "road_damaged", "parking_chaos")
READERS = ("admin", "dispatcher", "leader", "street_leader", "some_grids_leader")
LATE = [timedelta(hours=1), timedelta(hours=2), timedelta(days=3), -timedelta(hours=5),
        timedelta(days=400), timedelta(days=700)]  # a year and more: later than any demo case


# -- the plain paths ------------------------------------------------------------------------------
def plain_summary(session, actor, flt: DashFilter) -> dict:
    where = scoped_where(session, actor, flt.issues())
    window = {"p_since": start_of(flt.period.since),
              "p_after": start_of(flt.period.until + timedelta(days=1))}
    closed_in = f"{closed_sql('i')} AND i.closed_at >= :p_since AND i.closed_at < :p_after"
    row = dict(session.execute(text(f"""
        SELECT count(*) FILTER (WHERE {open_sql('i')}) AS open,
               count(*) FILTER (WHERE {overdue_now_sql()}) AS overdue,
               count(*) FILTER (WHERE {closed_in}) AS closed,
               count(*) FILTER (WHERE {closed_in} AND {rated_sql('i')}) AS rated,
               count(*) FILTER (WHERE {closed_in} AND {on_time_sql('i')}) AS on_time
          FROM issues i LEFT JOIN issue_steps s ON s.issue_id = i.id AND s.done_at IS NULL
         WHERE {where.sql}"""), where.params | window).mappings().one())
    period_where = scoped_where(session, actor, flt.issues(flt.period.since, flt.period.until))
    row["reported"] = session.execute(text(f"SELECT count(*) FROM issues i WHERE {period_where.sql}"),
                                      period_where.params).scalar_one()
    return row | {"on_time_rate": on_time_rate(row["on_time"], row["rated"]),
                  "period": flt.period.as_dict()}


def plain_trend(session, actor, flt: DashFilter, today: date) -> dict:
    weeks = trend_weeks(flt.period, today)
    where = scoped_where(session, actor, flt.issues(weeks[0], weeks[-1] + timedelta(days=6)))
    rows = session.execute(text(f"""
        SELECT date_trunc('week', i.reported_at AT TIME ZONE :tz)::date, i.category, count(*)
          FROM issues i WHERE {where.sql} GROUP BY 1, 2"""),
        where.params | {"tz": BEIJING_TZ_NAME}).all()
    counts: dict[str, list[int]] = {}
    for week, category, n in rows:
        counts.setdefault(category, [0] * len(weeks))[weeks.index(week)] = n
    names = dashboard._category_names(session, list(counts))
    categories = sorted((names[c] | {"counts": s, "total": sum(s)} for c, s in counts.items()),
                        key=lambda c: (-c["total"], c["code"]))
    every = scoped_where(session, actor, flt.issues())
    closed = {r["week"]: r for r in session.execute(text(f"""
        SELECT date_trunc('week', i.closed_at AT TIME ZONE :tz)::date AS week, count(*) AS closed,
               count(*) FILTER (WHERE {rated_sql('i')}) AS rated,
               count(*) FILTER (WHERE {on_time_sql('i')}) AS on_time
          FROM issues i WHERE {every.sql} AND {closed_sql('i')} AND i.closed_at >= :since
               AND i.closed_at < :after GROUP BY 1"""),
        every.params | {"tz": BEIJING_TZ_NAME, "since": start_of(weeks[0]),
                        "after": start_of(weeks[-1] + timedelta(weeks=1))}).mappings()}
    on_time = []
    for week in weeks:
        r = closed.get(week, {"closed": 0, "rated": 0, "on_time": 0})
        on_time.append({"week": week, "closed": r["closed"], "rated": r["rated"],
                        "on_time": r["on_time"], "on_time_rate": on_time_rate(r["on_time"], r["rated"])})
    return {"weeks": weeks, "period": flt.period.as_dict(), "categories": categories,
            "on_time": on_time}


def plain_overdue(session, actor, flt: DashFilter, limit: int) -> dict:
    where = scoped_where(session, actor, flt.issues())
    late = "round((extract(epoch FROM now() - {due}) / 3600)::numeric, 1)::float"
    rows = session.execute(text(f"""
        SELECT i.id, i.category, c.name_zh AS category_zh, c.name_en AS category_en,
               g.code AS grid_code, g.name AS grid_name, d.code AS department_code,
               d.name AS department, i.status, i.reported_at, i.due_at,
               CASE WHEN {overdue_sql('i')} THEN {late.format(due='i.due_at')} END AS due_hours_late,
               s.step, s.due_at AS step_due_at,
               CASE WHEN {step_overdue_sql('s')} THEN {late.format(due='s.due_at')} END
                   AS step_hours_late,
               count(*) OVER () AS total
          FROM issues i LEFT JOIN issue_steps s ON s.issue_id = i.id AND s.done_at IS NULL
          LEFT JOIN categories c ON c.kind = 'issue' AND c.code = i.category
          LEFT JOIN grids g ON g.id = i.grid_id
          LEFT JOIN departments d ON d.id = i.department_id
         WHERE {where.sql} AND {overdue_now_sql()}
         ORDER BY greatest(CASE WHEN {overdue_sql('i')} THEN now() - i.due_at END,
                           CASE WHEN {step_overdue_sql('s')} THEN now() - s.due_at END) DESC,
                  i.id
         LIMIT :limit"""), where.params | {"limit": limit}).mappings().all()
    total = rows[0]["total"] if rows else 0
    return {"count": total, "data": [dashboard._overdue_row({k: v for k, v in r.items()
                                                             if k != "total"}) for r in rows]}


# -- readers, and the changes the fast paths must follow ------------------------------------------
def reader(session, name: str, grids: list[str]):
    if name in ("admin", "dispatcher", "leader"):
        return load_actor(session, name)[0]
    leader = load_actor(session, "leader")[0]
    if name == "street_leader":
        region = session.execute(text("SELECT id FROM regions WHERE code = :c"),
                                 {"c": STREET}).scalar_one()
        codes = session.execute(text("SELECT code FROM grids WHERE valid_to IS NULL "
                                     "AND code LIKE :p"), {"p": STREET + "%"}).scalars().all()
        return dataclasses.replace(leader, region_id=region, region_grid_codes=frozenset(codes))
    return dataclasses.replace(leader, region_grid_codes=frozenset(grids))


def monday_edges(weeks: list[date]) -> list[datetime]:
    """The first and the last microsecond of each week of the trend."""
    out = []
    for w in weeks:
        start = datetime.combine(w, time.min, tzinfo=BEIJING)
        out += [start, start - timedelta(microseconds=1)]
    return out


def change(session, draw, weeks: list[date], categories: tuple[str, ...]) -> None:
    """Ties among deadlines, late running steps, unlocated cases and week-edge times."""
    soon = overdue_sql("i", "now() + interval '9 days'")
    ids = session.execute(text(f"SELECT id FROM issues i WHERE {soon} ORDER BY id")).scalars().all()
    for issue in draw(st.lists(st.sampled_from(ids), max_size=12, unique=True)) if ids else []:
        session.execute(text("UPDATE issues SET due_at = now() - CAST(:late AS interval) "
                             "WHERE id = :i"), {"i": issue, "late": draw(st.sampled_from(LATE))})
    steps = session.execute(text("SELECT id FROM issue_steps WHERE done_at IS NULL "
                                 "ORDER BY id")).scalars().all()
    for step in draw(st.lists(st.sampled_from(steps), max_size=8, unique=True)) if steps else []:
        session.execute(text("UPDATE issue_steps SET due_at = now() - CAST(:late AS interval) "
                             "WHERE id = :i"), {"i": step, "late": draw(st.sampled_from(LATE))})
    edges = monday_edges(weeks)
    for at in draw(st.lists(st.sampled_from(edges), max_size=3)):
        session.execute(text("""
            INSERT INTO issues (category, location_source, reported_at, status)
            VALUES (:c, 'photo', :at, 'reported')"""),
            {"c": draw(st.sampled_from(categories or CATEGORIES)), "at": at})
    located = session.execute(text("SELECT id FROM issues WHERE geom IS NOT NULL "
                                   "ORDER BY id LIMIT 400")).scalars().all()
    for issue in draw(st.lists(st.sampled_from(located), max_size=4, unique=True)):
        session.execute(text("UPDATE issues SET reported_at = :at WHERE id = :i"),
                        {"i": issue, "at": draw(st.sampled_from(edges))})
    closed = session.execute(text("SELECT id FROM issues WHERE status = 'closed' "
                                  "ORDER BY id LIMIT 400")).scalars().all()
    for issue in draw(st.lists(st.sampled_from(closed), max_size=4, unique=True)):
        at = draw(st.sampled_from(edges))
        session.execute(text("UPDATE issues SET closed_at = :at, due_at = :due WHERE id = :i"),
                        {"i": issue, "at": at,
                         "due": draw(st.sampled_from([None, at, at - timedelta(microseconds=1)]))})


# -- the fast paths against the plain ones ---------------------------------------------------------
@EXAMPLES
@given(data=st.data(), who=st.sampled_from(READERS), kind=st.sampled_from(PERIODS),
       community=st.sampled_from([None, COMMUNITY, COMMUNITY_NAME]),
       categories=st.sets(st.sampled_from(CATEGORIES), max_size=2),
       days_back=st.integers(0, 330), today_back=st.integers(0, 40), limit=st.integers(1, 15))
def test_the_dashboard_counts_what_a_plain_scan_counts(session, demo_month, data, who, kind,
                                                       community, categories, days_back,
                                                       today_back, limit):
    savepoint = session.begin_nested()
    try:
        grids = session.execute(text("SELECT code FROM grids WHERE valid_to IS NULL "
                                     "ORDER BY code")).scalars().all()
        actor = reader(session, who, data.draw(st.lists(st.sampled_from(grids), min_size=1,
                                                        unique=True)))
        day = demo_month.following + timedelta(days=30) - timedelta(days=days_back)
        today = max(day, demo_month.following + timedelta(days=60) - timedelta(days=today_back))
        flt = DashFilter(period_of(kind, day), community=community,
                         categories=tuple(sorted(categories)), day=day)
        change(session, data.draw, trend_weeks(flt.period, today), flt.categories)
        city = dataclasses.replace(flt, community=None)  # the admin's city: the rollup's cells
        for who_reads, what in ((actor, flt), (reader(session, "admin", grids), city)):
            assert dashboard.summary(session, who_reads, what) == \
                plain_summary(session, who_reads, what)
            assert dashboard.trend(session, who_reads, what, today) == \
                plain_trend(session, who_reads, what, today)
            assert dashboard.overdue(session, who_reads, what, limit=limit) == \
                plain_overdue(session, who_reads, what, limit)
    finally:
        savepoint.rollback()


def test_the_examples_reach_every_path(session, demo_month):
    """Not vacuous: the demo has cases overdue by their deadline and by their step alone, more
    than a short list holds, and the admin's trend reads the rollup's weekly cells."""
    admin = load_actor(session, "admin")[0]
    flt = DashFilter(period_of("month", demo_month.first))
    listed = dashboard.overdue(session, admin, flt, limit=5)
    assert listed["count"] > 5 and len(listed["data"]) == 5
    every = dashboard.overdue(session, admin, flt, limit=10_000)["data"]
    assert any(r["step_overdue"] for r in every) and any(r["due_hours_late"] for r in every)
    scoped = ScopedFilter.of(flt.issues(demo_month.first, demo_month.last), admin)
    scope = rollup.scope_of(session, scoped)
    assert scope is not None and scope.everywhere
