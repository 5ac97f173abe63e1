"""The private cluster: start/stop/status on a throwaway directory, its hot standby, and the
missing-binaries message."""

import contextlib
import os
import socket
import tempfile
from pathlib import Path

import psycopg
import pytest

from gis.db import cluster as pg_cluster
from gis.errors import SetupError


def test_start_stop_start_keeps_data_and_reports_status():
    root = Path(tempfile.mkdtemp(prefix="gridmap-cluster-"))
    os.chmod(root, 0o755)
    cluster = pg_cluster.LocalCluster(root / "pg")
    try:
        info = cluster.start()
        assert info.running
        dsn = info.url.replace("postgresql+psycopg", "postgresql")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)")
            assert conn.execute("SELECT postgis_lib_version()").fetchone()[0]
        assert cluster.stop() is True
        assert cluster.info().running is False
        assert cluster.stop() is False
        info = cluster.start()
        with psycopg.connect(info.url.replace("postgresql+psycopg", "postgresql")) as conn:
            assert conn.execute("SELECT x FROM kept").fetchone() == (42,)
        # the server listens on loopback only, with a password
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(f"host=127.0.0.1 port={info.port} user=gridmap password=wrong dbname=gridmap")
    finally:
        cluster.destroy()
        root.rmdir()


def test_the_server_gets_a_role_of_its_own_also_on_a_cluster_made_before_it_had_one():
    root = Path(tempfile.mkdtemp(prefix="gridmap-cluster-"))
    os.chmod(root, 0o755)
    cluster = pg_cluster.LocalCluster(root / "pg")
    try:
        info = cluster.start()
        assert _session_user(info.app_url) == "gridmap_app"
        # as a cluster made before the application role: no password recorded, no role
        record = cluster.record()
        del record["app_password"]
        cluster._write_record(record)
        with psycopg.connect(_dsn(info.url), autocommit=True) as conn:
            conn.execute("DROP ROLE gridmap_app")
        assert cluster.info().app_url is None
        assert cluster.stop() is True
        info = cluster.start()  # `gridmap db start`
        assert info.app_url is not None and "app_password" in cluster.record()
        assert _session_user(info.app_url) == "gridmap_app"
        with psycopg.connect(_dsn(info.url)) as conn:
            assert conn.execute("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles "
                                "WHERE rolname = 'gridmap_app'").fetchone() == (False, False, False)
    finally:
        cluster.destroy()
        root.rmdir()


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg", "postgresql")


def _session_user(url: str) -> str:
    with psycopg.connect(_dsn(url)) as conn:
        return conn.execute("SELECT session_user").fetchone()[0]


def test_missing_binaries_name_the_debian_packages(monkeypatch):
    monkeypatch.setattr(pg_cluster.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(pg_cluster.shutil, "which", lambda name: None)
    with pytest.raises(SetupError, match="postgresql-15-postgis-3"):
        pg_cluster.find_pg_bin()


def test_a_chosen_bin_directory_is_used_or_refused_by_name(tmp_path):
    found = pg_cluster.find_pg_bin()
    assert pg_cluster.find_pg_bin(found) == found
    assert pg_cluster.LocalCluster(tmp_path / "pg", pg_bin=found).pg_bin == found
    with pytest.raises(SetupError, match=f"{tmp_path} holds no initdb and pg_ctl"):
        pg_cluster.find_pg_bin(tmp_path)
    with pytest.raises(SetupError, match="GRIDMAP_PG_BIN"):
        pg_cluster.LocalCluster(tmp_path / "pg", pg_bin=tmp_path).start()


def test_missing_postgis_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(pg_cluster.glob, "glob", lambda pattern: [])
    fake_bin = tmp_path / "17" / "bin"
    fake_bin.mkdir(parents=True)
    with pytest.raises(SetupError, match="postgresql-17-postgis-3"):
        pg_cluster.check_postgis(fake_bin)


@pytest.mark.skipif(os.geteuid() != 0, reason="the root-only path: data kept outside /root")
def test_root_checkout_unreachable_by_service_user_uses_a_symlink(tmp_path):
    private = Path(tempfile.mkdtemp(prefix="gridmap-private-"))
    os.chmod(private, 0o700)  # like /root: the service user cannot traverse it
    cluster = pg_cluster.LocalCluster(private / "data" / "pg")
    try:
        info = cluster.start()
        assert (private / "data" / "pg").is_symlink()
        assert str(info.directory).startswith(str(pg_cluster.SHARED_ROOT))
    finally:
        cluster.destroy()
        (private / "data").rmdir()
        private.rmdir()


def test_a_hot_standby_streams_the_primarys_writes_and_survives_restarts(monkeypatch):
    """`gridmap db start --replica`'s cluster code: a standby beside the primary, made once over
    a replication slot, started again as it is, refusing writes, and streaming again after both
    were stopped and started (with the primary on another port). The caller's shell has libpq
    variables for another server (the standby still logs in with its own passfile)."""
    monkeypatch.setenv("PGPASSWORD", "a-password-of-another-server")
    monkeypatch.setenv("PGUSER", "someone_else")
    root = Path(tempfile.mkdtemp(prefix="gridmap-cluster-"))
    os.chmod(root, 0o755)
    primary = pg_cluster.LocalCluster(root / "pg")
    standby = primary.replica()
    try:
        p = primary.start()
        s = standby.start()
        assert standby.directory.parent == primary.directory.parent  # data/pg-replica
        assert (s.running, s.standby, p.standby) == (True, True, False) and s.port != p.port
        assert standby.start().port == s.port  # starting it again changes nothing
        with psycopg.connect(_dsn(p.url), autocommit=True) as conn:
            assert conn.execute("SELECT current_setting('wal_level'), active FROM "
                                "pg_replication_slots WHERE slot_name = %s",
                                (pg_cluster.SLOT,)).fetchone() == ("replica", True)
        _write_and_see_it_replayed(p.url, s.url, 1)
        with psycopg.connect(_dsn(s.url)) as conn, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO kept VALUES (0)")

        assert standby.stop() and primary.stop()
        with _port_taken(p.port):  # the primary's port is taken meanwhile: it moves
            p = primary.start()
        s = standby.start()
        _write_and_see_it_replayed(p.url, s.url, 2)
    finally:
        standby.destroy()
        primary.destroy()
        root.rmdir()


def _write_and_see_it_replayed(primary_url: str, standby_url: str, value: int) -> None:
    with psycopg.connect(_dsn(primary_url), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS kept (x int)")
        conn.execute("INSERT INTO kept VALUES (%s)", (value,))
        lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    with psycopg.connect(_dsn(standby_url), autocommit=True) as conn:
        assert _replayed_within(conn, lsn, attempts=200)
        assert conn.execute("SELECT pg_is_in_recovery(), max(x) FROM kept").fetchone() == (True, value)


def _replayed_within(conn, lsn, attempts: int) -> bool:
    """Whether the standby replays up to ``lsn`` within ``attempts`` looks, 50 ms apart."""
    import time

    for _ in range(attempts):
        if conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0]:
            return True
        time.sleep(0.05)
    return False


@contextlib.contextmanager
def _port_taken(port: int):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()
        yield
