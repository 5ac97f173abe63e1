"""One grid index per process, kept in step with the database by the grid version counter.

Every write to ``grids`` bumps ``grid_index_state.version`` (a trigger), whichever process made
it. Each lookup reads that one integer (a primary-key read) and rebuilds the index only when it
moved, so no process answers from stale grids and none rebuilds per request. A write that checks
the version in its own statement (a report's insert) skips that read (:meth:`GridIndexCache.latest`).
"""

from __future__ import annotations

import threading

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.geotag.assign import CurrentGrids, load_current_grids
from gis.rules import DEFAULT_TOLERANCE_M


class GridIndexCache:
    def __init__(self, tolerance_m: float = DEFAULT_TOLERANCE_M):
        self.tolerance_m = tolerance_m
        self._current: CurrentGrids | None = None
        self._lock = threading.Lock()
        self.builds = 0  # how often the index was (re)built: visible to tests and metrics

    def latest(self, session: Session) -> CurrentGrids:
        """The index this process holds, without reading the version counter (built on first use).
        Only for a writer that checks the version inside its own write, as the intake's insert
        does (gis.issues.reporting), and calls :meth:`get` when it moved."""
        current = self._current
        return current if current is not None else self.get(session)

    def peek(self) -> CurrentGrids | None:
        """The index this process holds, None before the first build (no database read)."""
        return self._current

    def get(self, session: Session) -> CurrentGrids:
        version = session.execute(text("SELECT version FROM grid_index_state WHERE id = 1")).scalar_one()
        current = self._current
        if current is not None and current.index.version == version:
            return current
        with self._lock:
            if self._current is None or self._current.index.version != version:
                # load_current_grids stamps the version it read before the grids, so a concurrent
                # edit can only make the stamp older than the data: the next call rebuilds again.
                self._current = load_current_grids(session, self.tolerance_m)
                self.builds += 1
            return self._current
