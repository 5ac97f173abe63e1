"""`gridmap escalate` and `gridmap dispatch-rule`: the command centre from the console
(docs/ARCHITECTURE.md, "Dispatch and the branches").

    gridmap escalate                      # notify every late step not notified yet (a timer's job)
    gridmap dispatch-rule list
    gridmap dispatch-rule set garbage --department huanwei [--region 140429100001] [--suggest]
    gridmap dispatch-rule set neighbour_dispute --worker
    gridmap dispatch-rule remove 7
"""

from __future__ import annotations

import argparse

from api.cli_calendar import _session
from api.settings import Settings


def add_command_centre_commands(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("escalate", help="notify dispatchers and leaders of every late step not "
                                    "notified yet (run it from a timer)").set_defaults(handler=escalate)
    rules = sub.add_parser("dispatch-rule", help="dispatch rules: category x region -> department")
    rule_sub = rules.add_subparsers(title="dispatch-rule commands")
    rule_sub.add_parser("list", help="every rule").set_defaults(handler=list_rules)
    p = rule_sub.add_parser("set", help="add or replace the rule of a category in a region",
                            allow_abbrev=False)
    p.add_argument("category", help="issue category code (GET /api/v1/categories)")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--department", metavar="CODE", help="the department it goes to")
    target.add_argument("--worker", action="store_true", help="the grid's worker (community matters)")
    p.add_argument("--region", metavar="CODE", help="region code; anywhere without it")
    p.add_argument("--suggest", action="store_true",
                   help="only suggest to the dispatcher; without it the rule dispatches on acceptance")
    p.set_defaults(handler=set_rule)
    p = rule_sub.add_parser("remove", help="remove a rule by id")
    p.add_argument("rule_id", type=int)
    p.set_defaults(handler=remove_rule)


def escalate(args: argparse.Namespace, settings: Settings) -> int:
    from gis.issues.notifications import notify_overdue

    with _session(settings) as session:
        steps = notify_overdue(session)
    print(f"late steps notified: {steps}")
    return 0


def _print(rule) -> None:
    where = f"{rule.region_code} {rule.region_name}" if rule.region_code else "(anywhere)"
    to = (f"{rule.target.department_code} {rule.target.department_name}"
          if rule.target.department_code else "(grid worker)")
    print(f"{rule.id:>4}  {rule.category:<22} {where:<28} -> {to:<24} "
          f"{'auto' if rule.auto else 'suggest'}")


def list_rules(args: argparse.Namespace, settings: Settings) -> int:
    from gis.issues.dispatch import list_rules as rules

    with _session(settings) as session:
        for rule in rules(session):
            _print(rule)
    return 0


def set_rule(args: argparse.Namespace, settings: Settings) -> int:
    from gis.issues.dispatch import set_rule as put

    with _session(settings) as session:
        _print(put(session, None, args.category, args.region, args.department, not args.suggest))
    return 0


def remove_rule(args: argparse.Namespace, settings: Settings) -> int:
    from gis.issues.dispatch import delete_rule

    with _session(settings) as session:
        delete_rule(session, None, args.rule_id)
    print(f"removed rule {args.rule_id}")
    return 0
