"""The demo community once loaded into PostGIS: sizes, tagging, grid quality, and the command
centre's history (dispatch rules, departments, the branches and the deadlines they move)."""

from datetime import datetime
from itertools import groupby

from sqlalchemy import text

from gis.exchange.transfer import export_communities, export_features
from gis.geo.topology import check_grids
from gis.rules import DEFAULT_WORKDAY_END
from gis.worktime.limits import Limit, deadline, extended
from gis.worktime.steps import replay
from gis.worktime.store import all_limits, load_calendar


def test_demo_loads_fourteen_grids_with_workers(session, demo_data):
    grids = session.execute(text(
        "SELECT g.code, u.username FROM grids g JOIN grid_workers gw ON gw.grid_code = g.code "
        "JOIN users u ON u.id = gw.user_id ORDER BY g.code")).all()
    assert len(grids) == 14
    assert [u for _, u in grids] == [f"worker{i:02d}" for i in range(1, 15)]
    assert all(code.startswith("140429100001") and len(code) == 15 for code, _ in grids)
    roles = dict(session.execute(text("SELECT username, role FROM users WHERE role <> 'worker'")).all())
    staff = demo_data.users.loc[demo_data.users["role"].eq("department"), "username"]
    assert roles == {"leader": "leader", "admin": "admin", "dispatcher": "dispatcher",
                     **dict.fromkeys(staff, "department")}
    scopes = dict(session.execute(text("""
        SELECT u.username, coalesce(r.name, d.name) FROM users u LEFT JOIN regions r ON r.id = u.region_id
          LEFT JOIN departments d ON d.id = u.department_id WHERE u.role <> 'worker'""")).all())
    assert {u: scopes[u] for u in ("leader", "dispatcher", "admin", "shizheng01", "shizheng02",
                                   "huanwei01", "yuanlin01", "gongre01", "zhifa01", "wuye01")} == {
        "leader": "太东社区", "dispatcher": "武乡县", "admin": None, "shizheng01": "市政所",
        "shizheng02": "市政所", "huanwei01": "环卫所", "yuanlin01": "园林所", "gongre01": "供热公司",
        "zhifa01": "综合执法队", "wuye01": "武乡县太行物业管理有限公司"}


def test_each_case_is_with_the_department_of_its_last_dispatch(session):
    """issues.department_id is where the last dispatch sent the case, unless a return (回退) came
    after it; a case never dispatched, or dispatched to the grid worker, has none."""
    wrong = session.execute(text("""
        SELECT count(*) FROM issues i
          LEFT JOIN LATERAL (SELECT e.kind, e.department_id FROM issue_events e
                              WHERE e.issue_id = i.id AND e.kind IN ('dispatch', 'return')
                              ORDER BY e.at DESC, e.id DESC LIMIT 1) last ON TRUE
         WHERE i.department_id IS DISTINCT FROM
               CASE WHEN last.kind = 'dispatch' THEN last.department_id END""")).scalar_one()
    assert wrong == 0
    rows = session.execute(text("""
        SELECT i.category, d.code, count(*) FROM issues i LEFT JOIN departments d ON d.id = i.department_id
         WHERE EXISTS (SELECT 1 FROM issue_events e WHERE e.issue_id = i.id AND e.kind = 'dispatch')
         GROUP BY 1, 2""")).all()
    mostly = {}
    for category, code, n in rows:
        if n > mostly.get(category, (None, 0))[1]:
            mostly[category] = (code, n)
    assert mostly["garbage"][0] == "huanwei" and mostly["illegal_construction"][0] == "zhifa"
    assert mostly["heating_failure"][0] == "gongre" and mostly["greenery"][0] == "yuanlin"
    assert mostly["neighbour_dispute"][0] is None  # the community's own matter: the grid worker
    companies = {c for c, in session.execute(text(
        "SELECT DISTINCT d.code FROM issues i JOIN departments d ON d.id = i.department_id "
        "WHERE i.category = 'elevator_failure'"))}
    assert len(companies) >= 3  # each estate's own property company


def test_dispatches_name_the_rule_they_followed(session):
    """A dispatch's details name the rule it followed (a row of dispatch_rules for its category
    that sends to the same department); an automatic one has no actor and follows an automatic
    rule; a dispatch to the grid worker names the worker of the case's grid."""
    rules = session.execute(text("SELECT count(*), count(*) FILTER (WHERE auto) FROM dispatch_rules")).one()
    assert rules[0] >= 10 and 0 < rules[1] < rules[0]
    mismatched = session.execute(text("""
        SELECT count(*) FROM issue_events e JOIN issues i ON i.id = e.issue_id
          LEFT JOIN dispatch_rules r ON r.id = (e.details->>'rule')::int
         WHERE e.kind = 'dispatch' AND (
               (e.details->>'rule' IS NOT NULL AND (r.id IS NULL OR r.category <> i.category
                    OR r.department_id IS DISTINCT FROM e.department_id))
            OR ((e.details->>'auto')::boolean <> (e.actor_id IS NULL))
            OR ((e.details->>'auto')::boolean AND NOT coalesce(r.auto, false))
            OR ((e.details->>'worker' IS NOT NULL) <> (e.department_id IS NULL)))""")).scalar_one()
    assert mismatched == 0
    workers = session.execute(text("""
        SELECT count(*) FILTER (WHERE e.details->>'worker' = u.username), count(*)
          FROM issue_events e JOIN issues i ON i.id = e.issue_id JOIN grids g ON g.id = i.grid_id
          JOIN grid_workers gw ON gw.grid_code = g.code JOIN users u ON u.id = gw.user_id
         WHERE e.kind = 'dispatch' AND e.department_id IS NULL""")).one()
    assert workers[0] == workers[1] > 0


def test_the_branch_tables_agree_with_the_history(session, demo_data):
    counts = session.execute(text("""
        SELECT (SELECT count(*) FROM extension_requests),
               (SELECT count(*) FROM issue_events WHERE kind = 'extension_request'),
               (SELECT count(*) FROM extension_requests WHERE approved),
               (SELECT count(*) FROM issue_events WHERE kind = 'extension_approved'),
               (SELECT count(*) FROM extension_requests WHERE NOT approved),
               (SELECT count(*) FROM issue_events WHERE kind = 'extension_refused'),
               (SELECT count(*) FROM supervisions),
               (SELECT count(*) FROM issue_events WHERE kind = 'supervise'),
               (SELECT count(*) FROM supervisions WHERE replied_at IS NOT NULL),
               (SELECT count(*) FROM issue_events WHERE kind = 'supervision_reply')""")).one()
    assert counts[0] == counts[1] == len(demo_data.extension_requests) > 0
    assert counts[2] == counts[3] > 0 and counts[4] == counts[5] > 0
    assert counts[6] == counts[7] == len(demo_data.supervisions) > 0 and counts[8] == counts[9] > 0
    pending = session.execute(text("""
        SELECT count(*) FROM extension_requests x JOIN issue_events e ON e.issue_id = x.issue_id
         WHERE e.kind = 'extension_request' AND e.at = x.requested_at
           AND e.actor_id IS NOT DISTINCT FROM x.requested_by""")).scalar_one()
    assert pending == counts[0]
    astray = session.execute(text("""
        SELECT count(*) FROM issue_events e
          LEFT JOIN extension_requests x ON x.id = (e.details->>'request')::bigint
          LEFT JOIN supervisions s ON s.id = (e.details->>'supervision')::bigint
         WHERE (e.kind LIKE 'extension%' AND x.issue_id IS DISTINCT FROM e.issue_id)
            OR (e.kind LIKE 'supervis%' AND s.issue_id IS DISTINCT FROM e.issue_id)""")).scalar_one()
    assert astray == 0


def test_every_facility_and_building_lies_inside_a_grid(session):
    outside_f = session.execute(text(
        "SELECT count(*) FROM facilities f WHERE NOT EXISTS (SELECT 1 FROM grids g "
        "WHERE g.valid_to IS NULL AND ST_Contains(g.geom, f.geom))")).scalar_one()
    outside_b = session.execute(text(
        "SELECT count(*) FROM buildings b WHERE NOT EXISTS (SELECT 1 FROM grids g "
        "WHERE g.valid_to IS NULL AND ST_Contains(g.geom, b.geom))")).scalar_one()
    assert outside_f == 0 and outside_b == 0


def test_tagging_agrees_with_postgis_contains(session):
    wrong = session.execute(text("""
        SELECT count(*) FROM issues i JOIN grids g ON ST_Contains(g.geom, i.geom)
         WHERE g.valid_to IS NULL AND i.grid_id IS DISTINCT FROM g.id""")).scalar_one()
    untagged = session.execute(text("SELECT count(*) FROM issues WHERE grid_id IS NULL")).scalar_one()
    tagged_f = session.execute(text(
        "SELECT count(*) FROM facilities WHERE grid_id IS NOT NULL AND assignment = 'inside'")).scalar_one()
    total_f = session.execute(text("SELECT count(*) FROM facilities")).scalar_one()
    assert wrong == 0 and untagged == 0 and tagged_f == total_f


def test_every_issue_has_a_history_that_ends_in_its_status(session):
    mismatched = session.execute(text("""
        SELECT count(*) FROM issues i
          JOIN LATERAL (SELECT to_status FROM issue_events e
                         WHERE e.issue_id = i.id AND e.to_status IS NOT NULL
                         ORDER BY e.at DESC, e.id DESC LIMIT 1) last ON TRUE
         WHERE last.to_status <> i.status""")).scalar_one()
    without = session.execute(text(
        "SELECT count(*) FROM issues i WHERE NOT EXISTS (SELECT 1 FROM issue_events e "
        "WHERE e.issue_id = i.id)")).scalar_one()
    assert mismatched == 0 and without == 0


def test_demo_grids_pass_check_grids(session):
    grids = export_features(session, "grids")
    communities = export_communities(session)
    report = check_grids(grids.rename(columns={"community": "community_code"}),
                         communities.assign(code=communities["name"]))
    assert report.ok, report.to_table()


def test_the_steps_are_those_the_history_replays(session):
    """Every case's issue_steps are what its stored history gives by the live rule: its moves,
    and the approved extensions (延期) that moved the deadline of the step running then."""
    limits, calendar = all_limits(session), load_calendar(session)
    events = session.execute(text("""
        SELECT e.issue_id, e.at, e.from_status, e.to_status, e.kind, e.details, i.category, i.urgency
          FROM issue_events e JOIN issues i ON i.id = e.issue_id
         WHERE e.to_status IS NOT NULL OR e.kind = 'extension_approved'
         ORDER BY e.issue_id, e.at, e.id""")).all()
    stored = {}
    for issue, step, started, due, done in session.execute(text(
            "SELECT issue_id, step, started_at, due_at, done_at FROM issue_steps ORDER BY id")):
        stored.setdefault(issue, []).append((step, started, due, done))
    replayed, extended_steps = {}, 0
    for issue, rows in groupby(events, key=lambda r: r.issue_id):
        rows = list(rows)
        moves = [(r.at, r.from_status, r.to_status) for r in rows if r.to_status is not None]
        granted = [(r.at, Limit(r.details["value"], r.details["unit"])) for r in rows
                   if r.kind == "extension_approved"]
        extended_steps += len(granted)
        mine = limits[rows[0].category][rows[0].urgency]
        replayed[issue] = [(s.step, s.started_at, s.due_at, s.done_at)
                           for s in replay(moves, mine, calendar, DEFAULT_WORKDAY_END, granted)]
    assert replayed == stored and extended_steps > 20


def test_approved_extensions_and_resumptions_moved_the_deadlines(session):
    """An approved extension moves the case's due_at by the time granted (from the old one, by
    the rule of gis.worktime.limits.extended), a resumption (解除挂账) to the deadline of the fresh
    handling; a refused one moves nothing. The case's due_at is its last move, or as reported."""
    calendar = load_calendar(session)
    limits = all_limits(session)
    rows = session.execute(text("""
        SELECT i.id, i.category, i.urgency, i.reported_at, i.due_at,
               (SELECT json_agg(json_build_object('kind', e.kind, 'at', e.at, 'd', e.details)
                                ORDER BY e.at, e.id)
                  FROM issue_events e WHERE e.issue_id = i.id
                   AND e.kind IN ('resume', 'extension_approved', 'extension_refused')) AS changes
          FROM issues i""")).all()
    seen = {"resume": 0, "extension_approved": 0, "extension_refused": 0}
    for issue, category, urgency, reported_at, due_at, changes in rows:
        handle = limits[category][urgency]["handle"]
        due = deadline(reported_at, handle, calendar)
        for change in changes or ():
            seen[change["kind"]] += 1
            details = change["d"]
            assert datetime.fromisoformat(details["due_before"]) == due, issue
            if change["kind"] == "extension_approved":
                due = extended(due, Limit(details["value"], details["unit"]), calendar)
            elif change["kind"] == "resume":
                due = deadline(datetime.fromisoformat(change["at"]), handle, calendar)
            assert datetime.fromisoformat(details["due_after"]) == due, issue
        assert due_at == due, issue
    assert min(seen.values()) > 5
    moved = session.execute(text("""
        SELECT count(*) FILTER (WHERE x.due_after IS DISTINCT FROM (e.details->>'due_after')::timestamptz),
               count(*)
          FROM extension_requests x JOIN issue_events e
            ON e.issue_id = x.issue_id AND e.at = x.decided_at AND e.kind = 'extension_approved'
         WHERE x.approved""")).one()
    assert moved[0] == 0 and moved[1] > 0


def test_the_rule_a_dispatch_names_is_the_one_the_live_lookup_finds(session):
    """The demo's rules are applied as the command centre applies them (the most specific region
    above the case's grid, gis.issues.dispatch.rule_for_case): each dispatch that names a rule
    names the case's rule, and so does every automatic one."""
    from gis.issues.dispatch import rule_for_case

    rows = session.execute(text("""
        SELECT e.issue_id, (e.details->>'rule')::int, (e.details->>'auto')::boolean
          FROM issue_events e WHERE e.kind = 'dispatch' AND e.details->>'rule' IS NOT NULL
         ORDER BY e.id""")).all()
    sample = rows[::7]
    assert len(sample) > 300 and any(auto for _, _, auto in sample)
    for issue, rule, auto in sample:
        found = rule_for_case(session, issue)
        assert found is not None and found.id == rule and (found.auto or not auto), issue
