"""`gridmap audit`: read the audit trail, and prune what is past its retention; and the check
`gridmap db status` makes that the audit trail is append-only against the server's role.

Both commands connect as the schema's owner (``GRIDMAP_OWNER_DATABASE_URL``, else
``DATABASE_URL``, else the private cluster's owner): only the owner may remove entries, and the
database itself refuses to remove any younger than the retention (migration 0005).
"""

from __future__ import annotations

import argparse
import getpass
import json
from datetime import date, datetime

from api.settings import Settings


def add_audit_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``gridmap audit`` (list entries) and ``gridmap audit prune`` to the command line."""
    p = sub.add_parser("audit", help="read the audit trail: log-ins, writes, reveals, exports",
                       description="Audit entries newest first, as a table (times in Beijing time).")
    p.add_argument("--username", help="only this user's entries")
    p.add_argument("--action", type=_action, metavar="ACTION",
                   help="only this kind of entry, e.g. login, login_failed, write, read_personal "
                        "(a wrong one is answered with the list)")
    p.add_argument("--since", type=_day_or_instant, metavar="DAY|INSTANT",
                   help="at or after: a day (2025-03-01, from its start) or an ISO 8601 instant")
    p.add_argument("--until", type=_day_or_instant, metavar="DAY|INSTANT",
                   help="at or before: a day (to its end) or an ISO 8601 instant")
    p.add_argument("--limit", type=_positive, default=50, help="most entries shown (default 50)")
    p.set_defaults(handler=list_entries)
    commands = p.add_subparsers(title="audit commands")
    prune = commands.add_parser("prune", help="remove entries older than the retention (audited)")
    prune.add_argument("--older-than-days", type=int, required=True, metavar="N",
                       help="remove entries older than N days; N is at least the retention (180)")
    prune.set_defaults(handler=prune_entries)


def list_entries(args: argparse.Namespace, settings: Settings) -> int:
    from gis.db.engine import make_engine, session_scope
    from gis.people import audit

    engine = make_engine(settings.resolved_database_url(), pool_size=1)
    try:
        with session_scope(engine) as session:
            rows = audit.entries(session, username=args.username, action=args.action,
                                 since=args.since, until=args.until, limit=args.limit)
    finally:
        engine.dispose()
    print(format_table(rows) if rows else "no audit entries match")
    return 0


def prune_entries(args: argparse.Namespace, settings: Settings) -> int:
    from gis.db.engine import make_engine, session_scope
    from gis.people import audit

    engine = make_engine(settings.resolved_database_url(), pool_size=1)
    try:
        with session_scope(engine) as session:
            removed = audit.prune(session, args.older_than_days, username=f"cli:{getpass.getuser()}")
    finally:
        engine.dispose()
    print(f"removed {removed} audit entr{'y' if removed == 1 else 'ies'} older than "
          f"{args.older_than_days} days (the prune itself is recorded)")
    return 0


_COLUMNS = ("at", "username", "action", "outcome", "address", "target", "detail")


def format_table(rows: list[dict]) -> str:
    """Entries as aligned columns; times in Beijing time, the detail as compact JSON."""
    from gis.rules import BEIJING

    cells = [[f"{r['at'].astimezone(BEIJING):%Y-%m-%d %H:%M:%S}", r["username"] or "-",
              r["action"], r["outcome"], r["address"] or "-", r["target"] or "-",
              json.dumps(r["detail"], ensure_ascii=False, separators=(",", ":"))
              if r["detail"] else "-"] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(_COLUMNS)]
    lines = [[c.upper() for c in _COLUMNS], *cells]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)


def report_application_role(settings: Settings) -> None:
    """Say which role the server connects as, and warn when the audit trail is not append-only
    against it (it owns the audit table, is a superuser, or holds UPDATE or DELETE on it)."""
    from gis.db.engine import make_engine
    from gis.db.roles import check_connection_role
    from gis.errors import SetupError

    try:
        url = settings.application_database_url()
    except SetupError as exc:
        print(f"warning: {exc}")
        return
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            check = check_connection_role(conn)
    finally:
        engine.dispose()
    if check.append_only:
        print(f"the server connects as {check.role}, which may read and add audit entries "
              "but never change or remove them")
        return
    print(f"warning: the server connects as {check.role}: {'; '.join(check.problems)}. The audit "
          "trail is not append-only against it: give the application a role of its own in "
          "DATABASE_URL and the owner's in GRIDMAP_OWNER_DATABASE_URL (see .env.example)")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _action(text: str) -> str:
    from gis.people.audit import ACTIONS

    if text not in ACTIONS:
        raise argparse.ArgumentTypeError(f"unknown audit action {text!r}; known: {', '.join(ACTIONS)}")
    return text


def _day_or_instant(text: str) -> date | datetime:
    """``YYYY-MM-DD`` is a day; anything longer an ISO 8601 instant (Beijing time without offset)."""
    value = text.strip()
    try:
        return date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a day (2025-03-01) or an instant (2025-03-01T08:00:00+08:00), got {text!r}"
        ) from None
