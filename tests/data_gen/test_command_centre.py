"""The demo exercises the command centre: departments and their staff, dispatch rules, and a year
of history with dispatches, returns (回退), extensions (延期), holds (挂账), supervision notices
(督办) and rework (返工), every step timed against its own limit, and every grade of the
evaluation somewhere.

No database: these check the frames ``generate_demo`` returns against the live rules
(gis.rules, gis.worktime), recomputed here case by case. tests/gis/test_demo_db.py checks the
loaded demo.
"""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from data.generator import DemoData, generate_demo
from data.generator.paths import PATHS, check_path
from gis.db.category_seeds import ISSUE_CATEGORIES
from gis.geo.crs import metric_crs_for
from gis.rules import (
    BRANCH_MOVES,
    DEFAULT_WORKDAY_END,
    EVENT_KINDS,
    EXTENSION_STATUSES,
    FINAL_STATUSES,
    MOVE_EVENT_KINDS,
    PROMISE_STEP,
    SELF_RESOLVE,
    SUPERVISION_STATUSES,
    TRANSITIONS,
    UNTIMED_STATUSES,
)
from gis.worktime.calendar import WorkCalendar
from gis.worktime.limits import Limit, deadline, extended
from gis.worktime.steps import replay

TODAY = date(2026, 5, 20)
LIMITS = {}
for _category in ISSUE_CATEGORIES:
    for _seed in _category.limits:
        LIMITS.setdefault((_category.code, _seed.urgency), {})[_seed.step] = \
            Limit(_seed.value, _seed.unit)
CALENDAR = WorkCalendar()
# The default weights of a composite score (结案率, 按期结案率, 返工率, 延期率, 回退率 for a department;
# 有效上报率, 按时核实率, 按时核查率 for a grid worker) and grade thresholds: a reference for how
# far apart the demo's departments and workers are, not the evaluation's own definition.
GRADES = ((90, "A"), (75, "B"), (60, "C"), (40, "D"), (-1, "E"))


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return generate_demo(today=TODAY)


@pytest.fixture(scope="module")
def steps(demo) -> pd.DataFrame:
    """Every case's steps by the live rule (gis.worktime.steps.replay) from its history, with the
    actor of the move that ended each."""
    return replayed_steps(demo)


def replayed_steps(data: DemoData) -> pd.DataFrame:
    e = data.issue_events
    kind = data.issues.set_index("client_uuid")[["category", "urgency"]]
    rows = []
    for uuid, history in e.groupby("issue_client_uuid", sort=False):
        moved = history[history["to_status"].notna()]
        at = [t.to_pydatetime() for t in moved["at"]]
        moves = zip(at, moved["from_status"].where(moved["from_status"].notna(), None),
                    moved["to_status"], strict=True)
        approved = history[history["kind"].eq("extension_approved")]
        granted = [(t.to_pydatetime(), Limit(d["value"], d["unit"]))
                   for t, d in zip(approved["at"], approved["details"], strict=True)]
        actor = dict(zip(at, moved["actor_username"], strict=True))
        category, urgency = kind.loc[uuid]
        for s in replay(moves, LIMITS[category, urgency], CALENDAR, DEFAULT_WORKDAY_END, granted):
            rows.append((uuid, s.step, s.started_at, s.due_at, s.done_at,
                         actor.get(s.done_at) if s.done_at else None))
    return pd.DataFrame(rows, columns=["uuid", "step", "started_at", "due_at", "done_at", "actor"])


def legal_history(events: pd.DataFrame) -> pd.Series:
    """Per row: whether it is legal under the live rules where it stands in its case's history.
    A move leaves the status the case is in (none for the report) by TRANSITIONS or 自处理 ('move')
    or by BRANCH_MOVES (the branch kinds); any other entry goes nowhere (to_status NULL) and
    records the status the case is in, one an extension may be asked for in, or a notice
    issued on."""
    is_move = events["kind"].isin(MOVE_EVENT_KINDS)
    current = events["to_status"].where(is_move).groupby(events["issue_client_uuid"]).transform(
        lambda s: s.ffill().shift())
    ok = []
    for kind, before, after, now, move in zip(events["kind"], events["from_status"],
                                              events["to_status"], current, is_move, strict=True):
        before = None if pd.isna(before) else before
        now = None if pd.isna(now) else now
        if kind not in EVENT_KINDS or move == pd.isna(after) or before != now:
            ok.append(False)
        elif now is None:
            ok.append(kind == "move" and after == "reported")
        elif kind == "move":
            ok.append(after in TRANSITIONS[now] or (now, after) == SELF_RESOLVE)
        elif move:
            sources, target = BRANCH_MOVES[kind]
            ok.append(now in sources and after == target)
        elif kind.startswith("extension"):
            ok.append(now in EXTENSION_STATUSES)
        else:
            ok.append(now in SUPERVISION_STATUSES)
    return pd.Series(ok, index=events.index)


def grade(score: float) -> str:
    return next(g for threshold, g in GRADES if score >= threshold)


# ------------------------------------------------------------------------------- legal histories


def test_every_generated_path_is_a_legal_sequence():
    for path in PATHS:
        check_path(path)
    with pytest.raises(ValueError, match="does not allow"):
        check_path([("reported", "move", "report"), ("dispatched", "dispatch", "dispatch")])
    with pytest.raises(ValueError, match="does not allow"):
        check_path([("resolved", "move", "fix"), ("on_hold", "hold", "hold")])


def test_every_history_is_legal_under_the_live_rules(demo):
    e = demo.issue_events
    legal = legal_history(e)
    assert legal.all(), e[~legal].head(10).to_string()
    last = e[e["to_status"].notna()].groupby("issue_client_uuid")["to_status"].last()
    assert (last == demo.issues.set_index("client_uuid").loc[last.index, "status"]).all()
    # in time order within each case, a move never at the same moment as another of its case
    assert e.groupby("issue_client_uuid")["at"].apply(lambda t: t.is_monotonic_increasing).all()
    moves = e[e["to_status"].notna()]
    assert not moves.duplicated(["issue_client_uuid", "at"]).any()


def test_the_legality_check_can_fail(demo):
    e = demo.issue_events.copy()
    hold = e.index[e["kind"].eq("hold")][0]
    e.loc[hold, "kind"] = "resume"  # in_progress -> on_hold is no resumption
    supervised = e.index[e["kind"].eq("supervise")][0]
    e.loc[supervised, "to_status"] = "closed"  # a notice moves nothing
    legal = legal_history(e)
    assert not legal[hold] and not legal[supervised] and legal.drop([hold, supervised]).all()


@settings(max_examples=8, deadline=None)
@given(st.dates(min_value=date(2001, 1, 1), max_value=date(2098, 12, 31)),
       st.integers(min_value=0, max_value=2**31))
def test_histories_are_legal_on_any_day_and_seed(day, seed):
    data = generate_demo(seed=seed, grids=14, issues=600, detail=False, today=day)
    assert legal_history(data.issue_events).all()
    assert (data.issue_events["at"] <= data.seen_at).all()


# ------------------------------------------------------------------------------- the branches


def test_every_branch_occurs_with_plausible_counts(demo):
    e, i = demo.issue_events, demo.issues
    kinds = e["kind"].value_counts()
    dispatched = e.loc[e["kind"].eq("dispatch"), "issue_client_uuid"].nunique()
    per_case = {k: e.loc[e["kind"].eq(k), "issue_client_uuid"].nunique() / dispatched
                for k in EVENT_KINDS}
    assert 0.75 < dispatched / len(i) < 0.95
    assert 0.02 < per_case["return"] < 0.08  # 回退
    assert 0.03 < per_case["extension_request"] < 0.1  # 延期
    assert 0.5 < kinds["extension_approved"] / (kinds["extension_approved"]
                                                + kinds["extension_refused"]) < 0.9
    assert 0.01 < per_case["hold"] < 0.04  # 挂账: some resumed, some still on hold
    assert 0.6 < kinds["resume"] / kinds["hold"] < 0.98 and i["status"].eq("on_hold").sum() >= 3
    assert 0.03 < per_case["supervise"] < 0.1  # 督办: most answered, a few not
    assert 0.75 < kinds["supervision_reply"] / kinds["supervise"] < 0.95
    reworked = e.loc[e["to_status"].eq("reopened"), "issue_client_uuid"].nunique()
    assert 0.03 < reworked / dispatched < 0.12  # 返工
    auto = e["kind"].eq("dispatch") & e["details"].map(lambda d: bool(d and d.get("auto")))
    assert 0.3 < auto.sum() / kinds["dispatch"] < 0.7  # the share dispatched by the rules
    to_worker = e["kind"].eq("dispatch") & e["department"].isna()
    assert 0.1 < to_worker.sum() / kinds["dispatch"] < 0.35  # community matters: the grid worker
    assert 0.05 < i["urgency"].eq("urgent").mean() < 0.2 and 0.02 < i["self_resolved"].mean() < 0.08


def test_every_department_has_cases_and_staff(demo):
    i, u = demo.issues, demo.users
    handled = i["department"].value_counts()
    assert set(handled.index) == set(demo.departments["code"])
    assert handled.min() >= 30
    names = dict(zip(demo.departments["code"], demo.departments["name"], strict=True))
    assert [names[c] for c in ("huanwei", "shizheng", "yuanlin", "gongre", "zhifa")] == \
        ["环卫所", "市政所", "园林所", "供热公司", "综合执法队"]
    assert demo.departments["name"].str.contains("物业").sum() == 5
    staff = u.loc[u["role"].eq("department"), "department"].value_counts()
    assert set(staff.index) == set(demo.departments["code"]) and staff.max() == 2
    categories = demo.departments.set_index("code")["categories"]
    closed = i[i["department"].notna() & i["status"].eq("closed")]
    for code, cases in closed.groupby("department"):  # (an open case may await its return)
        assert set(cases["category"]) <= set(categories[code]), code


def test_property_matters_in_a_managed_yard_go_to_its_company(demo):
    """A case inside a compound with a property company, of a kind the company looks after, ends
    with that company; the same kind on a street with the public department."""
    metric = metric_crs_for(112.86)
    c = demo.compounds[demo.compounds["property_company"].notna()]
    i = demo.issues[demo.issues["status"].eq("closed") & demo.issues["department"].notna()]
    yards = c.geometry.to_crs(metric).values
    points = i.geometry.to_crs(metric).values
    case, yard = shapely.STRtree(yards).query(points, predicate="within")
    inside = shapely.distance(shapely.boundary(yards[yard]), points[case]) > 3
    company = pd.Series(c["property_company"].to_numpy()[yard[inside]], index=i.index[case[inside]])
    managed = i.loc[company.index]
    matters = managed["category"].isin(["elevator_failure", "garbage", "parking_chaos",
                                        "sewer_blocked", "road_damaged", "greenery"])
    assert matters.sum() > 100
    assert (managed.loc[matters, "department"] == company[matters]).all()
    near = shapely.STRtree(yards).query(points, predicate="dwithin", distance=5)[0]
    streets = i[~np.isin(np.arange(len(i)), near) & i["category"].eq("garbage")]
    assert len(streets) > 100 and streets["department"].eq("huanwei").all()


def test_dispatches_follow_the_rules(demo):
    """Automatic dispatches have no actor and follow an automatic rule of the case's category to
    its department; manual ones the desk made, naming the rule only if they followed it; a
    dispatch to the grid worker names the worker of the case's grid."""
    e, i = demo.issue_events, demo.issues
    rules = demo.dispatch_rules
    d = e[e["kind"].eq("dispatch")]
    details = pd.DataFrame(list(d["details"]), index=d.index)
    category = d["issue_client_uuid"].map(i.set_index("client_uuid")["category"])
    cited = details["rule"].notna()
    rule = rules.iloc[details.loc[cited, "rule"].astype(int) - 1]
    assert (rule["category"].to_numpy() == category[cited].to_numpy()).all()
    same = rule["department"].fillna("-").to_numpy() == d.loc[cited, "department"].fillna("-")
    assert same.all()
    auto = details["auto"].astype(bool)
    assert d.loc[auto, "actor_username"].isna().all() and cited[auto].all()
    assert rules.iloc[details.loc[auto, "rule"].astype(int) - 1]["auto"].all()
    assert d.loc[~auto, "actor_username"].eq("dispatcher").all()
    grid_worker = d["issue_client_uuid"].map(i.set_index("client_uuid")["grid_code"]).map(
        demo.grids.set_index("code")["worker_username"])
    to_worker = d["department"].isna()
    assert (details.loc[to_worker, "worker"] == grid_worker[to_worker]).all()
    assert details.loc[~to_worker, "worker"].isna().all()
    assert rules.duplicated(["category", "region_code"]).sum() == 0


def test_returned_cases_go_back_to_the_desk_and_on(demo):
    """A return (回退) comes from the department the case was sent to, with a reason, and the
    desk sends it on (to another department, or the same if the return was not founded)."""
    e = demo.issue_events
    handler = e["department"].where(e["kind"].eq("dispatch")).groupby(
        e["issue_client_uuid"]).ffill()
    returns = e[e["kind"].eq("return")]
    assert (returns["department"] == handler[returns.index]).all()
    assert returns["note"].str.len().gt(4).all() and returns["to_status"].eq("accepted").all()
    moves = e[e["to_status"].notna()]
    after = moves.groupby("issue_client_uuid")["kind"].shift(-1)[returns.index]
    assert after.dropna().eq("dispatch").all()
    again = moves.groupby("issue_client_uuid")["department"].shift(-1)[returns.index]
    assert (again.fillna("-") != returns["department"]).mean() > 0.5


def test_each_case_is_with_the_department_of_its_last_dispatch(demo):
    e, i = demo.issue_events, demo.issues
    last = e[e["kind"].isin(["dispatch", "return"])].groupby("issue_client_uuid").tail(1)
    sent = last.set_index("issue_client_uuid")
    expected = sent["department"].where(sent["kind"].eq("dispatch"))
    department = i.set_index("client_uuid")["department"]
    assert (department.loc[expected.index].fillna("-") == expected.fillna("-")).all()
    never = ~i["client_uuid"].isin(sent.index)
    assert i.loc[never, "department"].isna().all()


# ------------------------------------------------------------------------------- deadlines


def test_extensions_move_the_deadline_when_approved(demo):
    """An approved extension moves the case's due_at by the time granted, from the old one by the
    live rule (gis.worktime.limits.extended); a refused or pending one moves nothing. The rows of
    extension_requests are those of the history, which name them by number."""
    x, e, i = demo.extension_requests, demo.issue_events, demo.issues.set_index("client_uuid")
    asked = e[e["kind"].eq("extension_request")]
    assert len(x) == len(asked) and not x["issue_client_uuid"].duplicated().any()
    numbers = asked["details"].map(lambda d: d["request"])
    assert (x["issue_client_uuid"].to_numpy()[numbers - 1] == asked["issue_client_uuid"]).all()
    assert (x["requested_at"].to_numpy()[numbers - 1] == asked["at"]).all()
    decided = x[x["approved"].notna()]
    assert len(decided) == e["kind"].isin(["extension_approved", "extension_refused"]).sum()
    pending = x[x["approved"].isna()]
    assert pending["due_before"].isna().all() and pending["due_after"].isna().all()
    approved = decided[decided["approved"].astype(bool)]
    for row in approved.itertuples():
        granted = Limit(int(row.value), row.unit)
        assert row.due_after == extended(row.due_before.to_pydatetime(), granted, CALENDAR)
    later = e[e["kind"].isin(["resume", "extension_approved"])].groupby(
        "issue_client_uuid")["at"].max()
    last_approved = approved.groupby("issue_client_uuid").tail(1).set_index("issue_client_uuid")
    final = last_approved[last_approved["decided_at"] == later.loc[last_approved.index]]
    assert len(final) > 20
    assert (i.loc[final.index, "due_at"] == final["due_after"]).all()
    refused = decided[~decided["approved"].astype(bool)]
    assert (refused["due_after"] == refused["due_before"]).all() and len(refused) > 5
    unmoved = refused[~refused["issue_client_uuid"].isin(later.index)]
    assert (i.loc[unmoved["issue_client_uuid"], "due_at"].to_numpy()
            == unmoved["due_before"].to_numpy()).all()


def test_approved_extensions_move_the_running_handling_step(demo, steps):
    """The handling step running when an extension is approved ends later by the time granted:
    its deadline is no longer the limit from its start."""
    approvals = demo.issue_events[demo.issue_events["kind"].eq("extension_approved")]
    handle = steps[steps["step"].eq("handle")]
    moved = 0
    for row in approvals.itertuples():
        mine = handle[handle["uuid"].eq(row.issue_client_uuid)
                      & (handle["started_at"] <= row.at)
                      & (handle["done_at"].isna() | (handle["done_at"] > row.at))]
        assert len(mine) == 1
        step = mine.iloc[0]
        category, urgency = demo.issues.set_index("client_uuid").loc[
            row.issue_client_uuid, ["category", "urgency"]]
        plain = deadline(step["started_at"], LIMITS[category, urgency]["handle"], CALENDAR)
        granted = Limit(row.details["value"], row.details["unit"])
        assert step["due_at"] == extended(plain, granted, CALENDAR)
        moved += 1
    assert moved > 20


def test_holds_stop_the_clock_and_resuming_restarts_it(demo):
    """A resumption (解除挂账) sets due_at to the deadline of a fresh handling from it; a case
    still on hold is open but never overdue."""
    e, i = demo.issue_events, demo.issues.set_index("client_uuid")
    resumed = e[e["kind"].eq("resume")]
    assert len(resumed) > 20
    for row in resumed.itertuples():
        category, urgency = i.loc[row.issue_client_uuid, ["category", "urgency"]]
        fresh = deadline(row.at.to_pydatetime(), LIMITS[category, urgency][PROMISE_STEP], CALENDAR)
        assert datetime.fromisoformat(row.details["due_after"]) == fresh
    held = i[i["status"].eq("on_hold")]
    assert len(held) >= 3 and "on_hold" in UNTIMED_STATUSES


def test_supervision_notices_and_their_replies(demo):
    s, e = demo.supervisions, demo.issue_events
    notices = e[e["kind"].eq("supervise")]
    assert len(s) == len(notices) > 50
    numbers = notices["details"].map(lambda d: d["supervision"])
    assert (s["issued_at"].to_numpy()[numbers - 1] == notices["at"]).all()
    assert (s["reply_due_at"].to_numpy()[numbers - 1] == notices["details"].map(
        lambda d: pd.Timestamp(d["reply_due_at"]))).all()
    answers = e[e["kind"].eq("supervision_reply")]
    assert (s["replied_at"].to_numpy()[answers["details"].map(lambda d: d["supervision"]) - 1]
            == answers["at"]).all()
    answered = s[s["replied_at"].notna()]
    assert len(answered) == e["kind"].eq("supervision_reply").sum()
    assert 0.7 < len(answered) / len(s) < 0.97  # most answered, a few not
    assert (answered["replied_at"] > answered["issued_at"]).all()
    assert s["issued_by"].eq("leader").all() and (s["reply_due_at"] > s["issued_at"]).all()
    staff = demo.users.set_index("username")["role"]
    assert answered["replied_by"].map(staff).isin(["department", "worker"]).all()
    on_time = (answered["replied_at"] <= answered["reply_due_at"]).mean()
    assert 0.6 < on_time < 1


# ------------------------------------------------------------------------------- step times


def test_steps_are_timed_against_their_own_limits(steps):
    """Each step is timed against its own limit: most on time, some late, none of them all."""
    done = steps[steps["done_at"].notna()]
    on_time = (done["done_at"] <= done["due_at"]).groupby(done["step"]).mean()
    assert 0.85 < on_time["accept"] < 0.98
    assert 0.88 < on_time["dispatch"] < 0.995
    assert 0.75 < on_time["handle"] < 0.93
    assert 0.78 < on_time["verify"] < 0.95
    minutes = (done["done_at"] - done["started_at"]).dt.total_seconds() / 60
    assert minutes[done["step"].eq("accept")].median() < 30  # minutes, not days
    assert minutes[done["step"].eq("verify")].median() < 120


def test_departments_and_workers_differ_so_that_every_grade_occurs(demo, steps):
    """With the default grade thresholds (90/75/60/40) and plain weights, the departments span
    A-D and the grid workers A-E: who works well and who does not shows."""
    i, e = demo.issues, demo.issue_events
    reworked = set(e.loc[e["to_status"].eq("reopened"), "issue_client_uuid"])
    asked = e[e["kind"].eq("extension_request")]
    returned = e[e["kind"].eq("return")]["department"].value_counts()
    sent = e[e["kind"].eq("dispatch")]["department"].value_counts()
    departments = {}
    for code, cases in i[i["department"].notna()].groupby("department"):
        closed = cases[cases["status"].eq("closed")]
        on_time = (closed["closed_at"] <= closed["due_at"]).mean()
        rates = (len(closed) / len(cases), cases["client_uuid"].isin(reworked).mean(),
                 cases["client_uuid"].isin(asked.loc[asked["department"].eq(code),
                                                     "issue_client_uuid"]).mean(),
                 returned.get(code, 0) / sent[code])
        departments[code] = 100 * (0.4 * on_time + 0.2 * rates[0] + 0.15 * (1 - rates[1])
                                   + 0.15 * (1 - rates[2]) + 0.1 * (1 - rates[3]))
    workers = {}
    grid_worker = demo.grids.set_index("code")["worker_username"]
    own = i[i["channel"].eq("worker")]
    done = steps[steps["done_at"].notna()]
    for code, worker in grid_worker.items():
        valid = own.loc[own["grid_code"].eq(code), "status"].ne("rejected").mean()
        mine = done[done["actor"].eq(worker)]
        verified = mine[mine["step"].eq("accept")]
        checked = mine[mine["step"].eq("verify")]
        workers[worker] = 100 * (0.3 * valid
                                 + 0.35 * (verified["done_at"] <= verified["due_at"]).mean()
                                 + 0.35 * (checked["done_at"] <= checked["due_at"]).mean())
    assert {grade(s) for s in departments.values()} >= set("ABCD")
    assert {grade(s) for s in workers.values()} == set("ABCDE")
    assert departments["shizheng"] > 90 > 60 > departments["anju"]


def test_open_cases_wait_at_various_steps(demo):
    i = demo.issues
    open_now = i[~i["status"].isin(FINAL_STATUSES)]
    assert {"dispatched", "in_progress", "on_hold"} <= set(open_now["status"])


def test_the_same_seed_gives_the_same_history(demo):
    again = generate_demo(today=TODAY)
    for name in ("issue_events", "extension_requests", "supervisions", "dispatch_rules"):
        pd.testing.assert_frame_equal(getattr(demo, name), getattr(again, name))
    assert np.array_equal(demo.issues["department"].fillna("-"),
                          again.issues["department"].fillna("-"))


@pytest.mark.parametrize("issues", [0, 1, 7])
def test_tiny_datasets_have_legal_histories(issues):
    data = generate_demo(issues=issues, today=TODAY)
    assert len(data.issues) == issues and legal_history(data.issue_events).all()
    assert len(data.extension_requests) <= issues and len(data.supervisions) <= 2 * issues
