"""The security audit trail (等保 2.0 安全审计): log-ins (success, failure, lock-out), every write,
every read that reveals personal data, every export and package — who, when, from which address,
what.

The table is append-only in the database (migration 0005: a trigger refuses UPDATE, TRUNCATE and
the DELETE of rows younger than :data:`gis.rules.AUDIT_RETENTION_DAYS`; the application's role
may only SELECT and INSERT, :mod:`gis.db.roles`). Entries never hold a password or a personal
value: a reveal names the cases, not what they said.
"""

from __future__ import annotations

import json
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import InvalidParameter
from gis.queries.filters import IssueFilter, start_of
from gis.rules import AUDIT_RETENTION_DAYS

# What an entry says happened. Kept as data so `GET /api/v1/audit?action=` can be checked.
ACTIONS = {
    "login": "log-in",
    "login_failed": "failed log-in",
    "login_locked": "log-in refused: locked out",
    "lockout": "username locked after repeated failures",
    "logout": "log-out",
    "password_changed": "password changed by its owner",
    "write": "a change through the API or a page",
    "read_personal": "a read that revealed personal data",
    "export": "an export of data",
    "package": "an offline grid package",
    "user_admin": "an account added or changed by an admin (API, page, command or roster)",
    "department_admin": "a department added or changed by an admin (API or command)",
    "audit_prune": "audit entries older than the retention removed",
}


# An entry's columns and their values (named parameters, each name after ``prefix``): one
# definition for :func:`record` and for statements that write their own audit entry beside
# their change (the intake's insert, gis.issues.reporting).
ENTRY_COLUMNS = "username, action, target, address, outcome, detail"


def entry_values_sql(prefix: str = "", ref: str = ":") -> str:
    """The values of :data:`ENTRY_COLUMNS` from the parameters of :func:`entry_params` (``ref``
    ":"), or from columns of those names (``ref`` "t." for a row source ``t``)."""
    r = ref + prefix
    return f"{r}u, {r}a, {r}t, {r}addr, {r}o, CAST({r}d AS jsonb)"


def entry_params(action: str, *, username: str | None, address: str | None = None,
                 target: str | None = None, outcome: str = "ok", detail: dict | None = None,
                 prefix: str = "") -> dict:
    """The parameters of one entry for :func:`entry_values_sql` (``prefix`` the same)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; known: {', '.join(ACTIONS)}")
    return {f"{prefix}u": username, f"{prefix}a": action, f"{prefix}t": target,
            f"{prefix}addr": address, f"{prefix}o": outcome,
            f"{prefix}d": json.dumps(detail or {}, ensure_ascii=False, default=str)}


_INSERT_ENTRY = text(f"INSERT INTO audit_log ({ENTRY_COLUMNS}) VALUES ({entry_values_sql()})")


def record(session: Session, action: str, *, username: str | None, address: str | None = None,
           target: str | None = None, outcome: str = "ok", detail: dict | None = None) -> None:
    """Add one entry in the caller's transaction (it lands when that commits)."""
    session.execute(_INSERT_ENTRY, entry_params(action, username=username, address=address,
                                                target=target, outcome=outcome, detail=detail))


def entries(session: Session, *, username: str | None = None, action: str | None = None,
            since: date | datetime | None = None, until: date | datetime | None = None,
            limit: int = 100, offset: int = 0) -> list[dict]:
    """Entries newest first; ``since``/``until`` inclusive (a day is a whole Beijing day)."""
    if action is not None and action not in ACTIONS:
        raise InvalidParameter(f"unknown audit action {action!r}; known: {', '.join(ACTIONS)}",
                               zh=f"未知的审计类型 {action!r}；可用：{', '.join(ACTIONS)}")
    clauses, params = ["TRUE"], {"limit": limit, "offset": offset}
    if username:
        clauses.append("username = :username")
        params["username"] = username
    if action:
        clauses.append("action = :action")
        params["action"] = action
    if since is not None:
        clauses.append("at >= :since")
        params["since"] = start_of(since)
    if until is not None:
        clauses.append("at <= :until")
        params["until"] = IssueFilter(until=until).until_at()  # the issue filter's reading of until
    if since is not None and until is not None and params["since"] > params["until"]:
        raise InvalidParameter(f"since ({since}) is after until ({until}); no entry can match",
                               zh=f"起始时间 since({since})晚于结束时间 until({until})")
    rows = session.execute(text(f"""
        SELECT id, at, username, action, target, address, outcome, detail FROM audit_log
         WHERE {' AND '.join(clauses)} ORDER BY at DESC, id DESC LIMIT :limit OFFSET :offset"""),
        params).mappings()
    return [dict(r) for r in rows]


def prune(session: Session, older_than_days: int, *, username: str | None) -> int:
    """Remove entries older than ``older_than_days`` days; refuses anything under the retention
    (the database refuses it too). The prune itself is recorded."""
    if older_than_days < AUDIT_RETENTION_DAYS:
        raise InvalidParameter(
            f"audit entries are kept at least {AUDIT_RETENTION_DAYS} days; "
            f"{older_than_days} is too few",
            zh=f"审计记录至少保留 {AUDIT_RETENTION_DAYS} 天；{older_than_days} 天不足")
    removed = session.execute(text(
        "DELETE FROM audit_log WHERE at < now() - make_interval(days => :d)"),
        {"d": older_than_days}).rowcount
    record(session, "audit_prune", username=username, detail={"older_than_days": older_than_days,
                                                               "removed": removed})
    return removed
