"""Who is acting, and what each role may read and do. The API authenticates; the rules live here.

Scopes (docs/ARCHITECTURE.md, "People and scopes"):

- a **worker** reads every case, in full in the grids they hold and without personal data
  elsewhere, and acts only in their own grids;
- a **leader** or **dispatcher** has a region (district, street or community) and reads and acts
  only inside it: the current grids of its communities, and cases tagged to no grid that lie
  inside the region's boundary;
- **department** staff read and act on the cases dispatched to their department;
- an **admin** reads and acts everywhere.

Whoever may read a case in full may see its personal data; others get it masked
(:mod:`gis.people.privacy`). The SQL forms of these rules (:func:`read_scope_sql`,
:func:`personal_sql`) and the Python forms (:meth:`Actor.may_act_on`) are written side by side so
they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import Forbidden
from gis.rules import REGION_ROLES, ROLE_NAMES

_WHAT_ZH = {"issues": "事件", "facilities": "部件", "buildings": "楼栋"}


@dataclass(frozen=True)
class Actor:
    id: int
    username: str
    display_name: str
    role: str  # one of gis.rules.ROLES
    grid_codes: frozenset[str] = field(default_factory=frozenset)  # grids held now (workers)
    region_id: int | None = None
    region_grid_codes: frozenset[str] = field(default_factory=frozenset)  # current grids in region
    department_id: int | None = None
    session_id: int | None = None
    password_change_only: bool = False

    # -- the rules in Python --------------------------------------------------------------------
    def sees_all(self) -> bool:
        """Reads every case in full (the admin)."""
        return self.role == "admin"

    def owns(self, grid_code: str | None) -> bool:
        return grid_code is not None and grid_code in self.grid_codes

    def in_region(self, grid_code: str | None) -> bool:
        return (self.role in REGION_ROLES and grid_code is not None
                and grid_code in self.region_grid_codes)

    def may_change_in(self, grid_code: str | None) -> bool:
        """Facilities, buildings and cases by grid: workers their own grids, leaders and
        dispatchers their region, admins anywhere."""
        return self.sees_all() or self.owns(grid_code) or self.in_region(grid_code)

    def may_act_on(self, grid_code: str | None, department_id: int | None) -> bool:
        """A case: as :meth:`may_change_in`, and department staff on their department's cases."""
        if self.role == "department":
            return department_id is not None and department_id == self.department_id
        return self.may_change_in(grid_code)

    def may_see_contact(self, grid_code: str | None, department_id: int | None = None) -> bool:
        """Personal data of a case: whoever may act on it (see the module's docstring)."""
        return self.may_act_on(grid_code, department_id)

    def scope_key(self) -> tuple:
        """Equal for two actors who read exactly the same cases the same way (page caches)."""
        return (self.role, self.grid_codes, self.region_id, self.department_id)


# -- the rules in SQL -------------------------------------------------------------------------------
def read_scope_sql(actor: Actor | None, t: str = "i", *, public_read: bool = False) -> tuple[str, dict]:
    """A condition on the ``issues`` row aliased ``t``: the cases ``actor`` may read at all
    (anonymous callers read nothing, or everything masked under ``public_read``)."""
    if actor is None:
        return ("TRUE" if public_read else "FALSE"), {}
    if actor.role in ("admin", "worker"):
        return "TRUE", {}
    if actor.role == "department":
        return f"{t}.department_id = :scope_department", {"scope_department": actor.department_id}
    return _in_region_sql(actor, t)


def act_scope_sql(actor: Actor | None, t: str = "i") -> tuple[str, dict]:
    """A boolean expression on the ``issues`` row ``t``: may ``actor`` act on the case (the SQL
    form of :meth:`Actor.may_act_on`: a worker in the grids they hold, any version of them;
    everyone else where they read)."""
    if actor is None:
        return "FALSE", {}
    if actor.role == "admin":
        return "TRUE", {}
    if actor.role == "worker":
        return (f"({t}.grid_id IN (SELECT sg.id FROM grids sg WHERE sg.code = ANY(:scope_own)))",
                {"scope_own": sorted(actor.grid_codes)})
    return read_scope_sql(actor, t)


def personal_sql(actor: Actor | None, t: str = "i") -> tuple[str, dict]:
    """A boolean expression on the ``issues`` row ``t``: may ``actor`` see its personal data
    (whoever may act on the case)."""
    return act_scope_sql(actor, t)


def _in_region_sql(actor: Actor, t: str) -> tuple[str, dict]:
    # Both sides compare the row with values computed once (InitPlans), so each reads through an
    # index (grid_id; the GiST index on geom, grid_id IS NULL checked on the rows it finds) and
    # PostgreSQL ORs the two bitmaps: a street's leader reads the street's cases, not the city's.
    (in_grids, in_no_grid), params = region_parts_sql(actor, t)
    return f"({in_grids} OR {in_no_grid})", params


def region_parts_sql(actor: Actor, t: str = "i") -> tuple[tuple[str, str], dict]:
    """The two disjoint halves of a leader's or dispatcher's read scope on the ``issues`` row
    ``t``: the cases in the region's grids (any version of them), and the cases in no grid
    inside its boundary. A scan that reads only indexed columns can take them one at a time,
    each from the index alone (the first from ``issues_grid_time_idx``), where their OR forces a
    visit to the table. (A region that does not exist covers nothing: ST_Covers of its NULL
    geometry is NULL.)"""
    in_grids = (f"{t}.grid_id = ANY(ARRAY(SELECT sg.id FROM grids sg "
                f"WHERE sg.code = ANY(:scope_region_grids)))")
    in_no_grid = (f"({t}.grid_id IS NULL AND ST_Covers((SELECT sr.geom FROM regions sr "
                  f"WHERE sr.id = :scope_region), {t}.geom))")
    return ((in_grids, in_no_grid),
            {"scope_region_grids": sorted(actor.region_grid_codes), "scope_region": actor.region_id})


# -- refusals ---------------------------------------------------------------------------------------
def require_change(actor: Actor, grid_code: str | None, what: str) -> None:
    if not actor.may_change_in(grid_code):
        raise _outside(actor, grid_code, what)


def require_act_on_issue(actor: Actor, grid_code: str | None, department_id: int | None) -> None:
    if not actor.may_act_on(grid_code, department_id):
        if actor.role == "department":
            raise Forbidden(f"{actor.username} may act only on cases dispatched to their department",
                            zh=f"{actor.username} 只能处理派遣给本部门的事件")
        raise _outside(actor, grid_code, "issues")


def _outside(actor: Actor, grid_code: str | None, what: str) -> Forbidden:
    where = grid_code or "(none)"
    if actor.role in REGION_ROLES:
        return Forbidden(f"{actor.username} may not change {what} in grid {where}: it is outside "
                         "their region",
                         zh=f"{actor.username} 无权修改网格 {grid_code or '（无网格）'} 中的"
                            f"{_WHAT_ZH.get(what, what)}：不在其管辖区域内")
    return Forbidden(f"{actor.username} may not change {what} in grid {where}; "
                     "workers change only their own grids",
                     zh=f"{actor.username} 无权修改网格 {grid_code or '（无网格）'} 中的"
                        f"{_WHAT_ZH.get(what, what)}；网格员只能处理自己网格内的")


def require_role(actor: Actor, *roles: str) -> None:
    if actor.role not in roles:
        raise Forbidden(f"this needs the role {' or '.join(roles)}; {actor.username} is {actor.role}",
                        zh=f"此操作需要以下角色之一：{'、'.join(ROLE_NAMES[r][0] for r in roles)}；"
                           f"{actor.username} 的角色是{ROLE_NAMES.get(actor.role, (actor.role,))[0]}")


# -- loading ----------------------------------------------------------------------------------------
# A user as an actor, with their scope (own grids; the current grids of their region): the one
# definition, also joined into the session check (gis.people.sessions).
ACTOR_SQL = """
    SELECT u.id, u.username, u.display_name, u.role, u.region_id, u.department_id, u.password_hash,
           coalesce((SELECT array_agg(gw.grid_code) FROM grid_workers gw WHERE gw.user_id = u.id),
                    '{}') AS own,
           CASE WHEN u.region_id IS NULL THEN '{}'::varchar[] ELSE coalesce((
               WITH RECURSIVE sub(id) AS (
                   SELECT u.region_id UNION ALL SELECT r.id FROM regions r JOIN sub ON r.parent_id = sub.id)
               SELECT array_agg(g.code) FROM grids g
                WHERE g.valid_to IS NULL AND g.community_id IN (SELECT id FROM sub)), '{}') END
               AS region_grids
      FROM users u"""


def actor_from_row(row, *, session_id: int | None = None,
                   password_change_only: bool = False) -> Actor:
    return Actor(row.id, row.username, row.display_name, row.role,
                 grid_codes=frozenset(row.own), region_id=row.region_id,
                 region_grid_codes=frozenset(row.region_grids) if row.role in REGION_ROLES
                 else frozenset(),
                 department_id=row.department_id, session_id=session_id,
                 password_change_only=password_change_only)


def load_actor(session: Session, username: str) -> tuple[Actor, str] | None:
    """The active user named ``username`` and their password hash, or None."""
    row = session.execute(text(f"{ACTOR_SQL} WHERE u.username = :u AND u.active"),
                          {"u": username}).first()
    if row is None:
        return None
    return actor_from_row(row), row.password_hash


def load_actor_by_id(session: Session, user_id: int, *, session_id: int | None = None,
                     password_change_only: bool = False) -> Actor | None:
    row = session.execute(text(f"{ACTOR_SQL} WHERE u.id = :i AND u.active"), {"i": user_id}).first()
    if row is None:
        return None
    return actor_from_row(row, session_id=session_id, password_change_only=password_change_only)
