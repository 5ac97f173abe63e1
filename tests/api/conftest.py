"""Fixtures shared by the API tests: role headers. The app (``client``, which rolls back every
test's writes), ``sql`` and the settings fixtures are in tests/conftest.py."""

import pytest

from tests.conftest import DEMO_PASSWORD


def bearer(client, username: str) -> dict:
    """Authorization headers for ``username`` (the demo password); logging in writes only a
    session and an audit entry, which the demo fingerprint leaves out."""
    r = client.post("/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture(scope="module")
def headers(app_client):
    """Bearer headers per role: anonymous, the owner of grid 003, another worker, leader, admin."""
    return {"anonymous": {}, "owner": bearer(app_client, "worker03"),
            "other_worker": bearer(app_client, "worker05"), "leader": bearer(app_client, "leader"),
            "admin": bearer(app_client, "admin")}
