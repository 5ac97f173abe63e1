"""Edits made by another process, for the tests of what this process notices."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager


def _run(database_url: str, body: str) -> None:
    url = database_url.replace("postgresql+psycopg", "postgresql")
    script = f"import psycopg\nwith psycopg.connect({url!r}) as conn:\n" + textwrap.indent(
        textwrap.dedent(body), "    ")
    subprocess.run([sys.executable, "-c", script], check=True)


@contextmanager
def grid_moved_elsewhere(database_url: str, code: str) -> Iterator[None]:
    """Grid ``code`` moved one degree east by a separate process (committed), and put back by
    one afterwards."""
    _run(database_url, f"""
        conn.execute("CREATE TABLE saved_grid AS SELECT id, geom FROM grids WHERE code = %s",
                     ({code!r},))
        conn.execute("UPDATE grids SET geom = ST_Translate(geom, 1, 0) WHERE code = %s", ({code!r},))
    """)
    try:
        yield
    finally:
        _run(database_url, """
            conn.execute("UPDATE grids g SET geom = s.geom FROM saved_grid s WHERE g.id = s.id")
            conn.execute("DROP TABLE saved_grid")
        """)
