"""`gridmap evaluate`: the workbook or one role's CSV written by the command, on a scratch
database (the command commits its audit entry)."""

from __future__ import annotations

import csv

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from api.cli import main as gridmap
from tests.conftest import commands_use, scratch_database

SCRATCH_DB = "gridmap_evaluation_cli"


@pytest.fixture(scope="module")
def scratch(engine, database_url):
    with scratch_database(engine, database_url, SCRATCH_DB) as found:
        with found[1].begin() as conn:
            conn.execute(text("INSERT INTO departments (code, name) VALUES ('huanwei', '环卫所')"))
        yield found


@pytest.fixture
def db(scratch, monkeypatch):
    return commands_use(scratch, monkeypatch)


def test_the_workbook_of_a_month(db, tmp_path, capsys):
    out = tmp_path / "评价.xlsx"
    assert gridmap(["evaluate", "--period", "month", "--date", "2026-11-15", "--out", str(out)]) == 0
    assert "evaluation 2026-11 (2026-11-01 to 2026-11-30): 1 rows" in capsys.readouterr().out
    book = load_workbook(out)
    assert book.sheetnames == ["专业部门", "网格员", "网格", "社区", "说明"]
    assert [c.value for c in book["专业部门"]["A"]] == ["部门编码", "huanwei"]
    with db.connect() as conn:
        entry = conn.execute(text("SELECT username, target, detail FROM audit_log "
                                  "WHERE action = 'export' ORDER BY id DESC LIMIT 1")).one()
    assert entry.username.startswith("cli:") and entry.target == "gridmap evaluate 2026-11"
    assert entry.detail["format"] == "xlsx" and entry.detail["rows"] == 1


def test_one_role_as_csv_and_what_is_refused(db, tmp_path, capsys):
    out = tmp_path / "departments.csv"
    assert gridmap(["evaluate", "--since", "2026-11-01", "--until", "2026-11-15",
                    "--role", "department", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines()))
    assert [(r["key"], r["name"], r["dispatched"], r["score"]) for r in rows] == [
        ("huanwei", "环卫所", "0", "")]
    assert gridmap(["evaluate", "--out", str(tmp_path / "x.csv")]) == 2  # a CSV needs a role
    assert gridmap(["evaluate", "--role", "grid", "--out", str(tmp_path / "x.xlsx")]) == 2
    assert gridmap(["evaluate", "--since", "2026-11-02", "--out", str(tmp_path / "x.xlsx")]) == 1
    assert "both since and until" in capsys.readouterr().err
