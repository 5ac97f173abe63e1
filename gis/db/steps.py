"""Database work written once, run on a SQLAlchemy session or on an asyncio psycopg connection.

A unit of work that must run both ways (a report: through the request's session for the
single-report doors and the tests, batched on the event loop for the intake) is a generator of
*steps* (sans I/O): it yields a list of :class:`Statement` (sent together, in one round trip
where the driver can) and receives their rows (a list of dicts per statement), or yields a
:class:`Call` (a function of a SQLAlchemy session, such as a rebuild of the grid index) and
receives its result. Its return value is the unit's result. :func:`run_sync` and
:func:`run_async` are the two drivers; the SQL is written once, SQLAlchemy-style (``:name``),
and turned into the driver's form once per distinct text (:func:`driver_sql`).
"""

from __future__ import annotations

import asyncio
import re
import uuid
import weakref
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import orjson
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


# A transaction's bounds inside a unit of work: kept by :func:`run_async` (its connection is in
# autocommit mode: a unit opens and ends its own transactions, and holds a lock only between
# them; bounds around one whole step need not be sent, :func:`_implicit`), skipped by
# :func:`run_sync` (the session's transaction is the caller's).
BEGIN = Statement("BEGIN", {})
COMMIT = Statement("COMMIT", {})
_BOUNDS = (BEGIN, COMMIT)

Rows = list[dict]
Steps = Generator[list[Statement] | Call, Any, Any]


@lru_cache(maxsize=512)
def driver_sql(sql: str) -> str:
    """``sql`` (SQLAlchemy text style) in psycopg's own parameter style (``%(name)s``, a literal
    ``%`` doubled), as SQLAlchemy itself would send it, without its indentation
    (:func:`squeezed`)."""
    from sqlalchemy.dialects.postgresql.psycopg import dialect

    return squeezed(str(text(sql).compile(dialect=dialect())))


# A quoted literal or identifier (its quote doubled inside), or a run of whitespace outside them.
_QUOTED_OR_SPACE = re.compile(r"""('(?:[^']|'')*'|"(?:[^"]|"")*")|(\s+)""")


def squeezed(sql: str) -> str:
    """``sql`` with each run of whitespace outside quotes made one space (one newline where it
    held one, if the text has a ``--`` comment, which must still end there): the same statement,
    shorter. psycopg keeps the parsed form of a query up to 4 KB only and parses a longer one
    again on every execution, and the batch's insert, indented, is longer than that. Text with
    a dollar quote or an escape string (``E'...'``, whose quotes a backslash may escape) is
    left as it is."""
    if "$" in sql or re.search(r"\b[eE]'", sql):
        return sql
    comments = "--" in sql
    return _QUOTED_OR_SPACE.sub(
        lambda m: m.group(1) or ("\n" if comments and "\n" in m.group(2) else " "), sql).strip()


# A bind parameter in SQLAlchemy's text(): the rule text() itself applies (``::type`` casts and
# names inside other words are not parameters).
_PARAMETER = re.compile(r"(?<![:\w\\]):(\w+)(?![:\w])")


def merged(statements: list[Statement]) -> tuple[list[Statement], Callable[[list[Rows]], list[Rows]]]:
    """``statements`` with those of the same SQL sent as one: each group runs its SQL once per
    parameter set, as a LATERAL subquery over the sets (a JSON recordset, its columns typed
    from the values), so PostgreSQL starts the plan once and the driver handles one result.
    Returns the statements to send and the function that turns their rows back into each
    original statement's rows (in order). A statement's own rows keep their order."""
    groups: dict[str, list[int]] = {}
    for n, s in enumerate(statements):
        groups.setdefault(s.sql, []).append(n)
    sent: list[Statement] = []
    parts: list[list[int]] = []
    for sql, members in groups.items():
        parts.append(members)
        if len(members) == 1 or not sql:
            sent.append(statements[members[0]])
            continue
        sent.append(_lateral(sql, [statements[n].params for n in members]))

    def split(results: list[Rows]) -> list[Rows]:
        out: list[Rows] = [[] for _ in statements]
        for members, rows in zip(parts, results, strict=True):
            if len(members) == 1 or not statements[members[0]].sql:
                out[members[0]] = rows
                continue
            for row in rows:
                n = row.pop("_set")
                del row["_row"]
                out[members[n]].append(row)
        return out

    return sent, split


def _lateral(sql: str, param_sets: list[dict]) -> Statement:
    # Every parameter a column, those equal in all the sets too: the statement's text then
    # depends on the SQL and the parameters' types only, so the driver prepares it once. One
    # that is NULL in every set stays a bound NULL, whose type PostgreSQL infers from its use
    # (as when the statements go alone), where a column would need a type of its own.
    names, _ = _parameters(sql)
    columns = tuple((k, _sql_type([p.get(k) for p in param_sets])) for k in names
                    if any(p.get(k) is not None for p in param_sets))
    lateral_sql, unbound = _lateral_sql(sql, columns)
    sets = [{"_set": n} | {k: p.get(k) for k, _ in columns} for n, p in enumerate(param_sets)]
    return Statement(lateral_sql, dict.fromkeys(unbound) | {"_sets": json_text(sets)})


@lru_cache(maxsize=256)
def _parameters(sql: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The names of ``sql``'s parameters: each once, in order of first use; and every use."""
    uses = tuple(_PARAMETER.findall(sql))
    return tuple(dict.fromkeys(uses)), uses


@lru_cache(maxsize=256)
def _lateral_sql(sql: str, columns: tuple[tuple[str, str], ...]) -> tuple[str, tuple[str, ...]]:
    """The text of :func:`_lateral` for ``sql`` with ``columns`` ((name, SQL type) of the
    parameters taken from the sets), built once (a batch's answers are sent many times a
    second), and the names of the parameters left bound (NULL)."""
    typed = dict(columns)
    body = _PARAMETER.sub(lambda m: f'_sets."{m.group(1)}"' if m.group(1) in typed
                          else m.group(0), sql)
    typed_columns = "".join(f', "{k}" {t}' for k, t in columns)
    text_ = (f"SELECT _sets._set, _one.* FROM jsonb_to_recordset(CAST(:_sets AS jsonb)) "
             f"AS _sets(_set integer{typed_columns}) "
             f"CROSS JOIN LATERAL (SELECT row_number() OVER () AS _row, _rows.* FROM ({body}) "
             f"AS _rows) AS _one ORDER BY _sets._set, _one._row")
    return text_, tuple(m for m in _parameters(sql)[1] if m not in typed)


def json_text(value) -> str:
    """``value`` as JSON text for a jsonb parameter: dicts with str keys, lists, str, numbers,
    None, and as text the values that have no JSON type (a timestamp in ISO 8601, a UUID, a
    decimal; a set as a list). orjson, a few times faster than json.dumps on a batch's rows,
    writes the same document (UTF-8, not escaped)."""
    return orjson.dumps(value, default=_json_default).decode()


def array_text(values) -> str:
    """``values`` (strings) as the text of a PostgreSQL array (``{"a","b"}``), for a parameter
    cast to an array type (``CAST(:digests AS char(64)[])``): the same array, where psycopg,
    given a list, looks through its items for their type on every execution."""
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
                          for v in values) + "}"


def _json_default(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (frozenset, set)):
        return list(value)
    raise TypeError(f"no JSON form for {type(value).__name__}")


def _sql_type(values: list) -> str:
    """The PostgreSQL type of a parameter taking these Python values, as psycopg would send
    them (an int as integer when it fits, else bigint; ints and floats together as float8; a
    list as an array of its items' type; a naive datetime as timestamp); text when no value is
    known. A string stays text: SQL that compares one with another type casts it
    (``CAST(:day AS date)``), as this project's SQL does."""
    known = [v for v in values if v is not None]
    if not known:
        return "text"
    kinds = {type(v) for v in known}
    if len(kinds) == 1 and (kind := kinds.pop()) in _SQL_TYPES:  # the usual case, at once
        return _SQL_TYPES[kind]
    if all(isinstance(v, (list, tuple, frozenset, set)) for v in known):
        items = [x for v in known for x in v]
        return f"{_sql_type(items)}[]"
    if all(isinstance(v, bool) for v in known):
        return "boolean"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in known):
        return "integer" if all(-2**31 <= v < 2**31 for v in known) else "bigint"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in known):
        return "float8"
    if all(isinstance(v, Decimal) for v in known):
        return "numeric"
    if all(isinstance(v, uuid.UUID) for v in known):
        return "uuid"
    if all(isinstance(v, datetime) for v in known):
        return "timestamptz" if all(v.tzinfo is not None for v in known) else "timestamp"
    if all(isinstance(v, date) for v in known):
        return "date"
    if all(isinstance(v, dict) for v in known):
        return "jsonb"
    if all(isinstance(v, str) for v in known):
        return "text"
    raise TypeError(f"no merged form for parameters of types {sorted({type(v).__name__ for v in known})}")


# The SQL type of parameters all of one of these Python types (the rest: :func:`_sql_type`).
_SQL_TYPES = {bool: "boolean", float: "float8", Decimal: "numeric", uuid.UUID: "uuid",
              date: "date", dict: "jsonb", str: "text"}


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


async def run_async(conn, steps: Steps, call: Callable[[Callable[[Session], Any]], Any]):
    """Run ``steps`` on the psycopg ``AsyncConnection`` ``conn``, in autocommit mode (a statement
    outside :data:`BEGIN` … :data:`COMMIT` is its own transaction): each list of statements in
    one pipeline, one round trip. ``call`` runs a :class:`Call`'s function (awaitable: in a
    thread, on a session of its own). On an error inside a transaction the caller rolls back."""
    try:
        request = next(steps)
        while True:
            if isinstance(request, Call):
                answer = await call(request.fn)
            else:
                answer = await pipeline(conn, _implicit(request))
            request = steps.send(answer)
    except StopIteration as done:
        return done.value


_SKIPPED = Statement("", {})


def _implicit(statements: list[Statement]) -> list[Statement]:
    """``statements`` without the BEGIN and COMMIT around all of them: what one pipeline sends
    up to its sync is one transaction already (the extended protocol's implicit transaction:
    committed at the sync, rolled back whole when a statement fails), and each costs the
    driver a command of its own."""
    if (len(statements) > 2 and statements[0] == BEGIN and statements[-1] == COMMIT
            and not any(s in _BOUNDS for s in statements[1:-1])):
        return [_SKIPPED, *statements[1:-1], _SKIPPED]
    return statements


async def pipeline(conn, statements: list[Statement]) -> list[Rows]:
    """The rows of each of ``statements``, sent in one round trip (dicts)."""
    from psycopg.rows import dict_row

    live = [s for s in statements if s.sql]
    if len(live) == 1:  # one statement: psycopg's extended protocol (it prepares a query it reuses)
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(driver_sql(live[0].sql), live[0].params)
        rows = await cur.fetchall() if _gave_rows(cur) else []
        return [rows if s.sql else [] for s in statements]
    it = iter(await _one_round_trip(conn, live))
    return [next(it) if s.sql else [] for s in statements]


# Statements sent together go in one round trip of the extended protocol in pipeline mode, as
# psycopg's pipeline sends them, but written to the socket at once: each statement prepared once
# per connection (its text and its parameters' types; named ``gridmap_<n>``), then bound with the
# parameters psycopg dumps for it and run, and one sync (PostgreSQL runs what comes before a sync
# as one transaction, unless it holds BEGIN or COMMIT, and a statement that fails takes the rest
# of it with it). psycopg's pipeline wrote each statement and then the sync to the socket apart
# (three sends to the server for a batch of reports), and entering it, queueing each command and
# sorting the results back to cursors cost more Python than the statements' own: the writer of a
# batch took a tenth less CPU per report this way (bench/README.md, "Eleventh pass"). The
# parameters travel as parameters (never in the statement's text, which PostgreSQL shows in
# pg_stat_activity and logs with an error), the rows are read by the connection's loaders.
_MAX_PREPARED = 256  # per connection; past it ours are closed and prepared anew


@dataclass
class _Prepared:
    """The statements prepared on one connection: {(text, parameter types): name}. A name is
    never used twice on a connection."""

    names: dict = field(default_factory=dict)
    made: int = 0

    def name(self) -> bytes:
        self.made += 1
        return b"gridmap_%d" % self.made


_PREPARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # conn -> _Prepared
# A placeholder in psycopg's form, or a percent sign doubled (the driver's text: driver_sql).
_PLACEHOLDER = re.compile(r"%%|%\((\w+)\)s")


@lru_cache(maxsize=512)
def _numbered(sql: str) -> tuple[bytes, tuple[str, ...]]:
    """``sql`` (SQLAlchemy text style) with ``$1``, ``$2``… for its parameters, as psycopg
    numbers them (a name used twice is one parameter), and the names in their numbers' order."""
    names: dict[str, int] = {}

    def number(m: re.Match) -> str:
        if m.group(1) is None:
            return "%"
        return f"${names.setdefault(m.group(1), len(names) + 1)}"

    text_ = _PLACEHOLDER.sub(number, driver_sql(sql))
    return text_.encode(), tuple(names)


async def _one_round_trip(conn, statements: list[Statement]) -> list[Rows]:
    """The rows of each of ``statements`` (dicts), sent as one write on the psycopg
    ``AsyncConnection`` ``conn`` (autocommit: its transactions are the statements')."""
    from psycopg import OperationalError
    from psycopg.adapt import PyFormat, Transformer
    from psycopg.errors import error_from_result
    from psycopg.pq import ExecStatus

    pgconn = conn.pgconn
    prepared = _PREPARED.get(conn)
    if prepared is None:
        prepared = _PREPARED[conn] = _Prepared()
    if len(prepared.names) > _MAX_PREPARED:
        for name in prepared.names.values():  # ours alone: psycopg has its own on the connection
            await conn.execute(b"DEALLOCATE " + name, prepare=False)
        prepared.names.clear()
    transformer = Transformer(conn)
    sent: list[int | None] = []  # for each command sent: its statement, or None (a PREPARE)
    made = []
    pgconn.enter_pipeline_mode()
    try:
        for n, statement in enumerate(statements):
            query, names = _numbered(statement.sql)
            if not names:
                pgconn.send_query_params(query, None)
                sent.append(n)
                continue
            params = transformer.dump_sequence([statement.params[k] for k in names],
                                               [PyFormat.AUTO] * len(names))
            key = (query, tuple(transformer.types))
            name = prepared.names.get(key)
            if name is None:
                name = prepared.names[key] = prepared.name()
                made.append(key)
                pgconn.send_prepare(name, query, param_types=transformer.types)
                sent.append(None)
            pgconn.send_query_prepared(name, params, param_formats=transformer.formats)
            sent.append(n)
        pgconn.pipeline_sync()
        await _flush(pgconn)
        results: list = [None] * len(statements)
        failed = None
        for n in sent:
            result = await _result(pgconn)
            while (more := await _result(pgconn)) is not None:
                result = more  # a statement gives one result; the last stands if ever more
            if result.status == ExecStatus.FATAL_ERROR and failed is None:
                failed = error_from_result(result, encoding=conn.info.encoding)
            elif n is not None:
                results[n] = result
        sync = await _result(pgconn)
        if sync is None or sync.status != ExecStatus.PIPELINE_SYNC:
            raise OperationalError("the pipeline's sync was not answered")
        pgconn.exit_pipeline_mode()
    except BaseException:
        # Cut off half way (a lost connection, a cancelled task): the connection's state is not
        # known, so it is closed; the writer drops it and opens another.
        for key in made:
            prepared.names.pop(key, None)
        if pgconn.pipeline_status:
            pgconn.finish()
        raise
    if failed is not None:
        for key in made:  # a PREPARE the failure aborted: prepared anew under new names
            prepared.names.pop(key, None)
        raise failed
    return [_rows_of(transformer, result, conn.info.encoding) for result in results]


def _rows_of(transformer, result, encoding: str) -> Rows:
    from psycopg.pq import ExecStatus

    if result.status != ExecStatus.TUPLES_OK:
        return []
    transformer.set_pgresult(result)
    names = [result.fname(i).decode(encoding) for i in range(result.nfields)]
    return transformer.load_rows(0, result.ntuples, lambda values: dict(zip(names, values, strict=True)))


async def _socket_ready(pgconn, write: bool) -> None:
    """Wait until the connection's socket can be read (or, with ``write``, read or written)."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    fd = pgconn.socket

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    if write:
        loop.add_writer(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
        if write:
            loop.remove_writer(fd)


async def _flush(pgconn) -> None:
    """Write what libpq holds for the server (reading what the server sends meanwhile, so that
    neither side waits for the other with full buffers)."""
    while pgconn.flush():
        await _socket_ready(pgconn, write=True)
        pgconn.consume_input()


async def _result(pgconn):
    """The next result of the pipeline (None: the end of a statement's results)."""
    while pgconn.is_busy():
        await _socket_ready(pgconn, write=False)
        pgconn.consume_input()
    return pgconn.get_result()


# psycopg builds a Column object for every column each time a cursor's ``description`` is read:
# for the answer's forty-odd columns, a tenth of the writer's time at batches of one. This reads
# the result itself.
def _gave_rows(cursor) -> bool:
    """Whether the statement returned rows (``cursor.description is not None``, for the
    results this module reads)."""
    from psycopg.pq import ExecStatus

    result = cursor.pgresult
    return result is not None and result.status == ExecStatus.TUPLES_OK
