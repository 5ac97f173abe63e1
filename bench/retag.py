"""Re-tagging after a redraw: assign_changed (the rows the changed grids can move) against the full
re-tag (assign_stored_rows), on the same redraw, in one transaction that is rolled back.

A fraction of the current grids (--fraction, 1% by default; picked by the hash of their code and
--seed) each hand a strip (--strip-m wide) along their longest shared edge to that neighbour, as an
administrator moving a boundary does: both grids get a new version. Then, on one connection:

- scoped: ``gis.geotag.assign.assign_changed(conn, codes)`` (open issues, facilities, buildings);
- full (with --full): ``assign_stored_rows(conn)`` on the same redraw, after the scoped run is
  rolled back to a savepoint; at city scale it reads every facility and open issue, so it is
  opt-in. Both must leave the same rows (checked when --full is given).

Nothing is kept: the transaction is rolled back, so the database can be measured again.

    .venv/bin/python bench/retag.py --database-url postgresql+psycopg://.../gridmap_city
    .venv/bin/python bench/retag.py --fraction 0.01 --full      # the demo, or any database
"""

from __future__ import annotations

import argparse
import os
import time

import shapely
from sqlalchemy import Connection, text

from api.settings import Settings
from gis.db.engine import make_engine
from gis.geotag.assign import assign_changed, assign_stored_rows

METRES_PER_DEGREE = 111_000.0


def redraw_grids(conn: Connection, fraction: float = 0.01, seed: int = 1,
                 strip_m: float = 30.0) -> list[str]:
    """Move the shared boundary of disjoint pairs of neighbouring grids, about ``fraction`` of the
    current grids in all; returns the codes redrawn (each has a new version)."""
    total = conn.execute(text("SELECT count(*) FROM grids WHERE valid_to IS NULL")).scalar_one()
    wanted = max(2, round(total * fraction))
    rows = conn.execute(text("""
        SELECT a.code, ST_AsBinary(a.geom), b.code, ST_AsBinary(b.geom)
          FROM (SELECT code, geom FROM grids WHERE valid_to IS NULL
                 ORDER BY md5(code || :seed) LIMIT :n) a
          JOIN grids b ON b.valid_to IS NULL AND b.code <> a.code AND b.geom && a.geom
                      AND ST_Intersects(b.geom, a.geom)"""), {"seed": str(seed), "n": wanted}).all()
    taken: set[str] = set()
    codes: list[str] = []
    by_grid: dict[str, list] = {}
    for a, wa, b, wb in rows:
        by_grid.setdefault(a, []).append((b, wa, wb))
    for a, neighbours in by_grid.items():
        if len(codes) >= wanted or a in taken:
            continue
        geom_a = shapely.from_wkb(bytes(neighbours[0][1]))
        free = [(b, shapely.from_wkb(bytes(wb))) for b, _, wb in neighbours if b not in taken]
        if not free:
            continue
        b, geom_b = max(free, key=lambda n: geom_a.boundary.intersection(n[1].boundary).length)
        edge = geom_a.boundary.intersection(geom_b.boundary)
        strip = geom_a.intersection(edge.buffer(strip_m / METRES_PER_DEGREE))
        if strip.is_empty or strip.area >= geom_a.area * 0.9:
            continue
        _new_version(conn, a, geom_a.difference(strip))
        _new_version(conn, b, geom_b.union(strip))
        taken |= {a, b}
        codes += [a, b]
    return codes


def _new_version(conn: Connection, code: str, geom) -> None:
    old = conn.execute(text(
        "UPDATE grids SET valid_to = now() WHERE code = :c AND valid_to IS NULL "
        "RETURNING name, community_id, households, population, version"), {"c": code}).one()
    conn.execute(text(
        "INSERT INTO grids (code, name, community_id, geom, households, population, version) "
        "VALUES (:c, :n, :cid, ST_Multi(ST_GeomFromWKB(:g, 4326)), :hh, :pop, :v)"),
        {"c": code, "n": old.name, "cid": old.community_id, "g": shapely.to_wkb(geom),
         "hh": old.households, "pop": old.population, "v": old.version + 1})


def measure_retag(engine, fraction: float = 0.01, seed: int = 1, full: bool = False) -> dict:
    """Redraw ``fraction`` of the grids, time :func:`assign_changed` (and with ``full`` the full
    re-tag, checking both leave the same rows), and roll everything back. What the city
    benchmark calls: it returns {"grids", "redraw_s", "retag_s", "scanned", "changed",
    "full_s", "full_scanned", "same"}."""
    with engine.connect() as conn, conn.begin():
        conn.execute(text("SET jit = off"))
        start = time.perf_counter()
        codes = redraw_grids(conn, fraction, seed)
        out = {"grids": len(codes), "redraw_s": time.perf_counter() - start}
        savepoint = conn.begin_nested()
        start = time.perf_counter()
        scoped = assign_changed(conn, codes)
        out["retag_s"] = time.perf_counter() - start
        out["scanned"] = {t: r.scanned for t, r in scoped.tables.items()}
        out["changed"] = {t: r.changed for t, r in scoped.tables.items()}
        if full:
            after = _moved_rows(conn, codes)
            savepoint.rollback()
            start = time.perf_counter()
            whole = assign_stored_rows(conn)
            out["full_s"] = time.perf_counter() - start
            out["full_scanned"] = {t: r.scanned for t, r in whole.tables.items()}
            out["same"] = (_moved_rows(conn, codes) == after
                           and all(whole.tables[t].changed == scoped.tables[t].changed
                                   for t in whole.tables))
        conn.rollback()
    return out


def _moved_rows(conn: Connection, codes: list[str]) -> dict:
    """Every facility and open issue tagged to a version of the redrawn grids, and buildings'
    tags; with the counts of changes compared too, this pins what both runs did."""
    ids = conn.execute(text("SELECT id FROM grids WHERE code = ANY(:c)"), {"c": codes}).scalars().all()
    return {t: conn.execute(text(
        f"SELECT id, grid_id, assignment FROM {t} WHERE grid_id = ANY(:ids) ORDER BY id"),
        {"ids": ids}).all() for t in ("issues", "facilities")} | {
        "buildings": conn.execute(text(
            "SELECT id, grid_id FROM buildings WHERE grid_id = ANY(:ids) ORDER BY id"),
            {"ids": ids}).all()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: DATABASE_URL or the private cluster")
    parser.add_argument("--fraction", type=float, default=0.01, help="grids redrawn (0.01)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--full", action="store_true", help="also the full re-tag, and compare")
    args = parser.parse_args()
    engine = make_engine(args.database_url or Settings().resolved_database_url(), pool_size=1)
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    with engine.connect() as conn:
        sizes = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                 for t in ("grids", "issues", "facilities", "buildings")}
    print("database: " + ", ".join(f"{t} {n:,}" for t, n in sizes.items()))
    out = measure_retag(engine, args.fraction, args.seed, args.full)
    engine.dispose()
    print(f"redrew {out['grids']} grids ({args.fraction:.1%}) in {out['redraw_s']:.1f} s")
    print(f"assign_changed: {out['retag_s']:.1f} s; scanned " + ", ".join(
        f"{t} {n:,} (changed {out['changed'][t]:,})" for t, n in out["scanned"].items()))
    if args.full:
        print(f"assign_stored_rows (full): {out['full_s']:.1f} s; scanned " + ", ".join(
            f"{t} {n:,}" for t, n in out["full_scanned"].items()))
        print(f"same rows: {out['same']}; full / scoped: {out['full_s'] / out['retag_s']:.1f}x")
    print(f"retag: grids={out['grids']} retag_s={out['retag_s']:.1f}"
          + (f" full_s={out['full_s']:.1f}" if args.full else ""))
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
