"""Database work written once, run on a SQLAlchemy session or on an asyncio psycopg connection.

A unit of work that must run both ways (a report: through the request's session for the
single-report doors and the tests, batched on the event loop for the intake) is a generator of
*steps* (sans I/O): it yields a list of :class:`Statement` (sent together, in one pipeline where
the driver can) and receives their rows (a list of dicts per statement), or yields a
:class:`Call` (a function of a SQLAlchemy session, such as a rebuild of the grid index) and
receives its result. Its return value is the unit's result. :func:`run_sync` and
:func:`run_async` are the two drivers; the SQL is written once, SQLAlchemy-style (``:name``),
and turned into the driver's form once per distinct text (:func:`driver_sql`).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.db.engine import cached_text


@dataclass(frozen=True)
class Statement:
    sql: str  # SQLAlchemy text() style: :name parameters, CAST(:x AS type)
    params: dict


@dataclass(frozen=True)
class Call:
    """A function of a sync session, for the rare step that needs the SQLAlchemy world."""

    fn: Callable[[Session], Any]


# A transaction's bounds inside a unit of work: sent as they are by :func:`run_async` (its
# connection is in autocommit mode: a unit opens and ends its own transactions, and holds a lock
# only between them), skipped by :func:`run_sync` (the session's transaction is the caller's).
BEGIN = Statement("BEGIN", {})
COMMIT = Statement("COMMIT", {})
_BOUNDS = (BEGIN, COMMIT)

Rows = list[dict]
Steps = Generator[list[Statement] | Call, Any, Any]


@lru_cache(maxsize=512)
def driver_sql(sql: str) -> str:
    """``sql`` (SQLAlchemy text style) in psycopg's own parameter style (``%(name)s``, a literal
    ``%`` doubled), as SQLAlchemy itself would send it."""
    from sqlalchemy.dialects.postgresql.psycopg import dialect

    return str(text(sql).compile(dialect=dialect()))


def run_sync(session: Session, steps: Steps):
    """Run ``steps`` on ``session``, all in its transaction (the caller commits)."""
    try:
        request = next(steps)
        while True:
            if isinstance(request, Call):
                answer = request.fn(session)
            else:
                answer = [_rows(session, s) if s.sql and s not in _BOUNDS else [] for s in request]
            request = steps.send(answer)
    except StopIteration as done:
        return done.value


def _rows(session: Session, statement: Statement) -> Rows:
    result = session.execute(cached_text(statement.sql), statement.params)
    return [dict(r) for r in result.mappings()] if result.returns_rows else []


async def run_async(conn, steps: Steps, call: Callable[[Callable[[Session], Any]], Any],
                    *, started: list[Rows] | None = None):
    """Run ``steps`` on the psycopg ``AsyncConnection`` ``conn``, in autocommit mode (a statement
    outside :data:`BEGIN` … :data:`COMMIT` is its own transaction): each list of statements in
    one pipeline, one round trip. ``call`` runs a :class:`Call`'s function (awaitable: in a
    thread, on a session of its own). On an error inside a transaction the caller rolls back.
    ``started``: the rows of the first step's statements, which the caller sent already (with
    statements of its own, in one round trip)."""
    try:
        request = next(steps) if started is None else steps.send(started)
        while True:
            if isinstance(request, Call):
                answer = await call(request.fn)
            else:
                answer = await pipeline(conn, request)
            request = steps.send(answer)
    except StopIteration as done:
        return done.value


async def pipeline(conn, statements: list[Statement]) -> list[Rows]:
    """The rows of each of ``statements``, sent in one round trip (dicts)."""
    from psycopg.rows import dict_row

    return await _pipeline(conn, statements, dict_row)


async def _pipeline(conn, statements: list[Statement], row_factory) -> list[Rows]:
    live = [s for s in statements if s.sql]
    if len(live) == 1:  # no pipeline for one statement: its result is the round trip anyway
        cur = conn.cursor(row_factory=row_factory)
        await cur.execute(driver_sql(live[0].sql), live[0].params)
        rows = await cur.fetchall() if cur.description else []
        return [rows if s.sql else [] for s in statements]
    cursors = []
    async with conn.pipeline() as pipeline:
        for s in live:
            cur = conn.cursor(row_factory=row_factory)
            await cur.execute(driver_sql(s.sql), s.params)
            cursors.append(cur)
        await pipeline.sync()
        results = [await c.fetchall() if c.description else [] for c in cursors]
    it = iter(results)
    return [next(it) if s.sql else [] for s in statements]
