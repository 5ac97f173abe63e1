"""Log-in, tokens and the error shape, against the demo users in PostGIS."""

from datetime import timedelta

import pytest

from api.main import create_app
from api.security import create_token
from api.settings import DEVELOPMENT_SECRET
from gis.errors import SetupError
from tests.conftest import DEMO_PASSWORD, app_settings


def login(client, username: str, password: str = DEMO_PASSWORD):
    return client.post("/api/v1/auth/token", data={"username": username, "password": password})


def test_login_gives_a_bearer_token_that_me_reads(client):
    r = login(client, "worker03")
    assert r.status_code == 200 and r.json()["token_type"] == "bearer"
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    assert me.status_code == 200
    body = me.json()
    assert body["username"] == "worker03" and body["role"] == "worker"
    assert body["grids"] == ["140429100001003"]


@pytest.mark.parametrize("username, password", [("worker03", "wrong"), ("nobody", DEMO_PASSWORD)])
def test_bad_credentials_are_401_with_the_same_message(client, username, password):
    r = login(client, username, password)
    assert r.status_code == 401
    assert r.json() == {"detail": "Wrong username or password.", "code": "unauthorized"}


def test_me_without_token_is_401(client):
    r = client.get("/api/v1/me")
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"


def test_expired_and_forged_tokens_are_rejected(client):
    expired = create_token("leader", "leader", DEVELOPMENT_SECRET, timedelta(seconds=-1))
    forged = create_token("admin", "admin", "someone-elses-secret", timedelta(hours=1))
    for token in (expired, forged, "not-a-jwt"):
        r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, token


def test_production_refuses_to_start_without_a_secret():
    url = "postgresql://x@127.0.0.1/x"
    with pytest.raises(SetupError, match="GRIDMAP_SECRET_KEY"):
        create_app(app_settings(url, env="production"))
    create_app(app_settings(url, env="production", secret_key="s" * 32))


def test_demo_passwords_are_stored_hashed(session):
    from sqlalchemy import text

    hashes = session.execute(text("SELECT password_hash FROM users")).scalars().all()
    assert all(h.startswith("$argon2id$") and DEMO_PASSWORD not in h for h in hashes)


def test_passwords_never_reach_the_logs(client, caplog):
    import logging

    secret = "a-Very-Distinctive-Password-9817"
    with caplog.at_level(logging.DEBUG):
        client.post("/api/v1/auth/token", data={"username": "leader", "password": secret})
        client.post("/api/v1/auth/token", data={"username": secret, "password": secret})
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert caplog.records  # the app and its libraries did log at this level
    assert secret not in caplog.text
