"""The rules defined once, seen over HTTP: who sees the idempotency key, overdue as a boolean,
the same on-time rate on the statistics endpoint and the leader pages, and since after until."""

from __future__ import annotations

import re

import pytest

from gis.people.privacy import mask_text

GRID_03 = "140429100001003"


@pytest.mark.parametrize("role, sees", [("other_worker", False), ("owner", True),
                                        ("leader", True)])
def test_client_uuid_only_for_those_who_may_see_personal_data(client, headers, sql, role, sees):
    features = client.get("/api/v1/issues", params={"grid": GRID_03, "limit": 50},
                          headers=headers[role]).json()["features"]
    one = client.get(f"/api/v1/issues/{features[0]['id']}", headers=headers[role]).json()
    stored = dict(sql("SELECT id, reporter_contact FROM issues"))
    for props in [f["properties"] for f in features] + [one["properties"]]:
        assert ("client_uuid" in props) is sees
        contact = stored[props["id"]]
        assert props["reporter_contact"] == (contact if sees else mask_text(contact))


def test_ogc_items_never_carry_personal_fields(client, headers):
    body = client.get("/ogc/collections/issues/items", params={"limit": 50},
                      headers=headers["admin"]).json()
    assert body["features"]
    for f in body["features"]:
        assert not {"client_uuid", "reporter_contact"} & set(f["properties"])


def test_overdue_is_always_a_boolean(client, headers):
    body = client.get("/api/v1/issues", params={"limit": 2000}, headers=headers["leader"]).json()
    assert {type(f["properties"]["overdue"]) for f in body["features"]} == {bool}


@pytest.mark.parametrize("path", ["/api/v1/issues", "/api/v1/stats/grids", "/maps/heatmap"])
def test_since_after_until_is_an_invalid_parameter(client, headers, path):
    r = client.get(path, params={"since": "2025-05-01", "until": "2025-04-01"},
                   headers=headers["leader"])
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_parameter"
    assert "after" in r.json()["detail"]


def test_the_on_time_rate_is_the_same_on_the_statistics_and_the_leader_pages(client, headers):
    rows = client.get("/api/v1/stats/grids", headers=headers["leader"]).json()["data"]
    rate = {r["grid_code"]: r["on_time_rate"] for r in rows}
    assert any(v is not None for v in rate.values())
    heatmap = client.get("/maps/heatmap", params={"lang": "en"}, headers=headers["leader"]).text
    overview = client.get("/maps/overview", params={"lang": "en"}, headers=headers["leader"]).text
    for code, value in rate.items():
        if value is None:
            continue
        # the grid's GeoJSON properties on each page carry the same number
        pattern = re.compile(rf'"code": "{code}"[^{{}}]*?"on_time_rate": ([0-9.]+|null)')
        for page in (heatmap, overview):
            shown = pattern.findall(page)
            assert shown and {float(s) for s in shown} == {value}, (code, value, shown)


@pytest.mark.parametrize("value, kind", [("2025-13-01", "日期"), ("2025-03-01T25:00", "时间")])
def test_a_bad_day_or_instant_is_explained_in_the_callers_language(client, headers, value, kind):
    zh = client.get("/api/v1/issues", params={"since": value},
                    headers={"Accept-Language": "zh-CN", **headers["leader"]})
    en = client.get("/api/v1/issues", params={"since": value}, headers=headers["leader"])
    assert zh.status_code == en.status_code == 422
    assert zh.json()["code"] == en.json()["code"] == "validation_error"
    assert "since" in zh.json()["detail"] and kind in zh.json()["detail"]
    assert "since" in en.json()["detail"] and "ISO 8601" in en.json()["detail"]
