"""Who is acting, and what each role may do. The API authenticates; the rules live here."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import Forbidden


@dataclass(frozen=True)
class Actor:
    id: int
    username: str
    display_name: str
    role: str  # worker | leader | admin
    grid_codes: frozenset[str] = field(default_factory=frozenset)

    def sees_all(self) -> bool:
        return self.role in ("leader", "admin")

    def owns(self, grid_code: str | None) -> bool:
        return grid_code is not None and grid_code in self.grid_codes

    def may_change_in(self, grid_code: str | None) -> bool:
        """Workers change issues and facilities in their own grids; leaders and admins anywhere."""
        return self.sees_all() or self.owns(grid_code)

    def may_see_contact(self, grid_code: str | None) -> bool:
        """Reporter contact is personal data: the grid's worker, leaders and admins only."""
        return self.sees_all() or self.owns(grid_code)


def require_change(actor: Actor, grid_code: str | None, what: str) -> None:
    if not actor.may_change_in(grid_code):
        raise Forbidden(f"{actor.username} may not change {what} in grid {grid_code or '(none)'}; "
                        "workers change only their own grids",
                        zh=f"{actor.username} 无权修改网格 {grid_code or '（无网格）'} 中的"
                           f"{ {'issues': '事件', 'facilities': '部件', 'buildings': '楼栋'}.get(what, what)}；"
                           "网格员只能处理自己网格内的")


def require_role(actor: Actor, *roles: str) -> None:
    if actor.role not in roles:
        raise Forbidden(f"this needs the role {' or '.join(roles)}; {actor.username} is {actor.role}",
                        zh=f"此操作需要以下角色之一：{'、'.join(roles)}；{actor.username} 的角色是 {actor.role}")


def load_actor(session: Session, username: str) -> tuple[Actor, str] | None:
    """The active user named ``username`` and their password hash, or None."""
    row = session.execute(text("""
        SELECT u.id, u.username, u.display_name, u.role, u.password_hash,
               coalesce(array_agg(gw.grid_code) FILTER (WHERE gw.grid_code IS NOT NULL), '{}')
          FROM users u LEFT JOIN grid_workers gw ON gw.user_id = u.id
         WHERE u.username = :u AND u.active
         GROUP BY u.id"""), {"u": username}).first()
    if row is None:
        return None
    return Actor(row[0], row[1], row[2], row[3], frozenset(row[5])), row[4]
