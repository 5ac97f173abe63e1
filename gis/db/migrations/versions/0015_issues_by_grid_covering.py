"""issues by grid and report time, covering what the area aggregates read

``issues_grid_time_idx`` on ``issues (grid_id, reported_at) INCLUDE (status, category, lon, lat)``
replaces ``issues_grid_status_idx (grid_id, status)``. A leader's region is a set of grids; the
heatmap's cells and weeks, and the span of report times, over that set are then read from the
index alone (an index-only scan of the region's entries) instead of a bitmap heap scan that
visits a page of the 3 GB table for nearly every case of a street. Lookups by grid and status
still start with the grid. One index replaces one, so a report costs no more to insert.

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-01 03:30:00
"""

from alembic import op

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS issues_grid_time_idx ON issues (grid_id, reported_at) "
               "INCLUDE (status, category, lon, lat)")
    op.execute("DROP INDEX IF EXISTS issues_grid_status_idx")


def downgrade() -> None:
    op.execute("CREATE INDEX issues_grid_status_idx ON issues (grid_id, status)")
    op.execute("DROP INDEX issues_grid_time_idx")
