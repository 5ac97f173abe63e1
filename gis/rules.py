"""The domain's vocabulary, defined once: issue statuses and the workflow between them, when a
case is overdue and when it was closed on time, Beijing time, and the grid-tagging tolerance.

Every module, schema, migration check and the demo generator takes these from here, and the SQL
fragments below are derived from the same Python values, so that an endpoint cannot count an
issue as open, overdue or on time differently from another.
"""

from __future__ import annotations

import math
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

# -- time ------------------------------------------------------------------------------------------
BEIJING_TZ_NAME = "Asia/Shanghai"
BEIJING = ZoneInfo(BEIJING_TZ_NAME)
# Beijing time has been UTC+8 all year since 1992 (no daylight saving), long before any issue
# GridMap holds: a fixed offset is exact, and SQL can count days and weeks by epoch arithmetic.
BEIJING_OFFSET = timezone(timedelta(hours=8))

# -- statuses and the closed loop (信息收集 → 案卷建立 → 任务派遣 → 任务处理 → 处理反馈 → 核查结案) --
ISSUE_STATUSES = ("reported", "accepted", "dispatched", "in_progress", "resolved", "closed",
                  "rejected", "reopened", "on_hold")
# The loop has ended for these: they are not open and never overdue. 'closed' is the only one
# that counts as closed (结案); 'rejected' cases were never taken on.
FINAL_STATUSES = ("closed", "rejected")
CLOSED_STATUS = "closed"
OPEN_STATUSES = tuple(s for s in ISSUE_STATUSES if s not in FINAL_STATUSES)
# Filter values that stand for a group of statuses ('closed' is a status of its own, not a group).
STATUS_GROUPS = {"open": OPEN_STATUSES, "final": FINAL_STATUSES}
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
    "on_hold": (),
}
# Every status a transition can lead to (not the first, 'reported', nor 'on_hold', which only
# the branch action 'hold' enters).
TRANSITION_TARGETS = tuple(s for s in ISSUE_STATUSES if any(s in to for to in TRANSITIONS.values()))
# Each status by the stage of the closed loop it stands for (Chinese, English).
STATUS_NAMES: dict[str, tuple[str, str]] = {
    "reported": ("信息收集", "Reported"),
    "accepted": ("案卷建立", "Accepted"),
    "dispatched": ("任务派遣", "Dispatched"),
    "in_progress": ("任务处理", "In progress"),
    "resolved": ("处理反馈", "Resolved"),
    "closed": ("核查结案", "Closed"),
    "rejected": ("不予立案", "Rejected"),
    "reopened": ("返工", "Reopened"),
    "on_hold": ("挂账", "On hold"),
}

# -- the command centre's branches (docs/ARCHITECTURE.md, "Dispatch and the branches") ----------
# 挂账: a department parks a case it cannot fix now (funds, a court order, the season). The case
# stays open and counted, but no step runs and it is never overdue; 'resume' takes it up again
# with a fresh handling limit.
HOLD_STATUS = "on_hold"
# Open statuses whose time does not run: never overdue.
UNTIMED_STATUSES = FINAL_STATUSES + (HOLD_STATUS,)
# A dispatcher's dispatch: accepted (or reworked) -> dispatched, to a department or to the grid
# worker (community matters). A dispatch rule (category x region) does it on acceptance.
DISPATCH_MOVE = (("accepted", "reopened"), "dispatched")
# The branch actions that move a case, outside TRANSITIONS (which the generic transitions
# endpoint follows): from which statuses, to which status.
BRANCH_MOVES: dict[str, tuple[tuple[str, ...], str]] = {
    "dispatch": DISPATCH_MOVE,
    "return": (("dispatched", "in_progress"), "accepted"),  # 回退: not ours, back to the dispatcher
    "hold": (("dispatched", "in_progress", "reopened"), HOLD_STATUS),  # 挂账
    "resume": ((HOLD_STATUS,), "in_progress"),  # 解除挂账
}
# The statuses a department may ask for more time in (延期申请), and a leader may issue a
# supervision notice on (督办): a case being handled / any open case.
EXTENSION_STATUSES = ("dispatched", "in_progress", "reopened")
SUPERVISION_STATUSES = tuple(s for s in ISSUE_STATUSES if s not in FINAL_STATUSES)
# The kinds of a case's history rows (issue_events.kind). Moves change the status ('move' is a
# plain transition, a report, a check on site); the others leave it (to_status NULL).
MOVE_EVENT_KINDS = ("move", "dispatch", "return", "hold", "resume")
NOTE_EVENT_KINDS = ("extension_request", "extension_approved", "extension_refused",
                    "supervise", "supervision_reply")
EVENT_KINDS = MOVE_EVENT_KINDS + NOTE_EVENT_KINDS
EVENT_KIND_NAMES = {
    "move": ("流转", "move"), "dispatch": ("派遣", "dispatch"), "return": ("回退", "return"),
    "hold": ("挂账", "hold"), "resume": ("解除挂账", "resume"),
    "extension_request": ("延期申请", "extension requested"),
    "extension_approved": ("延期批准", "extension approved"),
    "extension_refused": ("延期驳回", "extension refused"),
    "supervise": ("督办", "supervision notice"), "supervision_reply": ("督办回复", "reply to supervision"),
}
# What the in-app notification list tells whom: a step past its deadline (the dispatchers and
# leaders of the case's region), a case returned or an extension asked for (its dispatchers), a
# supervision notice (the department or worker handling the case), an extension decided and a
# supervision answered (who asked).
NOTIFICATION_KINDS = ("overdue", "returned", "extension_request", "extension_decided",
                      "supervision", "supervision_reply")

# -- working time (docs/ARCHITECTURE.md, "Working time") -------------------------------------------
# The steps a case's time limits apply to, names in (Chinese, English). ``verify`` is the check on
# site of a department's fix (核查, the field action 'check'); the 核实 of a report belongs to
# ``accept``.
STEPS = ("accept", "dispatch", "handle", "verify")
STEP_NAMES = {"accept": ("受理/立案", "accept"), "dispatch": ("派遣", "dispatch"),
              "handle": ("处置", "handle"), "verify": ("核查", "verify")}
# The step that runs while a case is in a status; final statuses run none. A move to a status of
# another step ends the running step and starts that one, so rework (resolved -> reopened) starts
# a new handle step and 'reopened' -> 'dispatched' goes on with the same one.
STATUS_STEP = {"reported": "accept", "accepted": "dispatch", "dispatched": "handle",
               "in_progress": "handle", "reopened": "handle", "resolved": "verify"}
# The step whose limit, counted from the report, is the deadline promised to the resident
# (``issues.due_at``).
PROMISE_STEP = "handle"
URGENCIES = ("normal", "urgent")
URGENCY_NAMES = {"normal": ("一般", "normal"), "urgent": ("紧急", "urgent")}
DEFAULT_URGENCY = "normal"
# minutes and hours are elapsed time, around the clock; workdays count working days of the
# official calendar (gis.worktime.limits.deadline).
LIMIT_UNITS = ("minutes", "hours", "workdays")
LIMIT_UNIT_NAMES = {"minutes": ("分钟", "minutes"), "hours": ("小时", "hours"),
                    "workdays": ("个工作日", "working days")}
# The end of the working day, Beijing time: a limit of N working days ends then on the N-th
# working day after the day its step starts (the setting GRIDMAP_WORKDAY_END).
DEFAULT_WORKDAY_END = time(17, 30)
# The start of the working day (the setting GRIDMAP_WORKDAY_START): office hours, from it to the
# end, are what working hours count (gis.worktime.limits.working_hours: the evaluation's
# handling time).
DEFAULT_WORKDAY_START = time(8, 30)

# -- evaluation (综合评价; docs/ARCHITECTURE.md, "Evaluation") -------------------------------------
# Who is evaluated, names in (Chinese, English): the Chinese names are the export's sheet names.
EVALUATION_ROLES = ("department", "worker", "grid", "community")
EVALUATION_ROLE_NAMES = {"department": ("专业部门", "departments"),
                         "worker": ("网格员", "grid workers"), "grid": ("网格", "grids"),
                         "community": ("社区", "communities")}
# Periods: a Beijing calendar week (from Monday), month or quarter; or explicit dates.
EVALUATION_PERIODS = ("week", "month", "quarter")
# What an indicator's number is (a share 0-1, a count, working hours, cases per 1,000
# households) and which way is better.
INDICATOR_UNITS = ("rate", "count", "hours", "per_1000")
INDICATOR_BETTER = ("higher", "lower")
# The indicators of each role: (key, 中文, English, unit, better). The first of each role counts
# cases; a grade needs at least the role's minimum (``evaluation_minimums``) of what its
# indicators judge (gis.queries.evaluation: a department's dispatches, a worker's reports,
# verifications and checks, an area's cases). The weights are data (``evaluation_weights``,
# seeded with DEFAULT_EVALUATION_WEIGHTS).
_CLOSURE = ("closure_rate", "结案率", "closure rate", "rate", "higher")
_ON_TIME = ("on_time_rate", "按期结案率", "on-time closure rate", "rate", "higher")
_AREA_INDICATORS = (("cases", "案件数", "cases", "count", "lower"),
                    ("per_1000_households", "千户案件数", "cases per 1,000 households", "per_1000",
                     "lower"),
                    _CLOSURE, _ON_TIME)
EVALUATION_INDICATORS: dict[str, tuple[tuple[str, str, str, str, str], ...]] = {
    "department": (
        ("dispatched", "派遣数", "dispatches received", "count", "higher"),
        _CLOSURE, _ON_TIME,
        ("rework_rate", "返工率", "rework rate", "rate", "lower"),
        ("extension_rate", "延期率", "extension rate", "rate", "lower"),
        ("return_rate", "回退率", "return rate", "rate", "lower"),
        ("handling_hours", "平均处置时长", "mean handling time", "hours", "lower"),
    ),
    "worker": (
        ("reports", "上报数", "cases reported", "count", "higher"),
        ("valid_report_rate", "有效上报率", "valid report rate", "rate", "higher"),
        ("on_time_verify_rate", "按时核实率", "on-time verification rate", "rate", "higher"),
        ("on_time_check_rate", "按时核查率", "on-time check rate", "rate", "higher"),
        ("self_resolved", "自处理数", "resolved on site", "count", "higher"),
    ),
    "grid": _AREA_INDICATORS,
    "community": _AREA_INDICATORS,
}
# The default weights of the composite score (counts of cases weigh nothing: they are shown).
DEFAULT_EVALUATION_WEIGHTS: dict[str, dict[str, float]] = {
    "department": {"dispatched": 0, "closure_rate": 25, "on_time_rate": 30, "rework_rate": 15,
                   "extension_rate": 10, "return_rate": 10, "handling_hours": 10},
    "worker": {"reports": 0, "valid_report_rate": 30, "on_time_verify_rate": 35,
               "on_time_check_rate": 35, "self_resolved": 0},
    "grid": {"cases": 0, "per_1000_households": 20, "closure_rate": 30, "on_time_rate": 50},
    "community": {"cases": 0, "per_1000_households": 20, "closure_rate": 30, "on_time_rate": 50},
}
# Grades A-E by the lowest composite score each needs (``evaluation_grades``).
GRADES = ("A", "B", "C", "D", "E")
DEFAULT_GRADE_THRESHOLDS = {"A": 90.0, "B": 75.0, "C": 60.0, "D": 40.0, "E": 0.0}
# Fewer than this in a period (see above): no score and no grade.
DEFAULT_MIN_CASES = 5

# -- facilities (部件) ------------------------------------------------------------------------------
FACILITY_STATUSES = ("ok", "damaged", "missing", "repairing")
# What a worker finds when checking a facility on patrol (部件巡检), names in (Chinese, English).
# Each result is also the facility's status afterwards; damaged and missing open a linked case.
FACILITY_CHECK_RESULTS = ("ok", "damaged", "missing")
FACILITY_CHECK_RESULT_NAMES = {"ok": ("正常", "ok"), "damaged": ("损坏", "damaged"),
                               "missing": ("缺失", "missing")}
FACILITY_CHECK_REPORTS = ("damaged", "missing")  # the results that open a case
# The issue category of a damaged or missing facility that no specific category covers (a
# bench, a pavilion); a category covers a facility when its facility_categories name the
# facility's category (gis.db.category_seeds).
FACILITY_DAMAGED_CATEGORY = "facility_damaged"

# -- work on site (现场核实、核查、自处理) -------------------------------------------------------------
# The action a worker takes on site on a case in this status: 核实 (verify a report: valid ->
# accepted, invalid -> rejected with a reason) and 核查 (check a fix: passed -> closed, failed ->
# reopened for rework, with an after photo). Other statuses wait for the office or the department.
FIELD_ACTIONS = {"reported": "verify", "resolved": "check"}
FIELD_ACTION_NAMES = {"verify": ("核实", "verify"), "check": ("核查", "check"),
                      "self_resolve": ("自处理", "resolve on site")}
VERIFY_OUTCOMES = {True: "accepted", False: "rejected"}  # valid? -> status
CHECK_OUTCOMES = {True: "closed", False: "reopened"}  # passed? -> status
# 自处理: a small problem the worker fixes at once, reported and closed in one visit with before
# and after photos. A move of its own, outside TRANSITIONS (which a dispatcher's moves follow):
# one history step from 'reported' to 'closed' with this note, and ``issues.self_resolved``.
SELF_RESOLVE = ("reported", "closed")
SELF_RESOLVED_NOTE = "自处理 / resolved on site"

# -- photos of a case --------------------------------------------------------------------------------
# What a photo shows: the problem as reported (上报), the site before a fix (处置前) and after it
# (处置后, what a check on site compares). Names in (Chinese, English).
PHOTO_KINDS = ("report", "before", "after")
PHOTO_KIND_NAMES = {"report": ("上报照片", "as reported"), "before": ("处置前", "before"),
                    "after": ("处置后", "after")}
# Where a case's location came from: the report's coordinates, or the GPS position in the EXIF
# of its first photo (a report sent with ``location_from_photo``, which has no location until
# that photo arrives).
LOCATION_SOURCES = ("report", "photo")

# -- geotagging --------------------------------------------------------------------------------------
# A point outside every grid but within this many metres of one is tagged to the nearest
# (``nearest``); farther away it stays unassigned for the community to triage.
DEFAULT_TOLERANCE_M = 50.0

# -- map tiles: which facilities a zoom shows -----------------------------------------------------
# Facilities (部件) are thinned on zoomed-out tiles by a fixed per-facility priority: a hash of its
# id, so neighbours along a street spread over the zooms, shifted by the category's importance.
# A facility is shown from its ``min_zoom`` on (so one shown at z is shown at z + 1), every one
# from FACILITY_ALL_ZOOM on; below it a quarter as many per zoom, which keeps the count per tile
# about constant (a tile has a quarter of the area of the one above it). At a city's density
# (~8,500 a km²) that is ~600 a tile at z17 and on average the same at every zoom above it.
FACILITY_FIRST_ZOOM = 10  # the facilities layer starts here
FACILITY_ALL_ZOOM = 17
# Rare landmarks show this many zooms earlier (each zoom: 4x as likely shown).
FACILITY_ZOOM_SHIFT = {"toilet": 4, "pavilion": 3, "stage": 3, "fitness": 2}
_HASH_MULTIPLIER = 2654435761  # Knuth's multiplicative hash, modulo 2^32: ids spread evenly
_HASH_MODULUS = 2 ** 32


def facility_min_zoom(facility_id: int, category: str) -> int:
    """The first zoom whose tiles show the facility (:data:`FACILITY_ALL_ZOOM` at the latest)."""
    u = ((facility_id * _HASH_MULTIPLIER) % _HASH_MODULUS + 0.5) / _HASH_MODULUS
    level = math.floor(math.log(1 / u) / math.log(4))
    zoom = FACILITY_ALL_ZOOM - FACILITY_ZOOM_SHIFT.get(category, 0) - level
    return min(FACILITY_ALL_ZOOM, max(FACILITY_FIRST_ZOOM, zoom))


def facility_min_zoom_sql(t: str | None = "f") -> str:
    """:func:`facility_min_zoom` over the ``facilities`` row ``t`` (None: unqualified columns, as a
    generated column's expression needs; the expression is immutable)."""
    t = f"{t}." if t else ""
    shifts = " ".join(f"WHEN '{c}' THEN {s}" for c, s in FACILITY_ZOOM_SHIFT.items())
    u = f"((({t}id * {_HASH_MULTIPLIER}) % {_HASH_MODULUS})::float8 + 0.5) / {_HASH_MODULUS}"
    return (f"LEAST({FACILITY_ALL_ZOOM}, GREATEST({FACILITY_FIRST_ZOOM}, "
            f"{FACILITY_ALL_ZOOM} - (CASE {t}category {shifts} ELSE 0 END) "
            f"- floor(ln(1 / ({u})) / ln(4))::int))")


# Issues are placed on tiles by their Web Mercator position in integer pixels of a world 2^30
# pixels wide (level 30: zoom 18 at 4096 tile units), stored beside the point: a zoom-z tile
# and its cells are bit shifts of it, the same at every zoom.
WORLD_LEVEL = 30
_MERCATOR_LAT = 85.0511287798


def world_pixel(lon: float, lat: float) -> tuple[int, int]:
    """(wx, wy) of a WGS84 point, y from the north; what :func:`world_pixel_sql` computes."""
    world = 2 ** WORLD_LEVEL
    lat = min(_MERCATOR_LAT, max(-_MERCATOR_LAT, lat))
    x = math.floor((lon + 180) / 360 * world)
    y = math.floor((1 - math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) / math.pi) / 2 * world)
    return min(world - 1, max(0, x)), min(world - 1, max(0, y))


def world_pixel_sql(axis: str, geom: str = "geom") -> str:
    """:func:`world_pixel`'s ``x`` or ``y`` of a point column (immutable: a generated column)."""
    world = 2 ** WORLD_LEVEL
    if axis == "x":
        value = f"floor((ST_X({geom}) + 180) / 360 * {world})"
    else:
        lat = f"LEAST({_MERCATOR_LAT}, GREATEST(-{_MERCATOR_LAT}, ST_Y({geom})))"
        value = f"floor((1 - ln(tan(pi() / 4 + radians({lat}) / 2)) / pi()) / 2 * {world})"
    return f"LEAST({world - 1}, GREATEST(0, {value}))::int"


# -- geometry input --------------------------------------------------------------------------------
# Most vertices accepted in one submitted geometry (a grid, a building); more is refused with 422.
MAX_VERTICES = 10_000


def is_overdue(status: str, due_at: datetime | None, now: datetime) -> bool:
    """Open, its time running (not on hold) and past its due time. A case whose category sets no
    time limit (``due_at`` None) is never overdue."""
    return status not in UNTIMED_STATUSES and due_at is not None and due_at < now


# -- the same rules as SQL, over an ``issues`` row aliased ``t`` ------------------------------------
def _sql_list(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


FINAL_SQL = _sql_list(FINAL_STATUSES)
UNTIMED_SQL = _sql_list(UNTIMED_STATUSES)


def open_sql(t: str = "i") -> str:
    return f"{t}.status NOT IN {FINAL_SQL}"


def field_action_sql(t: str = "i") -> str:
    """The :data:`FIELD_ACTIONS` action for the row's status, NULL for none."""
    whens = " ".join(f"WHEN '{status}' THEN '{action}'" for status, action in FIELD_ACTIONS.items())
    return f"(CASE {t}.status {whens} END)"


def overdue_sql(t: str = "i", now: str = "now()") -> str:
    """A boolean, never NULL: open and not on hold, with a due time, and past it."""
    return f"({t}.status NOT IN {UNTIMED_SQL} AND {t}.due_at IS NOT NULL AND {t}.due_at < {now})"


def step_overdue_sql(s: str = "s", now: str = "now()") -> str:
    """A step of a case (an ``issue_steps`` row aliased ``s``) is overdue: not done, with a
    deadline, past it. A step ends when its case moves on, so an open step belongs to an open
    case."""
    return f"({s}.done_at IS NULL AND {s}.due_at IS NOT NULL AND {s}.due_at < {now})"


def overdue_now_sql(t: str = "i", s: str = "s", now: str = "now()") -> str:
    """Overdue now, as the dashboard counts and lists it: the case ``t`` past its promised
    deadline (:func:`overdue_sql`), or its running step (an ``issue_steps`` row ``s`` joined
    where ``done_at IS NULL``, NULL without one) past its own (:func:`step_overdue_sql`). A
    boolean, never NULL. A case has at most one running step (``issue_steps_one_running``), so
    the cases it takes in are those past their deadline and those whose running step is late."""
    return f"({overdue_sql(t, now)} OR {step_overdue_sql(s, now)})"


def is_step_overdue(due_at: datetime | None, done_at: datetime | None, now: datetime) -> bool:
    return done_at is None and due_at is not None and due_at < now


def step_rated_sql(s: str = "s") -> str:
    """A step that can be on time or late: done, and it had a deadline."""
    return f"({s}.done_at IS NOT NULL AND {s}.due_at IS NOT NULL)"


def step_on_time_sql(s: str = "s") -> str:
    """A step done by its deadline (按时: the evaluation's 按时核实率 and 按时核查率)."""
    return f"({step_rated_sql(s)} AND {s}.done_at <= {s}.due_at)"


def closed_sql(t: str = "i") -> str:
    return f"{t}.status = '{CLOSED_STATUS}'"


def hours_to_close_sql(t: str = "i") -> str:
    """Hours from report to closing of the issue ``t``: the float8 the statistics' median
    orders by (NULL without a closing time)."""
    return f"(extract(epoch FROM {t}.closed_at - {t}.reported_at) / 3600)::float8"


def rated_sql(t: str = "i") -> str:
    """In the on-time rate's denominator: closed and had a due time."""
    return f"({closed_sql(t)} AND {t}.due_at IS NOT NULL)"


def on_time_sql(t: str = "i") -> str:
    """In the on-time rate's numerator: closed by its due time."""
    return f"({rated_sql(t)} AND {t}.closed_at <= {t}.due_at)"


def on_time_rate(on_time: int, rated: int) -> float | None:
    """按期结案率: closed by the due time / closed cases that had a due time (None when none)."""
    return round(on_time / rated, 4) if rated else None


# --- people ------------------------------------------------------------------------------------
# Roles: the grid worker (their grids), the leader and the command centre's dispatcher (a region:
# community, street or district), department staff (the cases dispatched to their department)
# and the administrator. Names in (Chinese, English), as a roster or the admin page shows them.
ROLES = ("worker", "leader", "dispatcher", "department", "admin")
ROLE_NAMES = {
    "worker": ("网格员", "grid worker"),
    "leader": ("领导", "leader"),
    "dispatcher": ("派遣员", "dispatcher"),
    "department": ("部门人员", "department staff"),
    "admin": ("管理员", "administrator"),
}
REGION_ROLES = ("leader", "dispatcher")  # scoped by a region of the district → community tree
REGION_LEVELS = ("district", "street", "community")

# Log-in lock-out (per username, across processes): this many failures in a row lock it this long.
LOCKOUT_FAILURES = 5
LOCKOUT_MINUTES = 15
# The audit trail is kept at least this long (等保 2.0 asks for six months).
AUDIT_RETENTION_DAYS = 180
