"""gis.db.steps: statements of the same SQL sent as one (merged) give each statement the rows it
would have given alone, in its own order, whatever the parameters' types and values; a step
sent on the event loop inside BEGIN … COMMIT is one transaction."""

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
    _PARAMETER,
    BEGIN,
    COMMIT,
    Statement,
    _rows,
    beside,
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
    (an alias in Chinese) come back as written, in a pipeline and beside another statement."""
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
            one, many = await beside(conn, named, Statement(
                'SELECT n AS "编号" FROM quiet_rows ORDER BY n LIMIT :k', {"k": 1}))
            assert one == [{"网格数": 2, "标签": "甲"}] and many == [{"编号": 1}]

    asyncio.run(main())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(one=ones, many=series)
def test_two_statements_beside_give_each_its_own_rows(database_url, one, many):
    """beside: one statement of one row and another of any number of rows (none too) sent as
    one give the rows each gives alone, with its own columns and types (a name in both too)."""
    renamed = _PARAMETER.sub(r":m_\1", many.sql)
    many = Statement(f"SELECT s.*, s.n > 1 AS flag FROM ({renamed}) s",
                     {f"m_{k}": v for k, v in many.params.items()})

    async def main():
        conn = await psycopg.AsyncConnection.connect(libpq_url(database_url), autocommit=True)
        async with conn:
            alone = await pipeline(conn, [one, many])
            assert await beside(conn, one, many) == (alone[0], alone[1])

    asyncio.run(main())


def test_statements_beside_may_not_share_a_parameter(database_url):
    async def main():
        conn = await psycopg.AsyncConnection.connect(libpq_url(database_url), autocommit=True)
        async with conn:
            with pytest.raises(ValueError, match="share parameters"):
                await beside(conn, Statement("SELECT :a AS a", {"a": 1}),
                             Statement("SELECT :a AS b", {"a": 2}))

    asyncio.run(main())
