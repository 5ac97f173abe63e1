"""issue_edit_state: a counter bumped when issues are deleted or edited in place

The map pages are cached per "data version". New issues (max id) and workflow steps (new
issue_events rows) already change it; deletions and in-place edits did not, so the version also
held count(*) of issues, 50-70 ms at a million issues on every map request, cache hits included.
This counter, bumped once per statement by a trigger, replaces it. Workflow updates (status,
closed_at, updated_at) do not fire it, so reporting and the workflow never wait on its row.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 19:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# What the maps show of an issue, besides its status (which goes through issue_events).
SHOWN_COLUMNS = "description, category, geom, grid_id, photo_urls, due_at, priority"


def upgrade() -> None:
    op.create_table(
        "issue_edit_state",
        sa.Column("id", sa.Integer(), server_default="1", nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="0", nullable=False),
        sa.CheckConstraint("id = 1", name="issue_edit_state_single_row"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO issue_edit_state (id, version) VALUES (1, 0)")
    op.execute("""
        CREATE FUNCTION gridmap_bump_issue_edits() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE issue_edit_state SET version = version + 1 WHERE id = 1;
            RETURN NULL;
        END $$
    """)
    op.execute(f"""
        CREATE TRIGGER issues_bump_edits
        AFTER DELETE OR TRUNCATE OR UPDATE OF {SHOWN_COLUMNS} ON issues
        FOR EACH STATEMENT EXECUTE FUNCTION gridmap_bump_issue_edits()
    """)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS issues_bump_edits ON issues")
    op.execute("DROP FUNCTION IF EXISTS gridmap_bump_issue_edits()")
    op.drop_table("issue_edit_state")
