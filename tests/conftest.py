"""Test fixtures: a real PostGIS that the test session starts (and removes) itself.

Set GRIDMAP_TEST_DATABASE_URL to run against an existing PostGIS instead (its database is
migrated and the demo loaded into it). Tests that need no database take none of these fixtures.

The demo lives in the present: by default the session's demo is seen at the moment the session
starts (its year of issues ends today, Beijing time), so that overdue flags and Open311's default
window are real against PostgreSQL's now(). Set GRIDMAP_TEST_TODAY=YYYY-MM-DD to pin the demo's
last day instead (it is then seen at the end of that day: pin a past day, or the data runs ahead
of now()). Tests take their dates from ``demo_data`` (``seen_at``, the rows), never from a
calendar year, so the suite passes on any day and with any pinned day.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gis.db.cluster import LocalCluster
from gis.db.engine import make_engine, upgrade
from gis.rules import BEIJING

DEMO_PASSWORD = "test-demo-password"


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[LocalCluster | None]:
    """The throwaway cluster the tests run on; None when GRIDMAP_TEST_DATABASE_URL is given."""
    if os.environ.get("GRIDMAP_TEST_DATABASE_URL"):
        yield None
        return
    root = Path(tempfile.mkdtemp(prefix="gridmap-test-"))
    os.chmod(root, 0o755)  # the unprivileged server user must reach it when tests run as root
    cluster = LocalCluster(root / "pg")
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()
        root.rmdir()


@pytest.fixture(scope="session")
def database_url(local_cluster: LocalCluster | None) -> str:
    if local_cluster is None:
        return os.environ["GRIDMAP_TEST_DATABASE_URL"]
    return local_cluster.info().url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    upgrade(database_url)
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def demo_today() -> date | datetime:
    """The ``today`` the session's demo is generated with: GRIDMAP_TEST_TODAY, or now."""
    pinned = os.environ.get("GRIDMAP_TEST_TODAY")
    return date.fromisoformat(pinned) if pinned else datetime.now(BEIJING)


@pytest.fixture(scope="session")
def demo_data():
    from data.generator import generate_demo

    return generate_demo(today=demo_today())


class Month(NamedTuple):
    """A calendar month: its first day, its last day and the first day of the next month."""

    first: date
    last: date
    following: date


@pytest.fixture(scope="session")
def demo_month(demo_data) -> Month:
    """A calendar month wholly inside the demo's year of issues, whatever day it is seen on: the
    third month before the one it is seen in. Its cases are all old enough to be settled."""
    seen = demo_data.seen_at.date()
    following = (pd.Timestamp(seen.replace(day=1)) - pd.DateOffset(months=2)).date()
    first = (pd.Timestamp(following) - pd.DateOffset(months=1)).date()
    return Month(first, following - timedelta(days=1), following)


@pytest.fixture(scope="session")
def demo_engine(engine: Engine, demo_data) -> Engine:
    """The engine, with the 14-grid demo community loaded and tagged once per test session."""
    from api.security import hash_password
    from gis.db.engine import session_scope
    from gis.exchange.demo_loading import load_demo
    from gis.geotag.assign import assign_stored_rows

    with session_scope(engine) as session:
        load_demo(session, demo_data, hash_password(DEMO_PASSWORD))
    assign_stored_rows(engine, include_closed=True, record_events=False)
    return engine


@pytest.fixture
def session(demo_engine: Engine) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test."""
    with demo_engine.connect() as conn:
        trans = conn.begin()
        sess = Session(bind=conn, join_transaction_mode="create_savepoint")
        try:
            yield sess
        finally:
            sess.close()
            trans.rollback()
