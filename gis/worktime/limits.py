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

from dataclasses import dataclass
from datetime import datetime, time, timedelta

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
    Additive: the hours of [a, c) are those of [a, b) plus those of [b, c)."""
    for name, value in (("start", start), ("end", end)):
        if value.tzinfo is None:
            raise ValueError(f"working hours need times with a time zone, got {name}={value!r}")
    if day_end <= day_start:
        raise ValueError(f"the working day must end after it starts, got {day_start}-{day_end}")
    if end <= start:
        return 0.0
    seconds, day = 0.0, start.astimezone(BEIJING).date()
    last = end.astimezone(BEIJING).date()
    while day <= last:
        if calendar.is_workday(day):
            opens = datetime.combine(day, day_start, tzinfo=BEIJING)
            closes = datetime.combine(day, day_end, tzinfo=BEIJING)
            seconds += max((min(end, closes) - max(start, opens)).total_seconds(), 0.0)
        day += timedelta(days=1)
    return seconds / 3600


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
