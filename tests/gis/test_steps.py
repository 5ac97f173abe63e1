"""gis.db.steps.merged: statements of the same SQL sent as one give each statement the rows it
would have given alone, in its own order, whatever the parameters' types and values."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gis.db.steps import Statement, _rows, merged

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
# One row; a reserved word as a parameter's name; booleans and numerics.
ONE = """SELECT :order AS "order", NOT :flag AS flag, CAST(:amount AS numeric) * 2 AS amount"""

texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
series = st.builds(
    lambda label, x, days, key, codes, maybe, k: Statement(SERIES, {
        "label": label, "x": x, "at": datetime(2026, 12, 1, tzinfo=UTC) + timedelta(days=days),
        "key": key, "codes": codes, "maybe": maybe, "k": k}),
    texts, st.one_of(st.integers(-1000, 1000), st.floats(-1e6, 1e6, allow_nan=False)),
    st.integers(-400, 400), st.uuids(), st.lists(texts, max_size=3),
    st.none() | st.integers(-5, 5), st.integers(0, 4))
ones = st.builds(
    lambda order, flag, amount: Statement(ONE, {"order": order, "flag": flag, "amount": amount}),
    st.integers(-2**40, 2**40), st.booleans(),
    st.decimals(-10**6, 10**6, places=2, allow_nan=False, allow_infinity=False))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(series, ones), max_size=8))
def test_merged_statements_give_each_statement_its_own_rows(session, statements):
    sent, split = merged(statements)
    assert len(sent) == len({s.sql for s in statements})
    assert split([_rows(session, s) for s in sent]) == [_rows(session, s) for s in statements]


def test_a_group_whose_parameters_are_all_equal_is_sent_once(session):
    same = Statement(ONE, {"order": 1, "flag": True, "amount": Decimal("1.50")})
    sent, split = merged([same, same, same])
    assert len(sent) == 1
    assert split([_rows(session, sent[0])]) == [[{"order": 1, "flag": False,
                                                   "amount": Decimal("3.00")}]] * 3


def test_parameters_without_a_sql_type_are_refused():
    with pytest.raises(TypeError, match="bytes"):
        merged([Statement(ONE, {"order": b"x", "flag": True, "amount": 1}),
                Statement(ONE, {"order": b"y", "flag": True, "amount": 1})])


def test_a_statement_alone_is_sent_as_it_is():
    alone = Statement(SERIES, {"label": "x", "x": 1, "at": None, "key": uuid.uuid4(), "codes": [],
                               "maybe": None, "k": 1})
    sent, split = merged([alone])
    assert sent == [alone] and split([[{"n": 1}]]) == [[{"n": 1}]]
