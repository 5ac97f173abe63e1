"""work on site: verify, check and self-resolve idempotently, facility checks and their photos

- ``issue_events.client_key``: the Idempotency-Key of the action on site (核实, 核查, 自处理) that
  made the step, unique per case, so that a tablet retrying after a lost answer gets the step it
  made, never a second one.
- ``issues.self_resolved``: the case was reported and closed by the worker in one visit (自处理),
  which statistics count apart.
- ``facility_checks``: a facility checked on patrol (部件巡检): by whom, when, what was found
  (ok, damaged, missing), the case it opened, and the check's own idempotency key.
- ``issue_photos`` also holds the photos of a check (``facility_check_id``). A photo belongs to a
  case, a check or both: the photo of a check that opened a case is one of that case's photos as
  reported, kept once (``issue_id`` and ``facility_check_id`` both set), not copied.
- the issue category ``facility_damaged`` (部件损坏/缺失), for the facilities no specific category
  covers (gis.db.category_seeds), inserted here for databases seeded before it existed.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09 10:00:00
"""

from alembic import op
from sqlalchemy import text

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# History: the rules at the time of this migration (gis.rules.FACILITY_CHECK_RESULTS, and the
# seed row of gis.db.category_seeds).
FACILITY_CHECK_RESULTS = ("ok", "damaged", "missing")
FACILITY_DAMAGED = {
    "code": "facility_damaged", "kind": "issue", "name_zh": "部件损坏/缺失",
    "name_en": "Damaged or missing facility", "std_code": "扩展事件", "icon": "wrench",
    "colour": "#8c564b", "due_hours": 72,
    "facility_categories": ["fitness", "toilet", "pavilion", "bench", "stage", "barrier"]}


def _listed(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def upgrade() -> None:
    op.execute("""
        ALTER TABLE issue_events
            ADD COLUMN client_key varchar(255),
            ADD CONSTRAINT issue_events_issue_key UNIQUE (issue_id, client_key)""")
    op.execute("ALTER TABLE issues ADD COLUMN self_resolved boolean NOT NULL DEFAULT false")
    op.execute(f"""
        CREATE TABLE facility_checks (
            id serial PRIMARY KEY,
            facility_id integer NOT NULL REFERENCES facilities(id) ON DELETE CASCADE,
            actor_id integer NOT NULL REFERENCES users(id),
            result varchar(8) NOT NULL
                CONSTRAINT result_valid CHECK (result IN ({_listed(FACILITY_CHECK_RESULTS)})),
            note text,
            checked_at timestamptz NOT NULL DEFAULT now(),
            issue_id integer REFERENCES issues(id) ON DELETE SET NULL,
            client_key varchar(255) CONSTRAINT facility_checks_client_key UNIQUE
        )""")
    op.execute("CREATE INDEX ix_facility_checks_facility ON facility_checks (facility_id, checked_at)")
    op.execute("""
        ALTER TABLE issue_photos
            ALTER COLUMN issue_id DROP NOT NULL,
            ADD COLUMN facility_check_id integer REFERENCES facility_checks(id) ON DELETE CASCADE,
            ADD CONSTRAINT issue_photos_of_a_case_or_check
                CHECK (issue_id IS NOT NULL OR facility_check_id IS NOT NULL),
            ADD CONSTRAINT issue_photos_check_key UNIQUE (facility_check_id, idempotency_key)""")
    op.get_bind().execute(text("""
        INSERT INTO categories (code, kind, name_zh, name_en, std_code, icon, colour, due_hours,
                                facility_categories)
        VALUES (:code, :kind, :name_zh, :name_en, :std_code, :icon, :colour, :due_hours,
                :facility_categories)
        ON CONFLICT (code) DO NOTHING"""), FACILITY_DAMAGED)


def downgrade() -> None:
    # The category stays where cases use it (a deployment's data); otherwise it goes.
    op.execute("""
        DELETE FROM categories c WHERE c.code = 'facility_damaged'
           AND NOT EXISTS (SELECT 1 FROM issues i WHERE i.category = c.code)
           AND NOT EXISTS (SELECT 1 FROM departments d WHERE c.code = ANY(d.categories))""")
    op.execute("DELETE FROM issue_photos WHERE issue_id IS NULL")  # photos of checks alone
    op.execute("""
        ALTER TABLE issue_photos
            DROP CONSTRAINT issue_photos_check_key,
            DROP CONSTRAINT issue_photos_of_a_case_or_check,
            DROP COLUMN facility_check_id,
            ALTER COLUMN issue_id SET NOT NULL""")
    op.execute("DROP TABLE facility_checks")
    op.execute("ALTER TABLE issues DROP COLUMN self_resolved")
    op.execute("""
        ALTER TABLE issue_events
            DROP CONSTRAINT issue_events_issue_key,
            DROP COLUMN client_key""")
