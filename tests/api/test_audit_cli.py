"""`gridmap audit` and `gridmap audit prune`, and what `gridmap db status` and `gridmap db upgrade`
do about the application's role. The commands commit, so they run on a scratch database of the
test cluster (entries younger than the retention cannot be removed, not even by the tests)."""

from __future__ import annotations

import getpass
import json

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from api.cli import main as gridmap
from api.settings import DatabaseSettings, Settings
from gis.db.cluster import LocalCluster
from gis.errors import SetupError
from gis.rules import AUDIT_RETENTION_DAYS
from tests.conftest import commands_use, scratch_database

SCRATCH_DB = "gridmap_audit_cli"


@pytest.fixture(scope="module")
def scratch(engine, database_url):
    """(URL, engine) of an empty, migrated scratch database."""
    with scratch_database(engine, database_url, SCRATCH_DB) as found:
        yield found


@pytest.fixture
def trail(scratch, monkeypatch):
    """The scratch database's engine; the commands connect to it (as the owner)."""
    return commands_use(scratch, monkeypatch)


def add(db, username: str, at: str, action: str = "write", **fields) -> None:
    """An entry at ``at``: a Beijing time, or SQL for one (``now() - ...``)."""
    when = at if at.startswith("now()") else "CAST(:at AS timestamp) AT TIME ZONE 'Asia/Shanghai'"
    with db.begin() as conn:
        conn.execute(text(f"INSERT INTO audit_log (at, username, action, target, address, detail) "
                          f"VALUES ({when}, :u, :a, :t, :addr, CAST(:d AS jsonb))"),
                     {"at": at, "u": username, "a": action, "t": fields.get("target"),
                      "addr": fields.get("address"), "d": json.dumps(fields.get("detail", {}))})


def usernames(db, where: str) -> list[str]:
    with db.connect() as conn:
        return conn.execute(text(f"SELECT username FROM audit_log WHERE {where} ORDER BY id")
                            ).scalars().all()


# -- gridmap audit --------------------------------------------------------------------------------
def test_the_trail_prints_as_a_table_newest_first(trail, capsys):
    add(trail, "cli-reader", "2024-03-01 09:00", "login", address="10.0.0.7",
        detail={"kind": "token"})
    add(trail, "cli-reader", "2024-03-02 23:59:59", "export", target="GET /api/v1/export")
    add(trail, "cli-reader", "2024-03-03 00:00", "write", target="POST /api/v1/issues")
    assert gridmap(["audit", "--username", "cli-reader"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["AT", "USERNAME", "ACTION", "OUTCOME", "ADDRESS", "TARGET", "DETAIL"]
    assert [line.split()[:4] for line in lines[1:]] == [
        ["2024-03-03", "00:00:00", "cli-reader", "write"],
        ["2024-03-02", "23:59:59", "cli-reader", "export"],
        ["2024-03-01", "09:00:00", "cli-reader", "login"]]
    assert lines[3].split()[4:] == ["ok", "10.0.0.7", "-", '{"kind":"token"}']


@pytest.mark.parametrize(("user", "options", "shown"), [
    ("cli-action", ["--action", "export"], ["export"]),
    ("cli-day", ["--since", "2024-03-02", "--until", "2024-03-02"], ["export"]),
    ("cli-since", ["--since", "2024-03-02T00:00:00+08:00"], ["write", "export"]),
    ("cli-until", ["--until", "2024-03-01T16:00:00Z"], ["export", "login"]),  # 03-02 00:00 Beijing
    ("cli-limit", ["--limit", "1"], ["write"]),
])
def test_the_trail_is_filtered(trail, capsys, user, options, shown):
    for at, action in (("2024-03-01 09:00", "login"), ("2024-03-02 00:00", "export"),
                       ("2024-03-03 00:00", "write")):
        add(trail, user, at, action)
    assert gridmap(["audit", "--username", user, *options]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert [row.split()[3] for row in rows] == shown


def test_nothing_found_says_so(trail, capsys):
    assert gridmap(["audit", "--username", "nobody-was-here"]) == 0
    assert capsys.readouterr().out.strip() == "no audit entries match"


@pytest.mark.parametrize(("options", "says"), [
    (["--action", "wipe"], "unknown audit action 'wipe'; known: login, login_failed"),
    (["--since", "last week"], "expected a day (2025-03-01) or an instant"),
    (["--limit", "0"], "expected a whole number of at least 1, got '0'"),
])
def test_bad_options_are_refused_saying_what_is_wrong(trail, capsys, options, says):
    with pytest.raises(SystemExit) as exited:
        gridmap(["audit", *options])
    assert exited.value.code == 2 and says in capsys.readouterr().err


def test_since_after_until_is_refused(trail, capsys):
    assert gridmap(["audit", "--since", "2024-03-05", "--until", "2024-03-01"]) == 1
    assert "since (2024-03-05) is after until (2024-03-01)" in capsys.readouterr().err


# -- gridmap audit prune ---------------------------------------------------------------------------
def test_a_prune_under_the_retention_is_refused_and_removes_nothing(trail, capsys):
    add(trail, "cli-prune-refused", "now() - interval '400 days'")
    assert gridmap(["audit", "prune", "--older-than-days", str(AUDIT_RETENTION_DAYS - 1)]) == 1
    err = capsys.readouterr().err
    assert (f"audit entries are kept at least {AUDIT_RETENTION_DAYS} days; "
            f"{AUDIT_RETENTION_DAYS - 1} is too few") in err
    assert usernames(trail, "username = 'cli-prune-refused'") == ["cli-prune-refused"]
    assert usernames(trail, "action = 'audit_prune' AND detail->>'older_than_days' = "
                            f"'{AUDIT_RETENTION_DAYS - 1}'") == []


def test_a_prune_removes_only_older_entries_and_is_itself_audited(trail, capsys):
    add(trail, "cli-prune-old", "now() - interval '400 days'")
    add(trail, "cli-prune-kept", "now() - interval '200 days'")
    add(trail, "cli-prune-kept", "now()")
    with trail.connect() as conn:
        older = conn.execute(text("SELECT count(*) FROM audit_log WHERE at < now() - "
                                  "interval '365 days'")).scalar_one()
    assert older >= 1
    assert gridmap(["audit", "prune", "--older-than-days", "365"]) == 0
    plural = "entry" if older == 1 else "entries"
    assert f"removed {older} audit {plural} older than 365 days" in capsys.readouterr().out
    assert usernames(trail, "username LIKE 'cli-prune-%'") == ["cli-prune-kept", "cli-prune-kept"]
    with trail.connect() as conn:
        prune = conn.execute(text("SELECT username, detail FROM audit_log WHERE action = "
                                  "'audit_prune' ORDER BY id DESC LIMIT 1")).one()
    assert prune == (f"cli:{getpass.getuser()}", {"older_than_days": 365, "removed": older})


# -- the application's role: db status, db upgrade, the settings -------------------------------------
def test_db_status_says_which_role_the_server_uses(monkeypatch, capsys, database_url,
                                                   app_database_url):
    monkeypatch.setenv("DATABASE_URL", app_database_url)
    monkeypatch.setenv("GRIDMAP_OWNER_DATABASE_URL", database_url)
    assert gridmap(["db", "status"]) == 0
    role = make_url(app_database_url).username
    assert (f"the server connects as {role}, which may read and add audit entries but never "
            "change or remove them") in capsys.readouterr().out


def test_db_status_warns_when_the_server_connects_as_the_owner(monkeypatch, capsys, database_url,
                                                               engine):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("GRIDMAP_OWNER_DATABASE_URL", raising=False)
    assert gridmap(["db", "status"]) == 0
    out = capsys.readouterr().out
    owner = make_url(database_url).username
    with engine.connect() as conn:
        superuser = conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
                                 ).scalar_one()
    why = f"{owner} is a superuser" if superuser else f"{owner} owns the audit table"
    assert f"warning: the server connects as {owner}: {why}" in out
    assert "The audit trail is not append-only against it" in out


def test_db_status_of_the_private_cluster_names_its_application_role(monkeypatch, capsys,
                                                                      local_cluster):
    if local_cluster is None:
        pytest.fail("this test reads the cluster the tests start (no GRIDMAP_TEST_DATABASE_URL)")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("GRIDMAP_OWNER_DATABASE_URL", raising=False)
    monkeypatch.setenv("GRIDMAP_PG_DIR", str(local_cluster.link))
    assert gridmap(["db", "status"]) == 0
    out = capsys.readouterr().out
    assert "running" in out and "the server connects as gridmap_app, which may read" in out


def test_db_upgrade_grants_the_role_database_url_names(monkeypatch, capsys, scratch,
                                                       app_database_url):
    url, db = scratch
    role = make_url(app_database_url).username
    with db.begin() as conn:
        conn.execute(text(f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{role}"'))
    app_url = make_url(app_database_url).set(database=SCRATCH_DB).render_as_string(
        hide_password=False)
    monkeypatch.setenv("DATABASE_URL", app_url)
    monkeypatch.setenv("GRIDMAP_OWNER_DATABASE_URL", url)
    assert gridmap(["db", "upgrade"]) == 0
    with db.connect() as conn:
        granted = conn.execute(text(
            "SELECT has_table_privilege(:r, 'issues', 'INSERT'), "
            "has_table_privilege(:r, 'audit_log', 'SELECT'), "
            "has_table_privilege(:r, 'audit_log', 'DELETE')"), {"r": role}).one()
    assert tuple(granted) == (True, True, False)


def test_the_server_and_the_commands_use_different_roles_of_the_private_cluster(tmp_path):
    record = {"port": 5999, "password": "owner-secret"}
    (tmp_path / "gridmap.json").write_text(json.dumps(record))
    settings = Settings(database=DatabaseSettings(pg_dir=tmp_path))
    assert make_url(settings.resolved_database_url()).username == "gridmap"
    with pytest.raises(SetupError, match="no application role yet: run `gridmap db start`"):
        settings.application_database_url()  # a cluster made before there was one
    (tmp_path / "gridmap.json").write_text(json.dumps({**record, "app_password": "app-secret"}))
    app = make_url(settings.application_database_url())
    assert (app.username, app.password, app.port) == ("gridmap_app", "app-secret", 5999)
    assert LocalCluster.url(record) == settings.resolved_database_url()


def test_an_owner_url_of_ones_own_is_for_the_commands_only():
    settings = Settings(database=DatabaseSettings(url="postgresql://web:a@db/gis",
                                                  owner_url="postgresql://gis:b@db/gis"))
    assert settings.application_database_url() == "postgresql://web:a@db/gis"
    assert settings.resolved_database_url() == "postgresql://gis:b@db/gis"
    alone = Settings(database=DatabaseSettings(url="postgresql://gis:b@db/gis"))
    assert alone.application_database_url() == alone.resolved_database_url()
