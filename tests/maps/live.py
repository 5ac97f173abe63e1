"""What the browser tests share: a live server (uvicorn on a free loopback port, the demo
database through the application's role) and Debian's Chromium driven by Playwright.

Needs Debian's chromium (``GRIDMAP_WITH_BROWSER=1 scripts/system-deps.sh``) and the npm assets
(``make assets``); ``playwright install`` is never used.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from api.http_protocol import UVICORN_HTTP

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(database_url: str, **settings: str) -> Iterator[str]:
    """A server on ``database_url`` (on the HTTP protocol `gridmap serve` runs) with the maps
    offline and ``settings`` (GRIDMAP_... values) in its environment; yields its base URL and
    stops it afterwards."""
    port = free_port()
    env = dict(os.environ, DATABASE_URL=database_url, GRIDMAP_MAPS_ONLINE="0", **settings)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory", "--host",
         "127.0.0.1", "--port", str(port), "--log-level", "warning", "--http", UVICORN_HTTP],
        env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@contextmanager
def chromium():
    """Debian's headless Chromium under Playwright (a missing browser fails, never skips)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run GRIDMAP_WITH_BROWSER=1 scripts/system-deps.sh")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
