"""`gridmap dispatch-rule set|list|remove` and `gridmap escalate`. The commands commit, so they run
on a scratch database of the test cluster."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from api.cli import main as gridmap
from tests.conftest import commands_use, scratch_database

SCRATCH_DB = "gridmap_command_cli"


@pytest.fixture(scope="module")
def scratch(engine, database_url):
    with scratch_database(engine, database_url, SCRATCH_DB) as found:
        yield found


@pytest.fixture
def command_db(scratch, monkeypatch):
    db = commands_use(scratch, monkeypatch)
    assert gridmap(["db", "upgrade"]) == 0  # seeds the categories, as a new community's set-up
    yield db
    with db.begin() as conn:
        conn.execute(text("DELETE FROM issues; DELETE FROM dispatch_rules; DELETE FROM departments"))


def test_dispatch_rules_from_the_console(command_db, capsys):
    assert gridmap(["department", "add", "huanwei", "--name", "环卫所", "--category", "garbage"]) == 0
    assert gridmap(["dispatch-rule", "set", "garbage", "--department", "huanwei"]) == 0
    assert gridmap(["dispatch-rule", "set", "noise", "--worker", "--suggest"]) == 0
    assert gridmap(["dispatch-rule", "set", "garbage", "--department", "nosuch"]) == 1
    assert "nosuch" in capsys.readouterr().err
    assert gridmap(["dispatch-rule", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1:] for line in lines] == [
        ["garbage", "(anywhere)", "->", "huanwei", "环卫所", "auto"],
        ["noise", "(anywhere)", "->", "(grid", "worker)", "suggest"]]
    with command_db.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM dispatch_rules")).scalar_one() == 2
    rule = lines[1].split()[0]
    assert gridmap(["dispatch-rule", "remove", rule]) == 0
    assert gridmap(["dispatch-rule", "remove", rule]) == 1
    with command_db.begin() as conn:
        assert conn.execute(text("SELECT category FROM dispatch_rules")).scalars().all() == ["garbage"]


def test_escalate_notifies_each_late_step_once(command_db, capsys):
    with command_db.begin() as conn:
        issue = conn.execute(text("""
            INSERT INTO issues (category, geom, status, reported_at)
            VALUES ('garbage', ST_SetSRID(ST_MakePoint(112.86, 36.84), 4326), 'dispatched',
                    now() - interval '2 days') RETURNING id""")).scalar_one()
        conn.execute(text("""INSERT INTO issue_steps (issue_id, step, started_at, due_at)
                             VALUES (:i, 'handle', now() - interval '2 days', now() - interval '1 hour')"""),
                     {"i": issue})
    assert gridmap(["escalate"]) == 0
    assert capsys.readouterr().out.strip() == "late steps notified: 1"
    assert gridmap(["escalate"]) == 0
    assert capsys.readouterr().out.strip() == "late steps notified: 0"
    with command_db.begin() as conn:
        assert conn.execute(text("SELECT notified_at IS NOT NULL FROM issue_steps "
                                 "WHERE issue_id = :i"), {"i": issue}).scalar_one()
