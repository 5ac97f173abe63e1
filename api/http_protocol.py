"""The HTTP protocol `gridmap serve` runs: uvicorn's httptools protocol, whose writes of one turn
of the event loop leave as one send.

uvicorn writes a response's status line and headers (``http.response.start``) and its body
(``http.response.body``) to the connection's transport separately, and each write is a send
of its own: two system calls and two TCP segments for the small JSON a report's answer is,
where the client reads and parses twice. Under the intake's load the two sends were 15% of a
server process's sampled time (11.1% the headers, 3.9% the body; bench/README.md, "Ninth
pass"). Here the connection's writes are held until the event loop's current turn ends and then
sent together: the headers and a body written in the same turn go as one send, as aiohttp's
server does for small responses.
A body streamed over many turns goes out turn by turn as before; nothing is held past the
turn it was written in, and a connection closed meanwhile gets its pending bytes first.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# What `gridmap serve` (and the tests' live server) give uvicorn as its HTTP protocol.
UVICORN_HTTP = "api.http_protocol:CoalescingHttpToolsProtocol"


class CoalescingTransport:
    """A connection's transport whose writes of one turn of ``loop`` go out as one write of the
    underlying ``transport``; everything else is the transport's own."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self.sends = 0  # writes of the underlying transport (tests)

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))  # held past the call: a copy the caller cannot change

    def writelines(self, chunks) -> None:
        for data in chunks:
            self.write(data)

    def flush(self) -> None:
        """Send what waits now (at the end of the turn, or before the connection ends)."""
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending = []
        if not self._transport.is_closing():
            self.sends += 1
            self._transport.write(data)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def __getattr__(self, name: str):
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a :class:`CoalescingTransport` (``uvicorn.run(http=...)``)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
