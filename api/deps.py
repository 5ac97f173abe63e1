"""FastAPI dependencies: the database session and parsed query parameters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from api.errors import LocalizedHTTPException
from api.security import read_token
from gis.people.actors import Actor, load_actor
from gis.queries.filters import BBox


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def parse_bbox(
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy in WGS84 lon/lat",
                                      examples=["112.85,36.83,112.87,36.85"])] = None,
) -> BBox | None:
    return BBox.parse(bbox) if bbox else None


BBoxDep = Annotated[BBox | None, Depends(parse_bbox)]
Limit = Annotated[int, Query(ge=1, le=10_000, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=2_000_000_000, description="Items to skip")]


_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def optional_actor(request: Request, session: SessionDep,
                   token: Annotated[str | None, Depends(_bearer)]) -> Actor | None:
    """The caller when a token is sent; a bad or expired token is 401, not anonymous."""
    if token is None:
        return None
    username = read_token(token, request.app.state.settings.signing_secret())
    found = load_actor(session, username) if username else None
    if found is None:
        raise LocalizedHTTPException(401, "The access token is invalid or expired; log in again.",
                                     zh="登录凭证无效或已过期，请重新登录。",
                                     headers={"WWW-Authenticate": "Bearer"})
    return found[0]


async def current_actor(actor: Annotated[Actor | None, Depends(optional_actor)]) -> Actor:
    # async: no I/O here, so FastAPI need not hand it to a worker thread
    if actor is None:
        raise LocalizedHTTPException(401, "Log in first: this needs a bearer token from /api/v1/auth/token.",
                                     zh="请先登录：此操作需要登录凭证（/api/v1/auth/token）。",
                                     headers={"WWW-Authenticate": "Bearer"})
    return actor


OptionalActor = Annotated[Actor | None, Depends(optional_actor)]
CurrentActor = Annotated[Actor, Depends(current_actor)]
