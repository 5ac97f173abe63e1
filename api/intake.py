"""The intake's group commit: the reports one server process receives at once are written in one
transaction, on the event loop.

Each ``POST /api/v1/issues`` validates its body and hands the report to the process's
:class:`GroupCommit`, then waits. A writer task (:data:`WRITERS` per process) takes every
report waiting (up to :data:`MAX_BATCH`) and, on its own psycopg connection (asyncio, no
thread pool, no ORM), stores the reports in one transaction
(:func:`gis.issues.reporting.report_steps`: one multi-row insert, each new report's answer,
the commit: one round trip); only then is each request answered
(:func:`gis.issues.reporting.answer_steps`, each for its own reporter), so nothing answered 201
or 200 can be lost. The process keeps what a batch would otherwise read before it writes: the
callers of the bearer tokens it has met (:class:`gis.people.sessions.CallerCache`) and the
rules reports are stored under (:class:`gis.issues.reporting.RulesCache`); the insert itself
checks that each caller's session is still live and unchanged and that the rules are current,
and a report it refuses for that is written again after the caller or the rules are read anew
(a token met for the first time is read before its batch writes). While a batch is written the next one gathers: the busier the
process, the bigger its batches; and the next batch waits a moment (:data:`LINGER_S`) for the
clients just answered, so that under load they do not travel apart. A report the domain refuses
(unknown category, a reused key with other content) is answered with its error and leaves the
others alone; a batch the database refuses as a whole is written again report by report, so
that only the bad one fails. A batch that dies before its commit (the connection lost) answers
every one of its requests with 503 and none of them is stored: the tablets send them again
with the same keys.

Callers authenticated otherwise than by a bearer token (the session cookie with its CSRF token,
HTTP Basic) are checked first, in a thread-pool hop as on every route (:mod:`api.deps`).

:class:`SessionIntake` does the same on a request's session (tests run every request on their
own rolled-back connection; ``tests/conftest.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request, Response
from psycopg.pq import TransactionStatus
from psycopg.types.json import set_json_loads
from sqlalchemy.orm import Session, sessionmaker

from api.deps import (
    ActorInEndpointRoute,
    _logged_in,
    _own_password,
    audit_target,
    client_address,
    current_actor_here,
    unauthorized,
)
from gis.db.steps import run_async, run_sync
from gis.errors import Conflict, DatabaseUnavailable, GridMapError
from gis.geotag.index_cache import GridIndexCache
from gis.issues import reporting
from gis.people import sessions
from gis.people.actors import Actor

log = logging.getLogger("gridmap.intake")
MAX_BATCH = 256  # reports per transaction; more wait for the next one
RETRIES = 3  # a batch PostgreSQL aborted as a deadlock or serialization failure is written again
# Batches a process writes at once, each on its own connection: while one waits for its insert,
# the next could check its callers and read its context. One: on this 2-core machine more
# writers made smaller batches and cost more CPU per report for no more throughput, with the
# inserts taking turns and again once they no longer did (bench/README.md, "intake.py").
WRITERS = 1
# After a batch, the writer waits up to this long for as many reports as it has just answered
# and received meanwhile: under load the clients answered send again at once, and a process's
# connections then travel as one batch rather than as two halves taking turns (twice the
# reports per transaction, about a quarter less CPU per report: bench/README.md, "Sixth
# pass"). A lone client is never kept waiting (its next report is all the writer expects);
# reports arriving one by one wait at most this long.
LINGER_S = 0.002
# The writers' connections as PostgreSQL lists them (pg_stat_activity.application_name): an
# operator tells the intake's batches from the other sessions, and bench/intake.py --waits
# samples what they wait for.
APPLICATION_NAME = "gridmap intake"


@dataclass
class Pending:
    """A report waiting for its batch: its caller (a bearer token to check with the batch, or an
    actor checked already) and the request's audit entry (without the username: the caller's)."""

    report: reporting.IssueReport | GridMapError  # a refusal is answered once the caller passes
    token: str | None
    actor: Actor | None
    address: str
    target: str


@dataclass
class Answer:
    outcome: reporting.Reported | Exception
    actor: Actor | None = None
    row: dict | None = None
    nearby: list[dict] | None = None


def pending(request: Request, report: reporting.IssueReport | GridMapError,
            actor: Actor | None = None) -> Pending:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" and actor is None else None
    return Pending(report, bearer or None, actor, client_address(request), audit_target(request))


def uses_bearer(request: Request) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


class GroupCommit:
    """One per server process (``app.state.intake``), made by the lifespan."""

    def __init__(self, conninfo: str, sessions_: sessionmaker[Session], cache: GridIndexCache,
                 policy: sessions.SessionPolicy, info: dict, writers: int = WRITERS,
                 linger_s: float = LINGER_S):
        self.conninfo = conninfo
        self.sessions = sessions_
        self.cache = cache
        self.policy = policy
        self.info = info
        self.writers = writers
        self.linger_s = linger_s
        self.callers = sessions.CallerCache()
        self.rules = reporting.RulesCache()
        self._queue: list[tuple[Pending, asyncio.Future]] = []
        self._wake = asyncio.Event()
        self._writers: list[asyncio.Task] = []
        self._idle: list = []  # connections of writers between batches
        self.dropped = 0  # connections lost (a batch that died with its connection)
        self.batches = 0  # batches written (tests, metrics)
        self.largest = 0  # the most reports one batch held
        self.retried = 0  # batches written again after a deadlock or serialization failure
        self.lingered = 0  # batches that waited for more reports to join them (LINGER_S)

    # -- the requests' side ----------------------------------------------------------------------
    async def report(self, request: Request, report: reporting.IssueReport | GridMapError) -> Answer:
        actor = None
        if not uses_bearer(request):
            actor = await _in_thread(self._check_caller_on_own_session, request)
        if isinstance(report, GridMapError) and actor is not None:
            raise report
        return await self.submit(pending(request, report, actor))

    async def submit(self, item: Pending) -> Answer:
        future = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._wake.set()
        self._writers = [w for w in self._writers if not w.done()]
        if len(self._writers) < self.writers:
            self._writers.append(asyncio.create_task(self._write_forever()))
        return await future

    async def check_caller(self, request: Request) -> None:
        """401 or 403 for a caller who may not report (the body was refused before the endpoint
        ran: :class:`api.deps.ActorInEndpointRoute`)."""
        await _in_thread(self._check_caller_on_own_session, request)

    def _check_caller_on_own_session(self, request: Request) -> Actor:
        with self.sessions() as session:
            actor = current_actor_here(request, session)
            session.info.pop("audit_write", None)  # written with the report
            session.commit()  # a session's last use
            return actor

    async def close(self) -> None:
        for writer in self._writers:
            writer.cancel()
        while self._idle:
            await self._idle.pop().close()

    # -- the writer --------------------------------------------------------------------------------
    async def _write_forever(self) -> None:
        expected = 0  # the reports the next batch waits for (LINGER_S)
        while True:
            while not self._queue:
                self._wake.clear()
                await self._wake.wait()
            if len(self._queue) < expected:
                await self._linger(expected)
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                answers = await self._write_batch([p for p, _ in batch])
            except Exception as exc:  # noqa: BLE001  every waiting request hears of it
                answers = [Answer(exc)] * len(batch)
            # Those about to be answered, whose clients may send again at once, and those that
            # came meanwhile.
            expected = min(len(batch) + len(self._queue), MAX_BATCH)
            for (_, future), answer in zip(batch, answers, strict=True):
                if not future.done():
                    future.set_result(answer)

    async def _linger(self, expected: int) -> None:
        """Wait until ``expected`` reports wait, or :attr:`linger_s` passed."""
        self.lingered += 1
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.linger_s):
                while len(self._queue) < expected:
                    self._wake.clear()
                    await self._wake.wait()

    async def _write_batch(self, batch: list[Pending]) -> list[Answer]:
        import psycopg
        from psycopg import errors

        self.batches += 1
        self.largest = max(self.largest, len(batch))
        try:
            conn = await self._connection()
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(f"the database cannot be reached: {exc}") from exc
        try:
            for attempt in range(RETRIES + 1):
                try:
                    answers = await self._store(conn, batch)
                    break
                except (errors.DeadlockDetected, errors.SerializationFailure):
                    if attempt == RETRIES:
                        raise
                    self.retried += 1
                    log.warning("a report batch was aborted by the database; writing it again")
            answers = await self._answer(conn, answers)
        except psycopg.OperationalError as exc:
            await self._drop(conn)
            raise DatabaseUnavailable(f"the database cannot be reached: {exc}") from exc
        except psycopg.Error as exc:
            self._idle.append(conn)  # rolled back (_store)
            if len(batch) == 1:
                raise
            # The kind of error only: the server's message may quote a report's values.
            log.error("a report batch of %d failed (%s, SQLSTATE %s); writing its reports one "
                      "by one", len(batch), type(exc).__name__, exc.sqlstate)
            return [await self._write_alone(p) for p in batch]
        except BaseException:
            self._idle.append(conn)  # rolled back (_store)
            raise
        self._idle.append(conn)
        return answers

    async def _write_alone(self, item: Pending) -> Answer:
        try:
            (answer,) = await self._write_batch([item])
        except Exception as exc:  # noqa: BLE001  this report's own answer
            return Answer(exc)
        return answer

    async def _store(self, conn, batch: list[Pending]) -> list[Answer]:
        """Check the callers and store their reports (each pass one transaction, committed on
        return). A report refused because its caller changed since this process read them is
        written again, in a pass of its own, once the caller is read anew."""
        answers: list[Answer | None] = [None] * len(batch)
        todo = list(range(len(batch)))
        try:
            for _ in range(RETRIES + 1):
                callers = await self._callers(conn, [batch[i].token for i in todo
                                                     if batch[i].token is not None])
                accepted, where = [], []
                for i in todo:
                    p = batch[i]
                    caller = callers[p.token] if p.token is not None else None
                    actor = caller.actor if caller is not None else p.actor
                    answers[i] = _admitted(p, actor)
                    if answers[i] is None:
                        accepted.append(reporting.Submission(actor, p.report, {
                            "action": "write", "username": actor.username, "address": p.address,
                            "target": p.target}, caller))
                        where.append(i)
                outcomes = await run_async(conn, reporting.report_steps(
                    accepted, self.cache, self.info, self.rules, self.policy),
                    self._call) if accepted else []
                todo = []
                for i, submission, outcome in zip(where, accepted, outcomes, strict=True):
                    if isinstance(outcome, reporting.CallerChanged):
                        self.callers.forget(batch[i].token)
                        todo.append(i)
                    else:
                        answers[i] = Answer(outcome, submission.actor)
                if not todo:
                    break
            for i in todo:  # changed again each time it was read: rare enough to ask again
                answers[i] = Answer(Conflict(
                    "the report could not be stored; send it again with the same key",
                    zh="上报未能保存，请使用同一幂等键重新发送"))
        except BaseException:
            if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
                with contextlib.suppress(Exception):  # a lost connection is dropped by the caller
                    await conn.execute("ROLLBACK")
            raise
        return answers

    async def _callers(self, conn, tokens: list[str]) -> dict[str, sessions.KnownCaller | None]:
        """The caller of each token: as this process met it, else read now (None: dead)."""
        callers = {t: self.callers.get(t) for t in tokens}
        unknown = sorted({t for t, c in callers.items() if c is None})
        if unknown:
            read = await run_async(conn, self.callers.read_steps(unknown, self.policy), self._call)
            callers.update(zip(unknown, read, strict=True))
        return callers

    async def _answer(self, conn, answers: list[Answer]) -> list[Answer]:
        """Read each stored report for its reporter (after the commit)."""
        stored = [a for a in answers if isinstance(a.outcome, reporting.Reported)]
        if stored:
            reads = await run_async(conn, reporting.answer_steps(
                [(a.actor, a.outcome) for a in stored]), self._call)
            for a, (row, nearby) in zip(stored, reads, strict=True):
                a.row, a.nearby = row, nearby
        return answers

    async def _connection(self):
        """A connection of the writers' own (autocommit: the steps open their transactions)."""
        import psycopg

        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
        # Generic plans: every statement the writers send is prepared (psycopg prepares a query
        # it has run five times) and indexed; left to choose, PostgreSQL planned the batch's
        # context afresh each time, for a plan no better (bench/intake_batches.py).
        conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True,
                                                     application_name=APPLICATION_NAME)
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        # The batch's answers come back as JSON (the duplicates, the context, the keys stored):
        # read by orjson, the same values in less time than json.loads.
        set_json_loads(orjson.loads, conn)
        return conn

    async def _drop(self, conn) -> None:
        self.dropped += 1
        with contextlib.suppress(Exception):  # it is gone already
            await conn.close()

    async def _call(self, fn: Callable[[Session], Any]) -> Any:
        """A step that needs a sync session (a rebuild of the grid index), in a thread."""
        def on_own_session():
            with self.sessions() as session:
                return fn(session)

        return await _in_thread(on_own_session)


def _admitted(p: Pending, actor: Actor | None) -> Answer | None:
    """None when ``actor`` may report ``p``; else the answer refusing it (401, 403, or the
    report's own refusal, which a caller hears only once they pass)."""
    if actor is None and p.token is not None:
        return Answer(unauthorized("The access token is invalid, expired or ended; log in again.",
                                   "登录凭证无效、已过期或已失效，请重新登录。"))
    try:
        _own_password(_logged_in(actor))
    except Exception as exc:  # noqa: BLE001  the refusal is the answer
        return Answer(exc, actor)
    if isinstance(p.report, GridMapError):
        return Answer(p.report, actor)
    return None


class SessionIntake:
    """The intake on sessions of the caller's making, one report per transaction (the tests'
    connection: ``tests/conftest.py``)."""

    def __init__(self, sessions_: Callable[[], Session]):
        self.sessions = sessions_

    async def report(self, request: Request, report: reporting.IssueReport | GridMapError) -> Answer:
        return await _in_thread(self._report, request, report)

    async def check_caller(self, request: Request) -> None:
        await _in_thread(self._check_caller, request)

    async def close(self) -> None:
        pass

    def _check_caller(self, request: Request) -> None:
        with self.sessions() as session:
            current_actor_here(request, session)
            session.info.pop("audit_write", None)

    def _report(self, request: Request, report) -> Answer:
        with self.sessions() as session:
            actor = current_actor_here(request, session)
            if isinstance(report, GridMapError):
                raise report
            entry = session.info.pop("audit_write", None)
            submission = reporting.Submission(actor, report, entry and {"action": "write", **entry})
            (outcome,) = run_sync(session, reporting.report_steps(
                [submission], request.app.state.grid_cache, session.info))
            if isinstance(outcome, Exception):
                raise outcome
            row, nearby = reporting.read_back(session, actor, outcome)
            session.commit()
            return Answer(outcome, actor, row, nearby)


async def get_intake(request: Request) -> GroupCommit | SessionIntake:
    """The process's group commit (tests put a :class:`SessionIntake` in its place)."""
    intake = request.app.state.intake
    request.state.intake = intake
    return intake


IntakeDep = Annotated[Any, Depends(get_intake)]


async def _in_thread(fn, *args):
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)



# The media types whose bodies the intake's route reads itself (:class:`IntakeRoute`): FastAPI
# reads them as JSON too; every other goes its way.
_JSON_MEDIA_TYPES = frozenset({"application/json", "application/geo+json"})


class IntakeRoute(ActorInEndpointRoute):
    """The intake's route (``POST /api/v1/issues``): FastAPI's handler without its solving of the
    endpoint's parameters on every request.

    For each request FastAPI works out again where every parameter of the endpoint comes from
    and how to read it (the intake, the body, the Idempotency-Key header): on the busiest route
    that was more than half of its own Python (in-process, 0.26 ms a request with it, 0.16
    without; bench/README.md, "Seventh pass"). Here a request with a JSON body is read in the
    same steps, once: the body decoded as FastAPI decodes it and validated by the route's own
    fields as FastAPI validates them (:meth:`ModelField.validate`, same input, same result); the
    intake is the app's. A request this way would refuse (a body that is not JSON or fails
    validation, a key too long, another media type, no body), and every request while a test
    stands in its own intake (``dependency_overrides``), goes to FastAPI's own handler: each
    error is FastAPI's, word for word, and a caller who may not report still hears 401 or 403
    first (:class:`api.deps.ActorInEndpointRoute`). The endpoint keeps its signature: the
    OpenAPI document is FastAPI's as before."""

    def request_handler(self):
        standard = super().request_handler()
        body_field = self.body_field
        (key_field,) = self.dependant.header_params
        key_loc = ("header", key_field.alias)
        (intake_name,) = [d.name for d in self.dependant.dependencies if d.call is get_intake]
        request_name = self.dependant.request_param_name
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            if (get_intake in request.app.dependency_overrides
                    or _media_type(request.headers.get("content-type")) not in _JSON_MEDIA_TYPES):
                return await standard(request)
            try:
                report = json.loads(await request.body())
            except Exception:  # noqa: BLE001  no body, bad JSON, too deep, cut off: FastAPI's to answer
                return await standard(request)
            report, errors = body_field.validate(report, {}, loc=("body",))
            key = request.headers.get(key_field.alias)
            if key is not None and not errors:
                key, errors = key_field.validate(key, {}, loc=key_loc)
            if errors:
                return await standard(request)
            return await endpoint(**{request_name: request, intake_name: await get_intake(request),
                                     body_field.name: report, key_field.name: key})

        return handler


def _media_type(content_type: str | None) -> str:
    return content_type.partition(";")[0].strip().lower() if content_type else ""
