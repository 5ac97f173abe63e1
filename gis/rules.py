"""The domain's vocabulary, defined once: issue statuses and the workflow between them, when a
case is overdue and when it was closed on time, Beijing time, and the grid-tagging tolerance.

Every module, schema, migration check and the demo generator takes these from here, and the SQL
fragments below are derived from the same Python values, so that an endpoint cannot count an
issue as open, overdue or on time differently from another.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

# -- time ------------------------------------------------------------------------------------------
BEIJING = ZoneInfo("Asia/Shanghai")
BEIJING_TZ_NAME = "Asia/Shanghai"
# Beijing time has been UTC+8 all year since 1992 (no daylight saving), long before any issue
# GridMap holds: a fixed offset is exact, and SQL can count days and weeks by epoch arithmetic.
BEIJING_OFFSET = timezone(timedelta(hours=8))

# -- statuses and the closed loop (信息收集 → 案卷建立 → 任务派遣 → 任务处理 → 处理反馈 → 核查结案) --
ISSUE_STATUSES = ("reported", "accepted", "dispatched", "in_progress", "resolved", "closed",
                  "rejected", "reopened")
# The loop has ended for these: they are not open and never overdue. 'closed' is the only one
# that counts as closed (结案); 'rejected' cases were never taken on.
FINAL_STATUSES = ("closed", "rejected")
CLOSED_STATUS = "closed"
OPEN_STATUSES = tuple(s for s in ISSUE_STATUSES if s not in FINAL_STATUSES)
# Filter values that stand for a group of statuses.
STATUS_GROUPS = {"open": OPEN_STATUSES, "closed": FINAL_STATUSES}
# 'reopened' is rework after a failed verification (返工).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "reported": ("accepted", "rejected"),
    "accepted": ("dispatched", "rejected"),
    "dispatched": ("in_progress",),
    "in_progress": ("resolved",),
    "resolved": ("closed", "reopened"),
    "reopened": ("dispatched", "in_progress"),
    "closed": (),
    "rejected": (),
}
STATUS_NAMES_ZH = {
    "reported": "已上报", "accepted": "已立案", "dispatched": "已派遣", "in_progress": "处置中",
    "resolved": "已处置", "closed": "已结案", "rejected": "不予立案", "reopened": "返工",
}

# -- geotagging --------------------------------------------------------------------------------------
# A point outside every grid but within this many metres of one is tagged to the nearest
# (``nearest``); farther away it stays unassigned for the community to triage.
DEFAULT_TOLERANCE_M = 50.0

# -- geometry input --------------------------------------------------------------------------------
# Most vertices accepted in one submitted geometry (a grid, a building); more is refused with 422.
MAX_VERTICES = 10_000


def is_final(status: str) -> bool:
    return status in FINAL_STATUSES


def is_overdue(status: str, due_at: datetime | None, now: datetime) -> bool:
    """Open and past its due time. A case whose category sets no time limit (``due_at`` None)
    is never overdue."""
    return status not in FINAL_STATUSES and due_at is not None and due_at < now


def closed_on_time(status: str, closed_at: datetime | None, due_at: datetime | None) -> bool | None:
    """For the on-time closure rate (按期结案率): True/False for a closed case that had a due
    time, None for every other case (it is not in the rate's denominator)."""
    if status != CLOSED_STATUS or due_at is None or closed_at is None:
        return None
    return closed_at <= due_at


# -- the same rules as SQL, over an ``issues`` row aliased ``t`` ------------------------------------
def _sql_list(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


FINAL_SQL = _sql_list(FINAL_STATUSES)
STATUSES_SQL = _sql_list(ISSUE_STATUSES)


def open_sql(t: str = "i") -> str:
    return f"{t}.status NOT IN {FINAL_SQL}"


def overdue_sql(t: str = "i", now: str = "now()") -> str:
    """A boolean, never NULL: open, with a due time, and past it."""
    return f"({open_sql(t)} AND {t}.due_at IS NOT NULL AND {t}.due_at < {now})"


def closed_sql(t: str = "i") -> str:
    return f"{t}.status = '{CLOSED_STATUS}'"


def rated_sql(t: str = "i") -> str:
    """In the on-time rate's denominator: closed and had a due time."""
    return f"({closed_sql(t)} AND {t}.due_at IS NOT NULL)"


def on_time_sql(t: str = "i") -> str:
    """In the on-time rate's numerator: closed by its due time."""
    return f"({rated_sql(t)} AND {t}.closed_at <= {t}.due_at)"


def on_time_rate(on_time: int, rated: int) -> float | None:
    """按期结案率: closed by the due time / closed cases that had a due time (None when none)."""
    return round(on_time / rated, 4) if rated else None
