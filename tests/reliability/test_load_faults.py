"""A short run of bench/load.py with faults against the test cluster: nothing lost or duplicated.

The full run is `make reliability`; this one is small enough for every CI run.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
