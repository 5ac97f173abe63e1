"""Log-in, sessions and lock-out.

A session is a random token held by the client (a bearer token, or a page's cookie); the server
keeps only its SHA-256, with the user, when it was last used and when it ends. So a session can
be ended at once: disabling a user or changing their password ends all of theirs on the next
request, and a session unused for ``idle_minutes`` is over.

Failed log-ins are counted per username in the database (shared by every server process):
:data:`gis.rules.LOCKOUT_FAILURES` in a row lock the username for
:data:`gis.rules.LOCKOUT_MINUTES`, the right password included. Unknown usernames are counted
and locked the same way, so the answers do not reveal which usernames exist.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.db.steps import Statement, Steps
from gis.errors import AccountLocked, Unauthorized
from gis.people import audit
from gis.people.actors import ACTOR_SQL, Actor, actor_from_row, load_actor, load_actor_by_id
from gis.people.passwords import PasswordPolicy, hash_password, verify_password
from gis.rules import LOCKOUT_FAILURES, LOCKOUT_MINUTES

TOKEN_PREFIX = "gms_"
KINDS = ("token", "page")


@dataclass(frozen=True)
class SessionPolicy:
    ttl_minutes: int = 600  # a working day
    idle_minutes: int = 120
    touch_seconds: int = 60  # last_seen_at is written at most this often per session


@dataclass(frozen=True)
class Started:
    token: str
    session_id: int
    expires_at: datetime
    password_change_required: bool
    actor: Actor


@dataclass(frozen=True)
class LoginOutcome:
    """What a log-in attempt came to. The caller commits (a failure must be counted and audited
    even though the request then fails) and raises ``error`` when there is one."""

    started: Started | None = None
    error: Exception | None = None


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def log_in(session: Session, username: str, password: str, *, kind: str, address: str | None,
           policy: SessionPolicy) -> LoginOutcome:
    key = username.strip().lower()[:64]
    locked_until = session.execute(text(
        "SELECT locked_until FROM login_failures WHERE username = :u AND locked_until > now()"),
        {"u": key}).scalar()
    if locked_until is not None:
        audit.record(session, "login_locked", username=key, address=address, outcome="refused")
        return LoginOutcome(error=_locked(locked_until))
    found = load_actor(session, username)
    if not verify_password(password, found[1] if found else None):
        return LoginOutcome(error=_failed(session, key, address))
    actor = found[0]
    session.execute(text("DELETE FROM login_failures WHERE username = :u"), {"u": key})
    must_change = bool(session.execute(text(
        "SELECT must_change_password FROM users WHERE id = :i"), {"i": actor.id}).scalar())
    started = start_session(session, actor, kind=kind, address=address, policy=policy,
                            password_change_only=must_change)
    audit.record(session, "login", username=actor.username, address=address,
                 detail={"kind": kind, "password_change_required": must_change})
    return LoginOutcome(started=started)


def check_password(session: Session, username: str, password: str, *,
                   address: str | None) -> LoginOutcome:
    """HTTP Basic: the same checks and counting as :func:`log_in`, without a stored session.
    Only successes and failures that change something are audited by the caller's cache."""
    key = username.strip().lower()[:64]
    locked_until = session.execute(text(
        "SELECT locked_until FROM login_failures WHERE username = :u AND locked_until > now()"),
        {"u": key}).scalar()
    if locked_until is not None:
        audit.record(session, "login_locked", username=key, address=address, outcome="refused",
                     detail={"kind": "basic"})
        return LoginOutcome(error=_locked(locked_until))
    found = load_actor(session, username)
    if not verify_password(password, found[1] if found else None):
        return LoginOutcome(error=_failed(session, key, address, kind="basic"))
    session.execute(text("DELETE FROM login_failures WHERE username = :u"), {"u": key})
    return LoginOutcome(started=None)


def _failed(session: Session, key: str, address: str | None, kind: str = "password") -> Exception:
    failures = session.execute(text("""
        INSERT INTO login_failures AS f (username, failures, last_failed_at) VALUES (:u, 1, now())
        ON CONFLICT (username) DO UPDATE
           SET failures = CASE WHEN f.locked_until IS NOT NULL THEN 1 ELSE f.failures + 1 END,
               locked_until = NULL, last_failed_at = now()
        RETURNING failures"""), {"u": key}).scalar_one()
    audit.record(session, "login_failed", username=key, address=address, outcome="refused",
                 detail={"kind": kind, "failures": failures})
    if failures >= LOCKOUT_FAILURES:
        locked_until = session.execute(text(f"""
            UPDATE login_failures SET locked_until = now() + interval '{LOCKOUT_MINUTES} minutes',
                   failures = 0 WHERE username = :u RETURNING locked_until"""), {"u": key}).scalar_one()
        audit.record(session, "lockout", username=key, address=address, outcome="refused",
                     detail={"minutes": LOCKOUT_MINUTES})
        return _locked(locked_until)
    return Unauthorized("Wrong username or password.", zh="用户名或密码错误。")


def _locked(until: datetime) -> AccountLocked:
    return AccountLocked(
        f"too many failed log-ins for this username; it is locked until {until:%H:%M} "
        f"({LOCKOUT_MINUTES} minutes after the {LOCKOUT_FAILURES}th failure)",
        until, zh=f"该用户名连续 {LOCKOUT_FAILURES} 次登录失败，已锁定 {LOCKOUT_MINUTES} 分钟，"
                  f"请于 {until.astimezone():%H:%M} 后再试")


def start_session(session: Session, actor: Actor, *, kind: str, address: str | None,
                  policy: SessionPolicy, password_change_only: bool = False) -> Started:
    if kind not in KINDS:
        raise ValueError(f"session kind {kind!r}; expected one of {KINDS}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session_id, expires_at = session.execute(text("""
        INSERT INTO sessions (token_hash, user_id, kind, expires_at, address, password_change_only)
        VALUES (:h, :u, :k, now() + make_interval(mins => :ttl), :a, :p)
        RETURNING id, expires_at"""),
        {"h": token_digest(token), "u": actor.id, "k": kind, "ttl": policy.ttl_minutes,
         "a": address, "p": password_change_only}).one()
    return Started(token, session_id, expires_at, password_change_only, actor)


# The live sessions of tokens (:hs, their digests): not revoked, not expired, not idle too long,
# started after the user's last password change, the user active.
_LIVE_FROM = "sessions s JOIN users su ON su.id = s.user_id"
_LIVE_WHERE = """
       s.token_hash = ANY(CAST(:hs AS char(64)[])) AND s.revoked_at IS NULL
       AND s.expires_at > now() AND s.last_seen_at > now() - make_interval(mins => :idle)
       AND s.created_at >= su.sessions_valid_after AND su.active"""
_STALE = "s.last_seen_at < now() - make_interval(secs => :touch) AS stale"
# The counter of what callers are made of (users, their grids, regions, grids: migration 0019).
PEOPLE_VERSION_SQL = "SELECT version FROM versions WHERE name = 'people'"
# Those sessions alone, for a statement that checks callers read earlier (:class:`CallerCache`):
# each is still the caller it was read as while its session is live and the people counter
# stands.
LIVE_SESSIONS_SQL = f"SELECT s.token_hash, s.id AS session_id, {_STALE} FROM {_LIVE_FROM} WHERE {_LIVE_WHERE}"
# Those sessions with their users as actors, and the people counter they were read at.
_CALLERS_SQL = f"""
    SELECT s.token_hash, s.id AS session_id,
           s.password_change_only AS session_password_change_only, {_STALE},
           ({PEOPLE_VERSION_SQL}) AS people_version, a.*
      FROM {_LIVE_FROM}, LATERAL ({ACTOR_SQL} WHERE u.id = s.user_id AND u.active) a
     WHERE {_LIVE_WHERE}"""
_LIVE_SESSION_SQL = text(_CALLERS_SQL)
_TOUCH_SQL = "UPDATE sessions SET last_seen_at = now() WHERE id = ANY(CAST(:ids AS bigint[]))"


def touch_stale_sql(live: str) -> str:
    """The statement that writes the last use of the stale sessions among ``live`` (rows of
    :data:`LIVE_SESSIONS_SQL`, e.g. a CTE's name), for a statement of its own (a CTE). A
    session another transaction holds is skipped: it is being written or ended right now, and
    waiting for it would only let two batches wait for each other."""
    return f"""
        UPDATE sessions SET last_seen_at = now() WHERE id IN (
            SELECT id FROM sessions WHERE id IN (SELECT session_id FROM {live} WHERE stale)
               FOR UPDATE SKIP LOCKED)"""


def resolve(session: Session, token: str, policy: SessionPolicy) -> tuple[Actor | None, bool]:
    """The actor of a live session: not revoked, not expired, not idle too long, started after the
    user's last password change, the user active (None otherwise); and whether its last use was
    written (the caller commits that, so a reader's session stays alive)."""
    row = session.execute(_LIVE_SESSION_SQL, {"hs": [token_digest(token)], "idle": policy.idle_minutes,
                                              "touch": policy.touch_seconds}).first()
    if row is None:
        return None, False
    if row.stale:
        session.execute(text(_TOUCH_SQL), {"ids": [row.session_id]})
    return _actor_of(row), bool(row.stale)


@dataclass(frozen=True)
class KnownCaller:
    """A bearer token's actor as read, with its session's digest and the people counter it was
    read at, for a statement that checks them again as it writes (:data:`LIVE_SESSIONS_SQL`,
    :data:`PEOPLE_VERSION_SQL`)."""

    actor: Actor
    token_hash: str
    people_version: int


class CallerCache:
    """The callers of bearer tokens a process has met (the intake's), so that a batch of reports
    need not read them before it writes: the insert itself checks that each session is still
    live and that nobody's account, grids or region changed since its actor was read (the
    people counter; :class:`gis.issues.reporting.Submission`), and refuses a report whose caller
    may have changed, which is then read again. Dead tokens are not kept. At most ``size``
    callers, the least recently used dropped first."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._known: OrderedDict[str, KnownCaller] = OrderedDict()
        self.reads = 0  # tokens read from the database (tests, metrics)

    def get(self, token: str) -> KnownCaller | None:
        digest = token_digest(token)
        known = self._known.get(digest)
        if known is not None:
            self._known.move_to_end(digest)
        return known

    def forget(self, token: str) -> None:
        self._known.pop(token_digest(token), None)

    def read_steps(self, tokens: list[str], policy: SessionPolicy) -> Steps:
        """The callers of ``tokens`` as they are now (:mod:`gis.db.steps`), None for a dead
        token; the live ones are kept, and the last use of the stale ones is written in the
        caller's transaction."""
        digests = [token_digest(t) for t in tokens]
        self.reads += len(set(digests))
        (rows,) = yield [Statement(_CALLERS_SQL, {
            "hs": sorted(set(digests)), "idle": policy.idle_minutes,
            "touch": policy.touch_seconds})]
        stale = sorted({r["session_id"] for r in rows if r["stale"]})
        if stale:
            yield [Statement(_TOUCH_SQL, {"ids": stale})]
        live = {r["token_hash"]: KnownCaller(_actor_of(SimpleNamespace(**r)), r["token_hash"],
                                             r["people_version"]) for r in rows}
        for digest, caller in live.items():
            self._known[digest] = caller
            self._known.move_to_end(digest)
        while len(self._known) > self.size:
            self._known.popitem(last=False)
        return [live.get(d) for d in digests]


def _actor_of(row) -> Actor:
    return actor_from_row(row, session_id=row.session_id,
                          password_change_only=row.session_password_change_only)


def log_out(session: Session, actor: Actor, *, address: str | None) -> None:
    if actor.session_id is not None:
        session.execute(text("UPDATE sessions SET revoked_at = now() WHERE id = :i"),
                        {"i": actor.session_id})
    audit.record(session, "logout", username=actor.username, address=address)


def end_all_sessions(session: Session, user_id: int) -> None:
    """Every session of the user is over from now (a new password, a disabled account)."""
    # now() is the transaction's start: a session started later in this transaction (the fresh
    # one after a password change) is still valid, every earlier one is not.
    session.execute(text("UPDATE users SET sessions_valid_after = now() WHERE id = :i"),
                    {"i": user_id})
    session.execute(text("UPDATE sessions SET revoked_at = now() WHERE user_id = :i "
                         "AND revoked_at IS NULL"), {"i": user_id})


def change_own_password(session: Session, actor: Actor, old_password: str, new_password: str, *,
                        password_policy: PasswordPolicy, session_policy: SessionPolicy,
                        kind: str, address: str | None) -> Started:
    """The user sets their own password (the old one proves it is them). Every session ends,
    this one included; the answer is a fresh full session."""
    stored = session.execute(text("SELECT password_hash FROM users WHERE id = :i"),
                             {"i": actor.id}).scalar()
    if not verify_password(old_password, stored):
        raise Unauthorized("The old password is wrong.", zh="原密码错误。")
    password_policy.check(new_password, username=actor.username, old_password=old_password)
    session.execute(text("""
        UPDATE users SET password_hash = :h, must_change_password = false,
               password_changed_at = now() WHERE id = :i"""),
        {"h": hash_password(new_password), "i": actor.id})
    end_all_sessions(session, actor.id)
    audit.record(session, "password_changed", username=actor.username, address=address)
    fresh = load_actor_by_id(session, actor.id)
    return start_session(session, fresh, kind=kind, address=address, policy=session_policy)
