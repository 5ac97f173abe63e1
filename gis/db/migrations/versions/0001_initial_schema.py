"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21 16:24:23.157185
"""

import geoalchemy2  # noqa: F401
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "categories",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name_zh", sa.String(length=64), nullable=False),
        sa.Column("name_en", sa.String(length=64), nullable=False),
        sa.Column("std_code", sa.String(length=16), nullable=False),
        sa.Column("icon", sa.String(length=32), nullable=False),
        sa.Column("colour", sa.String(length=16), nullable=False),
        sa.Column("due_hours", sa.Integer(), nullable=True),
        sa.Column(
            "facility_categories",
            sa.ARRAY(sa.String(length=32)),
            server_default="{}",
            nullable=False,
        ),
        sa.CheckConstraint("kind IN ('facility', 'issue')", name="kind_valid"),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_geospatial_table(
        "compounds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("has_property_company", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("built_year", sa.Integer(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.CheckConstraint("kind IN ('compound', 'estate')", name="kind_valid"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_geospatial_index(
        "idx_compounds_geom",
        "compounds",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_table(
        "grid_index_state",
        sa.Column("id", sa.Integer(), server_default="1", nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="0", nullable=False),
        sa.CheckConstraint("id = 1", name="grid_index_state_single_row"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_geospatial_table(
        "regions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.CheckConstraint("level IN ('district', 'street', 'community')", name="level_valid"),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["regions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_geospatial_index(
        "idx_regions_geom",
        "regions",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_geospatial_table(
        "streets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="LINESTRING",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_geospatial_index(
        "idx_streets_geom",
        "streets",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.CheckConstraint("role IN ('worker', 'leader', 'admin')", name="role_valid"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "grid_workers",
        sa.Column("grid_code", sa.String(length=15), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("grid_code", "user_id"),
    )
    op.create_geospatial_table(
        "grids",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=15), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("households", sa.Integer(), server_default="0", nullable=False),
        sa.Column("population", sa.Integer(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "valid_from",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["regions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code", "version", name="grids_code_version_key"),
    )
    op.create_index(
        "grids_current_code_key",
        "grids",
        ["code"],
        unique=True,
        postgresql_where="valid_to IS NULL",
    )
    op.create_geospatial_index(
        "idx_grids_geom",
        "grids",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_geospatial_table(
        "buildings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("compound_id", sa.Integer(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("floors", sa.Integer(), nullable=True),
        sa.Column("households", sa.Integer(), server_default="0", nullable=False),
        sa.Column("party_households", sa.Integer(), server_default="0", nullable=False),
        sa.Column("grid_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["compound_id"],
            ["compounds.id"],
        ),
        sa.ForeignKeyConstraint(
            ["grid_id"],
            ["grids.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_geospatial_index(
        "idx_buildings_geom",
        "buildings",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_geospatial_table(
        "facilities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=True),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="ok", nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("grid_id", sa.Integer(), nullable=True),
        sa.Column("assignment", sa.String(length=16), server_default="unassigned", nullable=False),
        sa.Column("install_date", sa.Date(), nullable=True),
        sa.Column("owner", sa.String(length=100), nullable=True),
        sa.Column("maintainer", sa.String(length=100), nullable=True),
        sa.Column(
            "props", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "assignment IN ('inside', 'boundary', 'nearest', 'unassigned')", name="assignment_valid"
        ),
        sa.CheckConstraint(
            "status IN ('ok', 'damaged', 'missing', 'repairing')", name="status_valid"
        ),
        sa.ForeignKeyConstraint(
            ["category"],
            ["categories.code"],
        ),
        sa.ForeignKeyConstraint(
            ["grid_id"],
            ["grids.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_geospatial_index(
        "idx_facilities_geom",
        "facilities",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_geospatial_table(
        "issues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "client_uuid", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False
        ),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("channel", sa.String(length=32), server_default="app", nullable=False),
        sa.Column("reporter_contact", sa.String(length=200), nullable=True),
        sa.Column(
            "photo_urls",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("source_crs", sa.String(length=32), server_default="wgs84", nullable=False),
        sa.Column("source_x", sa.Float(), nullable=True),
        sa.Column("source_y", sa.Float(), nullable=True),
        sa.Column("grid_id", sa.Integer(), nullable=True),
        sa.Column("grid_version", sa.Integer(), nullable=True),
        sa.Column("assignment", sa.String(length=16), server_default="unassigned", nullable=False),
        sa.Column("assignment_distance_m", sa.Float(), nullable=True),
        sa.Column("facility_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="reported", nullable=False),
        sa.Column("priority", sa.Integer(), server_default="3", nullable=False),
        sa.Column(
            "reported_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "assignment IN ('inside', 'boundary', 'nearest', 'unassigned')", name="assignment_valid"
        ),
        sa.CheckConstraint(
            "status IN ('reported', 'accepted', 'dispatched', 'in_progress', 'resolved', 'closed', 'rejected', 'reopened')",
            name="status_valid",
        ),
        sa.ForeignKeyConstraint(
            ["category"],
            ["categories.code"],
        ),
        sa.ForeignKeyConstraint(
            ["facility_id"],
            ["facilities.id"],
        ),
        sa.ForeignKeyConstraint(
            ["grid_id"],
            ["grids.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_uuid"),
    )
    op.create_geospatial_index(
        "idx_issues_geom",
        "issues",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index("issues_grid_status_idx", "issues", ["grid_id", "status"], unique=False)
    op.create_index("issues_reported_at_idx", "issues", ["reported_at"], unique=False)
    op.create_table(
        "issue_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(["issue_id"], ["issues.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_issue_events_issue_id"), "issue_events", ["issue_id"], unique=False)

    # Every change to grids bumps one counter, so each API process can tell its in-memory grid
    # index is stale with one cheap query (and no rebuild per request).
    op.execute("INSERT INTO grid_index_state (id, version) VALUES (1, 0)")
    op.execute("""
        CREATE FUNCTION gridmap_bump_grid_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE grid_index_state SET version = version + 1 WHERE id = 1;
            PERFORM pg_notify('gridmap_grids', '');
            RETURN NULL;
        END $$
    """)
    op.execute("""
        CREATE TRIGGER grids_bump_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON grids
        FOR EACH STATEMENT EXECUTE FUNCTION gridmap_bump_grid_version()
    """)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS grids_bump_version ON grids")
    op.execute("DROP FUNCTION IF EXISTS gridmap_bump_grid_version()")
    op.drop_index(op.f("ix_issue_events_issue_id"), table_name="issue_events")
    op.drop_table("issue_events")
    op.drop_index("issues_reported_at_idx", table_name="issues")
    op.drop_index("issues_grid_status_idx", table_name="issues")
    op.drop_geospatial_index(
        "idx_issues_geom", table_name="issues", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("issues")
    op.drop_geospatial_index(
        "idx_facilities_geom", table_name="facilities", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("facilities")
    op.drop_geospatial_index(
        "idx_buildings_geom", table_name="buildings", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("buildings")
    op.drop_geospatial_index(
        "idx_grids_geom", table_name="grids", postgresql_using="gist", column_name="geom"
    )
    op.drop_index("grids_current_code_key", table_name="grids", postgresql_where="valid_to IS NULL")
    op.drop_geospatial_table("grids")
    op.drop_table("grid_workers")
    op.drop_table("users")
    op.drop_geospatial_index(
        "idx_streets_geom", table_name="streets", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("streets")
    op.drop_geospatial_index(
        "idx_regions_geom", table_name="regions", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("regions")
    op.drop_table("grid_index_state")
    op.drop_geospatial_index(
        "idx_compounds_geom", table_name="compounds", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("compounds")
    op.drop_table("categories")
