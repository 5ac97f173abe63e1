"""A skipped test fails the run under CI, and only there (tests/skip_guard.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE = """
import pytest

def test_runs():
    pass

@pytest.mark.skip(reason="needs something this machine lacks")
def test_skipped():
    pass
"""


def _run(tmp_path: Path, ci: str | None, body: str = SAMPLE) -> subprocess.CompletedProcess:
    (tmp_path / "test_sample.py").write_text(body)
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"PYTHONPATH": str(REPO)}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "tests.skip_guard", "test_sample.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("ci", ["true", "1"])
def test_a_skip_fails_the_run_under_ci(tmp_path, ci):
    run = _run(tmp_path, ci)
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.stdout
    assert "skipped under CI" in run.stdout and "test_sample.py::test_skipped" in run.stdout


@pytest.mark.parametrize("ci", [None, "", "false"])
def test_a_skip_is_only_a_skip_outside_ci(tmp_path, ci):
    assert _run(tmp_path, ci).returncode == pytest.ExitCode.OK


def test_a_run_without_skips_passes_under_ci(tmp_path):
    assert _run(tmp_path, "true", "def test_runs():\n    pass\n").returncode == pytest.ExitCode.OK
