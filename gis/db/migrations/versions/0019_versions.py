"""versions of what a server process keeps in memory: the rules reports are stored under, and
the people who report them

The intake keeps, per process, what a batch of reports would otherwise read before it writes
(gis.issues.reporting, gis.people.sessions): the issue categories with their time limits and
the working-day calendar's overrides ('rules'), and the callers of the bearer tokens it has met
with their roles, grids and regions ('people'). Every change to the tables they are read from
bumps that name's counter, and the intake's insert writes a report only while the counters are
the ones the process read its copies at: a process whose copy is stale reads it again and
writes those reports anew, as one whose grid index is stale tags them again (grid_index_state,
which stays as it is).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 19:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# name -> the tables whose changes bump it
WATCHED = {
    "rules": ("categories", "time_limits", "calendar_overrides"),
    "people": ("users", "grid_assignments", "regions", "grids"),
}


def upgrade() -> None:
    op.create_table(
        "versions",
        sa.Column("name", sa.String(16), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.execute("INSERT INTO versions (name) VALUES " + ", ".join(f"('{n}')" for n in WATCHED))
    op.execute("""
        CREATE FUNCTION gridmap_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE versions SET version = version + 1 WHERE name = TG_ARGV[0];
            RETURN NULL;
        END $$
    """)
    for name, tables in WATCHED.items():
        for table in tables:
            op.execute(f"""
                CREATE TRIGGER {table}_bump_{name}_version
                AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION gridmap_bump_version('{name}')
            """)


def downgrade() -> None:
    for name, tables in WATCHED.items():
        for table in tables:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_bump_{name}_version ON {table}")
    op.execute("DROP FUNCTION IF EXISTS gridmap_bump_version()")
    op.drop_table("versions")
