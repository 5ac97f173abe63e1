"""The loaded demo lives in the present, checked over HTTP against PostgreSQL's clock.

By default the session's demo is seen when the session starts (tests/conftest.py): then Open311's
default window holds requests, open cases are overdue or not as their due times say (some of
each), and the heatmap's weeks end in the current week. With GRIDMAP_TEST_TODAY pinning a past
day, what depends on the clock is only compared with SQL, since every case is overdue by now.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta

import pandas as pd
import pytest

from api.protocols.open311 import MAX_REQUESTS
from gis.rules import BEIJING


@pytest.fixture(scope="module")
def current() -> bool:
    """Whether the demo is seen now, as PostgreSQL's now() is (no day pinned)."""
    return not os.environ.get("GRIDMAP_TEST_TODAY")


def test_the_demo_ends_when_it_is_seen(demo_data, sql, current):
    newest = demo_data.issues["reported_at"].max()
    assert demo_data.seen_at - timedelta(days=1) < newest <= demo_data.seen_at
    if current:
        assert sql("SELECT now()")[0][0] - demo_data.seen_at < timedelta(hours=1)


def test_open311_default_window_has_the_last_90_days(client, headers, sql, current):
    got = client.get("/open311/v2/requests.json", headers=headers["admin"])
    assert got.status_code == 200
    requests = got.json()
    expected = sql("SELECT count(*) FROM issues "
                   "WHERE reported_at >= now() - interval '90 days' AND reported_at <= now()")[0][0]
    assert len(requests) == min(expected, MAX_REQUESTS)
    if current:
        assert len(requests) > 100  # a quarter of the demo's year, not an empty page


def test_overdue_flags_are_real(client, headers, sql, current):
    features = client.get("/api/v1/issues", params={"status": "open", "limit": 1000},
                          headers=headers["leader"]).json()["features"]
    overdue = {f["id"] for f in features if f["properties"]["overdue"]}
    expected = {i for (i,) in sql("SELECT id FROM issues WHERE status NOT IN ('closed', 'rejected', "
                                  "'on_hold') AND due_at < now()")}  # 挂账 stops the clock
    assert overdue == expected
    if current:
        assert 0 < len(overdue) < len(features)  # neither every open case nor none


def test_the_heatmap_slider_ends_in_the_current_week(client, headers, sql):
    """The slider's last week is that of the newest report, which is the week the demo is seen in
    (test_present.py shows the newest report is of the day the demo is for)."""
    page = client.get("/maps/heatmap", headers=headers["leader"])
    assert page.status_code == 200
    slider = re.search(r"TimeDimensionCustom\((\[[^\]]*\])", page.text)
    weeks = re.findall(r"\d{4}-\d{2}-\d{2}", slider.group(1))
    newest = sql("SELECT max(reported_at) FROM issues")[0][0]
    day = pd.Timestamp(newest).tz_convert(BEIJING).date()
    assert weeks[-1] == f"{day - timedelta(days=day.weekday())}"
    assert len(weeks) >= 52
