"""Working time without a database: the official calendar (调休 included) against the
``chinesecalendar`` package's own, the fallback for a year it does not know, local overrides,
and the one rule that turns a limit into a deadline (gis.worktime)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import chinese_calendar
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from gis.rules import BEIJING, STATUS_STEP, TRANSITIONS
from gis.worktime.calendar import WorkCalendar, official_years
from gis.worktime.limits import Limit, deadline, parse_workday_end
from gis.worktime.steps import StepChange, replay, step_change

OFFICIAL = WorkCalendar()
END = time(17, 30)
UNKNOWN_YEAR = max(official_years()) + 1  # a year the installed package has no notice for
WORKDAYS = st.integers(1, 40)


def at(day: str, hour: int = 10, minute: int = 0) -> datetime:
    return datetime.combine(date.fromisoformat(day), time(hour, minute), tzinfo=BEIJING)


def due(start: datetime, n: int, calendar: WorkCalendar = OFFICIAL) -> datetime:
    return deadline(start, Limit(n, "workdays"), calendar, END)


def closing(day: str) -> datetime:
    return at(day, 17, 30)


# -- the official calendar, against the package's --------------------------------------------------
def test_every_day_of_2025_and_2026_is_the_packages_answer():
    day = date(2025, 1, 1)
    while day.year <= 2026:
        assert OFFICIAL.is_workday(day) == chinese_calendar.is_workday(day), day
        assert OFFICIAL.source(day) == "official"
        day += timedelta(days=1)


def test_the_2026_spring_festival_with_its_adjusted_working_saturdays():
    # holiday 15-23 February 2026; Saturdays 14 and 28 February are working days (调休)
    assert chinese_calendar.is_workday(date(2026, 2, 14)) and date(2026, 2, 14).weekday() == 5
    assert due(at("2026-02-13"), 1) == closing("2026-02-14")  # the adjusted Saturday counts
    assert due(at("2026-02-13"), 2) == closing("2026-02-24")  # the nine days off do not
    assert due(at("2026-02-14", 23), 1) == closing("2026-02-24")
    for day in ("2026-02-15", "2026-02-18", "2026-02-23"):  # started during the holiday
        assert due(at(day, 9), 1) == closing("2026-02-24")
    # 25, 26, 27, Saturday 28 (调休), then Monday 2 March
    assert due(at("2026-02-24"), 5) == closing("2026-03-02")
    # a 15-working-day limit (illegal construction) reported the day before the holiday
    # (14th, 24th-28th, 2nd-6th March, 9th-12th)
    assert due(at("2026-02-13", 16), 15) == closing("2026-03-12")


def test_the_2026_national_day_with_its_adjusted_working_days():
    # Mid-autumn 25-27 September, National Day 1-7 October; Sunday 20 September and Saturday
    # 10 October are working days (调休)
    assert due(at("2026-09-19"), 1) == closing("2026-09-20")  # a Saturday off, a Sunday on
    assert due(at("2026-09-24", 18), 1) == closing("2026-09-28")
    assert due(at("2026-09-30", 8), 1) == closing("2026-10-08")
    assert due(at("2026-09-30"), 3) == closing("2026-10-10")  # Thursday, Friday, Saturday 10th
    assert due(at("2026-10-10"), 1) == closing("2026-10-12")  # Sunday 11th is off
    assert due(at("2026-10-03"), 15) == closing("2026-10-27")  # 8-10, 12-16, 19-23, 26, 27


@given(st.dates(date(2024, 1, 1), date(2026, 12, 31)), WORKDAYS)
def test_n_working_days_are_n_of_the_packages_working_days(start, n):
    end = due(datetime.combine(start, time(12), tzinfo=BEIJING), n)
    assume(end.year <= max(official_years()))
    counted = sum(chinese_calendar.is_workday(start + timedelta(days=k))
                  for k in range(1, (end.date() - start).days + 1))
    assert counted == n and chinese_calendar.is_workday(end.date())


# -- a year the package does not know, and overrides ------------------------------------------------
def test_a_year_the_package_does_not_know_falls_back_to_monday_to_friday():
    assert WorkCalendar.fallback_years([2026, UNKNOWN_YEAR]) == [UNKNOWN_YEAR]
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(UNKNOWN_YEAR, 1, 5))  # the package itself refuses
    week = [date(UNKNOWN_YEAR, 3, 1) + timedelta(days=k) for k in range(14)]
    assert [OFFICIAL.is_workday(d) for d in week] == [d.weekday() < 5 for d in week]
    assert {OFFICIAL.source(d) for d in week} == {"fallback"}
    friday = next(d for d in week if d.weekday() == 4)
    assert due(datetime.combine(friday, time(9), tzinfo=BEIJING), 1) == \
        datetime.combine(friday + timedelta(days=3), END, tzinfo=BEIJING)


def test_overrides_enter_a_years_notice_and_local_decisions_and_win():
    # the coming year's Spring Festival entered by hand: a Monday off, the Saturday before on
    monday = next(date(UNKNOWN_YEAR, 2, 1) + timedelta(days=k) for k in range(7)
                  if (date(UNKNOWN_YEAR, 2, 1) + timedelta(days=k)).weekday() == 0)
    saturday = monday - timedelta(days=2)
    local = WorkCalendar({monday: False, saturday: True})
    friday = monday - timedelta(days=3)
    assert due(datetime.combine(friday, time(9), tzinfo=BEIJING), 1, local) == \
        datetime.combine(saturday, END, tzinfo=BEIJING)
    assert due(datetime.combine(friday, time(9), tzinfo=BEIJING), 2, local) == \
        datetime.combine(monday + timedelta(days=1), END, tzinfo=BEIJING)
    assert local.source(monday) == "override" and local.source(friday) == "fallback"
    # over the official calendar: 5 October 2026 made a working day, 28 September a holiday
    local = WorkCalendar({date(2026, 10, 5): True, date(2026, 9, 28): False})
    assert due(at("2026-09-30"), 1, local) == closing("2026-10-05")
    assert due(at("2026-09-24"), 1, local) == closing("2026-09-29")


@given(st.dates(date(2025, 1, 1), date(2026, 12, 31)),
       st.dictionaries(st.dates(date(2025, 1, 1), date(2027, 6, 30)), st.booleans(), max_size=20))
def test_an_override_always_decides_its_day(day, overrides):
    calendar = WorkCalendar(overrides)
    expected = overrides[day] if day in overrides else chinese_calendar.is_workday(day)
    assert calendar.is_workday(day) == expected


# -- the rule's properties -----------------------------------------------------------------------
instants = st.datetimes(datetime(2024, 1, 1), datetime(UNKNOWN_YEAR, 12, 1),
                        timezones=st.just(BEIJING))
calendars = st.dictionaries(st.dates(date(2024, 1, 1), date(UNKNOWN_YEAR + 1, 6, 30)),
                            st.booleans(), max_size=15).map(WorkCalendar)


@given(instants, WORKDAYS, calendars)
def test_a_workday_deadline_is_a_working_day_at_the_days_end(start, n, calendar):
    end = due(start, n, calendar)
    assert end.astimezone(BEIJING).time() == END and calendar.is_workday(end.date())
    assert end > start
    assert calendar.workdays_between(start.date() + timedelta(days=1), end.date()) == n


@given(instants, WORKDAYS, calendars)
def test_more_working_days_end_later(start, n, calendar):
    assert due(start, n, calendar) < due(start, n + 1, calendar)


@given(instants, WORKDAYS, calendars, st.times())
def test_the_hour_a_step_starts_at_does_not_matter(start, n, calendar, other):
    """Before or after 17:30: the day the step starts never counts."""
    same_day = datetime.combine(start.date(), other, tzinfo=BEIJING)
    assert due(start, n, calendar) == due(same_day, n, calendar)


@given(instants, WORKDAYS, calendars)
def test_starting_on_a_day_off_is_starting_on_the_last_working_day_before_it(start, n, calendar):
    assume(not calendar.is_workday(start.date()))
    before = start.date() - timedelta(days=1)
    while not calendar.is_workday(before):
        before -= timedelta(days=1)
    assert due(start, n, calendar) == due(datetime.combine(before, time(8), tzinfo=BEIJING), n,
                                          calendar)


@given(instants, st.integers(1, 600), st.sampled_from(["minutes", "hours"]))
def test_minutes_and_hours_are_elapsed_time_around_the_clock(start, value, unit):
    end = deadline(start, Limit(value, unit), OFFICIAL, END)
    assert end - start == timedelta(**{unit: value})


def test_the_end_of_the_working_day_is_a_setting_and_the_start_may_be_in_any_zone():
    start = datetime(2026, 2, 13, 2, tzinfo=UTC)  # 10:00 in Beijing
    assert deadline(start, Limit(1, "workdays"), OFFICIAL, time(18)) == at("2026-02-14", 18)
    late = datetime(2026, 2, 13, 20, tzinfo=UTC)  # 04:00 on the 14th in Beijing: its day is the 14th
    assert deadline(late, Limit(1, "workdays"), OFFICIAL, END) == closing("2026-02-24")
    assert parse_workday_end("18:15") == time(18, 15)
    with pytest.raises(ValueError, match="HH:MM"):
        parse_workday_end("late")
    with pytest.raises(ValueError, match="time zone"):
        deadline(datetime(2026, 2, 13, 10), Limit(1, "workdays"), OFFICIAL, END)


@pytest.mark.parametrize(("value", "unit"), [(0, "workdays"), (-1, "hours"), (1, "days"),
                                              (400, "workdays")])
def test_a_limit_is_positive_in_a_known_unit(value, unit):
    with pytest.raises(ValueError):
        Limit(value, unit)


def test_a_calendar_of_holidays_only_is_refused_not_looped_on():
    never = WorkCalendar({date(2026, 1, 1) + timedelta(days=k): False for k in range(2000)})
    with pytest.raises(ValueError, match="every day a holiday"):
        never.nth_workday_after(date(2026, 1, 1), 1)


# -- the steps a history runs through ---------------------------------------------------------------
def test_each_status_runs_one_step_and_moves_end_and_start_them():
    # every status but the final ones and 挂账 (no step runs while a case is on hold)
    assert set(STATUS_STEP) | {"closed", "rejected", "on_hold"} == set(TRANSITIONS)
    assert step_change(None, "reported").starts == "accept"
    assert step_change("reported", "accepted") == StepChange(True, "dispatch")
    assert (step_change("dispatched", "in_progress").ends,
            step_change("dispatched", "in_progress").starts) == (False, None)
    assert (step_change("resolved", "reopened").ends,
            step_change("resolved", "reopened").starts) == (True, "handle")
    assert (step_change("reported", "closed").ends,
            step_change("reported", "closed").starts) == (True, None)  # 自处理


def test_a_reworked_history_handles_twice_each_with_its_deadline():
    limits = {"accept": Limit(30, "minutes"), "dispatch": Limit(30, "minutes"),
              "handle": Limit(1, "workdays"), "verify": Limit(2, "hours")}
    t0 = at("2026-02-13", 9)
    moves = [(t0, None, "reported"), (t0 + timedelta(minutes=20), "reported", "accepted"),
             (t0 + timedelta(minutes=70), "accepted", "dispatched"),
             (t0 + timedelta(hours=3), "dispatched", "in_progress"),
             (t0 + timedelta(hours=5), "in_progress", "resolved"),
             (t0 + timedelta(hours=6), "resolved", "reopened"),
             (t0 + timedelta(hours=7), "reopened", "in_progress")]
    steps = replay(moves, limits, OFFICIAL, END)
    assert [s.step for s in steps] == ["accept", "dispatch", "handle", "verify", "handle"]
    accept, dispatch, handle, verify, rework = steps
    assert accept.due_at == t0 + timedelta(minutes=30) and accept.done_at < accept.due_at
    assert dispatch.done_at > dispatch.due_at  # dispatched 20 minutes late
    assert handle.due_at == closing("2026-02-14") and handle.done_at == t0 + timedelta(hours=5)
    assert verify.due_at == t0 + timedelta(hours=7) and verify.done_at == t0 + timedelta(hours=6)
    assert rework.started_at == t0 + timedelta(hours=6) and rework.done_at is None
    assert rework.due_at == closing("2026-02-14")
    assert replay(moves, {}, OFFICIAL, END)[0].due_at is None  # no limit: no deadline
