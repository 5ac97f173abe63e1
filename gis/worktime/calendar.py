"""Working days as the State Council's annual holiday notice sets them, 调休 included.

The notice for each year comes from the maintained ``chinesecalendar`` package (imported as
``chinese_calendar``), which knows the years its release was built with. A local decision (a
city's extra day off, a flood day) is an override, which wins over the package; a year the
package does not know yet falls back to Monday to Friday, plus the overrides, and is reported as
such (:meth:`WorkCalendar.fallback_years`) so that an administrator can update the package or
enter the notice as overrides. No database here: the overrides are handed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from functools import lru_cache

import chinese_calendar

# The most working days a limit may count: a bound that keeps a counting loop finite even on a
# calendar whose overrides make every day a holiday.
MAX_WORKDAYS = 366
_SEARCH_DAYS = 4 * MAX_WORKDAYS


@lru_cache(maxsize=1)
def official_years() -> frozenset[int]:
    """The years the installed package has the holiday notice of."""
    days = set(chinese_calendar.holidays) | set(chinese_calendar.workdays)
    return frozenset(d.year for d in days)


@lru_cache(maxsize=4096)
def official_is_workday(day: date) -> bool | None:
    """The package's answer for ``day``; None for a year it does not know. Kept: the package's
    data is fixed for the process, and each report's deadlines ask about the same few weeks."""
    if day.year not in official_years():
        return None
    return chinese_calendar.is_workday(day)


class WorkCalendar:
    """Working days: an override if there is one, else the official calendar, else Monday to
    Friday for a year the official calendar does not know."""

    def __init__(self, overrides: Mapping[date, bool] | None = None) -> None:
        self._overrides = dict(overrides or {})

    @property
    def overrides(self) -> dict[date, bool]:
        return dict(self._overrides)

    def is_workday(self, day: date) -> bool:
        if day in self._overrides:
            return self._overrides[day]
        official = official_is_workday(day)
        return day.weekday() < 5 if official is None else official

    def source(self, day: date) -> str:
        """Where the answer for ``day`` comes from: 'override', 'official' or 'fallback'."""
        if day in self._overrides:
            return "override"
        return "official" if day.year in official_years() else "fallback"

    def nth_workday_after(self, day: date, n: int) -> date:
        """The ``n``-th working day after ``day`` (``day`` itself never counts); n >= 1."""
        if not 1 <= n <= MAX_WORKDAYS:
            raise ValueError(f"a limit counts 1 to {MAX_WORKDAYS} working days, got {n}")
        counted, current = 0, day
        for _ in range(_SEARCH_DAYS):
            current += timedelta(days=1)
            if self.is_workday(current):
                counted += 1
                if counted == n:
                    return current
        raise ValueError(f"no {n} working days within {_SEARCH_DAYS} days after {day} "
                         "(do the overrides make every day a holiday?)")

    def workdays_between(self, first: date, last: date) -> int:
        """Working days in [first, last]."""
        days = (last - first).days + 1
        return sum(self.is_workday(first + timedelta(days=k)) for k in range(max(days, 0)))

    @staticmethod
    def fallback_years(years: Iterable[int]) -> list[int]:
        """Those of ``years`` the official calendar does not know (Monday to Friday applies)."""
        return sorted(y for y in set(years) if y not in official_years())
