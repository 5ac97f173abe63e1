"""Fixtures shared by the API tests: an app client on the demo database, SQL, role headers."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.main import create_app
from tests.conftest import DEMO_PASSWORD, app_settings


@pytest.fixture(scope="module")
def client(demo_engine, database_url):
    with TestClient(create_app(app_settings(database_url))) as c:
        yield c


@pytest.fixture(scope="module")
def sql(demo_engine):
    """Run SQL against the demo database (committed): ``sql(query, **params)`` -> rows."""
    def run(query: str, **params):
        with demo_engine.begin() as conn:
            return conn.execute(text(query), params).all()
    return run


@pytest.fixture(scope="module")
def headers(client):
    """Bearer headers per role: anonymous, the owner of grid 003, another worker, leader, admin."""
    def login(username: str) -> dict:
        r = client.post("/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}
    return {"anonymous": {}, "owner": login("worker03"), "other_worker": login("worker05"),
            "leader": login("leader"), "admin": login("admin")}
