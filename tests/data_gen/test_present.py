"""The demo lives in the present: its year of issues ends on the day it is generated for.

Each property is checked on days pinned with ``today`` (so the results never depend on the day the
suite runs): a leap day, 1 January, the day after the Spring Festival (17 February 2026) and a
day in July, whose year of issues splits the summer rains. The tests of a moment, of the default
(now) and of any day use the 14-grid layout without detail, which is fast, since there the place
does not matter.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data.generator import DemoData, generate_demo
from gis.rules import BEIJING, FINAL_STATUSES, UNTIMED_STATUSES, is_overdue

DAYS = [date(2024, 2, 29), date(2026, 1, 1), date(2026, 2, 18), date(2025, 7, 20)]
OPEN311_WINDOW = timedelta(days=90)  # GET requests without dates (GeoReport v2)


@pytest.fixture(scope="module", params=DAYS, ids=str)
def pinned(request) -> tuple[date, DemoData]:
    return request.param, generate_demo(today=request.param)


def end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), BEIJING) \
        - timedelta(seconds=1)


def monday_of(moment) -> date:
    local = pd.Timestamp(moment).tz_convert(BEIJING).date()
    return local - timedelta(days=local.weekday())


def open_cases(data: DemoData) -> pd.DataFrame:
    return data.issues[~data.issues["status"].isin(FINAL_STATUSES)]


def running_cases(data: DemoData) -> pd.DataFrame:
    """Open cases whose time runs: not on hold (挂账), which may be old and is never overdue."""
    return data.issues[~data.issues["status"].isin(UNTIMED_STATUSES)]


# ------------------------------------------------------------------------------- the window


def test_the_year_of_issues_ends_on_today(pinned):
    day, data = pinned
    assert data.seen_at == end_of(day)
    reported = data.issues["reported_at"].dt.tz_convert(BEIJING)
    first = pd.Timestamp(day) - pd.DateOffset(years=1) + pd.Timedelta(days=1)
    assert reported.dt.date.min() in (first.date(), first.date() + timedelta(days=1))
    assert reported.dt.date.max() == day  # reports of the very day the demo is for


def test_nothing_happens_after_the_data_is_seen(pinned):
    _, data = pinned
    i, e = data.issues, data.issue_events
    for column in (i["reported_at"], i["closed_at"].dropna(), e["at"]):
        assert (column <= data.seen_at).all()  # due times may lie ahead: they are promises
    assert e.groupby("issue_client_uuid")["at"].max().max() <= data.seen_at


def test_the_same_seed_and_day_give_the_same_data(pinned):
    day, data = pinned
    again = generate_demo(today=day)
    pd.testing.assert_frame_equal(data.issues.drop(columns="geometry"),
                                  again.issues.drop(columns="geometry"))
    pd.testing.assert_frame_equal(data.issue_events, again.issue_events)
    assert data.issues.geometry.geom_equals_exact(again.issues.geometry, 0).all()


def test_another_day_moves_the_issues_not_the_place():
    a, b = generate_demo(today=DAYS[0]), generate_demo(today=DAYS[1])
    assert a.grids.geometry.geom_equals_exact(b.grids.geometry, 0).all()
    assert a.facilities["code"].equals(b.facilities["code"])
    assert not a.issues["reported_at"].equals(b.issues["reported_at"])


# ------------------------------------------------------------------------------- current cases


def test_open_cases_are_recent(pinned):
    """Cases whose time runs are recent: the last day's reports are open more than those of the
    days before, a month's are settled; the few old open cases are on hold (挂账)."""
    _, data = pinned
    seen = pd.Timestamp(data.seen_at)
    assert 10 <= len(open_cases(data)) <= 0.03 * len(data.issues)
    cases = running_cases(data)
    age = seen - cases["reported_at"]
    assert age.median() < pd.Timedelta(days=7)
    reported = data.issues["reported_at"]
    last_day = data.issues[reported > seen - pd.Timedelta(days=1)]
    week = data.issues[reported.between(seen - pd.Timedelta(days=7), seen - pd.Timedelta(days=1))]
    still_open = (~last_day["status"].isin(FINAL_STATUSES)).mean()
    assert still_open >= 0.3 and still_open > (~week["status"].isin(FINAL_STATUSES)).mean()
    month_ago = data.issues[reported < seen - pd.Timedelta(days=30)]
    assert month_ago["status"].isin(UNTIMED_STATUSES).mean() > 0.99
    held = open_cases(data)["status"].eq("on_hold").sum()
    assert 0 < held <= 0.006 * len(data.issues)


def test_overdue_flags_are_real_some_but_not_all(pinned):
    _, data = pinned
    cases = running_cases(data)
    overdue = np.array([is_overdue(s, d, data.seen_at)
                        for s, d in zip(cases["status"], cases["due_at"], strict=True)])
    assert 0 < overdue.sum() < len(cases)
    assert overdue.mean() < 0.6  # most open cases are within their time limit
    due_in = cases["due_at"] - pd.Timestamp(data.seen_at)
    assert (due_in.abs() < pd.Timedelta(days=16)).mean() > 0.8  # near future or recent past


def test_every_grid_worker_has_a_case_to_act_on(pinned):
    _, data = pinned
    cases = open_cases(data)
    actionable = cases[cases["status"].ne("resolved")]  # resolved waits for verification
    assert set(actionable["grid_code"]) == set(data.grids["code"])


def test_open311_default_window_has_requests(pinned):
    _, data = pinned
    seen = pd.Timestamp(data.seen_at)
    window = data.issues["reported_at"].between(seen - OPEN311_WINDOW, seen)
    share = window.mean()
    assert 0.18 < share < 0.32  # about 90 of the 365 days' reports


def test_the_heatmap_weeks_end_in_the_current_week(pinned):
    day, data = pinned
    weeks = {monday_of(t) for t in data.issues["reported_at"]}
    assert max(weeks) == day - timedelta(days=day.weekday())
    assert len(weeks) in (53, 54)


# ------------------------------------------------------------------------------- seasons and weeks


def test_seasons_and_weekdays_hold_on_any_day(pinned):
    _, data = pinned
    i = data.issues
    local = i["reported_at"].dt.tz_convert(BEIJING)
    heating = local[i["category"].eq("heating_failure")]
    month, dom = heating.dt.month, heating.dt.day
    in_season = (month <= 2) | ((month == 3) & (dom <= 15)) | ((month == 11) & (dom >= 15)) \
        | (month == 12)
    assert in_season.mean() > 0.9
    sewer = local[i["category"].eq("sewer_blocked")]
    assert sewer.dt.month.isin([7, 8]).mean() > 2 * 62 / 365
    weekend = local.dt.day_of_week >= 5
    assert (~weekend).sum() / 5 > 1.4 * weekend.sum() / 2


# ------------------------------------------------------------------------------- seen now


def test_a_moment_pins_the_data_mid_day():
    moment = datetime(2026, 2, 18, 9, 30, tzinfo=BEIJING)
    data = generate_demo(grids=14, issues=3_000, detail=False, today=moment)
    assert data.seen_at == moment
    i = data.issues
    assert (i["reported_at"] <= moment).all() and (i["closed_at"].dropna() <= moment).all()
    assert (data.issue_events["at"] <= moment).all()
    later = generate_demo(grids=14, issues=3_000, detail=False, today=moment + timedelta(hours=8))
    assert len(later.issues) == len(i)  # the day's later reports move a week back, none is lost
    assert i["reported_at"].dt.tz_convert(BEIJING).dt.date.max() == moment.date()


def test_by_default_the_data_is_seen_now():
    before = datetime.now(BEIJING)
    data = generate_demo(grids=14, issues=1_000, detail=False)
    after = datetime.now(BEIJING)
    assert before - timedelta(seconds=1) <= data.seen_at <= after
    assert (data.issues["reported_at"] <= after).all()
    assert (data.issue_events["at"] <= after).all()


@settings(max_examples=15, deadline=None)
@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
       st.integers(min_value=0, max_value=2**31))
def test_any_day_gives_a_year_up_to_it(day, seed):
    data = generate_demo(seed=seed, grids=14, issues=400, detail=False, today=day)
    i = data.issues
    local = i["reported_at"].dt.tz_convert(BEIJING).dt.date
    first = (pd.Timestamp(day) - pd.DateOffset(years=1) + pd.Timedelta(days=1)).date()
    assert local.min() >= first and local.max() <= day
    assert (i["closed_at"].dropna() <= data.seen_at).all()
    assert (data.issue_events["at"] <= data.seen_at).all()
