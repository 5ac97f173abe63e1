"""Request size limits and log-in throttling."""

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tests.conftest import app_settings


@pytest.fixture(scope="module")
def settings(database_url):
    return app_settings(database_url, max_body_bytes=1_000_000, login_attempts_per_minute=5)


@pytest.fixture
def app_client(demo_engine, settings):
    """An app per test: the log-in throttle counts attempts per app."""
    with TestClient(create_app(settings)) as c:
        yield c


def test_a_50_mb_body_is_refused_with_413(client):
    r = client.post("/api/v1/issues", content=b"x" * 50_000_000,
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["code"] == "payload_too_large" and "1000000" in r.json()["detail"]


def test_a_streamed_body_without_length_is_cut_off_too(client):
    def chunks():
        for _ in range(40):
            yield b"y" * 100_000

    r = client.post("/api/v1/issues", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_bodies_under_the_limit_pass_through(client):
    r = client.post("/api/v1/issues", json={"category": "garbage", "lon": 112.86, "lat": 36.84})
    assert r.status_code == 401  # reached the endpoint, which wants a token


def test_repeated_log_ins_are_throttled_per_user(client):
    # the fifth failure also locks the username (gis.rules.LOCKOUT_FAILURES); the throttle then
    # refuses the sixth attempt before it reaches the password check
    for _ in range(4):
        assert client.post("/api/v1/auth/token",
                           data={"username": "leader", "password": "guess"}).status_code == 401
    assert client.post("/api/v1/auth/token",
                       data={"username": "leader", "password": "guess"}).status_code == 423
    r = client.post("/api/v1/auth/token", data={"username": "leader", "password": "guess"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert r.json()["code"] == "too_many_requests"
    # another account from the same address is not locked out by the first one's attempts
    assert client.post("/api/v1/auth/token",
                       data={"username": "admin", "password": "guess"}).status_code == 401
