"""`gridmap evaluate`: the evaluation (综合评价) of every department, grid worker, grid and
community as an Excel workbook, or one role as CSV (docs/ARCHITECTURE.md, "Evaluation").

    gridmap evaluate --period month --date 2026-11-15 --out 评价.xlsx
    gridmap evaluate --since 2026-11-01 --until 2026-11-15 --role worker --out workers.csv

It reads everything, as an administrator on the server does, and is recorded in the audit trail
as an export.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import date, datetime
from pathlib import Path

from api.settings import Settings
from gis.rules import EVALUATION_PERIODS, EVALUATION_ROLES


def add_evaluation_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="the evaluation (综合评价) as a workbook (.xlsx, every "
                                        "role) or CSV (.csv, one --role)")
    p.add_argument("--period", choices=EVALUATION_PERIODS,
                   help="the Beijing week, month or quarter containing --date (default month)")
    p.add_argument("--date", type=_day, metavar="YYYY-MM-DD", help="default today (Beijing)")
    p.add_argument("--since", type=_day, metavar="YYYY-MM-DD", help="explicit first day")
    p.add_argument("--until", type=_day, metavar="YYYY-MM-DD", help="explicit last day (inclusive)")
    p.add_argument("--role", choices=EVALUATION_ROLES, help="the role of a CSV")
    p.add_argument("--out", required=True, type=Path, help="a .xlsx or .csv file")
    p.set_defaults(handler=evaluate_cmd)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day YYYY-MM-DD, got {text!r}") from None


def evaluate_cmd(args: argparse.Namespace, settings: Settings) -> int:
    from gis.db.engine import make_engine, session_scope
    from gis.exchange.evaluation_files import csv_text, workbook_bytes
    from gis.people import audit
    from gis.people.actors import Actor
    from gis.queries.evaluation import evaluate, evaluate_all, load_scoring, period_from
    from gis.rules import BEIJING

    kind = args.out.suffix.lower()
    if kind not in (".xlsx", ".csv") or (kind == ".csv") != (args.role is not None):
        print("gridmap evaluate: --out names a .xlsx file (every role) or a .csv file with "
              "--role", file=sys.stderr)
        return 2
    period = period_from(args.period, args.date, args.since, args.until,
                         datetime.now(BEIJING).date())
    username = f"cli:{getpass.getuser()}"
    actor = Actor(0, username, username, "admin")
    engine = make_engine(settings.resolved_database_url(), pool_size=1)
    try:
        with session_scope(engine, settings.session_info()) as session:
            if kind == ".xlsx":
                results = evaluate_all(session, actor, period)
                args.out.write_bytes(workbook_bytes(results, load_scoring(session)))
                rows = sum(r["count"] for r in results.values())
            else:
                result = evaluate(session, actor, args.role, period)
                args.out.write_text(csv_text(result), encoding="utf-8")
                rows = result["count"]
            audit.record(session, "export", username=username, target=f"gridmap evaluate {period.label}",
                         detail={"format": kind[1:], "rows": rows, "file": str(args.out)})
    finally:
        engine.dispose()
    print(f"evaluation {period.label} ({period.since} to {period.until}): {rows} rows to {args.out}")
    return 0
