"""The closed loop (docs/ARCHITECTURE.md, "The issue workflow") for every generated case: its
whole history simulated from the report, cut where the data is seen, and the audit trail (``issue_events``) of the steps taken.

Generated histories follow the same rules as the live workflow (tests check every generated
step against ``gis.rules.TRANSITIONS``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data.generator.columns import EVENT_COLUMNS
from data.generator.drawing import choose
from gis.rules import (
    BEIJING_TZ_NAME,
    FINAL_STATUSES,
    ISSUE_STATUSES,
    OPEN_STATUSES,
    TRANSITIONS,
)

_S = {s: i for i, s in enumerate(ISSUE_STATUSES)}
_FINAL = [_S[s] for s in FINAL_STATUSES]
# The paths a case can take: done, rejected on intake, rejected after acceptance, and reworked
# once after failed verification (返工).
_PATH_STATUSES = (
    ("reported", "accepted", "dispatched", "in_progress", "resolved", "closed"),
    ("reported", "rejected"),
    ("reported", "accepted", "rejected"),
    ("reported", "accepted", "dispatched", "in_progress", "resolved", "reopened", "in_progress",
     "resolved", "closed"),
)
_DONE, _REJECTED_ON_INTAKE, _REJECTED_AFTER_ACCEPTANCE, _REWORKED = range(len(_PATH_STATUSES))


def _path_table(paths: tuple[tuple[str, ...], ...]) -> np.ndarray:
    """Paths as rows of status indices, -1 padded; every step must be a transition of the live
    workflow (gis.rules.TRANSITIONS), or the generator would write histories the API refuses."""
    for path in paths:
        for before, after in zip(path[:-1], path[1:], strict=True):
            if after not in TRANSITIONS[before]:
                raise ValueError(f"generated path steps from {before!r} to {after!r}, which "
                                 f"gis.rules.TRANSITIONS does not allow")
    width = max(len(p) for p in paths)
    return np.array([[_S[s] for s in p] + [-1] * (width - len(p)) for p in paths])


_PATHS = _path_table(_PATH_STATUSES)
_PATH_SHARES = (0.885, 0.025, 0.02, 0.07)
_STEP_SHARES = (1.0, 0.6, 2.0, 5.0, 2.0)  # Dirichlet weights: accept, dispatch, start, fix, verify


@dataclass
class Workflow:
    path: np.ndarray  # row of _PATHS
    times: np.ndarray  # (n, 9) epoch seconds of each step; valid where the path has a status
    done: np.ndarray  # steps that happened by the time the data is seen

    @property
    def status(self) -> np.ndarray:
        return np.array(ISSUE_STATUSES, dtype=object)[_PATHS[self.path, self.done - 1]]

    def closed_at(self) -> np.ndarray:
        """Epoch seconds the case left the loop (closed or rejected), -1 while open."""
        last = _PATHS[self.path, self.done - 1]
        ended = np.isin(last, _FINAL)
        return np.where(ended, self.times[np.arange(len(last)), self.done - 1], -1)


def simulate_workflow(reported: np.ndarray, due_hours: np.ndarray, as_of: int,
                       rng) -> Workflow:
    """Each case's whole history, then cut at ``as_of`` so that recent cases are still open.

    The time to close is lognormal around 0.43 of the category's time limit, so about one case
    in ten is late; reworked cases add a second round and run late more often; one in 25 stalls
    for days to weeks at some step. Steps are at least a minute apart.
    """
    n = len(reported)
    path = choose(np.asarray(_PATH_SHARES), n, rng)
    hours = due_hours * rng.lognormal(-0.85, 0.65, n)
    steps = hours[:, None] * rng.dirichlet(_STEP_SHARES, n)
    stalled = rng.random(n) < 0.04  # waiting for a contractor, funds or a court order
    steps[stalled, rng.integers(1, 5, stalled.sum())] += rng.uniform(3, 60, stalled.sum()) * 24
    rework = due_hours[:, None] * rng.lognormal(-1.2, 0.6, n)[:, None] * \
        rng.dirichlet((1.0, 3.0, 1.5), n)
    reject = due_hours * 0.1 * rng.lognormal(0, 0.7, n)
    dur = np.zeros((n, 8))
    dur[:, :5] = steps  # for reworked cases the fifth step is the failed verification
    dur[path == _REWORKED, 5:8] = rework[path == _REWORKED]
    dur[path == _REJECTED_ON_INTAKE, 0] = reject[path == _REJECTED_ON_INTAKE]
    dur[path == _REJECTED_AFTER_ACCEPTANCE, 1] = reject[path == _REJECTED_AFTER_ACCEPTANCE]
    seconds = np.maximum(np.round(dur * 3_600), 60).astype(np.int64)
    times = reported[:, None] + np.concatenate([np.zeros((n, 1), np.int64),
                                                np.cumsum(seconds, axis=1)], axis=1)
    valid = _PATHS[path] >= 0
    done = (valid & (times <= as_of)).sum(axis=1)
    return Workflow(path, times, np.maximum(done, 1))


# Open cases a grid worker can move on: 'resolved' waits for the secretary's verification.
_ACTIONABLE = [_S[s] for s in OPEN_STATUSES if s != "resolved"]
_IN_PROGRESS_STEPS = 4  # reported, accepted, dispatched, in_progress: the same on both paths


def hold_a_case_in_every_grid(flow: Workflow, grid: np.ndarray) -> None:
    """Leave every grid with a case its worker can act on when the data is seen.

    A grid whose cases have all ended (or wait only for verification) keeps its newest case in
    progress, stalled as one case in 25 is anyway: the demo's tablet maps never open empty, and
    which grid has work to show does not depend on the day the demo is for. ``flow`` must be in
    order of reporting; rejected cases are left as they are.
    """
    last = _PATHS[flow.path, flow.done - 1]
    served = np.zeros(int(grid.max(initial=-1)) + 1, bool)
    served[grid[np.isin(last, _ACTIONABLE)]] = True
    candidates = np.flatnonzero(np.isin(flow.path, (_DONE, _REWORKED)) & ~served[grid])[::-1]
    _, first = np.unique(grid[candidates], return_index=True)  # the newest of each grid
    newest = candidates[first]
    flow.done[newest] = np.minimum(flow.done[newest], _IN_PROGRESS_STEPS)


_NOTES = {
    "accepted": "核实属实，立案", "dispatched": "派遣至责任网格处置",
    "in_progress": "已到达现场，正在处置", "resolved": "处置完毕，已上传处置后照片",
    "closed": "核查通过，结案", "reopened": "核查未通过，要求返工",
}
_REPORT_NOTES = {"worker": "网格员巡查上报", "hotline_12345": "12345热线转办",
                 "wechat": "居民在社区微信群反映", "app": "居民通过APP上报"}
_REJECT_NOTES = ("重复上报，已合并处理", "不属于社区职责范围，已告知诉求人", "现场核实不属实")


def history_events(uuids: np.ndarray, flow: Workflow, channel: np.ndarray, worker: np.ndarray,
            rng) -> pd.DataFrame:
    """One row per step that happened: who moved the case from which status to which, when.

    The grid's worker reports (when the report is his), starts and resolves; the community
    secretary accepts, dispatches, verifies, rejects and sends work back. Residents' reports
    have no actor: they hold no account.
    """
    steps = np.arange(_PATHS.shape[1])
    issue, pos = np.nonzero(steps[None, :] < flow.done[:, None])
    to = _PATHS[flow.path[issue], pos]
    prev = np.where(pos > 0, _PATHS[flow.path[issue], np.maximum(pos - 1, 0)], -1)
    names = np.array(ISSUE_STATUSES, dtype=object)
    by_worker = np.isin(to, (_S["in_progress"], _S["resolved"])) | \
        ((to == _S["reported"]) & (channel[issue] == "worker"))
    actor = np.where(by_worker, worker[issue], "leader").astype(object)
    actor[(to == _S["reported"]) & (channel[issue] != "worker")] = None
    notes = np.array([_NOTES.get(s, "") for s in ISSUE_STATUSES], dtype=object)[to]
    first = to == _S["reported"]
    notes[first] = pd.Series(channel[issue[first]]).map(_REPORT_NOTES).to_numpy()
    rejected = to == _S["rejected"]
    notes[rejected] = np.array(_REJECT_NOTES, dtype=object)[
        rng.integers(0, len(_REJECT_NOTES), rejected.sum())]
    return pd.DataFrame({
        "issue_client_uuid": uuids[issue],
        "at": timestamps(flow.times[issue, pos]),
        "actor_username": actor,
        "from_status": np.where(prev >= 0, names[np.maximum(prev, 0)], None),
        "to_status": names[to],
        "note": notes,
    }, columns=EVENT_COLUMNS)


def timestamps(seconds: np.ndarray) -> pd.Series:
    """Epoch seconds (-1 for none) as tz-aware Asia/Shanghai timestamps (NaT for none)."""
    values = np.asarray(seconds, dtype=np.int64).astype("datetime64[s]")
    values[np.asarray(seconds) < 0] = np.datetime64("NaT")
    index = pd.DatetimeIndex(values.astype("datetime64[ns]")).tz_localize("UTC")
    return pd.Series(index.tz_convert(BEIJING_TZ_NAME))


def random_uuids(rng, n: int) -> np.ndarray:
    """Random (version 4) UUID strings from the seeded generator, formatted with numpy."""
    raw = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    chars = np.empty((n, 32), dtype=np.uint8)
    chars[:, 0::2], chars[:, 1::2] = hexdigits[raw >> 4], hexdigits[raw & 0x0F]
    dashed = np.insert(chars, [8, 12, 16, 20], ord("-"), axis=1)
    return dashed.view("S36").ravel().astype(str).astype(object)
