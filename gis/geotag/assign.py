"""Tagging stored rows with their grid, with the same in-memory index that tags live reports.

Used after a demo load, an import, or a redraw of grids (`gridmap assign`). Rows are read in
batches by id (keyset), located vectorised, and written back through a temporary table, so a
million issues cost a few round trips, not a million UPDATEs.

After some grids are redrawn, :func:`assign_changed` re-tags only the rows whose answer can
change, with the same result as :func:`assign_stored_rows`: a point's grid depends only on the
grids within the tolerance of it ("The grid-assignment rules" in docs/ARCHITECTURE.md), so only
points within the tolerance of an old or a new version of a changed grid can move, besides the
rows tagged to an old version. They are found through the GiST indexes, and tagged against an
index of the current grids around them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import shapely
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from gis.geo.grid_index import METHODS, GridIndex, tolerance_degrees
from gis.rules import DEFAULT_TOLERANCE_M, open_sql, world_pixel_sql


@dataclass
class TableReport:
    scanned: int = 0
    changed: int = 0
    methods: Counter = field(default_factory=Counter)


@dataclass
class AssignReport:
    grid_version: int
    tables: dict[str, TableReport] = field(default_factory=dict)


@dataclass
class CurrentGrids:
    """The current grid rows behind an index: position in the index -> database id and version."""

    index: GridIndex
    ids: np.ndarray
    versions: np.ndarray


def load_current_grids(conn: Connection | Session, tolerance_m: float = DEFAULT_TOLERANCE_M,
                       near: str = "TRUE", params: dict | None = None) -> CurrentGrids:
    """Build a GridIndex over the current grids (those matching ``near``, a condition on ``g``),
    stamped with the database's grid version."""
    version = conn.execute(text("SELECT version FROM grid_index_state WHERE id = 1")).scalar_one()
    rows = conn.execute(text(
        "SELECT g.id, g.code, g.version, ST_AsBinary(g.geom) FROM grids g "
        f"WHERE g.valid_to IS NULL AND {near} ORDER BY g.code"), params or {}).all()
    geoms = shapely.from_wkb([bytes(r[3]) for r in rows])
    index = GridIndex(geoms, [r[1] for r in rows], version=version, tolerance_m=tolerance_m)
    return CurrentGrids(index, np.array([r[0] for r in rows], dtype=np.int64),
                        np.array([r[2] for r in rows], dtype=np.int64))


def assign_stored_rows(bind: Engine | Connection, *, tolerance_m: float = DEFAULT_TOLERANCE_M,
                       include_closed: bool = False, record_events: bool = True,
                       community: str | None = None, since: datetime | None = None,
                       batch_size: int = 200_000, progress: bool = False) -> AssignReport:
    """Re-tag issues, facilities and buildings against the current grids.

    Closed and rejected issues keep the grid version they were handled under unless
    ``include_closed``. Open issues whose grid changes get an ``issue_events`` row (when
    ``record_events``) so the workers who lost or gained them can see why. "Changed" counts rows
    whose grid code changed; a row that merely moves to a new version of its grid is updated
    silently. ``bind`` is an Engine (one transaction, committed) or a Connection (the caller's).
    """
    with _transaction(bind) as conn:
        grids = load_current_grids(conn, tolerance_m)
        report = AssignReport(grid_version=grids.index.version)
        scope = _Scope(community, since, include_closed)
        report.tables["issues"] = _assign_points(conn, "issues", grids, scope, batch_size,
                                                 progress, record_events)
        report.tables["facilities"] = _assign_points(conn, "facilities", grids, scope, batch_size,
                                                     progress, False)
        report.tables["buildings"] = _assign_buildings(conn, community)
    return report


def assign_changed(bind: Engine | Connection, codes: list[str] | None = None, *,
                   since: datetime | None = None, tolerance_m: float = DEFAULT_TOLERANCE_M,
                   include_closed: bool = False, record_events: bool = True,
                   batch_size: int = 200_000, progress: bool = False) -> AssignReport:
    """Re-tag, after grids were redrawn, created or retired, only the rows that can change:
    exactly what :func:`assign_stored_rows` (with the same options) would do to rows tagged
    before the change.

    The changed grids are those with a code in ``codes``, or with a version that started or
    ended at or after ``since`` (then versions closed before ``since`` are left out). A row can
    change only if its point is within the tolerance of one of their versions (old or new), or
    if it is tagged to one of them; a building, if its box overlaps one of them. ``scanned``
    counts those candidates.
    """
    if codes is None and since is None:
        raise ValueError("assign_changed needs the changed grids' codes or a time they changed since")
    with _transaction(bind) as conn, _index_lookups(conn):
        pad = _stage_changed_grids(conn, codes, since, tolerance_m)
        if pad is None:  # no such grid
            version = conn.execute(text("SELECT version FROM grid_index_state WHERE id = 1")).scalar_one()
            return AssignReport(grid_version=version, tables={
                t: TableReport() for t in ("issues", "facilities", "buildings")})
        # Current grids that a candidate point can be tagged to lie within the tolerance of it,
        # so within twice the search width of a changed version.
        grids = load_current_grids(conn, tolerance_m, "g.id IN (SELECT n.id FROM _changed c "
                                   "JOIN grids n ON n.geom && c.near)")
        report = AssignReport(grid_version=grids.index.version)
        scope = _Scope(None, None, include_closed, candidates=True)
        for table, events in (("issues", record_events), ("facilities", False)):
            _stage_candidates(conn, table, scope, pad)
            report.tables[table] = _assign_points(conn, table, grids, scope, batch_size, progress,
                                                  events)
        _stage_building_candidates(conn)
        report.tables["buildings"] = _assign_buildings(conn, None, candidates=True)
    return report


@contextmanager
def _index_lookups(conn: Connection) -> Iterator[None]:
    """Join the few staged rows to the big tables by their keys: with tens of thousands of rows
    staged, the planner would rather walk a whole primary key (a merge join) or scan the table
    (a hash join), several times slower. The settings are restored afterwards (after an error
    the transaction's rollback restores them)."""
    names = ("enable_mergejoin", "enable_hashjoin")
    before = {n: conn.execute(text("SELECT current_setting(:n)"), {"n": n}).scalar_one() for n in names}
    for name in names:
        conn.execute(text("SELECT set_config(:n, 'off', true)"), {"n": name})
    yield
    for name, value in before.items():
        conn.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})


def _stage_changed_grids(conn: Connection, codes: list[str] | None, since: datetime | None,
                         tolerance_m: float) -> float | None:
    """Every version of the changed grids in the temporary table _changed(id, geom); returns the
    search width in degrees around them (None when there is none)."""
    if codes is None:
        which, params = ("code IN (SELECT code FROM grids WHERE valid_from >= :since "
                         "OR valid_to >= :since) AND (valid_to IS NULL OR valid_to >= :since)",
                         {"since": since})
    else:
        which, params = "code = ANY(:codes)", {"codes": list(codes)}
        if since is not None:
            which += " AND (valid_to IS NULL OR valid_to >= :since)"
            params["since"] = since
    conn.execute(text("CREATE TEMP TABLE IF NOT EXISTS _changed (id bigint PRIMARY KEY, "
                      "geom geometry, near geometry, wx0 int, wy0 int, wx1 int, wy1 int) "
                      "ON COMMIT DROP"))
    conn.execute(text("TRUNCATE _changed"))
    conn.execute(text(f"INSERT INTO _changed (id, geom) SELECT id, geom FROM grids WHERE {which}"),
                 params)
    south, north = conn.execute(text(
        "SELECT min(ST_YMin(geom)), max(ST_YMax(geom)) FROM _changed")).one()
    if south is None:
        return None
    pad = tolerance_degrees(tolerance_m, south, north)
    # near: the box of the grids a candidate can be tagged to; wx0..wy1: the world pixels
    # (issues.wx, wy) of the box of the candidates
    corner = "ST_SetSRID(ST_MakePoint(ST_X{}(b), ST_Y{}(b)), 4326)"
    conn.execute(text(f"""
        UPDATE _changed SET near = ST_Expand(geom, 2 * :pad),
               wx0 = {world_pixel_sql("x", corner.format("Min", "Max"))},
               wy0 = {world_pixel_sql("y", corner.format("Min", "Max"))},
               wx1 = {world_pixel_sql("x", corner.format("Max", "Min"))},
               wy1 = {world_pixel_sql("y", corner.format("Max", "Min"))}
          FROM (SELECT id, ST_Expand(geom, :pad) AS b FROM _changed) e WHERE e.id = _changed.id"""),
        {"pad": pad})
    conn.execute(text("ANALYZE _changed"))
    return pad


def _stage_candidates(conn: Connection, table: str, scope: _Scope, pad: float) -> None:
    """The ids of ``table`` in scope within ``pad`` degrees of a changed version (the GiST index)
    or tagged to one, in the temporary table _candidates(id)."""
    where, params = scope.where(table)
    _empty_candidates(conn)
    near = f"SELECT t.id, t.geom FROM {table} t WHERE t.geom && ST_Expand(c.geom, :pad) AND {where}"
    if table == "issues" and not scope.include_closed:
        # the open issues' covering index (ix_issues_open_tiles) by world pixels, not the GiST
        # index of every issue ever reported
        near = (f"SELECT t.id, t.geom FROM issues t WHERE t.wy BETWEEN c.wy0 AND c.wy1 "
                f"AND t.wx BETWEEN c.wx0 AND c.wx1 AND {where}")
    conn.execute(text(f"""
        INSERT INTO _candidates
        SELECT t.id FROM _changed c CROSS JOIN LATERAL ({near} OFFSET 0) t
         WHERE ST_DWithin(t.geom, c.geom, :pad)
        UNION
        SELECT t.id FROM {table} t WHERE t.grid_id IN (SELECT id FROM _changed) AND {where}"""),
        params | {"pad": pad})
    conn.execute(text("ANALYZE _candidates"))


def _stage_building_candidates(conn: Connection) -> None:
    # The full re-tag weighs the current grids whose box overlaps a building's; a building whose
    # box overlaps no changed version has the same grids to weigh, and the same answer.
    _empty_candidates(conn)
    conn.execute(text("INSERT INTO _candidates SELECT DISTINCT b.id FROM _changed c "
                      "JOIN buildings b ON b.geom && c.geom"))
    conn.execute(text("ANALYZE _candidates"))


def _empty_candidates(conn: Connection) -> None:
    conn.execute(text("CREATE TEMP TABLE IF NOT EXISTS _candidates (id bigint PRIMARY KEY) "
                      "ON COMMIT DROP"))
    conn.execute(text("TRUNCATE _candidates"))


@contextmanager
def _transaction(bind: Engine | Connection) -> Iterator[Connection]:
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.begin() as conn:
            yield conn


@dataclass
class _Scope:
    community: str | None
    since: datetime | None
    include_closed: bool
    candidates: bool = False  # only the ids in the temporary table _candidates (assign_changed)

    def where(self, table: str) -> tuple[str, dict]:
        clauses, params = [], {}
        if table == "issues":  # a report waiting for its photo's location has none to tag yet
            clauses.append("t.geom IS NOT NULL")
        if table == "issues" and not self.include_closed:
            clauses.append(open_sql("t"))
        if table == "issues" and self.since is not None:
            clauses.append("t.reported_at >= :since")
            params["since"] = self.since
        if self.community:
            clauses.append(
                "ST_Intersects(t.geom, (SELECT geom FROM regions WHERE level = 'community' "
                "AND (name = :community OR code = :community) LIMIT 1))")
            params["community"] = self.community
        return (" AND ".join(clauses) or "TRUE"), params


def _assign_points(conn: Connection, table: str, grids: CurrentGrids, scope: _Scope,
                   batch_size: int, progress: bool, record_events: bool) -> TableReport:
    report = TableReport()
    total = None
    if progress:  # a full count only when someone watches the bar
        where, params = scope.where(table)
        source = f"_candidates c JOIN {table} t ON t.id = c.id" if scope.candidates else f"{table} t"
        total = conn.execute(text(f"SELECT count(*) FROM {source} WHERE {where}"),
                             params).scalar_one()
    bar = _progress(total, table, progress)
    for rows in _read_batches(conn, table, scope, batch_size):
        _write_batch(conn, table, grids, rows, report, record_events)
        bar.update(len(rows))
    bar.close()
    return report


def _read_batches(conn: Connection, table: str, scope: _Scope, batch_size: int):
    """The rows in scope as (id, lon, lat, grid_id, assignment) object arrays of ``batch_size``,
    by id."""
    where, params = scope.where(table)
    source, key = f"{table} t", "t.id"
    if scope.candidates:  # walk the few candidates, each found by its primary key
        source, key = f"_candidates c JOIN {table} t ON t.id = c.id", "c.id"
    last_id = 0
    while True:
        rows = conn.execute(text(
            f"SELECT t.id, ST_X(t.geom), ST_Y(t.geom), t.grid_id, t.assignment FROM {source} "
            f"WHERE {where} AND {key} > :last ORDER BY {key} LIMIT :n"
        ), params | {"last": last_id, "n": batch_size}).all()
        if not rows:
            return
        last_id = rows[-1][0]
        yield np.array(rows, dtype=object)


def _write_batch(conn: Connection, table: str, grids: CurrentGrids, rows: np.ndarray,
                 report: TableReport, record_events: bool) -> None:
    ids = rows[:, 0].astype(np.int64)
    lon, lat = rows[:, 1].astype(float), rows[:, 2].astype(float)
    found = grids.index.locate_many(lon, lat)
    # position -1 (unassigned) picks the -1 appended, which also serves an index of no grids
    new = np.append(grids.ids, -1)[found.position]
    version = np.append(grids.versions, -1)[found.position]
    methods = np.asarray(METHODS, dtype=object)[found.method]
    distances = found.distance_m
    report.scanned += len(ids)
    report.methods.update(methods.tolist())
    if rows.shape[1] > 4:  # the stored tag came along: stage only the rows _apply would change
        old = np.array([-1 if g is None else g for g in rows[:, 3].tolist()], dtype=np.int64)
        keep = (old != new) | (rows[:, 4] != methods)
        ids, new, version, methods, distances = (ids[keep], new[keep], version[keep],
                                                 methods[keep], distances[keep])
    _stage(conn, ids, new, version, methods, distances)
    report.changed += _count_moves(conn, table)
    if record_events and table == "issues":
        _record_moves(conn)
    _apply(conn, table)


def _stage(conn: Connection, ids, grid_ids, versions, methods, distances) -> None:
    """COPY one batch of results into a temporary table the UPDATE joins against."""
    conn.execute(text(
        "CREATE TEMP TABLE IF NOT EXISTS _assign (id bigint PRIMARY KEY, grid_id bigint, "
        "grid_version int, assignment text, distance double precision) ON COMMIT DROP"))
    conn.execute(text("TRUNCATE _assign"))
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy("COPY _assign FROM STDIN") as copy:
        for i, g, v, m, d in zip(ids.tolist(), grid_ids.tolist(), versions.tolist(),
                                 methods.tolist(), distances.tolist(), strict=True):
            copy.write_row((i, g if g >= 0 else None, v if v >= 0 else None, m,
                            None if d != d else d))
    conn.execute(text("ANALYZE _assign"))


_MOVES = """
    FROM _assign a JOIN {table} t ON t.id = a.id
    LEFT JOIN grids og ON og.id = t.grid_id
    LEFT JOIN grids ng ON ng.id = a.grid_id
   WHERE og.code IS DISTINCT FROM ng.code
"""


def _count_moves(conn: Connection, table: str) -> int:
    return conn.execute(text("SELECT count(*) " + _MOVES.format(table=table))).scalar_one()


def _record_moves(conn: Connection) -> None:
    """An event on each open issue that changes grid code, naming both grids."""
    conn.execute(text(
        "INSERT INTO issue_events (issue_id, from_status, to_status, note) "
        "SELECT t.id, t.status, t.status, '网格调整 / grid redrawn: ' || coalesce(og.code, '—') "
        "|| ' → ' || coalesce(ng.code, '—') " + _MOVES.format(table="issues")
        + f" AND {open_sql('t')}"))


def _apply(conn: Connection, table: str) -> None:
    extra = (", grid_version = a.grid_version, assignment_distance_m = a.distance"
             if table == "issues" else "")
    conn.execute(text(
        f"UPDATE {table} t SET grid_id = a.grid_id, assignment = a.assignment{extra} "
        f"FROM _assign a WHERE t.id = a.id AND (t.grid_id IS DISTINCT FROM a.grid_id "
        f"OR t.assignment IS DISTINCT FROM a.assignment)"))


def _assign_buildings(conn: Connection, community: str | None,
                      candidates: bool = False) -> TableReport:
    """A building belongs to the current grid that holds most of its area."""
    filter_sql = "AND b.id IN (SELECT id FROM _candidates)" if candidates else ""
    params = {}
    if community:
        filter_sql = ("AND ST_Intersects(b.geom, (SELECT geom FROM regions WHERE level = 'community' "
                      "AND (name = :community OR code = :community) LIMIT 1))")
        params["community"] = community
    changed = conn.execute(text(f"""
        UPDATE buildings b SET grid_id = best.grid_id
          FROM (SELECT DISTINCT ON (b.id) b.id, g.id AS grid_id
                  FROM buildings b JOIN grids g ON g.valid_to IS NULL AND g.geom && b.geom
                 WHERE TRUE {filter_sql}
                 ORDER BY b.id, ST_Area(ST_Intersection(b.geom, g.geom)) DESC, g.code) best
         WHERE b.id = best.id AND b.grid_id IS DISTINCT FROM best.grid_id
    """), params).rowcount
    scanned = conn.execute(text(
        "SELECT count(*) FROM " + ("_candidates" if candidates else "buildings"))).scalar_one()
    return TableReport(scanned=scanned, changed=changed)


def _progress(total: int | None, label: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="rows", disable=not enabled)
