"""The schemathesis file refuses to run on an xdist worker: there a failing operation (a subtest)
is dropped on its way back and the run stays green (`make test` runs the file in one process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_schemathesis_file_fails_under_xdist_rather_than_pass_blind():
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "1",
                          "-k", "no_test_is_named_so", "tests/api/test_schemathesis.py"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode != 0, run.stdout
    assert "must run without pytest-xdist" in run.stdout + run.stderr
