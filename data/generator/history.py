"""The audit trail of every generated case (``issue_events``), its extension requests (延期申请) and
supervision notices (督办), from its simulated workflow (:mod:`data.generator.workflow`).

The rows have the shapes the live command centre writes (docs/ARCHITECTURE.md, "Dispatch and the
branches"): a move has its kind ('move', 'dispatch', 'return', 'hold', 'resume') and the status
it leads to; an entry that is not a move ('extension_request', 'extension_approved',
'extension_refused', 'supervise', 'supervision_reply') has no status to go to and the status of
the case at the time. ``department`` is the department a dispatch sends the case to, a return
comes from, a hold, an extension or a notice concerns. ``details``: a dispatch's
``{"auto", "rule", "worker"}`` (an automatic dispatch has no actor), an extension's
``{"value", "unit", "due_before", "due_after"}`` and a resumption's ``{"due_before",
"due_after"}``, times as ISO 8601 in Beijing time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data.generator import departments as dep
from data.generator.columns import EVENT_COLUMNS, EXTENSION_COLUMNS, SUPERVISION_COLUMNS
from data.generator.deadlines import WORKDAYS, WorkdayTable
from data.generator.paths import FIRST_PHASE, KIND, ROLE, STATUS, R
from data.generator.workflow import Cases, Workflow
from gis.rules import BEIJING_TZ_NAME, EVENT_KINDS, ISSUE_STATUSES, LIMIT_UNITS, SELF_RESOLVED_NOTE
from gis.worktime.limits import Limit

_REPORT_NOTES = {"worker": "网格员巡查上报", "hotline_12345": "12345热线转办",
                 "wechat": "居民在社区微信群反映", "app": "居民通过APP上报"}
_REJECT_NOTES = ("重复上报，已合并处理", "不属于社区职责范围，已告知诉求人", "现场核实不属实")
_NOTES = {"sign": "已签收，安排人员处置", "fix": "处置完毕，已上传处置后照片",
          "resume": "解除挂账：条件具备，恢复处置", "pass": "核查通过，结案", "fail": "核查未通过，要求返工",
          "restart": "返工，重新处置"}
_HOLD_REASONS = ("需协调维修资金，暂缓处置", "涉及产权纠纷，待法院裁定", "冬季不具备施工条件，待开春处置",
                 "需上级部门审批立项", "当事人长期外出，暂无法处置")
_EXTENSION_REASONS = ("需采购配件，申请延期", "工程量较大，申请延期", "住户不在家，无法入户维修",
                      "需协调多个部门联合处置", "天气原因无法施工")
_REFUSALS = "理由不充分，请按期办结"
_SUPERVISE_NOTES = (("该案件已超期，请尽快处置并回复", "群众多次反映，请加快办理并说明情况"),
                    ("挂账时间较长，请说明进展及下一步安排",))
_REPLIES = ("已安排人员处置，预计今日完成", "已协调相关单位，正在加紧处置", "已向住户说明情况，正在推进")


@dataclass
class Names:
    """Who is who: the usernames and names the rows carry."""

    worker: np.ndarray  # each case's grid worker
    channel: np.ndarray
    compound: np.ndarray  # each case's compound name, "" for none
    staff: np.ndarray  # (department, k) usernames, each department's staff repeated to fill
    rule: np.ndarray  # each case's dispatch rule number (0: none)
    dispatcher: str = "dispatcher"
    leader: str = "leader"


def history_frames(uuids: np.ndarray, flow: Workflow, cases: Cases, names: Names,
                   table: WorkdayTable, rng) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(issue_events, extension_requests, supervisions) of the cases, by case and time."""
    staff_pick = rng.integers(0, names.staff.shape[1], (len(uuids), 2))
    handlers = _Handlers(flow, names, staff_pick)
    moves = _moves(flow, cases, names, handlers, rng)
    asked, extensions = _extensions(flow, names, handlers, rng)
    notices, supervisions = _supervisions(flow, names, handlers, table, rng)
    rows = pd.concat([moves, asked, notices], ignore_index=True)
    rows = rows.sort_values(["case", "at", "order"], kind="stable").reset_index(drop=True)
    events = pd.DataFrame({
        "issue_client_uuid": uuids[rows["case"].to_numpy()],
        "at": timestamps(rows["at"].to_numpy()),
    } | {c: rows[c].to_numpy(object) for c in EVENT_COLUMNS[2:]}, columns=EVENT_COLUMNS)
    extensions.insert(0, "issue_client_uuid", uuids[extensions.pop("case").to_numpy()])
    supervisions.insert(0, "issue_client_uuid", uuids[supervisions.pop("case").to_numpy()])
    return events, extensions[EXTENSION_COLUMNS], supervisions[SUPERVISION_COLUMNS]


class _Handlers:
    """Who works on each case: the department it was sent to first and the one it ends with, a
    member of each one's staff, or the grid worker."""

    def __init__(self, flow: Workflow, names: Names, pick: np.ndarray) -> None:
        self.flow, self.names = flow, names
        self.first = self._person(flow.first, pick[:, 0])
        self.right = self._person(flow.right, pick[:, 1])

    def _person(self, department: np.ndarray, pick: np.ndarray) -> np.ndarray:
        staff = self.names.staff[np.maximum(department, 0), pick]
        return np.where(department == dep.WORKER, self.names.worker, staff).astype(object)

    def department_code(self, department: np.ndarray) -> np.ndarray:
        return np.where(department == dep.WORKER, None,
                        dep.DEPARTMENT_CODES[np.maximum(department, 0)]).astype(object)


def _frame(case, at, actor, from_status, to_status, note, kind, department, details,
           order) -> pd.DataFrame:
    return pd.DataFrame({"case": case, "at": at, "actor_username": actor,
                         "from_status": from_status, "to_status": to_status, "note": note,
                         "kind": kind, "department": department, "details": details,
                         "order": order})


# -- moves ---------------------------------------------------------------------------------------
def _moves(flow: Workflow, cases: Cases, names: Names, handlers: _Handlers, rng) -> pd.DataFrame:
    steps = np.arange(STATUS.shape[1])
    case, pos = np.nonzero(steps[None, :] < flow.done[:, None])
    path = flow.path[case]
    role, to = ROLE[path, pos], STATUS[path, pos]
    prev = np.where(pos > 0, STATUS[path, np.maximum(pos - 1, 0)], -1)
    statuses = np.array(ISSUE_STATUSES, dtype=object)
    first_phase = FIRST_PHASE[path, pos]
    department = np.where(first_phase, flow.first[case], flow.right[case])
    auto = flow.auto[case] & (pos == 2) & (role == R["dispatch"])
    actor = _move_actors(flow, names, handlers, case, role, first_phase, auto)
    note = _move_notes(flow, names, case, role, department, auto, rng)
    named = np.isin(role, [R[r] for r in ("dispatch", "redispatch", "return", "hold", "resume")])
    code = np.where(named, handlers.department_code(department), None)
    details = np.full(len(case), None, dtype=object)
    dispatch = np.flatnonzero(np.isin(role, (R["dispatch"], R["redispatch"])))
    worker = department[dispatch] == dep.WORKER
    rule_followed = auto[dispatch] | (cases.rule_department[case[dispatch]] == department[dispatch])
    rules = np.where(rule_followed & (names.rule[case[dispatch]] > 0), names.rule[case[dispatch]], 0)
    details[dispatch] = [{"auto": bool(a), "rule": int(r) or None, "worker": w if k else None}
                         for a, r, w, k in zip(auto[dispatch], rules, names.worker[case[dispatch]],
                                               worker, strict=True)]
    resume = np.flatnonzero(role == R["resume"])
    details[resume] = [{"due_before": b, "due_after": a} for b, a in zip(
        iso(flow.promised[case[resume]]), iso(flow.resumed_due[case[resume]]), strict=True)]
    return _frame(case, flow.times[case, pos], actor,
                  np.where(prev >= 0, statuses[np.maximum(prev, 0)], None), statuses[to], note,
                  np.array(EVENT_KINDS, dtype=object)[KIND[path, pos]], code, details, 0)


def _move_actors(flow, names, handlers, case, role, first_phase, auto) -> np.ndarray:
    actor = np.full(len(case), names.dispatcher, dtype=object)
    worker = names.worker[case]
    reported = role == R["report"]
    actor[reported] = np.where(names.channel[case[reported]] == "worker", worker[reported], None)
    taking = np.isin(role, (R["accept"], R["reject_intake"]))
    actor[taking] = np.where(flow.accepted_by_worker[case[taking]], worker[taking],
                             names.dispatcher)
    actor[role == R["self_resolve"]] = worker[role == R["self_resolve"]]
    actor[auto] = None
    handling = np.isin(role, [R[r] for r in ("sign", "fix", "return", "hold", "resume", "restart")])
    actor[handling] = np.where(first_phase[handling], handlers.first[case[handling]],
                               handlers.right[case[handling]])
    checking = np.isin(role, (R["pass"], R["fail"]))
    actor[checking] = np.where(flow.right[case[checking]] == dep.WORKER, names.leader,
                               worker[checking])
    return actor


def _move_notes(flow, names, case, role, department, auto, rng) -> np.ndarray:
    note = np.full(len(case), "", dtype=object)
    for r, text in _NOTES.items():
        note[role == R[r]] = text
    note[(role == R["sign"]) & (department == dep.WORKER)] = "已到达现场，正在处置"
    reported = role == R["report"]
    note[reported] = pd.Series(names.channel[case[reported]]).map(_REPORT_NOTES).to_numpy()
    taking = role == R["accept"]
    note[taking] = np.where(flow.accepted_by_worker[case[taking]], "现场核实属实，立案", "受理立案")
    rejected = np.isin(role, (R["reject"], R["reject_intake"]))
    note[rejected] = _pick(_REJECT_NOTES, rejected.sum(), rng)
    note[role == R["self_resolve"]] = SELF_RESOLVED_NOTE
    to = np.where(department == dep.WORKER, "网格员 " + names.worker[case],
                  _DEPARTMENT_NAMES[np.maximum(department, 0)])
    dispatching = role == R["dispatch"]
    note[dispatching] = np.where(auto, "自动派遣至", "派遣至")[dispatching] + to[dispatching]
    redispatch = role == R["redispatch"]
    note[redispatch] = "返工，重新派遣至" + to[redispatch]
    returned = role == R["return"]
    note[returned] = "回退：" + _return_reasons(flow, names, case[returned])
    held = role == R["hold"]
    note[held] = "挂账：" + _pick(_HOLD_REASONS, held.sum(), rng)
    return note


_DEPARTMENT_NAMES = np.array([d.name for d in dep.DEMO_DEPARTMENTS], dtype=object)


def _return_reasons(flow: Workflow, names: Names, case: np.ndarray) -> np.ndarray:
    """Why a department sends a case back (回退): whose the case is, as it says."""
    first, right = flow.first[case], flow.right[case]
    company = dep.COMPANIES[np.maximum(first, 0)]
    right_company = (right >= 0) & dep.COMPANIES[np.maximum(right, 0)]
    reason = np.full(len(case), "不属本单位职责范围，请重新派遣", dtype=object)
    reason[~company & right_company] = np.char.add(
        names.compound[case[~company & right_company]].astype(str),
        "属物业管理区域，请改派物业公司").astype(object)
    reason[company & right_company] = "非本公司管理小区，请核实后重新派遣"
    reason[company & ~right_company & (right >= 0)] = "不属物业管理范围，请派相关部门处置"
    reason[right == dep.WORKER] = "属邻里纠纷，建议由社区网格员调解"
    return reason


# -- extensions --------------------------------------------------------------------------------
def _extensions(flow: Workflow, names: Names, handlers: _Handlers,
                rng) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The event rows of the extension requests and decisions, and the requests' rows (in case
    order: a request's number, in details, is its position from 1). As gis.issues.branches
    writes them: the request names the time asked for; the decision the case's deadline before
    and after it (the same when refused), as does the request's row once decided."""
    b = flow.branches
    case = np.flatnonzero(flow.happened(b.requested))
    number = np.arange(1, len(case) + 1)
    decided = flow.happened(b.decided[case], case)
    approved = b.approved[case] & decided
    unit = np.array(LIMIT_UNITS, dtype=object)[b.unit[case]]
    value = b.value[case]
    before = np.where(decided, b.due_before[case], -1)
    after = np.where(approved, b.due_after[case], before)
    department = handlers.department_code(flow.right[case])
    reason = _pick(_EXTENSION_REASONS, len(case), rng)
    asked = np.array([f"延期申请 {Limit(int(v), u).describe()}：" for v, u in zip(value, unit,
                                                                            strict=True)],
                     dtype=object)
    staff = handlers.right[case]
    statuses = np.array(ISSUE_STATUSES, dtype=object)
    request = _frame(case, b.requested[case], staff,
                     statuses[flow.status_at(b.requested[case], case)], None, asked + reason,
                     "extension_request", department,
                     [{"request": int(n), "value": int(v), "unit": u}
                      for n, v, u in zip(number, value, unit, strict=True)], 1)
    d = np.flatnonzero(decided)
    note = np.where(approved, "批准延期 " + np.array([Limit(int(v), u).describe() for v, u in zip(
        value, unit, strict=True)], dtype=object), "驳回延期：" + _REFUSALS)
    decision = _frame(case[d], b.decided[case[d]], names.dispatcher,
                      statuses[flow.status_at(b.decided[case[d]], case[d])], None, note[d],
                      np.where(approved[d], "extension_approved", "extension_refused"),
                      department[d],
                      [{"request": int(n), "value": int(v), "unit": u, "due_before": x, "due_after": y}
                       for n, v, u, x, y in zip(number[d], value[d], unit[d], iso(before[d]),
                                                iso(after[d]), strict=True)], 1)
    rows = pd.DataFrame({
        "case": case, "requested_by": staff, "requested_at": timestamps(b.requested[case]),
        "value": value, "unit": unit, "reason": reason,
        "decided_by": np.where(decided, names.dispatcher, None),
        "decided_at": timestamps(np.where(decided, b.decided[case], -1)),
        "approved": pd.array(np.where(decided, approved, None), dtype="boolean"),
        "decision_note": np.where(decided & ~approved, _REFUSALS, None),
        "due_before": timestamps(before), "due_after": timestamps(after),
    })
    return pd.concat([request, decision], ignore_index=True), rows


# -- supervision notices ---------------------------------------------------------------------------
def _supervisions(flow: Workflow, names: Names, handlers: _Handlers, table: WorkdayTable,
                  rng) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The event rows of the notices and their replies, and the notices' rows (by case and
    time: a notice's number, in details, is its position from 1), as gis.issues.branches
    writes them."""
    b = flow.branches
    slots = [np.flatnonzero(flow.happened(b.supervised[:, slot])) for slot in (0, 1)]
    case = np.concatenate(slots)
    slot = np.repeat([0, 1], [len(x) for x in slots])
    issued = b.supervised[case, slot]
    order = np.lexsort((issued, case))
    case, slot, issued = case[order], slot[order], issued[order]
    number = np.arange(1, len(case) + 1)
    replied = b.replied[case, slot]
    answered = flow.happened(replied, case)
    department = handlers.department_code(flow.right[case])
    note = np.where(slot == 0, _pick(_SUPERVISE_NOTES[0], len(case), rng),
                    _pick(_SUPERVISE_NOTES[1], len(case), rng))
    due = table.deadline(issued, 1, WORKDAYS)
    statuses = np.array(ISSUE_STATUSES, dtype=object)
    notices = _frame(case, issued, names.leader, statuses[flow.status_at(issued, case)], None,
                     "督办：" + note, "supervise", department,
                     [{"supervision": int(n), "reply_due_at": d}
                      for n, d in zip(number, iso(due), strict=True)], 1)
    a = np.flatnonzero(answered)
    status = statuses[flow.status_at(replied[a], case[a])]
    reply = np.where(status == "resolved", "已处置完毕，等待核查", _pick(_REPLIES, len(a), rng))
    staff = handlers.right[case]
    replies = _frame(case[a], replied[a], staff[a], status, None, "督办回复：" + reply,
                     "supervision_reply", department[a],
                     [{"supervision": int(n)} for n in number[a]], 1)
    answer = np.full(len(case), None, dtype=object)
    answer[a] = reply
    rows = pd.DataFrame({
        "case": case, "issued_by": names.leader, "issued_at": timestamps(issued), "note": note,
        "reply_due_at": timestamps(due), "replied_by": np.where(answered, staff, None),
        "replied_at": timestamps(np.where(answered, replied, -1)), "reply": answer})
    return pd.concat([notices, replies], ignore_index=True), rows


# -- helpers ---------------------------------------------------------------------------------------
def _pick(options, n: int, rng) -> np.ndarray:
    return np.array(options, dtype=object)[rng.integers(0, len(options), n)]


def iso(seconds: np.ndarray) -> list[str | None]:
    """Epoch seconds as ISO 8601 in Beijing time ('2026-05-20T17:30:00+08:00'), None for -1."""
    stamps = timestamps(seconds)
    return [None if pd.isna(t) else t.isoformat() for t in stamps]


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
