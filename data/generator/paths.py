"""The paths a generated case can take through the closed loop, as tables: the status, the kind of
history entry (gis.rules.EVENT_KINDS) and the role in the story of each step of each path.

A case is self-resolved on site (自处理), rejected on intake or after acceptance, or accepted,
dispatched and handled, with or without a return (回退) before or after the department starts, a
hold (挂账) before or after it starts, and rework after a failed check (返工), sent again by the
desk or taken up again by the department. Every step of every path is checked against the live
rules when this module is imported (``gis.rules.TRANSITIONS`` for plain moves, ``BRANCH_MOVES``
for dispatch, return, hold and resume, ``SELF_RESOLVE``), so the generator cannot write a history
the API would refuse.

The handling step (gis.rules.STATUS_STEP) runs in *runs*: from a move into dispatched, a
resumption or a reopening until the case is resolved, returned or put on hold; the time of a run
is drawn once and shared among its moves (data.generator.workflow).
"""

from __future__ import annotations

import numpy as np

from gis.rules import (
    BRANCH_MOVES,
    EVENT_KINDS,
    ISSUE_STATUSES,
    SELF_RESOLVE,
    STATUS_STEP,
    TRANSITIONS,
)

S = {s: i for i, s in enumerate(ISSUE_STATUSES)}
K = {k: i for i, k in enumerate(EVENT_KINDS)}
# What a move is in the story: it decides how long the move takes and who makes it.
ROLES = ("report", "accept", "reject_intake", "reject", "self_resolve", "dispatch", "sign", "fix",
         "return", "hold", "resume", "pass", "fail", "restart", "redispatch")
R = {r: i for i, r in enumerate(ROLES)}
NO_RETURN, RETURN_DISPATCHED, RETURN_STARTED = range(3)  # 回退 before or after starting
NO_HOLD, HOLD_DISPATCHED, HOLD_STARTED = range(3)
NO_REWORK, REWORK_REDISPATCHED, REWORK_RESTARTED = range(3)
SELF_RESOLVED, REJECTED_ON_INTAKE, REJECTED_AFTER_ACCEPTANCE = range(3)
HANDLED = 3  # the first path that is dispatched and handled: HANDLED + handled_path(...)


def _path(returned: int, held: int, rework: int) -> list[tuple[str, str, str]]:
    """(status, event kind, role) of each step of a handled case."""
    p = [("reported", "move", "report"), ("accepted", "move", "accept"),
         ("dispatched", "dispatch", "dispatch")]
    if returned == RETURN_STARTED:
        p.append(("in_progress", "move", "sign"))
    if returned != NO_RETURN:
        p += [("accepted", "return", "return"), ("dispatched", "dispatch", "dispatch")]
    if held == HOLD_STARTED:
        p.append(("in_progress", "move", "sign"))
    if held != NO_HOLD:
        p += [("on_hold", "hold", "hold"), ("in_progress", "resume", "resume")]
    else:
        p.append(("in_progress", "move", "sign"))
    p.append(("resolved", "move", "fix"))
    if rework == REWORK_REDISPATCHED:
        p += [("reopened", "move", "fail"), ("dispatched", "dispatch", "redispatch"),
              ("in_progress", "move", "sign"), ("resolved", "move", "fix")]
    elif rework == REWORK_RESTARTED:
        p += [("reopened", "move", "fail"), ("in_progress", "move", "restart"),
              ("resolved", "move", "fix")]
    return p + [("closed", "move", "pass")]


def _paths() -> list[list[tuple[str, str, str]]]:
    report = ("reported", "move", "report")
    out = [[report, ("closed", "move", "self_resolve")],
           [report, ("rejected", "move", "reject_intake")],
           [report, ("accepted", "move", "accept"), ("rejected", "move", "reject")]]
    return out + [_path(r, h, w) for r in range(3) for h in range(3) for w in range(3)]


def check_path(path: list[tuple[str, str, str]]) -> None:
    """Refuse a path with a step the live workflow would refuse: a plain move outside
    TRANSITIONS (or 自处理's), a branch move from a status it cannot leave or to another."""
    for (before, _, _), (after, kind, _) in zip(path[:-1], path[1:], strict=True):
        if kind == "move":
            ok = after in TRANSITIONS[before] or (before, after) == SELF_RESOLVE
        else:
            sources, target = BRANCH_MOVES[kind]
            ok = before in sources and after == target
        if not ok:
            raise ValueError(f"a generated path steps from {before!r} to {after!r} as a {kind!r}, "
                             f"which the live workflow (gis.rules) does not allow")


def _table(paths) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    for path in paths:
        check_path(path)
    width = max(len(p) for p in paths)

    def column(i, names):
        return np.array([[names[step[i]] for step in p] + [-1] * (width - len(p)) for p in paths])

    return column(0, S), column(1, K), column(2, R)


PATHS = _paths()
STATUS, KIND, ROLE = _table(PATHS)
LENGTH = (STATUS >= 0).sum(axis=1)
WIDTH = STATUS.shape[1]


def _runs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The runs of the handling step in each path: a run starts when a case enters a status of
    the handle step from one of another step (dispatched, resumed, reopened) and lasts until it
    leaves them (resolved, returned, put on hold). Returns (run of each move (-1 none), the role
    of each run's last move, the main run: the first to end in a fix)."""
    handle = np.vectorize(lambda s: s >= 0 and STATUS_STEP.get(ISSUE_STATUSES[s]) == "handle")(
        STATUS)
    run = np.full(STATUS.shape, -1)
    ends = np.full((len(PATHS), WIDTH), -1)
    for t in range(len(PATHS)):
        count = -1
        for j in range(1, LENGTH[t]):
            if handle[t, j - 1] and not (j >= 2 and handle[t, j - 2]):
                count += 1
            if handle[t, j - 1]:
                run[t, j], ends[t, count] = count, ROLE[t, j]
    main = np.array([next((r for r in range(WIDTH) if ends[t, r] == R["fix"]), -1)
                     for t in range(len(PATHS))])
    return run, ends, main


RUN, RUN_END, MAIN_RUN = _runs()
RUN_STARTS = (RUN >= 0) & ((np.roll(RUN, 1, axis=1) != RUN) | (np.arange(WIDTH) == 1))
# The moves made by the department a case went to first (up to its return), the others by the
# one it ends with.
_RETURN_AT = np.array([list(row).index(R["return"]) if R["return"] in row else -1 for row in ROLE])
FIRST_PHASE = np.arange(WIDTH)[None, :] <= _RETURN_AT[:, None]
# Where a case held in progress stops: when the department it ends with has started on it.
STARTED = np.array([next((j for j, s in enumerate(row) if s == S["in_progress"]
                          and not FIRST_PHASE[t, j]), -1) for t, row in enumerate(STATUS)])
# Moves' share of the time of their run, before noise; and each run's last move.
_RUN_WEIGHT = {R["sign"]: 1.0, R["fix"]: 3.0, R["return"]: 1.0, R["hold"]: 1.0,
               R["restart"]: 0.8, R["redispatch"]: 0.25}
WEIGHT = np.where(RUN >= 0, np.vectorize(lambda r: _RUN_WEIGHT.get(r, 0.0), otypes=[float])(ROLE),
                  0.0)
RUN_LAST = np.array([[max(k for k in range(WIDTH) if runs[k] == run) if run >= 0 else j
                      for j, run in enumerate(runs)] for runs in RUN])



def handled_path(returned, held, rework):
    """The row of PATHS of a handled case (arrays of NO_RETURN..., NO_HOLD..., NO_REWORK...)."""
    return HANDLED + (np.asarray(returned) * 3 + held) * 3 + rework
