"""photos of cases, and reports that take their location from a photo

- ``issue_photos``: the photos uploaded for a case (``kind``: as reported, before or after a
  fix), each re-encoded without metadata and kept in the media store under the SHA-256 of its
  bytes (``content_key``, and ``thumbnail_key`` for its thumbnail), with its size, when it was
  taken and who uploaded it. An upload's idempotency key is unique per case, so a retried upload
  never stores a second copy. ``issues.photo_urls`` (links sent by other systems) stays.
- ``issues.geom`` may be empty for a report sent without coordinates that takes its location
  from its first photo's GPS (``location_source = 'photo'``); every other case has a location.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:00:00
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# History: the rules at the time of this migration (gis.rules.PHOTO_KINDS, LOCATION_SOURCES).
PHOTO_KINDS = ("report", "before", "after")
LOCATION_SOURCES = ("report", "photo")


def _listed(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def upgrade() -> None:
    op.execute(f"""
        ALTER TABLE issues
            ALTER COLUMN geom DROP NOT NULL,
            ADD COLUMN location_source varchar(16) NOT NULL DEFAULT 'report',
            ADD CONSTRAINT location_source_valid
                CHECK (location_source IN ({_listed(LOCATION_SOURCES)})),
            ADD CONSTRAINT issues_located_or_waiting_for_photo
                CHECK (geom IS NOT NULL OR location_source = 'photo')""")
    op.execute(f"""
        CREATE TABLE issue_photos (
            id serial PRIMARY KEY,
            issue_id integer NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
            kind varchar(8) NOT NULL DEFAULT 'report'
                CONSTRAINT kind_valid CHECK (kind IN ({_listed(PHOTO_KINDS)})),
            content_key varchar(64) NOT NULL,
            thumbnail_key varchar(64) NOT NULL,
            width integer NOT NULL,
            height integer NOT NULL,
            bytes integer NOT NULL,
            taken_at timestamptz,
            uploaded_at timestamptz NOT NULL DEFAULT now(),
            uploaded_by integer REFERENCES users(id),
            idempotency_key varchar(255),
            CONSTRAINT issue_photos_issue_key UNIQUE (issue_id, idempotency_key)
        )""")
    op.execute("CREATE INDEX ix_issue_photos_issue ON issue_photos (issue_id, id)")


def downgrade() -> None:
    op.execute("DROP TABLE issue_photos")
    op.execute("""
        DO $$ BEGIN
            IF EXISTS (SELECT 1 FROM issues WHERE geom IS NULL) THEN
                RAISE EXCEPTION 'reports still wait for a location from a photo; give them one '
                                'or remove them before downgrading';
            END IF;
        END $$""")
    op.execute("""
        ALTER TABLE issues
            DROP CONSTRAINT issues_located_or_waiting_for_photo,
            DROP CONSTRAINT location_source_valid,
            DROP COLUMN location_source,
            ALTER COLUMN geom SET NOT NULL""")
