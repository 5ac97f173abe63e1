"""The dashboard's domain (gis.queries.dashboard): its periods (properties, no database), and on the
demo (each test rolled back) its overdue list against the rules' other readers and its heat map
against the heatmap's own aggregates.

The numbers against independent SQL, over HTTP and per role, are in tests/api/test_dashboard.py.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gis.errors import Forbidden, InvalidParameter
from gis.people.actors import load_actor
from gis.queries import dashboard, map_data, reads, statistics
from gis.queries.dashboard import PERIODS, TREND_WEEKS, DashFilter, period_of, trend_weeks
from gis.queries.filters import IssueFilter
from gis.queries.reads import ScopedFilter
from maps.dash import heat_layer
from maps.heat_scale import fit_zoom, heat_scale

DAYS = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))


# -- periods ---------------------------------------------------------------------------------------
@given(kind=st.sampled_from(PERIODS), day=DAYS)
def test_a_period_holds_its_day_and_the_next_one_starts_the_day_after(kind, day):
    period = period_of(kind, day)
    assert period.since <= day <= period.until
    following = period_of(kind, period.until + timedelta(days=1))
    assert following.since == period.until + timedelta(days=1)
    assert period_of(kind, period.since) == period == period_of(kind, period.until)


@given(day=DAYS)
def test_weeks_months_and_quarters_are_the_calendars(day):
    week, month, quarter = (period_of(kind, day) for kind in PERIODS)
    assert week.since.isoweekday() == 1 and (week.until - week.since).days == 6
    assert week.label == f"{day.isocalendar()[0]}-W{day.isocalendar()[1]:02d}"
    assert month.since == day.replace(day=1) and (month.until + timedelta(days=1)).day == 1
    assert month.until.month == day.month and month.label == f"{day.year}-{day.month:02d}"
    assert quarter.since.month in (1, 4, 7, 10) and quarter.since.day == 1
    assert quarter.since <= month.since and month.until <= quarter.until
    assert (quarter.until + timedelta(days=1)).month in (1, 4, 7, 10)
    assert quarter.label == f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def test_an_unknown_period_is_refused_in_both_languages():
    with pytest.raises(InvalidParameter) as refused:
        period_of("year", date(2026, 5, 1))
    assert "week, month, quarter" in str(refused.value) and "收到" in refused.value.zh


@given(kind=st.sampled_from(PERIODS), day=DAYS, today=DAYS)
def test_the_trend_is_consecutive_mondays_ending_with_the_period_or_this_week(kind, day, today):
    period = period_of(kind, day)
    weeks = trend_weeks(period, today)
    assert len(weeks) == TREND_WEEKS[kind]
    assert all(w.isoweekday() == 1 for w in weeks)
    assert all(b - a == timedelta(weeks=1) for a, b in zip(weeks, weeks[1:], strict=False))
    last = min(period.until, today)
    assert weeks[-1] <= last < weeks[-1] + timedelta(weeks=1)


# -- on the demo -----------------------------------------------------------------------------------
def as_actor(session, username):
    return load_actor(session, username)[0]


@pytest.fixture
def month_filter(demo_month) -> DashFilter:
    return DashFilter(period_of("month", demo_month.first))


@pytest.mark.parametrize("username", ["worker03", "shizheng01"])
def test_the_dashboard_is_for_leaders_dispatchers_and_admins(session, month_filter, username):
    actor = as_actor(session, username)
    for read in (dashboard.summary, dashboard.overdue, dashboard.heat_data,
                 dashboard.filter_choices):
        args = (session, actor) if read is dashboard.filter_choices else (session, actor,
                                                                           month_filter)
        with pytest.raises(Forbidden):
            read(*args)


def test_every_case_the_read_model_calls_overdue_is_on_the_overdue_list(session, month_filter):
    """The list adds the cases whose running step is late to those past their promised
    deadline (the read model's and the statistics' ``overdue``), and loses none of those."""
    leader = as_actor(session, "leader")
    listed = dashboard.overdue(session, leader, month_filter, limit=1000)
    ids = {row["id"] for row in listed["data"]}
    page = reads.list_issues(session, leader, IssueFilter(statuses=("open",)), limit=10_000)
    promised = {row["id"] for row in page.items if row["overdue"]}
    assert promised and promised <= ids
    rows, unassigned = statistics.grid_stats(session, leader)
    assert sum(r["overdue"] for r in rows) + unassigned["overdue"] == len(promised)
    late_steps = {row["id"] for row in listed["data"] if row["step_overdue"]}
    assert ids == promised | late_steps
    assert listed["count"] == len(ids) == dashboard.summary(session, leader,
                                                            month_filter)["overdue"]


def test_the_small_heat_map_is_the_heatmaps_aggregates_on_its_scale(session, month_filter):
    leader = as_actor(session, "leader")
    period = month_filter.period
    data = map_data.heatmap_data(session, ScopedFilter.of(
        IssueFilter(since=period.since, until=period.until), leader), hotspots=False)
    layer = heat_layer(dashboard.heat_data(session, leader, month_filter), (480, 320))
    assert layer["total"] == data.total > 0
    assert sum(w for _, _, w in layer["cells"]) == data.cells["weight"].sum()
    zoom = fit_zoom(data.grids.total_bounds, (480, 320))
    scale = heat_scale(data.cells["lat"], data.cells["lon"], data.cells["weight"],
                       cell_m=data.cell_m, zoom=zoom)
    assert layer["zoom"] == zoom == layer["scale"]["max_zoom"]
    assert (layer["scale"]["radius"], layer["scale"]["blur"], layer["scale"]["max"]) == \
        (scale.radius, scale.blur, scale.max)
    codes = {f["properties"]["code"] for f in layer["grids"]["features"]}
    assert codes == set(data.grids["code"]) and len(codes) == 14
