"""gis.db.steps: statements of the same SQL sent as one (merged) give each statement the rows it
would have given alone, in its own order, whatever the parameters' types and values; statements
sent together on the event loop (one round trip of statements prepared once per connection)
give each the rows it gives alone; a step sent on the event loop inside BEGIN … COMMIT is one
transaction."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import errors

from gis.db.engine import libpq_url
from gis.db.steps import (
    BEGIN,
    COMMIT,
    Statement,
    _rows,
    array_text,
    driver_sql,
    merged,
    pipeline,
    run_async,
)

# Rows in an order of the statement's own (descending), zero to four of them, from parameters
# of most kinds: an int used as a count and in arithmetic, a float, a string, a timestamp, a
# UUID, an array, a value that may be NULL; ``::`` casts and a name inside a word are not
# parameters.
SERIES = """
    SELECT g AS n, :label AS label, :x * g AS x, CAST(:at AS timestamptz) + make_interval(days => g)
           AS at, CAST(:key AS uuid) AS key, cardinality(CAST(:codes AS varchar[])) AS codes,
           CAST(:maybe AS integer) AS maybe, 'a:b'::text AS literal
      FROM generate_series(1, :k) g
     ORDER BY g DESC"""
# One row; a reserved word as a parameter's name; booleans and numerics; a parameter compared
# with an integer column without a cast (NULL in every set, its type comes from that use).
ONE = """SELECT :order AS "order", NOT :flag AS flag, CAST(:amount AS numeric) * 2 AS amount,
                (SELECT count(*) FROM grids WHERE id = :grid) AS grids"""

texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
series = st.builds(
    lambda label, x, days, key, codes, maybe, k: Statement(SERIES, {
        "label": label, "x": x, "at": datetime(2026, 12, 1, tzinfo=UTC) + timedelta(days=days),
        "key": key, "codes": codes, "maybe": maybe, "k": k}),
    texts, st.one_of(st.integers(-1000, 1000), st.floats(-1e6, 1e6, allow_nan=False)),
    st.integers(-400, 400), st.uuids(), st.lists(texts, max_size=3),
    st.none() | st.integers(-5, 5), st.integers(0, 4))
ones = st.builds(
    lambda order, flag, amount, grid: Statement(ONE, {"order": order, "flag": flag,
                                                      "amount": amount, "grid": grid}),
    st.integers(-2**40, 2**40), st.booleans(),
    st.decimals(-10**6, 10**6, places=2, allow_nan=False, allow_infinity=False),
    st.none() | st.integers(1, 3))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(series, ones), max_size=8))
def test_merged_statements_give_each_statement_its_own_rows(session, statements):
    sent, split = merged(statements)
    assert len(sent) == len({s.sql for s in statements})
    assert split([_rows(session, s) for s in sent]) == [_rows(session, s) for s in statements]


def test_a_group_whose_parameters_are_all_equal_is_sent_once(session):
    same = Statement(ONE, {"order": 1, "flag": True, "amount": Decimal("1.50"), "grid": None})
    sent, split = merged([same, same, same])
    assert len(sent) == 1
    assert split([_rows(session, sent[0])]) == [[{"order": 1, "flag": False,
                                                   "amount": Decimal("3.00"), "grids": 0}]] * 3


def test_parameters_without_a_sql_type_are_refused():
    with pytest.raises(TypeError, match="bytes"):
        merged([Statement(ONE, {"order": b"x", "flag": True, "amount": 1, "grid": 1}),
                Statement(ONE, {"order": b"y", "flag": True, "amount": 1, "grid": 1})])


def test_a_statement_alone_is_sent_as_it_is():
    alone = Statement(SERIES, {"label": "x", "x": 1, "at": None, "key": uuid.uuid4(), "codes": [],
                               "maybe": None, "k": 1})
    sent, split = merged([alone])
    assert sent == [alone] and split([[{"n": 1}]]) == [[{"n": 1}]]


def test_a_step_inside_begin_and_commit_is_one_transaction_on_the_event_loop(database_url):
    """run_async sends a step enclosed in BEGIN … COMMIT without them (one pipeline is one
    transaction): a statement that fails takes the step's earlier ones with it, and one that
    succeeds commits them all, in one transaction."""
    def step(*statements):
        rows = yield [BEGIN, *statements, COMMIT]
        return rows

    async def main():
        conn = await psycopg.AsyncConnection.connect(libpq_url(database_url), autocommit=True)
        async with conn:
            await conn.execute("CREATE TEMPORARY TABLE step_rows (n integer PRIMARY KEY)")
            insert = Statement("INSERT INTO step_rows VALUES (:n) RETURNING txid_current() AS tx", {"n": 1})
            with pytest.raises(errors.DivisionByZero):
                await run_async(conn, step(insert, Statement("SELECT 1 / 0", {})), None)
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            assert await (await conn.execute("SELECT count(*) FROM step_rows")).fetchone() == (0,)
            rows = await run_async(conn, step(insert, Statement(
                "SELECT txid_current() AS tx, count(*) AS n FROM step_rows", {})), None)
            assert rows[0] == rows[-1] == [] and rows[1][0]["tx"] == rows[2][0]["tx"]
            assert rows[2][0]["n"] == 1
            assert await (await conn.execute("SELECT count(*) FROM step_rows")).fetchone() == (1,)

    asyncio.run(main())


def test_a_statement_without_rows_gives_none_and_names_keep_their_script(database_url):
    """A statement that returns no rows (an INSERT without RETURNING) gives [] in a pipeline
    and alone, one that returns none of its rows gives [] too; column names outside ASCII
    (an alias in Chinese) come back as written in a pipeline."""
    async def main():
        conn = await psycopg.AsyncConnection.connect(libpq_url(database_url), autocommit=True)
        async with conn:
            await conn.execute("CREATE TEMPORARY TABLE quiet_rows (n integer)")
            insert = Statement("INSERT INTO quiet_rows VALUES (:n)", {"n": 1})
            assert await pipeline(conn, [insert]) == [[]]
            named = Statement('SELECT count(*) AS "网格数", :tag AS 标签 FROM quiet_rows', {"tag": "甲"})
            none = Statement("SELECT n FROM quiet_rows WHERE n < :low", {"low": 0})
            assert await pipeline(conn, [insert, none, named]) == [
                [], [], [{"网格数": 2, "标签": "甲"}]]

    asyncio.run(main())




@pytest.fixture(scope="module")
def async_conn(database_url):
    """An event loop and an asyncio connection on it (autocommit, as the intake's writers)."""
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(psycopg.AsyncConnection.connect(libpq_url(database_url),
                                                                   autocommit=True))
    yield loop, conn
    loop.run_until_complete(conn.close())
    loop.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(series, ones), min_size=2, max_size=6))
def test_statements_sent_together_give_the_rows_each_gives_alone(session, async_conn, statements):
    """Each statement's parameters are bound as psycopg binds them (quotes, backslashes, percent
    signs, any script; NULL; numbers, timestamps, arrays, UUIDs): the rows are those of the
    statement sent alone, typed alike."""
    loop, conn = async_conn
    together = loop.run_until_complete(pipeline(conn, statements))
    assert together == [_rows(session, s) for s in statements]


def test_a_statement_is_prepared_once_per_connection_and_types(async_conn):
    loop, conn = async_conn

    async def prepared() -> set[str]:
        cur = await conn.execute("SELECT name FROM pg_prepared_statements"
                                 " WHERE name LIKE 'gridmap%'")
        return {r[0] for r in await cur.fetchall()}

    async def main():
        sql = f"SELECT :n * 2 AS n, '{uuid.uuid4()}' AS tag"  # a text no test sent before
        one, two = Statement(sql, {"n": 1}), Statement(sql, {"n": 2**40})
        before = await prepared()
        rows = await pipeline(conn, [one, one])
        once = await prepared()
        assert len(once - before) == 1  # one text, one set of parameter types
        assert [r[0]["n"] for r in rows] == [2, 2]
        rows = await pipeline(conn, [one, two])
        assert [r[0]["n"] for r in rows] == [2, 2**41]
        assert len(await prepared() - once) == 1  # a bigint where an int was: its own
        await pipeline(conn, [two, one])
        assert len(await prepared() - once) == 1

    loop.run_until_complete(main())


def test_a_statement_that_cannot_be_prepared_fails_and_the_connection_goes_on(async_conn):
    loop, conn = async_conn

    async def main():
        # A text of its own, prepared after the one that fails, in the same message: never.
        good = Statement(f"SELECT :n + 1 AS n, '{uuid.uuid4()}' AS tag", {"n": 1})
        with pytest.raises(errors.UndefinedColumn):
            await pipeline(conn, [Statement("SELECT no_such_column + :n", {"n": 1}), good])
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert [rows[0]["n"] for rows in await pipeline(conn, [good, good])] == [2, 2]

    loop.run_until_complete(main())


def test_statements_cut_off_half_way_close_their_connection(database_url):
    """A round trip cancelled while the server runs it (the writer's task cancelled at
    shutdown) leaves a connection in a state no one knows: it is closed, never reused. (What
    was sent with its sync may still commit on the server: a report's key makes its retry a
    replay.)"""
    async def main():
        conn = await psycopg.AsyncConnection.connect(libpq_url(database_url), autocommit=True)
        trip = asyncio.create_task(pipeline(conn, [
            Statement("SELECT :n AS n", {"n": 1}), Statement("SELECT pg_sleep(:s) AS slept", {"s": 2})]))
        await asyncio.sleep(0.5)
        assert not trip.done()  # cut off while the server runs it
        trip.cancel()
        with pytest.raises(asyncio.CancelledError):
            await trip
        assert conn.closed

    asyncio.run(main())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)
                | st.sampled_from(["NULL", '"', "\\", "{}", "a,b", " x "]), max_size=5))
def test_array_text_is_the_array_of_its_strings(session, values):
    rows = _rows(session, Statement("SELECT CAST(:a AS text[]) AS a", {"a": array_text(values)}))
    assert rows == [{"a": values}]


# Literal text and identifiers with what squeezing must leave alone inside quotes: runs of
# spaces, tabs and newlines, quotes, a comment's look-alike, a percent sign (the driver's own
# placeholders start with one).
quoted_texts = st.lists(st.sampled_from(["a", "网", " ", "  ", "\t", "\n", "'", '"', "--", "%",
                                         ","]), max_size=10).map("".join)
spaces = st.sampled_from([" ", "  ", "\n", "\n    ", "\t", " \n\t "])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(literal=quoted_texts, name=quoted_texts, gaps=st.lists(spaces, min_size=6, max_size=6),
       comment=st.booleans())
def test_squeezed_sql_gives_the_same_rows(database_url, literal, name, gaps, comment):
    """driver_sql squeezes the whitespace out of a statement (psycopg parses a query longer than
    4 KB again on every execution): quoted text and identifiers keep theirs, and a ``--``
    comment still ends at its line's end."""
    identifier = name.replace('"', '""') or "n"
    sql = (f"SELECT{gaps[0]}'{literal.replace(chr(39), chr(39) * 2)}'{gaps[1]}AS{gaps[2]}"
           f'"{identifier}",{gaps[3]}:k + 1 AS k{" -- a comment, then the rest" if comment else ""}'
           f"\n{gaps[4]}, g FROM generate_series(1, 3) g{gaps[5]}WHERE g > :k")
    driven = driver_sql(sql)
    with psycopg.connect(libpq_url(database_url)) as conn:
        rows = conn.execute(driven, {"k": 1}).fetchall()
        names = [c.name for c in conn.execute(driven, {"k": 1}).description]
    assert rows == [(literal, 2, 2), (literal, 2, 3)]
    assert names == [identifier.replace('""', '"'), "k", "g"]


def test_the_intakes_statements_stay_short_enough_for_psycopg_to_keep_parsed():
    """psycopg caches the parsed form of a query of up to MAX_CACHED_STATEMENT_LENGTH bytes and
    parses a longer one on every execution (3% of a server process's time under load, for the
    insert alone): the batch's insert and each role's answer must stay under it."""
    from types import SimpleNamespace

    from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH

    from gis.issues import reporting
    from gis.people.actors import Actor
    from gis.rules import ROLES

    assert len(driver_sql(reporting._INSERT).encode()) <= MAX_CACHED_STATEMENT_LENGTH
    place = SimpleNamespace(lon=112.5, lat=37.8)
    for role in ROLES:
        actor = Actor(1, "someone", "某人", role, grid_codes=frozenset({"G1"}), region_id=1,
                      region_grid_codes=frozenset({"G1"}), department_id=1)
        answers, _ = merged([reporting._new_answer_statement(
            actor, uuid.uuid4(), "garbage", place, datetime.now(UTC)) for _ in range(2)])
        assert all(len(driver_sql(s.sql).encode()) <= MAX_CACHED_STATEMENT_LENGTH
                   for s in answers), role
