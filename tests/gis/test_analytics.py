"""Aggregation for the maps: filters, cells whose weights add up, Gi* hotspots, map rows
without personal data, and the data version that keys the page cache."""

from datetime import date, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import box
from sqlalchemy import text

from gis.errors import InvalidParameter, NotFound, UnknownCategory
from gis.queries import concurrent, map_data
from gis.queries.filters import IssueFilter
from gis.queries.map_data import add_hotspots, coarsen_to_budget, pick_cell_size
from gis.rules import FINAL_STATUSES, OPEN_STATUSES


# -- no database --------------------------------------------------------------------------------
def test_filter_expands_status_groups_and_checks_values():
    f = IssueFilter(statuses=("open",))
    assert set(f.statuses) == set(OPEN_STATUSES)
    assert set(IssueFilter(statuses=("final",)).statuses) == set(FINAL_STATUSES)
    assert IssueFilter(statuses=("closed",)).statuses == ("closed",)  # a status, not a group
    assert IssueFilter(categories=("b", "a")).key() == IssueFilter(categories=("a", "b")).key()
    with pytest.raises(InvalidParameter, match="unknown status"):
        IssueFilter(statuses=("lost",))
    # since after until is an invalid parameter (422 invalid_parameter), not an unknown category
    with pytest.raises(InvalidParameter, match="after"):
        IssueFilter(since=date(2025, 5, 1), until=date(2025, 4, 1))
    # one day is a valid range: since and until are both inclusive
    day = IssueFilter(since=date(2025, 5, 1), until=date(2025, 5, 1))
    assert day.until_at() - day.since_at() == timedelta(days=1) - timedelta(microseconds=1)


def test_pick_cell_size_fits_the_budget():
    assert pick_cell_size(1e6, 100, 1000) == 10  # few points: the finest cells
    size = pick_cell_size(1e8, 10**6, 25_000)
    assert 1e8 / size**2 <= 25_000 < 1e8 / (size / 2) ** 2


def test_coarsening_keeps_every_weight_and_the_weighted_centre():
    rng = np.random.default_rng(1)
    n = 5000
    cells = pd.DataFrame({"cx": rng.integers(0, 200, n), "cy": rng.integers(0, 200, n),
                          "weight": rng.integers(1, 9, n)})
    cells = cells.groupby(["cx", "cy"], as_index=False)["weight"].sum()
    cells["sx"] = (cells["cx"] + 0.5) * cells["weight"]
    cells["sy"] = (cells["cy"] + 0.5) * cells["weight"]
    out = coarsen_to_budget(cells, 10.0, budget=500)
    assert len(out) <= 500 and out.attrs["cell_m"] >= 80
    assert out["weight"].sum() == cells["weight"].sum()
    centre = (out["lon"] * out["weight"]).sum() / out["weight"].sum()
    assert centre == pytest.approx(cells["sx"].sum() / cells["weight"].sum())


def _lattice(n=7, hot=((2, 2), (2, 3), (3, 2), (3, 3))) -> gpd.GeoDataFrame:
    geoms, counts = [], []
    for r in range(n):
        for c in range(n):
            geoms.append(box(c * 0.001, r * 0.001, (c + 1) * 0.001, (r + 1) * 0.001))
            counts.append(60 if (r, c) in hot else 10 + (r * 7 + c) % 5)
    return gpd.GeoDataFrame({"issues": counts}, geometry=geoms, crs="EPSG:4326")


def test_gi_star_flags_the_hot_block_and_matches_esda():
    from esda.getisord import G_Local
    from libpysal.weights import Queen

    grids = _lattice()
    out = add_hotspots(grids, permutations=999)
    hot = set(np.flatnonzero(out["hotspot"].to_numpy()))
    block = {2 * 7 + 2, 2 * 7 + 3, 3 * 7 + 2, 3 * 7 + 3}
    assert block <= hot
    assert out.loc[list(block), "gi_p"].max() <= 0.05
    assert (out.loc[list(block), "gi_z"] > 2).all()
    far = out.loc[[0, 6, 42, 48]]
    assert not far["hotspot"].any()
    w = Queen.from_dataframe(grids, use_index=False)
    w.transform = "B"
    ref = G_Local(grids["issues"].to_numpy(float), w, star=True, permutations=0, transform="B")
    np.testing.assert_allclose(out["gi_z"], np.round(ref.Zs, 3), atol=1e-3)


def _pysal_queen(frame: gpd.GeoDataFrame) -> dict[int, set[int]]:
    from libpysal.weights import Queen

    w = Queen.from_dataframe(frame.reset_index(drop=True), use_index=False, silence_warnings=True)
    return {i: set(w.neighbors[i]) for i in range(len(frame))}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_queen_neighbours_match_pysal_on_a_voronoi_coverage(seed):
    rng = np.random.default_rng(seed)
    points = shapely.multipoints(rng.uniform(0, 0.01, (200, 2)))
    cells = shapely.get_parts(shapely.voronoi_polygons(points, extend_to=box(0, 0, 0.01, 0.01)))
    cells = shapely.intersection(cells, box(0, 0, 0.01, 0.01))
    ours = map_data.queen_neighbours(cells)
    assert {i: set(n) for i, n in ours.items()} == _pysal_queen(
        gpd.GeoDataFrame(geometry=cells, crs="EPSG:4326"))


def test_queen_neighbours_include_corners_and_leave_islands_alone():
    lattice = _lattice(n=3)
    island = gpd.GeoDataFrame({"issues": [1]}, geometry=[box(1, 1, 1.001, 1.001)], crs="EPSG:4326")
    frame = pd.concat([lattice, island], ignore_index=True)
    ours = map_data.queen_neighbours(frame.geometry.values)
    assert set(ours[4]) == {0, 1, 2, 3, 5, 6, 7, 8}  # the centre touches all eight
    assert set(ours[0]) == {1, 3, 4}  # a corner cell: two edges and one corner
    assert ours[9] == []
    assert {i: set(n) for i, n in ours.items()} == _pysal_queen(frame)


def test_gi_star_gives_no_verdict_on_too_few_or_flat_grids():
    two = _lattice(n=1).iloc[:1]
    assert not add_hotspots(two)["hotspot"].any()
    flat = _lattice(hot=()).assign(issues=5)
    out = add_hotspots(flat)
    assert not out["hotspot"].any() and out["gi_z"].isna().all()
    with pytest.raises(TypeError, match="GeoDataFrame"):
        add_hotspots(pd.DataFrame({"issues": [1, 2, 3]}))


# -- with the demo database ---------------------------------------------------------------------
def _count(session, where="TRUE", **params) -> int:
    return session.execute(text(
        f"SELECT count(*) FROM issues i LEFT JOIN grids g ON g.id = i.grid_id WHERE {where}"),
        params).scalar_one()


@pytest.mark.parametrize("flt, where, params", [
    (IssueFilter(), "TRUE", {}),
    (IssueFilter(categories=("garbage",)), "i.category = 'garbage'", {}),
    (IssueFilter(statuses=("open",)), "i.status NOT IN ('closed', 'rejected')", {}),
    (IssueFilter(community="太东社区", categories=("noise", "garbage")),
     "i.category IN ('noise', 'garbage') AND g.id IS NOT NULL", {}),
    (IssueFilter(grid="140429100001005"), "g.code = '140429100001005'", {}),
])
def test_every_aggregate_adds_up_to_the_filtered_issue_count(session, flt, where, params):
    _assert_adds_up(session, flt, where, params)


def test_a_month_adds_up_to_its_issue_count(session, demo_month):
    flt = IssueFilter(since=demo_month.first, until=demo_month.last)  # until: the whole day
    _assert_adds_up(session, flt, "i.reported_at >= :a AND i.reported_at < :b",
                    {"a": f"{demo_month.first} 00:00+08", "b": f"{demo_month.following} 00:00+08"})


def _assert_adds_up(session, flt: IssueFilter, where: str, params: dict) -> None:
    expected = _count(session, where, **params)
    data = map_data.heatmap_data(session, flt, hotspots=False)
    assert data.total == expected > 0
    assert data.cells["weight"].sum() == expected
    assert data.weeks["weight"].sum() == expected
    assert data.grids["issues"].sum() + data.unassigned == expected
    assert len(data.cells) <= map_data.HEAT_CELL_BUDGET
    assert data.cells["lat"].between(36.8, 36.9).all()
    assert data.cells["lon"].between(112.8, 112.95).all()


def test_small_budgets_coarsen_without_losing_issues(session):
    data = map_data.heatmap_data(session, IssueFilter(), cell_budget=50, week_budget=200,
                                  hotspots=False)
    assert len(data.cells) <= 50 and len(data.weeks) <= 200
    assert data.cells["weight"].sum() == data.total == data.weeks["weight"].sum()
    assert data.cell_m > map_data.MIN_CELL_M


def test_weeks_are_beijing_calendar_weeks(session):
    # Issues just either side of Monday 00:00 Beijing time (Sunday 16:00 UTC) land in
    # different weeks; the totals per week agree with PostgreSQL's own date_trunc.
    session.execute(text("""
        INSERT INTO issues (category, geom, reported_at) VALUES
          ('noise', ST_SetSRID(ST_MakePoint(112.861, 36.841), 4326), '2025-03-09 15:59:59+00'),
          ('noise', ST_SetSRID(ST_MakePoint(112.861, 36.841), 4326), '2025-03-09 16:00:00+00')"""))
    flt = IssueFilter(categories=("noise",))
    data = map_data.heatmap_data(session, flt, hotspots=False)
    ours = data.weeks.groupby("week")["weight"].sum().to_dict()
    expected = dict(session.execute(text("""
        SELECT to_char(date_trunc('week', reported_at AT TIME ZONE 'Asia/Shanghai'), 'YYYY-MM-DD'),
               count(*) FROM issues WHERE category = 'noise' GROUP BY 1""")).all())
    assert ours == expected
    assert ours["2025-03-03"] >= 1 and ours["2025-03-10"] >= 1
    assert all(date.fromisoformat(w).weekday() == 0 for w in ours)


def test_per_grid_counts_match_sql(session):
    data = map_data.heatmap_data(session, IssueFilter(), hotspots=False)
    rows = session.execute(text("""
        SELECT g.code, count(*),
               count(*) FILTER (WHERE i.status NOT IN ('closed', 'rejected')),
               count(*) FILTER (WHERE i.status NOT IN ('closed', 'rejected', 'on_hold')
                                  AND i.due_at < now()),
               count(*) FILTER (WHERE i.status = 'closed'),
               count(*) FILTER (WHERE i.status = 'closed' AND i.closed_at <= i.due_at)
          FROM issues i JOIN grids g ON g.id = i.grid_id GROUP BY g.code""")).all()
    expected = {r[0]: tuple(r[1:]) for r in rows}
    ours = {r.code: (r.issues, r.open, r.overdue, r.closed, r.on_time)
            for r in data.grids.itertuples() if r.issues}
    assert ours == expected


def _pid(s):
    return s.execute(text("SELECT pg_backend_pid()")).scalar_one()


def test_side_by_side_runs_the_second_scan_on_another_connection(session):
    here, there = concurrent.side_by_side(session, _pid, _pid)
    assert here == _pid(session) and there != here


def test_side_by_side_stays_on_a_session_that_has_written(session):
    # Another connection could not see this uncommitted row, so both scans stay here.
    session.execute(text("INSERT INTO issues (category, geom) VALUES "
                         "('noise', ST_SetSRID(ST_MakePoint(112.861, 36.841), 4326))"))
    here, there = concurrent.side_by_side(session, _pid, _pid)
    assert here == there == _pid(session)


def test_side_by_side_runs_in_turn_when_every_slot_is_taken(session):
    taken = [concurrent._side_slots.acquire(blocking=False) for _ in range(concurrent.SIDE_SCANS)]
    try:
        assert all(taken)
        here, there = concurrent.side_by_side(session, _pid, _pid)
        assert here == there
    finally:
        for _ in taken:
            concurrent._side_slots.release()


def test_both_ways_of_scanning_give_the_same_aggregates(session, monkeypatch):
    flt = IssueFilter(statuses=("closed",))
    apart = map_data.heatmap_data(session, flt, hotspots=False)
    monkeypatch.setattr(concurrent, "_has_written", lambda s: True)  # force one connection
    together = map_data.heatmap_data(session, flt, hotspots=False)
    pd.testing.assert_frame_equal(apart.cells, together.cells)
    pd.testing.assert_frame_equal(apart.weeks, together.weeks)


def test_per_grid_statistics_and_hotspot_columns(session):
    data = map_data.heatmap_data(session, IssueFilter())
    g = data.grids
    assert len(g) == 14 and {"gi_z", "gi_p", "hotspot", "per_1000"} <= set(g.columns)
    row = g.iloc[0]
    assert row["per_1000"] == pytest.approx(row["issues"] * 1000 / row["households"], abs=0.05)
    assert g["gi_p"].between(0, 1).all()


def test_unknown_category_and_grid(session):
    with pytest.raises(UnknownCategory, match="nonsense"):
        map_data.heatmap_data(session, IssueFilter(categories=("nonsense",)))
    with pytest.raises(NotFound):
        map_data.heatmap_data(session, IssueFilter(grid="999999999999999"))
    with pytest.raises(NotFound):
        map_data.grid_map_data(session, "999999999999999")


def test_grid_map_rows_carry_no_personal_data(session):
    code = "140429100001005"
    data = map_data.grid_map_data(session, code)
    assert len(data.grid) == 1 and data.grid["code"].iloc[0] == code
    assert 2 <= len(data.neighbours) <= 8 and code not in set(data.neighbours["code"])
    assert len(data.buildings) > 0 and len(data.facilities) > 0
    assert set(data.issues.columns) == {*map_data.ISSUE_MAP_COLUMNS, "geometry"}
    assert "reporter_contact" not in data.issues.columns
    expected = _count(session, "g.code = :c AND i.status NOT IN ('closed', 'rejected')", c=code)
    assert len(data.issues) == expected


def test_overview_counts_open_issues_per_grid(session):
    data = map_data.overview_data(session)
    assert len(data.grids) == 14 and len(data.communities) == 1
    assert data.grids["open"].sum() == _count(
        session, "g.id IS NOT NULL AND i.status NOT IN ('closed', 'rejected')")
    assert data.grids["worker"].notna().all()


def test_data_version_changes_when_an_issue_is_added(session):
    before = map_data.data_version(session)
    assert map_data.data_version(session) == before
    session.execute(text("""INSERT INTO issues (category, geom, status)
        VALUES ('garbage', ST_SetSRID(ST_MakePoint(112.86, 36.84), 4326), 'reported')"""))
    assert map_data.data_version(session) != before


def _edits(session) -> int:
    return session.execute(text("SELECT version FROM issue_edit_state")).scalar_one()


@pytest.mark.parametrize("change", [
    "DELETE FROM issues WHERE id = (SELECT min(id) FROM issues)",
    "UPDATE issues SET description = description || '（更正）' WHERE id = (SELECT min(id) FROM issues)",
    "UPDATE issues SET grid_id = NULL WHERE id = (SELECT min(id) FROM issues)",
])
def test_data_version_changes_when_issues_are_deleted_or_edited(session, change):
    before, edits = map_data.data_version(session), _edits(session)
    session.execute(text(change))
    assert _edits(session) == edits + 1
    assert map_data.data_version(session) != before


def test_workflow_updates_leave_the_edit_counter_alone(session):
    # Status changes are seen through their issue_events rows; the counter's single row is
    # never locked by reporting or by the workflow.
    edits = _edits(session)
    session.execute(text("UPDATE issues SET status = 'accepted', updated_at = now() "
                         "WHERE id = (SELECT min(id) FROM issues WHERE status = 'reported')"))
    session.execute(text("INSERT INTO issues (category, geom) VALUES "
                         "('noise', ST_SetSRID(ST_MakePoint(112.861, 36.841), 4326))"))
    assert _edits(session) == edits
