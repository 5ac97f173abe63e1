"""Intake throughput: POST /api/v1/issues under wrk, beside a bare FastAPI route in the same run.

    .venv/bin/python bench/intake.py                  # make bench-intake; about two minutes
    .venv/bin/python bench/intake.py --seconds 30 --connections 16 --profile
    .venv/bin/python bench/intake.py --rounds 1 --waits    # what the batches wait for

Uses the private cluster (``gridmap db start``, the demo loaded with ``gridmap demo --if-empty``)
unless DATABASE_URL is set. Starts ``gridmap serve --workers 2`` on a free loopback port, logs the
14 demo grid workers in, and runs ``wrk`` with bench/intake.lua: one connection per wrk thread,
a fresh Idempotency-Key per request (a UUID made of the run, thread and counter: the field app
sends UUIDs), a random point inside the demo's current grids (drawn by ``ST_GeneratePoints``)
and a random issue category. The same wrk script is pointed at a bare FastAPI route
(:func:`bare_app`: one async POST answering a small JSON body) served by uvicorn the same way
(2 workers, access log on) twice: on uvicorn's stock HTTP protocol and logging, as FastAPI is
served out of the box (the yardstick the share is of), and as `gridmap serve` serves it (its
protocol, api.http_protocol, whose one send per answer speeds the bare route up more than the
intake, and its access log, api.access_log: ``share_ours``, the stricter figure), all three
servers up at once. After a short warm-up of
each (the intake's reports checked too), they take turns for ``--rounds`` measured runs each:
this machine's speed drifts by a quarter over minutes, and a share taken from runs minutes
apart swung as much; each round's share is intake/bare of runs seconds apart, and the share
reported is their median. The other figures are of all the intake's runs together (their
worst p99).

Checks, per run, against the database: every key answered 201 is stored exactly once (lost = keys
answered 201 without their row), no row of the run outside the keys sent, no key twice
(duplicated); rows stored for keys whose answer wrk never read (requests in flight when wrk
stopped) are counted as ``in_flight_stored``, not as errors. Each run's rows are deleted after
its check (and the database vacuumed), so that every run starts from the demo as it is: left in
place, a run's reports (some 16,000 open cases in the demo's 14 grids) made every later answer's
search for possible duplicates longer, and each round slower than the one before (a fifth by the
third round; bench/README.md, eighth pass).

CPU per report: user + system seconds of the server's processes (the uvicorn supervisor and its
workers) and of the private cluster's PostgreSQL processes over the measured run, divided by the
201 answers. Less sensitive to other jobs on the machine than the throughput. Beside it, the two
things that decide it from run to run: the reports per batch (the run's rows per transaction that
stored them, by their ``xmin``) and how wrk's connections fell on the two workers (counted
mid-run: each worker's event loop is one core at most). And the share of the machine's CPU time
left idle over the run: the bare route leaves none; the intake leaves what its processes spend
waiting with their batches for PostgreSQL (the commit's WAL flush, another batch's row locks).

``--profile`` samples both server workers with py-spy during the measured run and prints where
their time goes (own time per function, and time inside a few functions of interest).
``--waits`` samples, during the first measured run, what the writers' PostgreSQL backends are
doing (pg_stat_activity every 10 ms): running the insert or the answers, waiting
for the commit's WAL flush or another batch's row locks, or idle between batches.

Exits 1 when a report was lost or duplicated or an answer was neither 201 nor 200.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from sqlalchemy import text

from api.access_log import log_config
from api.http_protocol import UVICORN_HTTP
from api.intake import APPLICATION_NAME
from api.settings import Settings
from gis.db.cluster import LocalCluster
from gis.db.engine import libpq_url, make_engine
from gis.issues.reporting import key_to_uuid

HERE = Path(__file__).resolve().parent
LUA = HERE / "intake.lua"
RUN = uuid.uuid4().hex[:8]
RUN_NUMBERS: dict[str, int] = {}  # each wrk run's keys of its own (run_prefix)
INTAKE_PATH = "/api/v1/issues"
BARE_PATH = "/bare"
# Functions whose inclusive share of the workers' samples the profile prints (substring of the
# py-spy frame "function (file:line)").
PROFILE_FOCUS = [
    ("report_issue (api/routes/issues.py", "route report_issue (event loop side)"),
    ("_write_forever (api/intake.py", "group commit writer, all"),
    ("pipeline (gis/db/steps.py", "the batches' round trips (sending, waiting, reading rows)"),
    ("report_steps (", "reporting.report_steps (Python side)"),
    ("answer_steps (", "reporting.answer_steps (Python side)"),
    ("read_steps (", "sessions.CallerCache.read_steps (a token not yet known)"),
    ("flush (api/http_protocol.py", "the coalesced send of a turn's writes"),
    ("model_dump_json (", "answer JSON (pydantic)"),
    ("report_issue (gis/issues/reporting.py", "reporting.report_issue"),
    ("_caller (api/deps.py", "authentication (_caller)"),
    ("current_actor_here (api/deps.py", "authentication (in the endpoint's hop)"),
    ("get_issue (", "reads.get_issue (re-read)"),
    ("possible_duplicates (", "possible_duplicates"),
    ("duplicates_of_new_report (", "possible duplicates of a new report"),
    ("link_photos (", "link_photos"),
    ("serialize_response (", "response validation + JSON"),
    ("commit (", "Session.commit"),
    ("_audit_write (", "audit of the write (at commit)"),
    ("_do_ping (", "pool pre-ping"),
    ("execute (sqlalchemy/engine/base.py", "SQLAlchemy Connection.execute"),
    ("access_log", "uvicorn access log"),
    ("handle (logging/__init__.py", "logging handlers"),
    ("run_in_threadpool (", "thread-pool hops"),
    ("solve_dependencies (", "FastAPI dependencies (session, caller)"),
    ("resolve (gis/people/sessions.py", "session token check"),
    ("load_actor_by_id (", "actor and scope load"),
    ("_deadlines (", "deadlines (working calendar)"),
    ("locate_point (", "grid lookup"),
    ("httptools_impl.py", "uvicorn HTTP protocol"),
]


# -- the bare route --------------------------------------------------------------------------------
def bare_app():
    """A minimal FastAPI app: the yardstick the intake is compared with (uvicorn --factory)."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.post(BARE_PATH, status_code=201)
    async def bare() -> dict:
        return {"ok": True}

    return app


# -- processes ---------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(proc: subprocess.Popen, url: str, what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with status {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"{what} did not come up in 60 s")


def _start_gridmap(port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "GRIDMAP_PORT": str(port), "GRIDMAP_HOST": "127.0.0.1"}
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--workers", str(workers)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_up(proc, f"http://127.0.0.1:{port}/health", "gridmap serve")
    return proc


def _start_bare(port: int, workers: int, tmp: Path, ours: bool = False) -> subprocess.Popen:
    """The bare route under uvicorn: as FastAPI is served out of the box (uvicorn's stock HTTP
    protocol and logging), or as `gridmap serve` serves (``ours``: its protocol,
    api.http_protocol, and its access log, api.access_log)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), *sys.path])}
    served = []
    if ours:
        # In the run's directory, removed at its end: every worker uvicorn starts reads it.
        config = tmp / "bare-log.json"
        config.write_text(json.dumps(log_config()))
        served = ["--http", UVICORN_HTTP, "--log-config", str(config)]
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "intake:bare_app",
                             "--app-dir", str(HERE), "--host", "127.0.0.1", "--port", str(port),
                             "--workers", str(workers), "--log-level", "info", *served],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_up(proc, f"http://127.0.0.1:{port}/docs", "the bare app")
    return proc


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _cpu_s(procs: list[psutil.Process]) -> float:
    """User + system CPU seconds of ``procs`` and of their children that have exited."""
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def _postgres_processes(settings: Settings) -> list[psutil.Process]:
    """The private cluster's postmaster and backends (empty with DATABASE_URL)."""
    if settings.database.url or settings.database.owner_url:
        return []
    pid_file = LocalCluster(settings.database.pg_dir).pgdata / "postmaster.pid"
    try:
        return _tree(int(pid_file.read_text().split()[0]))
    except (FileNotFoundError, psutil.NoSuchProcess):
        return []


def _worker_pids(server: subprocess.Popen | int) -> list[int]:
    """The uvicorn workers: children started by multiprocessing's spawn (not its resource tracker)."""
    pid = server if isinstance(server, int) else server.pid
    return [c.pid for c in psutil.Process(pid).children()
            if "resource_tracker" not in " ".join(c.cmdline())]


def _connections_per_worker(server_pid: int, port: int) -> list[int]:
    """How many of wrk's connections each server worker holds (the kernel hands each new
    connection to one of them; the split decides how the load falls on their event loops)."""
    counts = []
    for pid in _worker_pids(server_pid):
        try:
            conns = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        counts.append(sum(1 for c in conns if c.laddr and c.laddr.port == port
                          and c.status == psutil.CONN_ESTABLISHED))
    return sorted(counts, reverse=True)


# -- one wrk run -----------------------------------------------------------------------------------
@dataclass
class WrkRun:
    seconds: float
    requests: int
    statuses: collections.Counter
    answered: dict[tuple[int, int], int]  # (thread, n) -> status
    sent: dict[int, int]  # thread -> requests written
    latency_ms: dict[str, float]
    errors: dict[str, int]
    server_cpu_s: float = 0.0
    postgres_cpu_s: float = 0.0
    connections: list[int] = field(default_factory=list)  # per server worker, mid-run
    idle: float = 0.0  # share of the machine's CPU time left idle during the run
    profile: Path | None = None
    waits: collections.Counter | None = None  # --waits: the writers' sampled states
    check: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return self.statuses.get(201, 0)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds


def _write_data(path: Path, tokens: list[str], categories: list[str], points, url_path: str,
                run: str) -> None:
    lines = [f"tag {_tag(run)}", f"run {run}", f"path {url_path}"]
    lines += [f"token {t}" for t in tokens] + [f"category {c}" for c in categories]
    lines += [f"point {lon!r} {lat!r}" for lon, lat in points]
    path.write_text("\n".join(lines) + "\n")


def _wrk(port: int, data: Path, seconds: float, connections: int, server_pid: int | None,
         pg: Callable[[], list[psutil.Process]], profile_pids: list[int] | None = None) -> WrkRun:
    """One wrk run; CPU of the server's and PostgreSQL's process trees as found before and after
    (a backend that exits in between is counted in its postmaster's children times)."""
    results = data.with_suffix(".out")
    env = {**os.environ, "INTAKE_RESULTS": str(results)}
    spies = []
    if profile_pids:
        spies = [subprocess.Popen([shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"),
                                   "record", "--format", "raw", "--gil", "-r", "200",
                                   "-d", str(int(seconds)), "-p", str(pid), "-o",
                                   str(data.with_suffix(f".{pid}.spy"))],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for pid in profile_pids]
    cpu0, pg0, machine0 = _cpu_s(_tree(server_pid)), _cpu_s(pg()), psutil.cpu_times()
    wrk = subprocess.Popen(["wrk", "-t", str(connections), "-c", str(connections), "-d",
                            f"{round(seconds)}s", "--timeout", "10s", "-s", str(LUA),
                            f"http://127.0.0.1:{port}", "--", str(data)],
                           env=env, stdout=subprocess.DEVNULL)
    time.sleep(seconds / 2)
    split = _connections_per_worker(server_pid, port)
    if wrk.wait() != 0:
        raise subprocess.CalledProcessError(wrk.returncode, "wrk")
    cpu1, pg1, machine1 = _cpu_s(_tree(server_pid)), _cpu_s(pg()), psutil.cpu_times()
    for spy in spies:
        spy.wait(timeout=60)
    run = _parse(results)
    run.server_cpu_s, run.postgres_cpu_s = cpu1 - cpu0, pg1 - pg0
    run.connections = split
    run.idle = _idle_share(machine0, machine1)
    if profile_pids:
        run.profile = data
    return run


def _parse(results: Path) -> WrkRun:
    answered, sent, latency, statuses = {}, {}, {}, collections.Counter()
    duration = requests = 0
    errors = {}
    for line in results.read_text().splitlines():
        kind, *rest = line.split(",")
        if kind == "sent":
            sent[int(rest[0])] = int(rest[1])
        elif kind == "summary":
            duration, requests = int(rest[0]), int(rest[1])
            errors = dict(zip(("connect", "read", "write", "status", "timeout"), map(int, rest[2:]),
                              strict=True))
        elif kind == "latency":
            latency[rest[0]] = int(rest[1]) / 1000
        else:
            answered[(int(kind), int(rest[0]))] = int(rest[1])
            statuses[int(rest[1])] += 1
    return WrkRun(duration / 1e6, requests, statuses, answered, sent, latency, errors)


# -- the database check -------------------------------------------------------------------------
def _check(engine, run: WrkRun, prefix: str) -> dict[str, int]:
    """Every 201 stored exactly once; nothing stored outside the keys sent; no key twice. Also
    the transactions that stored the run (the rows of one share its xmin): the batches."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT client_uuid, count(*) FROM issues "
                                 "WHERE description = :tag GROUP BY client_uuid"),
                            {"tag": _tag(prefix)}).all()
        transactions = conn.execute(text("SELECT count(DISTINCT xmin::text) FROM issues "
                                         "WHERE description = :tag"), {"tag": _tag(prefix)}).scalar_one()
    stored = dict(rows)
    sent = {key_to_uuid(request_key(prefix, t, n)): (t, n) for t, count in run.sent.items()
            for n in range(1, count + 1)}
    acked = {u for u, tn in sent.items() if run.answered.get(tn) == 201}
    if os.environ.get("INTAKE_DEBUG"):
        print("lost keys:", sorted(sent[u] for u in acked if u not in stored), "sent:", run.sent)
    return {
        "stored": sum(stored.values()),
        "lost": sum(1 for u in acked if u not in stored),
        "duplicated": sum(c - 1 for c in stored.values()) + sum(c for u, c in stored.items()
                                                                 if u not in sent),
        "stored_without_201": sum(1 for u in stored if u in sent and u not in acked
                                  and sent[u] in run.answered),
        "in_flight_stored": sum(1 for u in stored if u in sent and sent[u] not in run.answered),
        "transactions": transactions,
    }


def run_prefix(name: str) -> str:
    """The first two groups of the keys of the wrk run ``name``: this process's RUN and a
    number of the run's own."""
    return f"{RUN}-{RUN_NUMBERS.setdefault(name, len(RUN_NUMBERS) + 1):04x}"


def _together(runs: list[WrkRun]) -> WrkRun:
    """Several runs of one server as one: counts and CPU summed, the latencies the worst run's
    (wrk gives percentiles per run), the batch and the connections of all."""
    worst = max(runs, key=lambda r: r.latency_ms.get("99", 0))
    check = collections.Counter()
    for r in runs:
        check.update(r.check)
    return WrkRun(
        seconds=sum(r.seconds for r in runs), requests=sum(r.requests for r in runs),
        statuses=sum((r.statuses for r in runs), collections.Counter()),
        answered={}, sent={}, latency_ms=worst.latency_ms,
        errors=dict(sum((collections.Counter(r.errors) for r in runs), collections.Counter())),
        server_cpu_s=sum(r.server_cpu_s for r in runs),
        postgres_cpu_s=sum(r.postgres_cpu_s for r in runs),
        connections=[c for r in runs for c in r.connections],
        idle=sum(r.idle * r.seconds for r in runs) / max(sum(r.seconds for r in runs), 1e-9),
        profile=next((r.profile for r in runs if r.profile), None), check=dict(check))


def request_key(prefix: str, thread: int, n: int) -> str:
    """The Idempotency-Key bench/intake.lua sends as thread ``thread``'s ``n``-th request: a
    UUID, as the field app sends (maps/app/js/store.js), unique per run, thread and request."""
    return f"{prefix}-4{thread:03x}-8000-{n:012x}"


def _tag(prefix: str) -> str:
    """The description of one wrk run's reports (letters and a short hex run id: nothing the
    privacy rules would mask)."""
    return f"intake bench {prefix}"


def _clean(engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM issues WHERE description LIKE :tag"), {"tag": f"intake bench {RUN}%"})
    vacuum(engine)


def vacuum(engine) -> None:
    """VACUUM ANALYZE the database: before a run, so that it does not pay for the dead rows of
    an earlier one (autovacuum would clean them up during the run), and after the cleanup."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE)"))


# -- setup ----------------------------------------------------------------------------------------
def _ensure_database(settings: Settings) -> None:
    if settings.database.url or settings.database.owner_url:
        return
    for args in (("db", "start"), ("demo", "--if-empty")):
        subprocess.run([sys.executable, "-m", "api.cli", *args], check=True, stdout=subprocess.DEVNULL)


def _inputs(engine) -> tuple[list[str], list[tuple[float, float]]]:
    with engine.connect() as conn:
        categories = list(conn.execute(text(
            "SELECT code FROM categories WHERE kind = 'issue' ORDER BY code")).scalars())
        points = [tuple(r) for r in conn.execute(text(
            "SELECT ST_X(p.geom), ST_Y(p.geom) FROM grids g, "
            "LATERAL ST_Dump(ST_GeneratePoints(g.geom, 150, 20221)) p WHERE g.valid_to IS NULL"))]
    return categories, points


# -- what the writers' backends wait for (--waits) ------------------------------------------------
WAITS_SQL = """SELECT state, wait_event_type, wait_event, query FROM pg_stat_activity
                WHERE application_name = %s AND pid <> pg_backend_pid()"""


class WaitSampler(threading.Thread):
    """Samples, every 10 ms, what each backend of the intake's writers is doing
    (``pg_stat_activity``, the connections named :data:`api.intake.APPLICATION_NAME`): running
    a statement, waiting for the WAL to reach the disk, for another transaction's row locks, or
    for its server process to send the next batch. The database side of ``--profile``."""

    def __init__(self, conninfo: str, interval_s: float = 0.01):
        super().__init__(daemon=True)
        self.conninfo, self.interval_s = conninfo, interval_s
        self.counts: collections.Counter = collections.Counter()
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            while not self._stop_event.is_set():
                for state, kind, event, query in conn.execute(WAITS_SQL, (APPLICATION_NAME,)):
                    self.counts[_wait_label(state, kind, event, query)] += 1
                self.samples += 1
                self._stop_event.wait(self.interval_s)

    def stop(self) -> collections.Counter:
        self._stop_event.set()
        self.join(timeout=10)
        return self.counts


def _wait_label(state: str | None, kind: str | None, event: str | None, query: str | None) -> str:
    if state == "idle":
        return "idle: waiting for its server process (between batches)"
    statement = "the insert" if (query or "").lstrip().startswith("WITH state") else \
        "the answers" if "_duplicates" in (query or "") else "another statement"
    doing = f"waiting: {kind} {event}" if kind and kind != "Client" else \
        "waiting: for the rest of the pipeline" if kind == "Client" else "running"
    return f"{state}, {statement}, {doing}"


def _waits_table(counts: collections.Counter) -> str:
    total = sum(counts.values())
    if not total:
        return "waits: no samples (no intake writer connection seen)"
    lines = [f"waits: {total} samples of the intake writers' backends (pg_stat_activity)"]
    lines += [f"  {100 * n / total:5.1f}%  {label}" for label, n in counts.most_common()]
    return "\n".join(lines)


# -- profile summary ------------------------------------------------------------------------------
def _profile_table(base: Path) -> str:
    """Own and inclusive shares of the workers' samples (py-spy raw: "frame;frame;... count")."""
    own, inclusive, every, total = (collections.Counter(), collections.Counter(),
                                    collections.Counter(), 0)
    for spy in base.parent.glob(base.stem + ".*.spy"):
        for line in spy.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            frames = stack.split(";")
            total += n
            own[_short(frames[-1])] += n
            for frame in {_short(f) for f in frames}:
                every[frame] += n
            for label in {label for key, label in PROFILE_FOCUS if any(key in f for f in frames)}:
                inclusive[label] += n
            if "idle" in frames[-1] or any(f.startswith(("select (selectors", "_run_once", "wait ("))
                                           for f in frames[-1:]):
                inclusive["(waiting: event loop select / thread wait)"] += n
    if not total:
        return "profile: no samples"
    lines = [f"profile: {total} samples over both workers; inclusive share of functions of interest"]
    lines += [f"  {100 * n / total:5.1f}%  {label}" for label, n in inclusive.most_common()]
    lines.append("inclusive time, top 30 frames:")
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in every.most_common(30)]
    lines.append("own time, top 25 frames:")
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(25)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    for marker in ("site-packages/", "/work/", "python3."):
        if marker in frame:
            head, _, tail = frame.partition("(")
            return f"{head}({tail.split(marker, 1)[-1]}"
    return frame


# -- main -------------------------------------------------------------------------------------------
def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def _idle_share(before, after) -> float:
    """The share of all cores' time spent idle (or waiting for I/O) between two
    ``psutil.cpu_times()``: what the load left unused. The intake's processes each wait for
    their batch's commit, and a core idles meanwhile (bench/README.md, eighth pass)."""
    spent = {k: getattr(after, k) - getattr(before, k) for k in after._fields}
    total = sum(spent.values()) - spent.get("guest", 0) - spent.get("guest_nice", 0)
    return (spent["idle"] + spent.get("iowait", 0)) / total if total > 0 else 0.0


def _row(name: str, run: WrkRun) -> str:
    lat = run.latency_ms
    per = 1000 * run.server_cpu_s / max(run.ok, 1)
    pg = 1000 * run.postgres_cpu_s / max(run.ok, 1)
    other = sum(n for s, n in run.statuses.items() if s != 201)
    return (f"{name:<14}{run.seconds:>6.1f}{run.ok:>9,}{other:>7,}{run.rate:>10,.0f}"
            f"{lat.get('50', 0):>8.1f}{lat.get('99', 0):>8.1f}{lat.get('max', 0):>8.1f}"
            f"{per:>9.2f}{pg:>8.2f}{run.check.get('lost', 0):>6}{run.check.get('duplicated', 0):>6}"
            f"{run.check.get('in_flight_stored', 0):>8}{_batch(run):>7}"
            f"{'/'.join(map(str, run.connections)) or '-':>7}{100 * run.idle:>6.0f}%")


def _batch(run: WrkRun) -> str:
    """Reports stored per transaction, on average ("-" for the bare route)."""
    n = run.check.get("transactions")
    return f"{run.check['stored'] / n:.1f}" if n else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10,
                        help="each measured run of each server")
    parser.add_argument("--rounds", type=int, default=3,
                        help="measured runs of each server, taking turns")
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--connections", type=int, default=16, help="= wrk threads (one each)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="py-spy the intake workers")
    parser.add_argument("--waits", action="store_true",
                        help="sample what the writers' PostgreSQL backends wait for")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: ./scripts/system-deps.sh installs it (Debian package wrk)")
    print(f"load average at start: {_load()} ({os.cpu_count()} cores)")
    settings = Settings()
    _ensure_database(settings)
    engine = make_engine(settings.resolved_database_url(), pool_size=2)
    categories, points = _inputs(engine)
    vacuum(engine)
    def pg() -> list[psutil.Process]:
        return _postgres_processes(settings)

    tmp = Path(tempfile.mkdtemp(prefix="gridmap-intake-"))
    runs: dict[str, WrkRun] = {}
    port, bare_port, ours_port = _free_port(), _free_port(), _free_port()
    server = _start_gridmap(port, args.workers)
    bare = _start_bare(bare_port, args.workers, tmp)
    ours = _start_bare(ours_port, args.workers, tmp, ours=True)
    try:
        from load import login_workers  # bench/, beside this script

        tokens = login_workers(port, settings.demo_password)

        def intake_run(name: str, seconds: float, profile: bool = False,
                       waits: bool = False) -> None:
            data = tmp / f"{name}.data"
            _write_data(data, tokens, categories, points, INTAKE_PATH, run_prefix(name))
            sampler = WaitSampler(libpq_url(settings.resolved_database_url())) if waits else None
            if sampler:
                sampler.start()
            runs[name] = _wrk(port, data, seconds, args.connections, server.pid, pg,
                              _worker_pids(server) if profile else None)
            if sampler:
                runs[name].waits = sampler.stop()
            runs[name].check = _check(engine, runs[name], run_prefix(name))
            _clean(engine)  # the next run starts from the same database

        def bare_run(name: str, seconds: float, on: subprocess.Popen = bare,
                     at: int = bare_port) -> None:
            data = tmp / f"{name}.data"
            _write_data(data, ["-"], categories, points, BARE_PATH, run_prefix(name))
            runs[name] = _wrk(at, data, seconds, args.connections, on.pid, list)

        intake_run("warm-up", args.warmup)
        bare_run("bare warm-up", args.warmup)
        bare_run("ours warm-up", args.warmup, ours, ours_port)
        # Intake and bare route take turns, so that both see the machine as it is at the time
        # (its speed drifts by a quarter over minutes here): the share is the median of each
        # round's, the two runs of a round a few seconds apart.
        for r in range(1, args.rounds + 1):
            intake_run(f"intake {r}", args.seconds, args.profile and r == 1,
                       args.waits and r == 1)
            bare_run(f"bare route {r}", args.seconds)
            bare_run(f"bare, ours {r}", args.seconds, ours, ours_port)
    finally:
        _stop(server)
        _stop(bare)
        _stop(ours)
        _clean(engine)
    rounds = range(1, args.rounds + 1)
    intakes = [runs[f"intake {r}"] for r in rounds]
    bares = [runs[f"bare route {r}"] for r in rounds]
    ours_runs = [runs[f"bare, ours {r}"] for r in rounds]
    shares = [i.rate / b.rate if b.rate else 0.0 for i, b in zip(intakes, bares, strict=True)]
    share = statistics.median(shares)
    ours_shares = [i.rate / b.rate if b.rate else 0.0 for i, b in zip(intakes, ours_runs, strict=True)]
    share_ours = statistics.median(ours_shares)
    intake = _together(intakes)
    print(f"POST {INTAKE_PATH}: wrk, {args.connections} connections (one per thread), "
          f"{args.workers} server workers, fresh Idempotency-Key per request")
    print(f"{'run':<14}{'s':>6}{'201':>9}{'other':>7}{'201/s':>10}{'p50 ms':>8}{'p99 ms':>8}"
          f"{'max ms':>8}{'srv ms/r':>9}{'pg ms/r':>8}{'lost':>6}{'dup':>6}{'inflight':>8}"
          f"{'batch':>7}{'conns':>7}{'idle':>7}")
    for name, run in runs.items():
        print(_row(name, run))
    print("srv ms/r, pg ms/r: CPU ms of the server's / PostgreSQL's processes per 201 (for the bare "
          "route per answer); inflight: rows of requests wrk had not read back when it stopped; "
          "batch: reports per transaction (the group commit's batches); conns: wrk's connections "
          "held by each server worker, mid-run; idle: the machine's CPU time left idle during the run")
    for name, run in runs.items():
        extra = {s: n for s, n in run.statuses.items() if s != 201}
        if extra or any(run.errors.values()) or run.check.get("stored_without_201"):
            print(f"{name}: other statuses {extra}; wrk errors {run.errors}; "
                  f"stored without a 201 read back {run.check.get('stored_without_201', 0)}")
    if runs["intake 1"].waits is not None:
        print(_waits_table(runs["intake 1"].waits))
    if intake.profile:
        print(_profile_table(intake.profile))
        kept = Path(tempfile.mkdtemp(prefix="gridmap-intake-profile-"))
        for spy in tmp.glob("*.spy"):
            shutil.move(spy, kept / spy.name)
        print(f"raw py-spy samples (collapsed stacks) kept in {kept}")
    lost = sum(r.check.get("lost", 0) for r in runs.values())
    duplicated = sum(r.check.get("duplicated", 0) for r in runs.values())
    print(f"load average at end: {_load()}")
    print("share of the bare route (stock uvicorn), round by round: "
          + ", ".join(f"{x:.3f}" for x in shares) + f"; median {share:.3f}")
    print("share of the bare route on GridMap's HTTP protocol, round by round: "
          + ", ".join(f"{x:.3f}" for x in ours_shares) + f"; median {share_ours:.3f}")
    bare_rate = sum(b.ok for b in bares) / sum(b.seconds for b in bares)
    bare_ours_rate = sum(b.ok for b in ours_runs) / sum(b.seconds for b in ours_runs)
    print(f"intake: reports_s={intake.rate:.0f} p50_ms={intake.latency_ms['50']:.1f} "
          f"p99_ms={intake.latency_ms['99']:.1f} bare_s={bare_rate:.0f} share={share:.3f} "
          f"bare_ours_s={bare_ours_rate:.0f} share_ours={share_ours:.3f} "
          f"cpu_ms_per_report={1000 * intake.server_cpu_s / max(intake.ok, 1):.2f} "
          f"batch={_batch(intake)} lost={lost} duplicated={duplicated}")
    bad = [s for r in (runs["warm-up"], *intakes) for s in r.statuses if s not in (200, 201)]
    shutil.rmtree(tmp, ignore_errors=True)
    if lost or duplicated or bad:
        print(f"FAILED: lost {lost}, duplicated {duplicated}, unexpected statuses {sorted(set(bad))}")
        sys.exit(1)


if __name__ == "__main__":
    main()
