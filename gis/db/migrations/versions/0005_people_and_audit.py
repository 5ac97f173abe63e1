"""people in service: roles, regions and departments as scopes, grid assignment history, sessions,
log-in lock-out and the append-only audit trail

- ``users`` gains a region (leaders and dispatchers read inside it), a department, the flag that
  an initial password must be changed, and ``sessions_valid_after`` (a new password ends every
  older session).
- ``departments`` (专业部门) are data: code, name, the issue categories they handle, their region.
  ``issues.department_id`` is the department a case is dispatched to.
- ``grid_assignments`` keeps who held which grid when (``valid_from``/``valid_to``), so
  statistics credit the worker who held the grid at the time; ``grid_workers`` becomes the view
  of the current holders, which every existing read keeps using.
- ``sessions`` are server-side: a token (bearer or cookie) is random and only its SHA-256 is
  stored, so disabling a user or changing a password ends their sessions on the next request.
- ``login_failures`` counts failed log-ins per username (known or not, so a lock-out does not
  reveal which usernames exist).
- ``audit_log`` is append-only in the database itself: a trigger refuses UPDATE, TRUNCATE, and
  DELETE of rows younger than the retention; the application's own role is granted only SELECT
  and INSERT on it (``gis.db.roles``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 17:00:00
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# History: the rules at the time of this migration (gis.rules.ROLES, AUDIT_RETENTION_DAYS).
ROLES = ("worker", "leader", "dispatcher", "department", "admin")
RETENTION_DAYS = 180


def upgrade() -> None:
    op.execute("""
        CREATE TABLE departments (
            id serial PRIMARY KEY,
            code varchar(32) NOT NULL UNIQUE,
            name varchar(100) NOT NULL,
            categories varchar(32)[] NOT NULL DEFAULT '{}',
            region_id integer REFERENCES regions(id),
            active boolean NOT NULL DEFAULT true
        )""")
    roles = ", ".join(f"'{r}'" for r in ROLES)
    op.execute(f"""
        ALTER TABLE users
            ADD COLUMN region_id integer REFERENCES regions(id),
            ADD COLUMN department_id integer REFERENCES departments(id),
            ADD COLUMN must_change_password boolean NOT NULL DEFAULT false,
            ADD COLUMN password_changed_at timestamptz,
            ADD COLUMN sessions_valid_after timestamptz NOT NULL DEFAULT now(),
            ADD COLUMN created_at timestamptz NOT NULL DEFAULT now(),
            DROP CONSTRAINT role_valid,
            ADD CONSTRAINT users_role_known CHECK (role IN ({roles}))""")
    op.execute("ALTER TABLE issues ADD COLUMN department_id integer REFERENCES departments(id)")
    op.execute("CREATE INDEX ix_issues_department ON issues (department_id) "
               "WHERE department_id IS NOT NULL")

    op.execute("""
        CREATE TABLE grid_assignments (
            id serial PRIMARY KEY,
            grid_code varchar(15) NOT NULL,
            user_id integer NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            valid_from timestamptz NOT NULL DEFAULT now(),
            valid_to timestamptz,
            CONSTRAINT grid_assignments_ordered CHECK (valid_to IS NULL OR valid_to >= valid_from)
        )""")
    op.execute("CREATE UNIQUE INDEX ux_grid_assignments_current ON grid_assignments "
               "(grid_code, user_id) WHERE valid_to IS NULL")
    op.execute("CREATE INDEX ix_grid_assignments_grid ON grid_assignments (grid_code, valid_from)")
    # Who holds a grid today held it, as far as anyone knows, since the first report.
    op.execute("""
        INSERT INTO grid_assignments (grid_code, user_id, valid_from)
        SELECT grid_code, user_id,
               coalesce((SELECT min(reported_at) FROM issues), now()) FROM grid_workers""")
    op.execute("DROP TABLE grid_workers")
    op.execute("CREATE VIEW grid_workers AS SELECT grid_code, user_id FROM grid_assignments "
               "WHERE valid_to IS NULL")

    op.execute("""
        CREATE TABLE sessions (
            id bigserial PRIMARY KEY,
            token_hash char(64) NOT NULL UNIQUE,
            user_id integer NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            kind varchar(8) NOT NULL CHECK (kind IN ('token', 'page')),
            created_at timestamptz NOT NULL DEFAULT now(),
            last_seen_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL,
            revoked_at timestamptz,
            address varchar(64),
            password_change_only boolean NOT NULL DEFAULT false
        )""")
    op.execute("CREATE INDEX ix_sessions_user ON sessions (user_id) WHERE revoked_at IS NULL")

    op.execute("""
        CREATE TABLE login_failures (
            username varchar(64) PRIMARY KEY,
            failures integer NOT NULL DEFAULT 0,
            last_failed_at timestamptz NOT NULL DEFAULT now(),
            locked_until timestamptz
        )""")

    op.execute("""
        CREATE TABLE audit_log (
            id bigserial PRIMARY KEY,
            at timestamptz NOT NULL DEFAULT clock_timestamp(),
            username varchar(64),
            action varchar(40) NOT NULL,
            target text,
            address varchar(64),
            outcome varchar(16) NOT NULL DEFAULT 'ok',
            detail jsonb NOT NULL DEFAULT '{}'
        )""")
    op.execute("CREATE INDEX ix_audit_at ON audit_log (at)")
    op.execute("CREATE INDEX ix_audit_user_at ON audit_log (username, at)")
    op.execute("CREATE INDEX ix_audit_action_at ON audit_log (action, at)")
    op.execute(f"""
        CREATE FUNCTION gridmap_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' AND OLD.at < now() - interval '{RETENTION_DAYS} days' THEN
                RETURN OLD;
            END IF;
            RAISE EXCEPTION 'audit_log is append-only: % refused (rows are kept {RETENTION_DAYS} days)',
                TG_OP USING ERRCODE = 'insufficient_privilege';
        END $$""")
    op.execute("""CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
                  FOR EACH ROW EXECUTE FUNCTION gridmap_audit_append_only()""")
    op.execute("""CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
                  FOR EACH STATEMENT EXECUTE FUNCTION gridmap_audit_append_only()""")


def downgrade() -> None:
    op.execute("DROP TABLE audit_log")
    op.execute("DROP FUNCTION gridmap_audit_append_only()")
    op.execute("DROP TABLE login_failures")
    op.execute("DROP TABLE sessions")
    op.execute("DROP VIEW grid_workers")
    op.execute("CREATE TABLE grid_workers (grid_code varchar(15) NOT NULL, user_id integer NOT NULL "
               "REFERENCES users(id) ON DELETE CASCADE, PRIMARY KEY (grid_code, user_id))")
    op.execute("INSERT INTO grid_workers SELECT DISTINCT grid_code, user_id FROM grid_assignments "
               "WHERE valid_to IS NULL")
    op.execute("DROP TABLE grid_assignments")
    op.execute("ALTER TABLE issues DROP COLUMN department_id")
    op.execute("""ALTER TABLE users DROP CONSTRAINT users_role_known,
                  ADD CONSTRAINT role_valid CHECK (role IN ('worker', 'leader', 'admin')),
                  DROP COLUMN created_at,
                  DROP COLUMN sessions_valid_after, DROP COLUMN password_changed_at,
                  DROP COLUMN must_change_password, DROP COLUMN department_id,
                  DROP COLUMN region_id""")
    op.execute("DROP TABLE departments")
