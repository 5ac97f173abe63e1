"""The one rule that turns a time limit into a deadline (docs/ARCHITECTURE.md, "Working time").

* ``minutes`` and ``hours`` are elapsed time around the clock: urgent steps (a missing manhole
  cover made safe within 2 hours) run through nights, weekends and holidays.
* ``workdays``: a limit of N working days ends at the end of the working day (17:30 Beijing time,
  the setting GRIDMAP_WORKDAY_END) of the N-th working day *after the day the step starts*. The
  day the step starts never counts, whatever the hour and whether or not it is a working day: a
  step started on a Monday (at 08:00 or at 23:00) with 1 working day ends on Tuesday at 17:30; one
  started on a Saturday, or on Friday after 17:30, ends on Monday at 17:30; one started on the
  first day of the Spring Festival holiday ends at 17:30 on the first working day after it. A
  step started on a working day therefore always has the rest of that day as a grace, and a
  report after hours loses nothing.

Working hours (:func:`working_hours`) measure a span the other way round: the part of it that
falls inside office hours (08:30 to 17:30 Beijing time, the settings GRIDMAP_WORKDAY_START and
GRIDMAP_WORKDAY_END) of working days. The evaluation's handling time is counted with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

import numpy as np

from gis.rules import (
    BEIJING,
    DEFAULT_WORKDAY_END,
    DEFAULT_WORKDAY_START,
    LIMIT_UNIT_NAMES,
    LIMIT_UNITS,
)
from gis.worktime.calendar import MAX_WORKDAYS, WorkCalendar

# The longest elapsed limit accepted (a year), so that a typo cannot promise a century.
_MAX_ELAPSED = {"minutes": 366 * 24 * 60, "hours": 366 * 24, "workdays": MAX_WORKDAYS}


@dataclass(frozen=True)
class Limit:
    """A time limit: ``value`` ``unit`` (minutes, hours or workdays)."""

    value: int
    unit: str

    def __post_init__(self) -> None:
        if self.unit not in LIMIT_UNITS:
            raise ValueError(f"a limit's unit is one of {', '.join(LIMIT_UNITS)}, got {self.unit!r}")
        if not 1 <= self.value <= _MAX_ELAPSED[self.unit]:
            raise ValueError(f"a limit in {self.unit} is 1 to {_MAX_ELAPSED[self.unit]}, "
                             f"got {self.value}")

    def as_dict(self) -> dict:
        return {"value": self.value, "unit": self.unit}

    def describe(self) -> str:
        """'15 个工作日 / 15 working days'."""
        zh, en = LIMIT_UNIT_NAMES[self.unit]
        return f"{self.value} {zh} / {self.value} {en}"


def deadline(start: datetime, limit: Limit, calendar: WorkCalendar,
             workday_end: time = DEFAULT_WORKDAY_END) -> datetime:
    """When a step started at ``start`` (timezone-aware) with ``limit`` must be done."""
    if start.tzinfo is None:
        raise ValueError(f"a step's start needs a time zone, got {start!r}")
    if limit.unit == "minutes":
        return start + timedelta(minutes=limit.value)
    if limit.unit == "hours":
        return start + timedelta(hours=limit.value)
    day = calendar.nth_workday_after(start.astimezone(BEIJING).date(), limit.value)
    return datetime.combine(day, workday_end, tzinfo=BEIJING)


def working_hours(start: datetime, end: datetime, calendar: WorkCalendar,
                  day_start: time = DEFAULT_WORKDAY_START,
                  day_end: time = DEFAULT_WORKDAY_END) -> float:
    """The hours of [``start``, ``end``) (timezone-aware) that fall inside office hours,
    [``day_start``, ``day_end``) Beijing time, of working days; 0 when ``end`` is not after
    ``start``. Nights, weekends and holidays do not count; an adjusted working weekend (调休) does.
    Additive: the hours of [a, c) are those of [a, b) plus those of [b, c). One span of
    :func:`working_hours_many`."""
    return float(working_hours_many([start], [end], calendar, day_start, day_end)[0])


def working_hours_many(starts: Sequence[datetime], ends: Sequence[datetime],
                       calendar: WorkCalendar, day_start: time = DEFAULT_WORKDAY_START,
                       day_end: time = DEFAULT_WORKDAY_END) -> np.ndarray:
    """:func:`working_hours` of each span [``starts[k]``, ``ends[k]``) (timezone-aware)."""
    for name, values in (("start", starts), ("end", ends)):
        for value in values:
            if value.tzinfo is None:
                raise ValueError(f"working hours need times with a time zone, got {name}={value!r}")
    if len(starts) != len(ends):
        raise ValueError(f"as many starts as ends, got {len(starts)} and {len(ends)}")
    local = [np.array([(t.astimezone(BEIJING).replace(tzinfo=None) - _EPOCH) // _US
                       for t in v], dtype=np.int64) for v in (starts, ends)]
    return office_hours(*local, calendar, day_start, day_end)


def office_hours(starts_us: np.ndarray, ends_us: np.ndarray, calendar: WorkCalendar,
                 day_start: time = DEFAULT_WORKDAY_START,
                 day_end: time = DEFAULT_WORKDAY_END) -> np.ndarray:
    """The working hours of many spans given as Beijing wall-clock times, microseconds since
    1970-01-01 00:00 (what SQL's ``extract(epoch FROM t AT TIME ZONE 'Asia/Shanghai')`` gives
    in seconds): an evaluation measures tens of thousands of handling steps at once.

    Counted as a clock of office time: W(t), the office microseconds from the first day the
    spans touch up to the instant t (the whole office days before t's day, plus the part of t's
    day's office hours before t when it is a working day). The hours of [a, b) are W(b) - W(a):
    the sum over the span's days of its overlap with each day's office hours (none when b is
    not after a). Beijing has kept one offset all year since 1991, so a day is 24 hours."""
    if day_end <= day_start:
        raise ValueError(f"the working day must end after it starts, got {day_start}-{day_end}")
    starts_us, ends_us = np.asarray(starts_us, np.int64), np.asarray(ends_us, np.int64)
    if not len(starts_us):
        return np.zeros(0)
    days = [t // _DAY_US for t in (starts_us, ends_us)]
    first = int(min(d.min() for d in days))
    last = int(max(d.max() for d in days))
    origin = _EPOCH.date() + timedelta(days=first)
    workday = np.array([calendar.is_workday(origin + timedelta(days=k))
                        for k in range(last - first + 1)], dtype=bool)
    opens, closes = _time_us(day_start), _time_us(day_end)
    # office microseconds of the whole days before each day
    before = np.concatenate(([0], np.cumsum(workday * (closes - opens))[:-1]))

    def clock(t: np.ndarray, d: np.ndarray) -> np.ndarray:
        k = d - first
        inside = np.clip(t - d * _DAY_US, opens, closes) - opens
        return before[k] + np.where(workday[k], inside, 0)

    office = clock(ends_us, days[1]) - clock(starts_us, days[0])
    return np.maximum(office, 0) / 3.6e9


_EPOCH = datetime(1970, 1, 1)
_US = timedelta(microseconds=1)
_DAY_US = 86_400_000_000


def _time_us(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond


def extended(due: datetime, granted: Limit, calendar: WorkCalendar,
             workday_end: time = DEFAULT_WORKDAY_END) -> datetime:
    """A deadline moved by an approved extension (延期) of ``granted`` time: counted from the old
    deadline by the same rule as a step's (N working days end at the end of the N-th working
    day after the old deadline's day; hours and minutes run on from it). The case's ``due_at``
    and its running handling step move alike."""
    return deadline(due, granted, calendar, workday_end)


def parse_workday_end(value: str | time) -> time:
    """'17:30' -> time(17, 30); the end (or the start) of a working day, Beijing time."""
    if isinstance(value, time):
        return value
    try:
        parsed = time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"the end of a working day is HH:MM, got {value!r}") from None
    return parsed.replace(tzinfo=None)
