"""The issue rollup at 1M issues: the heatmap's data read from the rollup against a scan of every
issue, in one run, and what the triggers cost a report.

    .venv/bin/python bench/rollup.py [--issues 1000000] [--grids 1000] [--database-url URL]
                                     [--repeats 3] [--inserts 2000]

Uses the database of bench/heatmap.py (``gridmap_bench_heatmap``, the same generator and load),
loading it when it does not hold ``--issues`` issues. Then:

* **rebuild**: :func:`gis.queries.rollup.rebuild` on the city's cell grid, its time and the rows
  of each table (the compression: issues per row);
* **heatmap**: ``map_data.heatmap_data`` (counts, cells, weekly cells, per-grid statistics; no
  hotspots, which cost the same either way) read from the rollup and by scanning, the
  unfiltered city view and a few filtered ones, best of ``--repeats``; the answers must be
  identical (else the run fails);
* **per-grid counts**: ``statistics.counts_by_grid`` both ways;
* **triggers**: ``--inserts`` single-row INSERTs (one statement each, as a report makes) and as
  many status moves, with the rollup triggers on and off, in transactions rolled back: the
  difference per row is what the rollup costs.

Prints the load average at the start and the end, a table, and the last line

    rollup: issues=<n> rows=<n> heatmap_rollup_s=<x> heatmap_scan_s=<x> speedup=<x> insert_us=<x>
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from datetime import timedelta

import pandas as pd
from heatmap import GRIDS, bench_database, load_case  # bench/, beside this script
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.db.engine import make_engine
from gis.queries import map_data, rollup, statistics
from gis.queries.filters import IssueFilter

ISSUES = 1_000_000


def loadavg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def best_of(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - started)
    return best, out


def ensure_loaded(engine, n_grids: int, n_issues: int) -> None:
    with engine.connect() as conn:
        have = conn.execute(text("SELECT count(*) FROM issues")).scalar_one()
    if have != n_issues:
        print(f"loading {n_issues:,} issues over {n_grids:,} grids ...", flush=True)
        print(f"   loaded in {load_case(engine, n_grids, n_issues):.0f}s", flush=True)


def heat_filters(engine) -> dict[str, IssueFilter]:
    with engine.connect() as conn:
        first, last = conn.execute(text(
            "SELECT min(reported_at), max(reported_at) FROM issues")).one()
        category = conn.execute(text(
            "SELECT category FROM issues GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")).scalar_one()
    half = first + (last - first) / 2
    return {
        "city, no filter": IssueFilter(),
        f"category {category}": IssueFilter(categories=(category,)),
        "open": IssueFilter(statuses=("open",)),
        "second half (edges scanned)": IssueFilter(since=half.date(), until=last.date()),
        "one month (scanned)": IssueFilter(since=(last - timedelta(days=40)).date(),
                                           until=(last - timedelta(days=10)).date()),
    }


def same(a: map_data.HeatmapData, b: map_data.HeatmapData) -> bool:
    try:
        pd.testing.assert_frame_equal(a.cells, b.cells, check_exact=True)
        pd.testing.assert_frame_equal(a.weeks, b.weeks, check_exact=True)
        pd.testing.assert_frame_equal(pd.DataFrame(a.grids.drop(columns="geometry")),
                                      pd.DataFrame(b.grids.drop(columns="geometry")),
                                      check_exact=True)
    except AssertionError:
        return False
    return (a.total, a.unassigned, a.cell_m, a.week_cell_m) == \
        (b.total, b.unassigned, b.cell_m, b.week_cell_m)


def heatmap(engine, flt: IssueFilter, use_rollup: bool) -> map_data.HeatmapData:
    with Session(engine) as session:
        return map_data.heatmap_data(session, flt, hotspots=False, use_rollup=use_rollup)


def both_in_one_transaction(engine, flt: IssueFilter) -> tuple[map_data.HeatmapData, ...]:
    """Both ways in one transaction: overdue is counted against now(), the transaction's start,
    so builds in two transactions may differ by the cases that fell due in between."""
    with Session(engine) as session:
        return tuple(map_data.heatmap_data(session, flt, hotspots=False, use_rollup=use)
                     for use in (True, False))


def counts(engine, use_rollup: bool) -> pd.DataFrame:
    with Session(engine) as session:
        return statistics.counts_by_grid(session, IssueFilter(), rollup=use_rollup)


def trigger_cost(engine, n: int) -> dict[str, float]:
    """µs per single-row INSERT and per status move, triggers on and off (rolled back)."""
    out = {}
    for triggers in ("on", "off"):
        with engine.connect() as conn:
            trans = conn.begin()
            if triggers == "off":
                conn.execute(text("ALTER TABLE issues DISABLE TRIGGER issues_rollup_counts_insert"))
                conn.execute(text("ALTER TABLE issues DISABLE TRIGGER issues_rollup_counts_update"))
            raw = conn.connection.dbapi_connection
            with raw.cursor() as cur:
                started = time.perf_counter()
                ids = []
                for k in range(n):
                    cur.execute("""
                        INSERT INTO issues (category, geom, reported_at)
                        VALUES ('garbage', ST_SetSRID(ST_MakePoint(%s, %s), 4326), now())
                        RETURNING id""", (112.85 + (k % 97) * 1e-4, 36.84 + (k % 89) * 1e-4),
                                prepare=True)
                    ids.append(cur.fetchone()[0])
                out[f"insert_{triggers}"] = (time.perf_counter() - started) / n * 1e6
                started = time.perf_counter()
                for i in ids:
                    cur.execute("UPDATE issues SET status = 'accepted' WHERE id = %s", (i,),
                                prepare=True)
                out[f"move_{triggers}"] = (time.perf_counter() - started) / n * 1e6
            trans.rollback()
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--issues", type=int, default=ISSUES)
    p.add_argument("--grids", type=int, default=GRIDS)
    p.add_argument("--database-url")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--inserts", type=int, default=2000)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from api.settings import Settings

    url = args.database_url or Settings().resolved_database_url()
    engine = make_engine(bench_database(url), pool_size=3)
    print(f"load average at start: {loadavg()}", flush=True)
    ensure_loaded(engine, args.grids, args.issues)
    started = time.perf_counter()
    rows = rollup.rebuild(engine)
    rebuild_s = time.perf_counter() - started
    with engine.connect() as conn:
        grid = rollup.cell_grid(conn)
        issues = conn.execute(text("SELECT count(*) FROM issues")).scalar_one()
        located = conn.execute(text("SELECT count(*) FROM issues WHERE lon IS NOT NULL")).scalar_one()
        assert rollup.check(conn) == [], "the rebuilt rollup differs from a scan"
    print(f"\nrebuild: {rebuild_s:.1f}s on base cells of {grid.base_cell_m:g} m at lat "
          f"{grid.lat0:.3f}")
    for table, n in rows.items():
        of = located if table != "issue_rollup_grids" else issues
        print(f"  {table:<20} {n:>10,} rows  {of / max(n, 1):6.1f} issues per row")
    map_data.warm_up()
    print(f"\n{'heatmap data (no hotspots)':<32} {'rollup s':>9} {'scan s':>9} {'speedup':>8} "
          f"{'cell m':>7} {'week m':>7} same")
    results = {}
    for name, flt in heat_filters(engine).items():
        heatmap(engine, flt, True)  # warm
        r_s, ours = best_of(lambda f=flt: heatmap(engine, f, True), args.repeats)
        s_s, scanned = best_of(lambda f=flt: heatmap(engine, f, False), args.repeats)
        identical = same(*both_in_one_transaction(engine, flt))
        results[name] = (r_s, s_s, identical)
        print(f"{name:<32} {r_s:>9.3f} {s_s:>9.3f} {s_s / r_s:>7.1f}x {ours.cell_m:>7g} "
              f"{ours.week_cell_m:>7g} {'yes' if identical else 'NO'}")
    c_r, _ = best_of(lambda: counts(engine, True), args.repeats)
    c_s, _ = best_of(lambda: counts(engine, False), args.repeats)
    with Session(engine) as session:
        ours_counts, scanned_counts = (
            statistics.counts_by_grid(session, IssueFilter(), rollup=use).sort_values(
                "code", ignore_index=True) for use in (True, False))
    counts_same = ours_counts.equals(scanned_counts)
    print(f"{'counts_by_grid, no filter':<32} {c_r:>9.3f} {c_s:>9.3f} {c_s / c_r:>7.1f}x "
          f"{'':>7} {'':>7} {'yes' if counts_same else 'NO'}")
    cost = trigger_cost(engine, args.inserts)
    insert_us = cost["insert_on"] - cost["insert_off"]
    print(f"\ntriggers, µs per row over {args.inserts:,} single-row statements: "
          f"insert {cost['insert_on']:.0f} on / {cost['insert_off']:.0f} off "
          f"(+{insert_us:.0f}); status move {cost['move_on']:.0f} on / "
          f"{cost['move_off']:.0f} off (+{cost['move_on'] - cost['move_off']:.0f})")
    print(f"\nload average at end: {loadavg()}")
    engine.dispose()
    r_s, s_s, _ = results["city, no filter"]
    print(f"rollup: issues={issues} rows={sum(rows.values())} heatmap_rollup_s={r_s:.3f} "
          f"heatmap_scan_s={s_s:.3f} speedup={s_s / r_s:.1f} insert_us={insert_us:.0f}")
    return 0 if all(same for *_, same in results.values()) and counts_same else 1


if __name__ == "__main__":
    raise SystemExit(main())
