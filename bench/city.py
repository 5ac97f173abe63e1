"""A whole city on one machine: builds the database ``gridmap_city`` once, then measures every
budget of the city (heatmap, tiles, statistics and dashboard, re-tagging) beside the naive way.

    PYTHONPATH=. .venv/bin/python bench/city.py                 # build once (long), then measure
    PYTHONPATH=. .venv/bin/python bench/city.py --scale 0.01    # a 1% city (its own database)
    PYTHONPATH=. .venv/bin/python bench/city.py --rebuild       # drop and build again
    PYTHONPATH=. .venv/bin/python bench/city.py --build-only    # build (or check) and stop

The data is :mod:`data.generator.city` (40,000 grids over 1,400 km² in 8 districts, 12,000,000
facilities, 10,000,000 issues over three years, the last quarter's with their workflow history).
It is loaded into the database ``gridmap_city`` (``gridmap_city_<scale>`` for ``--scale``) on the
server of ``--database-url`` (default: DATABASE_URL, or else the private cluster of
``gridmap db start``), with the schema of the migrations, by COPY, with the triggers off
(``session_replication_role = replica``) and the secondary indexes dropped during the load and
built after it; then VACUUM ANALYZE and the rollup's rebuild (when ``gis.queries.rollup`` exists).
A marker table ``city_build`` holds the generator parameters and seed: later runs reuse the
database when they match, and ``--rebuild`` drops and rebuilds it. See bench/README.md.

The last line is:

    city: grids=<n> facilities=<n> issues=<n> heatmap_s=<x> heatmap_mb=<x> tile_p50_ms=<x> tile_p99_ms=<x> stats_s=<x> retag_s=<x>
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import io
import json
import os
import sys
import time
from contextlib import contextmanager
from datetime import date

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from tqdm import tqdm

from data.generator.city import (
    City,
    CityParams,
    build_city,
    facility_code_parts,
    facility_slices,
    issue_slices,
    owners,
)
from gis.db.engine import make_engine, session_scope, upgrade
from gis.geo.grid_index import METHODS

DATABASE = "gridmap_city"
BIG_TABLES = ("issues", "facilities", "issue_events", "issue_steps", "extension_requests",
              "supervisions")
MARKER = "city_build"


def say(*parts) -> None:
    print(*parts, flush=True)


def load_line(label: str) -> None:
    one, five, fifteen = os.getloadavg()
    say(f"load average {label}: {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs")


@contextmanager
def timed(label: str, out: dict | None = None):
    started = time.perf_counter()
    yield
    elapsed = time.perf_counter() - started
    if out is not None:
        out[label] = elapsed
    say(f"   {label}: {elapsed:.1f}s")


# ---- the database ---------------------------------------------------------------------------
def city_database(url: str, name: str, rebuild: bool) -> str:
    """The URL of database ``name`` on ``url``'s server, created (and migrated) if missing;
    dropped first with ``rebuild``."""
    base = make_url(url).set(drivername="postgresql+psycopg")
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                              {"n": name}).scalar()
        if exists and rebuild:
            say(f"dropping database {name}")
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            exists = False
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    city = base.set(database=name)
    with create_engine(city, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    city_url = city.render_as_string(hide_password=False)
    upgrade(city_url)
    return city_url


def params_json(params: CityParams) -> dict:
    return {k: (v.isoformat() if isinstance(v, date) else v)
            for k, v in dataclasses.asdict(params).items()}


def built_params(engine) -> dict | None:
    with engine.connect() as conn:
        if conn.execute(text("SELECT to_regclass(:t)"), {"t": MARKER}).scalar() is None:
            return None
        row = conn.execute(text(f"SELECT params FROM {MARKER} ORDER BY built_at DESC LIMIT 1")).first()
        return row[0] if row else None


# ---- loading --------------------------------------------------------------------------------
def _copy_csv(raw, table: str, cols: list[str], frame: pd.DataFrame) -> None:
    """COPY ``frame``'s ``cols`` (in order) into ``table`` as CSV (empty unquoted = NULL)."""
    buf = io.StringIO()
    frame[cols].to_csv(buf, header=False, index=False)
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN (FORMAT csv)") as cp:
        cp.write(buf.getvalue())


def _hex_ewkb(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    pts = shapely.set_srid(shapely.points(lon, lat), 4326)
    return shapely.to_wkb(pts, hex=True, include_srid=True)


def _drop_secondary_indexes(conn, tables) -> list[str]:
    """Drop the non-primary-key indexes and unique constraints of ``tables``; return the DDL
    that recreates them."""
    ddl = []
    for table in tables:
        for name, definition in conn.execute(text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = CAST(:t AS regclass) AND contype IN ('u', 'x')"), {"t": table}):
            ddl.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            conn.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
        for name, definition in conn.execute(text(
                "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "WHERE i.indrelid = CAST(:t AS regclass) AND NOT i.indisprimary AND NOT EXISTS "
                "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"), {"t": table}):
            ddl.append(definition)
            conn.execute(text(f"DROP INDEX {name}"))
    return ddl


def build(engine, city: City, params: CityParams) -> dict:
    from gis.exchange import demo_loading as dl

    figures: dict = {}
    with timed("base tables (regions, grids, streets, compounds, people, rules)", figures), \
            session_scope(engine) as session:
        dl.load_demo(session, city.base, "city-bench-not-a-password-hash")
        first = f"{params.today.year - params.years}-{params.today.month:02d}-01"
        session.execute(text("UPDATE grid_assignments SET valid_from = :d"), {"d": first})
    with engine.begin() as conn:
        grid_id = dict(conn.execute(text("SELECT code, id FROM grids")).all())
        department_id = dict(conn.execute(text("SELECT code, id FROM departments")).all())
        user_id = dict(conn.execute(text("SELECT username, id FROM users")).all())
        rule_ids = list(conn.execute(text("SELECT id FROM dispatch_rules ORDER BY id")).scalars())
        ddl = _drop_secondary_indexes(conn, BIG_TABLES)
    ids = np.array([grid_id[c] for c in city.index.keys], dtype=np.int64)
    methods = np.asarray(METHODS, dtype=object)
    with engine.connect() as conn:
        conn.execute(text("SET session_replication_role = replica"))  # no triggers, no FK checks
        conn.execute(text("SET TimeZone = 'UTC'"))  # the naive timestamps written are UTC
        raw = conn.connection.driver_connection
        with timed("facilities COPY", figures):
            _load_facilities(raw, city, ids, methods, params)
        conn.commit()
        with timed("issues COPY (+ history of the last days)", figures):
            counts = _load_issues(conn, raw, city, ids, methods, department_id, user_id, rule_ids)
        conn.execute(text("SET session_replication_role = origin"))
        conn.commit()
    figures.update(counts)
    with timed("indexes and constraints", figures), engine.connect() as conn:
        conn.execute(text("SET maintenance_work_mem = '512MB'"))
        for statement in tqdm(ddl, desc="indexes", unit="index", file=sys.stdout):
            conn.execute(text(statement))
            conn.commit()
        for table in ("issues", "facilities"):
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                              f"(SELECT max(id) FROM {table}))"))
        conn.commit()
    with timed("VACUUM ANALYZE", figures), \
            engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in (*BIG_TABLES, "grids", "regions", "compounds", "streets", "grid_assignments"):
            conn.execute(text(f"VACUUM (ANALYZE) {table}"))
    if importlib.util.find_spec("gis.queries.rollup") is not None:
        rollup = importlib.import_module("gis.queries.rollup")
        with timed("rollup rebuild", figures), engine.begin() as conn:
            rollup.rebuild(conn)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for (table,) in conn.execute(text(
                    "SELECT relname FROM pg_class WHERE relname LIKE '%rollup%' AND relkind = 'r'")):
                conn.execute(text(f"VACUUM (ANALYZE) {table}"))
    else:
        say("   (no gis.queries.rollup: nothing to rebuild)")
    return figures


def _load_facilities(raw, city: City, grid_ids, methods, params: CityParams) -> None:
    serial: dict[tuple[str, str], int] = {}
    next_id = 1
    with tqdm(total=params.facilities, desc="facilities", unit="row", unit_scale=True,
              file=sys.stdout, mininterval=5) as bar:
        for fs in facility_slices(city):
            n = len(fs.lon)
            district, std = facility_code_parts(city, fs)
            frame = pd.DataFrame({"district": district})
            local = frame.groupby("district").cumcount().to_numpy()
            offset = frame["district"].map(
                {d: serial.get((d, fs.category), 0) for d in frame["district"].unique()}).to_numpy()
            number = local + offset + 1
            for d, count in frame["district"].value_counts().items():
                serial[(d, fs.category)] = serial.get((d, fs.category), 0) + int(count)
            if number.max(initial=0) > 999_999:
                raise SystemExit(f"more than 999,999 {fs.category} in one district: codes overflow")
            owner, maintainer = owners(city, fs)
            inside = fs.grid >= 0
            out = pd.DataFrame({
                "id": np.arange(next_id, next_id + n),
                "code": frame["district"] + std + pd.Series(number).astype(str).str.zfill(6),
                "category": fs.category, "status": fs.status,
                "geom": _hex_ewkb(fs.lon, fs.lat),
                "grid_id": _nullable(grid_ids[np.maximum(fs.grid, 0)], inside),
                "assignment": methods[fs.method], "install_date": fs.install_date,
                "owner": owner, "maintainer": maintainer})
            _copy_csv(raw, "facilities", list(out.columns), out)
            next_id += n
            bar.update(n)


def _load_issues(conn, raw, city: City, grid_ids, methods, department_id, user_id,
                 rule_ids) -> dict:
    from gis.exchange import demo_loading as dl

    counts = {"issue_events": 0, "issue_steps": 0, "extension_requests": 0, "supervisions": 0}
    next_id = 1
    session = Session(bind=conn)
    with tqdm(total=city.params.issues, desc="issues", unit="row", unit_scale=True,
              file=sys.stdout, mininterval=5) as bar:
        for sl in issue_slices(city):
            f = sl.issues
            n = len(f)
            inside = sl.grid >= 0
            found = np.where(inside, grid_ids[np.maximum(sl.grid, 0)], 0)
            issue_ids = np.arange(next_id, next_id + n)
            x, y = f.geometry.x.to_numpy(), f.geometry.y.to_numpy()
            out = pd.DataFrame({
                "id": issue_ids, "client_uuid": f["client_uuid"].astype(str),
                "category": f["category"], "description": f["description"],
                "channel": f["channel"], "reporter_contact": f["reporter_contact"],
                "geom": _hex_ewkb(x, y), "source_x": x, "source_y": y,
                "grid_id": _nullable(found, inside),
                "grid_version": _nullable(np.ones(n, np.int64), inside),
                "assignment": methods[sl.method],
                "assignment_distance_m": np.where(np.isnan(sl.distance_m), None, sl.distance_m),
                "department_id": f["department"].map(department_id).astype("Int64"),
                "status": f["status"], "urgency": f["urgency"],
                "reported_at": _utc(f["reported_at"]), "due_at": _utc(f["due_at"]),
                "closed_at": _utc(f["closed_at"]),
                "updated_at": _utc(f["closed_at"].fillna(f["reported_at"])),
                "self_resolved": f["self_resolved"].map({True: "t", False: "f"})})
            _copy_csv(raw, "issues", list(out.columns), out)
            if sl.with_history:
                events, extensions, supervisions = sl.history
                uuid_ids = dict(zip(out["client_uuid"], issue_ids.tolist(), strict=True))
                numbered = {"rule": rule_ids,
                            "request": _tail(dl._load_extension_requests(
                                conn, extensions, uuid_ids, user_id), len(extensions)),
                            "supervision": _tail(dl._load_supervisions(
                                conn, supervisions, uuid_ids, user_id), len(supervisions))}
                dl._load_events(conn, events, uuid_ids, user_id, department_id, numbered)
                counts["issue_steps"] += dl._load_steps(session, f, events, uuid_ids)
                counts["issue_events"] += len(events)
                counts["extension_requests"] += len(extensions)
                counts["supervisions"] += len(supervisions)
            conn.commit()
            next_id += n
            bar.update(n)
    return counts


def _utc(stamps: pd.Series) -> pd.Series:
    """Aware timestamps as naive UTC ones (pandas writes those fast; the load runs in UTC)."""
    return stamps.dt.tz_convert("UTC").dt.tz_localize(None)


def _nullable(values: np.ndarray, keep: np.ndarray) -> pd.Series:
    """Integers, NULL where not ``keep``."""
    return pd.Series(values, dtype="Int64").where(keep)


def _tail(ids: list[int], n: int) -> list[int]:
    """The ids of the rows just loaded (the last ``n`` by id)."""
    return ids[len(ids) - n:] if n else []


def print_sizes(engine) -> float:
    with engine.connect() as conn:
        total = conn.execute(text("SELECT pg_database_size(current_database())")).scalar()
        rows = conn.execute(text(
            "SELECT c.relname, c.reltuples::bigint, pg_total_relation_size(c.oid), "
            "pg_relation_size(c.oid), pg_indexes_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname = 'public' "
            "ORDER BY pg_total_relation_size(c.oid) DESC LIMIT 16")).all()
    say(f"\ndatabase size on disk: {total / 2**30:.2f} GiB")
    say(f"{'table':<22} {'rows':>12} {'total MiB':>10} {'heap MiB':>10} {'index MiB':>10}")
    for name, n, size, heap, idx in rows:
        say(f"{name:<22} {max(n, 0):>12,} {size / 2**20:>10.0f} {heap / 2**20:>10.0f} "
            f"{idx / 2**20:>10.0f}")
    return total / 2**30


def ensure_city(args) -> tuple:
    """(engine, params, city or None): the database built for ``args``' parameters."""
    from api.settings import Settings

    params = CityParams(seed=args.seed, today=args.today,
                        history_days=args.history_days).scaled(args.scale)
    name = DATABASE if args.scale == 1 else f"{DATABASE}_{str(args.scale).replace('.', '_')}"
    url = args.database_url or Settings().resolved_database_url()
    city_url = city_database(url, name, args.rebuild)
    engine = make_engine(city_url, pool_size=4)
    have = built_params(engine)
    wanted = params_json(params)
    say(f"database {name}: {json.dumps(wanted, ensure_ascii=False)}")
    if have is not None and have != wanted:
        if args.today_given:
            raise SystemExit(f"{name} was built with {have}; run with --rebuild to rebuild it")
        wanted_today = CityParams(seed=args.seed, today=date.fromisoformat(have["today"]),
                                  history_days=args.history_days)
        params = wanted_today.scaled(args.scale)
        if params_json(params) != have:
            raise SystemExit(f"{name} was built with {have}; run with --rebuild to rebuild it")
        wanted = have
    if have is not None:
        say(f"reusing {name} (built for {have['today']}; --rebuild to redo)")
        return engine, params, None
    if _has_rows(engine):  # a build that stopped half way
        engine.dispose()
        city_url = city_database(url, name, True)
        engine = make_engine(city_url, pool_size=4)
    say("building the city (data.generator.city) ...")
    started = time.perf_counter()
    with timed("generate the layout"):
        city = build_city(params)
    figures = build(engine, city, params)
    seconds = time.perf_counter() - started
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE IF NOT EXISTS {MARKER} (params jsonb NOT NULL, "
                          "built_at timestamptz NOT NULL DEFAULT now(), seconds float8, "
                          "figures jsonb)"))
        conn.execute(text(f"INSERT INTO {MARKER} (params, seconds, figures) "
                          "VALUES (CAST(:p AS jsonb), :s, CAST(:f AS jsonb))"),
                     {"p": json.dumps(wanted), "s": seconds, "f": json.dumps(figures)})
    say(f"built in {seconds / 60:.1f} min")
    return engine, params, city


def _has_rows(engine) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(text("SELECT EXISTS (SELECT 1 FROM grids)")).scalar())


# ---- main -----------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=float, default=1.0,
                   help="times the city's grids, area, facilities and issues (own database)")
    p.add_argument("--seed", type=int, default=CityParams.seed)
    p.add_argument("--today", type=date.fromisoformat, default=None,
                   help="the day the data is seen (default: today in Beijing, at build time)")
    p.add_argument("--history-days", type=int, default=CityParams.history_days,
                   help="cases reported in the last N days get their workflow history")
    p.add_argument("--rebuild", action="store_true", help="drop the database and build it again")
    p.add_argument("--build-only", action="store_true", help="build (or find) it and stop")
    p.add_argument("--database-url", help="PostGIS URL (default: DATABASE_URL or `gridmap db`)")
    p.add_argument("--tiles", type=int, default=12, help="tiles per zoom and layer")
    p.add_argument("--naive-tiles", type=int, default=2,
                   help="tiles per zoom for the naive raw-rows tiles (0: none)")
    p.add_argument("--naive-heatmap-points", type=int, default=500_000,
                   help="points the naive folium HeatMap is built from (then extrapolated)")
    p.add_argument("--retag-grids", type=float, default=0.01, help="share of grids redrawn")
    p.add_argument("--retag-sample", type=int, default=400_000,
                   help="rows a table a full re-tag is timed on, then extrapolated (0: whole)")
    p.add_argument("--only", default="heatmap,tiles,stats,retag",
                   help="the measures to run, comma-separated (the city line needs all four)")
    args = p.parse_args(argv)
    args.only = set(args.only.split(","))
    unknown = args.only - {"heatmap", "tiles", "stats", "retag"}
    if unknown:
        p.error(f"--only: unknown measures {', '.join(sorted(unknown))}")
    args.today_given = args.today is not None
    if args.today is None:
        from datetime import datetime

        from gis.rules import BEIJING
        args.today = datetime.now(BEIJING).date()
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    load_line("at start")
    engine, params, _city = ensure_city(args)
    print_sizes(engine)
    if args.build_only:
        load_line("at end")
        return 0
    import city_measure  # bench/, beside this script

    code = city_measure.run(engine, params, args)
    say(f"total {time.perf_counter() - started:.0f}s")
    load_line("at end")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
