"""Log-in for API clients (OAuth2 password flow, an opaque bearer token), the caller's own
account, their password change and log-out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from api.deps import CurrentActor, PendingActor, SessionDep, client_address, csrf_token
from api.errors import LocalizedHTTPException
from gis.errors import AccountLocked
from gis.people import sessions
from gis.rules import ROLE_NAMES

router = APIRouter(prefix="/api/v1", tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    password_change_required: bool = Field(
        False, description="The password was an initial one: this token only allows "
                           "POST /api/v1/me/password until it is changed.")


class MePublic(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    role_zh: str
    grids: list[str]
    region_id: int | None
    department_id: int | None
    password_change_required: bool
    csrf_token: str | None = Field(description=(
        "The session's CSRF token, which a change sent with the session cookie must carry "
        "(X-CSRF-Token); null when the caller did not come with the cookie"))


class PasswordChange(BaseModel):
    old_password: str = Field(max_length=256)
    new_password: str = Field(max_length=256)


def throttle(request: Request, username: str) -> None:
    wait = request.app.state.login_throttle.retry_after(client_address(request), username)
    if wait is not None:
        raise LocalizedHTTPException(429, f"Too many log-in attempts; try again in {wait} s.",
                                     zh=f"登录尝试次数过多，请 {wait} 秒后再试。",
                                     headers={"Retry-After": str(wait)})


def raise_login_error(error: Exception) -> None:
    if isinstance(error, AccountLocked):
        from datetime import UTC, datetime

        wait = max(1, int((error.until - datetime.now(UTC)).total_seconds()))
        raise LocalizedHTTPException(423, str(error), zh=error.zh or str(error),
                                     headers={"Retry-After": str(wait)})
    raise LocalizedHTTPException(401, "Wrong username or password.", zh="用户名或密码错误。",
                                 headers={"WWW-Authenticate": "Bearer"})


@router.post("/auth/token", summary="Log in (OAuth2 password flow) and get a bearer token")
def login(request: Request, session: SessionDep,
          form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> Token:
    throttle(request, form.username)
    outcome = sessions.log_in(session, form.username, form.password, kind="token",
                              address=client_address(request), policy=request.app.state.session_policy)
    session.commit()  # a failure is counted and audited although the answer is an error
    if outcome.error is not None:
        raise_login_error(outcome.error)
    started = outcome.started
    return Token(access_token=started.token,
                 expires_in=request.app.state.session_policy.ttl_minutes * 60,
                 password_change_required=started.password_change_required)


@router.get("/me", summary="Who the token belongs to, with their role and scope")
def me(request: Request, actor: PendingActor) -> MePublic:
    by_cookie = getattr(request.state, "auth_scheme", None) == "cookie"
    return MePublic(id=actor.id, username=actor.username, display_name=actor.display_name,
                    role=actor.role, role_zh=ROLE_NAMES[actor.role][0], grids=sorted(actor.grid_codes),
                    region_id=actor.region_id, department_id=actor.department_id,
                    password_change_required=actor.password_change_only,
                    csrf_token=csrf_token(request, actor.session_id or 0) if by_cookie else None)


@router.post("/me/password", summary="Set your own password (ends your other sessions)")
def change_password(request: Request, session: SessionDep, actor: PendingActor,
                    body: PasswordChange) -> Token:
    settings = request.app.state.settings
    started = sessions.change_own_password(
        session, actor, body.old_password, body.new_password,
        password_policy=settings.password_policy(), session_policy=request.app.state.session_policy,
        kind="token", address=client_address(request))
    session.commit()
    return Token(access_token=started.token, expires_in=request.app.state.session_policy.ttl_minutes * 60)


@router.post("/auth/logout", status_code=204, summary="End this session (the token stops working)")
def logout(request: Request, session: SessionDep, actor: PendingActor) -> None:
    sessions.log_out(session, actor, address=client_address(request))
    session.commit()


__all__ = ["router", "CurrentActor"]
