"""dashboard and evaluation at city scale: indexes that let their counts skip the city's cases

- ``issues_closed_at_idx`` also carries ``due_at``: the cases closed in a period, and how many of
  them were closed by their due time (the dashboard's weekly on-time rate), are counted from the
  index alone.
- ``issues_unlocated_idx``: the few cases without a location (a report waiting for its photo's
  position) by report time; the issue rollup's weekly cells hold only located cases, so the
  dashboard's weekly counts add these from here.
- ``issue_events_moves_at_idx``: the moves (history rows that change the status) by the status
  they leave and their time, carrying what the grid workers' evaluation reads of them: a
  period's verifications and checks are read from the index alone.
- ``issue_events_reports_idx``: each case's report (the history row that opens it) with its
  actor, so a worker's reports and the decisions on them find their reporter in the index.
- ``issue_events_spans_idx``: each case's dispatches, returns and moves to ``reopened`` with
  what the departments' evaluation reads of them: a case's spans are read from the index alone.
- ``issue_steps_issue_step_idx``: a case's steps of one kind by start, with their deadline and
  end: the step a verification or a check ended, read from the index.
- ``issue_steps_handle_done_idx``: the handling steps done in a period, for the departments'
  handling time.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 03:40:00
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# History: gis.rules.CLOSED_STATUS at the time of this migration.
CLOSED = "status = 'closed'"


def upgrade() -> None:
    op.execute(f"CREATE INDEX issues_closed_at_due_idx ON issues (closed_at) INCLUDE (due_at) "
               f"WHERE {CLOSED}")
    op.execute("DROP INDEX issues_closed_at_idx")
    op.execute("ALTER INDEX issues_closed_at_due_idx RENAME TO issues_closed_at_idx")
    op.execute("CREATE INDEX issues_unlocated_idx ON issues (reported_at) WHERE lon IS NULL")
    op.execute("CREATE INDEX issue_events_moves_at_idx ON issue_events (from_status, at) "
               "INCLUDE (issue_id, actor_id, to_status) WHERE to_status IS NOT NULL")
    op.execute("CREATE INDEX issue_events_reports_idx ON issue_events (issue_id) "
               "INCLUDE (actor_id) WHERE from_status IS NULL AND to_status IS NOT NULL")
    op.execute("CREATE INDEX issue_events_spans_idx ON issue_events (issue_id) "
               "INCLUDE (at, id, kind, department_id, to_status) "
               "WHERE kind IN ('dispatch', 'return') OR to_status = 'reopened'")
    op.execute("CREATE INDEX issue_steps_issue_step_idx ON issue_steps "
               "(issue_id, step, started_at, id) INCLUDE (due_at, done_at)")
    op.execute("CREATE INDEX issue_steps_handle_done_idx ON issue_steps (done_at) "
               "WHERE step = 'handle'")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS issue_steps_handle_done_idx")
    op.execute("DROP INDEX IF EXISTS issue_steps_issue_step_idx")
    op.execute("DROP INDEX IF EXISTS issue_events_spans_idx")
    op.execute("DROP INDEX IF EXISTS issue_events_reports_idx")
    op.execute("DROP INDEX IF EXISTS issue_events_moves_at_idx")
    op.execute("DROP INDEX IF EXISTS issues_unlocated_idx")
    op.execute(f"CREATE INDEX issues_closed_at_plain_idx ON issues (closed_at) WHERE {CLOSED}")
    op.execute("DROP INDEX issues_closed_at_idx")
    op.execute("ALTER INDEX issues_closed_at_plain_idx RENAME TO issues_closed_at_idx")
