"""The audit trail is append-only in the database itself: against the application's role by its
privileges (gis.db.roles), against the schema's owner by the trigger of migration 0005.

Every refusal is checked by its SQLSTATE (42501, insufficient privilege) and its message, and the
rows are checked to be still there, so a statement that failed for another reason, or touched no
row (a row trigger never fires then), cannot pass for a refusal. Everything runs in transactions
that are rolled back; the module checks that it leaves the audit table as it found it.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from api.settings import DatabaseSettings, Settings
from gis.db.engine import make_engine, upgrade
from gis.db.roles import (
    APP_ROLE,
    check_connection_role,
    ensure_application_role,
    grant_application_role,
)
from gis.errors import SetupError
from gis.rules import AUDIT_RETENTION_DAYS
from tests.conftest import scratch_database

INSUFFICIENT_PRIVILEGE = "42501"


@pytest.fixture(scope="module", autouse=True)
def audit_table_left_as_found(demo_engine: Engine) -> Iterator[None]:
    """The demo's fingerprint leaves the audit table out (log-ins commit entries); this module
    commits none, and checks it."""
    query = text("SELECT count(*), md5(coalesce(string_agg(a::text, ',' ORDER BY a.id), '')) "
                 "FROM audit_log a")
    with demo_engine.connect() as conn:
        before = conn.execute(query).one()
    yield
    with demo_engine.connect() as conn:
        assert conn.execute(query).one() == before


@pytest.fixture(scope="module")
def app_engine(app_database_url: str, demo_engine: Engine) -> Iterator[Engine]:
    eng = make_engine(app_database_url, pool_size=1)
    yield eng
    eng.dispose()


@pytest.fixture
def app_conn(app_engine: Engine) -> Iterator[Connection]:
    """A connection as the application's role, in a transaction rolled back after the test."""
    with app_engine.connect() as conn:
        trans = conn.begin()
        try:
            yield conn
        finally:
            trans.rollback()


def refused(conn: Connection, statement: str, message: str, **params) -> None:
    """``statement`` fails with insufficient privilege and ``message``; the transaction goes on."""
    savepoint = conn.begin_nested()
    with pytest.raises(DBAPIError) as caught:
        conn.execute(text(statement), params)
    savepoint.rollback()
    error = caught.value.orig
    assert error.sqlstate == INSUFFICIENT_PRIVILEGE, (error.sqlstate, str(error))
    assert message in str(error), str(error)


def add_entry(conn: Connection, username: str, age_days: float | None = None) -> int:
    """An entry by the owner, which may choose its time (the application may not)."""
    at = "clock_timestamp()" if age_days is None else f"now() - make_interval(days => {age_days})"
    return conn.execute(text(f"INSERT INTO audit_log (at, username, action) VALUES ({at}, :u, "
                             "'login') RETURNING id"), {"u": username}).scalar_one()


def count(conn: Connection, username: str) -> int:
    return conn.execute(text("SELECT count(*) FROM audit_log WHERE username = :u"),
                        {"u": username}).scalar_one()


# -- the application's role ----------------------------------------------------------------------
def test_the_application_role_adds_and_reads_entries(app_conn):
    new = app_conn.execute(text(
        "INSERT INTO audit_log (username, action, address, detail) "
        "VALUES ('audit-db-test', 'login', '127.0.0.1', '{\"kind\": \"token\"}') RETURNING id, at"
    )).one()
    row = app_conn.execute(text("SELECT username, action, at FROM audit_log WHERE id = :i"),
                           {"i": new.id}).one()
    assert row == ("audit-db-test", "login", new.at)
    assert app_conn.execute(text("SELECT session_user")).scalar_one() == app_conn.engine.url.username


@pytest.mark.parametrize("statement", [
    "UPDATE audit_log SET username = 'someone else' WHERE username = 'audit-db-test'",
    "DELETE FROM audit_log WHERE username = 'audit-db-test'",
    "TRUNCATE audit_log",
])
def test_the_application_role_may_not_change_or_remove_entries(app_conn, statement):
    app_conn.execute(text("INSERT INTO audit_log (username, action) VALUES ('audit-db-test', 'login')"))
    refused(app_conn, statement, "permission denied for table audit_log")
    assert count(app_conn, "audit-db-test") == 1


def test_the_application_role_may_not_remove_even_old_entries(app_conn):
    """What the trigger allows the owner (past the retention) the role may still not do."""
    refused(app_conn, "DELETE FROM audit_log WHERE at < now() - make_interval(days => :d)",
            "permission denied for table audit_log", d=AUDIT_RETENTION_DAYS)


def test_the_application_role_may_not_backdate_or_number_an_entry(app_conn):
    for column, value in (("at", "now() - interval '1 year'"), ("id", "-1")):
        refused(app_conn, f"INSERT INTO audit_log ({column}, action) VALUES ({value}, 'login')",
                "permission denied for table audit_log")


@pytest.mark.parametrize(("statement", "message"), [
    ("DROP TRIGGER audit_log_append_only ON audit_log", "must be owner of"),
    ("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only", "must be owner of"),
    ("ALTER TABLE audit_log DISABLE TRIGGER ALL", "must be owner of"),
    ("DROP FUNCTION gridmap_audit_append_only() CASCADE", "must be owner of function"),
    ("CREATE OR REPLACE FUNCTION gridmap_audit_append_only() RETURNS trigger LANGUAGE plpgsql "
     "AS $$ BEGIN RETURN OLD; END $$", "permission denied for schema"),
    ("SET session_replication_role = replica", "permission denied to set parameter"),
    ("ALTER TABLE audit_log OWNER TO CURRENT_USER", "must be owner of"),
])
def test_the_application_role_cannot_drop_or_disable_the_trigger(app_conn, statement, message):
    refused(app_conn, statement, message)
    triggers = app_conn.execute(text(
        "SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'audit_log'::regclass "
        "AND NOT tgisinternal ORDER BY tgname")).all()
    assert triggers == [("audit_log_append_only", "O"), ("audit_log_no_truncate", "O")]


def test_the_application_role_owns_nothing_and_may_not_manage_roles(app_conn, engine):
    role = app_conn.execute(text("SELECT session_user")).scalar_one()
    check = check_connection_role(app_conn)
    assert check.role == role and check.append_only, check.problems
    with engine.connect() as conn:
        flags = conn.execute(text(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolcanlogin, "
            "(SELECT count(*) FROM pg_shdepend d WHERE d.refobjid = r.oid AND d.deptype = 'o') "
            "FROM pg_roles r WHERE rolname = :r"), {"r": role}).one()
    assert tuple(flags) == (False, False, False, False, False, True, 0)
    refused(app_conn, "CREATE TABLE audit_shadow (id int)", "permission denied for schema")


def test_the_owner_is_reported_as_not_append_only(db_connection):
    check = check_connection_role(db_connection)
    assert not check.append_only
    superuser = db_connection.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = session_user")
                                      ).scalar_one()
    expected = f"{check.role} is a superuser" if superuser else f"{check.role} owns the audit table"
    assert expected in check.problems


# -- the owner and the trigger -------------------------------------------------------------------
def test_the_owner_may_not_update_an_entry(db_connection):
    entry = add_entry(db_connection, "audit-db-owner")
    refused(db_connection, "UPDATE audit_log SET outcome = 'refused' WHERE id = :i",
            "audit_log is append-only: UPDATE refused", i=entry)
    assert db_connection.execute(text("SELECT outcome FROM audit_log WHERE id = :i"),
                                 {"i": entry}).scalar_one() == "ok"


def test_the_owner_may_not_truncate(db_connection):
    add_entry(db_connection, "audit-db-owner")
    refused(db_connection, "TRUNCATE audit_log", "audit_log is append-only: TRUNCATE refused")
    assert count(db_connection, "audit-db-owner") == 1


def test_the_owner_may_delete_only_entries_past_the_retention(db_connection):
    young = add_entry(db_connection, "audit-db-owner")
    almost = add_entry(db_connection, "audit-db-owner", age_days=AUDIT_RETENTION_DAYS - 1)
    old = add_entry(db_connection, "audit-db-owner", age_days=AUDIT_RETENTION_DAYS + 1)
    for entry in (young, almost):
        refused(db_connection, "DELETE FROM audit_log WHERE id = :i",
                "audit_log is append-only: DELETE refused", i=entry)
    removed = db_connection.execute(text("DELETE FROM audit_log WHERE id = :i"), {"i": old})
    assert removed.rowcount == 1
    left = db_connection.execute(text("SELECT id FROM audit_log WHERE username = 'audit-db-owner' "
                                      "ORDER BY id")).scalars().all()
    assert left == [young, almost]


# -- making the role and granting it ------------------------------------------------------------
def test_ensure_application_role_is_idempotent_and_sets_the_password(engine, app_database_url):
    url = make_url(app_database_url)
    role, password = url.username, url.password
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    new = "a-new-password-for-the-test"
    try:
        ensure_application_role(engine, role, new)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(dsn).close()
        with psycopg.connect(make_url(dsn).set(password=new).render_as_string(
                hide_password=False)) as conn:
            assert conn.execute("SELECT session_user").fetchone() == (role,)
    finally:
        ensure_application_role(engine, role, password)  # as it was: later tests connect with it
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = session_user"
                            ).fetchone() == (False,)


def test_the_owner_cannot_be_made_the_application_role(engine):
    with engine.connect() as conn:
        owner = conn.execute(text("SELECT current_user")).scalar_one()
        with pytest.raises(SetupError, match="must not be the owner's role"):
            ensure_application_role(engine, owner, "whatever-password")
        with pytest.raises(SetupError, match="not fit to be one"):
            grant_application_role(conn, owner)


def test_a_table_a_migration_adds_is_granted_on_the_next_upgrade(engine, database_url,
                                                                   app_database_url):
    role = make_url(app_database_url).username
    with scratch_database(engine, database_url, "gridmap_audit_grants") as (url, scratch):
        with scratch.begin() as conn:
            conn.execute(text("CREATE TABLE added_later (id serial PRIMARY KEY, note text)"))
        assert _privileges(scratch, role, "added_later") == set()
        upgrade(url, application_role=role)  # already at head: only the grants run
        assert _privileges(scratch, role, "added_later") == {"SELECT", "INSERT", "UPDATE", "DELETE"}
        assert _privileges(scratch, role, "audit_log") == {"SELECT"}  # INSERT: by column only
        assert _privileges(scratch, role, "alembic_version") == {"SELECT"}
        assert _privileges(scratch, role, "spatial_ref_sys") == {"SELECT"}
        with scratch.connect() as conn:
            assert conn.execute(text(
                "SELECT has_sequence_privilege(:r, 'added_later_id_seq', 'USAGE') "
                "AND has_any_column_privilege(:r, 'audit_log', 'INSERT') "
                "AND NOT has_column_privilege(:r, 'audit_log', 'at', 'INSERT')"),
                {"r": role}).scalar_one()


def _privileges(db: Engine, role: str, table: str) -> set[str]:
    with db.connect() as conn:
        return {p for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES",
                            "TRIGGER")
                if conn.execute(text("SELECT has_table_privilege(:r, :t, :p)"),
                                {"r": role, "t": table, "p": p}).scalar_one()}


def test_the_application_role_is_named_by_the_settings():
    def role(**urls) -> str | None:
        return Settings(database=DatabaseSettings(**urls)).application_role()

    assert role() == APP_ROLE  # the private cluster's
    assert role(url="postgresql://gridmap_web:pw@db/gis", owner_url="postgresql://gis:pw@db/gis") \
        == "gridmap_web"
    assert role(url="postgresql://gis:pw@db/gis") is None  # one role for both: nothing to grant
    with pytest.raises(ValueError, match="set DATABASE_URL"):
        DatabaseSettings(owner_url="postgresql://gis:pw@db/gis")
