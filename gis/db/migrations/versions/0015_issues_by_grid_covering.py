"""issues by grid and report time, covering what the area aggregates read

``issues_grid_time_idx`` on ``issues (grid_id, reported_at) INCLUDE (status, category, lon, lat)``
replaces ``issues_grid_status_idx (grid_id, status)``. A leader's region is a set of grids; the
heatmap's cells and weeks, and the span of report times, over that set are then read from the
index alone (an index-only scan of the region's entries) instead of a bitmap heap scan that
visits a page of the 3 GB table for nearly every case of a street. Lookups by grid and status
still start with the grid. One index replaces one, so a report costs no more to insert.

``issues_timed_due_idx`` (the cases whose time runs, by due time) also carries ``grid_id``,
``status``, ``category`` and ``reported_at``: the overdue counts per grid that the statistics and
the heatmap add to the rollup's (overdue depends on now(), so it is never rolled up) are read
from the index alone, about 90,000 cases at city scale.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 03:30:00
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS issues_grid_time_idx ON issues (grid_id, reported_at) "
               "INCLUDE (status, category, lon, lat)")
    op.execute("DROP INDEX IF EXISTS issues_grid_status_idx")
    _timed_due(f"INCLUDE ({', '.join(TIMED_INCLUDE)}) ")


def downgrade() -> None:
    op.execute("CREATE INDEX issues_grid_status_idx ON issues (grid_id, status)")
    op.execute("DROP INDEX issues_grid_time_idx")
    _timed_due("")


# History: gis.rules.UNTIMED_STATUSES at the time of this migration.
TIMED = "status NOT IN ('closed', 'rejected', 'on_hold')"
TIMED_INCLUDE = ("grid_id", "status", "category", "reported_at")


def _timed_due(include: str) -> None:
    """issues_timed_due_idx built again with ``include``, then swapped in under its name."""
    op.execute("DROP INDEX IF EXISTS issues_timed_due_next")
    op.execute(f"CREATE INDEX issues_timed_due_next ON issues (due_at) {include}WHERE {TIMED}")
    op.execute("DROP INDEX IF EXISTS issues_timed_due_idx")
    op.execute("ALTER INDEX issues_timed_due_next RENAME TO issues_timed_due_idx")
