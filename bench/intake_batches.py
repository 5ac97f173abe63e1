"""The intake's group commit without HTTP: CPU per report by batch size, steady enough to compare.

    .venv/bin/python bench/intake_batches.py                 # batches of 1, 4, 8, 16, 64
    .venv/bin/python bench/intake_batches.py --sizes 8 --reports 4000

``bench/intake.py`` measures the whole path under wrk, where the batch sizes follow the timing of
the requests and the figures swing from run to run on a busy machine. Here the reports are handed
to one :class:`api.intake.GroupCommit` (the server's own, on the private cluster with the demo)
in batches of a fixed size, one batch at a time, as the 14 demo grid workers (bearer tokens
checked with each batch), at random points inside the current grids and random categories.
Per size it prints the reports written per second of wall time (one writer, nothing else in
flight) and the CPU per report: this process's (the writer: psycopg, the steps' Python) and the
PostgreSQL processes' (user + system), and their sum beside the first size's (by default a
transaction per report: what the intake cost before the group commit, on the same path). Every
report is checked stored exactly once, and the run's rows are deleted afterwards. Exits 1 when
a report was lost, duplicated or refused.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from intake import _cpu_s, _ensure_database, _inputs, _postgres_processes, vacuum  # noqa: E402

from api.intake import GroupCommit, Pending  # noqa: E402
from api.settings import Settings  # noqa: E402
from gis.db.engine import libpq_url, make_engine, session_factory  # noqa: E402
from gis.geotag.index_cache import GridIndexCache  # noqa: E402
from gis.issues.reporting import IssueReport  # noqa: E402
from gis.people import sessions  # noqa: E402
from gis.people.actors import load_actor  # noqa: E402

TAG = f"intake batches bench {uuid.uuid4().hex[:8]}"
WORKERS = [f"worker{n:02d}" for n in range(1, 15)]


def _tokens(factory, policy) -> list[str]:
    out = []
    with factory() as session:
        for name in WORKERS:
            actor, _ = load_actor(session, name)
            out.append(sessions.start_session(session, actor, kind="token", address="bench",
                                              policy=policy).token)
        session.commit()
    return out


async def _write(gc: GroupCommit, batches: list[list[Pending]]) -> list:
    answers = []
    for batch in batches:
        answers += await asyncio.gather(*(gc.submit(p) for p in batch))
    return answers


async def _timed(gc: GroupCommit, warm: list[list[Pending]], batches: list[list[Pending]],
                 pg) -> tuple[list, float, float, float]:
    """The answers to ``batches``, written after ``warm``; wall, own CPU and PostgreSQL's CPU."""
    try:
        await _write(gc, warm)  # the connection, the grid index, prepared statements
        procs = pg()
        cpu0, pg0, wall0 = time.process_time(), _cpu_s(procs), time.perf_counter()
        answers = await _write(gc, batches)
        return (answers, time.perf_counter() - wall0, time.process_time() - cpu0,
                _cpu_s(procs) - pg0)
    finally:
        await gc.close()


def measure(settings: Settings, engine, size: int, reports: int, tokens, categories, points,
            rng: random.Random) -> dict:
    factory = session_factory(engine, settings.session_info())
    gc = GroupCommit(libpq_url(settings.application_database_url()), factory,
                     GridIndexCache(settings.assign_tolerance_m), sessions.SessionPolicy(),
                     settings.session_info())
    batches = [[Pending(IssueReport(*rng.choice(points), rng.choice(categories), description=TAG,
                                    client_uuid=uuid.uuid4()),
                        rng.choice(tokens), None, "127.0.0.1", "POST /api/v1/issues")
                for _ in range(size)] for _ in range(10 + max(1, reports // size))]
    answers, wall, cpu, pg_cpu = asyncio.run(_timed(gc, batches[:10], batches[10:],
                                                    lambda: _postgres_processes(settings)))
    written = [a for a in answers if not isinstance(a.outcome, Exception)]
    for a in answers:
        if isinstance(a.outcome, Exception):
            print("refused:", type(a.outcome).__name__, a.outcome)
    keys = [p.report.client_uuid for batch in batches[10:] for p in batch]
    with engine.connect() as conn:
        counts = dict(conn.execute(text(
            "SELECT client_uuid, count(*) FROM issues WHERE client_uuid = ANY(:k) "
            "GROUP BY client_uuid"), {"k": keys}).all())
    n = len(written)
    return {"size": size, "reports": n, "refused": len(answers) - n,
            "lost": sum(1 for k in keys if k not in counts),
            "duplicated": sum(c - 1 for c in counts.values()),
            "per_s": n / wall, "writer_ms": 1000 * cpu / n, "pg_ms": 1000 * pg_cpu / n,
            "batches": gc.batches}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1,4,8,16,64", help="batch sizes, comma-separated")
    ap.add_argument("--reports", type=int, default=2000, help="reports per batch size")
    ap.add_argument("--seed", type=int, default=20261201)
    args = ap.parse_args(argv)
    settings = Settings()
    _ensure_database(settings)
    engine = make_engine(settings.application_database_url())
    owner = make_engine(settings.resolved_database_url())
    rng = random.Random(args.seed)
    categories, points = _inputs(engine)
    tokens = _tokens(session_factory(engine, settings.session_info()), sessions.SessionPolicy())
    if not _postgres_processes(settings):
        print("(DATABASE_URL set: PostgreSQL's CPU is not measured)")
    print(f"{'batch':>5} {'reports':>8} {'per s':>8} {'writer ms/r':>12} {'pg ms/r':>8} "
          f"{'CPU vs first':>13} {'lost':>5} {'dup':>4}")
    failed = False
    first_ms = None
    vacuum(owner)
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            r = measure(settings, engine, size, args.reports, tokens, categories, points, rng)
            cpu_ms = r["writer_ms"] + r["pg_ms"]
            first_ms = first_ms or cpu_ms
            print(f"{r['size']:>5} {r['reports']:>8,} {r['per_s']:>8,.0f} {r['writer_ms']:>12.3f} "
                  f"{r['pg_ms']:>8.3f} {cpu_ms / first_ms:>13.2f} {r['lost']:>5} "
                  f"{r['duplicated']:>4}", flush=True)
            failed |= bool(r["lost"] or r["duplicated"] or r["refused"])
    finally:
        with owner.begin() as conn:
            conn.execute(text("DELETE FROM issues WHERE description = :t"), {"t": TAG})
        vacuum(owner)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
