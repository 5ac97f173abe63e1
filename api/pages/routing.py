"""What every HTML page route shares: errors as a page for browsers, the session cookie, the
``next`` address after a log-in, and the per-reader parts added to a cached page.

Errors: a page route's domain errors, HTTP errors and invalid parameters are answered as an HTML
page to a browser (``Accept: text/html``), with the status and the message the error table gives
(:mod:`api.errors`), and as GridMap's JSON error to every other client. Log-in redirects are left
to the app's handler.

Cached pages (the maps) are the same for every reader of a scope, so they never hold a session's
CSRF token: :func:`personalise` adds it (``<meta name="csrf-token">``, which the pages' scripts
send back) and the bar with the user's name and the log-out form to each answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlsplit

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from markupsafe import escape
from starlette.exceptions import HTTPException

from api.deps import SESSION_COOKIE, csrf_token
from api.errors import language_headers, log_failure, message_for, status_for
from api.pages.templating import render
from api.pages.words import PageLang, page_lang, t
from gis.errors import GridMapError
from gis.people.actors import Actor

log = logging.getLogger("gridmap.api")
DEFAULT_NEXT = "/maps/overview"
NO_STORE = {"Cache-Control": "no-store"}


class PageRoute(APIRoute):
    """A route whose errors a browser gets as an HTML page (see the module's text)."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except (GridMapError, HTTPException, RequestValidationError) as exc:
                if not wants_html(request):
                    raise
                return error_page(request, exc)

        return page_handler


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def request_lang(request: Request) -> PageLang:
    return page_lang(request.query_params.get("lang"))


def error_page(request: Request, exc: Exception) -> HTMLResponse:
    status, lang = status_for(exc), request_lang(request)
    if status >= 500:
        log_failure(request, exc)
    title = t(f"error_{status}", lang) if f"error_{status}" in _TITLED else t("error_title", lang)
    actor = getattr(request.state, "actor", None)
    html = render("error.html", lang=lang, status=status, title=title,
                  message=message_for(exc, lang), actor=actor,
                  csrf=csrf_token(request, actor.session_id or 0) if actor else "")
    headers = (language_headers(lang) | {"Vary": "Accept"}
               | dict(getattr(exc, "headers", None) or {}) | NO_STORE)
    return HTMLResponse(html, status_code=status, headers=headers)


_TITLED = frozenset({"error_401", "error_403", "error_404", "error_422"})


# -- the session cookie ---------------------------------------------------------------------------
def set_session_cookie(request: Request, response: Response, token: str, max_age_s: int) -> None:
    """The page session: HttpOnly (scripts never read it), SameSite=Lax (no cross-site POST
    carries it), the whole site, Secure when the page came over HTTPS."""
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age_s, path="/", httponly=True,
                        samesite="lax", secure=request.url.scheme == "https")


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                           secure=request.url.scheme == "https")


def safe_next(value: str | None) -> str:
    """Where to go after a log-in: a path on this site only (``/maps/...``), never another
    site (``//evil.example``, ``https://...``, ``/\\evil.example``); otherwise the overview."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return DEFAULT_NEXT
    if any(c in value for c in "\\\r\n\t") or any(ord(c) < 32 for c in value):
        return DEFAULT_NEXT
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return DEFAULT_NEXT
    return value


# -- the per-reader parts of a cached page ---------------------------------------------------------
def personalise(page: str, request: Request, actor: Actor | None, lang: str) -> str:
    """``page`` with the CSRF token of ``actor``'s session in its head and the user bar (name,
    links, log-out; a log-in link for the anonymous) at the top of its body."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    token = csrf_token(request, actor.session_id or 0) if actor is not None else ""
    bar = render("_userbar.html", lang=lang, actor=actor, csrf=token, next=target)
    meta = f'<meta name="csrf-token" content="{escape(token)}">' if actor is not None else ""
    page = page.replace("<head>", f"<head>\n{meta}", 1) if meta else page
    return _after_body_tag(page, bar)


def _after_body_tag(page: str, html: str) -> str:
    start = page.find("<body")
    end = page.find(">", start) if start >= 0 else -1
    if end < 0:
        return page + html
    return page[:end + 1] + "\n" + html + page[end + 1:]
