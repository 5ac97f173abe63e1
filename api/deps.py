"""FastAPI dependencies: the database sessions, parsed query parameters, and who is calling.

Two sessions: :data:`SessionDep` on the primary, for every write and ordinary read, and
:data:`ReadSessionDep` for the heavy reads (statistics, map pages, the dashboard, tiles, exports),
which with ``GRIDMAP_READ_DATABASE_URL`` runs read-only on the standby, or on the primary when
the caller's own last write has not reached the standby (``gis.db.replica``; the write's WAL
position comes back in :data:`OWN_WRITE_COOKIE`, or the :data:`OWN_WRITE_HEADER` header, set by
``api.own_writes``). A route that reads on the one and writes on the other (an audited export)
takes both; without a read database both are the same session.

Who is calling (docs/ARCHITECTURE.md, "People and scopes"), in this order:
1. ``Authorization: Bearer <token>``: API clients and the tablet app;
2. ``Authorization: Basic``: GIS desktops (QGIS, GDAL's OAPIF driver), the same password checks
   and lock-out as the log-in; a success is remembered by this process for a few minutes so a
   map's hundred tile requests do not each pay for argon2;
3. the ``gridmap_session`` cookie the log-in page sets, for pages and their scripts. A state
   changing request authenticated by the cookie must carry the session's CSRF token (the
   ``X-CSRF-Token`` header, or a ``csrf_token`` form field).
A bad bearer token or Basic password is 401; a dead cookie is no log-in (pages send the caller to
``/login``). Case data needs a caller (:data:`Reader`) unless ``GRIDMAP_PUBLIC_READ``; a caller who
logged in with an initial password may only change it (:data:`PendingActor`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote

from anyio import from_thread
from fastapi import Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from api.errors import LocalizedHTTPException
from gis.db.replica import valid_lsn
from gis.errors import AccountLocked, Forbidden, PasswordChangeRequired
from gis.people import audit, sessions
from gis.people.actors import Actor, load_actor_by_id
from gis.queries.filters import BBox

SESSION_COOKIE = "gridmap_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OWN_WRITE_COOKIE = "gridmap_written"  # the primary's WAL position after the caller's last write
OWN_WRITE_HEADER = "X-GridMap-Read-After"  # the same, for clients that keep no cookies


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session per request. Made on the event loop (no I/O); closed there too when it holds no
    connection (the request committed or never used the database), else in the thread pool (a
    rollback). A sync generator would cost two thread-pool hops per request."""
    session = request.app.state.sessions()
    try:
        yield session
    finally:
        if session.get_transaction() is None:
            session.close()
        else:
            await _in_thread(session.close)


SessionDep = Annotated[Session, Depends(get_session)]


def get_read_session(request: Request, session: SessionDep) -> Iterator[Session]:
    """The session of a heavy read: the request's own (primary) one unless the app has a read
    database; else a read-only one that :class:`gis.db.replica.ReadRouter` chooses."""
    router = request.app.state.read_router
    if router is None:
        yield session
        return
    read, _ = router.session(own_write_lsn(request))
    with read:
        yield read


def own_write_lsn(request: Request) -> str | None:
    """The WAL position of the caller's last write, as the caller sends it back (or None)."""
    return valid_lsn(request.headers.get(OWN_WRITE_HEADER)
                     or request.cookies.get(OWN_WRITE_COOKIE))


ReadSessionDep = Annotated[Session, Depends(get_read_session)]


def parse_bbox(
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy in WGS84 lon/lat",
                                      examples=["112.85,36.83,112.87,36.85"])] = None,
) -> BBox | None:
    return BBox.parse(bbox) if bbox else None


BBoxDep = Annotated[BBox | None, Depends(parse_bbox)]
Limit = Annotated[int, Query(ge=1, le=10_000, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=2_000_000_000, description="Items to skip")]
# A case's id in a path: a PostgreSQL integer, so a larger one is a 422, not a database error.
IssueId = Annotated[int, Path(ge=1, le=2_147_483_647, description="Issue id")]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "?"


# -- errors that mean "log in" ---------------------------------------------------------------------
def unauthorized(en: str, zh: str) -> LocalizedHTTPException:
    return LocalizedHTTPException(401, en, zh=zh, headers={"WWW-Authenticate": 'Bearer, Basic realm="GridMap"'})


LOGIN_PAGE = "/login"
PASSWORD_PAGE = "/account/password"


class LoginRedirect(Exception):
    """A page asked for by someone not logged in: answered with a redirect to /login?next=…
    (or, for someone still holding an initial password, to the password page ``to``)."""

    def __init__(self, next_url: str, to: str = LOGIN_PAGE):
        self.next_url = next_url
        self.location = login_url(next_url, to)


def login_url(next_url: str, to: str = LOGIN_PAGE) -> str:
    return f"{to}?next=" + quote(next_url, safe="/")


# -- CSRF -----------------------------------------------------------------------------------------
def csrf_token(request: Request, session_id: int) -> str:
    """The token a page's forms and scripts send back: bound to the session, keyed by the secret."""
    secret = request.app.state.settings.signing_secret().encode()
    return hmac.new(secret, f"csrf:{session_id}".encode(), hashlib.sha256).hexdigest()[:40]


class CsrfFailed(Forbidden):
    code = "csrf_failed"


async def _check_csrf(request: Request, actor: Actor) -> None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        sent = (await request.form()).get(CSRF_FIELD)  # FastAPI has read and kept the form already
    if not sent or not hmac.compare_digest(str(sent), csrf_token(request, actor.session_id or 0)):
        raise CsrfFailed("this change came with the session cookie but without its CSRF token; "
                         "reload the page and try again",
                         zh="该修改请求携带了登录 Cookie 但缺少 CSRF 令牌；请刷新页面后重试")


# -- HTTP Basic ---------------------------------------------------------------------------------
class BasicCache:
    """Basic credentials this process verified lately: digest -> (user id, when verified). An
    entry is good for ``ttl_s`` and only while the user's sessions started before it stay valid
    (a new password or a disabled account ends it at once)."""

    def __init__(self, ttl_s: float = 300.0):
        self.ttl_s = ttl_s
        self._seen: dict[str, tuple[int, float, datetime]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def digest(username: str, password: str) -> str:
        return hashlib.sha256(f"{username}\0{password}".encode()).hexdigest()

    def get(self, key: str) -> tuple[int, datetime] | None:
        with self._lock:
            hit = self._seen.get(key)
        if hit is None or time.monotonic() - hit[1] > self.ttl_s:
            return None
        return hit[0], hit[2]

    def put(self, key: str, user_id: int) -> None:
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen.clear()
            self._seen[key] = (user_id, time.monotonic(), datetime.now(UTC))


def _basic_actor(request: Request, session: Session, encoded: str) -> Actor:
    try:
        username, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise unauthorized("The Basic credentials are malformed.", "Basic 认证信息格式错误。") from exc
    cache: BasicCache = request.app.state.basic_cache
    key = cache.digest(username, password)
    hit = cache.get(key)
    if hit is not None:
        actor = load_actor_by_id(session, hit[0])
        valid_after = session.execute(text("SELECT sessions_valid_after, must_change_password "
                                           "FROM users WHERE id = :i"), {"i": hit[0]}).first()
        if actor is not None and valid_after is not None and valid_after[0] <= hit[1] \
                and not valid_after[1]:
            return actor
    outcome = sessions.check_password(session, username, password, address=client_address(request))
    if outcome.error is not None:
        session.commit()  # the failure is counted and audited although the request fails
        if isinstance(outcome.error, AccountLocked):
            raise outcome.error
        raise unauthorized("Wrong username or password.", "用户名或密码错误。")
    row = session.execute(text("SELECT id, must_change_password FROM users WHERE username = :u"),
                          {"u": username}).one()
    if row.must_change_password:
        raise PasswordChangeRequired(
            "this account still has its initial password; log in on the web page and set your "
            "own before using it from a GIS desktop",
            zh="该账号仍在使用初始密码；请先在网页登录并修改密码，再在 GIS 软件中使用")
    audit.record(session, "login", username=username, address=client_address(request),
                 detail={"kind": "basic"})
    session.commit()
    cache.put(key, row.id)
    actor = load_actor_by_id(session, row.id)
    assert actor is not None
    return actor


# -- the caller -----------------------------------------------------------------------------------
def _authenticate(request: Request, session: Session) -> tuple[Actor | None, str | None]:
    """(actor, how): how is "bearer", "basic" or "cookie"; (None, None) for no log-in."""
    policy = request.app.state.session_policy
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        actor, touched = sessions.resolve(session, credentials.strip(), policy)
        if actor is None:
            raise unauthorized("The access token is invalid, expired or ended; log in again.",
                               "登录凭证无效、已过期或已失效，请重新登录。")
        if touched:
            session.commit()
        return actor, "bearer"
    if scheme.lower() == "basic" and credentials.strip():
        return _basic_actor(request, session, credentials.strip()), "basic"
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        actor, touched = sessions.resolve(session, cookie, policy)
        if touched:
            session.commit()
        if actor is not None:
            return actor, "cookie"
    return None, None


async def _caller(request: Request, session: SessionDep) -> Actor | None:
    """The caller, any session state; CSRF checked for cookie-borne changes; writes audited."""
    actor, how = await _in_thread(_authenticate, request, session)
    _note_caller(request, session, actor, how)
    if actor is not None and how == "cookie" and request.method not in SAFE_METHODS:
        await _check_csrf(request, actor)
    return actor


def _note_caller(request: Request, session: Session, actor: Actor | None, how: str | None) -> None:
    request.state.actor = actor
    request.state.auth_scheme = how  # "bearer", "basic", "cookie" or None
    if actor is not None and request.method not in SAFE_METHODS:
        session.info["audit_write"] = {"username": actor.username, "address": client_address(request),
                                       "target": audit_target(request)}


def audit_target(request: Request) -> str:
    """What a write's audit entry says was asked: the method and the path, as ``request.url``
    gives it (``?``, ``#`` and ``\\`` escaped), read from the scope without building the URL (the
    intake's per-report cost)."""
    path = request.scope["path"]
    if "?" in path or "#" in path or "\\" in path:
        path = path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
    return f"{request.scope['method']} {path}"


def current_actor_here(request: Request, session: Session) -> Actor:
    """What :data:`CurrentActor` gives, checked on ``session`` in a thread-pool hop (the
    intake's callers who come without a bearer token: :mod:`api.intake`)."""
    actor, how = _authenticate(request, session)
    _note_caller(request, session, actor, how)
    if actor is not None and how == "cookie" and request.method not in SAFE_METHODS:
        from_thread.run(_check_csrf, request, actor)  # rare here: pages post forms elsewhere
    return _own_password(_logged_in(actor))


class ActorInEndpointRoute(APIRoute):
    """A route whose endpoint authenticates its caller itself (the intake: :mod:`api.intake`,
    which checks bearer tokens per batch). FastAPI validates the body and headers before the
    endpoint runs; when it refuses them (422) the caller is checked first, by the intake the
    request's dependency gave (``request.state.intake``), and a 401 or 403 wins, as on every
    route that takes :data:`CurrentActor`."""

    def get_route_handler(self):
        handler = self.request_handler()

        async def caller_first(request: Request):
            try:
                return await handler(request)
            except RequestValidationError:
                intake = getattr(request.state, "intake", None) or request.app.state.intake
                await intake.check_caller(request)
                raise

        return caller_first

    def request_handler(self):
        """The handler whose 422s :meth:`get_route_handler` answers with a 401 or 403 first:
        FastAPI's own."""
        return super().get_route_handler()


async def _in_thread(fn, *args):
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)


async def pending_actor(actor: Annotated[Actor | None, Depends(_caller)]) -> Actor:
    """A logged-in caller, even one who must still change an initial password."""
    return _logged_in(actor)


async def current_actor(actor: Annotated[Actor, Depends(pending_actor)]) -> Actor:
    return _own_password(actor)


def _logged_in(actor: Actor | None) -> Actor:
    if actor is None:
        raise unauthorized("Log in first: this needs a bearer token from /api/v1/auth/token.",
                           "请先登录：此操作需要登录凭证（/api/v1/auth/token）。")
    return actor


def _own_password(actor: Actor) -> Actor:
    if actor.password_change_only:
        raise PasswordChangeRequired(
            "you logged in with an initial password: set your own with POST /api/v1/me/password "
            '({"old_password", "new_password"}) first',
            zh="您使用的是初始密码：请先通过 POST /api/v1/me/password 设置自己的密码")
    return actor


async def optional_actor(actor: Annotated[Actor | None, Depends(_caller)]) -> Actor | None:
    """The caller if logged in (with their own password), else None."""
    if actor is not None and actor.password_change_only:
        return await current_actor(actor)
    return actor


async def reader(request: Request, actor: Annotated[Actor | None, Depends(optional_actor)]) -> Actor | None:
    """Who reads case data: a logged-in caller; None (anonymous, personal data masked) only
    where ``GRIDMAP_PUBLIC_READ`` opens a public read."""
    return require_reader(request, actor)


def require_reader(request: Request, actor: Actor | None) -> Actor | None:
    """:func:`reader` for doors whose parameters decide whether case data is asked for (an OGC
    collection, a tile layer): they take :data:`OptionalActor` and call this when it is."""
    if actor is None and not request.app.state.settings.public_read:
        raise unauthorized("Log in first: case data is only for logged-in users.",
                           "请先登录：事件数据仅对登录用户开放。")
    return actor


def _page_target(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


async def page_reader(request: Request,
                      actor: Annotated[Actor | None, Depends(_caller)]) -> Actor | None:
    """As :func:`reader`, for HTML pages: the anonymous are sent to the log-in page, and a user
    who must still change an initial password to the password page."""
    if actor is not None and actor.password_change_only:
        raise LoginRedirect(_page_target(request), to=PASSWORD_PAGE)
    if actor is None and not request.app.state.settings.public_read:
        raise LoginRedirect(_page_target(request))
    return actor


async def page_actor(request: Request,
                     actor: Annotated[Actor | None, Depends(page_reader)]) -> Actor:
    """A logged-in user with their own password, for pages that are never public (the admin's)."""
    if actor is None:
        raise LoginRedirect(_page_target(request))
    return actor


async def pending_page_actor(request: Request,
                             actor: Annotated[Actor | None, Depends(_caller)]) -> Actor:
    """A logged-in user, even one who must still change an initial password (the password page)."""
    if actor is None:
        raise LoginRedirect(_page_target(request))
    return actor


PendingActor = Annotated[Actor, Depends(pending_actor)]
CurrentActor = Annotated[Actor, Depends(current_actor)]
OptionalActor = Annotated[Actor | None, Depends(optional_actor)]
Reader = Annotated[Actor | None, Depends(reader)]
PageReader = Annotated[Actor | None, Depends(page_reader)]
PageActor = Annotated[Actor, Depends(page_actor)]
PendingPageActor = Annotated[Actor, Depends(pending_page_actor)]
Caller = Annotated[Actor | None, Depends(_caller)]  # anyone, in any session state (log-out)


# -- every write is audited, in the write's own transaction -----------------------------------------
@event.listens_for(Session, "before_commit")
def _audit_write(session: Session) -> None:
    entry = session.info.pop("audit_write", None)
    if entry is not None:
        audit.record(session, "write", **entry)
