"""Test fixtures: a real PostGIS that the test session starts (and removes) itself.

Set GRIDMAP_TEST_DATABASE_URL to run against an existing PostGIS instead (its database is
migrated and the demo loaded into it). Tests that need no database take none of these fixtures.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api.settings import DatabaseSettings, Settings
from gis.db.cluster import LocalCluster
from gis.db.engine import make_engine, upgrade

DEMO_PASSWORD = "test-demo-password"


def app_settings(database_url: str, **fields) -> Settings:
    """Settings of an app under test: the test database, and ``fields`` over the defaults."""
    return Settings(database=DatabaseSettings(url=database_url), **fields)


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[LocalCluster | None]:
    """The throwaway cluster the tests run on; None when GRIDMAP_TEST_DATABASE_URL is given."""
    if os.environ.get("GRIDMAP_TEST_DATABASE_URL"):
        yield None
        return
    root = Path(tempfile.mkdtemp(prefix="gridmap-test-"))
    os.chmod(root, 0o755)  # the unprivileged server user must reach it when tests run as root
    cluster = LocalCluster(root / "pg", pg_bin=DatabaseSettings().pg_bin)
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


@pytest.fixture(scope="session")
def demo_data():
    from data.generator import generate_demo

    return generate_demo()


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
