"""gis/geotag/bulk.py: grid tagging on a dask LocalCluster agrees row for row with the in-process path."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import shapely
from sqlalchemy import text

from gis.geo.grid_index import METHODS, GridIndex
from gis.geotag.assign import assign_stored_rows
from gis.geotag.bulk import GridSpec, assign_points_dask, assign_stored_rows_dask, dask_client
from tests.conftest import scratch_database
from tests.gis.test_index import awkward_points


@pytest.fixture(scope="module")
def client():
    """Two worker processes, as `gridmap assign --dask` starts: pickling is exercised for real."""
    with dask_client(n_workers=2, processes=True) as c:
        yield c


@pytest.fixture(scope="module")
def city():
    """Grids of the city layout of the generator, and ~200,000 points where mistakes hide."""
    from data.generator import generate_demo

    grids = generate_demo(grids=600, issues=20_000, detail=False)
    geoms = grids.grids.geometry.values
    lon, lat = awkward_points(geoms, 60_000, seed=5)  # vertices, edges (+/- a hair), uniform
    issues = shapely.get_coordinates(grids.issues.geometry.values)
    far = np.column_stack([lon[:500] + 0.5, lat[:500] - 0.3])  # off the index's raster
    lon = np.concatenate([lon, issues[:, 0], far[:, 0]])
    lat = np.concatenate([lat, issues[:, 1], far[:, 1]])
    index = GridIndex.from_geodataframe(grids.grids, version=7)
    return index, lon, lat


def assert_same(got, expected) -> None:
    np.testing.assert_array_equal(got.position, expected.position)
    np.testing.assert_array_equal(got.method, expected.method)
    np.testing.assert_allclose(got.distance_m, expected.distance_m, rtol=0, atol=1e-9)
    assert (np.isnan(got.distance_m) == np.isnan(expected.distance_m)).all()


@pytest.mark.parametrize("spatial", [True, False], ids=["hilbert", "as-read"])
def test_dask_agrees_with_locate_many_row_for_row(client, city, spatial):
    index, lon, lat = city
    expected = index.locate_many(lon, lat)
    assert len(lon) > 200_000
    counts = np.bincount(expected.method, minlength=len(METHODS))
    assert (counts > 1000).all(), dict(zip(METHODS, counts.tolist(), strict=True))
    got = assign_points_dask(lon, lat, index, client=client, npartitions=7, spatial=spatial)
    assert_same(got, expected)


def test_geometries_and_keys_instead_of_an_index(client, city):
    index, lon, lat = city
    got = assign_points_dask(lon[:5000], lat[:5000], index.geometries, keys=index.keys,
                             client=client)
    assert_same(got, index.locate_many(lon[:5000], lat[:5000]))


def test_grid_spec_is_small_and_rebuilds_the_same_index(city):
    index, lon, lat = city
    spec = GridSpec.from_index(index)
    blob = pickle.dumps(spec)
    assert len(blob) < 2 * spec.nbytes
    again = pickle.loads(blob)
    assert again.token == spec.token and again.version == 7
    assert_same(again.build().locate_many(lon, lat), index.locate_many(lon, lat))
    assert again.index() is again.index()  # built once per process
    assert GridSpec.from_grids(index.geometries, index.keys, version=8).token != spec.token


def test_no_points_need_no_cluster(city):
    index, _, _ = city
    got = assign_points_dask([], [], index)  # no client, and none is started
    assert len(got) == 0 and got.position.dtype == np.int64


# ---- stored rows --------------------------------------------------------------------------------
# These tests commit (the CLI always does), so they get a database of their own in the test
# cluster, with the 14-grid demo loaded and tagged in-process: the shared demo stays untouched.

BULK_DB = "gridmap_test_bulk"


@pytest.fixture(scope="module")
def bulk_db(engine, database_url, demo_data):
    from gis.db.engine import session_scope
    from gis.exchange.demo_loading import load_demo

    with scratch_database(engine, database_url, BULK_DB, pool_size=2) as (url, bulk):
        with session_scope(bulk) as session:
            load_demo(session, demo_data, "not-a-real-hash")
        settled = assign_stored_rows(bulk, include_closed=True, record_events=False)
        yield url, bulk, settled


SNAPSHOT = {
    "issues": "SELECT id, grid_id, grid_version, assignment, assignment_distance_m FROM issues",
    "facilities": "SELECT id, grid_id, assignment FROM facilities",
}


def snapshot(conn) -> dict[str, list]:
    return {t: sorted(conn.execute(text(q)).all()) for t, q in SNAPSHOT.items()}


@pytest.mark.parametrize("spatial", [False, True], ids=["as-read", "hilbert"])
def test_stored_rows_on_dask_match_the_in_process_path(bulk_db, client, spatial):
    """Unset the grid of some rows, re-tag them on the cluster: every row is as the in-process
    path left it, and the report is the in-process report."""
    _, bulk, settled = bulk_db
    with bulk.connect() as conn:
        trans = conn.begin()
        try:
            before = snapshot(conn)
            broken = {
                "issues": conn.execute(text(
                    "UPDATE issues SET grid_id = NULL, assignment = 'unassigned' "
                    "WHERE id % 5 = 0 AND grid_id IS NOT NULL")).rowcount,
                "facilities": conn.execute(text(
                    "UPDATE facilities SET grid_id = NULL WHERE id % 3 = 0 "
                    "AND grid_id IS NOT NULL")).rowcount,
            }
            assert broken["issues"] > 500 and broken["facilities"] > 50
            events = conn.execute(text("SELECT count(*) FROM issue_events")).scalar_one()
            report = assign_stored_rows_dask(conn, include_closed=True, record_events=False,
                                             client=client, batch_size=700, spatial=spatial)
            assert snapshot(conn) == before
            assert conn.execute(text("SELECT count(*) FROM issue_events")).scalar_one() == events
            assert report.grid_version == settled.grid_version
            for table in ("issues", "facilities"):
                assert report.tables[table].scanned == settled.tables[table].scanned
                assert report.tables[table].methods == settled.tables[table].methods
                assert report.tables[table].changed == broken[table]
            again = assign_stored_rows_dask(conn, include_closed=True, client=client)
            assert [r.changed for r in again.tables.values()] == [0, 0, 0]
        finally:
            trans.rollback()


def test_cli_prints_the_same_report_with_dask(bulk_db, monkeypatch, capsys):
    from api.cli import main

    url, _, _ = bulk_db
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["assign", "--all"]) == 0
    in_process = capsys.readouterr().out
    assert main(["assign", "--all", "--dask"]) == 0
    on_dask = capsys.readouterr().out
    assert on_dask == in_process
    assert "issues: scanned" in on_dask and "changed grid 0" in on_dask


def test_hilbert_keys_are_those_of_dask_geopandas(city):
    """The spatial partitions are those of dask-geopandas' spatial_shuffle(by="hilbert")."""
    import dask_geopandas
    import geopandas

    from gis.geotag.bulk import hilbert_distance

    _, lon, lat = city
    lon, lat = lon[:20_000], lat[:20_000]
    bounds = (lon.min(), lat.min(), lon.max(), lat.max())
    frame = geopandas.GeoDataFrame(geometry=geopandas.points_from_xy(lon, lat), crs="EPSG:4326")
    expected = dask_geopandas.from_geopandas(frame, npartitions=3).hilbert_distance(
        total_bounds=bounds, level=16).compute(scheduler="sync").to_numpy()
    np.testing.assert_array_equal(hilbert_distance(lon, lat, bounds), expected)
