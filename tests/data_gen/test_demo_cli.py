"""`gridmap demo --today`: the pinned day reaches the database, and pins the data.

Loads into a scratch database of the test cluster, so the session's demo is left alone.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import text

from api.cli import main as gridmap
from gis.rules import BEIJING
from tests.conftest import scratch_database

SCRATCH_DB = "gridmap_demo_cli"


@pytest.fixture(scope="module")
def scratch(engine, database_url):
    """(URL, engine) of an empty, migrated scratch database."""
    with scratch_database(engine, database_url, SCRATCH_DB) as found:
        yield found


def _issues(db) -> list[tuple]:
    with db.connect() as conn:
        return conn.execute(text("SELECT client_uuid, category, reported_at, status, due_at, "
                                 "closed_at FROM issues ORDER BY client_uuid")).all()


def test_the_pinned_day_ends_the_loaded_year(scratch, monkeypatch, capsys):
    url, db = scratch
    monkeypatch.setenv("DATABASE_URL", url)
    assert gridmap(["demo", "--today", "2024-02-29", "--issues", "400"]) == 0
    assert "the year up to 2024-02-29 23:59 (Beijing time)" in capsys.readouterr().out
    with db.connect() as conn:
        oldest, newest, last_event, n = conn.execute(text(
            "SELECT min(reported_at), max(reported_at), (SELECT max(at) FROM issue_events), "
            "count(*) FROM issues")).one()
        on_the_day = conn.execute(text(
            "SELECT count(*) FROM issues WHERE (reported_at AT TIME ZONE 'Asia/Shanghai')::date "
            "= '2024-02-29'")).scalar_one()
    assert n == 400 and on_the_day > 0
    assert oldest >= datetime(2023, 3, 1, tzinfo=BEIJING)
    assert newest <= last_event <= datetime(2024, 2, 29, 23, 59, 59, tzinfo=BEIJING)
    first = _issues(db)
    assert gridmap(["demo", "--today", "2024-02-29", "--issues", "400"]) == 0
    assert _issues(db) == first  # the same seed and day: the same data


def test_a_day_that_is_not_a_day_is_refused(scratch, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", scratch[0])
    with pytest.raises(SystemExit):
        gridmap(["demo", "--today", "29/02/2024"])
    assert "expected a day as YYYY-MM-DD, got '29/02/2024'" in capsys.readouterr().err
    assert gridmap(["demo", "--today", "1999-12-31"]) == 2
    assert "today should be between 2000-01-01 and 2099-12-31" in capsys.readouterr().err
