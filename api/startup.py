"""What a server process does once its start-up work is done.

A full garbage collection visits every container object the process holds. After start-up
that is some 220,000 of them (the app, pydantic's validators, PySAL, SciPy and the rest of
what the modules import), which no request ever frees: each full collection then stalls the
event loop, and every request waiting on it, for 120–230 ms (measured under the intake's load,
bench/README.md). Frozen, they are left out of every later collection, which then visits only
what requests made since.
"""

from __future__ import annotations

import gc


def freeze_start_up_objects() -> None:
    """Collect what start-up left for the collector, then keep the rest out of later
    collections (:func:`gc.freeze`). Called again after a later start-up step (the hotspot
    statistics' import in its thread) freezes what that one made."""
    gc.collect()
    gc.freeze()
