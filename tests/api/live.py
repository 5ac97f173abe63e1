"""A real HTTP server (uvicorn in a thread, on a free loopback port) for third-party clients.

GDAL, OWSLib and the Open311 client speak HTTP to a URL, so an in-process TestClient will not do.
One server per test module: ``with live_server(app_database_url) as base: ...``, on the HTTP
protocol `gridmap serve` runs (api.http_protocol). It connects as
the application's role, as `gridmap serve` does (``app_database_url`` in tests/conftest.py), so
the tests through it also show that nothing the server does needs the schema owner's powers. Its
requests use connections of their own, so what they write is committed: a test that writes
through it does so under ``committed`` (tests/conftest.py), which deletes what was added.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from api.http_protocol import UVICORN_HTTP
from api.main import create_app
from tests.conftest import app_settings


@contextmanager
def live_server(app_database_url: str) -> Iterator[str]:
    with serving(create_app(app_settings(app_database_url))) as (base, _):
        yield base


@contextmanager
def serving(app) -> Iterator[tuple[str, uvicorn.Server]]:
    """``app`` served by uvicorn in a thread on a free loopback port, on the HTTP protocol
    `gridmap serve` runs; yields the base URL and the server, and stops it afterwards."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           http=UVICORN_HTTP))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        thread.join(timeout=10)
