"""Under CI (``CI`` set to anything but empty or ``false``) a skipped test fails the run: a test
that did not run proves nothing, and a green CI must mean every test ran. Locally skips stay
skips (a developer without Chromium or root still gets a useful run)."""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if in_ci() and skipped and exitstatus == pytest.ExitCode.OK:
        reporter.write_line(f"{len(skipped)} test(s) skipped under CI: that is a failure; every "
                            "test must run (install what the skip asked for)", red=True)
        for report in skipped[:20]:
            reporter.write_line(f"  skipped: {report.nodeid or report.location}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
