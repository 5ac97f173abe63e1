"""open issues by category and place, for the possible duplicates of each report

Every report's answer lists the open cases of its category within 30 m (geodesic) reported in the
48 hours before it (gis.issues.duplicates.nearby_statement). Through ``idx_issues_geom`` that read
visits every case ever reported near the point, of any category and status, and drops nearly
all of them: at a hotspot of a city that keeps three years of cases, hundreds; under the intake
benchmark's load on the demo's 14 grids, 0.3-0.5 ms a report. ``ix_issues_open_category_geom``
holds only the open cases, by category (btree_gist) and geography, which ST_DWithin on
geography reads directly (the query has no geometry box for the planner to prefer
``idx_issues_geom`` by): about 0.05 ms there, and at a city's hotspot only what is still open.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 05:10:00
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# History: gis.rules.FINAL_STATUSES at the time of this migration.
OPEN = "status NOT IN ('closed', 'rejected')"


def upgrade() -> None:
    # Trusted since PostgreSQL 13: a database owner without superuser may create it.
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.execute("CREATE INDEX IF NOT EXISTS ix_issues_open_category_geom ON issues "
               f"USING gist (category, (geom::geography)) WHERE {OPEN}")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_issues_open_category_geom")
