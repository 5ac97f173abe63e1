"""Two reads at once: a view whose two independent scans each keep a core busy runs the second
on another connection of the same engine (the heatmap's cells and weeks, an evaluation's period
and the one before it)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.db.engine import tune_for_aggregates

T = TypeVar("T")
U = TypeVar("U")

# At most this many views at a time run their second scan on a second connection; the
# others run both scans in turn (two cores gain nothing from more, and the pool stays free).
SIDE_SCANS = 2
_side_slots = threading.BoundedSemaphore(SIDE_SCANS)
_side_pool = ThreadPoolExecutor(max_workers=SIDE_SCANS, thread_name_prefix="gridmap-scan")


def side_by_side(session: Session, here: Callable[[Session], T],
                 there: Callable[[Session], U]) -> tuple[T, U]:
    """``(here(session), there(other))``, the two running at the same time, ``there`` on a
    second connection of the same engine.

    The heatmap's cell and week scans each keep one core busy for most of a second at a million
    issues, and PostgreSQL does not split them across its parallel workers (it cannot know how
    few cells the issues fill, so it plans as if each were alone in its cell). Each statement sees
    the data committed when it starts, as every statement of a READ COMMITTED session does.
    A session that has written in its transaction runs both itself, since another connection
    could not see those writes, and so does a build that finds both slots taken.
    """
    if _has_written(session) or not _side_slots.acquire(blocking=False):
        return here(session), there(session)
    try:
        future = _side_pool.submit(_on_own_connection, session.get_bind().engine, there)
        first = here(session)
        return first, future.result()
    finally:
        _side_slots.release()


def _on_own_connection(engine, fn: Callable[[Session], U]) -> U:
    with Session(engine) as other:
        tune_for_aggregates(other)
        return fn(other)


def _has_written(session: Session) -> bool:
    return session.execute(text("SELECT txid_current_if_assigned() IS NOT NULL")).scalar_one()
