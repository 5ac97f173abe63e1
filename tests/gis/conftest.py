"""Fixtures the rollup's and the statistics' property tests share."""

from __future__ import annotations

from datetime import date

import pytest

from gis.rules import BEIJING


@pytest.fixture
def grid_ids(sql) -> list[int]:
    """Every grid row's id (all versions), in order."""
    return [r[0] for r in sql("SELECT id FROM grids ORDER BY id")]


@pytest.fixture
def demo_times(sql) -> tuple[date, date]:
    """The first and last report days of the demo (Beijing dates)."""
    first, last = sql("SELECT min(reported_at), max(reported_at) FROM issues")[0]
    return first.astimezone(BEIJING).date(), last.astimezone(BEIJING).date()
