"""The command centre's closed loop over HTTP: one case walked through every branch — automatic
dispatch by a rule, 回退, dispatch by hand, 延期 approved and refused, 督办 and its reply, 挂账 and
its resumption, rework — checking its history, its deadlines and who was notified; then the
refusals (409 naming what is allowed, 422 without a reason, 403 for the wrong department) and
the notification of late steps, once each."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from gis.rules import BEIJING, BRANCH_MOVES, MOVE_EVENT_KINDS, TRANSITIONS
from gis.worktime.calendar import WorkCalendar
from gis.worktime.limits import Limit, deadline
from tests.api.conftest import bearer
from tests.api.scope_data import GRID_OWN, add_case, grid_id, grid_point
from tests.api.test_pages import page_login

USERS = ("dispatcher", "leader", "shizheng01", "huanwei01", "worker03", "worker05", "admin")
ZH = {"Accept-Language": "zh-CN"}


@pytest.fixture(scope="module")
def tokens(app_client) -> dict[str, dict]:
    return {user: bearer(app_client, user) for user in USERS}


def new_case(sql, status="reported", category="garbage", **kw) -> int:
    lon, lat = grid_point(sql, GRID_OWN)
    issue = add_case(sql, lon, lat, grid_id=grid_id(sql, GRID_OWN), status=status,
                     category=category, **kw)
    return issue


def post(client, path, body, headers, lang=None):
    return client.post(f"/api/v1{path}", json=body, headers=headers | (ZH if lang else {}))


def unread(client, headers) -> list[dict]:
    r = client.get("/api/v1/me/notifications?unread=true", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["unread"] == r.json()["count"]
    return r.json()["data"]


def notified(client, headers, issue, kind) -> bool:
    return any(n["issue_id"] == issue and n["kind"] == kind for n in unread(client, headers))


def case_row(sql, issue):
    return sql("""SELECT i.status, i.due_at, d.code AS department FROM issues i
                  LEFT JOIN departments d ON d.id = i.department_id WHERE i.id = :i""", i=issue)[0]


def running_step(sql, issue):
    rows = sql("SELECT step, due_at FROM issue_steps WHERE issue_id = :i AND done_at IS NULL",
               i=issue)
    return rows[0] if rows else None


def calendar(sql) -> WorkCalendar:
    return WorkCalendar(dict(sql("SELECT day, working FROM calendar_overrides")))


@pytest.fixture
def wrong_rule(sql):
    """Garbage goes to the 市政所 automatically, in this community: a wrong rule to return."""
    sql("DELETE FROM dispatch_rules WHERE category = 'garbage'")
    sql("""INSERT INTO dispatch_rules (category, region_id, department_id, auto)
           SELECT 'garbage', g.community_id, (SELECT id FROM departments WHERE code = 'shizheng'),
                  true FROM grids g WHERE g.code = :g AND g.valid_to IS NULL""", g=GRID_OWN)


def test_a_case_through_every_branch(client, tokens, sql, wrong_rule):
    issue = new_case(sql)
    dispatcher, leader = tokens["dispatcher"], tokens["leader"]
    shizheng, huanwei = tokens["shizheng01"], tokens["huanwei01"]

    # 立案: the rule dispatches it at once, with no actor, to the 市政所 (wrongly).
    r = post(client, f"/issues/{issue}/transitions", {"to": "accepted"}, dispatcher)
    assert r.status_code == 200, r.text
    assert case_row(sql, issue).status == "dispatched"
    assert case_row(sql, issue).department == "shizheng"
    auto = client.get(f"/api/v1/issues/{issue}/history", headers=dispatcher).json()[-1]
    assert (auto["kind"], auto["actor"], auto["department"]) == ("dispatch", None, "shizheng")
    assert auto["details"]["auto"] is True and auto["details"]["rule"] is not None
    assert running_step(sql, issue).step == "handle"

    # 回退: not the 市政所's; the huanwei staff may not touch it, a reason is required.
    assert post(client, f"/issues/{issue}/return", {"reason": "不是我们的"}, huanwei).status_code == 403
    r = post(client, f"/issues/{issue}/return", {"reason": " "}, shizheng, lang="zh")
    assert r.status_code == 422
    r = post(client, f"/issues/{issue}/return", {"reason": "属环卫职责，非市政设施"}, shizheng)
    assert r.status_code == 200, r.text
    assert r.json()["to"] == "accepted" and r.json()["department"] is None
    assert "dispatch" in r.json()["allowed"]["actions"]
    assert running_step(sql, issue).step == "dispatch"
    assert notified(client, dispatcher, issue, "returned")

    # 派遣 by hand to the 环卫所.
    r = post(client, f"/issues/{issue}/dispatch", {"department": "huanwei"}, dispatcher)
    assert r.status_code == 200, r.text
    assert (r.json()["to"], r.json()["department"]) == ("dispatched", "huanwei")
    handle = running_step(sql, issue)
    assert handle.step == "handle" and handle.due_at is not None

    # 延期 approved: the promised deadline and the step's move by two working days, each.
    r = post(client, f"/issues/{issue}/extensions",
             {"value": 2, "unit": "workdays", "reason": "需协调清运车辆"}, huanwei)
    assert r.status_code == 201, r.text
    again = post(client, f"/issues/{issue}/extensions",
                 {"value": 1, "unit": "workdays", "reason": "再申请"}, huanwei)
    assert again.status_code == 409
    assert notified(client, dispatcher, issue, "extension_request")
    before = case_row(sql, issue).due_at
    r = post(client, f"/issues/{issue}/extensions/decision", {"approve": True}, dispatcher)
    assert r.status_code == 200, r.text
    two = Limit(2, "workdays")
    assert case_row(sql, issue).due_at == deadline(before, two, calendar(sql))
    assert running_step(sql, issue).due_at == deadline(handle.due_at, two, calendar(sql))
    assert datetime.fromisoformat(r.json()["due_after"]) == case_row(sql, issue).due_at
    assert case_row(sql, issue).due_at.astimezone(BEIJING).strftime("%H:%M") == "17:30"
    assert notified(client, huanwei, issue, "extension_decided")

    # 延期 refused: a reason is required, and nothing moves.
    post(client, f"/issues/{issue}/extensions",
         {"value": 5, "unit": "workdays", "reason": "还要更久"}, huanwei)
    due = case_row(sql, issue).due_at
    refuse = post(client, f"/issues/{issue}/extensions/decision", {"approve": False}, dispatcher)
    assert refuse.status_code == 422
    refuse = post(client, f"/issues/{issue}/extensions/decision",
                  {"approve": False, "note": "一般垃圾应当日清运"}, dispatcher)
    assert refuse.status_code == 200 and refuse.json()["approved"] is False
    assert case_row(sql, issue).due_at == due

    # 督办: the leader's notice reaches the 环卫所, whose reply reaches the leader.
    assert post(client, f"/issues/{issue}/supervisions", {"note": "请加快"}, dispatcher).status_code == 403
    r = post(client, f"/issues/{issue}/supervisions", {"note": "群众反映强烈，请今日处理"}, leader)
    assert r.status_code == 201, r.text
    supervision = r.json()["id"]
    assert notified(client, huanwei, issue, "supervision")
    r = post(client, f"/supervisions/{supervision}/reply", {"reply": "已安排今日下午清运"}, huanwei)
    assert r.status_code == 200, r.text
    assert post(client, f"/supervisions/{supervision}/reply", {"reply": "又一次"},
                huanwei).status_code == 409
    assert notified(client, leader, issue, "supervision_reply")

    # 挂账: open, counted, never overdue, even past its deadline; a second hold is refused and
    # the 409 names what is allowed now.
    r = post(client, f"/issues/{issue}/transitions", {"to": "in_progress"}, huanwei)
    assert r.status_code == 200, r.text
    r = post(client, f"/issues/{issue}/hold", {"reason": "需等待产权单位确认"}, huanwei)
    assert r.status_code == 200 and r.json()["to"] == "on_hold"
    assert running_step(sql, issue) is None
    sql("UPDATE issues SET due_at = now() - interval '1 day' WHERE id = :i", i=issue)
    feature = client.get(f"/api/v1/issues/{issue}", headers=dispatcher).json()
    assert feature["properties"]["status"] == "on_hold"
    assert feature["properties"]["overdue"] is False
    r = post(client, f"/issues/{issue}/hold", {"reason": "再挂"}, huanwei)
    assert r.status_code == 409
    assert r.json()["allowed"] == {"to": [], "actions": ["resume", "supervise"]}
    r = post(client, f"/issues/{issue}/resume", {"note": "产权已确认"}, huanwei)
    assert r.status_code == 200 and r.json()["to"] == "in_progress"
    resumed = running_step(sql, issue)
    assert resumed.step == "handle" and case_row(sql, issue).due_at == resumed.due_at

    # 返工: resolved, the check fails, dispatched again, and closed at last.
    for to, who in (("resolved", huanwei), ("reopened", dispatcher)):
        assert post(client, f"/issues/{issue}/transitions", {"to": to}, who).status_code == 200
    r = post(client, f"/issues/{issue}/dispatch", {}, dispatcher)  # the rule's suggestion
    assert r.status_code == 200 and r.json()["department"] == "shizheng"
    sql("UPDATE issues SET department_id = (SELECT id FROM departments WHERE code = 'huanwei') "
        "WHERE id = :i", i=issue)
    for to, who in (("in_progress", huanwei), ("resolved", huanwei), ("closed", dispatcher)):
        assert post(client, f"/issues/{issue}/transitions", {"to": to}, who).status_code == 200

    history = client.get(f"/api/v1/issues/{issue}/history", headers=dispatcher).json()
    assert [e["kind"] for e in history] == [
        "move", "dispatch", "return", "dispatch", "extension_request", "extension_approved",
        "extension_request", "extension_refused", "supervise", "supervision_reply", "move", "hold",
        "resume", "move", "move", "dispatch", "move", "move", "move"]
    _assert_legal(history)
    assert case_row(sql, issue).status == "closed"


def _assert_legal(history: list[dict]) -> None:
    """Each move follows the live rules; entries that are not moves keep the status."""
    status = "reported"
    for event in history:
        assert event["from_status"] == status
        if event["kind"] not in MOVE_EVENT_KINDS:
            assert event["to_status"] is None
            continue
        to = event["to_status"]
        legal = TRANSITIONS[status] if event["kind"] == "move" else (
            BRANCH_MOVES[event["kind"]][1],) if status in BRANCH_MOVES[event["kind"]][0] else ()
        assert to in legal, (status, event)
        status = to


def test_refusals_name_what_is_allowed(client, tokens, sql):
    issue = new_case(sql)
    r = post(client, f"/issues/{issue}/dispatch", {"department": "huanwei"}, tokens["dispatcher"],
             lang="zh")
    assert r.status_code == 409
    assert r.json()["allowed"] == {"to": ["accepted", "rejected"],
                                   "actions": ["verify", "self_resolve", "supervise"]}
    assert "派遣" in r.json()["detail"] and "「案卷建立」" in r.json()["detail"]
    r = post(client, f"/issues/{issue}/transitions", {"to": "closed"}, tokens["dispatcher"])
    assert r.status_code == 409 and r.json()["allowed"]["to"] == ["accepted", "rejected"]
    # Department staff do not dispatch; a worker may not return a department's case.
    dispatched = new_case(sql, status="dispatched", department="huanwei")
    assert post(client, f"/issues/{dispatched}/dispatch", {}, tokens["huanwei01"]).status_code == 403
    assert post(client, f"/issues/{dispatched}/return", {"reason": "x"},
                tokens["worker03"]).status_code == 403
    accepted = new_case(sql, status="accepted")
    r = post(client, f"/issues/{accepted}/dispatch", {"department": "nosuch"}, tokens["dispatcher"],
             lang="zh")
    assert r.status_code == 404 and "nosuch" in r.json()["detail"]


def test_to_the_grid_worker_and_back(client, tokens, sql):
    """A community matter goes to the grid's worker, who may return it like a department."""
    issue = new_case(sql, status="accepted", category="neighbour_dispute")
    r = post(client, f"/issues/{issue}/dispatch", {"to_worker": True}, tokens["dispatcher"])
    assert r.status_code == 200 and r.json()["department"] is None
    last = client.get(f"/api/v1/issues/{issue}/history", headers=tokens["dispatcher"]).json()[-1]
    assert last["details"] == {"auto": False, "rule": None, "worker": "worker03"}
    assert post(client, f"/issues/{issue}/return", {"reason": "x"}, tokens["worker05"]).status_code == 403
    r = post(client, f"/issues/{issue}/return", {"reason": "涉及房屋产权，需执法队"}, tokens["worker03"])
    assert r.status_code == 200 and r.json()["to"] == "accepted"


def test_late_steps_are_notified_once(client, tokens, sql):
    issue = new_case(sql, status="dispatched", department="huanwei")
    due = datetime.now(BEIJING) - timedelta(hours=3)
    sql("DELETE FROM issue_steps WHERE issue_id = :i", i=issue)
    sql("INSERT INTO issue_steps (issue_id, step, started_at, due_at) VALUES (:i, 'handle', :s, :d)",
        i=issue, s=due - timedelta(days=1), d=due)
    for who in ("dispatcher", "leader"):
        late = [n for n in unread(client, tokens[who]) if n["issue_id"] == issue]
        assert [n["kind"] for n in late] == ["overdue"], who
        assert datetime.fromisoformat(late[0]["at"]) == due
        assert "处置" in late[0]["title"] and "超时" in late[0]["title"]
    again = [n for n in unread(client, tokens["dispatcher"]) if n["issue_id"] == issue]
    assert len(again) == 1  # polled twice, told once
    assert not notified(client, tokens["worker05"], issue, "overdue")
    assert not notified(client, tokens["huanwei01"], issue, "overdue")
    # Marking read lowers the unread count by exactly that one.
    before = client.get("/api/v1/me/notifications", headers=tokens["dispatcher"]).json()["unread"]
    r = post(client, "/me/notifications/read", {"ids": [again[0]["id"]]}, tokens["dispatcher"])
    assert r.status_code == 200 and r.json() == {"marked": 1}
    after = client.get("/api/v1/me/notifications", headers=tokens["dispatcher"]).json()["unread"]
    assert after == before - 1
    foreign = post(client, "/me/notifications/read", {"ids": [late[0]["id"]]},  # the leader's
                   tokens["dispatcher"])
    assert foreign.status_code == 404


def test_dispatch_rules_and_the_automatic_share(client, tokens, sql):
    sql("DELETE FROM dispatch_rules")
    r = client.put("/api/v1/dispatch-rules", json={"category": "garbage", "department": "huanwei"},
                   headers=tokens["admin"])
    assert r.status_code == 200 and r.json()["region"] is None and r.json()["auto"]
    community = sql("SELECT r.code FROM grids g JOIN regions r ON r.id = g.community_id "
                    "WHERE g.code = :g AND g.valid_to IS NULL", g=GRID_OWN)[0][0]
    r = client.put("/api/v1/dispatch-rules", json={"category": "garbage", "region": community,
                                                   "department": "wuye", "auto": False},
                   headers=tokens["admin"])
    assert r.status_code == 200
    assert client.put("/api/v1/dispatch-rules", json={"category": "garbage"},
                      headers=tokens["dispatcher"]).status_code == 403
    # The community's rule is the more specific: it only suggests, so acceptance stays put...
    manual = new_case(sql)
    post(client, f"/issues/{manual}/transitions", {"to": "accepted"}, tokens["dispatcher"])
    assert case_row(sql, manual).status == "accepted"
    r = post(client, f"/issues/{manual}/dispatch", {}, tokens["dispatcher"])
    assert r.json()["department"] == "wuye"
    # ...and without it, the county-wide rule dispatches on acceptance.
    sql("DELETE FROM dispatch_rules WHERE region_id IS NOT NULL")
    automatic = new_case(sql)
    post(client, f"/issues/{automatic}/transitions", {"to": "accepted"}, tokens["dispatcher"])
    assert case_row(sql, automatic)[0:3:2] == ("dispatched", "huanwei")
    today = datetime.now(BEIJING).date().isoformat()
    share = client.get(f"/api/v1/stats/dispatch?since={today}&until={today}",
                       headers=tokens["dispatcher"]).json()
    firsts = sql("""SELECT count(*), count(*) FILTER (WHERE (details->>'auto')::boolean)
                      FROM (SELECT DISTINCT ON (issue_id) issue_id, at, details FROM issue_events
                             WHERE kind = 'dispatch' ORDER BY issue_id, at, id) f
                     WHERE f.at >= CAST(:d AS date)::timestamp AT TIME ZONE 'Asia/Shanghai'""", d=today)[0]
    assert (share["dispatches"], share["automatic"]) == tuple(firsts)
    assert share["automatic"] >= 1 and share["dispatches"] >= 2


def test_the_notification_page_lists_and_marks_read(client, tokens, sql):
    """The page every user reaches from 通知 in the user bar: newest first, unread marked, and a
    form that marks them all read (with the session's CSRF token)."""
    issue = new_case(sql, status="dispatched", department="huanwei")
    r = post(client, f"/issues/{issue}/return", {"reason": "不是我们的"}, tokens["huanwei01"])
    assert r.status_code == 200
    assert page_login(client, "dispatcher").status_code == 303
    page = client.get("/notifications")
    assert page.status_code == 200, page.text
    assert f'/maps/issue/{issue}?lang=zh' in page.text and "事件" in page.text
    assert 'data-kind="returned"' in page.text and "gm-notification-unread" in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    done = client.post("/notifications/read", data={"csrf_token": token, "lang": "zh"},
                       follow_redirects=False)
    assert done.status_code == 303
    assert client.get("/api/v1/me/notifications", headers=tokens["dispatcher"]).json()["unread"] == 0
    assert "gm-notification-unread" not in client.get("/notifications").text
    assert 'class="gm-bell"' in page.text  # the user bar's way there


def test_an_extension_is_not_approved_once_the_case_is_resolved(client, tokens, sql):
    """Resolving a case ends its handling time: a pending request can only be refused then."""
    huanwei, dispatcher = tokens["huanwei01"], tokens["dispatcher"]
    issue = new_case(sql, status="accepted")
    assert post(client, f"/issues/{issue}/dispatch", {"department": "huanwei"},
                dispatcher).status_code == 200
    assert post(client, f"/issues/{issue}/extensions",
                {"value": 1, "unit": "workdays", "reason": "等配件"}, huanwei).status_code == 201
    for to in ("in_progress", "resolved"):
        r = post(client, f"/issues/{issue}/transitions", {"to": to}, huanwei)
        assert r.status_code == 200, r.text
    due = case_row(sql, issue).due_at
    r = post(client, f"/issues/{issue}/extensions/decision", {"approve": True}, dispatcher,
             lang="zh")
    assert r.status_code == 409, r.text
    assert "批准延期" in r.json()["detail"] and r.json()["allowed"]["to"] == list(
        TRANSITIONS["resolved"])
    assert case_row(sql, issue).due_at == due
    r = post(client, f"/issues/{issue}/extensions/decision",
             {"approve": False, "note": "已办结，无需延期"}, dispatcher)
    assert r.status_code == 200 and r.json()["approved"] is False
