"""The Alembic migrations against the real PostGIS: tables, GiST indexes, trigger, round trip."""

from sqlalchemy import inspect, text

from gis.db import current_revision, upgrade
from gis.models import Base

GEOMETRY_TABLES = {"regions", "grids", "streets", "compounds", "buildings", "facilities", "issues"}


def test_migrations_create_every_table_of_the_models(engine):
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert current_revision(engine) == "0001"


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


def test_downgrade_then_upgrade_round_trips(database_url, engine):
    from alembic import command

    from gis.db import alembic_config

    # Run on a scratch schema so the shared test database keeps its data.
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS scratch CASCADE; CREATE SCHEMA scratch"))
    url = database_url + ("&" if "?" in database_url else "?") + "options=-csearch_path%3Dscratch,public"
    upgrade(url)
    command.downgrade(alembic_config(url), "base")
    with engine.connect() as conn:
        left = conn.execute(text(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'scratch' "
            "AND table_name <> 'alembic_version'")).scalar_one()
    assert left == 0
    upgrade(url)
    with engine.begin() as conn:
        n = conn.execute(text(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'scratch'")).scalar_one()
        conn.execute(text("DROP SCHEMA scratch CASCADE"))
    assert n == len(Base.metadata.tables) + 1


def test_categories_are_seeded_once_with_both_languages(session):
    from gis.categories import ALL_CATEGORIES
    from gis.loading import seed_categories

    assert seed_categories(session) == 0  # already there: a second seed adds nothing
    rows = session.execute(text("SELECT code, kind, name_zh, name_en FROM categories")).all()
    assert {r.code for r in rows} == {c.code for c in ALL_CATEGORIES}
    zh = {r.name_zh for r in rows}
    assert {"凉亭", "路灯", "雨水井盖", "污水井盖", "下水道堵塞", "私搭乱建", "供暖故障"} <= zh
