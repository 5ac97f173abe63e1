"""The application's own database role: what the server connects as, so that the audit trail is
append-only against it in the database itself.

The schema belongs to its owner (the role migrations run as). An owner may drop or disable the
trigger that keeps ``audit_log`` append-only (migration 0005), and so may a superuser, so the
server connects as a role of its own instead:

- a LOGIN role that is not a superuser, cannot create roles or databases, owns nothing and is no
  member of the owner's role;
- on every table of the schema SELECT, INSERT, UPDATE and DELETE, except ``audit_log``, where it
  may only read and add entries (INSERT of the entry's own columns: the time and the id are the
  database's, so an entry cannot be backdated), and the tables it only reads
  (``alembic_version``, and those of extensions such as PostGIS's ``spatial_ref_sys``);
- USAGE, SELECT and UPDATE on every sequence. Functions need nothing: PostgreSQL lets everyone
  execute them, and a trigger runs whoever fires it.

A migration may add tables, so the grants are applied again after every one
(:func:`gis.db.engine.upgrade`). The private cluster creates the role ``gridmap_app``
(:mod:`gis.db.cluster`); with a server of one's own, ``DATABASE_URL`` names the application's
role and ``GRIDMAP_OWNER_DATABASE_URL`` the owner's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text

from gis.errors import SetupError

APP_ROLE = "gridmap_app"
AUDIT_TABLE = "audit_log"
# The columns of an audit entry the application writes; ``id`` and ``at`` are the database's.
AUDIT_COLUMNS = ("username", "action", "target", "address", "outcome", "detail")
READ_ONLY_TABLES = ("alembic_version",)  # and every table or view an extension owns


def ensure_application_role(owner: Engine | str, role: str, password: str) -> None:
    """Create the LOGIN role ``role`` with ``password``, or give an existing one that password,
    and in both cases take away what it must not have (superuser, CREATEROLE, CREATEDB,
    replication, bypassing row security). ``owner`` is an engine or URL of a role allowed to
    manage roles (the private cluster's superuser). Grants are :func:`grant_application_role`'s.

    The password reaches the server as a SCRAM-SHA-256 verifier, never as plain text, so it does
    not appear in the server's statement log.
    """
    _check_name(role)
    if not password:
        raise ValueError("the application role needs a password")
    with _driver_connection(owner) as driver:
        from psycopg import sql

        me = driver.execute("SELECT current_user").fetchone()[0]
        if role == me:
            raise SetupError(f"the application role must not be the owner's role {me!r}: "
                             "the audit trail would not be append-only against it")
        exists = driver.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        verifier = driver.pgconn.encrypt_password(password.encode(), role.encode(),
                                                  b"scram-sha-256").decode()
        driver.execute(sql.SQL(
            "{verb} ROLE {role} WITH LOGIN PASSWORD {password} NOSUPERUSER NOCREATEDB "
            "NOCREATEROLE NOREPLICATION NOBYPASSRLS").format(
                verb=sql.SQL("ALTER" if exists else "CREATE"), role=sql.Identifier(role),
                password=sql.Literal(verifier)))


@contextmanager
def _driver_connection(owner: Engine | str) -> Iterator:
    """The psycopg connection under an autocommit connection of ``owner``."""
    from gis.db.engine import make_engine  # late: the engine module imports this one

    engine = owner if isinstance(owner, Engine) else make_engine(owner, pool_size=1, max_overflow=0)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            yield conn.connection.driver_connection
    finally:
        if engine is not owner:
            engine.dispose()


def grant_application_role(conn: Connection, role: str) -> None:
    """Give ``role`` exactly the privileges the application needs on the tables and sequences of
    the current schema, as they are now (run again after every migration). Refuses a role that
    is a superuser, may create roles, owns anything or belongs to the owner's role, and checks
    afterwards that the role can neither change nor remove audit entries."""
    _check_name(role)
    problems = _role_problems(conn, role)
    if problems:
        raise SetupError(f"the application role {role!r} is not fit to be one: "
                         + "; ".join(problems))
    schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    quote = conn.dialect.identifier_preparer.quote
    who, where = quote(role), quote(schema)
    conn.execute(text(f"GRANT USAGE ON SCHEMA {where} TO {who}"))
    conn.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA {where} FROM {who}"))
    for table, read_only in _tables(conn):
        target = f"{where}.{quote(table)}"
        if table == AUDIT_TABLE:
            conn.execute(text(f"GRANT SELECT, INSERT ({', '.join(AUDIT_COLUMNS)}) "
                              f"ON {target} TO {who}"))
            conn.execute(text(f"REVOKE UPDATE, DELETE, TRUNCATE ON {target} FROM {who}"))
        elif read_only:
            conn.execute(text(f"GRANT SELECT ON {target} TO {who}"))
        else:
            conn.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {target} TO {who}"))
    conn.execute(text(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {where} TO {who}"))
    left = _audit_privileges(conn, role)
    if left:
        raise SetupError(f"the role {role!r} still holds {', '.join(left)} on the audit table after "
                         "the grants (a grant to PUBLIC?): the audit trail would not be append-only")


def grant_if_present(url: str, role: str) -> bool:
    """After a migration: grant ``role`` its privileges when it exists and is not the role
    ``url`` connects as (one role for everything keeps the owner's powers). True if granted."""
    from gis.db.engine import make_engine

    _check_name(role)
    engine = make_engine(url, pool_size=1, max_overflow=0)
    try:
        with engine.begin() as conn:
            found = conn.execute(text("SELECT rolname <> current_user FROM pg_roles "
                                      "WHERE rolname = :r"), {"r": role}).scalar()
            if not found:
                return False
            grant_application_role(conn, role)
            return True
    finally:
        engine.dispose()


@dataclass(frozen=True)
class RoleCheck:
    """What the role a connection logs in as may do to the audit trail."""

    role: str
    problems: tuple[str, ...]  # each a reason the audit trail is not append-only against it

    @property
    def append_only(self) -> bool:
        return not self.problems


def check_connection_role(conn: Connection) -> RoleCheck:
    """Whether the audit trail is append-only against the role ``conn`` logged in as."""
    role = conn.execute(text("SELECT session_user")).scalar_one()
    problems = _role_problems(conn, role)
    held = _audit_privileges(conn, role)
    if held and not any("superuser" in p for p in problems):
        problems.append(f"{role} holds {', '.join(held)} on the audit table")
    return RoleCheck(role, tuple(problems))


def _role_problems(conn: Connection, role: str) -> list[str]:
    row = conn.execute(text("""
        SELECT r.rolsuper, r.rolcreaterole,
               (SELECT count(*) FROM pg_shdepend d
                 WHERE d.refclassid = 'pg_authid'::regclass AND d.refobjid = r.oid
                   AND d.deptype = 'o') AS owned,
               (SELECT t.tableowner FROM pg_tables t
                 WHERE t.schemaname = current_schema() AND t.tablename = :audit) AS audit_owner
          FROM pg_roles r WHERE r.rolname = :role"""), {"role": role, "audit": AUDIT_TABLE}).first()
    if row is None:
        return [f"there is no role {role!r}"]
    if row.rolsuper:
        return [f"{role} is a superuser"]  # which may do anything
    problems = []
    if row.rolcreaterole:
        problems.append(f"{role} may create roles (CREATEROLE) and so join the owner's")
    if row.audit_owner is not None and conn.execute(
            text("SELECT pg_has_role(:role, :owner, 'MEMBER')"),
            {"role": role, "owner": row.audit_owner}).scalar_one():
        problems.append(f"{role} owns the audit table" if role == row.audit_owner
                        else f"{role} is a member of {row.audit_owner}, which owns the audit table")
    elif row.owned:
        problems.append(f"{role} owns {row.owned} database object(s)")
    return problems


def _audit_privileges(conn: Connection, role: str) -> list[str]:
    """Which of UPDATE, DELETE, TRUNCATE ``role`` holds on the audit table (none, if no table)."""
    exists = conn.execute(text("SELECT to_regclass(:t)"), {"t": AUDIT_TABLE}).scalar()
    if exists is None:
        return []
    return [p for p in ("UPDATE", "DELETE", "TRUNCATE") if conn.execute(
        text("SELECT has_table_privilege(:role, CAST(:t AS regclass), :p)"),
        {"role": role, "t": AUDIT_TABLE, "p": p}).scalar_one()]


def _tables(conn: Connection) -> list[tuple[str, bool]]:
    """(name, read only) of every table and view in the current schema; those an extension
    owns (PostGIS's spatial_ref_sys, geometry_columns...) and the migration record are read only."""
    rows = conn.execute(text("""
        SELECT c.relname,
               EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                          AND d.objid = c.oid AND d.deptype = 'e') AS of_extension
          FROM pg_class c
         WHERE c.relnamespace = current_schema()::regnamespace
           AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
         ORDER BY c.relname"""))
    return [(name, of_extension or name in READ_ONLY_TABLES) for name, of_extension in rows]


def _check_name(role: str) -> None:
    # Every statement quotes the name; this only refuses what PostgreSQL would not take.
    if not 0 < len(role.encode()) <= 63 or "\0" in role:
        raise ValueError(f"a role name has 1 to 63 bytes and no NUL character, got {role!r}")
