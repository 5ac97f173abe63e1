"""`gridmap user`, `gridmap department` and `gridmap import users`, run as the command runs
(``api.cli.main``). The command commits, so it runs on a scratch database with a demo of its own
and the session's demo is left alone. Passwords come only from standard input or are generated
and printed once."""

from __future__ import annotations

import getpass
import io
import re

import pytest
from openpyxl import Workbook
from sqlalchemy import text

from api.cli import main as gridmap
from api.settings import Settings
from gis.db.engine import session_scope
from gis.people import sessions
from gis.people.passwords import verify_password
from tests.conftest import scratch_database

SCRATCH_DB = "gridmap_people_cli"
GRID_01, GRID_02, GRID_03 = (f"1404291000010{n:02d}" for n in (1, 2, 3))
BY = f"cli:{getpass.getuser()}"


@pytest.fixture(scope="module")
def scratch(engine, database_url):
    """(URL, engine) of a scratch database holding a small demo (its grids, regions and
    departments), for this module's commands."""
    with scratch_database(engine, database_url, SCRATCH_DB) as (url, db), pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATABASE_URL", url)
        assert gridmap(["demo", "--issues", "30", "--today", "2024-05-31"]) == 0
        yield url, db


@pytest.fixture
def run(scratch, monkeypatch, capsys):
    """``run(*args, stdin=None)`` -> (exit code, stdout, stderr) of one command on the scratch
    database."""
    monkeypatch.setenv("DATABASE_URL", scratch[0])
    capsys.readouterr()

    def run_command(*args: str, stdin: str | None = None):
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin or ""))
        code = gridmap(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err
    return run_command


def fetch(scratch, query: str, **params):
    with scratch[1].connect() as conn:
        return conn.execute(text(query), params).all()


def log_in(scratch, username: str, password: str):
    with session_scope(scratch[1]) as session:
        outcome = sessions.log_in(session, username, password, kind="token", address="test",
                                  policy=sessions.SessionPolicy())
    return outcome


def password_works(scratch, username: str, password: str) -> bool:
    """Whether ``password`` is ``username``'s (checked on the hash: no failed log-in is counted)."""
    stored = fetch(scratch, "SELECT password_hash FROM users WHERE username = :u", u=username)
    return bool(stored) and verify_password(password, stored[0][0])


def printed_passwords(out: str) -> dict[str, str]:
    """The (username, password) lines of the table the command prints under its notice."""
    table = out.split("initial password(s), shown once", 1)[1].splitlines()[2:]
    return dict(line.split() for line in table if line.strip())


def test_a_generated_password_is_printed_once_and_works_for_the_first_log_in(run, scratch):
    code, out, err = run("user", "add", "wang.li", "--name", "王力", "--role", "网格员",
                         "--phone", "13800007777", "--grid", GRID_01, GRID_02)
    assert code == 0, err
    assert "user wang.li added: 王力, 网格员 (worker)" in out
    password = printed_passwords(out)["wang.li"]
    assert out.count(password) == 1
    outcome = log_in(scratch, "wang.li", password)
    assert outcome.error is None and outcome.started.password_change_required is True
    assert fetch(scratch, "SELECT grid_code FROM grid_workers gw JOIN users u ON u.id = gw.user_id "
                          "WHERE u.username = 'wang.li' ORDER BY 1") == [(GRID_01,), (GRID_02,)]
    assert fetch(scratch, "SELECT username FROM audit_log WHERE action = 'user_admin' "
                          "AND target = 'wang.li'") == [(BY,)]


def test_a_password_comes_from_standard_input_and_is_never_printed(run, scratch):
    code, out, err = run("user", "add", "sun.li", "--name", "孙丽", "--role", "领导",
                         "--region", "太东社区", "--password-stdin", stdin="Chu-Shi-Mi-2024\n")
    assert code == 0, err
    assert "Chu-Shi-Mi-2024" not in out + err and "shown once" not in out
    assert log_in(scratch, "sun.li", "Chu-Shi-Mi-2024").started.password_change_required is True
    code, out, err = run("user", "add", "weak.one", "--name", "弱", "--role", "admin",
                         "--password-stdin", stdin="short\n")
    assert code == 1 and "at least 10 characters" in err
    assert fetch(scratch, "SELECT 1 FROM users WHERE username = 'weak.one'") == []


@pytest.mark.parametrize("command", [
    ["user", "add", "zhou.yu", "--name", "周宇", "--role", "admin", "--password", "Typed-In-2024x"],
    ["user", "add", "zhou.yu", "--name", "周宇", "--role", "admin", "--password=Typed-In-2024x"],
    ["user", "add", "zhou.yu", "--name", "周宇", "--role", "admin", "--pass", "Typed-In-2024x"],
    ["user", "set-password", "worker01", "--password", "Typed-In-2024x"],
])
def test_no_option_takes_a_password_as_an_argument(run, scratch, command):
    with pytest.raises(SystemExit) as stopped:
        run(*command)
    assert stopped.value.code == 2
    assert fetch(scratch, "SELECT 1 FROM users WHERE username = 'zhou.yu'") == []
    assert not password_works(scratch, "worker01", "Typed-In-2024x")


def test_set_password_generates_an_initial_one_or_reads_standard_input(run, scratch):
    code, out, _ = run("user", "set-password", "worker02")
    assert code == 0
    password = printed_passwords(out)["worker02"]
    assert log_in(scratch, "worker02", password).started.password_change_required is True
    code, out, _ = run("user", "set-password", "worker02", "--password-stdin", stdin="Reset-By-Cli-77\n")
    assert code == 0 and "Reset-By-Cli-77" not in out
    assert not password_works(scratch, "worker02", password)
    assert log_in(scratch, "worker02", "Reset-By-Cli-77").error is None
    assert run("user", "set-password", "nobody")[0] == 1


def test_list_disable_enable(run, scratch):
    code, out, _ = run("user", "list")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["username", "name", "姓名", "role", "角色", "grids", "网格", "region",
                              "区域", "department", "部门", "active", "must", "change"]
    worker03 = next(r for r in rows if r.startswith("worker03 "))
    assert "网格员 worker" in worker03 and GRID_03 in worker03 and worker03.split()[-2:] == ["yes", "no"]
    leader = next(r for r in rows if r.startswith("leader "))
    assert "领导 leader" in leader and "太东社区 140429100001" in leader
    assert "shizheng" in next(r for r in rows if r.startswith("shizheng01 "))

    demo_password = Settings().demo_password  # what `gridmap demo` gave the scratch demo
    assert log_in(scratch, "worker04", demo_password).error is None
    assert run("user", "disable", "worker04")[0] == 0
    assert fetch(scratch, "SELECT active FROM users WHERE username = 'worker04'") == [(False,)]
    assert log_in(scratch, "worker04", demo_password).error is not None
    assert run("user", "enable", "worker04")[0] == 0
    assert log_in(scratch, "worker04", demo_password).error is None
    code, _, err = run("user", "disable", "admin")
    assert code == 1 and "last active admin" in err


def test_assign_replaces_the_grids_and_history_shows_who_held_them(run, scratch):
    code, out, _ = run("user", "assign", "worker05", "--grid", f"{GRID_03},{GRID_01}")
    assert code == 0 and f"worker05 now holds {GRID_01}, {GRID_03}" in out
    code, out, _ = run("user", "assign", "worker05", "--grid", "140429100001005")
    assert code == 0
    code, out, _ = run("user", "history", GRID_03)
    holders = [line.split()[0] for line in out.splitlines()[1:-1]]
    assert holders == ["worker03", "worker05"] and "now" in out.splitlines()[1]
    assert run("user", "assign", "leader", "--grid", GRID_01)[0] == 1  # only workers hold grids
    code, out, _ = run("user", "history", "140429100009999")
    assert "nobody has held grid 140429100009999" in out


def test_departments_are_added_and_listed(run, scratch):
    code, out, err = run("department", "add", "shuiwu", "--name", "水务所", "--category", "garbage",
                         "--region", "武乡县")
    assert code == 0 and "department shuiwu added" in out, err
    assert run("department", "add", "shuiwu", "--name", "水务管理所")[1].strip() == "department shuiwu updated"
    code, out, _ = run("department", "list")
    shuiwu = next(line for line in out.splitlines() if line.startswith("shuiwu "))
    assert "水务管理所" in shuiwu and "garbage" in shuiwu and "武乡县 140429" in shuiwu  # kept
    code, _, err = run("department", "add", "bad", "--name", "坏", "--category", "flying_saucer")
    assert code == 1 and "unknown issue categories flying_saucer" in err
    assert fetch(scratch, "SELECT username FROM audit_log WHERE action = 'department_admin' "
                          "AND target = 'shuiwu'") == [(BY,), (BY,)]


def roster(path, rows):
    book = Workbook()
    book.active.append(["用户名", "姓名", "手机号", "角色", "网格编码", "管辖区域", "部门", "初始密码"])
    for row in rows:
        book.active.append(row)
    book.save(path)
    return str(path)


def test_import_users_prints_only_the_generated_passwords(run, scratch, tmp_path):
    path = roster(tmp_path / "花名册.xlsx", [
        ["liu.yang", "刘洋", 13800006666, "网格员", f"{GRID_01}、{GRID_02}", None, None, None],
        ["he.ping", "何平", None, "部门人员", None, None, "环卫所", "Given-Pass-2024"],
        ["leader", "张书记", None, "领导", None, "太东社区", None, "Ignored-Pass-2024"],
    ])
    code, out, err = run("import", "users", path)
    assert code == 0, err
    assert f"imported {path}: 2 added, 1 updated" in out
    assert "existing accounts keep their own passwords" in out and "Given-Pass" not in out
    generated = printed_passwords(out)
    assert list(generated) == ["liu.yang"] and out.count(generated["liu.yang"]) == 1
    assert log_in(scratch, "liu.yang", generated["liu.yang"]).started.password_change_required
    assert log_in(scratch, "he.ping", "Given-Pass-2024").started.password_change_required
    assert not password_works(scratch, "leader", "Ignored-Pass-2024")
    assert fetch(scratch, "SELECT display_name FROM users WHERE username = 'leader'") == [("张书记",)]
    assert fetch(scratch, "SELECT count(*) FROM audit_log WHERE action = 'user_admin' AND username = :b "
                          "AND target IN ('liu.yang', 'he.ping', 'leader')", b=BY) == [(3,)]


def test_import_users_with_bad_rows_imports_nothing_and_says_why(run, scratch, tmp_path):
    path = roster(tmp_path / "bad.xlsx", [
        ["ok.person", "好人", None, "网格员", GRID_01, None, None, None],
        ["bad.role", "坏", None, "保安", None, None, None, None],
        ["bad.phone", "坏", 12345, "网格员", None, None, None, None],
    ])
    code, out, err = run("import", "users", path)
    assert code == 1 and out == ""
    assert re.search(r"row 3 \(第 3 行\): .*unknown role '保安'.*未知的角色", err)
    assert re.search(r"row 4 \(第 4 行\): .*not a mainland mobile number.*手机号", err)
    assert "nothing was imported" in err
    assert fetch(scratch, "SELECT 1 FROM users WHERE username = 'ok.person'") == []
    with pytest.raises(SystemExit):
        run("import", "lamp-posts", path)
    assert run("import", "users", path, "--crs", "EPSG:4326")[0] == 2
