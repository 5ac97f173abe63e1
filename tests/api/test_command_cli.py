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
        assert conn.execute(text("SELECT count(*) FROM step_alerts a JOIN issue_steps s "
                                 "ON s.id = a.step_id WHERE s.issue_id = :i"),
                            {"i": issue}).scalar_one() == 1


def test_two_processes_looking_at_once_notify_a_late_step_once(command_db):
    """The second looker waits on the first's claim (the step's key in step_alerts) and, once
    the first commits, finds the step told: one set of notifications, not two."""
    import threading

    from sqlalchemy.orm import Session

    from gis.issues.notifications import notify_overdue

    with command_db.begin() as conn:
        issue = conn.execute(text("""
            INSERT INTO issues (category, geom, status) VALUES
            ('garbage', ST_SetSRID(ST_MakePoint(112.86, 36.84), 4326), 'dispatched') RETURNING id""")
                             ).scalar_one()
        conn.execute(text("""INSERT INTO issue_steps (issue_id, step, started_at, due_at)
                             VALUES (:i, 'handle', now() - interval '1 day', now() - interval '1 hour')"""),
                     {"i": issue})
    results = {}
    with Session(command_db) as first:
        results["first"] = notify_overdue(first)  # claimed, not committed yet

        def second() -> None:
            with Session(command_db) as other:
                results["second"] = notify_overdue(other)
                other.commit()

        looker = threading.Thread(target=second)
        looker.start()
        looker.join(0.5)
        assert looker.is_alive()  # waiting on the first's claim, not notifying it again
        first.commit()
    looker.join(30)
    assert results == {"first": 1, "second": 0}
