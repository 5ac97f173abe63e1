"""Tagging stored rows with their grid, with the same in-memory index that tags live reports.

Used after a demo load, an import, or a redraw of grids (`gridmap assign`). Rows are read in
batches by id (keyset), located vectorised, and written back through a temporary table, so a
million issues cost a few round trips, not a million UPDATEs.
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

from gis.geo.grid_index import METHODS, GridIndex
from gis.rules import DEFAULT_TOLERANCE_M, open_sql


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


def load_current_grids(conn: Connection | Session,
                       tolerance_m: float = DEFAULT_TOLERANCE_M) -> CurrentGrids:
    """Build a GridIndex over the current grids, stamped with the database's grid version."""
    version = conn.execute(text("SELECT version FROM grid_index_state WHERE id = 1")).scalar_one()
    rows = conn.execute(text(
        "SELECT id, code, version, ST_AsBinary(geom) FROM grids WHERE valid_to IS NULL ORDER BY code"
    )).all()
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
        total = conn.execute(text(f"SELECT count(*) FROM {table} t WHERE {where}"),
                             params).scalar_one()
    bar = _progress(total, table, progress)
    for rows in _read_batches(conn, table, scope, batch_size):
        _write_batch(conn, table, grids, rows, report, record_events)
        bar.update(len(rows))
    bar.close()
    return report


def _read_batches(conn: Connection, table: str, scope: _Scope, batch_size: int):
    """The rows in scope as (id, lon, lat, grid_id) object arrays of ``batch_size``, by id."""
    where, params = scope.where(table)
    last_id = 0
    while True:
        rows = conn.execute(text(
            f"SELECT t.id, ST_X(t.geom), ST_Y(t.geom), t.grid_id FROM {table} t "
            f"WHERE {where} AND t.id > :last ORDER BY t.id LIMIT :n"
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
    hit = found.position >= 0
    new = np.where(hit, grids.ids[np.maximum(found.position, 0)], -1)
    version = np.where(hit, grids.versions[np.maximum(found.position, 0)], -1)
    methods = np.asarray(METHODS, dtype=object)[found.method]
    report.scanned += len(ids)
    report.methods.update(methods.tolist())
    _stage(conn, ids, new, version, methods, found.distance_m)
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


def _assign_buildings(conn: Connection, community: str | None) -> TableReport:
    """A building belongs to the current grid that holds most of its area."""
    filter_sql = ""
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
    scanned = conn.execute(text("SELECT count(*) FROM buildings")).scalar_one()
    return TableReport(scanned=scanned, changed=changed)


def _progress(total: int | None, label: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="rows", disable=not enabled)
