from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from api.deps import CurrentActor, SessionDep
from api.errors import LocalizedHTTPException
from api.security import create_token, verify_password
from gis.people.actors import load_actor

router = APIRouter(prefix="/api/v1", tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class MePublic(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    grids: list[str]


@router.post("/auth/token", summary="Log in (OAuth2 password flow) and get a bearer token")
def login(request: Request, session: SessionDep,
          form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> Token:
    wait = request.app.state.login_throttle.retry_after(
        request.client.host if request.client else "?", form.username)
    if wait is not None:
        raise LocalizedHTTPException(429, f"Too many log-in attempts; try again in {wait} s.",
                                     zh=f"登录尝试次数过多，请 {wait} 秒后再试。",
                                     headers={"Retry-After": str(wait)})
    found = load_actor(session, form.username)
    if not verify_password(form.password, found[1] if found else None):
        raise LocalizedHTTPException(401, "Wrong username or password.", zh="用户名或密码错误。",
                                     headers={"WWW-Authenticate": "Bearer"})
    settings = request.app.state.settings
    ttl = timedelta(minutes=settings.token_ttl_minutes)
    token = create_token(found[0].username, found[0].role, settings.signing_secret(), ttl)
    return Token(access_token=token, expires_in=int(ttl.total_seconds()))


@router.get("/me", summary="Who the token belongs to, with their role and grids")
def me(actor: CurrentActor) -> MePublic:
    return MePublic(id=actor.id, username=actor.username, display_name=actor.display_name,
                    role=actor.role, grids=sorted(actor.grid_codes))
