"""A user reads their own writes, also when heavy reads go to a standby.

After a change succeeds (a request that is not GET, HEAD or OPTIONS, answered below 400: its
route committed before answering), the answer carries the primary's WAL position taken then, at
or past the change's commit: in the cookie :data:`api.deps.OWN_WRITE_COOKIE` (browsers, the
tablets' app) and in the header :data:`api.deps.OWN_WRITE_HEADER` (clients that keep no cookies
send it back themselves). A heavy read that brings it back is served by the standby only once the
standby has replayed that far (:func:`api.deps.get_read_session`). Installed only when the app
has a read database; it costs one short query on the primary per change.
"""

from __future__ import annotations

import logging

import anyio
from fastapi import Response
from sqlalchemy.exc import DBAPIError
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import OWN_WRITE_COOKIE, OWN_WRITE_HEADER, SAFE_METHODS
from gis.db.replica import primary_lsn
from gis.errors import DatabaseUnavailable

log = logging.getLogger("gridmap.replica")
# How long the position is kept: reads go to the primary while the standby has not replayed it,
# so this only bounds how far behind a standby may fall before a writer could miss their write.
OWN_WRITE_MAX_AGE_S = 3600


class OwnWrites:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return

        async def marking_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                lsn = await _position(scope["app"].state.engine)
                if lsn is not None:
                    headers = MutableHeaders(scope=message)
                    headers.append(OWN_WRITE_HEADER, lsn)
                    headers.append("set-cookie", _cookie(lsn, secure=scope["scheme"] == "https"))
            await send(message)

        await self.app(scope, receive, marking_send)


async def _position(engine) -> str | None:
    try:
        return await anyio.to_thread.run_sync(primary_lsn, engine)
    except (DatabaseUnavailable, DBAPIError) as exc:  # the change is made; only the marker is lost
        log.warning("the primary's WAL position could not be read after a change (%s)",
                    type(exc).__name__)
        return None


def _cookie(lsn: str, secure: bool) -> str:
    carrier = Response()
    carrier.set_cookie(OWN_WRITE_COOKIE, lsn, max_age=OWN_WRITE_MAX_AGE_S, path="/",
                       httponly=True, samesite="lax", secure=secure)
    return carrier.headers["set-cookie"]
