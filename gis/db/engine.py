"""Engine, sessions and schema migrations. The URL always comes from the caller (settings)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, TextClause, create_engine, event, text
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.orm import Session, sessionmaker

from gis.db.roles import APP_ROLE, grant_if_present
from gis.errors import DatabaseUnavailable

MIGRATIONS = Path(__file__).parent / "migrations"


@lru_cache(maxsize=512)
def cached_text(sql: str) -> TextClause:
    """``text(sql)``, made once per distinct SQL string: for statements built per call from a
    few variants (a reader's scope) on hot paths, where parsing the text's bind parameters
    every time costs more than running the statement's cached compilation."""
    return text(sql)


# Sorts and hash tables of the statistics' aggregate scans (10^5 rows and groups) stay in
# memory with this; the default 4MB spilled the evaluation's case histories to disk.
AGGREGATE_WORK_MEM = "64MB"


def tune_for_aggregates(session: Session) -> None:
    """Settings for an aggregate read, for this transaction only: JIT compilation costs more
    than it saves on these scans, and their sorts and hash aggregates should not spill."""
    session.execute(text("SET LOCAL jit = off"))
    session.execute(text(f"SET LOCAL work_mem = '{AGGREGATE_WORK_MEM}'"))


def make_engine(url: str, **kwargs) -> Engine:
    """An engine that notices dropped connections (a restarted server) instead of failing once,
    and raises :class:`~gis.errors.DatabaseUnavailable` when the server cannot be reached.

    Statement parameters are left out of error messages: they hold reporters' contacts and
    descriptions, and error messages end up in logs.
    """
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("hide_parameters", True)
    engine = create_engine(_with_driver(url), **kwargs)
    event.listen(engine, "handle_error", _unavailable)
    return engine


# SQLSTATE classes of a server that is gone or refusing: connection exception, operator
# intervention (shutdown, starting up), insufficient resources (too many connections).
_UNAVAILABLE_SQLSTATES = ("08", "57P", "53")


def _unavailable(context: ExceptionContext) -> None:
    """Translate the driver's "cannot reach the server" into the domain's error, in one place.

    Other operational errors (deadlocks, cancelled statements) stay SQLAlchemy's. The pool's own
    liveness check (pre-ping) is left alone: it reconnects instead of failing.
    """
    if context.is_pre_ping:
        return
    original = context.original_exception
    dbapi = context.dialect.loaded_dbapi
    sqlstate = getattr(original, "sqlstate", None) or ""
    lost = isinstance(original, dbapi.OperationalError | dbapi.InterfaceError) and not sqlstate
    if context.is_disconnect or lost or sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
        raise DatabaseUnavailable(f"the database cannot be reached: {original}".strip())


def _with_driver(url: str) -> str:
    # Users paste libpq-style URLs; GridMap talks psycopg 3.
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def libpq_url(url: str) -> str:
    """``url`` as libpq and psycopg's own connect() take it (no SQLAlchemy driver name)."""
    driver = _with_driver(url)
    return "postgresql://" + driver[len("postgresql+psycopg://"):] \
        if driver.startswith("postgresql+psycopg://") else driver


def session_factory(engine: Engine, info: dict | None = None) -> sessionmaker[Session]:
    """Sessions of ``engine``; ``info`` is copied into each session's ``info`` (the settings the
    domain reads there, such as the end of the working day: gis.worktime.store)."""
    return sessionmaker(engine, expire_on_commit=False, info=info)


@contextmanager
def session_scope(engine: Engine, info: dict | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with session_factory(engine, info)() as session, session.begin():
        yield session


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", _with_driver(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head", application_role: str | None = APP_ROLE) -> None:
    """Create or upgrade the schema to ``revision`` with the Alembic migrations, connecting as the
    schema's owner (``url``); then grant ``application_role``, when it exists, its privileges on
    the tables as they now are (:mod:`gis.db.roles`)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)
    if application_role:
        grant_if_present(url, application_role)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        exists = conn.execute(text("SELECT to_regclass('alembic_version')")).scalar()
        if exists is None:
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
