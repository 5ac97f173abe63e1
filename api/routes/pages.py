"""GridMap's own pages: log-in and log-out, the password change, and the admin's user page.

They work without JavaScript (plain form posts) and in Chinese unless ``?lang=en``.

- ``/login`` starts a page session (:func:`gis.people.sessions.log_in`, ``kind="page"``, with
  its lock-out) and sets the ``gridmap_session`` cookie
  (:func:`api.pages.routing.set_session_cookie`), then goes on to ``next`` (a path on this site
  only). The form itself is protected by a
  double-submit cookie (``gridmap_csrf``, compared with a hidden field in constant time), since
  there is no session yet to bind a token to; the throttle is the API log-in's. A failure is
  committed before the answer, so that it counts towards the lock-out and is audited.
- A user with an initial password is sent to ``/account/password`` and every page sends them
  there (:func:`api.deps.page_reader`) until they set their own.
- Every other form on these pages carries the session's CSRF token (checked by
  :mod:`api.deps`), and ``/admin/users`` is for admins only; its changes go through
  :mod:`gis.people.accounts`, and an initial password it makes is shown once, in the answer.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import (
    PASSWORD_PAGE,
    Caller,
    PageActor,
    PendingPageActor,
    SessionDep,
    client_address,
    csrf_token,
    login_url,
)
from api.errors import LocalizedHTTPException, message_for, status_for
from api.pages.routing import (
    NO_STORE,
    PageRoute,
    clear_session_cookie,
    safe_next,
    set_session_cookie,
)
from api.pages.templating import render
from api.pages.words import page_lang, t
from api.routes.auth import raise_login_error, throttle
from gis.errors import Conflict, GridMapError, Unauthorized, WeakPassword
from gis.issues import notifications
from gis.people import accounts, directory, sessions
from gis.people.actors import Actor, require_role
from gis.rules import BEIJING, ROLES

router = APIRouter(tags=["pages"], route_class=PageRoute, include_in_schema=False)
LOGIN_CSRF_COOKIE = "gridmap_csrf"
_TOKEN = re.compile(r"^[A-Za-z0-9_\-]{43}$")  # secrets.token_urlsafe(32)
Next = Annotated[str | None, Query(max_length=2000, description="Where to go afterwards")]
LangParam = Annotated[str | None, Query(description="zh (default) or en")]
FormText = Annotated[str, Form(max_length=2000)]


# -- log-in and log-out ----------------------------------------------------------------------------
@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, actor: Caller, next: Next = None,
               lang: LangParam = None) -> Response:
    lang, target = page_lang(lang), safe_next(next)
    if actor is not None and actor.password_change_only:
        return RedirectResponse(f"{login_url(target, PASSWORD_PAGE)}&lang={lang}", status_code=303)
    if actor is not None:
        return RedirectResponse(target, status_code=303)
    return _login_form(request, lang, target)


@router.post("/login")
def log_in(request: Request, session: SessionDep,
           username: Annotated[str, Form(max_length=256)] = "",
           password: Annotated[str, Form(max_length=256)] = "",
           sent_token: Annotated[str, Form(alias="csrf_token", max_length=100)] = "",
           next_url: Annotated[str, Form(alias="next", max_length=2000)] = "",
           lang: Annotated[str, Form(max_length=8)] = "") -> Response:
    lang, target, username = page_lang(lang), safe_next(next_url), username.strip()
    if not _login_form_is_ours(request, sent_token):
        return _login_form(request, lang, target, username=username, message=t("stale_form", lang),
                           status=403, fresh=True)
    try:
        throttle(request, username)
        policy = request.app.state.session_policy
        outcome = sessions.log_in(session, username, password, kind="page",
                                  address=client_address(request), policy=policy)
        session.commit()  # a failure is counted and audited although the answer is a refusal
        if outcome.error is not None:
            raise_login_error(outcome.error)
    except LocalizedHTTPException as refused:
        headers = {k: v for k, v in (refused.headers or {}).items() if k.lower() == "retry-after"}
        message = refused.zh if lang == "zh" else str(refused.detail)
        return _login_form(request, lang, target, username=username, status=refused.status_code,
                           message=message, headers=headers)
    started = outcome.started
    location = (f"{login_url(target, PASSWORD_PAGE)}&lang={lang}"
                if started.password_change_required else target)
    response = RedirectResponse(location, status_code=303)
    set_session_cookie(request, response, started.token, policy.ttl_minutes * 60)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


def _login_form_is_ours(request: Request, sent: str) -> bool:
    """The double-submit check: the hidden field equals the cookie set with the form."""
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return bool(_TOKEN.match(cookie)) and hmac.compare_digest(cookie.encode(), sent.encode())


def _login_form(request: Request, lang: str, target: str, *, username: str = "",
                message: str | None = None, status: int = 200, headers: dict | None = None,
                fresh: bool = False) -> HTMLResponse:
    token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if fresh or not _TOKEN.match(token):
        token = secrets.token_urlsafe(32)
    html = render("login.html", lang=lang, csrf=token, next=target, username=username,
                  message=message)
    response = HTMLResponse(html, status_code=status, headers=NO_STORE | (headers or {}))
    response.set_cookie(LOGIN_CSRF_COOKIE, token, path="/login", httponly=True, samesite="lax",
                        secure=request.url.scheme == "https")
    return response


@router.post("/logout")
def log_out(request: Request, session: SessionDep, actor: Caller,
            lang: Annotated[str, Form(max_length=8)] = "") -> Response:
    """End the session (the CSRF field is checked by :mod:`api.deps`) and forget the cookie."""
    if actor is not None:
        sessions.log_out(session, actor, address=client_address(request))
        session.commit()
    response = RedirectResponse(f"/login?lang={page_lang(lang)}", status_code=303)
    clear_session_cookie(request, response)
    return response


# -- the password change ---------------------------------------------------------------------------
@router.get(PASSWORD_PAGE, response_class=HTMLResponse)
def password_page(request: Request, actor: PendingPageActor, next: Next = None,
                  lang: LangParam = None) -> HTMLResponse:
    return _password_form(request, actor, page_lang(lang), safe_next(next))


@router.post(PASSWORD_PAGE)
def change_password(request: Request, session: SessionDep, actor: PendingPageActor,
                    old_password: Annotated[str, Form(max_length=256)] = "",
                    new_password: Annotated[str, Form(max_length=256)] = "",
                    confirm_password: Annotated[str, Form(max_length=256)] = "",
                    next_url: Annotated[str, Form(alias="next", max_length=2000)] = "",
                    lang: Annotated[str, Form(max_length=8)] = "") -> Response:
    lang, target = page_lang(lang), safe_next(next_url)
    if new_password != confirm_password:
        return _password_form(request, actor, lang, target, t("passwords_differ", lang), 422)
    settings, policy = request.app.state.settings, request.app.state.session_policy
    try:
        started = sessions.change_own_password(
            session, actor, old_password, new_password, password_policy=settings.password_policy(),
            session_policy=policy, kind="page", address=client_address(request))
    except (Unauthorized, WeakPassword) as refused:
        session.rollback()
        return _password_form(request, actor, lang, target, message_for(refused, lang),
                              status_for(refused))
    session.commit()
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(request, response, started.token, policy.ttl_minutes * 60)
    return response


def _password_form(request: Request, actor: Actor, lang: str, target: str,
                   message: str | None = None, status: int = 200) -> HTMLResponse:
    policy = request.app.state.settings.password_policy()
    rules = t("password_rules", lang, length=policy.min_length, classes=policy.min_classes)
    html = render("password.html", lang=lang, actor=actor, next=target, message=message,
                  csrf=csrf_token(request, actor.session_id or 0), rules=rules)
    return HTMLResponse(html, status_code=status, headers=NO_STORE)


# -- the admin's user page -------------------------------------------------------------------------
@dataclass(frozen=True)
class UserForm:
    """The user fields of the admin's forms, as sent (empty: none)."""

    display_name: str
    role: str
    phone: str
    grids: tuple[str, ...]
    region: str
    department: str
    lang: str

    def person(self, username: str, password: str | None = None) -> accounts.Person:
        return accounts.Person(username, self.display_name, self.role or None, self.phone,
                               self.grids, self.region, self.department, password)

    def shown(self, username: str) -> dict:
        """The fields as the add form shows them again after a refusal."""
        return {"username": username, "display_name": self.display_name, "role": self.role,
                "phone": self.phone, "grids": list(self.grids), "region_code": self.region,
                "department": self.department}


def user_form(display_name: Annotated[str, Form(max_length=100)] = "",
              role: Annotated[str, Form(max_length=32)] = "",
              phone: Annotated[str, Form(max_length=20)] = "", grids: FormText = "",
              region: Annotated[str, Form(max_length=100)] = "",
              department: Annotated[str, Form(max_length=100)] = "",
              lang: Annotated[str, Form(max_length=8)] = "") -> UserForm:
    codes = tuple(c for c in re.split(r"[\s,，、;；]+", grids) if c)
    return UserForm(display_name.strip(), role.strip(), phone.strip(), codes, region.strip(),
                    department.strip(), page_lang(lang))


UserFields = Annotated[UserForm, Depends(user_form)]
EMPTY_FORM = UserForm("", "worker", "", (), "", "", "zh").shown("")
LangField = Annotated[str, Form(max_length=8)]


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, session: SessionDep, actor: PageActor,
               lang: LangParam = None) -> HTMLResponse:
    require_role(actor, "admin")
    return _users_page(request, session, actor, page_lang(lang))


@router.post("/admin/users", response_class=HTMLResponse)
def add_user(request: Request, session: SessionDep, actor: PageActor, fields: UserFields,
             username: Annotated[str, Form(max_length=64)] = "") -> HTMLResponse:
    require_role(actor, "admin")
    username, lang = username.strip(), fields.lang
    password = request.app.state.settings.password_policy().generate()
    return _admin_change(
        request, session, actor, lang,
        lambda: accounts.save_person(session, fields.person(username, password), create=True,
                                     **_by(request, actor)),
        notice=t("created", lang, username=username),
        one_time={"username": username, "password": password}, form=fields.shown(username))


@router.post("/admin/users/{username}", response_class=HTMLResponse)
def update_user(request: Request, session: SessionDep, actor: PageActor, username: str,
                fields: UserFields) -> HTMLResponse:
    require_role(actor, "admin")
    return _admin_change(
        request, session, actor, fields.lang,
        lambda: accounts.save_person(session, fields.person(username), create=False,
                                     **_by(request, actor)),
        notice=t("saved", fields.lang, username=username))


@router.post("/admin/users/{username}/active", response_class=HTMLResponse)
def set_active(request: Request, session: SessionDep, actor: PageActor, username: str,
               active: Annotated[bool, Form()], lang: LangField = "") -> HTMLResponse:
    require_role(actor, "admin")
    lang = page_lang(lang)

    def change() -> None:
        if not active and username == actor.username:
            raise Conflict("you cannot disable your own account", zh=t("not_yourself", "zh"))
        accounts.set_active(session, username, active, by=actor.username,
                            address=client_address(request))

    notice = t("now_enabled" if active else "now_disabled", lang, username=username)
    return _admin_change(request, session, actor, lang, change, notice=notice)


@router.post("/admin/users/{username}/password", response_class=HTMLResponse)
def reset_password(request: Request, session: SessionDep, actor: PageActor, username: str,
                   lang: LangField = "") -> HTMLResponse:
    require_role(actor, "admin")
    lang = page_lang(lang)
    password = request.app.state.settings.password_policy().generate()
    return _admin_change(
        request, session, actor, lang,
        lambda: accounts.set_password(session, username, password, initial=True,
                                      **_by(request, actor)),
        notice=t("password_reset", lang, username=username),
        one_time={"username": username, "password": password})


def _by(request: Request, actor: Actor) -> dict:
    return {"by": actor.username, "address": client_address(request),
            "policy": request.app.state.settings.password_policy()}


def _admin_change(request: Request, session, actor: Actor, lang: str, change: Callable[[], object],
                  *, notice: str, one_time: dict | None = None,
                  form: dict | None = None) -> HTMLResponse:
    """Make the change and show the page again, saying what was done (or why not: the change
    is then rolled back and the add form keeps what was typed)."""
    try:
        change()
    except GridMapError as refused:
        if status_for(refused) >= 500:
            raise
        session.rollback()
        return _users_page(request, session, actor, lang, status=status_for(refused),
                           message=message_for(refused, lang), form=form)
    session.commit()
    return _users_page(request, session, actor, lang, notice=notice, one_time=one_time)


def _users_page(request: Request, session, actor: Actor, lang: str, *, status: int = 200,
                message: str | None = None, notice: str | None = None,
                one_time: dict | None = None, form: dict | None = None) -> HTMLResponse:
    departments = accounts.list_departments(session)
    html = render("users.html", lang=lang, actor=actor,
                  csrf=csrf_token(request, actor.session_id or 0),
                  users=accounts.list_users(session), departments=departments,
                  department_names={d["code"]: d["name"] for d in departments},
                  regions=directory.regions(session), roles=ROLES, message=message, notice=notice,
                  one_time_password=one_time, form=form or EMPTY_FORM)
    return HTMLResponse(html, status_code=status, headers=NO_STORE)


# -- notifications ---------------------------------------------------------------------------------
@router.get("/notifications", response_class=HTMLResponse)
def notifications_page(request: Request, session: SessionDep, actor: PageActor,
                       lang: LangParam = None) -> HTMLResponse:
    """The caller's notifications, newest first, unread ones marked; a form marks them read."""
    lang = page_lang(lang)
    box = notifications.inbox(session, actor, limit=200)
    session.commit()  # late steps found while looking are notified once
    items = [n | {"local_at": n["at"].astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")}
             for n in box.items]
    html = render("notifications.html", lang=lang, actor=actor, unread=box.unread, items=items,
                  csrf=csrf_token(request, actor.session_id or 0))
    return HTMLResponse(html, headers=NO_STORE)


@router.post("/notifications/read")
def notifications_read(session: SessionDep, actor: PageActor,
                       lang: LangField = "") -> RedirectResponse:
    notifications.mark_read(session, actor)
    session.commit()
    return RedirectResponse(f"/notifications?lang={page_lang(lang)}", status_code=303)
