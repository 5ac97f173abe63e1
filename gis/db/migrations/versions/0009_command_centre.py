"""the command centre: dispatch rules, the branches of the loop (回退, 延期, 挂账, 督办) and in-app
notifications

- ``issues.status`` may be ``on_hold`` (挂账): open and counted, but no step runs and it is never
  overdue.
- ``issue_events`` gains ``kind`` (a plain move, a dispatch, a return, a hold, a resume; or an
  entry that is not a move: an extension asked for, approved or refused, a supervision notice
  and its reply, whose ``to_status`` is NULL), ``department_id`` (the department a dispatch
  sends the case to, a return comes from, an extension or notice concerns) and ``details``
  (jsonb: whether a rule dispatched, the deadline before and after an extension...).
- ``dispatch_rules``: category x region -> department (NULL: the grid's worker), automatic or
  only suggested; the most specific region wins.
- ``extension_requests`` (延期申请) and ``supervisions`` (督办), each with its decision or reply.
- ``notifications``: the in-app list, per user, with read time; ``step_alerts`` marks each late
  step whose lateness has been notified (apart from the steps themselves: bookkeeping of the
  notifications, not of the case).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-20 10:00:00
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# History: the rules at the time of this migration (gis.rules.ISSUE_STATUSES, EVENT_KINDS,
# MOVE_EVENT_KINDS, LIMIT_UNITS, NOTIFICATION_KINDS).
STATUSES_BEFORE = ("reported", "accepted", "dispatched", "in_progress", "resolved", "closed",
                   "rejected", "reopened")
STATUSES = STATUSES_BEFORE + ("on_hold",)
MOVE_KINDS = ("move", "dispatch", "return", "hold", "resume")
EVENT_KINDS = MOVE_KINDS + ("extension_request", "extension_approved", "extension_refused",
                            "supervise", "supervision_reply")
UNITS = ("minutes", "hours", "workdays")
NOTIFICATION_KINDS = ("overdue", "returned", "extension_request", "extension_decided",
                      "supervision", "supervision_reply")


def _listed(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def upgrade() -> None:
    op.execute("ALTER TABLE issues DROP CONSTRAINT status_valid")
    op.execute(f"ALTER TABLE issues ADD CONSTRAINT status_valid CHECK (status IN ({_listed(STATUSES)}))")
    op.execute(f"""
        ALTER TABLE issue_events
            ADD COLUMN kind varchar(24) NOT NULL DEFAULT 'move'
                CONSTRAINT kind_valid CHECK (kind IN ({_listed(EVENT_KINDS)})),
            ADD COLUMN department_id integer REFERENCES departments(id),
            ADD COLUMN details jsonb,
            ALTER COLUMN to_status DROP NOT NULL,
            ADD CONSTRAINT moves_have_a_status
                CHECK ((kind IN ({_listed(MOVE_KINDS)})) = (to_status IS NOT NULL))""")
    op.execute("CREATE INDEX ix_issue_events_kind ON issue_events (kind, at) WHERE kind <> 'move'")
    op.execute("""
        CREATE TABLE dispatch_rules (
            id serial PRIMARY KEY,
            category varchar(32) NOT NULL
                REFERENCES categories(code) ON DELETE CASCADE ON UPDATE CASCADE,
            region_id integer REFERENCES regions(id) ON DELETE CASCADE,
            department_id integer REFERENCES departments(id) ON DELETE CASCADE,
            auto boolean NOT NULL DEFAULT true,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT one_rule_per_category_and_region UNIQUE NULLS NOT DISTINCT (category, region_id)
        )""")
    op.execute(f"""
        CREATE TABLE extension_requests (
            id bigserial PRIMARY KEY,
            issue_id integer NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
            requested_by integer REFERENCES users(id),
            requested_at timestamptz NOT NULL DEFAULT now(),
            value integer NOT NULL CONSTRAINT value_positive CHECK (value > 0),
            unit varchar(8) NOT NULL CONSTRAINT unit_valid CHECK (unit IN ({_listed(UNITS)})),
            reason text NOT NULL CONSTRAINT reason_given CHECK (btrim(reason) <> ''),
            decided_by integer REFERENCES users(id),
            decided_at timestamptz,
            approved boolean,
            decision_note text,
            due_before timestamptz,
            due_after timestamptz,
            CONSTRAINT decided_together CHECK ((decided_at IS NULL) = (approved IS NULL))
        )""")
    op.execute("CREATE INDEX ix_extension_requests_issue ON extension_requests (issue_id)")
    op.execute("CREATE UNIQUE INDEX extension_requests_one_pending ON extension_requests (issue_id) "
               "WHERE decided_at IS NULL")
    op.execute("""
        CREATE TABLE supervisions (
            id bigserial PRIMARY KEY,
            issue_id integer NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
            issued_by integer REFERENCES users(id),
            issued_at timestamptz NOT NULL DEFAULT now(),
            note text NOT NULL CONSTRAINT note_given CHECK (btrim(note) <> ''),
            reply_due_at timestamptz,
            replied_by integer REFERENCES users(id),
            replied_at timestamptz,
            reply text,
            CONSTRAINT replied_together CHECK ((replied_at IS NULL) = (reply IS NULL))
        )""")
    op.execute("CREATE INDEX ix_supervisions_issue ON supervisions (issue_id)")
    op.execute(f"""
        CREATE TABLE notifications (
            id bigserial PRIMARY KEY,
            user_id integer NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            issue_id integer REFERENCES issues(id) ON DELETE CASCADE,
            kind varchar(24) NOT NULL
                CONSTRAINT kind_valid CHECK (kind IN ({_listed(NOTIFICATION_KINDS)})),
            at timestamptz NOT NULL DEFAULT now(),
            title text NOT NULL,
            read_at timestamptz
        )""")
    op.execute("CREATE INDEX ix_notifications_user ON notifications (user_id, at DESC)")
    op.execute("CREATE INDEX ix_notifications_unread ON notifications (user_id) WHERE read_at IS NULL")
    op.execute("""
        CREATE TABLE step_alerts (
            step_id bigint PRIMARY KEY REFERENCES issue_steps(id) ON DELETE CASCADE,
            notified_at timestamptz NOT NULL DEFAULT now()
        )""")


def downgrade() -> None:
    op.execute("DROP TABLE step_alerts")
    op.execute("DROP TABLE notifications")
    op.execute("DROP TABLE supervisions")
    op.execute("DROP TABLE extension_requests")
    op.execute("DROP TABLE dispatch_rules")
    op.execute("DELETE FROM issue_events WHERE to_status IS NULL")
    op.execute("""
        ALTER TABLE issue_events DROP CONSTRAINT moves_have_a_status,
            DROP COLUMN details, DROP COLUMN department_id, DROP COLUMN kind,
            ALTER COLUMN to_status SET NOT NULL""")
    op.execute("UPDATE issues SET status = 'in_progress' WHERE status = 'on_hold'")
    op.execute("ALTER TABLE issues DROP CONSTRAINT status_valid")
    op.execute(f"ALTER TABLE issues ADD CONSTRAINT status_valid "
               f"CHECK (status IN ({_listed(STATUSES_BEFORE)}))")
