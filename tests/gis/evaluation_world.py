"""A small world for the evaluation's tests, built inside the test's rolled-back transaction: a
community of two grids under the demo's street, two departments, two grid workers who hand a grid
over in the middle of March 2024, and cases with whole histories (dispatches, returns, holds,
extensions, rework, checks, each move by its actor) written straight into ``issues``, ``issue_events``, ``issue_steps``
and ``extension_requests``. March 2024 is long before the demo's year, so the demo adds nothing
to it; the leader's region is the community alone.

:func:`recount` computes every indicator again from the raw rows, in plain Python, by the
definitions of docs/ARCHITECTURE.md ("Evaluation"): the independent check of the SQL of
gis.queries.evaluation, here and on the demo.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.people.actors import Actor
from gis.queries.evaluation import Period
from gis.rules import BEIJING, DEFAULT_WORKDAY_END, EVALUATION_INDICATORS
from gis.worktime.limits import working_hours
from gis.worktime.steps import replay
from gis.worktime.store import category_limits, load_calendar

STREET = "140429100"
COMMUNITY = "140429100009"
GRIDS = {"140429100009001": 400, "140429100009002": 250}  # code: households
DEPARTMENTS = {"evaltest_a": "测试甲所", "evaltest_b": "测试乙所"}
WORKERS = {"evalworker1": "测试甲", "evalworker2": "测试乙"}
# evalworker1 holds grid 001 until then, evalworker2 after it; evalworker2 holds 002 throughout.
HANDOVER = datetime(2024, 3, 16, 12, tzinfo=BEIJING)
MARCH = Period.of("month", date(2024, 3, 1))
_LON, _LAT = 112.80, 36.80


def at(day: str, hour: int = 10, minute: int = 0) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:{minute:02d}:00").replace(tzinfo=BEIJING)


@dataclass(frozen=True)
class World:
    grid_ids: dict[str, int]
    department_ids: dict[str, int]
    user_ids: dict[str, int]
    leader: Actor
    admin: Actor


@dataclass
class Move:
    at: datetime
    to: str
    department: str | None = None  # the department a dispatch sends to
    actor: str | None = None  # who made the move (a username); None: nobody named


@dataclass
class Case:
    grid: str
    reported_at: datetime
    moves: list[Move] = field(default_factory=list)
    category: str = "garbage"
    due_hours: float | None = 24.0  # issues.due_at after the report; None: no due time
    extensions: list[tuple[datetime, bool | None]] = field(default_factory=list)
    reporter: str | None = None  # a worker's own report; None: a resident's


def holder(grid: str, t: datetime) -> str:
    """Who held ``grid`` at ``t``."""
    first, second = WORKERS
    return first if grid == list(GRIDS)[0] and t < HANDOVER else second


def _square(lon: float, lat: float, half: float) -> str:
    return (f"SRID=4326;MULTIPOLYGON((({lon - half} {lat - half}, {lon + half} {lat - half}, "
            f"{lon + half} {lat + half}, {lon - half} {lat + half}, {lon - half} {lat - half})))")


def _one(conn: Session, sql: str, **params):
    return conn.execute(text(sql), params).scalar_one()


def build_world(conn: Session) -> World:
    community = _one(conn, """
        INSERT INTO regions (code, name, level, parent_id, geom)
        VALUES (:c, '评价测试社区', 'community', (SELECT id FROM regions WHERE code = :s),
                ST_GeomFromEWKT(:g)) RETURNING id""",
                     c=COMMUNITY, s=STREET, g=_square(_LON + 0.002, _LAT, 0.004))
    grid_ids = {}
    for n, (code, households) in enumerate(GRIDS.items()):
        grid_ids[code] = _one(conn, """
            INSERT INTO grids (code, name, community_id, geom, households, population)
            VALUES (:c, :n, :cid, ST_GeomFromEWKT(:g), :h, :h * 2) RETURNING id""",
                              c=code, n=f"评价网格{n + 1}", cid=community, h=households,
                              g=_square(_LON + 0.004 * n, _LAT, 0.002))
    department_ids = {code: _one(conn, "INSERT INTO departments (code, name) VALUES (:c, :n) "
                                       "RETURNING id", c=code, n=name)
                      for code, name in DEPARTMENTS.items()}
    user_ids = {name: _one(conn, """
        INSERT INTO users (username, display_name, role, password_hash)
        VALUES (:u, :d, 'worker', 'x') RETURNING id""", u=name, d=display)
                for name, display in WORKERS.items()}
    user_ids |= dict(conn.execute(text("SELECT username, id FROM users WHERE username IN "
                                       "('dispatcher', 'leader')")).all())  # the demo's
    (g1, g2), (w1, w2) = list(GRIDS), list(WORKERS)
    for code, user, since, until in ((g1, w1, at("2023-06-01"), HANDOVER),
                                     (g1, w2, HANDOVER, None), (g2, w2, at("2023-06-01"), None)):
        conn.execute(text("""INSERT INTO grid_assignments (grid_code, user_id, valid_from, valid_to)
                             VALUES (:g, :u, :f, :t)"""),
                     {"g": code, "u": user_ids[user], "f": since, "t": until})
    leader = Actor(0, "evalleader", "评价领导", "leader", region_id=community,
                   region_grid_codes=frozenset(GRIDS))
    admin = Actor(0, "evaladmin", "评价管理员", "admin")
    return World(grid_ids, department_ids, user_ids, leader, admin)


def _kind(before: str, after: str) -> str:
    if after == "dispatched" and before != "on_hold":
        return "dispatch"
    if after == "accepted" and before in ("dispatched", "in_progress"):
        return "return"
    if after == "on_hold":
        return "hold"
    if before == "on_hold":
        return "resume"
    return "move"


def add_case(conn: Session, world: World, case: Case) -> int:
    """Insert ``case`` with its history, its steps (replayed with the category's limits) and its
    extension requests; returns its id."""
    events, status, department = [], "reported", None
    closed_at = None
    for move in case.moves:
        kind = _kind(status, move.to)
        if kind == "dispatch":
            department = move.department
        event_department = department if kind in ("dispatch", "return") else None
        events.append((move.at, status, move.to, kind, event_department, move.actor))
        if kind == "return":
            department = None
        status = move.to
        closed_at = move.at if status in ("closed", "rejected") else None
    self_resolved = bool(case.moves) and case.moves[0].to == "closed"
    due = None if case.due_hours is None else case.reported_at + timedelta(hours=case.due_hours)
    code = list(GRIDS).index(case.grid)
    issue = _one(conn, """
        INSERT INTO issues (category, geom, grid_id, grid_version, assignment, status,
                            department_id, reported_at, due_at, closed_at, self_resolved)
        VALUES (:k, ST_SetSRID(ST_MakePoint(:x, :y), 4326), :grid, 1, 'inside', :s,
                :dep, :r, :due, :closed, :self) RETURNING id""",
                 k=case.category, x=_LON + 0.004 * code, y=_LAT, grid=world.grid_ids[case.grid],
                 s=status, dep=world.department_ids.get(department), r=case.reported_at, due=due,
                 closed=closed_at, self=self_resolved)
    rows = [{"i": issue, "at": case.reported_at, "f": None, "t": "reported", "k": "move",
             "d": None, "a": world.user_ids.get(case.reporter)}]
    rows += [{"i": issue, "at": a, "f": f, "t": t, "k": k, "d": world.department_ids.get(d),
              "a": world.user_ids.get(actor)} for a, f, t, k, d, actor in events]
    conn.execute(text("""INSERT INTO issue_events (issue_id, at, from_status, to_status, kind,
                                                   department_id, actor_id)
                         VALUES (:i, :at, :f, :t, :k, :d, :a)"""), rows)
    _add_steps(conn, issue, case, events)
    for requested_at, approved in case.extensions:
        decided = None if approved is None else requested_at + timedelta(hours=1)
        conn.execute(text("""INSERT INTO extension_requests (issue_id, requested_at, value, unit,
                                                             reason, decided_at, approved)
                             VALUES (:i, :r, 1, 'workdays', '材料未到', :d, :a)"""),
                     {"i": issue, "r": requested_at, "d": decided, "a": approved})
    return issue


def _add_steps(conn: Session, issue: int, case: Case, events: list[tuple]) -> None:
    limits = category_limits(conn, case.category)["normal"]
    moves = [(case.reported_at, None, "reported")] + [(a, f, t) for a, f, t, *_ in events]
    steps = replay(moves, limits, load_calendar(conn), DEFAULT_WORKDAY_END)
    if steps:
        conn.execute(text("""INSERT INTO issue_steps (issue_id, step, started_at, due_at, done_at)
                             VALUES (:i, :s, :b, :due, :done)"""),
                     [{"i": issue, "s": s.step, "b": s.started_at, "due": s.due_at,
                       "done": s.done_at} for s in steps])


# -- random histories ---------------------------------------------------------------------------
def random_case(rng: random.Random, start: datetime, days: int) -> Case:
    """A case reported within ``days`` of ``start`` that goes some way round the loop, with the
    branches at random: rejection, 自处理, dispatches to either department or to the worker,
    returns, extensions, holds, rework, and an end anywhere on the way."""
    t = start + timedelta(minutes=rng.randrange(days * 24 * 60))
    grid = rng.choice(list(GRIDS))
    case = Case(grid, t, category=rng.choice(["garbage", "road_damaged"]),
                due_hours=rng.choice([None, 8.0, 24.0, 72.0, 200.0]),
                reporter=holder(grid, t) if rng.random() < 0.5 else None)

    def step(to: str, department: str | None = None, hours: float = 6.0,
             others: tuple[str | None, ...] = (None,)) -> None:
        """A move ``to`` within ``hours``, by the grid's holder then or one of ``others``."""
        nonlocal t
        t += timedelta(minutes=rng.randrange(1, int(hours * 60) + 2))
        case.moves.append(Move(t, to, department, rng.choice([holder(grid, t), *others])))

    first = rng.random()
    if first < 0.1:
        step("rejected", hours=1, others=("dispatcher",))
        return case
    if first < 0.2 and case.reporter:
        case.moves.append(Move(t + timedelta(minutes=20), "closed", actor=case.reporter))
        return case
    step("accepted", hours=1.5, others=("dispatcher",))
    departments = [*DEPARTMENTS, None]
    step("dispatched", rng.choice(departments), hours=1)
    while rng.random() < 0.25:
        step("accepted", hours=10)  # returned
        step("dispatched", rng.choice(departments), hours=2)
    for _ in range(rng.choice([1, 1, 2])):
        if rng.random() < 0.1:
            return case
        step("in_progress", hours=12)
        if rng.random() < 0.2:
            case.extensions.append((t + timedelta(minutes=5), rng.choice([True, False, None])))
        if rng.random() < 0.15:
            step("on_hold", hours=24)
            if rng.random() < 0.3:
                return case
            step("in_progress", hours=72)
        step("resolved", hours=48)
        if rng.random() < 0.1:
            return case
        if rng.random() < 0.25:
            step("reopened", hours=3, others=("leader",))
            if rng.random() < 0.5:
                step("dispatched", rng.choice(departments), hours=2)
            continue
        step("closed", hours=3, others=("leader",))
        return case
    return case


# -- the recount ---------------------------------------------------------------------------------
def _rows(conn: Session, sql: str, **params) -> list:
    return conn.execute(text(sql), params).all()


@dataclass
class Raw:
    """The raw rows the recount reads: every case in scope with its history."""

    issues: dict[int, object]
    events: dict[int, list]
    steps: dict[int, list]
    extensions: dict[int, list]
    grid_code: dict[int, str]  # grid id -> code
    community: dict[int, str]  # grid id -> community code
    households: dict[str, int]  # current grid code / community code -> households
    departments: dict[int, str]
    assignments: list
    users: dict[int, str]


def read_raw(conn: Session) -> Raw:
    issues = {r.id: r for r in _rows(conn, """SELECT id, grid_id, status, reported_at, due_at,
                                                     closed_at, self_resolved FROM issues""")}
    events, steps, extensions = defaultdict(list), defaultdict(list), defaultdict(list)
    for r in _rows(conn, """SELECT id, issue_id, at, from_status, to_status, kind, department_id,
                                   actor_id FROM issue_events ORDER BY at, id"""):
        events[r.issue_id].append(r)
    for r in _rows(conn, "SELECT id, issue_id, step, started_at, due_at, done_at FROM issue_steps"):
        steps[r.issue_id].append(r)
    for r in _rows(conn, "SELECT issue_id, requested_at, approved FROM extension_requests"):
        extensions[r.issue_id].append(r)
    grids = _rows(conn, """SELECT g.id, g.code, rc.code AS community, g.households, g.valid_to
                             FROM grids g JOIN regions rc ON rc.id = g.community_id""")
    households: dict[str, int] = defaultdict(int)
    for g in grids:
        if g.valid_to is None:
            households[g.code] += g.households or 0
            households[g.community] += g.households or 0
    return Raw(issues, events, steps, extensions, {g.id: g.code for g in grids},
               {g.id: g.community for g in grids}, dict(households),
               dict(_rows(conn, "SELECT id, code FROM departments")),
               _rows(conn, "SELECT grid_code, user_id, valid_from, valid_to FROM grid_assignments"),
               dict(_rows(conn, "SELECT id, username FROM users")))


def _within(t: datetime, period: Period) -> bool:
    return period.start_at <= t < period.end_at


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def in_scope(raw: Raw, actor: Actor) -> set[int]:
    """The cases ``actor`` reads (this world puts no case outside every grid)."""
    if actor.role == "admin":
        return set(raw.issues)
    return {i for i, r in raw.issues.items()
            if raw.grid_code.get(r.grid_id) in actor.region_grid_codes}


def recount_departments(raw: Raw, scope: set[int], period: Period,
                        calendar) -> dict[str, dict]:
    dispatched, returned = defaultdict(int), defaultdict(int)
    cases, reworked, extended = defaultdict(set), defaultdict(set), defaultdict(set)
    hours = defaultdict(list)
    for issue in scope:
        history = raw.events[issue]
        dispatches = [e for e in history if e.kind == "dispatch"]
        for n, d in enumerate(dispatches):
            end = dispatches[n + 1].at if n + 1 < len(dispatches) else None

            def inside(t, d=d, end=end):
                return t >= d.at and (end is None or t < end)

            was_returned = any(e.kind == "return" and inside(e.at) for e in history)
            department = raw.departments.get(d.department_id)
            if department is None:
                continue
            for s in raw.steps[issue]:
                if (s.step == "handle" and s.done_at is not None and _within(s.done_at, period)
                        and inside(s.done_at) and not was_returned):
                    hours[department].append(working_hours(s.started_at, s.done_at, calendar))
            if not _within(d.at, period):
                continue
            dispatched[department] += 1
            if was_returned:
                returned[department] += 1
                continue
            cases[department].add(issue)
            if any(e.to_status == "reopened" and inside(e.at) for e in history):
                reworked[department].add(issue)
            if any(x.approved and inside(x.requested_at) for x in raw.extensions[issue]):
                extended[department].add(issue)
    out = {}
    for department in set(dispatched) | set(hours):
        own = cases[department]
        closed = [i for i in own if raw.issues[i].status == "closed"]
        rated = [i for i in closed if raw.issues[i].due_at is not None]
        on_time = [i for i in rated if raw.issues[i].closed_at <= raw.issues[i].due_at]
        out[department] = {
            "dispatched": dispatched[department],
            "closure_rate": _share(len(closed), len(own)),
            "on_time_rate": _share(len(on_time), len(rated)),
            "rework_rate": _share(len(reworked[department]), len(own)),
            "extension_rate": _share(len(extended[department]), len(own)),
            "return_rate": _share(returned[department], dispatched[department]),
            "handling_hours": (round(sum(hours[department]) / len(hours[department]), 2)
                               if hours[department] else None),
        }
    return out


def recount_workers(raw: Raw, scope: set[int], period: Period) -> dict[str, dict]:
    """What each grid worker did themselves: the moves they are the actor of."""
    holders = {a.user_id for a in raw.assignments}
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for i in scope:
        issue, history = raw.issues[i], raw.events[i]
        reporter = next((e.actor_id for e in history if e.from_status is None
                         and e.to_status == "reported"), None)
        for e in history:
            if e.to_status is None:
                continue
            if e.from_status is None:
                if reporter in holders and _within(issue.reported_at, period):
                    counts[raw.users[reporter]]["reports"] += 1
                    counts[raw.users[reporter]]["self"] += issue.self_resolved
                continue
            if not _within(e.at, period):
                continue
            if e.from_status == "reported" and reporter in holders:
                counts[raw.users[reporter]]["decided"] += 1
                counts[raw.users[reporter]]["valid"] += e.to_status != "rejected"
            if e.actor_id not in holders:
                continue
            c = counts[raw.users[e.actor_id]]
            for frm, tos, step, key in (("reported", ("accepted", "rejected"), "accept", "v"),
                                        ("resolved", ("closed", "reopened"), "verify", "k")):
                if e.from_status == frm and e.to_status in tos:
                    ran = [s for s in raw.steps[i] if s.step == step and s.started_at <= e.at]
                    if not ran:
                        continue
                    s = max(ran, key=lambda s: (s.started_at, s.id))
                    if s.due_at is not None and s.done_at is not None:
                        c[key + "_rated"] += 1
                        c[key + "_on_time"] += s.done_at <= s.due_at
    return {user: {"reports": c["reports"], "valid_report_rate": _share(c["valid"], c["decided"]),
                   "on_time_verify_rate": _share(c["v_on_time"], c["v_rated"]),
                   "on_time_check_rate": _share(c["k_on_time"], c["k_rated"]),
                   "self_resolved": c["self"]} for user, c in counts.items()}


def recount_areas(raw: Raw, scope: set[int], period: Period, level: str) -> dict[str, dict]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for i in scope:
        issue = raw.issues[i]
        if issue.grid_id is None or not _within(issue.reported_at, period):
            continue
        key = (raw.grid_code if level == "grid" else raw.community)[issue.grid_id]
        c = counts[key]
        c["cases"] += 1
        c["taken"] += issue.status != "rejected"
        if issue.status == "closed":
            c["closed"] += 1
            if issue.due_at is not None:
                c["rated"] += 1
                c["on_time"] += issue.closed_at <= issue.due_at
    out = {}
    for key, c in counts.items():
        households = raw.households.get(key)
        out[key] = {"cases": c["cases"],
                    "per_1000_households": round(c["cases"] * 1000 / households, 2)
                    if households else None,
                    "closure_rate": _share(c["closed"], c["taken"]),
                    "on_time_rate": _share(c["on_time"], c["rated"])}
    return out


def blank(role: str, key: str, raw: Raw) -> dict:
    """A unit with nothing in the period: its counts 0, its rates None (and 0 cases per 1,000
    households where the households are known)."""
    values = {k: (0 if unit == "count" else None) for k, _, _, unit, _ in EVALUATION_INDICATORS[role]}
    if role in ("grid", "community") and raw.households.get(key):
        values["per_1000_households"] = 0.0
    return values


def recount(conn: Session, actor: Actor, role: str, period: Period,
            keys: list[str]) -> dict[str, dict]:
    """Every indicator of ``role`` in ``period`` for the units ``keys``, from the raw rows."""
    raw = read_raw(conn)
    scope = in_scope(raw, actor)
    if role == "department":
        found = recount_departments(raw, scope, period, load_calendar(conn))
    elif role == "worker":
        found = recount_workers(raw, scope, period)
    else:
        found = recount_areas(raw, scope, period, role)
    return {key: found.get(key) or blank(role, key, raw) for key in keys}
