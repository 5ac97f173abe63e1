"""`gridmap calendar`: the working-day calendar's status (which years fall back to Monday to
Friday) and its local overrides (docs/ARCHITECTURE.md, "Working time").

    gridmap calendar status
    gridmap calendar set 2026-12-31 holiday --note "县政府决定放假一天"
    gridmap calendar set 2027-02-07 working --note "2027 年春节调休上班"
    gridmap calendar unset 2026-12-31
    gridmap calendar list [--year 2027]

``status`` exits 1 when a year in use falls back, so a cron job can raise the alarm.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime

from api.settings import Settings


def add_calendar_commands(sub: argparse._SubParsersAction) -> None:
    cal = sub.add_parser("calendar", help="working days: status, local overrides").add_subparsers(
        title="calendar commands")
    cal.add_parser("status", help="which years follow the official calendar, which fall back "
                                  "to Monday-Friday (exit 1 if any)").set_defaults(handler=status)
    p = cal.add_parser("set", help="make a day a working day or a holiday (wins over the "
                                   "official calendar)")
    p.add_argument("day", type=_day, metavar="YYYY-MM-DD")
    p.add_argument("kind", choices=("working", "holiday"))
    p.add_argument("--note", default="", help="why: the decision or notice it follows")
    p.set_defaults(handler=set_day)
    p = cal.add_parser("unset", help="remove a day's override")
    p.add_argument("day", type=_day, metavar="YYYY-MM-DD")
    p.set_defaults(handler=unset_day)
    p = cal.add_parser("list", help="the overrides, by day")
    p.add_argument("--year", type=int)
    p.set_defaults(handler=list_days)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day YYYY-MM-DD, got {text!r}") from None


@contextmanager
def _session(settings: Settings) -> Iterator:
    from gis.db.engine import make_engine, session_scope

    engine = make_engine(settings.resolved_database_url(), pool_size=1)
    try:
        with session_scope(engine, settings.session_info()) as session:
            yield session
    finally:
        engine.dispose()


def status(args: argparse.Namespace, settings: Settings) -> int:
    from gis.rules import BEIJING
    from gis.worktime.store import calendar_status

    with _session(settings) as session:
        found = calendar_status(session, datetime.now(BEIJING).date())
    first, last = found["official_years"]
    print(f"official calendar: {found['package']} {found['package_version']}, years {first}-{last}")
    print(f"working day ends at {settings.workday_end:%H:%M} Beijing time")
    for row in found["years"]:
        source = ("official (State Council notice)" if row["source"] == "official"
                  else "FALLBACK: Monday-Friday")
        print(f"  {row['year']}: {source}, {row['overrides']} local override(s)")
    if found["warning"]:
        print(f"warning: {found['warning']}")
        print(f"警告：{found['warning_zh']}")
        return 1
    return 0


def set_day(args: argparse.Namespace, settings: Settings) -> int:
    from gis.worktime.store import set_override

    with _session(settings) as session:
        set_override(session, args.day, args.kind == "working", args.note,
                     f"cli:{getpass.getuser()}")
    print(f"{args.day}: {'working day' if args.kind == 'working' else 'holiday'} (local override)")
    return 0


def unset_day(args: argparse.Namespace, settings: Settings) -> int:
    from gis.errors import NotFound
    from gis.worktime.store import unset_override

    try:
        with _session(settings) as session:
            unset_override(session, args.day)
    except NotFound as exc:
        print(f"gridmap calendar unset: {exc}", file=sys.stderr)
        return 1
    print(f"{args.day}: override removed; the official calendar applies")
    return 0


def list_days(args: argparse.Namespace, settings: Settings) -> int:
    from gis.worktime.store import list_overrides

    with _session(settings) as session:
        rows = list_overrides(session, args.year)
    if not rows:
        print("no local overrides" + (f" in {args.year}" if args.year else ""))
        return 0
    for row in rows:
        kind = "working" if row.working else "holiday"
        print(f"{row.day:%Y-%m-%d} {row.day:%a} {kind:8} {row.created_by or '-':16} {row.note}")
    return 0
