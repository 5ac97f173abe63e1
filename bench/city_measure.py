"""The measuring half of bench/city.py: every city budget through the project's own functions,
beside the naive way, in one run. See bench/README.md ("city.py").

Each measure looks up the functions it calls at run time, so the harness runs before and after
the rollup, tiles and re-tag work lands; what it fell back to is printed.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import date, timedelta
from unittest import mock

import numpy as np
import shapely
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from gis.queries import map_data, statistics
from gis.queries.filters import IssueFilter
from gis.queries.reads import ScopedFilter

ZOOMS = tuple(range(10, 19))
NAIVE_TILE_TIMEOUT_S = 60
SEED = 20221


def say(*parts) -> None:
    print(*parts, flush=True)


@dataclasses.dataclass
class Row:
    what: str
    ours_s: float | None
    naive_s: float | None = None
    ours_note: str = ""
    naive_note: str = ""

    def ratio(self) -> str:
        if not self.ours_s or self.naive_s is None:
            return "-"
        return f"{self.naive_s / self.ours_s:.1f}x"


def _best(fn: Callable[[], object], repeats: int = 2) -> tuple[float, object]:
    best, out = math.inf, None
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - started)
    return best, out


def _cold_then_warm(fn: Callable[[], object], again_below_s: float = 5.0) -> tuple[float, object]:
    """Time ``fn`` once; when that was cheap, once more warm, and keep the better time (a run of
    the whole city takes minutes: repeating it all would not fit a run)."""
    took, out = _best(fn, 1)
    if took < again_below_s:
        again, out = _best(fn, 1)
        took = min(took, again)
    return took, out


@contextmanager
def _session(engine):
    with Session(engine) as session:
        yield session
        session.rollback()


def _actors(engine):
    """(the admin, a leader over the busiest street) as the app would load them."""
    from gis.people.actors import load_actor

    with _session(engine) as s:
        admin, _ = load_actor(s, "admin")
        leader, _ = load_actor(s, "leader")
        street_id, street_code = s.execute(text(
            "SELECT r.id, r.code FROM regions r JOIN regions c ON c.parent_id = r.id "
            "JOIN grids g ON g.community_id = c.id JOIN issues i ON i.grid_id = g.id "
            "WHERE r.level = 'street' AND i.reported_at > now() - interval '30 days' "
            "GROUP BY r.id ORDER BY count(*) DESC LIMIT 1")).first() or s.execute(text(
                "SELECT id, code FROM regions WHERE level = 'street' ORDER BY code LIMIT 1")).first()
        codes = s.execute(text("SELECT code FROM grids WHERE valid_to IS NULL AND code LIKE :p"),
                          {"p": street_code + "%"}).scalars().all()
    street_leader = dataclasses.replace(leader, region_id=street_id,
                                        region_grid_codes=frozenset(codes))
    return admin, street_leader, street_code


# ---- heatmap --------------------------------------------------------------------------------
def heatmap(engine, admin, street_leader, rows: list[Row], sample: int) -> tuple[float, float]:
    from folium import plugins

    from maps.base import BaseMapOptions, new_map, render
    from maps.heatmap import build_heatmap

    map_data.warm_up()

    def page(actor):
        with _session(engine) as s:
            data = map_data.heatmap_data(s, ScopedFilter.of(IssueFilter(), actor))
        return render(build_heatmap(data, lang="zh")), data

    city_s, (html, data) = _cold_then_warm(lambda: page(admin))
    city_mb = len(html.encode()) / 1e6
    street_s, (street_html, street_data) = _cold_then_warm(lambda: page(street_leader))
    total = data.total

    def naive():
        with _session(engine) as s:
            points = s.execute(text("SELECT ST_Y(geom), ST_X(geom) FROM issues "
                                    "WHERE geom IS NOT NULL LIMIT :n"), {"n": sample}).all()
        m = new_map(BaseMapOptions(), "zh", title="naive", zoom=11)
        plugins.HeatMap([list(p) for p in points]).add_to(m)
        return render(m), len(points)

    naive_s, (naive_html, n) = _best(naive, 1)
    factor = total / max(n, 1)
    rows.append(Row("heatmap page, whole city (admin)", city_s, naive_s * factor,
                    f"{city_mb:.2f} MB, {len(data.cells):,} cells of {data.cell_m:.0f} m",
                    f"folium HeatMap of {n:,} points x{factor:.1f}: "
                    f"{len(naive_html.encode()) / 1e6 * factor:.0f} MB"))
    rows.append(Row("heatmap page, one street (leader)", street_s, None,
                    f"{len(street_html.encode()) / 1e6:.2f} MB, {street_data.total:,} cases"))
    return city_s, city_mb


# ---- tiles ----------------------------------------------------------------------------------
def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    phi = math.radians(lat)
    y = int((1 - math.log(math.tan(phi) + 1 / math.cos(phi)) / math.pi) / 2 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def tile_sample(engine, per_zoom: int) -> list[tuple[int, int, int]]:
    """A fixed seeded sample: per zoom, half at the places of random issues and facilities (where
    people look), half anywhere in the city's box."""
    rng = np.random.default_rng(SEED)
    with _session(engine) as s:
        x0, y0, x1, y1 = s.execute(text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            "(SELECT ST_Extent(geom) e FROM grids WHERE valid_to IS NULL) t")).one()
        s.execute(text("SELECT setseed(0.2022)"))
        places = np.array(s.execute(text(
            "(SELECT lon, lat FROM issues TABLESAMPLE SYSTEM (0.05) REPEATABLE (1) LIMIT 2000) "
            "UNION ALL (SELECT ST_X(geom), ST_Y(geom) FROM facilities TABLESAMPLE SYSTEM (0.05) "
            "REPEATABLE (1) LIMIT 2000)")).all(), dtype=float)
    tiles = []
    for z in ZOOMS:
        half = per_zoom // 2
        pick = places[rng.integers(0, len(places), half)]
        anywhere = np.column_stack([rng.uniform(x0, x1, per_zoom - half),
                                    rng.uniform(y0, y1, per_zoom - half)])
        for lon, lat in np.vstack([pick, anywhere]):
            tiles.append((z, *_tile_of(lon, lat, z)))
    return tiles


_NAIVE_TILE = {
    "issues": "SELECT i.id, i.category, ST_AsMVTGeom(ST_Transform(i.geom, 3857), t.env) AS geom "
              "FROM issues i, t WHERE i.status NOT IN ('closed', 'rejected') AND i.geom && t.box",
    "facilities": "SELECT f.id, f.code, f.category, f.status, "
                  "ST_AsMVTGeom(ST_Transform(f.geom, 3857), t.env) AS geom "
                  "FROM facilities f, t WHERE f.geom && t.box",
}


def tiles(engine, admin, per_zoom: int, naive_per_zoom: int, rows: list[Row]) -> tuple[float, float]:
    from gis.queries import tiles as tiles_mod
    from gis.queries.reads import Reader

    sample = tile_sample(engine, per_zoom)
    reader = Reader(actor=admin)
    takes_reader = "reader" in inspect.signature(tiles_mod.render_tile).parameters
    layers = [layer for layer in tiles_mod.LAYERS if layer != "buildings"]
    all_ms: list[float] = []
    with _session(engine) as s:
        for layer in layers:  # warm-up: plans, catalogue
            tiles_mod.render_tile(s, layer, *sample[len(sample) // 2])
            s.rollback()
        for layer in layers:
            ms, sizes, by_zoom = [], [], {}
            for z, x, y in sample:
                started = time.perf_counter()
                data = (tiles_mod.render_tile(s, layer, z, x, y, reader=reader) if takes_reader
                        else tiles_mod.render_tile(s, layer, z, x, y))
                elapsed = (time.perf_counter() - started) * 1000
                s.rollback()
                ms.append(elapsed)
                sizes.append(len(data))
                by_zoom.setdefault(z, []).append(elapsed)
            all_ms += ms
            worst = max(by_zoom, key=lambda z: np.percentile(by_zoom[z], 99))
            naive_ms = _naive_tiles(s, layer, sample, naive_per_zoom)
            rows.append(Row(
                f"tiles {layer} z10-18 p50/p99 ms", np.percentile(ms, 50) / 1000,
                None if naive_ms is None else np.percentile(naive_ms, 50) / 1000,
                f"p99 {np.percentile(ms, 99):.0f} ms (worst z{worst}), "
                f"{np.mean(sizes) / 1024:.1f} KiB avg, max {max(sizes) / 1024:.0f} KiB",
                "-" if naive_ms is None else
                f"raw rows, {len(naive_ms)} tiles: p99 {np.percentile(naive_ms, 99):.0f} ms"))
    return float(np.percentile(all_ms, 50)), float(np.percentile(all_ms, 99))


def _naive_tiles(s, layer: str, sample, per_zoom: int) -> list[float] | None:
    sql = _NAIVE_TILE.get(layer)
    if sql is None or per_zoom == 0:
        return None
    by_zoom: dict[int, list] = {}
    for t in sample:
        by_zoom.setdefault(t[0], []).append(t)
    out = []
    for z in ZOOMS:
        if layer == "facilities" and z < 12:
            continue  # the whole city's 12M points in one tile: minutes, and nobody would
        for zz, x, y in by_zoom.get(z, [])[:per_zoom]:
            started = time.perf_counter()
            s.execute(text("SET LOCAL jit = off"))
            s.execute(text(f"SET LOCAL statement_timeout = '{NAIVE_TILE_TIMEOUT_S}s'"))
            try:
                s.execute(text(
                "WITH t AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env, "
                "ST_Transform(ST_TileEnvelope(:z, :x, :y), 4326) AS box) "
                f"SELECT ST_AsMVT(q, '{layer}') FROM ({sql}) q"), {"z": zz, "x": x, "y": y}).scalar()
            except OperationalError:  # cancelled at the timeout: count it as the timeout
                s.rollback()
            out.append((time.perf_counter() - started) * 1000)
            s.rollback()
    return out


# ---- statistics and dashboard ---------------------------------------------------------------
def stats(engine, admin, today: date, rows: list[Row]) -> float:
    from gis.queries import dashboard

    flt = IssueFilter()
    month = dashboard.DashFilter(dashboard.period_of("month", today), day=today)
    calls: list[tuple[str, Callable[[Session], object], str | None]] = [
        ("statistics.grid_stats (counts by grid)", lambda s: statistics.grid_stats(s, admin, flt),
         "SELECT grid_id, status, category, count(*) FROM issues GROUP BY 1, 2, 3"),
        ("statistics.timeline (weeks)", lambda s: statistics.timeline(s, admin, flt),
         "SELECT date_trunc('week', reported_at), count(*), count(closed_at) FROM issues GROUP BY 1"),
        ("statistics.worker_stats", lambda s: statistics.worker_stats(s, admin, flt), None),
        ("dashboard.summary (month)", lambda s: dashboard.summary(s, admin, month),
         "SELECT count(*) FILTER (WHERE status NOT IN ('closed','rejected')), "
         "count(*) FILTER (WHERE status NOT IN ('closed','rejected') AND due_at < now()) FROM issues"),
        ("dashboard.trend (month)", lambda s: dashboard.trend(s, admin, month, today),
         "SELECT category, date_trunc('week', reported_at), count(*) FROM issues "
         "WHERE reported_at >= now() - interval '13 weeks' GROUP BY 1, 2"),
        ("dashboard.overdue (200)", lambda s: dashboard.overdue(s, admin, month), None),
        ("dashboard.heat_data (month)", lambda s: dashboard.heat_data(s, admin, month), None),
        ("map_data.categories (the filter's list)", lambda s: map_data.categories(s, "issue"),
         None),
    ]
    try:
        from gis.queries import evaluation

        week = evaluation.period_from("week", today - timedelta(days=1), None, None, today)
        for role in ("department", "grid", "community", "worker"):
            calls.append((f"evaluation.evaluate {role} (week)",
                          lambda s, r=role: evaluation.evaluate(s, admin, r, week), None))
    except ImportError:
        say("   (no gis.queries.evaluation)")
    total = 0.0
    took_by_label: dict[str, float] = {}
    for label, fn, naive_sql in calls:
        def ours(fn=fn):
            with _session(engine) as s:
                return fn(s)
        try:
            took, _ = _cold_then_warm(ours)
        except Exception as exc:  # report and go on: one broken query must not hide the rest
            rows.append(Row(label, None, None, f"FAILED: {type(exc).__name__}: {str(exc)[:80]}"))
            continue
        total += took
        took_by_label[label] = took
        naive_s = None
        if naive_sql:
            with _session(engine) as s:
                s.execute(text("SET LOCAL jit = off"))
                naive_s, _ = _best(lambda sql=naive_sql, s=s: s.execute(text(sql)).all(), 1)
        rows.append(Row(label, took, naive_s, "", "plain scan GROUP BY" if naive_sql else ""))
    return slowest_view(took_by_label, total, rows)


def slowest_view(took_by_label: dict[str, float], total: float, rows: list[Row]) -> float:
    """What a leader waits for at worst: each statistics endpoint and each evaluation is one
    request; the dashboard page's four panels (summary, trend, overdue, heat) count together,
    as if loaded one after another. ``stats_s`` of the city line."""
    page = sum(t for label, t in took_by_label.items() if label.startswith("dashboard."))
    views = {label: t for label, t in took_by_label.items() if not label.startswith("dashboard.")}
    views["the dashboard page (its four panels, in turn)"] = page
    worst = max(views, key=views.get)
    rows.append(Row("statistics and dashboard: the slowest view", views[worst], None,
                    f"{worst}; all {len(took_by_label)} queries in turn: {total:.2f} s"))
    return views[worst]


# ---- re-tag after 1% of the grids are redrawn -----------------------------------------------
def _pairs(engine, share: float) -> list[tuple[str, str]]:
    """Pairs of neighbouring current grids of one community, disjoint, ``share`` of all grids."""
    with _session(engine) as s:
        n = s.execute(text("SELECT count(*) FROM grids WHERE valid_to IS NULL")).scalar()
        want = max(1, round(n * share / 2))
        rows = s.execute(text("""
            SELECT a.code, b.code FROM grids a JOIN grids b
              ON a.community_id = b.community_id AND a.code < b.code
             AND ST_Relate(a.geom, b.geom, '****1****')
             WHERE a.valid_to IS NULL AND b.valid_to IS NULL
               AND a.id % 97 = 7""")).all()
    rng = np.random.default_rng(SEED)
    used, out = set(), []
    for i in rng.permutation(len(rows)):
        a, b = rows[i]
        if a in used or b in used:
            continue
        used |= {a, b}
        out.append((a, b))
        if len(out) == want:
            break
    return out


def _moved(a, b):
    """A's and B's new shapes: a strip of about 15 m of A along their shared edge goes to B."""
    strip = shapely.intersection(a, shapely.buffer(b, 15 / 111_000 * 1.25))
    new_a = shapely.difference(a, strip)
    new_b = shapely.union(b, strip)
    return _largest(new_a), _largest(new_b)


def _largest(g):
    parts = shapely.get_parts(g)
    return max(parts, key=lambda p: p.area)


def retag(engine, share: float, naive_rows: int, rows: list[Row]) -> float:
    # naive_rows: communities sampled for the full re-tags (0: time them whole)
    """Redraw ``share`` of the grids (pairs of neighbours: one gives a strip of its area to the
    other) through gis.edit.writes.redraw_grid, then re-tag; all in one transaction that is
    rolled back, so the database keeps its state."""
    from shapely.geometry import mapping

    from gis.edit import writes
    from gis.geotag import assign
    from gis.people.actors import load_actor

    pairs = _pairs(engine, share)
    scoped = getattr(assign, "assign_changed", None)
    say(f"   {2 * len(pairs)} grids redrawn in {len(pairs)} pairs; re-tag: "
        f"{'assign_changed (scoped)' if scoped else 'assign_stored_rows (full; no scoped re-tag yet)'}")
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            s = Session(bind=conn, join_transaction_mode="create_savepoint")
            admin, _ = load_actor(s, "admin")
            geoms = dict(s.execute(text(
                "SELECT code, ST_AsBinary(geom) FROM grids WHERE valid_to IS NULL "
                "AND code = ANY(:c)"), {"c": [c for p in pairs for c in p]}).all())
            geoms = {c: shapely.from_wkb(bytes(g)) for c, g in geoms.items()}
            started = time.perf_counter()
            # The redraws; each one's own re-tag is left out here and timed below, once for all.
            names = [n for n in ("assign_stored_rows", "assign_changed") if hasattr(writes, n)]
            with _patched(writes, names):
                for a, b in pairs:
                    new_a, new_b = _moved(geoms[a], geoms[b])
                    writes.redraw_grid(s, admin, a, geometry=mapping(new_a))
                    writes.redraw_grid(s, admin, b, geometry=mapping(new_b))
                s.flush()
            redraw_s = time.perf_counter() - started
            if scoped:
                started = time.perf_counter()
                report = _call_retag(scoped, conn, [c for p in pairs for c in p])
                retag_s = time.perf_counter() - started
                changed = {t: r.changed for t, r in report.tables.items()} \
                    if hasattr(report, "tables") else report
                ours_note = f"assign_changed: changed {changed}"
            else:  # today's path: the full re-tag of what can change (open issues, facilities)
                retag_s, how = full_retag_s(conn, False, naive_rows)
                ours_note = f"no scoped re-tag: assign_stored_rows(), {how}"
            say(f"   redraw {redraw_s:.1f}s, re-tag {retag_s:.1f}s ({ours_note})")
            naive_s, note = full_retag_s(conn, True, naive_rows)
            rows.append(Row(f"re-tag after redrawing {2 * len(pairs)} grids", retag_s, naive_s,
                            f"{ours_note}; redraws {redraw_s:.1f}s",
                            "full re-tag incl. closed: " + note))
        finally:
            trans.rollback()
    return retag_s


def _call_retag(fn, conn, codes):
    params = inspect.signature(fn).parameters
    if "codes" in params:
        return fn(conn, codes=codes)
    if "grid_codes" in params:
        return fn(conn, grid_codes=codes)
    return fn(conn)


@contextmanager
def _patched(module, names):
    """The re-tag the redraw path runs inside each call, replaced by a no-op for the redraws."""
    patches = [mock.patch.object(module, n, lambda *a, **k: None) for n in names]
    for p in patches:
        p.start()
    try:
        yield
    finally:
        for p in patches:
            p.stop()


def full_retag_s(conn, include_closed: bool, sample: int) -> tuple[float, str]:
    """A full ``assign_stored_rows`` (every facility, and the open issues, or all with
    ``include_closed``): timed whole when ``sample`` is 0, else on the first ``sample`` rows of
    each table (the function's own batches, the reading stopped early) and extrapolated by rows,
    the index build (once a call) timed apart."""
    from gis.geotag import assign

    open_only = "" if include_closed else "AND status NOT IN ('closed', 'rejected')"
    sizes = dict(conn.execute(text(
        "SELECT 'facilities', count(*) FROM facilities UNION ALL "
        f"SELECT 'issues', count(*) FROM issues WHERE geom IS NOT NULL {open_only}")).all())
    rows_full = sum(sizes.values())
    options = {"include_closed": include_closed, "record_events": False}
    if sample <= 0:
        started = time.perf_counter()
        assign.assign_stored_rows(conn, **options)
        return time.perf_counter() - started, f"full, {rows_full:,} rows"
    started = time.perf_counter()
    assign.load_current_grids(conn)
    index_s = time.perf_counter() - started
    real = assign._read_batches
    done: dict[str, int] = {}

    def first_rows(conn_, table, scope, batch_size):
        for batch in real(conn_, table, scope, batch_size):
            yield batch
            done[table] = done.get(table, 0) + len(batch)
            if done[table] >= sample:
                break

    with mock.patch.object(assign, "_read_batches", first_rows):
        started = time.perf_counter()
        assign.assign_stored_rows(conn, **options)
        took = time.perf_counter() - started
    rows = sum(done.values())
    if rows >= rows_full:
        return took, f"full, {rows_full:,} rows"
    estimate = index_s + max(took - index_s, 0.0) * rows_full / max(rows, 1)
    return estimate, (f"extrapolated from the first {rows:,} rows ({took:.1f}s, index build "
                      f"{index_s:.1f}s) to {rows_full:,}")


# ---- the run --------------------------------------------------------------------------------
def run(engine, params, args) -> int:
    rows: list[Row] = []
    with _session(engine) as s:
        n_grids = s.execute(text("SELECT count(*) FROM grids WHERE valid_to IS NULL")).scalar()
        n_fac = s.execute(text("SELECT count(*) FROM facilities")).scalar()
        n_iss = s.execute(text("SELECT count(*) FROM issues")).scalar()
        n_events = s.execute(text("SELECT count(*) FROM issue_events")).scalar()
    rollup = importlib.util.find_spec("gis.queries.rollup") is not None
    say(f"\ncity: {n_grids:,} grids, {n_fac:,} facilities, {n_iss:,} issues, "
        f"{n_events:,} history rows; rollup module: {'yes' if rollup else 'no'}")
    admin, street_leader, street = _actors(engine)
    only = getattr(args, "only", {"heatmap", "tiles", "stats", "retag"})
    nan = float("nan")
    heat_s = heat_mb = p50 = p99 = stats_s = retag_s = nan
    if "heatmap" in only:
        say("heatmap ...")
        heat_s, heat_mb = heatmap(engine, admin, street_leader, rows, args.naive_heatmap_points)
    if "tiles" in only:
        say("tiles ...")
        p50, p99 = tiles(engine, admin, args.tiles, args.naive_tiles, rows)
    if "stats" in only:
        say("statistics and dashboard ...")
        stats_s = stats(engine, admin, params.today, rows)
    if "retag" in only:
        say("re-tag ...")
        retag_s = retag(engine, args.retag_grids, args.retag_sample, rows)
    print_table(rows, street)
    say(f"city: grids={n_grids} facilities={n_fac} issues={n_iss} heatmap_s={heat_s:.2f} "
        f"heatmap_mb={heat_mb:.2f} tile_p50_ms={p50:.1f} tile_p99_ms={p99:.1f} "
        f"stats_s={stats_s:.2f} retag_s={retag_s:.1f}")
    return 0


def print_table(rows: list[Row], street: str) -> None:
    def fmt(x):
        return "-" if x is None else f"{x:.3f}"

    say(f"\n{'measure':<44} {'ours s':>9} {'naive s':>9} {'naive/ours':>10}  notes")
    for r in rows:
        say(f"{r.what:<44} {fmt(r.ours_s):>9} {fmt(r.naive_s):>9} {r.ratio():>10}  {r.ours_note}"
            + (f" | naive: {r.naive_note}" if r.naive_note else ""))
    say(f"(one street: {street}; budgets: heatmap < 3 s and < 3 MB, street < 1 s, tiles p50 < 20 ms "
        "and p99 < 100 ms, statistics and dashboard < 2 s, re-tag < 60 s)")
