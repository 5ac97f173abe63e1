"""Fixtures of the browser tests: one live server on the demo and one Chromium per module (a
module whose server needs other settings defines its own ``server``)."""

import pytest

from tests.conftest import media_root_of_the_run
from tests.maps.live import chromium, live_server


@pytest.fixture(scope="module")
def server(demo_engine, app_database_url):
    with live_server(app_database_url, GRIDMAP_MEDIA_ROOT=str(media_root_of_the_run())) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b
