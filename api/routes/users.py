"""People administration over HTTP: accounts (admins only), departments (read by anyone logged
in, added by admins) and who held a grid when. Every change goes through
:mod:`gis.people.accounts`, which checks and audits it; the answers never hold a password hash,
and a generated initial password is answered once, to the admin who asked for it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CurrentActor, SessionDep, client_address
from gis.people import accounts
from gis.people.actors import Actor, require_role
from gis.rules import ROLE_NAMES, ROLES

router = APIRouter(prefix="/api/v1", tags=["people"])

Username = Annotated[str, Path(max_length=64, description="The account's username")]
_ROLE_HELP = "English or Chinese: " + ", ".join(f"{r}/{zh}" for r, (zh, _) in ROLE_NAMES.items())


# -- wire formats -----------------------------------------------------------------------------------
class UserPublic(BaseModel):
    id: int
    username: str
    display_name: str
    role: Literal[ROLES]
    role_zh: str
    phone: str | None
    grids: list[str] = Field(description="The grids held now (a worker's)")
    region_code: str | None
    region_name: str | None
    department: str | None = Field(description="The department's code (department staff)")
    department_name: str | None
    active: bool
    must_change_password: bool = Field(description="Logged in next with an initial password, "
                                                   "they may only change it")
    created_at: datetime


class UsersPublic(BaseModel):
    data: list[UserPublic]
    count: int


class UserCreated(UserPublic):
    initial_password: str | None = Field(
        None, description="The generated initial password when none was sent: shown this once")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserCreate(_Body):
    username: str = Field(max_length=64, description="2-64 letters, digits, '.', '_' or '-'")
    display_name: str = Field(max_length=100, description="姓名")
    role: str = Field(max_length=16, description=_ROLE_HELP)
    phone: str | None = Field(None, max_length=32)
    grids: list[Annotated[str, Field(max_length=32)]] | None = Field(
        None, max_length=1000, description="Grid codes a worker holds")
    region: str | None = Field(None, max_length=100, description="Region code or name (leader, dispatcher)")
    department: str | None = Field(None, max_length=100, description="Department code (department staff)")
    password: str | None = Field(None, max_length=256, description="An initial password (changed at "
                                                                   "first log-in); generated if absent")


class UserUpdate(_Body):
    """Fields sent are changed; ``null`` clears phone, grids, region and department."""

    display_name: str | None = Field(None, max_length=100)
    role: str | None = Field(None, max_length=16, description=_ROLE_HELP)
    phone: str | None = Field(None, max_length=32)
    grids: list[Annotated[str, Field(max_length=32)]] | None = Field(None, max_length=1000)
    region: str | None = Field(None, max_length=100)
    department: str | None = Field(None, max_length=100)

    def person(self, username: str) -> accounts.Person:
        sent = self.model_dump(exclude_unset=True)
        sent |= {k: "" for k in ("phone", "region", "department") if k in sent and sent[k] is None}
        grids = tuple(sent.pop("grids") or ()) if "grids" in sent else None
        return accounts.Person(username, grids=grids, **sent)


class PasswordReset(_Body):
    password: str | None = Field(None, max_length=256, description="Generated if absent")


class PasswordResetDone(BaseModel):
    username: str
    must_change_password: bool
    initial_password: str | None = Field(None, description="The generated password: shown this once")


class DepartmentPublic(BaseModel):
    code: str
    name: str
    categories: list[str] = Field(description="Issue categories it handles")
    region_code: str | None
    region_name: str | None
    active: bool
    staff: int = Field(description="Active staff accounts")


class DepartmentsPublic(BaseModel):
    data: list[DepartmentPublic]
    count: int


class DepartmentCreate(_Body):
    code: str = Field(max_length=32)
    name: str = Field(max_length=100)
    categories: list[Annotated[str, Field(max_length=32)]] = Field(default_factory=list, max_length=200)
    region: str | None = Field(None, max_length=100, description="Region code or name it serves")


class GridAssignmentPublic(BaseModel):
    grid_code: str
    username: str
    display_name: str
    valid_from: datetime
    valid_to: datetime | None = Field(description="null: holds it now")


class GridAssignmentsPublic(BaseModel):
    data: list[GridAssignmentPublic]
    count: int


def _public(row: dict) -> dict:
    return row | {"role_zh": ROLE_NAMES[row["role"]][0]}


def _admin(actor: Actor) -> None:
    require_role(actor, "admin")


# -- accounts ---------------------------------------------------------------------------------------
@router.get("/users", summary="Every account, with role, grids, region and department (admins)")
def list_users(session: SessionDep, actor: CurrentActor) -> UsersPublic:
    _admin(actor)
    rows = accounts.list_users(session)
    return UsersPublic(data=[_public(r) for r in rows], count=len(rows))


@router.post("/users", status_code=201, summary="Add an account (admins); its password is initial")
def create_user(request: Request, session: SessionDep, actor: CurrentActor,
                body: UserCreate) -> UserCreated:
    _admin(actor)
    policy = request.app.state.settings.password_policy()
    generated = policy.generate() if body.password is None else None
    person = accounts.Person(body.username, body.display_name, body.role, phone=body.phone,
                             grids=tuple(body.grids) if body.grids is not None else None,
                             region=body.region, department=body.department,
                             password=body.password if generated is None else generated)
    accounts.save_person(session, person, by=actor.username, address=client_address(request),
                         policy=policy, create=True)
    session.commit()
    return UserCreated(**_public(accounts.get_user(session, body.username.strip())),
                       initial_password=generated)


@router.get("/users/assignments", summary="Who held a grid, from when to when "
                                          "(admins; leaders and dispatchers in their region)")
def grid_assignments(session: SessionDep, actor: CurrentActor,
                     grid: Annotated[str, Query(max_length=32, description="Grid code")]) -> GridAssignmentsPublic:
    rows = accounts.assignment_history(session, actor, grid)
    return GridAssignmentsPublic(data=rows, count=len(rows))


@router.get("/users/{username}", summary="One account (admins)")
def get_user(session: SessionDep, actor: CurrentActor, username: Username) -> UserPublic:
    _admin(actor)
    return UserPublic(**_public(accounts.get_user(session, username)))


@router.patch("/users/{username}", summary="Change an account's name, role, phone, grids, region "
                                           "or department (admins; grid history kept)")
def update_user(request: Request, session: SessionDep, actor: CurrentActor, username: Username,
                body: UserUpdate) -> UserPublic:
    _admin(actor)
    accounts.save_person(session, body.person(username), by=actor.username,
                         address=client_address(request), create=False)
    session.commit()
    return UserPublic(**_public(accounts.get_user(session, username)))


def _set_active(request: Request, session, actor: Actor, username: str, active: bool) -> UserPublic:
    _admin(actor)
    accounts.set_active(session, username, active, by=actor.username, address=client_address(request))
    session.commit()
    return UserPublic(**_public(accounts.get_user(session, username)))


@router.post("/users/{username}/disable", summary="Disable an account: its sessions end, its grids "
                                                  "are handed back (admins)")
def disable_user(request: Request, session: SessionDep, actor: CurrentActor, username: Username) -> UserPublic:
    return _set_active(request, session, actor, username, False)


@router.post("/users/{username}/enable", summary="Enable an account again (admins)")
def enable_user(request: Request, session: SessionDep, actor: CurrentActor, username: Username) -> UserPublic:
    return _set_active(request, session, actor, username, True)


@router.post("/users/{username}/password", summary="Set an initial password (admins): the user "
                                                   "must change it at the next log-in; sessions end")
def reset_password(request: Request, session: SessionDep, actor: CurrentActor, username: Username,
                   body: PasswordReset | None = None) -> PasswordResetDone:
    _admin(actor)
    policy = request.app.state.settings.password_policy()
    sent = body.password if body is not None else None
    password = sent if sent is not None else policy.generate()
    accounts.set_password(session, username, password, by=actor.username,
                          address=client_address(request), policy=policy)
    session.commit()
    return PasswordResetDone(username=username, must_change_password=True,
                             initial_password=password if sent is None else None)


# -- departments ------------------------------------------------------------------------------------
@router.get("/departments", summary="Departments cases are dispatched to (专业部门)")
def list_departments(session: SessionDep, actor: CurrentActor) -> DepartmentsPublic:
    rows = accounts.list_departments(session)
    return DepartmentsPublic(data=rows, count=len(rows))


@router.post("/departments", status_code=201, summary="Add a department (admins)")
def create_department(request: Request, session: SessionDep, actor: CurrentActor,
                      body: DepartmentCreate) -> DepartmentPublic:
    _admin(actor)
    accounts.save_department(session, body.code, body.name, body.categories, body.region,
                             by=actor.username, address=client_address(request), create=True)
    session.commit()
    code = body.code.strip()
    return DepartmentPublic(**next(d for d in accounts.list_departments(session) if d["code"] == code))
