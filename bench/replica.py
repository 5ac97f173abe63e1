"""How far the hot standby falls behind under report intake, and what read routing costs a report.

    .venv/bin/python bench/replica.py                          # about 5 minutes
    .venv/bin/python bench/replica.py --reports 3000 --rounds 1 --clients 8

Makes a throwaway primary and its standby with `gridmap db start --replica` (under
/tmp/gridmap-replica-bench-*), loads the demo into it with `gridmap demo`, then runs
bench/load.py (`gridmap serve`, 2 workers, POST /api/v1/issues with idempotency keys) in the same
run without GRIDMAP_READ_DATABASE_URL and with it pointing at the standby (each acknowledged
change then also reads the primary's WAL position for the writer's marker), alternated for
--rounds rounds so that both modes see the same drift in the machine's load. While
each runs, the primary's view of the standby (pg_stat_replication) is sampled every 50 ms: the
WAL not yet replayed there (bytes) and `replay_lag` (the time from flushing WAL on the primary to
its replay on the standby, as the primary measures it). After each run the standby must hold
exactly the primary's issues. The clusters are removed at the end, also when a run fails.

Prints a table, the cost of the marker's query alone, and the last line
`replica: lag_p50_ms=<x> lag_p99_ms=<x> lag_max_ms=<x> behind_max_kb=<x> reports_per_s=<x>
reports_per_s_routed=<x> routed_ratio=<x> marker_us=<x>` (lags over every sample of every run;
report rates are the medians of the runs).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg

from api.settings import Settings
from gis.db.cluster import SLOT, LocalCluster
from gis.db.engine import make_engine
from gis.db.replica import primary_lsn

ROOT = Path(__file__).resolve().parent.parent
RUN_TAG = f"replica bench {uuid.uuid4().hex[:8]}"  # marks the in-process reports, deleted after


def _cli(env: dict, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"gridmap {' '.join(args)} failed:\n{done.stderr}{done.stdout}")
    return done.stdout


class LagSampler(threading.Thread):
    """Samples the primary's pg_stat_replication row of the standby every ``every_s``."""

    def __init__(self, dsn: str, every_s: float = 0.05):
        super().__init__(daemon=True)
        self.dsn, self.every_s = dsn, every_s
        self.lag_ms: list[float] = []
        self.behind_bytes: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                row = conn.execute(
                    "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint, "
                    "extract(epoch FROM replay_lag)::float8 FROM pg_stat_replication "
                    "WHERE application_name = %s", (SLOT,)).fetchone()
                if row is not None:
                    self.behind_bytes.append(int(row[0] or 0))
                    if row[1] is not None:
                        self.lag_ms.append(row[1] * 1000)
                time.sleep(self.every_s)


def _pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100)[q - 1]


def _load(env: dict, args, primary_dsn: str) -> tuple[dict, LagSampler]:
    sampler = LagSampler(primary_dsn)
    sampler.start()
    try:
        out = _cli_script(env, "bench/load.py", "--clients", str(args.clients),
                          "--reports", str(args.reports), "--workers", str(args.workers))
    finally:
        sampler.stop.set()
        sampler.join()
    line = next(x for x in out.splitlines() if x.startswith("load: "))
    figures = dict(pair.split("=") for pair in line[len("load: "):].split())
    print("   ", "\n    ".join(out.strip().splitlines()))
    return figures, sampler


def _cli_script(env: dict, script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, script, *args], env=env, cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{script} failed:\n{done.stderr}{done.stdout}")
    return done.stdout


def _same_issues(primary_dsn: str, standby_dsn: str, attempts: int = 600) -> int:
    """Wait (bounded) until the standby has replayed all the primary wrote; its issue count."""
    with psycopg.connect(primary_dsn, autocommit=True) as p:
        lsn = p.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        expected = p.execute("SELECT count(*) FROM issues").fetchone()[0]
    with psycopg.connect(standby_dsn, autocommit=True) as s:
        for _ in range(attempts):
            if s.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0]:
                break
            time.sleep(0.05)
        got = s.execute("SELECT count(*) FROM issues").fetchone()[0]
    if got != expected:
        raise SystemExit(f"the standby holds {got} issues, the primary {expected}")
    return got


def _wal_position_cost(dsn: str, calls: int = 2000) -> tuple[float, float]:
    """Median µs of what the own-write marker adds to a change, as the server runs it
    (`gis.db.replica.primary_lsn`: a pooled connection, its liveness check, the query), and of
    the bare query on an open connection."""
    engine = make_engine(dsn, pool_size=1)
    try:
        primary_lsn(engine)
        marker = _median_us(lambda: primary_lsn(engine), calls)
    finally:
        engine.dispose()
    with psycopg.connect(dsn, autocommit=True) as conn:
        bare = _median_us(lambda: conn.execute("SELECT pg_current_wal_lsn()::text").fetchone(),
                          calls)
    return marker, bare


def _median_us(call, calls: int) -> float:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1e6)
    return statistics.median(times)


def _sequential(primary: LocalCluster, read_url: str, password: str, n: int) -> dict[str, float]:
    """Median ms of one report sent alone, in-process (TestClient, one connection at a time), to
    the app without and with the read database, alternating request by request so that both see
    the same machine; the reports are deleted afterwards."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from api.settings import DatabaseSettings

    app_url = primary.info().app_url
    apps = {"primary only": create_app(Settings(database=DatabaseSettings(url=app_url))),
            "reads routed": create_app(Settings(database=DatabaseSettings(url=app_url,
                                                                          read_url=read_url)))}
    times: dict[str, list[float]] = {label: [] for label in apps}
    with TestClient(apps["primary only"]) as a, TestClient(apps["reads routed"]) as b:
        clients = {"primary only": a, "reads routed": b}
        token = a.post("/api/v1/auth/token", data={"username": "worker01", "password": password})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        body = {"category": "other", "lon": 0.0, "lat": 0.0, "description": RUN_TAG}
        body |= _a_point(primary)
        for i in range(n):
            for label, client in (clients.items() if i % 2 else reversed(clients.items())):
                started = time.perf_counter()
                r = client.post("/api/v1/issues", json=body,
                                headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
                times[label].append((time.perf_counter() - started) * 1000)
                assert r.status_code == 201, r.text
    with psycopg.connect(_dsn(primary.info().url), autocommit=True) as conn:
        conn.execute("DELETE FROM issue_events WHERE issue_id IN "
                     "(SELECT id FROM issues WHERE description = %s)", (RUN_TAG,))
        conn.execute("DELETE FROM issues WHERE description = %s", (RUN_TAG,))
    return {label: statistics.median(t) for label, t in times.items()}


def _a_point(primary: LocalCluster) -> dict:
    with psycopg.connect(_dsn(primary.info().url)) as conn:
        lon, lat = conn.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p "
                                "FROM grids WHERE valid_to IS NULL ORDER BY code LIMIT 1) g"
                                ).fetchone()
    return {"lon": lon, "lat": lat}


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg", "postgresql")


def _report(runs: dict, cost: tuple[float, float], alone: dict[str, float]) -> None:
    print(f"\n{'run':<14}{'reports/s':>10}{'p99 ms':>8}{'samples':>9}{'lag p50 ms':>11}"
          f"{'lag p99 ms':>11}{'lag max ms':>11}{'behind max KB':>14}{'standby = primary':>19}")
    for label, rows in runs.items():
        for f, s, issues in rows:
            print(f"{label:<14}{f['reports_per_s']:>10}{f['p99_ms']:>8}{len(s.behind_bytes):>9}"
                  f"{_pct(s.lag_ms, 50):>11.1f}{_pct(s.lag_ms, 99):>11.1f}"
                  f"{max(s.lag_ms, default=float('nan')):>11.1f}"
                  f"{max(s.behind_bytes, default=0) / 1024:>14.0f}{issues:>19}")
    rate = {label: statistics.median(int(f["reports_per_s"]) for f, _, _ in rows)
            for label, rows in runs.items()}
    lags = [x for rows in runs.values() for _, s, _ in rows for x in s.lag_ms]
    behind = [x for rows in runs.values() for _, s, _ in rows for x in s.behind_bytes]
    base, routed = rate["primary only"], rate["reads routed"]
    lsn_us = cost[0]
    print(f"one report alone, in-process, median of {alone['n']:.0f} each, alternated: "
          f"{alone['primary only']:.2f} ms without the read database, "
          f"{alone['reads routed']:.2f} ms with it")
    print(f"the own-write marker per change (pooled connection + pg_current_wal_lsn()), median of "
          f"2,000: {cost[0]:.0f} µs; the bare query on an open connection: {cost[1]:.0f} µs")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    print(f"replica: lag_p50_ms={_pct(lags, 50):.1f} lag_p99_ms={_pct(lags, 99):.1f} "
          f"lag_max_ms={max(lags, default=float('nan')):.1f} "
          f"behind_max_kb={max(behind, default=0) / 1024:.0f} reports_per_s={base:.0f} "
          f"reports_per_s_routed={routed:.0f} routed_ratio={routed / base:.2f} "
          f"marker_us={lsn_us:.0f} alone_ms={alone['primary only']:.2f} "
          f"alone_routed_ms={alone['reads routed']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--reports", type=int, default=1000, help="per run")
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of each mode, alternated (medians are reported)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--alone", type=int, default=300,
                        help="reports sent one at a time to each app (in-process)")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    root = Path(tempfile.mkdtemp(prefix="gridmap-replica-bench-"))
    os.chmod(root, 0o755)
    primary = LocalCluster(root / "pg")
    env = {k: v for k, v in os.environ.items() if k not in (
        "DATABASE_URL", "GRIDMAP_DATABASE_URL", "GRIDMAP_OWNER_DATABASE_URL",
        "GRIDMAP_READ_DATABASE_URL")}
    env |= {"GRIDMAP_PG_DIR": str(primary.link), "PYTHONPATH": str(ROOT)}
    try:
        started = time.perf_counter()
        out = _cli(env, "db", "start", "--replica")
        read_url = re.search(r"^GRIDMAP_READ_DATABASE_URL=(\S+)$", out, re.M)[1]
        _cli(env, "demo")
        print(f"primary, standby and demo ready in {time.perf_counter() - started:.0f} s")
        dsn = primary.info().url.replace("postgresql+psycopg", "postgresql")
        standby_dsn = primary.replica().info().url.replace("postgresql+psycopg", "postgresql")
        modes = (("primary only", {}), ("reads routed", {"GRIDMAP_READ_DATABASE_URL": read_url}))
        runs: dict[str, list[tuple[dict, LagSampler, int]]] = {label: [] for label, _ in modes}
        for round_ in range(1, args.rounds + 1):
            for label, extra in modes:  # alternated, so both see the same drift in the load
                print(f"round {round_}, {label}:")
                figures, sampler = _load(env | extra, args, dsn)
                runs[label].append((figures, sampler, _same_issues(dsn, standby_dsn)))
        cost = _wal_position_cost(dsn)
        alone = _sequential(primary, read_url, Settings().demo_password, args.alone)
        alone["n"] = args.alone
        _report(runs, cost, alone)
    finally:
        primary.replica().destroy()
        primary.destroy()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
