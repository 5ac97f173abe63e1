"""A short run of bench/load.py with faults against the test cluster: nothing lost or duplicated.

The full run is `make reliability`; this one is small enough for every CI run.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import bench_scripts
from tests.conftest import DEMO_PASSWORD

ROOT = Path(__file__).resolve().parents[2]


def test_reports_survive_a_database_restart_and_a_killed_worker(local_cluster, demo_engine):
    if local_cluster is None:
        pytest.fail("the fault test restarts PostgreSQL: run it on the cluster the tests start")
    env = {**os.environ, "GRIDMAP_PG_DIR": str(local_cluster.link), "GRIDMAP_DEMO_PASSWORD":
           DEMO_PASSWORD, "GRIDMAP_ENV": "development"}
    env.pop("DATABASE_URL", None)
    run = subprocess.run([sys.executable, "bench/load.py", "--clients", "8", "--reports", "400",
                          "--faults", "--max-seconds", "90"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    print(run.stdout, run.stderr[-3000:])
    summary = run.stdout.strip().splitlines()[-1]
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    fields = dict(item.split("=") for item in summary.split()[1:])
    assert fields["lost"] == "0" and fields["duplicated"] == "0" and fields["unplanned_5xx"] == "0"
    assert "PostgreSQL stopped" in run.stdout and "killed server worker" in run.stdout
    # the faults verifiably happened (Outages.missing, tested below): PostgreSQL's start time
    # moved on with reports in flight across the outage (answered 503 then, or held by the
    # server until the restart: which one depends on the machine's load), a real worker replaced
    assert "(of 2)" in run.stdout  # both uvicorn workers found, the resource tracker left out
    assert "took its place" in run.stdout and "FAILED" not in run.stdout


def test_a_fault_that_did_not_happen_fails_the_run():
    """No restart, no report in flight while PostgreSQL was down, or no new worker: the run
    cannot claim it survived."""
    load = bench_scripts.load("load")
    Outages, Tally = load.Outages, load.Tally  # noqa: N806  (the script's classes)

    outages, tally = Outages(database_down=(100.0, 105.0)), Tally()
    tally.timed_statuses = [(99.0, 503), (101.0, 201), (200.0, 503)]  # no 503 inside the outage
    tally.answered = [(98.0, 99.5), (106.0, 106.2)]  # answered before it, sent after it
    assert outages.missing(tally) == [
        "PostgreSQL was not restarted (its start time did not change)",
        "no report was in flight while PostgreSQL was down",
        "no new server worker replaced the killed one"]
    outages.database_restarted = outages.worker_replaced = True
    tally.timed_statuses.append((103.0, 503))  # a 503 while it was down
    assert outages.missing(tally) == []
    tally.timed_statuses.pop()
    tally.answered.append((99.0, 105.5))  # sent before the stop, held, answered after the restart
    assert outages.missing(tally) == []
    assert Outages().missing(Tally())  # a run whose faults never started proves nothing
