"""Log-in, tokens and the error shape, against the demo users in PostGIS."""

import hashlib

import pytest

from api.main import create_app
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
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_expired_idle_ended_and_made_up_tokens_are_rejected(client, sql):
    tokens = {}
    for case in ("expired", "idle", "ended", "live"):
        tokens[case] = login(client, "leader").json()["access_token"]
    digest = {case: hashlib.sha256(t.encode()).hexdigest() for case, t in tokens.items()}
    sql("UPDATE sessions SET expires_at = now() - interval '1 second' WHERE token_hash = :h",
        h=digest["expired"])
    sql("UPDATE sessions SET last_seen_at = now() - interval '3 hours' WHERE token_hash = :h",
        h=digest["idle"])
    r = client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {tokens['ended']}"})
    assert r.status_code == 204
    for token in (tokens["expired"], tokens["idle"], tokens["ended"], "gms_made-up", "not-a-token"):
        r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, token
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens['live']}"}).status_code == 200


def test_tokens_are_stored_only_as_digests(client, sql):
    token = login(client, "leader").json()["access_token"]
    stored = [r[0] for r in sql("SELECT token_hash FROM sessions")]
    assert hashlib.sha256(token.encode()).hexdigest() in stored and token not in stored


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
