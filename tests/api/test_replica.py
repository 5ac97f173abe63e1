"""A real streaming standby: `gridmap db start --replica` beside the tests' cluster, and the API
with GRIDMAP_READ_DATABASE_URL pointing at it.

Shown here: the heavy reads run on the standby (a read session there reports recovery and the
standby's port; a report the standby has not replayed is missing from a leader's dashboard), a
write on the primary arrives there, the read sessions refuse writes, a writer reads their own
write from the primary while the standby lags (replay paused: lag made on purpose, not waited
for), exports still audit on the primary, and an unreachable standby sends reads to the primary.

The primary is the tests' own cluster, with the demo (or, when the tests run on a server of
one's own, GRIDMAP_TEST_DATABASE_URL, a private cluster of this module's); its standby lives
beside it and is removed, with its replication slot, when the module ends. What the tests write
is committed (two servers see it) and deleted afterwards (:func:`committed_changes`).
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from api.cli import main as gridmap
from api.deps import OWN_WRITE_COOKIE, OWN_WRITE_HEADER
from api.main import create_app
from api.settings import DatabaseSettings, MediaSettings, Settings
from gis.db.cluster import LocalCluster, StandbyCluster
from gis.db.engine import make_engine
from gis.db.replica import PRIMARY, REPLAYED_SQL, STANDBY, make_read_engine
from tests.api.conftest import bearer
from tests.conftest import committed_changes, media_root_of_the_run

SUMMARY = "/api/v1/dashboard/summary"


@dataclass
class Pair:
    primary: LocalCluster
    standby: StandbyCluster
    owner: Engine  # the primary's owner, to set data up and look at it

    def standby_sql(self, query: str, **params):
        """Run ``query`` on the standby as its superuser (to pause and resume replay)."""
        with make_engine(self.standby.info().url, pool_size=1).connect() as conn:
            return conn.execute(text(query), params).all()


@pytest.fixture(scope="module")
def pair(request: pytest.FixtureRequest, local_cluster: LocalCluster | None) -> Iterator[Pair]:
    root = None
    if local_cluster is None:  # a server of one's own: this module's private primary
        root = Path(tempfile.mkdtemp(prefix="gridmap-replica-"))
        os.chmod(root, 0o755)
        primary = LocalCluster(root / "pg", pg_bin=DatabaseSettings().pg_bin)
    else:
        request.getfixturevalue("demo_engine")  # the demo is loaded before the copy is made
        primary = local_cluster
    standby = primary.replica()
    try:
        first, again = _db_start_replica(primary), _db_start_replica(primary)
        assert first == again  # idempotent: the same standby, on the same port
        owner = make_engine(primary.info().url, pool_size=2)
        if root is not None:
            _load_demo(owner)
        yield Pair(primary, standby, owner)
        owner.dispose()
    finally:
        standby.destroy()
        if root is not None:
            primary.destroy()
            root.rmdir()


def _db_start_replica(primary: LocalCluster) -> str:
    """Run `gridmap db start --replica` on ``primary``'s directory; the URL it prints."""
    printed = [line for line in _gridmap_db(primary, "start", "--replica").splitlines()
               if line.startswith("GRIDMAP_READ_DATABASE_URL=")]
    assert printed == [f"GRIDMAP_READ_DATABASE_URL={primary.replica().info().app_url}"]
    return printed[0]


def _gridmap_db(primary: LocalCluster, *args: str) -> str:
    """What `gridmap db ARGS` prints for the private cluster ``primary``."""
    import contextlib
    import io

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        for name in ("DATABASE_URL", "GRIDMAP_DATABASE_URL", "GRIDMAP_OWNER_DATABASE_URL",
                     "GRIDMAP_READ_DATABASE_URL"):
            mp.delenv(name, raising=False)
        mp.setenv("GRIDMAP_PG_DIR", str(primary.link))
        mp.chdir(tempfile.gettempdir())  # no .env of a checkout
        assert gridmap(["db", *args]) == 0
    return out.getvalue()


def _load_demo(owner: Engine) -> None:
    from data.generator import generate_demo
    from gis.db.engine import session_scope
    from gis.exchange.demo_loading import load_demo
    from gis.geotag.assign import assign_stored_rows
    from gis.people.passwords import hash_password
    from tests.conftest import DEMO_PASSWORD, demo_today

    with session_scope(owner) as session:
        load_demo(session, generate_demo(today=demo_today()), hash_password(DEMO_PASSWORD))
    assign_stored_rows(owner, include_closed=True, record_events=False)


def _settings(pair: Pair, read_url: str | None = None) -> Settings:
    return Settings(database=DatabaseSettings(url=pair.primary.info().app_url,
                                              read_url=read_url or pair.standby.info().app_url),
                    media=MediaSettings(root=media_root_of_the_run()))


@pytest.fixture(scope="module")
def app(pair: Pair) -> Iterator:
    """The app with its heavy reads on the standby (started once; its requests commit)."""
    application = create_app(_settings(pair))
    with TestClient(application):
        yield application


def _client(app) -> TestClient:
    """A client of its own (its own cookies) of the started ``app``."""
    return TestClient(app)


@pytest.fixture(scope="module")
def leader(app) -> dict:
    return bearer(_client(app), "leader")


# -- the cluster and the read sessions ------------------------------------------------------------
def test_a_heavy_read_runs_on_the_standby_and_a_write_arrives_there(app, pair):
    session, served_by = app.state.read_router.session()
    with session:
        recovery, port = session.execute(text(
            "SELECT pg_is_in_recovery(), current_setting('port')::int")).one()
    assert (served_by, recovery, port) == (STANDBY, True, pair.standby.info().port)

    key = uuid.uuid4().hex
    with committed_changes(pair.owner):
        lsn = _add_api_key(pair.owner, key)
        assert _replayed_within(pair, lsn, attempts=400)
        session, _ = app.state.read_router.session()
        with session:
            assert session.execute(text("SELECT label FROM api_keys WHERE key_hash = :k"),
                                   {"k": key}).scalar_one() == "replica-test"


def _add_api_key(owner: Engine, key: str) -> str:
    """A committed write on the primary; the primary's WAL position after it."""
    with owner.begin() as conn:
        conn.execute(text("INSERT INTO api_keys (key_hash, label) VALUES (:k, 'replica-test')"),
                     {"k": key})
    with owner.connect() as conn:
        return conn.execute(text("SELECT pg_current_wal_lsn()::text")).scalar_one()


def _replayed_within(pair: Pair, lsn: str, attempts: int) -> bool:
    """Whether the standby replays up to ``lsn`` within ``attempts`` looks, 50 ms apart."""
    for _ in range(attempts):
        if pair.standby_sql(REPLAYED_SQL, lsn=lsn)[0][0]:
            return True
        time.sleep(0.05)
    return False


def test_the_read_sessions_refuse_writes_wherever_they_run(app, pair):
    standby, served_by = app.state.read_router.session()
    fallback = app.state.read_router.primary()  # where reads go when the standby cannot serve
    on_primary = make_read_engine(pair.primary.info().app_url, pool_size=1)  # the guard itself
    try:
        for session in (standby, fallback, on_primary.connect()):
            with session, pytest.raises(DBAPIError, match="read-only transaction"):
                session.execute(text("UPDATE categories SET name_en = name_en"))
    finally:
        on_primary.dispose()
    assert served_by == STANDBY


# -- own writes ----------------------------------------------------------------------------------
def test_a_writer_reads_their_own_write_from_the_primary_while_the_standby_lags(app, pair, leader):
    writer, other = _client(app), _client(app)
    with committed_changes(pair.owner), _replay_paused(pair):
        before = other.get(SUMMARY, headers=leader).json()["open"]
        r = writer.post("/api/v1/issues", headers={**leader, "Idempotency-Key": str(uuid.uuid4())},
                        json={"category": "garbage", **_a_point_in_a_grid(pair.owner)})
        assert r.status_code == 201, r.text
        lsn = r.headers[OWN_WRITE_HEADER]
        assert writer.cookies[OWN_WRITE_COOKIE].strip('"') == lsn  # quoted: it holds a /
        # the writer: from the primary; anyone else: from the standby, which has not replayed it
        assert writer.get(SUMMARY, headers=leader).json()["open"] == before + 1
        assert other.get(SUMMARY, headers=leader).json()["open"] == before
        # a client that keeps no cookies sends the position back in the header
        assert other.get(SUMMARY, headers={**leader, OWN_WRITE_HEADER: lsn}).json()["open"] == before + 1
        pair.standby_sql("SELECT pg_wal_replay_resume()")
        assert _replayed_within(pair, lsn, attempts=400)
        assert other.get(SUMMARY, headers=leader).json()["open"] == before + 1  # arrived


def test_db_status_shows_the_standby_and_how_far_behind_it_is(pair):
    standby = pair.standby.info()
    idle = _gridmap_db(pair.primary, "status")
    assert f"hot standby: {standby.directory}, port {standby.port}, running" in idle
    assert f"read database 127.0.0.1:{standby.port}/gridmap: streaming" in idle
    assert "replay paused" not in idle
    with committed_changes(pair.owner), _replay_paused(pair):
        _add_api_key(pair.owner, uuid.uuid4().hex)
        paused = _gridmap_db(pair.primary, "status")
    behind = re.search(r"streaming, replayed up to \S+, (\d+) bytes of WAL behind the primary, "
                       r"replay paused", paused)
    assert behind and int(behind[1]) > 0, paused


class _replay_paused:
    """Replay paused on the standby (WAL still arrives): a lag made on purpose."""

    def __init__(self, pair: Pair):
        self.pair = pair

    def __enter__(self):
        self.pair.standby_sql("SELECT pg_wal_replay_pause()")
        for _ in range(400):
            if self.pair.standby_sql("SELECT pg_get_wal_replay_pause_state()")[0][0] == "paused":
                return self
            time.sleep(0.05)
        raise AssertionError("the standby did not pause its replay")

    def __exit__(self, *exc):
        self.pair.standby_sql("SELECT pg_wal_replay_resume()")


def _a_point_in_a_grid(owner: Engine) -> dict:
    with owner.connect() as conn:
        lon, lat = conn.execute(text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM grids "
            "WHERE valid_to IS NULL ORDER BY code LIMIT 1) g")).one()
    return {"lon": lon, "lat": lat}


def test_a_garbled_position_is_ignored(app, leader):
    assert _client(app).get(SUMMARY, headers={**leader, OWN_WRITE_HEADER: "0/1'; --"}
                            ).status_code == 200


# -- every heavy read goes through the read session -----------------------------------------------
def _tile(lon: float, lat: float, z: int) -> str:
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return f"{z}/{x}/{y}"


def _heavy_reads(pair: Pair) -> list[str]:
    point = _a_point_in_a_grid(pair.owner)
    with pair.owner.connect() as conn:
        grid = conn.execute(text("SELECT code FROM grids WHERE valid_to IS NULL "
                                 "ORDER BY code LIMIT 1")).scalar_one()
    return ["/api/v1/stats/grids", "/api/v1/stats/grids?format=csv", "/api/v1/stats/timeline",
            "/api/v1/stats/workers", "/api/v1/dashboard/summary", "/api/v1/dashboard/trend",
            "/api/v1/dashboard/overdue", "/api/v1/dashboard/heat", "/dash",
            "/maps/heatmap", "/maps/overview", "/api/v1/evaluation?role=grid",
            "/api/v1/evaluation/export.xlsx", "/api/v1/evaluation/export.csv?role=grid",
            f"/api/v1/grids/{grid}/package", "/tiles/issues.json",
            f"/tiles/issues/{_tile(point['lon'], point['lat'], 15)}.mvt",
            "/ogc/collections/issues/items?limit=5"]


def test_every_heavy_read_runs_on_a_read_session_and_exports_audit_on_the_primary(app, pair, leader):
    router = app.state.read_router
    asked: list[str] = []
    real = router.session

    def counted(after_lsn=None):
        session, served_by = real(after_lsn)
        asked.append(served_by)
        return session, served_by

    audited = "SELECT count(*) FROM audit_log WHERE action IN ('export', 'package')"
    exports_before = pair.owner.connect().execute(text(audited)).scalar_one()
    client = _client(app)
    router.session = counted
    try:
        for path in _heavy_reads(pair):
            asked.clear()
            r = client.get(path, headers=leader)
            assert r.status_code in (200, 204), (path, r.status_code, r.text[:300])
            assert asked == [STANDBY], path
    finally:
        del router.session
    with pair.owner.connect() as conn:
        assert conn.execute(text(audited)).scalar_one() == exports_before + 4


# -- a standby that cannot be reached ------------------------------------------------------------
def test_an_unreachable_standby_sends_heavy_reads_to_the_primary(pair, caplog):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    dead = pair.standby.info().app_url.replace(f":{pair.standby.info().port}/", f":{closed}/")
    application = create_app(_settings(pair, read_url=dead))
    with TestClient(application) as client, caplog.at_level("WARNING", logger="gridmap.replica"):
        headers = bearer(client, "leader")
        for _ in range(3):
            assert client.get(SUMMARY, headers=headers).status_code == 200
        assert application.state.read_router.session()[1] == PRIMARY
    warnings = [r.getMessage() for r in caplog.records if r.name == "gridmap.replica"]
    assert len(warnings) == 1  # once, not per request
    assert f"127.0.0.1:{closed}/gridmap cannot be reached" in warnings[0]
    assert "gridmap_app" not in warnings[0] and "leader" not in warnings[0]
