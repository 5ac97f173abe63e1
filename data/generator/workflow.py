"""The closed loop (docs/ARCHITECTURE.md, "The issue workflow", "Dispatch and the branches") for
every generated case: its whole history simulated from the report, then cut where the data is
seen.

Each case takes one of the paths of :mod:`data.generator.paths` (checked against the live rules):
how it is taken on, where it is dispatched first (a rule's department, right or not, or the
desk's choice) and whether it comes back (回退), is held (挂账) and reworked (返工), each as
likely as its department and worker make it. The entries that are not moves, extension requests
(延期) and supervision notices (督办), are drawn on the handling of the case (:class:`Branches`).

Each step takes a share of its own time limit (gis.worktime: accept and dispatch in minutes,
handling in working days or hours, the check on site in hours), drawn lognormal so that the
share done in time is the quality of whoever does it: the dispatcher, the grid worker, the
department (:mod:`data.generator.departments`). Everything is drawn with numpy for all cases at
once, one position of the paths after another.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from data.generator import departments as dep
from data.generator.deadlines import WORKDAYS, WorkdayTable, step_limit
from data.generator.paths import (
    FIRST_PHASE,
    HANDLED,
    HOLD_DISPATCHED,
    HOLD_STARTED,
    LENGTH,
    MAIN_RUN,
    NO_HOLD,
    NO_RETURN,
    NO_REWORK,
    REJECTED_AFTER_ACCEPTANCE,
    REJECTED_ON_INTAKE,
    RETURN_DISPATCHED,
    RETURN_STARTED,
    REWORK_REDISPATCHED,
    REWORK_RESTARTED,
    ROLE,
    RUN,
    RUN_END,
    RUN_LAST,
    RUN_STARTS,
    SELF_RESOLVED,
    STARTED,
    STATUS,
    WEIGHT,
    WIDTH,
    R,
    S,
    handled_path,
)
from data.generator.reports import ISSUE_MIX
from gis.rules import FINAL_STATUSES, ISSUE_STATUSES

# -- who works how well --------------------------------------------------------------------------
_SIGMA = 0.6  # spread of a step's time around its median, in log units
DISPATCHER_ON_TIME = {"accept": 0.96, "dispatch": 0.95}
LEADER_ON_TIME = 0.9  # the community secretary checks the fixes of community matters
# The grid workers, from the best to the worst: the share of their steps done in time (核实 of a
# resident's report, 核查 of a fix). The worse also report more that proves invalid (a duplicate,
# a matter that is no matter): the worst, padding a quota, a third of his reports.
WORKER_ON_TIME = (0.995, 0.99, 0.985, 0.98, 0.975, 0.97, 0.96, 0.95, 0.94, 0.82, 0.76, 0.58, 0.4,
                  0.15)
EXTENSION_APPROVED = 0.7
_RETURN_STARTED_SHARE, _HOLD_STARTED_SHARE, _REWORK_REDISPATCH_SHARE = 0.3, 0.7, 0.5
_NEVER_RESUMED = 0.08  # of holds: a court order, funds that never came
_SUPERVISED_LATE, _SUPERVISED_HELD = 0.5, 0.4
_HOUR, _DAY = 3_600, 86_400


def median_factor(on_time) -> np.ndarray:
    """The log-median of a step's share of its limit for which ``on_time`` of the steps end
    within the limit."""
    z = np.vectorize(NormalDist().inv_cdf, otypes=[float])(
        np.clip(np.asarray(on_time, float), 0.01, 0.995))
    return -_SIGMA * z


@dataclass
class Cases:
    """What the workflow of each case depends on, in order of reporting."""

    reported: np.ndarray  # epoch seconds
    kind: np.ndarray  # position in ISSUE_MIX
    urgency: np.ndarray  # position in URGENCIES
    by_worker: np.ndarray  # the grid worker reported it
    grid: np.ndarray
    right: np.ndarray  # who must fix it: a department index or dep.WORKER
    rule: np.ndarray  # number of the dispatch rule that applies (0: none)
    rule_department: np.ndarray
    rule_auto: np.ndarray


@dataclass
class Branches:
    """Extension requests and supervision notices, epoch seconds (-1: none)."""

    requested: np.ndarray
    decided: np.ndarray
    approved: np.ndarray
    value: np.ndarray
    unit: np.ndarray
    due_before: np.ndarray  # the case's due_at when asked
    due_after: np.ndarray  # ... once approved
    supervised: np.ndarray  # (n, 2): on a late handling, on a long hold
    replied: np.ndarray  # (n, 2)


@dataclass
class Workflow:
    path: np.ndarray  # row of PATHS
    times: np.ndarray  # (n, width) epoch seconds of each step; valid where the path has one
    done: np.ndarray  # steps that happened by the time the data is seen
    first: np.ndarray  # the department (or dep.WORKER) the case was dispatched to first
    right: np.ndarray  # ... and the one it ends with
    auto: np.ndarray  # its first dispatch was a rule's
    accepted_by_worker: np.ndarray  # 核实 on site (else the dispatcher's 受理)
    promised: np.ndarray  # due_at as reported
    resumed_due: np.ndarray  # due_at once resumed (-1: no hold)
    branches: Branches
    seen_at: int

    @property
    def last(self) -> np.ndarray:
        return STATUS[self.path, self.done - 1]

    @property
    def status(self) -> np.ndarray:
        return np.array(ISSUE_STATUSES, dtype=object)[self.last]

    def closed_at(self) -> np.ndarray:
        """Epoch seconds the case left the loop (closed or rejected), -1 while open."""
        ended = np.isin(self.last, [S[s] for s in FINAL_STATUSES])
        return np.where(ended, self.times[np.arange(len(self.done)), self.done - 1], -1)

    def happened(self, at: np.ndarray, rows=slice(None)) -> np.ndarray:
        """Whether something at ``at`` (-1: nothing) in each case (of ``rows``) happened by the
        time the data is seen, and before the first step that did not (a case held in progress
        stops there)."""
        done, path, times = self.done[rows], self.path[rows], self.times[rows]
        pending = np.where(done < LENGTH[path],
                           times[np.arange(len(done)), np.minimum(done, WIDTH - 1)],
                           np.iinfo(np.int64).max)
        return (at >= 0) & (at <= self.seen_at) & (at < pending)

    def status_at(self, at: np.ndarray, rows=slice(None)) -> np.ndarray:
        """The status (index) of each case (of ``rows``) at ``at``: after its last move not
        later."""
        path, times = self.path[rows], self.times[rows]
        moves = ((STATUS[path] >= 0) & (times <= np.asarray(at)[:, None])).sum(axis=1)
        return STATUS[path, np.maximum(moves, 1) - 1]

    def due(self) -> np.ndarray:
        """``issues.due_at`` now: as reported, moved by a resumption (to the deadline of the
        fresh handling) and by an approved extension (which comes after), if they happened."""
        due = np.where(self.happened(self.time_of("resume")), self.resumed_due, self.promised)
        b = self.branches
        return np.where(b.approved & self.happened(b.decided), b.due_after, due)

    def time_of(self, role: str) -> np.ndarray:
        """Epoch seconds of the (last) move of ``role`` in each path, -1 where it has none."""
        return np.where(ROLE[self.path] == R[role], self.times, -1).max(axis=1)

    def department(self) -> np.ndarray:
        """The department each case is dispatched to when the data is seen (dep.WORKER: the grid
        worker or none): that of its last dispatch, unless a return came after it."""
        out = np.full(len(self.done), dep.WORKER)
        for j in range(1, WIDTH):
            role = ROLE[self.path, j]
            happened = j < self.done
            dispatched = happened & np.isin(role, (R["dispatch"], R["redispatch"]))
            out[dispatched] = np.where(FIRST_PHASE[self.path, j], self.first, self.right)[dispatched]
            out[happened & (role == R["return"])] = dep.WORKER
        return out


def simulate_workflow(cases: Cases, table: WorkdayTable, as_of: int, rng) -> Workflow:
    """Each case's whole history, then cut at ``as_of`` so that recent cases are still open."""
    n = len(cases.reported)
    first, shirk = _first_dispatch(cases, rng)
    worker_on_time = _worker_quality(int(cases.grid.max(initial=0)) + 1, rng)
    handler = _as_row(cases.right)
    path = _choose_paths(cases, first, shirk, handler, worker_on_time, rng)
    accepted_by_worker = ~cases.by_worker & _daytime(cases.reported)
    flow = Workflow(path, np.full((n, WIDTH), -1, np.int64), np.ones(n, np.int64), first,
                    cases.right, cases.rule_auto & (first == cases.rule_department),
                    accepted_by_worker, np.zeros(n, np.int64), np.full(n, -1, np.int64),
                    _no_branches(n), as_of)
    _Clock(cases, flow, table, handler, worker_on_time, as_of, rng).run()
    _reply_times(flow, rng)
    valid = STATUS[path] >= 0
    flow.done = np.maximum((valid & (flow.times <= as_of)).sum(axis=1), 1)
    return flow


def _no_branches(n: int) -> Branches:
    none = np.full(n, -1, np.int64)
    return Branches(none.copy(), none.copy(), np.zeros(n, bool), np.zeros(n, np.int64),
                    np.zeros(n, np.int64), none.copy(), none.copy(), np.full((n, 2), -1, np.int64),
                    np.full((n, 2), -1, np.int64))


def _first_dispatch(cases: Cases, rng) -> tuple[np.ndarray, np.ndarray]:
    """Where each case is dispatched first, and whether its department, though it is its own,
    sends it back (推诿). An automatic rule sends it to its department, right or not; the desk
    follows a suggestion unless it sees the case lies elsewhere (a property's yard), and now and
    then errs without a rule."""
    n = len(cases.reported)
    u = rng.random(n)
    wrong = _wrong_department(cases.right, rng)
    rule_right = cases.rule_department == cases.right
    has_rule = cases.rule > 0
    first = np.where(u < 0.985, cases.right, wrong)  # a rule that is right: followed
    suggested_wrongly = has_rule & ~cases.rule_auto & ~rule_right
    first[suggested_wrongly] = np.where(u[suggested_wrongly] < 0.85, cases.right[suggested_wrongly],
                                        cases.rule_department[suggested_wrongly])
    no_rule = ~has_rule
    first[no_rule] = np.where(u[no_rule] < 0.95, cases.right[no_rule], wrong[no_rule])
    auto = has_rule & cases.rule_auto
    first[auto] = cases.rule_department[auto]
    shirk_rate = dep.table("shirk")[_as_row(cases.right)]
    shirk = (first == cases.right) & (cases.right != dep.WORKER) & (rng.random(n) < shirk_rate)
    return first, shirk


def _wrong_department(right: np.ndarray, rng) -> np.ndarray:
    """A department other than ``right`` (never the grid worker: a desk's mistake is a
    department's to return)."""
    d = len(dep.DEMO_DEPARTMENTS)
    shift = rng.integers(1, d, len(right))
    return np.where(right == dep.WORKER, shift, (np.maximum(right, 0) + shift) % d)


def _worker_quality(grids: int, rng) -> np.ndarray:
    """The on-time share of each grid's worker: the demo's fourteen profiles in a random order
    (repeated over a city's grids)."""
    return np.resize(rng.permutation(np.array(WORKER_ON_TIME)), grids)


def _daytime(reported: np.ndarray) -> np.ndarray:
    """A resident's report of 08:00-18:00 is verified on site by the grid worker (核实); at other
    hours the desk accepts it by telephone."""
    hour = ((reported + 8 * _HOUR) % _DAY) // _HOUR
    return (hour >= 8) & (hour < 18)


def _choose_paths(cases: Cases, first, shirk, handler, worker_on_time, rng) -> np.ndarray:
    """The path of each case: how it is taken on, then whether it is returned, held and
    reworked, each as likely as its department makes it."""
    n = len(cases.reported)
    u = rng.random((n, 6))
    late_worker = 1.0 - worker_on_time[cases.grid]
    self_resolvable = np.isin(cases.kind, _SELF_RESOLVABLE)
    intake = np.full(n, HANDLED)
    intake[cases.by_worker & self_resolvable & (u[:, 0] < 0.35 * worker_on_time[cases.grid])] = \
        SELF_RESOLVED
    invalid = np.where(cases.by_worker, 0.01 + 0.45 * late_worker ** 2, 0.025)
    intake[(intake == HANDLED) & (u[:, 1] < invalid)] = REJECTED_ON_INTAKE
    # A case an automatic rule dispatches on acceptance never waits for the desk to refuse it.
    intake[(intake == HANDLED) & (u[:, 1] > 0.98) & ~(cases.rule_auto & (cases.rule > 0))] = \
        REJECTED_AFTER_ACCEPTANCE
    returned = np.where((first != cases.right) | shirk,
                        np.where(u[:, 2] < _RETURN_STARTED_SHARE, RETURN_STARTED,
                                 RETURN_DISPATCHED), NO_RETURN)
    held = np.where(u[:, 3] < dep.table("hold")[handler],
                    np.where(u[:, 4] < _HOLD_STARTED_SHARE, HOLD_STARTED, HOLD_DISPATCHED),
                    NO_HOLD)
    rework_rate = dep.table("rework")[handler]
    rework = np.where(u[:, 5] < rework_rate,
                      np.where(u[:, 5] < rework_rate * _REWORK_REDISPATCH_SHARE,
                               REWORK_REDISPATCHED, REWORK_RESTARTED), NO_REWORK)
    return np.where(intake < HANDLED, intake, handled_path(returned, held, rework))


# Small things a worker fixes at once on patrol (自处理): rubbish, a car moved on, clutter.
_SELF_RESOLVABLE = [list(ISSUE_MIX).index(c) for c in ("garbage", "parking_chaos", "other")]


class _Clock:
    """Draws the time of every step, position by position along the paths."""

    def __init__(self, cases: Cases, flow: Workflow, table: WorkdayTable, handler: np.ndarray,
                 worker_on_time: np.ndarray, as_of: int, rng) -> None:
        self.c, self.f, self.table, self.rng = cases, flow, table, rng
        self.n = len(cases.reported)
        self.horizon = as_of + 120 * _DAY  # later steps are cut anyway: no deadline needed
        self.handler = handler
        self.worker_mu = median_factor(worker_on_time)[cases.grid]  # (per grid, then per case)
        self.dept_mu = self._department_quality()
        self.run_total = np.zeros((self.n, WIDTH))
        self.run_start = np.zeros((self.n, WIDTH), np.int64)
        self.reached = self._run_shares()
        self.extension = _extension_wanted(handler, flow.path, rng)
        self.by_day = self._limit("handle")[1] == WORKDAYS

    def _department_quality(self) -> np.ndarray:
        """The log-median factor of each case's handling: its department's on-time share, which
        varies from month to month, and 供热公司 swamped when the heating comes on."""
        on_time = dep.table("on_time")
        month = (self.c.reported + 8 * _HOUR).astype("datetime64[s]").astype("datetime64[M]")
        month_number = month.astype(np.int64) % 12
        jitter = self.rng.normal(0, 0.04, (len(on_time), 12))
        mu = median_factor(np.clip(on_time[:, None] + jitter, 0.05, 0.995))
        factor = mu[self.handler, month_number]
        day = (self.c.reported + 8 * _HOUR).astype("datetime64[s]").astype("datetime64[D]")
        day_of_month = (day - month.astype("datetime64[D]")).astype(np.int64) + 1
        swamped = ((month_number == 10) & (day_of_month >= 15)) | \
            ((month_number == 11) & (day_of_month <= 10))
        heating = (self.handler == list(dep.DEPARTMENT_CODES).index("gongre")) & swamped
        factor[heating] = np.maximum(factor[heating], median_factor(0.35))
        return factor

    def _run_shares(self) -> np.ndarray:
        """The share of its run of the handling step that has passed at each move: the moves
        of a run divide its time by weights with some noise; the last move ends it (1.0)."""
        w = WEIGHT[self.f.path]
        moves = w > 0
        w[moves] *= self.rng.lognormal(0, 0.5, moves.sum())
        run = RUN[self.f.path]
        passed = np.zeros((self.n, WIDTH))
        for j in range(1, WIDTH):
            same = (run[:, j] >= 0) & (run[:, j] == run[:, j - 1])
            passed[:, j] = w[:, j] + np.where(same, passed[:, j - 1], 0)
        total = np.take_along_axis(passed, RUN_LAST[self.f.path], axis=1)
        return np.where(run >= 0, passed / np.maximum(total, 1e-12), 0.0)

    def run(self) -> None:
        times = self.f.times
        times[:, 0] = self.c.reported
        self.f.promised = self.table.deadline(self.c.reported, *self._limit("handle"))
        for j in range(1, WIDTH):
            live = j < LENGTH[self.f.path]
            starts = live & RUN_STARTS[self.f.path, j]
            if starts.any():
                self._start_runs(np.flatnonzero(starts), j)
            seconds = np.maximum(self._step_seconds(j, live), 1).astype(np.int64)
            times[:, j] = np.where(live, times[:, j - 1] + seconds, -1)
            self._by_day(j, live)
            resumed = np.flatnonzero(live & (ROLE[self.f.path, j] == R["resume"]))
            self.f.resumed_due[resumed] = self._deadline(times[resumed, j], "handle", resumed)

    def _by_day(self, j: int, live: np.ndarray) -> None:
        """Crews work by day: a department signs for or finishes a case with a limit in working
        days between 07:00 and 20:00; what would fall in the night waits for the morning. (Urgent
        cases, limited in hours, run around the clock.)"""
        times = self.f.times[:, j]
        crew = live & np.isin(ROLE[self.f.path, j], (R["sign"], R["fix"], R["restart"])) & \
            self.by_day
        local = times + 8 * _HOUR
        hour = (local % _DAY) // _HOUR
        night = np.flatnonzero(crew & ((hour >= 20) | (hour < 7)))
        if len(night):
            midnight = (local[night] + 5 * _HOUR) // _DAY * _DAY - 8 * _HOUR  # of the morning
            self.f.times[night, j] = midnight + 8 * _HOUR + self.rng.integers(0, 3 * _HOUR,
                                                                               len(night))

    def _limit(self, step: str, rows=slice(None)):
        return step_limit(self.c.kind[rows], self.c.urgency[rows], step)

    def _deadline(self, start: np.ndarray, step: str, rows) -> np.ndarray:
        return self.table.deadline(np.minimum(start, self.horizon), *self._limit(step, rows))

    def _window(self, start: np.ndarray, step: str, rows) -> np.ndarray:
        """Seconds from ``start`` to the deadline of ``step`` started then."""
        return np.maximum(self._deadline(start, step, rows) - start, 60)

    def _share(self, mu: np.ndarray) -> np.ndarray:
        return self.rng.lognormal(mu, _SIGMA)

    # -- the runs of the handling step ----------------------------------------------------------
    def _start_runs(self, rows: np.ndarray, j: int) -> None:
        """Draw how long each run starting at move ``j`` (leaving status ``j - 1``) lasts."""
        start = self.f.times[rows, j - 1]
        window = self._window(start, "handle", rows)
        path = self.f.path[rows]
        run = RUN[path, j]
        ends = RUN_END[path, run]
        total = window * self._share(self.dept_mu[rows])
        returned = ends == R["return"]  # soon: a department sees at once what is not its own
        total[returned] = np.maximum(window[returned] * self.rng.lognormal(
            np.log(0.08), 0.9, returned.sum()), 300)
        held = ends == R["hold"]
        total[held] = window[held] * self.rng.uniform(0.15, 0.9, held.sum())
        limit = window.copy()  # to the run's deadline, an approved extension included
        main = run == MAIN_RUN[path]
        extended = main & self.extension[rows]
        if extended.any():
            total[extended], limit[extended] = self._extended(rows[extended], start[extended],
                                                              window[extended])
        self._supervise_late(rows[main], start[main], limit[main], total[main])
        self.run_total[rows, run] = total
        self.run_start[rows, run] = start

    def _extended(self, rows: np.ndarray, start: np.ndarray,
                  window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """延期: the department asks for more time during the run; the desk decides within
        hours. Approved, the run ends by the longer deadline as often as the department manages;
        refused, it usually runs late. Returns the run's length and the time to its deadline."""
        b, rng = self.f.branches, self.rng
        value, unit = self._limit("handle", rows)
        asked = np.maximum(1, np.round(value * rng.uniform(0.3, 1.0, len(rows)))).astype(np.int64)
        b.value[rows], b.unit[rows] = asked, unit
        b.requested[rows] = start + (window * rng.uniform(0.3, 0.85, len(rows))).astype(np.int64)
        b.decided[rows] = b.requested[rows] + np.maximum(
            rng.lognormal(np.log(2 * _HOUR), 0.8, len(rows)), 120).astype(np.int64)
        approved = rng.random(len(rows)) < EXTENSION_APPROVED
        b.approved[rows] = approved
        step_due = start + window
        longer = self.table.deadline(np.minimum(step_due, self.horizon), asked, unit) - start
        resumed = self.f.resumed_due[rows] >= 0
        b.due_before[rows] = np.where(resumed, self.f.resumed_due[rows], self.f.promised[rows])
        b.due_after[rows] = self.table.deadline(np.minimum(b.due_before[rows], self.horizon),
                                                asked, unit)
        mu = self.dept_mu[rows]
        total = np.where(approved, longer * self._share(mu - 0.25),
                         window * rng.lognormal(np.log(1.15), 0.35, len(rows)))
        return np.maximum(total, b.decided[rows] - start + 600), np.where(approved, longer, window)

    def _supervise_late(self, rows, start, limit, total) -> None:
        """督办 on a late handling: some time after the deadline, while the case is still not
        fixed, the leader issues a notice."""
        late = (total > limit + _HOUR) & (self.rng.random(len(rows)) < _SUPERVISED_LATE)
        issued = start + limit + self.rng.uniform(0.1, 0.7, len(rows)) * (total - limit)
        self.f.branches.supervised[rows[late], 0] = issued[late].astype(np.int64)

    # -- each move ------------------------------------------------------------------------------
    def _step_seconds(self, j: int, live: np.ndarray) -> np.ndarray:
        """How long after the step before it move ``j`` of each case comes."""
        f, c, rng = self.f, self.c, self.rng
        role = np.where(live, ROLE[f.path, j], -1)
        before = f.times[:, j - 1]
        out = np.zeros(self.n)
        in_run = live & (RUN[f.path, j] >= 0)
        run = np.maximum(RUN[f.path, j], 0)
        # A move of a run comes at its share of the run from the run's start, whenever the one
        # before it came (a crew that signed in the morning does not fix later for it).
        at = self.run_start[np.arange(self.n), run] + self.run_total[np.arange(self.n), run] * \
            self.reached[:, j]
        out[in_run] = (at - before)[in_run]
        by_worker = f.accepted_by_worker
        taking = np.isin(role, (R["accept"], R["reject_intake"]))
        self._timed(out, taking, before, "accept",
                    np.where(by_worker, self.worker_mu, median_factor(DISPATCHER_ON_TIME["accept"])))
        rejecting = role == R["reject"]
        self._timed(out, rejecting, before, "dispatch", median_factor(DISPATCHER_ON_TIME["dispatch"]))
        dispatching = role == R["dispatch"]
        auto = dispatching & f.auto & (j == 2)
        self._timed(out, dispatching & ~auto, before, "dispatch",
                    median_factor(DISPATCHER_ON_TIME["dispatch"]))
        out[auto] = rng.uniform(2, 30, auto.sum())
        on_site = role == R["self_resolve"]  # fixed first, then reported and closed at once
        out[on_site] = rng.uniform(2, 15, on_site.sum()) * 60
        checking = np.isin(role, (R["pass"], R["fail"]))
        leader_mu = median_factor(LEADER_ON_TIME)
        self._timed(out, checking, before, "verify",
                    np.where(c.right == dep.WORKER, leader_mu, self.worker_mu))
        self._hold(out, role, before)
        return out

    def _timed(self, out, rows_mask, before, step: str, mu) -> None:
        rows = np.flatnonzero(rows_mask)
        if len(rows):
            mu = np.broadcast_to(np.asarray(mu, float), (self.n,))[rows]
            out[rows] = self._window(before[rows], step, rows) * self._share(mu)

    def _hold(self, out, role, before) -> None:
        """挂账 lasts days to months, and about one hold in twelve is never lifted; a long hold
        draws a supervision notice. (Resuming starts a fresh handling limit, the case's new due
        time.)"""
        resuming = np.flatnonzero(role == R["resume"])
        if not len(resuming):
            return
        rng = self.rng
        held = rng.lognormal(np.log(12 * _DAY), 1.0, len(resuming))
        never = rng.random(len(resuming)) < _NEVER_RESUMED
        held[never] = 3_650 * _DAY
        out[resuming] = held
        since = before[resuming]
        long = (held > 20 * _DAY) & (rng.random(len(resuming)) < _SUPERVISED_HELD)
        issued = since + np.minimum(held * rng.uniform(0.3, 0.8, len(resuming)),
                                    rng.uniform(15, 90, len(resuming)) * _DAY)
        self.f.branches.supervised[resuming[long], 1] = issued[long].astype(np.int64)


def _as_row(department: np.ndarray) -> np.ndarray:
    """A department index, or the community's row for the grid worker."""
    return np.where(department == dep.WORKER, len(dep.DEMO_DEPARTMENTS), department)


def _extension_wanted(handler: np.ndarray, path: np.ndarray, rng) -> np.ndarray:
    """The cases whose department asks for more time during their main handling."""
    rate = dep.table("extension")[handler]
    return (MAIN_RUN[path] >= 0) & (rng.random(len(path)) < rate)


def _reply_times(flow: Workflow, rng) -> None:
    """When each supervision notice is answered (-1: never): within hours mostly, never by a
    share as large as its department's silence."""
    b = flow.branches
    issued = b.supervised
    handler = _as_row(flow.right)
    silence = dep.table("silent")[handler][:, None]
    silent = rng.random(issued.shape) < silence
    wait = rng.lognormal(np.log(4 * _HOUR) + 2 * silence, 1.1, issued.shape).astype(np.int64) + 300
    # An answer comes while the case is open: before it is closed, if it is closed soon.
    closed = flow.times[np.arange(len(flow.path)), LENGTH[flow.path] - 1][:, None]
    soon = (issued + wait >= closed) & (closed - issued > 600)
    wait = np.where(soon, ((closed - issued) * rng.uniform(0.2, 0.9, issued.shape)).astype(
        np.int64), wait)
    b.replied = np.where((issued >= 0) & ~silent & (issued + wait < closed), issued + wait, -1)


# Open cases a grid worker can move on: 'resolved' waits for the check, 'on_hold' for the
# department.
_ACTIONABLE = [S[s] for s in ISSUE_STATUSES
               if s not in (*FINAL_STATUSES, "resolved", "on_hold")]


def hold_a_case_in_every_grid(flow: Workflow, grid: np.ndarray) -> None:
    """Leave every grid with a case its worker can act on when the data is seen.

    A grid whose cases have all ended (or wait only for a check or a department) keeps its
    newest handled case in progress, stalled: the demo's tablet maps never open empty, and which
    grid has work to show does not depend on the day the demo is for. ``flow`` must be in order
    of reporting; rejected and self-resolved cases are left as they are.
    """
    served = np.zeros(int(grid.max(initial=-1)) + 1, bool)
    served[grid[np.isin(flow.last, _ACTIONABLE)]] = True
    candidates = np.flatnonzero((flow.path >= HANDLED) & ~served[grid])[::-1]
    _, first = np.unique(grid[candidates], return_index=True)  # the newest of each grid
    newest = candidates[first]
    flow.done[newest] = np.minimum(flow.done[newest], STARTED[flow.path[newest]] + 1)

