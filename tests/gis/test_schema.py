"""The Alembic migrations against the real PostGIS: tables, GiST indexes, trigger, round trip."""

import re

import pytest
from sqlalchemy import inspect, text

from gis.db.engine import current_revision, upgrade
from gis.db.models import Base
from gis.geo.grid_index import METHODS
from gis.rules import (
    FACILITY_CHECK_RESULTS,
    FACILITY_STATUSES,
    ISSUE_STATUSES,
    LIMIT_UNITS,
    LOCATION_SOURCES,
    PHOTO_KINDS,
    STEPS,
    URGENCIES,
)

GEOMETRY_TABLES = {"regions", "grids", "streets", "compounds", "buildings", "facilities", "issues"}


def test_migrations_create_every_table_of_the_models(engine):
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert current_revision(engine) == "0019"  # the head: 0019 versions what processes keep in memory


def test_issue_lon_lat_follow_the_geometry(session):
    row = session.execute(text("""
        INSERT INTO issues (category, geom) VALUES
            ('garbage', ST_SetSRID(ST_MakePoint(112.861234567, 36.841234567), 4326))
        RETURNING id, lon, lat""")).one()
    assert (row.lon, row.lat) == (112.861234567, 36.841234567)
    session.execute(text("UPDATE issues SET geom = ST_SetSRID(ST_MakePoint(112.87, 36.85), 4326) "
                         "WHERE id = :i"), {"i": row.id})
    moved = session.execute(text("SELECT lon, lat FROM issues WHERE id = :i"), {"i": row.id}).one()
    assert tuple(moved) == (112.87, 36.85)
    mismatched = session.execute(text(
        "SELECT count(*) FROM issues WHERE lon IS DISTINCT FROM ST_X(geom) "
        "OR lat IS DISTINCT FROM ST_Y(geom)")).scalar_one()
    assert mismatched == 0


def test_every_geometry_column_has_a_gist_index_and_srid_4326(engine):
    with engine.connect() as conn:
        cols = conn.execute(text(
            "SELECT f_table_name, srid FROM geometry_columns WHERE f_table_schema = 'public'"
        )).all()
        gist = {r[0] for r in conn.execute(text(
            "SELECT tablename FROM pg_indexes WHERE indexdef ILIKE '%USING gist (geom)%'"))}
    assert {c[0] for c in cols} == GEOMETRY_TABLES
    assert {c[1] for c in cols} == {4326}
    assert gist == GEOMETRY_TABLES


def test_changing_grids_bumps_the_index_version(session):
    before = session.execute(text("SELECT version FROM grid_index_state")).scalar_one()
    session.execute(text("UPDATE grids SET name = name WHERE code = (SELECT min(code) FROM grids)"))
    after = session.execute(text("SELECT version FROM grid_index_state")).scalar_one()
    assert after == before + 1


@pytest.mark.parametrize(("name", "change"), [
    ("rules", "UPDATE categories SET name_zh = name_zh WHERE code = 'garbage'"),
    ("rules", "UPDATE time_limits SET value = value WHERE category = 'garbage'"),
    ("rules", "INSERT INTO calendar_overrides (day, working, note) VALUES ('2031-01-01', false, 't')"),
    ("rules", "DELETE FROM calendar_overrides WHERE day = '2031-01-01'"),
    ("people", "UPDATE users SET display_name = display_name WHERE username = 'nobody'"),
    ("people", "UPDATE grid_assignments SET valid_to = valid_to WHERE false"),
    ("people", "UPDATE regions SET name = name WHERE false"),
    ("people", "UPDATE grids SET name = name WHERE false"),
])
def test_changing_what_processes_keep_bumps_its_version(session, name, change):
    """What the intake keeps in memory (the rules reports are stored under, the callers of
    tokens) is current while its counter stands (gis.issues.reporting, gis.people.sessions):
    every statement on the tables it is read from bumps it, even one that changes no row, and
    leaves the other counter alone."""
    def versions():
        return dict(session.execute(text("SELECT name, version FROM versions")).all())

    before = versions()
    session.execute(text(change))
    after = versions()
    assert after == before | {name: before[name] + 1}


def test_downgrade_then_upgrade_round_trips(database_url, engine):
    """Run on a scratch database so the shared test database keeps its data."""
    from alembic import command
    from sqlalchemy.engine import make_url

    from gis.db.engine import alembic_config, make_engine

    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("DROP DATABASE IF EXISTS gridmap_scratch"))
        conn.execute(text("CREATE DATABASE gridmap_scratch"))
    url = make_url(database_url).set(database="gridmap_scratch").render_as_string(hide_password=False)
    scratch = make_engine(url, pool_size=1)
    try:
        with scratch.begin() as conn:
            conn.execute(text("CREATE EXTENSION postgis"))
        upgrade(url)
        command.downgrade(alembic_config(url), "base")
        assert set(inspect(scratch).get_table_names()) - {"spatial_ref_sys"} == {"alembic_version"}
        upgrade(url)
        assert set(Base.metadata.tables) <= set(inspect(scratch).get_table_names())
    finally:
        scratch.dispose()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("DROP DATABASE IF EXISTS gridmap_scratch"))


def test_categories_are_seeded_once_with_both_languages(session):
    from gis.db.category_seeds import ALL_CATEGORIES
    from gis.exchange.demo_loading import seed_categories

    assert seed_categories(session) == 0  # already there: a second seed adds nothing
    rows = session.execute(text("SELECT code, kind, name_zh, name_en FROM categories")).all()
    assert {r.code for r in rows} == {c.code for c in ALL_CATEGORIES}
    zh = {r.name_zh for r in rows}
    assert {"凉亭", "路灯", "雨水井盖", "污水井盖", "下水道堵塞", "私搭乱建", "供暖故障",
            "部件损坏/缺失"} <= zh


def _allowed_values(engine, table: str, constraint: str) -> set[str]:
    """The values a CHECK (column IN (...)) constraint of the migrated database admits."""
    definition = inspect(engine).get_check_constraints(table)
    sql = next(c["sqltext"] for c in definition if c["name"] == constraint)
    return set(re.findall(r"'([a-z_]+)'", sql))


@pytest.mark.parametrize("table, constraint, values", [
    ("issues", "status_valid", ISSUE_STATUSES),
    ("facilities", "status_valid", FACILITY_STATUSES),
    ("issues", "assignment_valid", METHODS),
    ("facilities", "assignment_valid", METHODS),
    ("issues", "location_source_valid", LOCATION_SOURCES),
    ("issue_photos", "kind_valid", PHOTO_KINDS),
    ("facility_checks", "result_valid", FACILITY_CHECK_RESULTS),
    ("issues", "urgency_valid", URGENCIES),
    ("time_limits", "urgency_valid", URGENCIES),
    ("time_limits", "step_valid", STEPS),
    ("time_limits", "unit_valid", LIMIT_UNITS),
    ("issue_steps", "step_valid", STEPS),
])
def test_the_database_admits_exactly_the_vocabulary_of_the_domain(engine, table, constraint,
                                                                   values):
    """The migrations' CHECK constraints are history, written out; they must still say what
    gis.rules says (a new status needs a migration that changes the constraint)."""
    assert _allowed_values(engine, table, constraint) == set(values)


def test_only_a_report_waiting_for_its_photo_may_lack_a_location(session):
    from sqlalchemy.exc import IntegrityError

    waiting = session.execute(text(
        "INSERT INTO issues (category, location_source) VALUES ('garbage', 'photo') RETURNING id"))
    assert waiting.scalar_one() > 0
    with pytest.raises(IntegrityError, match="issues_located_or_waiting_for_photo"), \
            session.begin_nested():
        session.execute(text("INSERT INTO issues (category) VALUES ('garbage')"))


def test_the_migration_seeds_the_facility_category_as_the_seeds_say(session):
    """Migration 0007 writes the seed row of facility_damaged out as history; it must still be
    the row gis.db.category_seeds holds (and every facility category has an issue category)."""
    from gis.db.category_seeds import FACILITY_CATEGORIES, ISSUE_CATEGORIES
    from gis.rules import FACILITY_DAMAGED_CATEGORY

    seed = next(c for c in ISSUE_CATEGORIES if c.code == FACILITY_DAMAGED_CATEGORY)
    row = session.execute(text(
        "SELECT name_zh, name_en, std_code, icon, colour, facility_categories "
        "FROM categories WHERE code = :c"), {"c": FACILITY_DAMAGED_CATEGORY}).one()
    assert tuple(row) == (seed.name_zh, seed.name_en, seed.std_code, seed.icon, seed.colour,
                          list(seed.facility_categories))
    covered = {f for c in ISSUE_CATEGORIES for f in c.facility_categories}
    assert {c.code for c in FACILITY_CATEGORIES} <= covered


def test_a_photo_belongs_to_a_case_or_a_facility_check(session):
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError, match="issue_photos_of_a_case_or_check"), \
            session.begin_nested():
        session.execute(text("""INSERT INTO issue_photos (content_key, thumbnail_key, width, height,
                                                          bytes) VALUES ('a', 'b', 1, 1, 1)"""))


def test_the_migrations_limits_are_the_seeds_and_the_database_holds_them(session):
    """Migration 0008 writes the seeds' time limits out as history; they must still be those of
    gis.db.category_seeds for the categories it knew (one seeded later, greenery, comes with its
    limits through seed_categories, as `gridmap db upgrade` runs it), and the migrated, seeded
    database holds exactly the seeds'."""
    import importlib

    from gis.db.category_seeds import ISSUE_CATEGORIES

    m = importlib.import_module("gis.db.migrations.versions.0008_working_time")
    written = {(code, urgency, step, *limit)
               for code, handle in m.HANDLE.items()
               for urgency, h in zip(m.URGENCIES, handle, strict=True)
               for step, limit in (m.COMMON[urgency] | {"handle": h}).items()}
    seeds = {(c.code, s.urgency, s.step, s.value, s.unit) for c in ISSUE_CATEGORIES for s in c.limits}
    assert written == {row for row in seeds if row[0] in m.HANDLE}
    assert {c.code for c in ISSUE_CATEGORIES} - set(m.HANDLE) == {"greenery"}
    stored = set(session.execute(text(
        "SELECT category, urgency, step, value, unit FROM time_limits")).all())
    assert stored == seeds
    assert len(seeds) == len(ISSUE_CATEGORIES) * 2 * 4  # every step of every category, both urgencies
