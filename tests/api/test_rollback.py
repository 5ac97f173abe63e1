"""API tests roll back: what a test writes through ``client`` (requests that commit) is visible to
the test itself and to nobody else, and gone from the database once the test ends.

The tests here run in order: each later one checks what an earlier one left.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

MARK = f"rollback check {uuid.uuid4()}"
EAST_A, EAST_B = (112.880, 36.836), (112.892, 36.836)  # east of the demo community, in no grid
written: dict[str, int] = {}


def _committed_count(engine, issue_id: int) -> int:
    """Issues with ``issue_id`` or this run's mark, as another connection sees them: committed."""
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM issues WHERE id = :i OR description = :d"),
                            {"i": issue_id, "d": MARK}).scalar_one()


def test_a_write_is_seen_by_the_test_and_by_no_one_else(client, headers, sql, demo_engine):
    r = client.post("/api/v1/issues", headers=headers["leader"],
                    json={"category": "garbage", "lon": 112.86, "lat": 36.84, "description": MARK})
    assert r.status_code == 201, r.text  # the route committed: a savepoint released
    written["issue"] = issue_id = r.json()["id"]
    moved = client.post(f"/api/v1/issues/{issue_id}/transitions", json={"to": "accepted"},
                        headers=headers["leader"])
    assert moved.status_code == 200  # a later request of the test sees it
    assert sql("SELECT status FROM issues WHERE id = :i", i=issue_id) == [("accepted",)]
    assert _committed_count(demo_engine, issue_id) == 0  # not committed


def test_the_write_is_gone_from_the_database_after_the_test(client, headers, demo_engine):
    issue_id = written.get("issue")
    assert issue_id, "runs after the test above"
    assert _committed_count(demo_engine, issue_id) == 0
    with demo_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM issue_events WHERE issue_id = :i"),
                            {"i": issue_id}).scalar_one() == 0
    assert client.get(f"/api/v1/issues/{issue_id}", headers=headers["leader"]).status_code == 404


def _square(lon: float, lat: float, d: float = 0.001) -> dict:
    ring = [[lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d], [lon - d, lat + d],
            [lon - d, lat - d]]
    return {"type": "Polygon", "coordinates": [ring]}


def _make_grid(client, headers, code: str, where) -> None:
    r = client.post("/api/v1/grids", headers=headers["admin"], json={
        "code": code, "name": "回滚测试", "community": "太东社区", "geometry": _square(*where)})
    assert r.status_code == 201, r.text


def _grid_at(client, where) -> str | None:
    found = client.get("/api/v1/locate", params={"lon": where[0], "lat": where[1]}).json()
    return found["grid"] and found["grid"]["code"]


@pytest.mark.parametrize("code, where, elsewhere", [
    ("140429100001981", EAST_A, EAST_B),
    ("140429100001982", EAST_B, EAST_A),  # the grid version is back where it was: the same number
])
def test_a_rolled_back_grid_is_not_found_by_the_next_test(client, headers, code, where, elsewhere):
    # Each run adds one grid, so both bring the grid version counter to the same number; the
    # app's grid index built in the first run must not answer in the second (the index cache is
    # emptied after each test).
    _make_grid(client, headers, code, where)
    assert _grid_at(client, elsewhere) is None
    assert _grid_at(client, where) == code
