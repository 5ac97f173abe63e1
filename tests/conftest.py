"""Test fixtures: a real PostGIS that the test session starts (and removes) itself.

Set GRIDMAP_TEST_DATABASE_URL to run against an existing PostGIS instead (its database is
migrated and the demo loaded into it). Tests that need no database take none of these fixtures.

Database tests roll back: ``session`` and ``sql`` work on the test's own connection inside a
transaction that is rolled back after the test, and ``client`` (an app) runs every request of
the test on that same connection (:func:`requests_on`). Only tests whose writes another process
or thread must see (a live server, a browser) commit; they do it under :func:`committed_changes`,
which deletes what they added. Every module that uses the demo database is checked, when it ends,
to have left it exactly as it found it (:func:`demo_fingerprint`).

The demo lives in the present: by default the session's demo is seen at the moment the session
starts (its year of issues ends today, Beijing time), so that overdue flags and Open311's default
window are real against PostgreSQL's now(). Set GRIDMAP_TEST_TODAY=YYYY-MM-DD to pin the demo's
last day instead (it is then seen at the end of that day: pin a past day, or the data runs ahead
of now()), or GRIDMAP_TEST_TODAY=YYYY-MM-DDTHH:MM+08:00 to pin the moment it is seen at. Tests
take their dates from ``demo_data`` (``seen_at``, the rows), never from a calendar year or from
now(), so the suite passes on any day and with any pinned day.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from api.settings import DatabaseSettings, MediaSettings, Settings
from gis.db.cluster import LocalCluster
from gis.db.engine import make_engine, upgrade
from gis.rules import BEIJING
from tests.skip_guard import pytest_sessionfinish  # noqa: F401  (a skip fails CI)

# The command's messages follow the terminal's locale (api.i18n.terminal_language); the tests
# read the English ones unless a test sets a Chinese locale itself.
for _name in ("LC_ALL", "LC_MESSAGES"):
    os.environ.pop(_name, None)
os.environ["LANG"] = "C.UTF-8"

DEMO_PASSWORD = "test-demo-password"


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


# The application's role on a server of one's own (GRIDMAP_TEST_DATABASE_URL): not gridmap_app,
# whose password a deployment on the same server may rely on.
TEST_APP_ROLE = "gridmap_test_app"


@pytest.fixture(scope="session")
def app_database_url(local_cluster: LocalCluster | None, engine: Engine, database_url: str) -> str:
    """The URL of the application's role, which may not change or remove audit entries: what
    `gridmap serve` connects as (gis.db.roles), and so what live test servers connect as. On the
    tests' cluster it is its gridmap_app; on GRIDMAP_TEST_DATABASE_URL a role made for the tests
    (the owner must be allowed to create roles, else the tests that need it skip, which under CI
    fails the run). ``database_url`` stays the owner's, for fixtures and tests that set data up."""
    import secrets

    import psycopg
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from gis.db.roles import APP_ROLE, ensure_application_role, grant_application_role
    from gis.errors import SetupError

    if local_cluster is not None:
        url = local_cluster.info().app_url
        role, password = APP_ROLE, make_url(url).password
    else:
        role, password = TEST_APP_ROLE, secrets.token_urlsafe(18)
        url = make_url(database_url).set(username=role, password=password).render_as_string(
            hide_password=False)
    try:
        ensure_application_role(engine, role, password)
    except (psycopg.Error, SQLAlchemyError, SetupError) as exc:  # a server that refuses roles
        pytest.skip(f"cannot create the application's role {role}: {exc}")
    with engine.begin() as conn:
        grant_application_role(conn, role)
    return url


def demo_today() -> date | datetime:
    """The ``today`` the session's demo is generated with: GRIDMAP_TEST_TODAY, or now. The pin
    is a day (seen at its end) or a moment with its offset (2026-12-02T05:30+08:00), the way to
    replay a run that failed on the data of the moment it started."""
    pinned = os.environ.get("GRIDMAP_TEST_TODAY")
    if not pinned:
        return datetime.now(BEIJING)
    if "T" not in pinned:
        return date.fromisoformat(pinned)
    moment = datetime.fromisoformat(pinned)
    if moment.tzinfo is None:
        raise ValueError(f"GRIDMAP_TEST_TODAY={pinned!r}: a moment needs its offset, e.g. +08:00")
    return moment


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
    from gis.db.engine import session_scope
    from gis.exchange.demo_loading import load_demo
    from gis.geotag.assign import assign_stored_rows
    from gis.people.passwords import hash_password

    with session_scope(engine) as session:
        load_demo(session, demo_data, hash_password(DEMO_PASSWORD))
    assign_stored_rows(engine, include_closed=True, record_events=False)
    return engine


# -- tests that roll back ---------------------------------------------------------------------
@pytest.fixture
def db_connection(demo_engine: Engine) -> Iterator[Connection]:
    """The test's connection, inside a transaction that is rolled back after the test."""
    with demo_engine.connect() as conn:
        trans = conn.begin()
        try:
            yield conn
        finally:
            trans.rollback()


@pytest.fixture
def session(db_connection: Connection) -> Iterator[Session]:
    """A session on the test's connection: its commits release a savepoint, and the test's
    transaction is rolled back after the test."""
    with _session_on(db_connection) as sess:
        yield sess


@pytest.fixture
def sql(db_connection: Connection):
    """Run SQL on the test's connection: ``sql(query, **params)`` -> rows (none for a statement
    that returns none). It sees what the test's requests wrote, and what it writes is rolled
    back with them."""
    def run(query: str, **params):
        result = db_connection.execute(text(query), params)
        return result.all() if result.returns_rows else []
    return run


@pytest.fixture(scope="module")
def committed_sql(demo_engine: Engine):
    """Read the committed demo data on a connection of its own, for module fixtures (it does
    not see what a test writes, and what it writes is discarded)."""
    def run(query: str, **params):
        with demo_engine.connect() as conn:
            return conn.execute(text(query), params).all()
    return run


def _session_on(conn: Connection) -> Session:
    # expire_on_commit=False as the app's own sessions (gis.db.engine.session_factory)
    return Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)


def app_settings(database_url: str, **fields) -> Settings:
    """Settings of an app under test: the test database, photos kept in a directory of the test
    run's own (removed when it ends), and ``fields`` over the defaults."""
    fields.setdefault("media", MediaSettings(root=media_root_of_the_run()))
    return Settings(database=DatabaseSettings(url=database_url), **fields)


_MEDIA_ROOT: list[Path] = []


def media_root_of_the_run() -> Path:
    """The test run's media directory, made when first asked for and removed at exit."""
    if not _MEDIA_ROOT:
        import atexit
        import shutil

        _MEDIA_ROOT.append(Path(tempfile.mkdtemp(prefix="gridmap-media-")))
        atexit.register(shutil.rmtree, _MEDIA_ROOT[0], ignore_errors=True)
    return _MEDIA_ROOT[0]


@contextmanager
def requests_on(app: FastAPI, conn: Connection) -> Iterator[None]:
    """Run every request ``app`` serves (through ``api.deps.get_session``) on ``conn``, each in
    a savepoint of the transaction the caller opened, so that commits in a request are savepoint
    releases and the caller's rollback undoes them all.

    The app's caches keyed by database counters (the grid index by the grid version, pages by the
    data version) are emptied afterwards: a rolled-back edit leaves the counter where it was, so
    the next edit would bring back a version number whose cached content never existed.
    """
    from api.deps import get_session
    from api.intake import SessionIntake

    def session_on_test_connection() -> Iterator[Session]:
        with _session_on(conn) as sess:
            yield sess

    app.dependency_overrides[get_session] = session_on_test_connection
    # reports too (the process's group commit writes on a connection of its own)
    group_commit = app.state.intake
    app.state.intake = SessionIntake(lambda: _session_on(conn))
    try:
        yield
    finally:
        app.dependency_overrides.pop(get_session, None)
        app.state.intake = group_commit
        _forget_cached_state(app)


def _forget_cached_state(app: FastAPI) -> None:
    from gis.geotag.index_cache import GridIndexCache
    from maps.cache import PageCache

    state = app.state
    if getattr(state, "grid_cache", None) is not None:
        state.grid_cache = GridIndexCache(state.grid_cache.tolerance_m)
    if getattr(state, "map_cache", None) is not None:
        state.map_cache = PageCache(state.map_cache.max_pages, state.map_cache.ttl_s)


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    """The settings of the module's app; a module overrides this fixture to change some."""
    return app_settings(database_url)


@pytest.fixture(scope="module")
def app_client(demo_engine: Engine, settings: Settings) -> Iterator[TestClient]:
    """The module's app, started once. Its requests commit like any client's: module fixtures
    use it only to read (log in); tests use ``client``."""
    from api.main import create_app

    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def client(app_client: TestClient, db_connection: Connection) -> Iterator[TestClient]:
    """The module's app with every request of this test on the test's connection, rolled back
    after the test: nothing the test writes through it survives the test."""
    with requests_on(app_client.app, db_connection):
        yield app_client


# -- tests that commit, and the check that the demo is left as it was --------------------------
# Tables left out of the fingerprint: version counters (any edit bumps them, even one undone
# afterwards; they only invalidate caches), PostGIS's own table and the schema revision.
# Counters, and what logging in writes (sessions, failures, the append-only audit trail, which no
# test can remove): committed logs-in by module fixtures are expected, not leftovers.
# Operational state, not the demo's data: sessions, the audit trail, and the notifications that
# pages and the app create by polling (late steps are notified when someone looks).
_UNFINGERPRINTED = ("grid_index_state", "issue_edit_state", "versions", "spatial_ref_sys",
                    "alembic_version", "sessions", "login_failures", "audit_log", "notifications",
                    "step_alerts")
# Tables whose added rows committed_changes deletes, children first.
_ADDED_ROWS = ("issue_photos", "facility_checks", "issue_steps", "issue_events", "issues",
               "api_keys")


def demo_fingerprint(engine: Engine) -> dict[str, tuple[int, str]]:
    """Per table: its row count and a checksum of all its rows, whatever their order."""
    with engine.connect() as conn:
        tables = conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename <> ALL(:skip) ORDER BY tablename"), {"skip": list(_UNFINGERPRINTED)})
        return {t: tuple(conn.execute(text(
            f'SELECT count(*), md5(coalesce(string_agg(r::text, \',\' ORDER BY r::text), \'\')) '
            f'FROM "{t}" r')).one()) for t in tables.scalars().all()}


@contextmanager
def committed_changes(engine: Engine) -> Iterator[None]:
    """For writes that must be committed because another process or thread reads them (a live
    server, a browser): afterwards the rows added to the tables of :data:`_ADDED_ROWS` are
    deleted, and the demo must then be exactly as before (changes to existing rows the caller
    undoes itself)."""
    before = demo_fingerprint(engine)
    with engine.connect() as conn:
        marks = {t: conn.execute(text(f"SELECT coalesce(max(id), 0) FROM {t}")).scalar_one()
                 for t in _ADDED_ROWS}
    try:
        yield
    finally:
        with engine.begin() as conn:
            for table, mark in marks.items():
                conn.execute(text(f"DELETE FROM {table} WHERE id > :mark"), {"mark": mark})
    changed = sorted(t for t, v in demo_fingerprint(engine).items() if before.get(t) != v)
    assert not changed, f"committed test data was not cleaned up in {changed}"


@pytest.fixture
def committed(demo_engine: Engine) -> Iterator[None]:
    """The test commits (see :func:`committed_changes`); what it adds is deleted afterwards."""
    with committed_changes(demo_engine):
        yield


@pytest.fixture(scope="module", autouse=True)
def demo_left_as_it_was(request: pytest.FixtureRequest) -> Iterator[None]:
    """A module that uses the demo database must leave it as it found it."""
    items = [i for i in request.session.items if i.module is request.module]
    if not any("demo_engine" in getattr(i, "fixturenames", ()) for i in items):
        yield
        return
    engine = request.getfixturevalue("demo_engine")
    before = demo_fingerprint(engine)
    yield
    changed = sorted(t for t, v in demo_fingerprint(engine).items() if before.get(t) != v)
    assert not changed, f"{request.module.__name__} left the demo data changed in {changed}"


def commands_use(scratch: tuple[str, Engine], monkeypatch: pytest.MonkeyPatch) -> Engine:
    """Make the ``gridmap`` commands a test runs connect to the scratch database (as its owner);
    returns its engine."""
    url, db = scratch
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("GRIDMAP_OWNER_DATABASE_URL", raising=False)
    return db


@contextmanager
def scratch_database(engine: Engine, database_url: str, name: str,
                     pool_size: int = 1) -> Iterator[tuple[str, Engine]]:
    """(URL, engine) of an empty, migrated database ``name`` beside the test database, dropped
    afterwards: for tests that must commit (the CLI always does) without touching the demo.
    Skips when the server refuses to create databases (GRIDMAP_TEST_DATABASE_URL without
    CREATEDB); under CI a skip fails the run."""
    from sqlalchemy.engine import make_url

    admin = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        admin.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:
        admin.close()
        pytest.skip(f"cannot create a scratch database: {exc}")
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    scratch = make_engine(url, pool_size=pool_size)
    try:
        with scratch.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        upgrade(url)
        yield url, scratch
    finally:
        scratch.dispose()
        admin.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.close()
