"""working time: the local calendar overrides, time limits per category, urgency and step, the
urgency of a case and the deadlines of its steps

- ``calendar_overrides``: a day made a working day or a holiday by a local decision, or entered
  for a year the installed ``chinesecalendar`` does not know yet (gis.worktime.calendar); an
  override wins over the official calendar.
- ``time_limits``: the limit of each step (accept 受理/立案, dispatch 派遣, handle 处置, verify
  核查) of a category for each urgency (normal 一般, urgent 紧急), in minutes, hours or working
  days. It replaces ``categories.due_hours``: each category's limits are seeded here (the values
  of gis.db.category_seeds at the time), and a category that is not a seed keeps its old time
  limit as its handling limit in hours.
- ``issues.urgency`` (normal by default).
- ``issue_steps``: each step a case has started, when, its deadline and when it was done; at
  most one step of a case runs at a time. Cases stored before keep their ``due_at``; their steps
  are recorded from their next move on.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-14 10:00:00
"""

from alembic import op
from sqlalchemy import text

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# History: the rules and seeds at the time of this migration (gis.rules.STEPS, URGENCIES,
# LIMIT_UNITS; gis.db.category_seeds).
STEPS = ("accept", "dispatch", "handle", "verify")
URGENCIES = ("normal", "urgent")
UNITS = ("minutes", "hours", "workdays")
COMMON = {"urgent": {"accept": (10, "minutes"), "dispatch": (10, "minutes"), "verify": (1, "hours")},
          "normal": {"accept": (30, "minutes"), "dispatch": (30, "minutes"), "verify": (2, "hours")}}
HANDLE = {  # category: (normal, urgent)
    "sewer_blocked": ((3, "workdays"), (4, "hours")),
    "cover_damaged": ((1, "workdays"), (2, "hours")),
    "streetlight_out": ((1, "workdays"), (12, "hours")),
    "illegal_construction": ((15, "workdays"), (3, "workdays")),
    "parking_chaos": ((1, "workdays"), (2, "hours")),
    "garbage": ((1, "workdays"), (4, "hours")),
    "heating_failure": ((24, "hours"), (4, "hours")),
    "elevator_failure": ((24, "hours"), (1, "hours")),
    "road_damaged": ((5, "workdays"), (4, "hours")),
    "noise": ((2, "workdays"), (2, "hours")),
    "neighbour_dispute": ((5, "workdays"), (1, "workdays")),
    "facility_damaged": ((3, "workdays"), (1, "workdays")),
    "other": ((5, "workdays"), (1, "workdays")),
}


def _listed(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def upgrade() -> None:
    op.execute("""
        CREATE TABLE calendar_overrides (
            day date PRIMARY KEY,
            working boolean NOT NULL,
            note text NOT NULL DEFAULT '',
            created_by varchar(64),
            created_at timestamptz NOT NULL DEFAULT now()
        )""")
    op.execute(f"""
        CREATE TABLE time_limits (
            category varchar(32) NOT NULL
                REFERENCES categories(code) ON DELETE CASCADE ON UPDATE CASCADE,
            urgency varchar(8) NOT NULL
                CONSTRAINT urgency_valid CHECK (urgency IN ({_listed(URGENCIES)})),
            step varchar(16) NOT NULL CONSTRAINT step_valid CHECK (step IN ({_listed(STEPS)})),
            value integer NOT NULL CONSTRAINT value_positive CHECK (value > 0),
            unit varchar(8) NOT NULL CONSTRAINT unit_valid CHECK (unit IN ({_listed(UNITS)})),
            PRIMARY KEY (category, urgency, step)
        )""")
    _seed_limits()
    op.execute("ALTER TABLE categories DROP COLUMN due_hours")
    op.execute(f"""
        ALTER TABLE issues ADD COLUMN urgency varchar(8) NOT NULL DEFAULT 'normal'
            CONSTRAINT urgency_valid CHECK (urgency IN ({_listed(URGENCIES)}))""")
    op.execute(f"""
        CREATE TABLE issue_steps (
            id bigserial PRIMARY KEY,
            issue_id integer NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
            step varchar(16) NOT NULL CONSTRAINT step_valid CHECK (step IN ({_listed(STEPS)})),
            started_at timestamptz NOT NULL,
            due_at timestamptz,
            done_at timestamptz,
            CONSTRAINT done_after_start CHECK (done_at IS NULL OR done_at >= started_at)
        )""")
    op.execute("CREATE INDEX ix_issue_steps_issue ON issue_steps (issue_id, started_at, id)")
    op.execute("CREATE UNIQUE INDEX issue_steps_one_running ON issue_steps (issue_id) "
               "WHERE done_at IS NULL")
    op.execute("CREATE INDEX ix_issue_steps_running_due ON issue_steps (due_at) "
               "WHERE done_at IS NULL")


def _seed_limits() -> None:
    """The seeds' limits for the categories present; any other issue category keeps its old
    limit (due_hours) as its handling limit in hours, with the common limits of the other steps."""
    conn = op.get_bind()
    present = dict(conn.execute(text(
        "SELECT code, due_hours FROM categories WHERE kind = 'issue'")).all())
    rows = []
    for code, due_hours in present.items():
        handle = HANDLE.get(code) or ((due_hours, "hours"),) * 2
        if handle[0][0] is None:
            continue  # no limit before: none now (never overdue)
        for urgency, limit in zip(URGENCIES, handle, strict=True):
            for step, (value, unit) in (COMMON[urgency] | {"handle": limit}).items():
                rows.append({"c": code, "u": urgency, "s": step, "v": value, "unit": unit})
    if rows:
        conn.execute(text("INSERT INTO time_limits (category, urgency, step, value, unit) "
                          "VALUES (:c, :u, :s, :v, :unit)"), rows)


def downgrade() -> None:
    op.execute("DROP TABLE issue_steps")
    op.execute("ALTER TABLE issues DROP COLUMN urgency")
    op.execute("ALTER TABLE categories ADD COLUMN due_hours integer")
    # The handling limit of normal cases, in hours (a working day counted as 24 hours).
    op.execute("""
        UPDATE categories c SET due_hours = CASE t.unit WHEN 'minutes' THEN ceil(t.value / 60.0)
                                                       WHEN 'hours' THEN t.value
                                                       ELSE t.value * 24 END
          FROM time_limits t
         WHERE t.category = c.code AND t.urgency = 'normal' AND t.step = 'handle'""")
    op.execute("DROP TABLE time_limits")
    op.execute("DROP TABLE calendar_overrides")
