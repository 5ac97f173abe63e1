"""`gridmap assign --grids` and `--changed-since`: after a redraw, only the rows the changed grids
can move are read. The command commits, so it runs on a scratch database of the test cluster."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import text

from api.cli import main as gridmap
from gis.rules import BEIJING
from tests.conftest import commands_use, scratch_database

SCRATCH_DB = "gridmap_assign_cli"
A, B = "140429100001001", "140429100001002"
SQUARE = "SRID=4326;MULTIPOLYGON((({x0} 36.80, {x1} 36.80, {x1} 36.81, {x0} 36.81, {x0} 36.80)))"


@pytest.fixture(scope="module")
def scratch(engine, database_url):
    with scratch_database(engine, database_url, SCRATCH_DB) as found:
        yield found


@pytest.fixture
def two_grids(scratch, monkeypatch):
    """Grids A (112.80-112.81) and B (112.81-112.82) side by side, a facility in each, tagged;
    then A is redrawn to 112.80-112.805 and B to 112.805-112.82, so A's facility moves to B."""
    db = commands_use(scratch, monkeypatch)
    with db.begin() as conn:
        conn.execute(text("INSERT INTO categories (code, kind, name_zh, name_en, std_code, icon, colour) "
                          "VALUES ('bench', 'facility', '座椅', 'Bench', '9906', 'minus', '#cab2d6') "
                          "ON CONFLICT DO NOTHING"))
        region = conn.execute(text(
            "INSERT INTO regions (code, name, level, geom) VALUES ('140429100001', '社区', "
            "'community', ST_GeomFromEWKT(:g)) RETURNING id"),
            {"g": SQUARE.format(x0=112.80, x1=112.82)}).scalar_one()
        for code, x0, x1 in ((A, 112.80, 112.81), (B, 112.81, 112.82)):
            conn.execute(text("INSERT INTO grids (code, name, community_id, geom) VALUES "
                              "(:c, :c, :r, ST_GeomFromEWKT(:g))"),
                         {"c": code, "r": region, "g": SQUARE.format(x0=x0, x1=x1)})
        conn.execute(text("INSERT INTO facilities (category, geom) VALUES "
                          "('bench', 'SRID=4326;POINT(112.807 36.805)'), "
                          "('bench', 'SRID=4326;POINT(112.815 36.805)')"))
    assert gridmap(["assign"]) == 0
    start = datetime.now(BEIJING)
    with db.begin() as conn:
        conn.execute(text("UPDATE grids SET valid_to = now() WHERE valid_to IS NULL"))
        for code, x0, x1 in ((A, 112.80, 112.805), (B, 112.805, 112.82)):
            conn.execute(text("INSERT INTO grids (code, name, community_id, geom, version) "
                              "SELECT code, name, community_id, ST_GeomFromEWKT(:g), 2 FROM grids "
                              "WHERE code = :c"), {"c": code, "g": SQUARE.format(x0=x0, x1=x1)})
    yield db, start
    with db.begin() as conn:
        conn.execute(text("TRUNCATE facilities, grids, regions CASCADE"))


def tags(db) -> list:
    with db.connect() as conn:
        return conn.execute(text("SELECT g.code, g.version FROM facilities f JOIN grids g "
                                 "ON g.id = f.grid_id ORDER BY f.id")).all()


@pytest.mark.parametrize("how", ["grids", "changed-since"])
def test_assign_changed_moves_the_rows_of_the_redrawn_grids(two_grids, capsys, how):
    db, start = two_grids
    assert tags(db) == [(A, 1), (B, 1)]
    value = (f"{A},{B}" if how == "grids"
             else start.replace(tzinfo=None).isoformat())
    capsys.readouterr()
    assert gridmap(["assign", f"--{how}", value]) == 0
    out = capsys.readouterr().out
    assert "facilities: scanned 2, changed grid 1" in out
    assert tags(db) == [(B, 2), (B, 2)]


def test_assign_changed_refuses_the_full_re_tag_options(two_grids, capsys):
    assert gridmap(["assign", "--grids", A, "--community", "x"]) == 2
    assert "--grids and --changed-since" in capsys.readouterr().err
