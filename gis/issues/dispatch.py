"""Dispatch (派遣): who fixes a case (docs/ARCHITECTURE.md, "Dispatch and the branches").

A dispatcher sends an accepted case (or one sent back for rework) to a department, or to the
grid's worker for a community matter. Dispatch rules map category x region to a department (or
to the worker); the rule of the most specific region containing the case's grid applies
(community before street before district before anywhere). An automatic rule dispatches the
case the moment it is accepted (立案), with no actor; any other rule only suggests, and a plain
transition to ``dispatched`` follows the suggestion, else the worker.

Each dispatch is an ``issue_events`` row of kind ``dispatch`` naming the department and whether
a rule did it (``details.auto``), so that the share dispatched automatically is a count.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import InvalidParameter, NotFound
from gis.issues import workflow
from gis.issues.actions import require_status
from gis.people.actors import Actor, require_role
from gis.rules import DISPATCH_MOVE

DISPATCHER_ROLES = ("dispatcher", "leader", "admin")


@dataclass(frozen=True)
class Target:
    """Where a case goes: a department (id, code, name), or the grid's worker (all None)."""

    department_id: int | None
    department_code: str | None
    department_name: str | None

    @property
    def to_worker(self) -> bool:
        return self.department_id is None


@dataclass(frozen=True)
class Rule:
    id: int
    category: str
    region_code: str | None
    region_name: str | None
    target: Target
    auto: bool


_RULES_SQL = """
    SELECT r.id, r.category, g.code AS region_code, g.name AS region_name, r.auto,
           d.id AS department_id, d.code AS department_code, d.name AS department_name
      FROM dispatch_rules r
      LEFT JOIN regions g ON g.id = r.region_id
      LEFT JOIN departments d ON d.id = r.department_id"""


def _rule(row) -> Rule:
    return Rule(row.id, row.category, row.region_code, row.region_name,
                Target(row.department_id, row.department_code, row.department_name), row.auto)


def rule_for_case(session: Session, issue_id: int) -> Rule | None:
    """The dispatch rule of case ``issue_id``: its category's rule for the most specific region
    above its grid (or containing its point when it has no grid); None when no rule covers it."""
    row = session.execute(text(f"""
        WITH RECURSIVE place(id, depth) AS (
            SELECT coalesce(
                       (SELECT g.community_id FROM grids g WHERE g.id = i.grid_id),
                       (SELECT r.id FROM regions r WHERE ST_Covers(r.geom, i.geom)
                         ORDER BY CASE r.level WHEN 'community' THEN 0 WHEN 'street' THEN 1
                                  ELSE 2 END LIMIT 1)), 0
              FROM issues i WHERE i.id = :i
            UNION ALL
            SELECT r.parent_id, p.depth + 1 FROM regions r JOIN place p ON r.id = p.id
             WHERE r.parent_id IS NOT NULL)
        {_RULES_SQL}
         WHERE r.category = (SELECT category FROM issues WHERE id = :i)
           AND (r.region_id IS NULL OR r.region_id IN (SELECT id FROM place WHERE id IS NOT NULL))
         ORDER BY coalesce((SELECT depth FROM place WHERE place.id = r.region_id), 1000)
         LIMIT 1"""), {"i": issue_id}).first()
    return _rule(row) if row else None


def auto_dispatch(session: Session, issue_id: int) -> bool:
    """Dispatch an accepted case by its automatic rule, if it has one (actor: none, the system).
    Returns whether it did."""
    rule = rule_for_case(session, issue_id)
    if rule is None or not rule.auto:
        return False
    _dispatch(session, None, issue_id, "accepted", rule.target, None, auto=True, rule_id=rule.id)
    return True


def dispatch(session: Session, actor: Actor, issue_id: int, department: str | None,
             to_worker: bool = False, note: str | None = None) -> Target:
    """A dispatcher sends case ``issue_id`` to ``department`` (a code), or to the grid's worker
    (``to_worker``); with neither, where its rule suggests (else the worker)."""
    require_role(actor, *DISPATCHER_ROLES)
    current = workflow.lock_case(session, actor, issue_id)
    require_status(issue_id, current, "dispatch", DISPATCH_MOVE[0])
    if department is not None and to_worker:
        raise InvalidParameter("dispatch to a department or to the grid's worker, not both",
                               zh="派遣对象只能是一个：专业部门或网格员")
    if department is not None:
        target, rule_id = department_target(session, department), None
    elif to_worker:
        target, rule_id = Target(None, None, None), None
    else:
        rule = rule_for_case(session, issue_id)
        target, rule_id = (rule.target, rule.id) if rule else (Target(None, None, None), None)
    _dispatch(session, actor, issue_id, current, target, note, auto=False, rule_id=rule_id)
    return target


def dispatch_by_rule(session: Session, actor: Actor, issue_id: int, current: str,
                     note: str | None) -> None:
    """A plain transition to ``dispatched`` (the workflow's generic move, checked and locked by
    the caller): where the rule suggests, else to the grid's worker."""
    require_role(actor, *DISPATCHER_ROLES)
    rule = rule_for_case(session, issue_id)
    target = rule.target if rule else Target(None, None, None)
    _dispatch(session, actor, issue_id, current, target, note, auto=False,
              rule_id=rule.id if rule else None)


def department_target(session: Session, code: str) -> Target:
    row = session.execute(text("SELECT id, code, name, active FROM departments WHERE code = :c"),
                          {"c": code}).first()
    if row is None:
        known = session.execute(text("SELECT string_agg(code, ', ' ORDER BY code) FROM departments "
                                     "WHERE active")).scalar_one()
        raise NotFound(f"no department {code!r}; known: {known or '(none)'}",
                       zh=f"专业部门 {code} 不存在；现有：{known or '（无）'}")
    if not row.active:
        raise InvalidParameter(f"department {code!r} is inactive", zh=f"专业部门 {row.name} 已停用")
    return Target(row.id, row.code, row.name)


def _dispatch(session: Session, actor: Actor | None, issue_id: int, current: str, target: Target,
              note: str | None, *, auto: bool, rule_id: int | None) -> None:
    worker = None if not target.to_worker else _grid_worker(session, issue_id)
    session.execute(text("UPDATE issues SET department_id = :d WHERE id = :i"),
                    {"d": target.department_id, "i": issue_id})
    who = target.department_name or (f"网格员 {worker}" if worker else "网格员")
    default_note = f"{'自动' if auto else ''}派遣至{who}"
    workflow.record_move(session, actor, issue_id, current, DISPATCH_MOVE[1],
                         note or default_note, kind="dispatch", department_id=target.department_id,
                         details={"auto": auto, "rule": rule_id, "worker": worker})


def _grid_worker(session: Session, issue_id: int) -> str | None:
    return session.execute(text("""
        SELECT u.username FROM issues i JOIN grids g ON g.id = i.grid_id
          JOIN grid_workers gw ON gw.grid_code = g.code JOIN users u ON u.id = gw.user_id
         WHERE i.id = :i ORDER BY u.username LIMIT 1"""), {"i": issue_id}).scalar()


# -- the rules as data ---------------------------------------------------------------------------
def list_rules(session: Session) -> list[Rule]:
    rows = session.execute(text(f"{_RULES_SQL} ORDER BY r.category, g.code NULLS FIRST")).all()
    return [_rule(r) for r in rows]


def set_rule(session: Session, actor: Actor | None, category: str, region: str | None,
             department: str | None, auto: bool = True) -> Rule:
    """Add or replace the rule of ``category`` in ``region`` (a region code; None: anywhere) ->
    ``department`` (a code; None: the grid's worker). Admins, or the operator at the console
    (``actor`` None)."""
    if actor is not None:
        require_role(actor, "admin")
    if session.execute(text("SELECT 1 FROM categories WHERE code = :c AND kind = 'issue'"),
                       {"c": category}).first() is None:
        raise NotFound(f"no issue category {category!r}", zh=f"事件类别 {category} 不存在")
    region_id = None
    if region is not None:
        region_id = session.execute(text("SELECT id FROM regions WHERE code = :c"),
                                    {"c": region}).scalar()
        if region_id is None:
            raise NotFound(f"no region {region!r}", zh=f"区域 {region} 不存在")
    department_id = department_target(session, department).department_id if department else None
    rule_id = session.execute(text("""
        INSERT INTO dispatch_rules (category, region_id, department_id, auto)
        VALUES (:c, :r, :d, :a)
        ON CONFLICT ON CONSTRAINT one_rule_per_category_and_region
        DO UPDATE SET department_id = EXCLUDED.department_id, auto = EXCLUDED.auto
        RETURNING id"""), {"c": category, "r": region_id, "d": department_id, "a": auto}).scalar_one()
    return next(r for r in list_rules(session) if r.id == rule_id)


def delete_rule(session: Session, actor: Actor | None, rule_id: int) -> None:
    if actor is not None:
        require_role(actor, "admin")
    if session.execute(text("DELETE FROM dispatch_rules WHERE id = :i RETURNING id"),
                       {"i": rule_id}).first() is None:
        raise NotFound(f"no dispatch rule {rule_id}", zh=f"派遣规则 {rule_id} 不存在")

