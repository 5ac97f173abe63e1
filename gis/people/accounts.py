"""People and departments: the one place accounts are added and changed, whether by the
`gridmap user` command, a roster import, the admin API or the admin page.

- A role is given in English or Chinese (``worker`` or 网格员, see :data:`gis.rules.ROLE_NAMES`).
- A leader or dispatcher needs a region (code or name); department staff need a department;
  a worker may hold grids (by code). Grid holding keeps its history: giving a worker other grids
  ends the old assignments (``valid_to``) and starts new ones, so statistics credit whoever held
  a grid at the time.
- A password set by someone else is an initial one: the user must change it at the first log-in.
- Disabling a user or setting their password ends their sessions at once.
- The last active admin can be neither disabled nor given another role (nobody could undo it).
- A region, department or grid that does not exist is a bad value for a person
  (:class:`~gis.errors.InvalidParameter`); only an unknown user is :class:`~gis.errors.NotFound`.
Every change is audited (``user_admin``, ``department_admin``) with who made it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import Conflict, Forbidden, InvalidParameter, NotFound
from gis.people import audit
from gis.people.actors import Actor, require_role
from gis.people.passwords import PasswordPolicy, hash_password
from gis.people.sessions import end_all_sessions
from gis.rules import REGION_ROLES, ROLE_NAMES, ROLES

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{1,63}$")
_ROLE_WORDS = {**{r: r for r in ROLES}, **{zh: r for r, (zh, _) in ROLE_NAMES.items()},
               **{en: r for r, (_, en) in ROLE_NAMES.items()}, "派遣": "dispatcher",
               "受理员": "dispatcher", "部门": "department", "社区书记": "leader"}
_PHONE = re.compile(r"^1[3-9][0-9]{9}$")


def parse_role(word: str) -> str:
    """``worker``/网格员, ``leader``/领导, ``dispatcher``/派遣员, ``department``/部门人员,
    ``admin``/管理员."""
    role = _ROLE_WORDS.get(str(word).strip().lower()) or _ROLE_WORDS.get(str(word).strip())
    if role is None:
        raise InvalidParameter(
            f"unknown role {word!r}; expected one of "
            + ", ".join(f"{r} ({zh})" for r, (zh, _) in ROLE_NAMES.items()),
            zh=f"未知的角色 {word!r}；可用：" + "、".join(f"{zh}({r})" for r, (zh, _) in ROLE_NAMES.items()))
    return role


@dataclass
class Person:
    """What an admin or a roster says about one person; None leaves a field as it is."""

    username: str
    display_name: str | None = None
    role: str | None = None
    phone: str | None = None
    grids: tuple[str, ...] | None = None
    region: str | None = None
    department: str | None = None
    password: str | None = None
    notes: list[str] = field(default_factory=list)


def check_username(username: str) -> str:
    username = (username or "").strip()
    if not USERNAME.match(username):
        raise InvalidParameter(
            f"username {username!r} must be 2-64 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit",
            zh=f"用户名 {username!r} 须为 2-64 位字母、数字、'.'、'_' 或 '-'，以字母或数字开头")
    return username


def check_phone(phone: str | None) -> str | None:
    if phone is None or not str(phone).strip():
        return None
    digits = re.sub(r"[\s\-]", "", str(phone).strip())
    if digits.startswith("+86"):
        digits = digits[3:]
    if not _PHONE.match(digits):
        raise InvalidParameter(f"phone {phone!r} is not a mainland mobile number (11 digits, 1[3-9]...)",
                               zh=f"手机号 {phone!r} 不是有效的 11 位手机号码")
    return digits


def region_id(session: Session, region: str) -> int:
    """A region by code or name; a name must be unique."""
    rows = session.execute(text(
        "SELECT id, code, name, level FROM regions WHERE code = :r OR name = :r ORDER BY code"),
        {"r": region.strip()}).all()
    if not rows:
        raise InvalidParameter(f"no region with code or name {region!r}",
                               zh=f"没有编码或名称为 {region!r} 的区域")
    if len(rows) > 1:
        raise InvalidParameter(
            f"{region!r} names {len(rows)} regions ({', '.join(r.code for r in rows)}); give the code",
            zh=f"{region!r} 对应 {len(rows)} 个区域（{'、'.join(r.code for r in rows)}），请写区域编码")
    return rows[0].id


def department_id(session: Session, department: str) -> int:
    found = session.execute(text("SELECT id FROM departments WHERE code = :d OR name = :d"),
                            {"d": department.strip()}).scalars().all()
    if len(found) != 1:
        raise InvalidParameter(f"no department with code or name {department!r}",
                               zh=f"没有编码或名称为 {department!r} 的部门")
    return found[0]


def check_grids(session: Session, codes: Iterable[str]) -> tuple[str, ...]:
    codes = tuple(dict.fromkeys(c.strip() for c in codes if c and c.strip()))
    known = set(session.execute(text(
        "SELECT code FROM grids WHERE valid_to IS NULL AND code = ANY(:c)"), {"c": list(codes)}).scalars())
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise InvalidParameter(f"no current grid with code {', '.join(unknown)}",
                               zh=f"没有编码为 {'、'.join(unknown)} 的现行网格")
    return codes


def save_person(session: Session, person: Person, *, by: str | None, address: str | None = None,
                policy: PasswordPolicy | None = None, create: bool | None = None) -> tuple[int, bool]:
    """Add ``person`` or update them by username; returns (id, created). ``create`` True refuses
    an existing username, False a missing one, None takes either (a roster re-import)."""
    username = check_username(person.username)
    existing = session.execute(text("SELECT id, role, region_id, department_id, active FROM users "
                                    "WHERE username = :u"), {"u": username}).first()
    if existing is not None and create is True:
        raise Conflict(f"user {username!r} already exists", zh=f"用户 {username!r} 已存在")
    if existing is None and create is False:
        raise NotFound(f"no user {username!r}", zh=f"用户 {username!r} 不存在")
    role = parse_role(person.role) if person.role is not None else (existing.role if existing else None)
    if role is None:
        raise InvalidParameter(f"{username}: a role is needed for a new user",
                               zh=f"{username}：新用户须指定角色")
    if existing is not None and existing.role == "admin" and role != "admin" and existing.active:
        _keep_an_admin(session, existing.id)
    values: dict = {"role": role}
    if person.display_name is not None:
        if not person.display_name.strip():
            raise InvalidParameter(f"{username}: the name is empty", zh=f"{username}：姓名为空")
        values["display_name"] = person.display_name.strip()[:100]
    elif existing is None:
        raise InvalidParameter(f"{username}: a name (姓名) is needed for a new user",
                               zh=f"{username}：新用户须填写姓名")
    if person.phone is not None:
        values["phone"] = check_phone(person.phone)
    values["region_id"] = (region_id(session, person.region) if person.region
                           else (existing.region_id if existing and person.region is None else None))
    values["department_id"] = (department_id(session, person.department) if person.department
                               else (existing.department_id if existing and person.department is None
                                     else None))
    if role in REGION_ROLES and values["region_id"] is None:
        raise InvalidParameter(f"{username}: a {role} needs a region (管辖区域)",
                               zh=f"{username}：{ROLE_NAMES[role][0]}须指定管辖区域")
    if role == "department" and values["department_id"] is None:
        raise InvalidParameter(f"{username}: department staff need a department (部门)",
                               zh=f"{username}：部门人员须指定所属部门")
    if role not in REGION_ROLES:
        values["region_id"] = None
    if role != "department":
        values["department_id"] = None
    grids = check_grids(session, person.grids) if person.grids is not None else None
    if grids and role != "worker":
        raise InvalidParameter(f"{username}: only grid workers hold grids, not a {role}",
                               zh=f"{username}：只有网格员可以负责网格")
    if person.password is not None:
        (policy or PasswordPolicy()).check(person.password, username=username)
        values |= {"password_hash": hash_password(person.password), "must_change_password": True}
    elif existing is None:
        raise InvalidParameter(f"{username}: a new user needs an initial password",
                               zh=f"{username}：新用户须设置初始密码")

    if existing is None:
        cols = ", ".join(values)
        user_id = session.execute(text(
            f"INSERT INTO users (username, {cols}) VALUES (:username, "
            f"{', '.join(':' + c for c in values)}) RETURNING id"), values | {"username": username}).scalar_one()
    else:
        user_id = existing.id
        session.execute(text(f"UPDATE users SET {', '.join(f'{c} = :{c}' for c in values)} "
                             "WHERE id = :id"), values | {"id": user_id})
        if person.password is not None or role != existing.role:
            end_all_sessions(session, user_id)
    if role != "worker":
        grids = ()
    if grids is not None:
        assign_grids(session, user_id, grids)
    audit.record(session, "user_admin", username=by, address=address, target=username,
                 detail={"created": existing is None, "role": role,
                         "fields": sorted(k for k in values if k != "password_hash")
                         + (["grids"] if grids is not None else [])})
    return user_id, existing is None


def assign_grids(session: Session, user_id: int, grids: Iterable[str]) -> None:
    """The grids ``user_id`` holds from now: assignments not in ``grids`` end now, new ones
    start now, unchanged ones carry on (their history is not broken)."""
    grids = list(grids)
    session.execute(text("""
        UPDATE grid_assignments SET valid_to = now()
         WHERE user_id = :u AND valid_to IS NULL AND NOT (grid_code = ANY(:g))"""),
        {"u": user_id, "g": grids})
    session.execute(text("""
        INSERT INTO grid_assignments (grid_code, user_id, valid_from)
        SELECT g, :u, now() FROM unnest(CAST(:g AS varchar[])) AS g
         WHERE NOT EXISTS (SELECT 1 FROM grid_assignments a
                            WHERE a.user_id = :u AND a.grid_code = g AND a.valid_to IS NULL)"""),
        {"u": user_id, "g": grids})


def _keep_an_admin(session: Session, user_id: int) -> None:
    others = session.execute(text("SELECT count(*) FROM users WHERE role = 'admin' AND active "
                                  "AND id <> :i"), {"i": user_id}).scalar_one()
    if not others:
        raise Conflict("this is the last active admin: make another admin first",
                       zh="这是最后一个可用的管理员账号：请先设置另一名管理员")


def set_active(session: Session, username: str, active: bool, *, by: str | None,
               address: str | None = None) -> None:
    found = session.execute(text("SELECT id, role, active FROM users WHERE username = :u"),
                            {"u": username}).first()
    if found is None:
        raise NotFound(f"no user {username!r}", zh=f"用户 {username!r} 不存在")
    if not active and found.active and found.role == "admin":
        _keep_an_admin(session, found.id)
    user_id = found.id
    session.execute(text("UPDATE users SET active = :a WHERE id = :i"), {"a": active, "i": user_id})
    if not active:
        end_all_sessions(session, user_id)
        # A worker who leaves hands their grids back (the history keeps who held them).
        session.execute(text("UPDATE grid_assignments SET valid_to = now() "
                             "WHERE user_id = :u AND valid_to IS NULL"), {"u": user_id})
    audit.record(session, "user_admin", username=by, address=address, target=username,
                 detail={"active": active})


def set_password(session: Session, username: str, password: str, *, by: str | None,
                 address: str | None = None, policy: PasswordPolicy | None = None,
                 initial: bool = True) -> None:
    """An admin sets a password: an initial one the user must change (unless ``initial`` is
    False), and every session of theirs ends."""
    (policy or PasswordPolicy()).check(password, username=username)
    user_id = session.execute(text("""
        UPDATE users SET password_hash = :h, must_change_password = :m,
               password_changed_at = now() WHERE username = :u RETURNING id"""),
        {"h": hash_password(password), "m": initial, "u": username}).scalar()
    if user_id is None:
        raise NotFound(f"no user {username!r}", zh=f"用户 {username!r} 不存在")
    end_all_sessions(session, user_id)
    audit.record(session, "user_admin", username=by, address=address, target=username,
                 detail={"password_reset": True, "must_change": initial})


_USERS_SQL = """
    SELECT u.id, u.username, u.display_name, u.role, u.phone, u.active,
           r.code AS region_code, r.name AS region_name, d.code AS department,
           d.name AS department_name, u.must_change_password, u.created_at,
           coalesce((SELECT array_agg(gw.grid_code ORDER BY gw.grid_code) FROM grid_workers gw
                      WHERE gw.user_id = u.id), '{}') AS grids
      FROM users u LEFT JOIN regions r ON r.id = u.region_id
      LEFT JOIN departments d ON d.id = u.department_id"""


def list_users(session: Session, *, include_inactive: bool = True) -> list[dict]:
    """Every user (never a password hash), by username."""
    rows = session.execute(text(_USERS_SQL + ("" if include_inactive else " WHERE u.active")
                                + " ORDER BY u.username")).mappings()
    return [dict(r) for r in rows]


def get_user(session: Session, username: str) -> dict:
    """One user as :func:`list_users` shows them; NotFound if there is none."""
    row = session.execute(text(_USERS_SQL + " WHERE u.username = :u"), {"u": username}).mappings().first()
    if row is None:
        raise NotFound(f"no user {username!r}", zh=f"用户 {username!r} 不存在")
    return dict(row)


def existing_usernames(session: Session, usernames: Iterable[str]) -> set[str]:
    return set(session.execute(text("SELECT username FROM users WHERE username = ANY(:u)"),
                               {"u": list(usernames)}).scalars())


def grid_history(session: Session, grid_code: str) -> list[dict]:
    """Who held ``grid_code`` from when to when, oldest first (no scope check: the command line
    and the checked :func:`assignment_history`)."""
    rows = session.execute(text("""
        SELECT a.grid_code, u.username, u.display_name, a.valid_from, a.valid_to
          FROM grid_assignments a JOIN users u ON u.id = a.user_id
         WHERE a.grid_code = :g ORDER BY a.valid_from, a.id"""), {"g": grid_code}).mappings()
    return [dict(r) for r in rows]


def assignment_history(session: Session, actor: Actor, grid_code: str) -> list[dict]:
    """:func:`grid_history` for an admin, or a leader or dispatcher whose region holds the grid
    (any version of it: a retired grid's history stays readable)."""
    require_role(actor, "admin", "leader", "dispatcher")
    grid_code = (grid_code or "").strip()
    found = session.execute(text("""
        WITH RECURSIVE sub(id) AS (
            SELECT CAST(:r AS integer) UNION ALL SELECT r.id FROM regions r JOIN sub ON r.parent_id = sub.id)
        SELECT count(*) AS versions, coalesce(bool_or(g.community_id IN (SELECT id FROM sub)), false)
               AS in_region
          FROM grids g WHERE g.code = :g"""), {"g": grid_code, "r": actor.region_id}).one()
    if not found.versions:
        raise NotFound(f"no grid with code {grid_code!r}", zh=f"没有编码为 {grid_code!r} 的网格")
    if not actor.sees_all() and not found.in_region:
        raise Forbidden(f"grid {grid_code} is outside {actor.username}'s region",
                        zh=f"网格 {grid_code} 不在 {actor.username} 的管辖区域内")
    return grid_history(session, grid_code)


# -- departments --------------------------------------------------------------------------------
DEPARTMENT_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}$")


def save_department(session: Session, code: str, name: str, categories: Iterable[str] | None = None,
                    region: str | None = None, *, by: str | None = None, address: str | None = None,
                    create: bool | None = None) -> tuple[int, bool]:
    """Add a department or update it by code; returns (id, created). On an update, categories or
    region None are left as they are ("" clears the region). ``create`` True refuses an existing
    code."""
    code, name = (code or "").strip(), (name or "").strip()
    if not DEPARTMENT_CODE.match(code):
        raise InvalidParameter(
            f"department code {code!r} must be 1-32 letters, digits, '.', '_' or '-'",
            zh=f"部门编码 {code!r} 须为 1-32 位字母、数字、'.'、'_' 或 '-'")
    if not name or len(name) > 100:
        raise InvalidParameter(f"department {code}: the name must be 1-100 characters",
                               zh=f"部门 {code}：名称须为 1-100 个字符")
    existing = session.execute(text("SELECT id FROM departments WHERE code = :c"), {"c": code}).scalar()
    if existing is not None and create is True:
        raise Conflict(f"department {code!r} already exists", zh=f"部门 {code!r} 已存在")
    values: dict = {"name": name}
    if categories is not None or existing is None:
        values["categories"] = _issue_categories(session, categories or ())
    if region is not None or existing is None:
        values["region_id"] = region_id(session, region) if region else None
    if existing is None:
        dept_id = session.execute(text(
            f"INSERT INTO departments (code, {', '.join(values)}) VALUES (:code, "
            f"{', '.join(':' + c for c in values)}) RETURNING id"), values | {"code": code}).scalar_one()
    else:
        dept_id = existing
        session.execute(text(f"UPDATE departments SET {', '.join(f'{c} = :{c}' for c in values)} "
                             "WHERE id = :id"), values | {"id": dept_id})
    audit.record(session, "department_admin", username=by, address=address, target=code,
                 detail={"created": existing is None, "fields": sorted(values)})
    return dept_id, existing is None


def _issue_categories(session: Session, categories: Iterable[str]) -> list[str]:
    categories = list(dict.fromkeys(c.strip() for c in categories if c and c.strip()))
    known = set(session.execute(text("SELECT code FROM categories WHERE kind = 'issue'")).scalars())
    unknown = [c for c in categories if c not in known]
    if unknown:
        raise InvalidParameter(f"unknown issue categories {', '.join(unknown)}; known: "
                               f"{', '.join(sorted(known))}",
                               zh=f"未知的事件类别 {'、'.join(unknown)}")
    return categories


def list_departments(session: Session) -> list[dict]:
    """Every department with its categories, region and number of active staff, by code."""
    rows = session.execute(text("""
        SELECT d.code, d.name, d.categories, r.code AS region_code, r.name AS region_name, d.active,
               (SELECT count(*) FROM users u WHERE u.department_id = d.id AND u.active) AS staff
          FROM departments d LEFT JOIN regions r ON r.id = d.region_id ORDER BY d.code""")).mappings()
    return [dict(r) for r in rows]
