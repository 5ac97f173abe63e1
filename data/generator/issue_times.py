"""When issues are reported: the calendar of seasons, summer rain and weekdays, each category's
daily rhythm, and the channel a report comes through at that time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from data.generator.drawing import choose
from data.generator.reports import ISSUE_MIX
from gis.rules import BEIJING_OFFSET, BEIJING_TZ_NAME

_BEIJING_SECONDS = int(BEIJING_OFFSET.utcoffset(None).total_seconds())
CHANNELS = ("worker", "hotline_12345", "wechat", "app")

_WEEKEND_FACTOR = 0.55  # grid workers mostly patrol on weekdays; offices answer less too


@dataclass
class Calendar:
    """The year of days that ends on the day the data is seen, and the weather and seasons that
    drive reports. Seasons go by month and day, so they hold wherever the year starts."""

    start: int  # epoch seconds of the first day's 00:00, Beijing time
    seen_at: int  # epoch seconds of the moment the data is seen: nothing happens after it
    month: np.ndarray
    day: np.ndarray
    weekend: np.ndarray
    heating: np.ndarray  # 15 November - 15 March, Shanxi's heating season
    rain: np.ndarray  # how wet the last days were: 0 dry, ~1 after rain, ~2 after a storm

    @classmethod
    def ending(cls, today: date, seen_at: int, rng) -> Calendar:
        """The 365 days (366 across a 29 February) up to and including ``today``."""
        last = pd.Timestamp(today)
        days = pd.date_range(last - pd.DateOffset(years=1) + pd.Timedelta(days=1), last, freq="D")
        month, day = days.month.to_numpy(), days.day.to_numpy()
        heating = (month <= 2) | ((month == 3) & (day <= 15)) | ((month == 11) & (day >= 15)) | \
            (month == 12)
        start = int(days[0].tz_localize(BEIJING_TZ_NAME).timestamp())
        return cls(start, seen_at, month, day, days.day_of_week.to_numpy() >= 5, heating,
                   _rain_effect(month, rng))


def _rain_effect(month: np.ndarray, rng) -> np.ndarray:
    """Rainy days of July and August (a dozen or so, a few of them storms) and the two days
    after each, when drains back up."""
    summer = np.flatnonzero((month == 7) | (month == 8))
    wet = rng.choice(summer, int(rng.integers(11, 17)), replace=False)
    amount = np.where(rng.random(len(wet)) < 0.25, 2.0, 1.0)
    effect = np.zeros(len(month))
    for lag, share in ((0, 1.0), (1, 0.6), (2, 0.3)):
        later = wet + lag < len(month)  # the days after the last day of the data are not in it
        np.add.at(effect, wet[later] + lag, share * amount[later])
    return effect


def _day_weights(category: str, cal: Calendar) -> np.ndarray:
    """Relative chance of a report on each day: seasons, weather, weekdays."""
    m, ones = cal.month, np.ones(len(cal.month))
    start_of_heating = (m == 11) & (cal.day <= 30)  # air in the pipes, radiators cold
    season = {
        "heating_failure": np.where(cal.heating, 1.0 + 0.8 * start_of_heating + 0.3 * (m == 1),
                                    0.02),
        "sewer_blocked": 1.0 + 8.0 * cal.rain,
        "cover_damaged": 1.0 + 2.0 * cal.rain,
        "road_damaged": 1.0 + 3.0 * cal.rain + 0.8 * (m == 3),  # spring thaw breaks the asphalt
        "garbage": 1.0 + 0.3 * np.isin(m, (6, 7, 8)),
        "noise": 1.0 + 0.6 * np.isin(m, (5, 6, 7, 8, 9)),
        "illegal_construction": np.where(np.isin(m, range(4, 11)), 1.6, 0.5),
        "streetlight_out": 1.0 + 0.4 * np.isin(m, (11, 12, 1, 2)),
        "elevator_failure": 1.0 + 0.2 * np.isin(m, (6, 7, 8)),
    }.get(category, ones)
    return season * np.where(cal.weekend, _WEEKEND_FACTOR, 1.0)


_DAYTIME = (0.1, 0.05, 0.05, 0.05, 0.1, 0.2, 0.5, 1.0, 1.6, 1.8, 1.7, 1.3, 0.8, 0.8, 1.5, 1.6,
            1.5, 1.2, 0.9, 0.8, 0.6, 0.4, 0.25, 0.15)
_HOURS = {
    "noise": (1.2, 0.8, 0.4, 0.2, 0.1, 0.1, 0.3, 0.5, 0.6, 0.6, 0.6, 0.5, 0.5, 0.6, 0.6, 0.6,
              0.6, 0.7, 1.0, 1.6, 2.2, 2.4, 2.2, 1.8),
    "streetlight_out": (0.5, 0.2, 0.1, 0.1, 0.1, 0.3, 0.8, 1.2, 1.2, 1.0, 0.7, 0.5, 0.4, 0.4,
                        0.5, 0.5, 0.5, 0.7, 1.4, 2.0, 2.0, 1.7, 1.2, 0.8),
    "heating_failure": (0.3, 0.1, 0.1, 0.1, 0.2, 0.6, 1.4, 1.8, 1.6, 1.2, 1.0, 0.9, 0.8, 0.8,
                        0.9, 0.9, 1.0, 1.2, 1.6, 1.9, 1.9, 1.5, 1.0, 0.6),
}


def report_times(kinds: np.ndarray, cal: Calendar, rng) -> np.ndarray:
    """Epoch seconds of each report: day by the category's calendar, hour by its daily rhythm.

    ``kinds`` are positions in ``ISSUE_MIX`` (integers are much faster than strings at 1M)."""
    out = np.empty(len(kinds), dtype=np.int64)
    for k, code in enumerate(ISSUE_MIX):
        rows = np.flatnonzero(kinds == k)
        if len(rows) == 0:
            continue
        days = choose(_day_weights(code, cal), len(rows), rng)
        hours = choose(np.asarray(_HOURS.get(code, _DAYTIME)), len(rows), rng)
        out[rows] = cal.start + days * 86_400 + hours * 3_600 + rng.integers(0, 3_600, len(rows))
    # Seen during its last day, the data cannot hold that day's later hours: such reports move
    # a week back, to the same weekday and hour, keeping the weekly and daily rhythms.
    late = out > cal.seen_at
    out[late] -= 7 * 86_400
    return out


def channels(reported: np.ndarray, rng) -> np.ndarray:
    """Grid workers report on weekday working hours; residents call 12345 or write any time."""
    local = reported + _BEIJING_SECONDS
    hour = (local % 86_400) // 3_600
    weekday = ((local // 86_400) + 3) % 7 < 5  # 1970-01-01 was a Thursday
    p_worker = np.where(weekday & (hour >= 8) & (hour < 18), 0.55, 0.08)
    u = rng.random(len(reported))
    rest = (u - p_worker) / (1 - p_worker)
    citizen = np.where(rest < 0.45, 1, np.where(rest < 0.75, 2, 3))
    return np.array(CHANNELS, dtype=object)[np.where(u < p_worker, 0, citizen)]
