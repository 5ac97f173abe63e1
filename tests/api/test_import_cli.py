"""`gridmap import grids` re-tags only what the imported grids can move (a strip of one grid
given to its neighbour by file), and leaves nothing a full re-tag would still change. Run as the
command runs (``api.cli.main``) on a scratch database with a demo of its own."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import text

from api.cli import main as gridmap
from gis.geotag import assign
from tests.conftest import scratch_database

SCRATCH_DB = "gridmap_import_cli"


@pytest.fixture(scope="module")
def scratch(engine, database_url):
    with scratch_database(engine, database_url, SCRATCH_DB) as (url, db), \
            pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATABASE_URL", url)
        assert gridmap(["demo", "--issues", "300", "--today", "2024-05-31"]) == 0
        yield url, db


def _neighbours(db) -> gpd.GeoDataFrame:
    """Two current grids of one community sharing an edge, as a file would hold them."""
    with db.connect() as conn:
        a, b = conn.execute(text("""
            SELECT a.code, b.code FROM grids a JOIN grids b ON a.community_id = b.community_id
               AND a.code < b.code AND ST_Relate(a.geom, b.geom, '****1****')
             WHERE a.valid_to IS NULL AND b.valid_to IS NULL ORDER BY a.code, b.code LIMIT 1""")).one()
        return gpd.read_postgis(text(
            "SELECT g.code, g.name, c.name AS community, g.geom FROM grids g "
            "JOIN regions c ON c.id = g.community_id WHERE g.valid_to IS NULL "
            "AND g.code IN (:a, :b) ORDER BY g.code"), conn, params={"a": a, "b": b},
            geom_col="geom")


def _tags(db, code: str) -> set[tuple[str, int]]:
    with db.connect() as conn:
        return set(conn.execute(text("""
            SELECT 'f', f.id FROM facilities f JOIN grids g ON g.id = f.grid_id WHERE g.code = :c
            UNION ALL SELECT 'i', i.id FROM issues i JOIN grids g ON g.id = i.grid_id
             WHERE g.code = :c"""), {"c": code}).all())


def test_a_redrawn_pair_by_file_moves_the_strips_rows_and_nothing_else_is_left(
        scratch, monkeypatch, tmp_path, capsys):
    url, db = scratch
    monkeypatch.setenv("DATABASE_URL", url)
    pair = _neighbours(db)
    a, b = pair.geometry.iloc[0], pair.geometry.iloc[1]
    # 60 m of A along the shared edge goes to B (degrees at this latitude, roughly).
    strip = shapely.intersection(a, shapely.buffer(b, 60 / 111_000 * 1.25))
    before_a, before_b = _tags(db, pair.code.iloc[0]), _tags(db, pair.code.iloc[1])
    pair = pair.set_geometry([shapely.difference(a, strip), shapely.union(b, strip)])
    path = tmp_path / "redrawn.geojson"
    pair.rename_geometry("geometry").to_file(path, driver="GeoJSON")

    def whole_city(*args, **kwargs):  # the import must not fall back to re-tagging everything
        raise AssertionError("gridmap import grids re-tagged every row")

    monkeypatch.setattr(assign, "assign_stored_rows", whole_city)
    capsys.readouterr()
    assert gridmap(["import", "grids", str(path)]) == 0
    out = capsys.readouterr().out
    assert "re-tagged near the imported grids" in out
    monkeypatch.undo()

    after_a, after_b = _tags(db, pair.code.iloc[0]), _tags(db, pair.code.iloc[1])
    moved = before_a - after_a
    assert moved, "the strip held no facility or case: pick a wider strip"
    assert moved <= after_b and before_b <= after_b
    # Everything a full re-tag (the old way) would still change was changed already.
    report = assign.assign_stored_rows(db, include_closed=True, record_events=False)
    assert {t: r.changed for t, r in report.tables.items()} == \
        {t: 0 for t in report.tables}


@pytest.mark.parametrize("lang, expected", [
    ("zh_CN.UTF-8", ("类别无法识别", "；未导入任何数据")),
    ("C.UTF-8", ("name an unknown category", "; nothing was imported")),
])
def test_a_failed_import_says_why_in_the_terminals_language(scratch, monkeypatch, tmp_path,
                                                              capsys, lang, expected):
    monkeypatch.setenv("DATABASE_URL", scratch[0])
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", lang)
    path = tmp_path / "lamps.csv"
    path.write_text("category,name,wkt\nlamp_post,东门,POINT (112.87 36.84)\n", encoding="utf-8")
    capsys.readouterr()
    assert gridmap(["import", "facilities", str(path)]) == 1
    err = capsys.readouterr().err
    assert all(part in err for part in expected), err


@pytest.mark.parametrize("environ, lang", [
    ({}, "en"), ({"LANG": "zh_CN.UTF-8"}, "zh"), ({"LANG": "zh_TW"}, "zh"),
    ({"LANG": "zh_CN.UTF-8", "LC_ALL": "C"}, "en"), ({"LANG": "C", "LC_MESSAGES": "zh_CN"}, "zh"),
    ({"LC_ALL": "", "LANG": "zh_CN.UTF-8"}, "zh"), ({"LANG": "en_GB.UTF-8"}, "en"),
])
def test_the_terminals_language_follows_the_posix_order(environ, lang):
    from api.i18n import terminal_language

    assert terminal_language(environ) == lang
