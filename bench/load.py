"""Bounded load on POST /api/v1/issues: N simulated tablets reporting with idempotency keys.

Starts `gridmap serve` (2 worker processes by default) on a free loopback port against the
configured database (DATABASE_URL or the private cluster), sends a bounded number of reports
from concurrent clients that retry on errors with the same key, then checks in the database that
every acknowledged report is stored exactly once, and deletes what it created.

    .venv/bin/python bench/load.py --clients 16 --reports 2000
    .venv/bin/python bench/load.py --faults     # also restart PostgreSQL and kill a server worker

With --faults, a third of the way in the private PostgreSQL is stopped for a few seconds and
started again (`gridmap db stop` / `start`), and two thirds in one server worker process is
killed: a uvicorn worker (a child of the server started by multiprocessing's spawn, never its
resource tracker), and the run waits to see a new worker take its place. 5xx answers inside the
planned outage (plus a short grace period) are expected; any other 5xx is counted as a failure.

The run fails (exit 1) when a report was lost or duplicated (counted per idempotency key in the
database), when fewer reports were acknowledged than sent, or, with --faults, when a fault did not
verifiably happen: PostgreSQL's start time did not change, no report was in flight while it was
down (answered 503 then, or sent before the restart and answered after the stop: the server may
hold a report until the database is back), or no replacement for the killed worker.
Loopback only; bounded in count (--reports) and time (--max-seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import text

from api.settings import Settings
from gis.db.engine import make_engine
from gis.issues.reporting import key_to_uuid

RUN_TAG = f"压力测试 / load test {uuid.uuid4().hex[:8]}"  # marks this run's rows
CATEGORIES = ["garbage", "parking_chaos", "streetlight_out", "sewer_blocked", "noise", "other"]


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    server_errors: list[float] = field(default_factory=list)  # monotonic times of 5xx answers
    timed_statuses: list[tuple[float, int]] = field(default_factory=list)  # (monotonic, status)
    # (sent, answered) monotonic times of every request that got an answer
    answered: list[tuple[float, float]] = field(default_factory=list)
    acknowledged: dict[str, int] = field(default_factory=dict)  # key -> issue id
    statuses: dict[int, int] = field(default_factory=dict)
    retries: int = 0
    failures: int = 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "GRIDMAP_PORT": str(port), "GRIDMAP_HOST": "127.0.0.1"}
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--workers", str(workers)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not come up in 60 s")


def _grid_points(engine, n: int) -> list[tuple[float, float]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT ST_X(p.geom), ST_Y(p.geom) FROM grids g, "
            "LATERAL ST_Dump(ST_GeneratePoints(g.geom, 20, 7)) p WHERE g.valid_to IS NULL"))][:n] or [
            (112.86, 36.84)]


async def _tablet(client: httpx.AsyncClient, token: str, points, jobs: asyncio.Queue, tally: Tally,
                  deadline: float) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    while not jobs.empty() and time.monotonic() < deadline:
        key = await jobs.get()
        lon, lat = random.choice(points)
        body = {"category": random.choice(CATEGORIES), "lon": lon, "lat": lat,
                "description": RUN_TAG, "channel": "app"}
        for attempt in range(8):
            started, sent = time.perf_counter(), time.monotonic()
            try:
                r = await client.post("/api/v1/issues", json=body,
                                      headers={**headers, "Idempotency-Key": key})
            except httpx.HTTPError:
                tally.retries += 1
                await asyncio.sleep(min(0.1 * 2 ** attempt, 3))
                continue
            tally.latencies.append(time.perf_counter() - started)
            tally.statuses[r.status_code] = tally.statuses.get(r.status_code, 0) + 1
            tally.timed_statuses.append((time.monotonic(), r.status_code))
            tally.answered.append((sent, time.monotonic()))
            if r.status_code >= 500:
                tally.server_errors.append(time.monotonic())
            if r.status_code in (200, 201):
                tally.acknowledged[key] = r.json()["id"]
                break
            tally.retries += 1
            await asyncio.sleep(min(0.1 * 2 ** attempt, 3))
        else:
            tally.failures += 1


@dataclass
class Outages:
    windows: list[tuple[float, float]] = field(default_factory=list)  # monotonic start, end
    log: list[str] = field(default_factory=list)
    database_down: tuple[float, float] | None = None  # when PostgreSQL was stopped
    database_restarted: bool = False  # pg_postmaster_start_time() moved on
    worker_replaced: bool = False

    def missing(self, tally: Tally) -> list[str]:
        """The planned faults that cannot be shown to have happened."""
        gone = []
        if not self.database_restarted:
            gone.append("PostgreSQL was not restarted (its start time did not change)")
        # Reports met the outage: answered with 503 while it lasted, or sent before it ended
        # and answered after it began (held by the server until the restart).
        down = self.database_down
        if down is None or not (
                any(down[0] <= at <= down[1] + 2.0
                    for at, status in tally.timed_statuses if status == 503)
                or any(sent <= down[1] and answered >= down[0]
                       for sent, answered in tally.answered)):
            gone.append("no report was in flight while PostgreSQL was down")
        if not self.worker_replaced:
            gone.append("no new server worker replaced the killed one")
        return gone

    def planned(self, at: float, grace: float = 2.0) -> bool:
        return any(start <= at <= end + grace for start, end in self.windows)


async def _progress(tally: Tally, count: int) -> None:
    while len(tally.acknowledged) < count:
        await asyncio.sleep(0.05)


async def _faults(server: subprocess.Popen, reports: int, tally: Tally, outages: Outages,
                  engine) -> None:
    """Restart PostgreSQL a third of the way in; kill one server worker two thirds in."""
    await _progress(tally, reports // 3)
    first_start = await asyncio.to_thread(_postmaster_started, engine)
    start = time.monotonic()
    await asyncio.to_thread(_gridmap, "db", "stop")
    stopped = time.monotonic()
    outages.log.append("PostgreSQL stopped")
    await asyncio.sleep(3)
    await asyncio.to_thread(_gridmap, "db", "start")
    outages.database_down = (stopped, time.monotonic())
    outages.database_restarted = \
        await asyncio.to_thread(_postmaster_started, engine) > first_start
    outages.windows.append((start, time.monotonic()))
    outages.log.append(f"PostgreSQL started again after {time.monotonic() - start:.1f} s")
    await _progress(tally, 2 * reports // 3)
    before = _worker_pids(server.pid)
    if not before:
        outages.log.append("no uvicorn worker found to kill")
        return
    victim = before[0]
    start = time.monotonic()
    os.kill(victim, 9)
    outages.log.append(f"killed server worker {victim} (of {len(before)})")
    outages.windows.append((start, start + 5))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = _worker_pids(server.pid)
        fresh = set(now) - set(before)
        if victim not in now and fresh and len(now) == len(before):
            outages.worker_replaced = True
            outages.log.append(f"worker {min(fresh)} took its place after "
                               f"{time.monotonic() - start:.1f} s")
            return
        await asyncio.sleep(0.2)


def _postmaster_started(engine):
    engine.dispose()  # a connection from before a restart is dead
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_postmaster_start_time()")).scalar_one()


def _gridmap(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "api.cli", *args], check=True, stdout=subprocess.DEVNULL)


def _worker_pids(parent: int) -> list[int]:
    """The uvicorn workers of the server ``parent``: its children that multiprocessing spawned to
    run the app. The resource tracker, also a child, is left out (killing it proves nothing)."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(parent)], capture_output=True, text=True)
    workers = []
    for pid in (int(p) for p in out.stdout.split()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # gone since ps listed it
            continue
        if "spawn_main" in cmdline and "resource_tracker" not in cmdline:
            workers.append(pid)
    return sorted(workers)


async def _run(port: int, tokens: list[str], points, reports: int, clients: int,
               max_seconds: float, server: subprocess.Popen | None = None,
               outages: Outages | None = None, engine=None) -> tuple[Tally, float]:
    jobs: asyncio.Queue = asyncio.Queue()
    for _ in range(reports):
        jobs.put_nowait(f"load-{uuid.uuid4()}")
    tally = Tally()
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30, limits=limits) as c:
        started = time.perf_counter()
        deadline = time.monotonic() + max_seconds
        tasks = [_tablet(c, tokens[i % len(tokens)], points, jobs, tally, deadline)
                 for i in range(clients)]
        if server is not None and outages is not None:
            tasks.append(_faults(server, reports, tally, outages, engine))
        await asyncio.gather(*tasks)
        return tally, time.perf_counter() - started


def login_workers(port: int, password: str) -> list[str]:
    """Bearer tokens of the 14 demo grid workers (worker01..worker14)."""
    tokens = []
    for i in range(1, 15):
        r = httpx.post(f"http://127.0.0.1:{port}/api/v1/auth/token",
                       data={"username": f"worker{i:02d}", "password": password}, timeout=30)
        r.raise_for_status()
        tokens.append(r.json()["access_token"])
    return tokens


def _verify_and_clean(engine, tally: Tally) -> dict[str, int]:
    """Per idempotency key: an acknowledged key is lost unless exactly the acknowledged issue is
    stored under it; every stored row of this run beyond one per sent key is a duplicate."""
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT client_uuid, id FROM issues WHERE description = :tag"),
                            {"tag": RUN_TAG}).all()
        conn.execute(text("DELETE FROM issues WHERE description = :tag"), {"tag": RUN_TAG})
    by_key: dict[uuid.UUID, list[int]] = {}
    for client_uuid, issue_id in rows:
        by_key.setdefault(client_uuid, []).append(issue_id)
    lost = sum(1 for key, issue_id in tally.acknowledged.items()
               if by_key.get(key_to_uuid(key)) != [issue_id])
    return {"acknowledged": len(tally.acknowledged), "stored": len(by_key), "lost": lost,
            "duplicated": len(rows) - len(by_key)}


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 1 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--reports", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-seconds", type=float, default=120)
    parser.add_argument("--faults", action="store_true",
                        help="restart PostgreSQL and kill a server worker during the run")
    args = parser.parse_args()
    settings = Settings()
    engine = make_engine(settings.resolved_database_url(), pool_size=2)
    port = _free_port()
    server = _start_server(port, args.workers)
    try:
        tokens = login_workers(port, settings.demo_password)
        outages = Outages() if args.faults else None
        tally, elapsed = asyncio.run(_run(port, tokens, _grid_points(engine, 280), args.reports,
                                          args.clients, args.max_seconds, server, outages,
                                          engine))
    finally:
        server.terminate()
        server.wait(timeout=30)
    check = _verify_and_clean(engine, tally)
    ok = len(tally.acknowledged)
    print(f"POST /api/v1/issues: {args.clients} clients, {args.workers} server workers, "
          f"{ok} acknowledged in {elapsed:.1f} s = {ok / elapsed:.0f} reports/s")
    print(f"latency ms: p50 {_pct(tally.latencies, 50):.1f}, p95 {_pct(tally.latencies, 95):.1f}, "
          f"p99 {_pct(tally.latencies, 99):.1f}; statuses {tally.statuses}; retries {tally.retries}; "
          f"gave up {tally.failures}")
    unplanned = [t for t in tally.server_errors if not (outages and outages.planned(t))]
    if outages:
        print("faults: " + "; ".join(outages.log))
    print(f"reports sent {args.reports}, acknowledged {ok}, stored {check['stored']}, "
          f"lost {check['lost']}, duplicated {check['duplicated']}; 5xx {len(tally.server_errors)} "
          f"of which outside the planned outages {len(unplanned)}")
    print(f"load: reports_per_s={ok / elapsed:.0f} p50_ms={_pct(tally.latencies, 50):.1f} "
          f"p99_ms={_pct(tally.latencies, 99):.1f} lost={check['lost']} duplicated={check['duplicated']} "
          f"unplanned_5xx={len(unplanned)}")
    failed = []
    if check["lost"] or check["duplicated"] or unplanned:
        failed.append("reports lost, duplicated or 5xx outside the planned outages")
    if ok < args.reports:
        failed.append(f"only {ok} of {args.reports} reports were acknowledged")
    if outages:
        failed += outages.missing(tally)
    for reason in failed:
        print(f"FAILED: {reason}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
