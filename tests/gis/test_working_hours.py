"""Working hours (gis.worktime.limits.working_hours): the hours of a span inside office hours
(08:30-17:30 Beijing time by default) of working days, checked against a count minute by minute,
across the 2026 Spring Festival and National Day with their adjusted working weekends."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gis.rules import BEIJING, DEFAULT_WORKDAY_END, DEFAULT_WORKDAY_START
from gis.worktime.calendar import WorkCalendar
from gis.worktime.limits import office_hours, working_hours, working_hours_many

OFFICIAL = WorkCalendar()
DAY_HOURS = 9.0  # 08:30 to 17:30


def at(day: str, hour: int = 10, minute: int = 0) -> datetime:
    return datetime.combine(date.fromisoformat(day), time(hour, minute), tzinfo=BEIJING)


def test_office_hours_of_a_plain_week():
    assert (time(8, 30), time(17, 30)) == (DEFAULT_WORKDAY_START, DEFAULT_WORKDAY_END)
    # Monday 9 March 2026, 16:00 -> Tuesday 10:00: 1.5 h on Monday, 1.5 h on Tuesday
    assert working_hours(at("2026-03-09", 16), at("2026-03-10", 10), OFFICIAL) == 3.0
    # Friday 17:00 -> Monday 09:00: half an hour each side of the weekend
    assert working_hours(at("2026-03-13", 17), at("2026-03-16", 9), OFFICIAL) == 1.0
    # a whole working week, Monday 00:00 to the next Monday 00:00
    assert working_hours(at("2026-03-09", 0), at("2026-03-16", 0), OFFICIAL) == 5 * DAY_HOURS
    # at night and before the office opens: nothing
    assert working_hours(at("2026-03-09", 18), at("2026-03-10", 8, 30), OFFICIAL) == 0.0


def test_the_spring_festival_and_its_adjusted_working_saturdays():
    # holiday 15-23 February 2026; Saturdays 14 and 28 February are working days (调休)
    assert working_hours(at("2026-02-14", 0), at("2026-02-15", 0), OFFICIAL) == DAY_HOURS
    assert working_hours(at("2026-02-15", 0), at("2026-02-24", 0), OFFICIAL) == 0.0
    # Friday 13th 17:00 -> Tuesday 24th 09:30: 0.5 + 9 (Saturday 14th) + 1
    assert working_hours(at("2026-02-13", 17), at("2026-02-24", 9, 30), OFFICIAL) == 10.5
    assert working_hours(at("2026-02-28", 0), at("2026-03-01", 0), OFFICIAL) == DAY_HOURS


def test_national_day_and_its_adjusted_working_days():
    # Mid-autumn 25-27 September and National Day 1-7 October 2026 are off; Sunday 20
    # September and Saturday 10 October are worked (调休)
    assert working_hours(at("2026-10-01", 0), at("2026-10-08", 0), OFFICIAL) == 0.0
    assert working_hours(at("2026-09-25", 0), at("2026-09-28", 0), OFFICIAL) == 0.0
    assert working_hours(at("2026-09-20", 0), at("2026-09-21", 0), OFFICIAL) == DAY_HOURS
    assert working_hours(at("2026-10-10", 0), at("2026-10-11", 0), OFFICIAL) == DAY_HOURS
    # 30 September 16:30 -> 8 October 09:30: an hour before the holiday, an hour after it
    assert working_hours(at("2026-09-30", 16, 30), at("2026-10-08", 9, 30), OFFICIAL) == 2.0


def test_overrides_and_other_office_hours_count():
    holiday = WorkCalendar({date(2026, 3, 10): False})
    assert working_hours(at("2026-03-09", 16), at("2026-03-11", 10), holiday) == 1.5 + 1.5
    assert working_hours(at("2026-03-09", 0), at("2026-03-10", 0), OFFICIAL,
                         time(9), time(17)) == 8.0


def test_the_times_may_be_in_any_zone_and_need_one():
    start = datetime(2026, 3, 9, 1, tzinfo=UTC)  # 09:00 in Beijing
    assert working_hours(start, start + timedelta(hours=2), OFFICIAL) == 2.0
    with pytest.raises(ValueError, match="time zone"):
        working_hours(datetime(2026, 3, 9, 9), at("2026-03-09", 11), OFFICIAL)
    with pytest.raises(ValueError, match="end after it starts"):
        working_hours(at("2026-03-09", 9), at("2026-03-09", 11), OFFICIAL, time(17), time(9))
    assert working_hours(at("2026-03-09", 11), at("2026-03-09", 9), OFFICIAL) == 0.0


# -- properties ---------------------------------------------------------------------------------
# Minute-aligned instants over the two years the package knows and one it does not.
minutes = st.integers(0, 3 * 366 * 24 * 60).map(
    lambda m: datetime(2025, 1, 1, tzinfo=BEIJING) + timedelta(minutes=m))
spans = st.tuples(minutes, st.integers(0, 6 * 24 * 60)).map(
    lambda p: (p[0], p[0] + timedelta(minutes=p[1])))
calendars = st.dictionaries(st.dates(date(2025, 1, 1), date(2028, 1, 31)), st.booleans(),
                            max_size=15).map(WorkCalendar)
office_times = st.tuples(st.integers(0, 23 * 60), st.integers(1, 24 * 60 - 1)).filter(
    lambda p: p[0] < p[1]).map(lambda p: (time(*divmod(p[0], 60)), time(*divmod(p[1], 60))))


def minute_count(start: datetime, end: datetime, calendar: WorkCalendar,
                 hours: tuple[time, time]) -> float:
    """The brute force: each minute of [start, end) that begins in office hours of a working day."""
    counted, t = 0, start
    while t < end:
        local = t.astimezone(BEIJING)
        counted += calendar.is_workday(local.date()) and hours[0] <= local.time() < hours[1]
        t += timedelta(minutes=1)
    return counted / 60


@given(spans, calendars, office_times)
@settings(deadline=None)  # the brute force walks up to 8,640 minutes: no time limit on it
def test_agrees_with_a_count_minute_by_minute(span, calendar, hours):
    assert working_hours(*span, calendar, *hours) == pytest.approx(
        minute_count(*span, calendar, hours), abs=1e-9)


@given(minutes, st.integers(0, 40 * 24 * 60), st.integers(0, 40 * 24 * 60), calendars)
@settings(deadline=None)
def test_additive_over_a_split_point(start, first, second, calendar):
    split = start + timedelta(minutes=first)
    end = split + timedelta(minutes=second)
    assert working_hours(start, end, calendar) == pytest.approx(
        working_hours(start, split, calendar) + working_hours(split, end, calendar), abs=1e-9)


@given(spans, calendars, office_times)
@settings(deadline=None)
def test_never_more_than_the_office_hours_of_each_day_touched(span, calendar, hours):
    start, end = span
    per_day = (datetime.combine(date.min, hours[1]) - datetime.combine(date.min, hours[0]))
    days = (end.date() - start.date()).days + 1
    assert 0.0 <= working_hours(start, end, calendar, *hours) <= days * per_day.total_seconds() / 3600
    same_day = min(end, datetime.combine(start.date() + timedelta(days=1), time(0), tzinfo=BEIJING))
    assert working_hours(start, same_day, calendar) <= DAY_HOURS


@given(st.dates(date(2025, 1, 1), date(2027, 12, 31)), st.times(), st.times(), calendars)
@settings(deadline=None)
def test_nothing_on_a_day_off(day, a, b, calendar):
    start, end = sorted(datetime.combine(day, t, tzinfo=BEIJING) for t in (a, b))
    hours = working_hours(start, end, calendar)
    if not calendar.is_workday(day):
        assert hours == 0.0
    else:
        assert hours <= DAY_HOURS


# -- many spans at once (the evaluation's handling time) --------------------------------------------
@given(st.lists(spans, max_size=12), calendars, office_times)
@settings(deadline=None, max_examples=40)
def test_many_spans_at_once_are_each_counted_as_alone(many, calendar, hours):
    """Spans far apart share one clock of office time (days indexed from the earliest): each
    must still get its own minute count, wherever it lies among the others."""
    starts, ends = [s for s, _ in many], [e for _, e in many]
    got = working_hours_many(starts, ends, calendar, *hours)
    assert got.shape == (len(many),)
    for (start, end), hours_of_span in zip(many, got.tolist(), strict=True):
        assert hours_of_span == pytest.approx(minute_count(start, end, calendar, hours), abs=1e-9)


def test_wall_clock_microseconds_are_the_sql_reading_of_the_same_spans():
    """:func:`office_hours` takes what SQL gives (Beijing wall-clock microseconds since 1970):
    a span given so is counted as the same span given as aware times."""
    start, end = at("2026-02-13", 17), at("2026-02-24", 9, 30)

    def wall_us(t: datetime) -> int:
        return (t.astimezone(BEIJING).replace(tzinfo=None) - datetime(1970, 1, 1)) \
            // timedelta(microseconds=1)

    assert office_hours(np.array([wall_us(start)]), np.array([wall_us(end)]),
                        OFFICIAL).tolist() == [10.5]
    assert working_hours_many([], [], OFFICIAL).tolist() == []
    with pytest.raises(ValueError, match="as many starts as ends"):
        working_hours_many([start], [], OFFICIAL)
