"""Heavy reads on a hot standby, and a reader's own writes from the primary.

A streaming standby (``gridmap db start --replica``, or one's own) replays the primary's WAL a
moment behind it. Statistics, map pages, tiles and exports tolerate that moment; a user who has
just written does not: they must see their write. So:

- The read engine (:func:`make_read_engine`) opens every transaction read-only
  (``default_transaction_read_only``): a write sent there by mistake fails at once, on any server.
- After a write, the primary's WAL position (:func:`primary_lsn`, taken after the commit) goes
  back to the writer; a later read of theirs names it, and :class:`ReadRouter` serves it from the
  standby only when the standby has replayed that far (:data:`REPLAYED_SQL`), else from the
  primary in a read-only transaction. Other readers are not held up by anyone's writes.
- A standby that cannot be reached is left alone for :data:`RETRY_AFTER_S`; reads go to the
  primary meanwhile, and the log says so once, naming the server but no user or query.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from gis.db.engine import make_engine
from gis.errors import DatabaseUnavailable

log = logging.getLogger("gridmap.replica")

RETRY_AFTER_S = 10.0  # how long an unreachable standby is left alone
CONNECT_TIMEOUT_S = 3  # a standby that does not answer a connection in this long is unreachable
# A WAL position as PostgreSQL prints it (pg_lsn): two hexadecimal halves.
LSN_PATTERN = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")
# Whether the read server has replayed up to :lsn; a server not in recovery (the read URL names
# a primary) holds everything it has.
REPLAYED_SQL = ("SELECT CASE WHEN pg_is_in_recovery() "
                "THEN pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn) ELSE true END")
STANDBY, PRIMARY = "standby", "primary"


def make_read_engine(url: str, **kwargs) -> Engine:
    """An engine whose every transaction is read-only, given up on after
    :data:`CONNECT_TIMEOUT_S` when the server does not answer."""
    kwargs.setdefault("connect_args", {"options": "-c default_transaction_read_only=on",
                                       "connect_timeout": CONNECT_TIMEOUT_S})
    return make_engine(url, **kwargs)


def read_only_sessions(engine: Engine, info: dict | None = None) -> sessionmaker[Session]:
    """Sessions of ``engine`` (a primary's) whose transactions are read-only: where a heavy read
    runs when the standby cannot serve it, failing as loudly as it would there."""
    factory = sessionmaker(engine, expire_on_commit=False, info=info)
    event.listen(factory, "after_begin", _read_only)
    return factory


def _read_only(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
    connection.exec_driver_sql("SET TRANSACTION READ ONLY")


def primary_lsn(engine: Engine) -> str:
    """The primary's WAL position now: every transaction committed before the call is at or
    before it."""
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_current_wal_lsn()::text")).scalar_one()


def valid_lsn(value: str | None) -> str | None:
    """``value`` when it is a WAL position, else None (it comes from a client)."""
    return value if value and LSN_PATTERN.match(value) else None


class ReadRouter:
    """Chooses the session a heavy read runs on: the standby's, unless the reader's own last
    write (its WAL position) has not been replayed there yet or the standby cannot be reached;
    then a read-only session of the primary."""

    def __init__(self, standby: sessionmaker[Session], primary: sessionmaker[Session],
                 label: str = "", retry_after_s: float = RETRY_AFTER_S):
        self.standby = standby
        self.primary = primary
        self.label = label  # the standby's host:port/database, for the log
        self.retry_after_s = retry_after_s
        self._down_until = 0.0
        self._lock = threading.Lock()

    def session(self, after_lsn: str | None = None) -> tuple[Session, str]:
        """(session, ``"standby"`` or ``"primary"``) for a read that must see what was
        committed up to ``after_lsn`` (a valid WAL position, or None)."""
        if time.monotonic() >= self._down_until:
            session = self.standby()
            try:
                if after_lsn is None:
                    session.connection()  # reach the server now, not halfway through the read
                    return session, STANDBY
                if session.execute(text(REPLAYED_SQL), {"lsn": after_lsn}).scalar_one():
                    return session, STANDBY
            except (DatabaseUnavailable, DBAPIError) as exc:
                self._mark_down(exc)
            session.close()
        return self.primary(), PRIMARY

    def _mark_down(self, exc: Exception) -> None:
        with self._lock:
            first = time.monotonic() >= self._down_until
            self._down_until = time.monotonic() + self.retry_after_s
        if first:
            log.warning("the read database %s cannot be reached (%s); heavy reads go to the "
                        "primary for %.0f s", self.label, type(exc).__name__, self.retry_after_s)


# -- how far behind a standby is --------------------------------------------------------------
@dataclass(frozen=True)
class StandbyLag:
    in_recovery: bool  # False: the read server is no standby
    replay_lsn: str | None
    lag_bytes: int | None  # the primary's WAL position now, less what the standby has replayed
    replay_paused: bool
    streaming: bool | None  # a WAL receiver is connected to the primary (None: not a standby)


def standby_lag(primary: Engine, standby: Engine) -> StandbyLag:
    """Where the standby is against the primary, in bytes of WAL not yet replayed."""
    with standby.connect() as conn:
        row = conn.execute(text(
            "SELECT pg_is_in_recovery() AS in_recovery, pg_last_wal_replay_lsn()::text AS lsn, "
            "CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END AS paused, "
            "(SELECT count(*) > 0 FROM pg_stat_wal_receiver WHERE status = 'streaming') AS streaming"
        )).one()
    lag = None
    if row.lsn is not None:
        with primary.connect() as conn:
            lag = conn.execute(text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), CAST(:lsn AS pg_lsn))"),
                               {"lsn": row.lsn}).scalar_one()
    return StandbyLag(row.in_recovery, row.lsn, None if lag is None else int(lag), row.paused,
                      row.streaming if row.in_recovery else None)


def describe(url: str) -> str:
    """``host:port/database`` of a URL, without its user or password (for messages and logs)."""
    u = make_url(url)
    return f"{u.host}:{u.port}/{u.database}"


@dataclass(frozen=True)
class WalSender:
    name: str  # the standby's application_name
    state: str
    replay_lag_s: float | None  # from the primary's view; None until measured (or idle)


def wal_senders(primary: Engine) -> list[WalSender]:
    """The primary's connections streaming to standbys (all of them only for a superuser or a
    member of pg_read_all_stats)."""
    with primary.connect() as conn:
        rows = conn.execute(text(
            "SELECT application_name, state, extract(epoch FROM replay_lag)::float8 AS lag "
            "FROM pg_stat_replication ORDER BY application_name")).all()
    return [WalSender(r.application_name, r.state, r.lag) for r in rows]
