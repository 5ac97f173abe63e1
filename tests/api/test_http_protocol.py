"""api.http_protocol: a response's headers and body leave in one send, and nothing is lost,
reordered or held past its turn of the event loop: on a spy transport, and through a real
uvicorn server and HTTP client."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
import uvicorn
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from api.http_protocol import CoalescingTransport
from tests.api.live import serving


class SpyTransport:
    """What a transport was asked to do, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.calls.append(("close",))
        self.closing = True

    def abort(self) -> None:
        self.calls.append(("abort",))
        self.closing = True

    def write_eof(self) -> None:
        self.calls.append(("write_eof",))

    def get_write_buffer_size(self) -> int:
        return 7

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 1) if name == "peername" else default


@settings(max_examples=50, deadline=None)
@given(turns=st.lists(st.lists(st.binary(max_size=20), max_size=4), min_size=1, max_size=5))
def test_the_writes_of_a_turn_leave_as_one_send_in_order(turns):
    """Each turn's non-empty writes become one write of the transport, in order; nothing is
    held past its turn."""
    async def main():
        spy = SpyTransport()
        transport = CoalescingTransport(spy, asyncio.get_running_loop())
        for chunks in turns:
            for chunk in chunks:
                transport.write(chunk)
            await asyncio.sleep(0)  # the turn ends
            await asyncio.sleep(0)
        return spy.calls

    calls = asyncio.run(main())
    assert calls == [("write", b"".join(chunks)) for chunks in turns if b"".join(chunks)]


def test_closing_sends_what_waits_first_and_aborting_drops_it():
    async def main():
        loop = asyncio.get_running_loop()
        closed, aborted, gone = SpyTransport(), SpyTransport(), SpyTransport()
        one, two, three = (CoalescingTransport(t, loop) for t in (closed, aborted, gone))
        for t in (one, two, three):
            t.write(b"HTTP/1.1 200 OK\r\n\r\n")
            t.write(b"body")
        assert one.get_write_buffer_size() == 7 + 23  # the transport's own and what waits
        one.close()
        two.abort()
        gone.closing = True  # the connection went away before the turn ended
        await asyncio.sleep(0)
        return closed.calls, aborted.calls, gone.calls

    closed, aborted, gone = asyncio.run(main())
    assert closed == [("write", b"HTTP/1.1 200 OK\r\n\r\nbody"), ("close",)]
    assert aborted == [("abort",)]
    assert gone == []


def test_other_attributes_are_the_transports_own():
    async def main():
        transport = CoalescingTransport(SpyTransport(), asyncio.get_running_loop())
        transport.write(b"x")
        transport.write_eof()
        return transport

    transport = asyncio.run(main())
    assert transport.get_extra_info("peername") == ("127.0.0.1", 1)
    assert transport._transport.calls == [("write", b"x"), ("write_eof",)]


# -- through uvicorn ---------------------------------------------------------------------------
BIG = bytes(range(256)) * 4096  # 1 MiB


async def small(request):
    return JSONResponse({"报告": "ok", "n": 1})


async def big(request):
    return Response(BIG, media_type="application/octet-stream")


async def streamed(request):
    async def chunks():
        for n in range(5):
            await asyncio.sleep(0.01)  # each chunk in a turn of its own
            yield f"chunk {n}\n".encode()

    return StreamingResponse(chunks(), media_type="text/plain")


async def empty(request):
    return Response(status_code=204)


def serving_test_app():
    return serving(Starlette(routes=[Route("/small", small), Route("/big", big),
                                     Route("/streamed", streamed), Route("/empty", empty)]))


def _sends(server: uvicorn.Server) -> int:
    (protocol,) = server.server_state.connections
    return protocol.transport.sends


def test_a_small_answer_is_one_send_and_every_answer_arrives_whole():
    with serving_test_app() as (base, server), httpx.Client(base_url=base) as client:
        first = client.get("/small")
        assert first.json() == {"报告": "ok", "n": 1}
        assert _sends(server) == 1  # status line, headers and body together
        client.get("/small")
        assert _sends(server) == 2  # one more on the same connection
        assert client.get("/big").content == BIG
        lines = client.get("/streamed").text.splitlines()
        assert lines == [f"chunk {n}" for n in range(5)]
        assert client.get("/empty").status_code == 204
        assert client.head("/small").status_code == 200
        closing = client.get("/small", headers={"Connection": "close"})
        assert closing.json()["n"] == 1  # sent before the connection closed


@pytest.mark.parametrize("path", ["/small", "/streamed"])
def test_pipelined_requests_are_answered_in_order(path):
    """Two requests sent at once on one connection: both answers, complete, in order."""
    with serving_test_app() as (base, _):
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as conn:
            request = f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            conn.sendall(request + request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
            received = b""
            while chunk := conn.recv(65536):
                received += chunk
    assert received.count(b"HTTP/1.1 200 OK") == 2
    body = b"chunk 4" if path == "/streamed" else "报告".encode()
    assert received.count(body) == 2
