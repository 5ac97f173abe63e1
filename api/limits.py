"""Request size limit and log-in rate limiting: HTTP concerns, so they live in the API layer."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import language_headers
from api.i18n import Language, preferred_language


def _language(headers: dict[bytes, bytes]) -> Language:
    """The refusal's language: worked out only when refusing (most requests are not)."""
    return preferred_language(headers.get(b"accept-language", b"").decode("latin-1"))


class BodySizeLimit:
    """Refuse bodies over ``max_bytes`` with 413, by Content-Length or while streaming; the
    paths matching a pattern of ``larger`` (a photo upload) have that pattern's limit instead."""

    def __init__(self, app: ASGIApp, max_bytes: int,
                 larger: Sequence[tuple[re.Pattern, int]] = ()):
        self.app = app
        self.max_bytes = max_bytes
        self.larger = tuple(larger)

    def limit_for(self, path: str) -> int:
        return next((n for pattern, n in self.larger if pattern.fullmatch(path)), self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        limit = self.limit_for(scope.get("path", ""))
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, _language(headers), limit)
            return
        if declared is not None and declared.isdigit() and b"transfer-encoding" not in headers:
            # The server reads no more of the body than its declared length (the next bytes
            # are the next request's): nothing left to count.
            await self.app(scope, receive, send)
            return
        seen = 0
        refused = started = False

        async def counting_receive() -> Message:
            # Past the limit we answer 413 ourselves and tell the app the client went away; the
            # app's own reply (if any) is dropped. Raising instead would let FastAPI turn it into 400.
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    refused = True
                    if not started:
                        await self._refuse(send, _language(headers), limit)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if not refused:
                started = started or message["type"] == "http.response.start"
                await send(message)

        await self.app(scope, counting_receive, guarded_send)

    async def _refuse(self, send: Send, lang: Language, limit: int) -> None:
        detail = (f"请求内容超过 {limit} 字节的上限。" if lang == "zh"
                  else f"The request body is larger than {limit} bytes.")
        body = json.dumps({"detail": detail, "code": "payload_too_large"},
                          ensure_ascii=False).encode()
        headers = {"content-type": "application/json", "content-length": str(len(body))}
        headers |= {k.lower(): v for k, v in language_headers(lang).items()}
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(k.encode(), v.encode()) for k, v in headers.items()]})
        await send({"type": "http.response.body", "body": body})


class LoginThrottle:
    """At most ``attempts`` log-ins per ``window_s`` for one (client address, username) pair.

    Kept in the process's memory: with several server processes each counts its own attempts,
    which still bounds password guessing to attempts x processes per window.
    """

    def __init__(self, attempts: int = 10, window_s: float = 60.0):
        self.attempts = attempts
        self.window_s = window_s
        self._seen: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str, username: str) -> int | None:
        """Record an attempt; seconds to wait when over the limit, else None."""
        now = time.monotonic()
        with self._lock:
            times = self._seen.setdefault((client, username.lower()), deque())
            while times and now - times[0] > self.window_s:
                times.popleft()
            if len(times) >= self.attempts:
                return int(self.window_s - (now - times[0])) + 1
            times.append(now)
            if len(self._seen) > 100_000:  # bound memory under a spray of usernames
                self._seen.clear()
            return None
