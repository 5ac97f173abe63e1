"""How urgent each generated case is, and its deadlines by the live rule (``gis.worktime``): the
limit of each step (accept, dispatch, handle, verify) for its category and urgency, counted in
working days of the official calendar (调休 included) or in elapsed minutes or hours.

The generator holds no database, so it counts with the official calendar alone (no local
overrides) and the default end of the working day (17:30); the demo loader replays each case's
steps with the database's calendar. Deadlines are counted for whole arrays at once: the working
days of the span are looked up once (:class:`WorkdayTable`), and a limit of N working days from
a day is then an index into their running count, which gives the same day as
:meth:`gis.worktime.calendar.WorkCalendar.nth_workday_after`.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from data.generator.reports import ISSUE_MIX
from gis.db.category_seeds import ISSUE_CATEGORIES
from gis.rules import DEFAULT_WORKDAY_END, LIMIT_UNITS, PROMISE_STEP, STEPS, URGENCIES
from gis.worktime.calendar import WorkCalendar

# The share of each category's reports that are urgent (紧急): a missing cover or a trapped lift
# often, a neighbours' quarrel seldom.
URGENT_SHARE = {
    "cover_damaged": 0.5, "elevator_failure": 0.3, "heating_failure": 0.2, "sewer_blocked": 0.15,
    "road_damaged": 0.1, "illegal_construction": 0.1, "noise": 0.08, "streetlight_out": 0.05,
    "garbage": 0.05, "parking_chaos": 0.05, "neighbour_dispute": 0.03, "other": 0.03,
    "greenery": 0.08,
}
_SHARE = np.array([URGENT_SHARE[c] for c in ISSUE_MIX])
URGENT = URGENCIES.index("urgent")
MINUTES, HOURS, WORKDAYS = (LIMIT_UNITS.index(u) for u in ("minutes", "hours", "workdays"))
_UNIT_SECONDS = {MINUTES: 60, HOURS: 3_600}
STEP = {s: i for i, s in enumerate(STEPS)}
_BY_CODE = {c.code: c for c in ISSUE_CATEGORIES}


def _limit_table() -> np.ndarray:
    """``[category in ISSUE_MIX, urgency, step, (value, unit)]`` from the category seeds."""
    table = np.zeros((len(ISSUE_MIX), len(URGENCIES), len(STEPS), 2), np.int64)
    for k, code in enumerate(ISSUE_MIX):
        for seed in _BY_CODE[code].limits:
            table[k, URGENCIES.index(seed.urgency), STEP[seed.step]] = \
                (seed.value, LIMIT_UNITS.index(seed.unit))
    return table


LIMITS = _limit_table()
_BEIJING = 8 * 3_600  # Beijing is UTC+8 all year
_WORKDAY_END = DEFAULT_WORKDAY_END.hour * 3_600 + DEFAULT_WORKDAY_END.minute * 60
_EPOCH = date(1970, 1, 1)


def draw_urgency(kinds: np.ndarray, rng) -> np.ndarray:
    """Each case's urgency as a position in ``URGENCIES``."""
    return np.where(rng.random(len(kinds)) < _SHARE[kinds], URGENT, 1 - URGENT)


def beijing_day(epoch: np.ndarray) -> np.ndarray:
    """The Beijing day (days since 1970-01-01) of each epoch second."""
    return (np.asarray(epoch) + _BEIJING) // 86_400


class WorkdayTable:
    """The official calendar's working days from ``first`` to ``last`` (Beijing day numbers):
    deadlines of many steps at once. Starts outside the span are an error."""

    def __init__(self, first: int, last: int) -> None:
        calendar = WorkCalendar()
        days = range(int(first), int(last) + 1)
        working = np.array([calendar.is_workday(_EPOCH + timedelta(days=d)) for d in days])
        self.first, self.last = int(first), int(last)
        self.count = np.cumsum(working)  # working days from ``first`` up to each day

    @classmethod
    def around(cls, start: int, end: int) -> WorkdayTable:
        """A table for steps starting from epoch second ``start`` to ``end``, with room after
        ``end`` for the longest limits (and an extension of them)."""
        return cls(int(beijing_day(start)) - 1, int(beijing_day(end)) + 240)

    def deadline(self, start: np.ndarray, value: np.ndarray, unit: np.ndarray) -> np.ndarray:
        """Epoch seconds when a step started at ``start`` with a limit of ``value`` ``unit``
        (positions in LIMIT_UNITS) must be done: :func:`gis.worktime.limits.deadline`."""
        start, value, unit = np.broadcast_arrays(np.asarray(start, np.int64),
                                                 np.asarray(value, np.int64),
                                                 np.asarray(unit, np.int64))
        out = start + value * np.where(unit == MINUTES, _UNIT_SECONDS[MINUTES],
                                       _UNIT_SECONDS[HOURS])
        days = unit == WORKDAYS
        if days.any():
            out[days] = self._workdays(start[days], value[days])
        return out

    def _workdays(self, start: np.ndarray, n: np.ndarray) -> np.ndarray:
        """The end of the working day of the n-th working day after each start's day."""
        day = beijing_day(start) - self.first
        if day.min(initial=0) < 0 or day.max(initial=0) >= len(self.count):
            raise ValueError(f"a step starts outside the calendar's days {self.first}-{self.last}")
        target = self.count[day] + n
        later = np.searchsorted(self.count, target, side="left")
        if later.max(initial=0) >= len(self.count):
            raise ValueError("a deadline falls after the calendar's last day")
        return (self.first + later) * 86_400 - _BEIJING + _WORKDAY_END


def step_limit(kinds: np.ndarray, urgency: np.ndarray, step: str) -> tuple[np.ndarray, np.ndarray]:
    """(value, unit) of each case's limit for ``step``."""
    row = LIMITS[kinds, urgency, STEP[step]]
    return row[..., 0], row[..., 1]


def promised_due(table: WorkdayTable, reported: np.ndarray, kinds: np.ndarray,
                 urgency: np.ndarray) -> np.ndarray:
    """Epoch seconds of each case's ``due_at`` as reported: the handling limit counted from the
    report (gis.worktime.steps.promised_due)."""
    return table.deadline(reported, *step_limit(kinds, urgency, PROMISE_STEP))
