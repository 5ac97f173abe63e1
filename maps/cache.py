"""Rendered pages kept in memory, keyed by what they show: the page, its filters and the data
version (:func:`gis.queries.map_data.data_version`). A changed version misses the cache, so an edit is
seen on the next request; the time-to-live bounds what the version cannot see."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable


class PageCache:
    """A small thread-safe LRU of rendered pages with a time-to-live.

    Two requests for the same missing key may both build it (the second write wins); pages are
    deterministic for a key, so that only costs time, and no lock is held while building.
    """

    def __init__(self, max_pages: int = 64, ttl_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic):
        if max_pages < 0 or ttl_s < 0:
            raise ValueError(f"max_pages and ttl_s must be >= 0, got {max_pages}, {ttl_s}")
        self.max_pages, self.ttl_s, self._clock = max_pages, ttl_s, clock
        self._pages: OrderedDict[Hashable, tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> str | None:
        with self._lock:
            entry = self._pages.get(key)
            if entry is None or self._clock() - entry[0] > self.ttl_s:
                self._pages.pop(key, None)
                self.misses += 1
                return None
            self._pages.move_to_end(key)
            self.hits += 1
            return entry[1]

    def put(self, key: Hashable, page: str) -> None:
        if self.max_pages == 0:
            return
        with self._lock:
            self._pages[key] = (self._clock(), page)
            self._pages.move_to_end(key)
            while len(self._pages) > self.max_pages:
                self._pages.popitem(last=False)

    def get_or_build(self, key: Hashable, build: Callable[[], str]) -> tuple[str, bool]:
        """(page, True if it came from the cache)."""
        page = self.get(key)
        if page is not None:
            return page, True
        page = build()
        self.put(key, page)
        return page, False

    def __len__(self) -> int:
        return len(self._pages)
