"""The doors that never show personal data (OGC API, Open311, tiles, the grid package) mask it
even for a reader who sees it in /api/v1; the grid item counts only the cases its reader may read.

Each test adds a case whose description holds a mobile number, in the test's rolled-back
transaction, and reads it as the admin (who may see everything) through each door.
"""

from __future__ import annotations

import pyogrio
import pytest

from tests.api.conftest import bearer
from tests.api.scope_data import (
    GRID_OWN,
    SECRET_PHONE,
    add_case,
    grid_id,
    grid_point,
    other_places,
)

MASKED = "139****5678"


@pytest.fixture(scope="module")
def admin(app_client) -> dict:
    return bearer(app_client, "admin")


@pytest.fixture
def case(sql) -> int:
    return add_case(sql, *grid_point(sql, GRID_OWN), grid_id=grid_id(sql, GRID_OWN))


def test_the_api_shows_the_admin_what_the_doors_mask(client, admin, case):
    api = client.get(f"/api/v1/issues/{case}", headers=admin).json()["properties"]
    assert SECRET_PHONE in api["description"] and api["reporter_contact"] == "13900001111"
    doors = {
        "ogc item": client.get(f"/ogc/collections/issues/items/{case}", headers=admin).text,
        "ogc items": client.get("/ogc/collections/issues/items",
                                params={"grid_code": GRID_OWN, "limit": 5000}, headers=admin).text,
        "ogc html": client.get(f"/ogc/collections/issues/items/{case}", params={"f": "html"},
                               headers=admin).text,
        "open311 item": client.get(f"/open311/v2/requests/{case}.json", headers=admin).text,
        "open311 xml": client.get(f"/open311/v2/requests/{case}.xml", headers=admin).text,
        "open311 list": client.get("/open311/v2/requests.json",
                                   params={"service_request_id": str(case)}, headers=admin).text,
    }
    for door, body in doors.items():
        assert MASKED in body, door
        assert SECRET_PHONE not in body and "13900001111" not in body, door


def test_the_package_masks_free_text_for_the_admin_too(client, admin, case, tmp_path):
    r = client.get(f"/api/v1/grids/{GRID_OWN}/package", headers=admin)
    path = tmp_path / "p.gpkg"
    path.write_bytes(r.content)
    issues = pyogrio.read_dataframe(path, layer="issues").set_index("id")
    assert MASKED in issues.loc[case, "description"] and SECRET_PHONE.encode() not in r.content


def test_a_grids_open_case_counts_are_those_of_the_readers_scope(client, app_client, sql):
    near = other_places(sql).same_district  # a case of the dispatcher's, not the leader's
    counts = {}
    for who in ("leader", "dispatcher", "huanwei01", "shizheng01"):
        props = client.get(f"/api/v1/grids/{near.grid_code}",
                           headers=bearer(app_client, who)).json()["properties"]
        counts[who] = props["open_issues"], props["open_issues_by_status"]
    assert counts == {"leader": (0, {}), "dispatcher": (1, {"dispatched": 1}),
                      "huanwei01": (1, {"dispatched": 1}), "shizheng01": (0, {})}
    anonymous = client.get(f"/api/v1/grids/{near.grid_code}").json()["properties"]
    assert anonymous["open_issues"] is None and anonymous["facilities_by_status"]["ok"] == 1
