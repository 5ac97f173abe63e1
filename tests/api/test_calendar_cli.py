"""`gridmap calendar status|set|unset|list`. The commands commit, so they run on a scratch
database of the test cluster."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import text

from api.cli import main as gridmap
from gis.rules import BEIJING
from gis.worktime.calendar import official_years
from tests.conftest import commands_use, scratch_database

SCRATCH_DB = "gridmap_calendar_cli"


@pytest.fixture(scope="module")
def scratch(engine, database_url):
    with scratch_database(engine, database_url, SCRATCH_DB) as found:
        yield found


@pytest.fixture
def calendar_db(scratch, monkeypatch):
    db = commands_use(scratch, monkeypatch)
    yield db
    with db.begin() as conn:
        conn.execute(text("DELETE FROM calendar_overrides"))


def test_set_list_and_unset_overrides(calendar_db, capsys):
    assert gridmap(["calendar", "set", "2031-02-03", "holiday", "--note", "县政府决定"]) == 0
    assert gridmap(["calendar", "set", "2031-01-25", "working", "--note", "调休"]) == 0
    assert gridmap(["calendar", "set", "2030-05-06", "working"]) == 0
    capsys.readouterr()
    assert gridmap(["calendar", "list", "--year", "2031"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in lines] == [["2031-01-25", "Sat", "working"],
                                                    ["2031-02-03", "Mon", "holiday"]]
    assert "县政府决定" in lines[1] and "cli:" in lines[1]
    with calendar_db.connect() as conn:
        stored = conn.execute(text("SELECT day::text, working FROM calendar_overrides ORDER BY day")
                              ).all()
    assert stored == [("2030-05-06", True), ("2031-01-25", True), ("2031-02-03", False)]
    assert gridmap(["calendar", "unset", "2031-01-25"]) == 0
    assert gridmap(["calendar", "unset", "2031-01-25"]) == 1
    assert "no calendar override" in capsys.readouterr().err
    capsys.readouterr()
    assert gridmap(["calendar", "list"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_a_day_that_is_not_a_day_is_refused(calendar_db, capsys):
    with pytest.raises(SystemExit):
        gridmap(["calendar", "set", "2031-02-30", "holiday"])
    with pytest.raises(SystemExit):
        gridmap(["calendar", "set", "2031-02-03", "weekend"])


def test_status_names_the_years_that_fall_back_and_fails_for_them(calendar_db, capsys):
    this_year = datetime.now(BEIJING).year
    falling_back = [y for y in (this_year, this_year + 1) if y not in official_years()]
    code = gridmap(["calendar", "status"])
    out = capsys.readouterr().out
    assert f"years {min(official_years())}-{max(official_years())}" in out
    assert "working day ends at 17:30" in out
    assert code == (1 if falling_back else 0)
    for year in falling_back:
        assert f"{year}: FALLBACK: Monday-Friday" in out and "warning:" in out and "警告" in out
    # a far year with an override is listed, and falls back
    far = max(official_years()) + 5
    assert gridmap(["calendar", "set", f"{far}-01-02", "holiday"]) == 0
    capsys.readouterr()
    assert gridmap(["calendar", "status"]) == 1
    assert f"{far}: FALLBACK: Monday-Friday, 1 local override(s)" in capsys.readouterr().out
