"""The intake's group commit (api.intake.GroupCommit): reports waiting together are written in one
transaction, each answered only after it committed, each stored exactly once.

These tests commit (the group commit writes on a connection of its own, as in a server) and
delete what they add (tests.conftest.committed_changes). Reports are handed to the group commit
directly, all before its writer runs, so that they form one batch (checked), and, for the
wiring, sent as concurrent HTTP requests to the app.
"""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from api.intake import APPLICATION_NAME, GroupCommit, Pending
from gis.db.engine import libpq_url, session_factory
from gis.errors import Conflict, DatabaseUnavailable, NotFound, UnknownCategory
from gis.geotag.index_cache import GridIndexCache
from gis.issues import reporting
from gis.issues.reporting import IssueReport, Reported
from gis.people import sessions
from gis.people.actors import load_actor
from gis.queries import reads, rollup
from tests import bench_scripts
from tests.conftest import committed_changes

WORKERS = ("worker01", "worker03", "worker05", "worker09")
# Every role: each reads its answer under its own scope (a department's staff and the region
# roles read a new case as the public does, masked).
REPORTERS = WORKERS + ("leader", "dispatcher", "shizheng01", "admin")


@pytest.fixture(scope="module")
def tokens(demo_engine) -> dict[str, str]:
    """A bearer token per reporter (sessions are not part of the demo's fingerprint)."""
    out = {}
    with session_factory(demo_engine)() as session:
        for name in REPORTERS:
            actor, _ = load_actor(session, name)
            out[name] = sessions.start_session(session, actor, kind="token", address="test",
                                               policy=sessions.SessionPolicy()).token
        session.commit()
    return out


@pytest.fixture(scope="module")
def points(demo_engine) -> list[tuple[float, float]]:
    """A point inside each current grid."""
    with demo_engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM grids "
            "WHERE valid_to IS NULL ORDER BY code) g"))]


def group_commit(app_database_url: str, demo_engine) -> GroupCommit:
    return GroupCommit(libpq_url(app_database_url), session_factory(demo_engine), GridIndexCache(),
                       sessions.SessionPolicy(), {})


def report(point, category="garbage", key=None, **fields) -> IssueReport:
    return IssueReport(point[0], point[1], category, client_uuid=key or uuid.uuid4(),
                       **{"description": "batch test"} | fields)


def waiting(token: str, r) -> Pending:
    return Pending(r, token, None, "127.0.0.1", "POST /api/v1/issues")


async def _at_once(*commits_and_items):
    """Hand every report to its group commit before any writer runs; close them afterwards."""
    try:
        return await asyncio.gather(*(gc.submit(item) for gc, items in commits_and_items
                                      for item in items))
    finally:
        for gc, _ in commits_and_items:
            await gc.close()


def _stored(engine, keys) -> dict[uuid.UUID, int]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT client_uuid, count(*) FROM issues "
                                 "WHERE client_uuid = ANY(:k) GROUP BY client_uuid"),
                            {"k": list(keys)}).all()
    return dict(rows)


def test_a_batch_stores_each_report_once_and_answers_each_as_a_single_report_would(
        demo_engine, app_database_url, tokens, points):
    gc = group_commit(app_database_url, demo_engine)
    # Three places, so that each report's possible duplicates include others of its batch.
    items = [waiting(tokens[REPORTERS[n % len(REPORTERS)]], report(points[n % 3],
                                                                reporter_contact="13800138000"))
             for n in range(16)]
    with committed_changes(demo_engine):
        answers = asyncio.run(_at_once((gc, items)))
        assert gc.batches == 1 and gc.largest == 16
        keys = [i.report.client_uuid for i in items]
        assert _stored(demo_engine, keys) == {k: 1 for k in keys}
        # (a department's staff read only their department's cases: none of these)
        ids = {a.outcome.issue_id for a in answers}
        assert all(ids & {d["id"] for d in a.nearby} or a.actor.role == "department"
                   for a in answers)
        with session_factory(demo_engine)() as session:
            for answer in answers:
                assert isinstance(answer.outcome, Reported) and answer.outcome.created
                assert answer.actor.username in REPORTERS
                # the answer a report alone gets: read with its reporter's scope and masking
                alone = reporting.read_back(session, answer.actor, Reported(
                    answer.outcome.issue_id, created=False))
                assert (answer.row, answer.nearby) == alone
                expected, personal, _ = _as_reporter_sees(session, answer)
                assert answer.row == expected
                assert (answer.row.get("reporter_contact") == "13800138000") == personal
            audited = session.execute(text(
                "SELECT count(*) FROM audit_log WHERE action = 'write' AND target = "
                "'POST /api/v1/issues' AND at >= now() - interval '1 hour' AND username = ANY(:u)"),
                {"u": list(REPORTERS)}).scalar()
            assert audited >= 16
            assert rollup.check(session) == []


def test_the_writers_connections_are_named_for_the_database(demo_engine, app_database_url,
                                                            tokens, points):
    """pg_stat_activity tells the intake's connections from the rest (bench/intake.py --waits)."""
    gc = group_commit(app_database_url, demo_engine)

    def named() -> int:
        with demo_engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM pg_stat_activity "
                                     "WHERE application_name = :n"), {"n": APPLICATION_NAME}).scalar()

    async def write_and_look() -> tuple[int, int]:
        await gc.submit(waiting(tokens["worker01"], report(points[0])))
        during = named()  # the writer's connection waits, open, for the next batch
        await gc.close()
        # A backend leaves pg_stat_activity a moment after its client closed the connection.
        for _ in range(200):
            if (after := named()) == before:
                break
            await asyncio.sleep(0.05)
        return during, after

    before = named()  # a live test server's intake may be up in this process
    with committed_changes(demo_engine):
        during, after = asyncio.run(write_and_look())
    assert (during, after) == (before + 1, before)


def test_the_bench_sampler_sees_the_writer_and_what_it_waits_for(demo_engine, app_database_url,
                                                                 tokens, points):
    """bench/intake.py --waits: the writer's backend, idle between batches, is sampled as such;
    a statement's waits are told apart."""
    intake = bench_scripts.load("intake")
    gc = group_commit(app_database_url, demo_engine)
    owner = libpq_url(demo_engine.url.render_as_string(hide_password=False))

    async def write_then_sample():
        await gc.submit(waiting(tokens["worker01"], report(points[0])))
        sampler = intake.WaitSampler(owner, interval_s=0.005)
        sampler.start()
        await asyncio.sleep(0.3)
        counts = sampler.stop()
        await gc.close()
        return counts, sampler.samples

    with committed_changes(demo_engine):
        counts, samples = asyncio.run(write_then_sample())
    assert samples >= 5
    # (a live test server's intake, idle too, may be up in this process besides)
    assert set(counts) == {"idle: waiting for its server process (between batches)"}
    assert counts.total() >= samples  # the writer's connection, seen in every sample
    # the answers of a batch (merged) and of a lone report
    assert intake._wait_label("active", "IO", "WALSync", "SELECT _sets._set, _one.* FROM (SELECT "
                              "r.*, (...) AS _duplicates FROM r) x") == \
        "active, the answers, waiting: IO WALSync"
    assert intake._wait_label("active", None, None, "SELECT r.*, '[]'::json AS _duplicates") == \
        "active, the answers, running"
    assert intake._wait_label("active", "Lock", "transactionid", " WITH state AS (SELECT 1)") == \
        "active, the insert, waiting: Lock transactionid"
    assert intake._wait_label("active", None, None, "WITH state AS (SELECT 1)") == \
        "active, the insert, running"


def _as_reporter_sees(session, answer):
    try:
        return reads.get_issue(session, answer.actor, answer.outcome.issue_id)
    except Exception:  # noqa: BLE001  outside their scope: what the public sees
        return reads.get_issue(session, None, answer.outcome.issue_id, public_read=True)


def test_the_same_key_twice_in_a_batch_stores_one_issue(demo_engine, app_database_url, tokens,
                                                         points):
    gc = group_commit(app_database_url, demo_engine)
    key, other = uuid.uuid4(), uuid.uuid4()
    token = tokens["worker05"]
    items = [waiting(token, report(points[0], key=key)), waiting(token, report(points[0], key=key)),
             waiting(token, report(points[1], key=other)),
             waiting(token, report(points[1], "noise", key=other))]  # same key, other report
    with committed_changes(demo_engine):
        first, replay, kept, conflict = asyncio.run(_at_once((gc, items)))
        assert gc.batches == 1
        assert first.outcome.created and not replay.outcome.created
        assert replay.outcome.issue_id == first.outcome.issue_id
        assert replay.row == first.row  # a replay is answered as the original was
        assert kept.outcome.created and isinstance(conflict.outcome, Conflict)
        assert _stored(demo_engine, [key, other]) == {key: 1, other: 1}


def test_a_refused_report_leaves_the_rest_of_its_batch_alone(demo_engine, app_database_url,
                                                              tokens, points):
    gc = group_commit(app_database_url, demo_engine)
    token = tokens["worker03"]
    good = [report(points[n]) for n in range(4)]
    items = [waiting(token, good[0]), waiting(token, report(points[0], "no_such_category")),
             waiting(token, good[1]), waiting(token, report(points[0], facility_id=2_000_000_000)),
             waiting("dead-token", report(points[2])), waiting(token, good[2]),
             waiting(token, Conflict("refused by the domain before the batch")),
             waiting(token, report(points[3], crs="nonsense")), waiting(token, good[3])]
    with committed_changes(demo_engine):
        answers = asyncio.run(_at_once((gc, items)))
        assert gc.batches == 1
        kinds = [type(a.outcome).__name__ for a in answers]
        assert kinds == ["Reported", "UnknownCategory", "Reported", "NotFound",
                         "LocalizedHTTPException", "Reported", "Conflict", "UnknownCRS", "Reported"]
        assert answers[4].outcome.status_code == 401
        assert isinstance(answers[1].outcome, UnknownCategory) and "garbage" in str(answers[1].outcome)
        assert isinstance(answers[3].outcome, NotFound)
        keys = [r.client_uuid for r in good]
        assert _stored(demo_engine, keys) == {k: 1 for k in keys}
        refused = [items[n].report.client_uuid for n in (1, 3, 4, 7)]
        assert _stored(demo_engine, refused) == {}


def test_text_with_nul_and_huge_facility_ids_are_refused_before_the_database(
        demo_engine, app_database_url, tokens, points):
    """Values PostgreSQL would refuse (it would fail the whole batch) are the report's own 4xx."""
    from gis.errors import InvalidParameter

    with pytest.raises(InvalidParameter, match="NUL"):
        report(points[0], description="井盖\x00坏了")
    gc = group_commit(app_database_url, demo_engine)
    token = tokens["worker03"]
    items = [waiting(token, report(points[0], facility_id=2_147_483_648)),
             waiting(token, report(points[1]))]
    with committed_changes(demo_engine):
        huge, good = asyncio.run(_at_once((gc, items)))
        assert isinstance(huge.outcome, NotFound) and good.outcome.created


def test_a_batch_the_database_refuses_is_written_again_report_by_report(
        demo_engine, app_database_url, tokens, points):
    """A report the domain lets through but PostgreSQL refuses (a contact longer than its column:
    the API's schema stops it, a caller of the domain might not) fails alone."""
    import psycopg

    gc = group_commit(app_database_url, demo_engine)
    token = tokens["worker05"]
    good = [report(points[5]), report(points[6])]
    items = [waiting(token, good[0]), waiting(token, report(points[5], reporter_contact="1" * 300)),
             waiting(token, good[1])]
    with committed_changes(demo_engine):
        first, bad, second = asyncio.run(_at_once((gc, items)))
        assert gc.batches == 4  # the batch, then each report alone
        assert isinstance(bad.outcome, psycopg.errors.StringDataRightTruncation)
        assert first.outcome.created and second.outcome.created
        keys = [r.client_uuid for r in good]
        assert _stored(demo_engine, keys + [items[1].report.client_uuid]) == {k: 1 for k in keys}


def test_a_batch_that_dies_before_its_commit_acknowledges_nothing(
        demo_engine, app_database_url, tokens, points, monkeypatch):
    """The backend is killed between the insert and the commit: every request of the batch hears
    503 (DatabaseUnavailable), nothing is stored, and the same reports sent again are stored once."""
    gc = group_commit(app_database_url, demo_engine)
    token = tokens["worker01"]
    reports = [report(points[n]) for n in range(5)]
    crash = reporting.Statement("SELECT pg_terminate_backend(pg_backend_pid())", {})
    with committed_changes(demo_engine):
        monkeypatch.setattr(reporting, "COMMIT", crash)
        answers = asyncio.run(_at_once((gc, [waiting(token, r) for r in reports])))
        assert all(isinstance(a.outcome, DatabaseUnavailable) for a in answers)
        assert gc.dropped == 1  # the fault happened: the connection was lost and dropped
        keys = [r.client_uuid for r in reports]
        assert _stored(demo_engine, keys) == {}
        monkeypatch.undo()
        gc = group_commit(app_database_url, demo_engine)
        again = asyncio.run(_at_once((gc, [waiting(token, r) for r in reports])))
        assert all(a.outcome.created for a in again)
        assert _stored(demo_engine, keys) == {k: 1 for k in keys}


def test_two_processes_batches_with_the_same_keys_store_each_once(
        demo_engine, app_database_url, tokens, points):
    """Two group commits (two server processes) write batches with the same keys at the same
    time, the second in another order: each key is stored once, and every request is answered
    201 or 200 with the same issue."""
    one, two = group_commit(app_database_url, demo_engine), group_commit(app_database_url, demo_engine)
    reports = [report(points[n % 3], "garbage" if n % 2 else "noise") for n in range(10)]
    twins = [IssueReport(r.x, r.y, r.category, description=r.description, client_uuid=r.client_uuid)
             for r in reports]
    first = [waiting(tokens["worker01"], r) for r in reports] + \
        [waiting(tokens["worker01"], reports[n]) for n in (2, 2, 7)]
    second = [waiting(tokens["worker09"], twins[n]) for n in (9, 0, 5, 1, 8, 3, 6, 2, 4, 7)]
    with committed_changes(demo_engine):
        answers = asyncio.run(_at_once((one, first), (two, second)))
        assert all(isinstance(a.outcome, Reported) for a in answers)
        keys = [r.client_uuid for r in reports]
        assert _stored(demo_engine, keys) == {k: 1 for k in keys}
        by_key: dict = {}
        for item, answer in zip(first + second, answers, strict=True):
            by_key.setdefault(item.report.client_uuid, set()).add(answer.outcome.issue_id)
        assert all(len(ids) == 1 for ids in by_key.values())
        assert sum(a.outcome.created for a in answers) == len(keys)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(list(range(12))))
def test_two_processes_batches_at_once_do_not_deadlock_on_the_rollup(
        demo_engine, app_database_url, tokens, points, order):
    """Two group commits write, at the same time, batches of different reports that add to the
    same rollup rows (few places and categories), the second batch in another order. Neither is
    aborted as a deadlock and written again (``retried``): the rollup's triggers take their rows
    per statement in key order (migration 0017; tests/gis/test_rollup.py makes two such inserts
    overlap on purpose). Every report is stored once and the rollup stays exact."""
    one, two = group_commit(app_database_url, demo_engine), group_commit(app_database_url, demo_engine)
    mine = [report(points[n % 4], ("garbage", "noise")[n // 4 % 2]) for n in range(12)]
    theirs = [report(points[n % 4], ("garbage", "noise")[n // 4 % 2]) for n in range(12)]
    first = [waiting(tokens["worker01"], r) for r in mine]
    second = [waiting(tokens["worker09"], theirs[n]) for n in order]
    with committed_changes(demo_engine):
        for _ in range(3):
            answers = asyncio.run(_at_once((one, first), (two, second)))
            assert one.retried == two.retried == 0
            one, two = (group_commit(app_database_url, demo_engine),
                        group_commit(app_database_url, demo_engine))
            first = [waiting(p.token, report((p.report.x, p.report.y), p.report.category))
                     for p in first]
            second = [waiting(p.token, report((p.report.x, p.report.y), p.report.category))
                      for p in second]
        assert all(a.outcome.created for a in answers)
        with demo_engine.connect() as conn:
            assert rollup.check(conn) == []


def group_commit_lingering(app_database_url: str, demo_engine, linger_s: float) -> GroupCommit:
    return GroupCommit(libpq_url(app_database_url), session_factory(demo_engine), GridIndexCache(),
                       sessions.SessionPolicy(), {}, linger_s=linger_s)


async def _clients(gc: GroupCommit, first: list[Pending], again_after: list[float | None]):
    """Each report of ``first`` (handed over at once) from a client that, once answered, sends
    another after its delay in ``again_after`` (None: sends no more); every answer."""
    async def client(item, delay):
        answers = [await gc.submit(item)]
        if delay is not None:
            await asyncio.sleep(delay)
            answers.append(await gc.submit(waiting(item.token, report(
                (item.report.x, item.report.y)))))
        return answers

    try:
        return [a for answers in await asyncio.gather(
            *(client(i, d) for i, d in zip(first, again_after, strict=True))) for a in answers]
    finally:
        await gc.close()


def test_the_clients_just_answered_travel_together_in_the_next_batch(
        demo_engine, app_database_url, tokens, points):
    """Answered, four clients send again one after another: the next batch waits for all four
    rather than leaving with the first."""
    gc = group_commit_lingering(app_database_url, demo_engine, linger_s=30)
    first = [waiting(tokens[w], report(points[n])) for n, w in enumerate(WORKERS)]
    with committed_changes(demo_engine):
        answers = asyncio.run(_clients(gc, first, [0, 0.01, 0.02, 0.03]))
        assert [a.outcome.created for a in answers] == [True] * 8
        assert (gc.batches, gc.largest, gc.lingered) == (2, 4, 1)


def test_a_lone_client_is_never_kept_waiting(demo_engine, app_database_url, tokens, points):
    """Its next report is all the writer expects: with a linger of a minute, it is written at
    once."""
    gc = group_commit_lingering(app_database_url, demo_engine, linger_s=60)
    item = waiting(tokens["worker01"], report(points[0]))
    with committed_changes(demo_engine):
        answers = asyncio.run(asyncio.wait_for(_clients(gc, [item], [0]), 30))
        assert [a.outcome.created for a in answers] == [True, True]
        assert (gc.batches, gc.lingered) == (2, 0)


def test_a_batch_waits_no_longer_than_the_linger_for_clients_that_do_not_come_back(
        demo_engine, app_database_url, tokens, points):
    gc = group_commit_lingering(app_database_url, demo_engine, linger_s=0.05)
    first = [waiting(tokens[w], report(points[n])) for n, w in enumerate(WORKERS)]
    with committed_changes(demo_engine):
        answers = asyncio.run(asyncio.wait_for(_clients(gc, first, [0, None, None, None]), 30))
        assert [a.outcome.created for a in answers] == [True] * 5
        assert (gc.batches, gc.largest, gc.lingered) == (2, 4, 1)


def test_concurrent_http_reports_are_answered_from_their_batches(app_client, demo_engine, tokens,
                                                                  points):
    """The route on the app's own group commit: concurrent requests, a replay by its key."""
    headers = {"Authorization": f"Bearer {tokens['worker05']}"}
    keys = [str(uuid.uuid4()) for _ in range(16)]

    def post(n):
        lon, lat = points[n % len(points)]
        return app_client.post("/api/v1/issues", json={"category": "garbage", "lon": lon, "lat": lat,
                                                       "description": "batch test"},
                               headers=headers | {"Idempotency-Key": keys[n % 16]})

    with committed_changes(demo_engine), ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(16)))
        assert [a.status_code for a in answers] == [201] * 16
        again = post(3)
        assert again.status_code == 200 and again.json() == answers[3].json() | {
            "possible_duplicates": again.json()["possible_duplicates"]}
        stored = _stored(demo_engine, [reporting.key_to_uuid(k) for k in keys])
        assert sorted(stored.values()) == [1] * 16
        assert app_client.app.state.intake.batches >= 1


def test_callers_without_a_bearer_token_and_refused_bodies_on_the_group_commit(
        app_client, demo_engine, tokens, points):
    """The app's own group commit: a caller by session cookie needs its CSRF token, a wrong
    Basic password is 401, and a refused body still hears 401 first when the caller may not
    report, 422 when they may."""
    from api.deps import SESSION_COOKIE, csrf_token

    lon, lat = points[4]
    body = {"category": "garbage", "lon": lon, "lat": lat, "description": "batch test"}
    with session_factory(demo_engine)() as session:
        actor, _ = load_actor(session, "worker05")
        started = sessions.start_session(session, actor, kind="page", address="test",
                                         policy=sessions.SessionPolicy())
        session.commit()
    cookie = {"Cookie": f"{SESSION_COOKIE}={started.token}"}
    good = csrf_token(type("R", (), {"app": app_client.app})(), started.session_id)
    bearer = {"Authorization": f"Bearer {tokens['worker05']}"}
    with committed_changes(demo_engine):
        refused = app_client.post("/api/v1/issues", json=body, headers=cookie)
        assert refused.status_code == 403 and refused.json()["code"] == "csrf_failed"
        stored = app_client.post("/api/v1/issues", json=body, headers=cookie | {"X-CSRF-Token": good})
        assert stored.status_code == 201
        assert stored.json()["properties"]["reporter_contact"] is None
        basic = {"Authorization": "Basic bm9ib2R5Ondyb25n"}  # nobody:wrong
        assert app_client.post("/api/v1/issues", json=body, headers=basic).status_code == 401
        assert app_client.post("/api/v1/issues", json={"category": "garbage"}).status_code == 401
        assert app_client.post("/api/v1/issues", json={"category": "garbage"},
                               headers=bearer).status_code == 422
        assert app_client.post("/api/v1/issues", json=body | {"category": "nope"},
                               headers={"Authorization": "Bearer dead"}).status_code == 401
        unknown = app_client.post("/api/v1/issues", json=body | {"category": "nope"}, headers=bearer)
        assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_category"
        zh = app_client.post("/api/v1/issues", json=body | {"category": "nope"},
                             headers=bearer | {"Accept-Language": "zh-CN"})
        assert "未知的事件类别" in zh.json()["detail"]


# -- what a process keeps between batches: the callers of tokens, the rules -------------------
async def _one_batch_after_another(gc: GroupCommit, *steps):
    """Each step is a list of reports, handed over at once and answered before the next step,
    or a function run in between (a change made elsewhere); the answers of each list."""
    answers = []
    try:
        for step in steps:
            if callable(step):
                step()
            else:
                answers.append(await asyncio.gather(*(gc.submit(item) for item in step)))
        return answers
    finally:
        await gc.close()


def _fresh_token(engine, username: str) -> str:
    with session_factory(engine)() as session:
        actor, _ = load_actor(session, username)
        token = sessions.start_session(session, actor, kind="token", address="test",
                                       policy=sessions.SessionPolicy()).token
        session.commit()
    return token


def _run(engine, sql: str, **params) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)


def test_a_process_reads_a_token_and_the_rules_once_and_the_insert_checks_them(
        demo_engine, app_database_url, points):
    """A token met before is not read again before its next batch, nor are the rules; the
    insert itself checks the session: one ended meanwhile (logged out) is refused at once, 401,
    and nothing of its report is stored."""
    gc = group_commit(app_database_url, demo_engine)
    token = _fresh_token(demo_engine, "worker03")
    other = _fresh_token(demo_engine, "worker05")
    batches = [[waiting(token, report(points[n])), waiting(other, report(points[n + 1]))]
               for n in range(3)]

    def log_out():
        _run(demo_engine, "UPDATE sessions SET revoked_at = now() WHERE token_hash = :h",
             h=sessions.token_digest(token))

    with committed_changes(demo_engine):
        first, second, third = asyncio.run(_one_batch_after_another(
            gc, batches[0], batches[1], log_out, batches[2]))
        assert all(a.outcome.created for a in first + second) and third[1].outcome.created
        assert third[0].outcome.status_code == 401
        assert gc.callers.reads == 3  # the two tokens once, the ended one again after its refusal
        assert gc.rules.reads == 1
        assert _stored(demo_engine, [batches[2][0].report.client_uuid]) == {}


def test_a_disabled_account_is_refused_at_once_and_a_changed_one_read_again(
        demo_engine, app_database_url, points):
    """Changing any account bumps the people counter: the callers a process kept are read again
    before their reports are written (their roles and grids may have changed). A disabled
    account's session is over: its next report is 401."""
    gc = group_commit(app_database_url, demo_engine)
    token, kept = _fresh_token(demo_engine, "worker09"), _fresh_token(demo_engine, "worker01")
    batches = [[waiting(token, report(points[n])), waiting(kept, report(points[n + 1]))]
               for n in range(3)]
    with committed_changes(demo_engine):
        try:
            first, second, third = asyncio.run(_one_batch_after_another(
                gc, batches[0],
                lambda: _run(demo_engine, "UPDATE users SET display_name = display_name "
                                          "WHERE username = 'worker01'"),
                batches[1],
                lambda: _run(demo_engine, "UPDATE users SET active = false "
                                          "WHERE username = 'worker09'"),
                batches[2]))
            assert all(a.outcome.created for a in first + second)
            assert gc.callers.reads == 2 + 2 + 2  # both tokens, and both again after each change
            assert third[0].outcome.status_code == 401 and third[1].outcome.created
            assert _stored(demo_engine, [batches[2][0].report.client_uuid]) == {}
        finally:
            _run(demo_engine, "UPDATE users SET active = true WHERE username = 'worker09'")


def test_reports_after_a_limit_changed_get_the_new_deadlines(demo_engine, app_database_url,
                                                              tokens, points):
    """The rules a process kept are checked by the insert: after a category's time limits
    changed, its next report is given its deadlines under the new ones (the rules read again),
    exactly as a report alone would be."""
    from gis.db.steps import run_sync
    from gis.worktime.store import workday_end_of

    gc = group_commit(app_database_url, demo_engine)
    before, after = report(points[0]), report(points[1])
    double = "UPDATE time_limits SET value = value * :k WHERE category = 'garbage'"
    with committed_changes(demo_engine):
        try:
            asyncio.run(_one_batch_after_another(
                gc, [waiting(tokens["worker01"], before)],
                lambda: _run(demo_engine, double, k=2),
                [waiting(tokens["worker01"], after)]))
            assert gc.rules.reads == 2
            with session_factory(demo_engine)() as session:
                rules = run_sync(session, reporting._read_rules(None))
                due_at, reported_at = session.execute(text(
                    "SELECT due_at, reported_at FROM issues WHERE client_uuid = :k"),
                    {"k": after.client_uuid}).one()
            expected, _ = reporting._deadlines(reported_at, rules.limits["garbage"]["normal"],
                                               rules.calendar, workday_end_of({}))
            assert due_at == expected
        finally:
            _run(demo_engine, "UPDATE time_limits SET value = value / 2 WHERE category = 'garbage'")
