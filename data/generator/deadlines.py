"""How urgent each generated case is, and the deadline promised to its resident, by the live rule
(``gis.worktime``): the handling limit of its category and urgency counted from its report, in
working days of the official calendar (调休 included) or in elapsed hours.

The generator holds no database, so it counts with the official calendar alone (no local
overrides) and the default end of the working day (17:30); the demo loader replays each case's
steps with the database's calendar.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from data.generator.reports import ISSUE_MIX
from gis.db.category_seeds import ISSUE_CATEGORIES
from gis.rules import BEIJING, DEFAULT_WORKDAY_END, PROMISE_STEP, URGENCIES
from gis.worktime.calendar import WorkCalendar
from gis.worktime.limits import Limit, deadline

# The share of each category's reports that are urgent (紧急): a missing cover or a trapped lift
# often, a neighbours' quarrel seldom.
URGENT_SHARE = {
    "cover_damaged": 0.5, "elevator_failure": 0.3, "heating_failure": 0.2, "sewer_blocked": 0.15,
    "road_damaged": 0.1, "illegal_construction": 0.1, "noise": 0.08, "streetlight_out": 0.05,
    "garbage": 0.05, "parking_chaos": 0.05, "neighbour_dispute": 0.03, "other": 0.03,
}
_SHARE = np.array([URGENT_SHARE[c] for c in ISSUE_MIX])
_BY_CODE = {c.code: c for c in ISSUE_CATEGORIES}
# The handling limit of each category in ISSUE_MIX (rows) at each urgency (columns).
HANDLE_LIMITS = [[next(Limit(s.value, s.unit) for s in _BY_CODE[code].limits
                       if s.urgency == urgency and s.step == PROMISE_STEP)
                  for urgency in URGENCIES] for code in ISSUE_MIX]
URGENT = URGENCIES.index("urgent")


def draw_urgency(kinds: np.ndarray, rng) -> np.ndarray:
    """Each case's urgency as a position in ``URGENCIES``."""
    return np.where(rng.random(len(kinds)) < _SHARE[kinds], URGENT, 1 - URGENT)


def promised_due(reported: np.ndarray, kinds: np.ndarray, urgency: np.ndarray) -> np.ndarray:
    """Epoch seconds of each case's ``due_at``. A limit in working days depends only on the
    report's day, so each (day, limit) is counted once: a million cases take a few thousand calls
    of the live rule."""
    calendar = WorkCalendar()
    due = np.empty(len(reported), np.int64)
    day = (reported + 8 * 3600) // 86_400  # the Beijing day (UTC+8, no daylight saving)
    for k, row in enumerate(HANDLE_LIMITS):
        for u, limit in enumerate(row):
            mine = np.flatnonzero((kinds == k) & (urgency == u))
            if limit.unit != "workdays":  # elapsed: the same length from any start
                due[mine] = reported[mine] + _due(0, limit, calendar)
                continue
            days, where = np.unique(day[mine], return_inverse=True)
            ends = np.array([_due(int(d) * 86_400 - 8 * 3600, limit, calendar) for d in days],
                            np.int64)
            due[mine] = ends[where.ravel()]
    return due


def _due(epoch: int, limit: Limit, calendar: WorkCalendar) -> int:
    start = datetime.fromtimestamp(epoch, UTC).astimezone(BEIJING)
    return int(deadline(start, limit, calendar, DEFAULT_WORKDAY_END).timestamp())
