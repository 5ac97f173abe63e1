"""The issue rollup (migration 0011): exact counts of issues, kept by triggers, that the heatmap,
the statistics and the dashboard read instead of scanning every issue.

Three tables, each keyed for the view that reads it (see docs/ARCHITECTURE.md, "The issue
rollup"), all with ``category`` and ``status`` in the key:

* ``issue_rollup_grids(year, grid_id, category, status)``: ``n``, ``rated``, ``on_time``
  (:func:`gis.rules.rated_sql`, :func:`gis.rules.on_time_sql`); ``grid_id`` 0 is no grid;
* ``issue_rollup_cells(year, cx, cy, category, status)``: located issues per cell of the base
  size, ``n`` and the sums of their positions in 1e-7 degrees (:data:`COORD_UNITS`: integers, so
  a sum is the same in whatever order it is added, and the rollup gives the very numbers a scan
  gives);
* ``issue_rollup_weeks(week, cx, cy, category, status)``: the same per week (counted from
  :data:`MONDAY_0`) and per cell of :data:`WEEK_FACTOR` base cells on a side.

Years are Beijing calendar years of the report time: at city scale (40,000 grids, 10 million
cases over three years) a grid has about 80 cases a year, spread over a dozen categories and a
few statuses, so finer buckets would hold little more than one case a row; the views that must
be fast (the city with its filters off, or by category or status) read whole years, and a
shorter range scans its own cases through the index. A filter's time range is answered by
the whole buckets inside it from the rollup and by scans of the partial buckets at its edges
(through ``issues_reported_at_idx``); overdue depends on now(), so it is counted from the issues
whose time runs (``issues_timed_due_idx``). A filter the keys cannot express (free text, a
bounding box, ids, a department's scope) is scanned as before.

**The cell grid.** A cell of ``s`` metres is ``floor(lon / dx), floor(lat / dy)`` with
``dx, dy`` the steps of ``s`` at the reference latitude :attr:`CellGrid.lat0` (one per database,
in ``issue_rollup_reference``), anchored at lon/lat 0. Sizes are ``MIN_CELL_M * 2**k``, so the
steps of a size are those of the base times a power of two, exactly in floating point, and the
cell of size ``base * 2**k`` is the base cell shifted right by ``k`` bits, the same cell a scan
at that size finds. Views finer than the base scan.

**The triggers** (migrations 0011, 0013, 0016; per statement since 0017): an INSERT, UPDATE or
DELETE statement adds its changes per key, one upsert per key in (table, key) order, and drops
keys whose count falls to zero. Two sessions adding to one key both count (``ON CONFLICT DO
UPDATE`` waits for the other's row), and since every statement takes the rollup rows in that
one order (the triggers' names keep the tables in one order for every event), batches of
reports, multi-row updates (re-tagging, bulk moves) and deletes never deadlock with each other.
A bulk load is faster with the triggers off and a rebuild (below).

**After a bulk load** with the triggers off (``SET session_replication_role = replica`` or
``ALTER TABLE issues DISABLE TRIGGER USER``), call :func:`rebuild`; :func:`check` lists what
differs between the rollup and a scan (empty when exact).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pandas as pd
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from gis.queries.filters import IssueFilter, Where, start_of
from gis.queries.reads import ScopedFilter
from gis.rules import (
    BEIJING,
    BEIJING_OFFSET,
    BEIJING_TZ_NAME,
    REGION_ROLES,
    closed_sql,
    hours_to_close_sql,
    on_time_sql,
    rated_sql,
)

# -- the keys -------------------------------------------------------------------------------------
# Weeks are counted in whole seconds from a local Monday midnight, which costs far less per row
# than date_trunc('week', ... AT TIME ZONE ...); exact because Beijing time is a fixed offset.
MONDAY_0 = datetime(1992, 1, 6, tzinfo=BEIJING_OFFSET)
MONDAY_0_EPOCH = int(MONDAY_0.timestamp())
WEEK_S = 7 * 24 * 3600
COORD_UNITS = 10_000_000  # positions are summed in 1e-7 degrees (about a centimetre)
WEEK_FACTOR = 8  # a weekly cell is 8 x 8 base cells
NO_GRID = 0  # grid_id of the issues in no grid
MIN_CELL_M = 10.0  # cell sizes are MIN_CELL_M * 2**k metres
HEAT_CELL_BUDGET = 25_000  # cells the heatmap ships to the page (~25 bytes each)
DEFAULT_LAT0 = 36.84
# The count tables (values summed per key); issue_rollup_grid_totals is migration 0013's.
TABLES = ("issue_rollup_grids", "issue_rollup_cells", "issue_rollup_weeks",
          "issue_rollup_grid_totals")
CLOSINGS = "issue_rollup_closings"  # per grid, its closed cases' hours to close (0013)
DAYS = "issue_rollup_days"  # per (day, category, status): counts and sorted hours to close (0016)


def year_sql(t: str = "i") -> str:
    """The Beijing calendar year (its first day) of the report time of the row ``t``."""
    return f"date_trunc('year', {t}.reported_at AT TIME ZONE '{BEIJING_TZ_NAME}')::date"


def day_sql(t: str = "i") -> str:
    """The Beijing calendar day of the report time of the row ``t``."""
    return f"({t}.reported_at AT TIME ZONE '{BEIJING_TZ_NAME}')::date"


def week_sql(t: str = "i") -> str:
    """The week of the report time of ``t``, counted from :data:`MONDAY_0`."""
    return f"floor((date_part('epoch', {t}.reported_at) - {MONDAY_0_EPOCH}) / {WEEK_S})::int"


def cell_sql(t: str, axis: str, step: str) -> str:
    """The cell index along ``axis`` (``lon`` or ``lat``) of ``t`` for a step of ``step`` degrees."""
    return f"floor({t}.{axis} / {step})::bigint"


def units_sql(t: str, axis: str) -> str:
    """The position of ``t`` along ``axis`` in :data:`COORD_UNITS` (an integer)."""
    return f"round({t}.{axis} * 1e7)::bigint"


def closing_sql(t: str = "i") -> str:
    """``t`` has a time to close: closed, with a closing time (what the closings hold)."""
    return f"({closed_sql(t)} AND {t}.closed_at IS NOT NULL)"


def week_start(index: int) -> date:
    """The Monday (a local date) that starts week ``index`` counted from :data:`MONDAY_0`."""
    return MONDAY_0.date() + timedelta(weeks=int(index))


# -- the cell grid --------------------------------------------------------------------------------
def metres_per_degree(lat: float) -> tuple[float, float]:
    """(metres per degree of longitude, of latitude) at ``lat`` on the WGS84 ellipsoid."""
    phi = math.radians(lat)
    m_lat = 111132.954 - 559.822 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi)
    m_lon = 111412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi)
    return m_lon, m_lat


def pick_cell_size(area_m2: float, max_points: int, budget: float,
                   start: float = MIN_CELL_M) -> float:
    """The smallest ``start * 2**k`` metres whose cells over ``area_m2`` (at most one per point)
    fit ``budget``."""
    size = start
    while min(area_m2 / (size * size), max_points) > max(budget, 1) and size < 1e6:
        size *= 2
    return size


@dataclass(frozen=True)
class CellGrid:
    """The database's cell grid: the reference latitude, the base size (metres) and its steps
    (degrees)."""

    lat0: float
    base_cell_m: float
    dx: float
    dy: float

    @classmethod
    def at(cls, lat0: float, base_cell_m: float) -> CellGrid:
        m_lon, m_lat = metres_per_degree(lat0)
        return cls(lat0, base_cell_m, base_cell_m / m_lon, base_cell_m / m_lat)

    def steps(self, cell_m: float) -> tuple[float, float]:
        """The steps in degrees of cells of ``cell_m`` metres (a power of two times the base:
        exact)."""
        ratio = cell_m / self.base_cell_m
        if ratio <= 0 or math.log2(ratio) != round(math.log2(ratio)):
            raise ValueError(f"cell size {cell_m} m is not the base {self.base_cell_m} m times a "
                             "power of two")
        return self.dx * ratio, self.dy * ratio

    def shift(self, cell_m: float, factor: int = 1) -> int | None:
        """``k`` where ``cell_m`` is ``factor`` base cells times ``2**k`` (k >= 0), else None."""
        ratio = cell_m / (self.base_cell_m * factor)
        if ratio < 1:
            return None
        k = round(math.log2(ratio))
        return k if 2.0 ** k == ratio else None


def cell_grid(session: Session | Connection) -> CellGrid:
    row = session.execute(text(
        "SELECT lat0, base_cell_m, dx, dy FROM issue_rollup_reference WHERE id = 1")).one()
    return CellGrid(*row)


# -- whole buckets of a time range ----------------------------------------------------------------
@dataclass(frozen=True)
class Buckets:
    """The whole buckets ``[first, after)`` inside a time range (None: unbounded on that side)
    and the instants ``[lo, hi)`` they cover; the rest of the range is scanned."""

    kind: str  # year | week | day
    first: date | int | None
    after: date | int | None
    lo: datetime | None
    hi: datetime | None

    def where(self, r: str = "r") -> Where:
        """Conditions on a rollup row ``r``: in the whole buckets."""
        where = Where()
        if self.first is not None:
            where.add(f"{r}.{self.kind} >= :b_first", b_first=self.first)
        if self.after is not None:
            where.add(f"{r}.{self.kind} < :b_after", b_after=self.after)
        return where

    def inside_sql(self, t: str = "i") -> tuple[str, dict]:
        """A condition on an issue ``t``: reported inside the whole buckets."""
        conds, params = ["TRUE"], {}
        if self.lo is not None:
            conds.append(f"{t}.reported_at >= :b_lo")
            params["b_lo"] = self.lo
        if self.hi is not None:
            conds.append(f"{t}.reported_at < :b_hi")
            params["b_hi"] = self.hi
        return " AND ".join(conds), params

    def outside_sql(self, t: str = "i") -> list[str]:
        """Conditions on ``t``, any of which puts it outside the whole buckets (params of
        :meth:`inside_sql`)."""
        out = []
        if self.lo is not None:
            out.append(f"{t}.reported_at < :b_lo")
        if self.hi is not None:
            out.append(f"{t}.reported_at >= :b_hi")
        return out


def _year_of(moment: datetime) -> date:
    return date(moment.astimezone(BEIJING).year, 1, 1)


def _day_of(moment: datetime) -> date:
    return moment.astimezone(BEIJING).date()


def _next_year(y: date) -> date:
    return date(y.year + 1, 1, 1)


def _week_of(moment: datetime) -> int:
    return math.floor((moment - MONDAY_0) / timedelta(weeks=1))


def whole_buckets(kind: str, flt: IssueFilter) -> Buckets | None:
    """The whole years, weeks or (Beijing) days inside the filter's time range; None when there
    is none."""
    since, until = flt.since_at(), flt.until_at()
    hi = None if until is None else until + timedelta(microseconds=1)  # µs, as PostgreSQL
    if kind == "year":
        of, following, instant = _year_of, _next_year, start_of
    elif kind == "day":
        of, following, instant = _day_of, (lambda d: d + timedelta(days=1)), start_of
    else:
        of, following = _week_of, (lambda w: w + 1)

        def instant(w):
            return MONDAY_0 + timedelta(weeks=w)
    first = None
    if since is not None:
        first = of(since)
        if instant(first) < since:
            first = following(first)
    after = None if hi is None else of(hi)
    if first is not None and after is not None and first >= after:
        return None
    return Buckets(kind, first, after, None if first is None else instant(first),
                   None if after is None else instant(after))


# -- which filters the keys express ---------------------------------------------------------------
@dataclass(frozen=True)
class Scope:
    """How a filter reads on the rollup: the conditions on a rollup row (``grid_id``,
    ``category``, ``status``), whether it takes in every grid and no grid (so the cell tables,
    which have no grid, answer it), and the condition on an issue ``i`` of the cases the
    filter takes in that the rollup rows do not hold (a region's cases in no grid), if any."""

    where: Where
    everywhere: bool
    rest_sql: str | None = None


def scope_of(session: Session, flt: IssueFilter) -> Scope | None:
    """The filter on the rollup's keys, or None when they cannot express it (free text, a
    bounding box, ids, a department's or an anonymous reader's scope)."""
    if flt.bbox is not None or flt.ids or (flt.q and flt.q.strip()):
        return None
    rest = None
    plain = IssueFilter(grid=flt.grid, community=flt.community, categories=flt.categories,
                        statuses=flt.statuses)
    where = plain.where(session, "r")  # the filter's own wording, on the rollup's columns
    if isinstance(flt, ScopedFilter):
        reader = flt.reader
        if reader is None:
            if not flt.public_read:
                return None
        elif reader.role in REGION_ROLES:
            # gis.people.actors.read_scope_sql: the region's grids (any version of them), and
            # the cases in no grid inside the region, which only a scan can place.
            where.add("r.grid_id IN (SELECT sg.id FROM grids sg "
                      "WHERE sg.code = ANY(:scope_region_grids))",
                      scope_region_grids=sorted(reader.region_grid_codes))
            rest = "i.grid_id IS NULL"
        elif reader.role not in ("admin", "worker"):
            return None
    everywhere = not (flt.grid or flt.community or rest)
    return Scope(where, everywhere, rest)


# -- reading ----------------------------------------------------------------------------------------
def frame_of(rows, columns: list[str]) -> pd.DataFrame:
    """A frame of result rows. Rows as plain tuples: pandas probes each SQLAlchemy row for
    attributes it lacks, which costs seconds at a few hundred thousand rows."""
    return pd.DataFrame([tuple(r) for r in rows], columns=columns)


def int_array(values) -> str:
    """Integers as one PostgreSQL array literal ('{1,2,3}', to CAST in SQL): the driver's list
    adapter dumps each element in Python, a tenth of a second at the city's 40,000 grid ids."""
    return "{" + ",".join(str(int(v)) for v in sorted(values)) + "}"


def tuples_from(result) -> list[tuple]:
    """A statement's rows as the driver's plain tuples (see :func:`frame_from`)."""
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


def frame_from(result, columns: list[str]) -> pd.DataFrame:
    """A frame of a statement's result read from the driver's cursor as plain tuples: the
    aggregates read here hand over 10^5 rows, and a SQLAlchemy row object each costs more than
    the query (the columns are numbers and text, which the driver already converts)."""
    return pd.DataFrame(tuples_from(result), columns=columns)


def grid_counts(session: Session, scope: Scope, buckets: Buckets) -> pd.DataFrame:
    """(grid_id (None: no grid), status, reported, rated, on_time) of the rollup rows the scope
    takes in, in the whole buckets."""
    where = Where(scope.where.clauses + buckets.where().clauses,
                  scope.where.params | buckets.where().params)
    rows = session.execute(text(f"""
        SELECT nullif(r.grid_id, {NO_GRID}) AS grid_id, r.status, sum(r.n)::bigint,
               sum(r.rated)::bigint, sum(r.on_time)::bigint
          FROM issue_rollup_grids r WHERE {where.sql} GROUP BY r.grid_id, r.status"""),
        where.params).all()
    return frame_of(rows, ["grid_id", "status", "reported", "rated", "on_time"])


def grid_totals(session: Session, scope: Scope) -> pd.DataFrame:
    """(grid_id (None: no grid), status, reported, rated, on_time) over all years and
    categories (``issue_rollup_grid_totals``) of the grids the scope takes in; the scope must
    not name categories."""
    result = session.execute(text(f"""
        SELECT nullif(r.grid_id, {NO_GRID}) AS grid_id, r.status, r.n, r.rated, r.on_time
          FROM issue_rollup_grid_totals r WHERE {scope.where.sql}"""), scope.where.params)
    return frame_from(result, ["grid_id", "status", "reported", "rated", "on_time"])


def cell_sums(session: Session, scope: Scope, buckets: Buckets, shift: int, *,
              weeks: bool = False) -> pd.DataFrame:
    """(cx, cy, weight, sx, sy), with ``week`` first for ``weeks``, of the rollup's cells merged
    ``2**shift`` on a side (weekly cells: :data:`WEEK_FACTOR` base cells times that)."""
    table = "issue_rollup_weeks" if weeks else "issue_rollup_cells"
    where = Where(scope.where.clauses + buckets.where().clauses,
                  scope.where.params | buckets.where().params)
    lead, group = ("r.week, ", "1, 2, 3") if weeks else ("", "1, 2")
    result = session.execute(text(f"""
        SELECT {lead}r.cx >> :k AS cx, r.cy >> :k AS cy, sum(r.n)::bigint,
               sum(r.sx)::bigint, sum(r.sy)::bigint
          FROM {table} r WHERE {where.sql} GROUP BY {group}"""),
        where.params | {"k": shift})
    columns = (["week"] if weeks else []) + ["cx", "cy", "weight", "sx", "sy"]
    return frame_from(result, columns)


# -- rebuilding and checking -----------------------------------------------------------------------
def _sources(grid: str = "ref") -> dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]], bool]]:
    """Per table: key columns and their expressions over an issue ``t``, value columns and
    theirs, and whether only located issues count (what the migration's triggers add)."""
    rated, on_time = rated_sql("t"), on_time_sql("t")
    per_cell = [("n", "1"), ("sx", units_sql("t", "lon")), ("sy", units_sql("t", "lat"))]
    return {
        "issue_rollup_grids": (
            [("year", year_sql("t")), ("grid_id", f"coalesce(t.grid_id, {NO_GRID})"),
             ("category", "t.category"), ("status", "t.status")],
            # IS TRUE: a closed case without a closing time is not on time (NULL, as a scan's
            # FILTER takes it), and a row trigger's value must not be NULL
            [("n", "1"), ("rated", f"({rated})::int"), ("on_time", f"(({on_time}) IS TRUE)::int")],
            False),
        "issue_rollup_cells": (
            [("year", year_sql("t")), ("cx", cell_sql("t", "lon", f"{grid}.dx")),
             ("cy", cell_sql("t", "lat", f"{grid}.dy")), ("category", "t.category"),
             ("status", "t.status")], per_cell, True),
        "issue_rollup_weeks": (
            [("week", week_sql("t")),
             ("cx", cell_sql("t", "lon", f"({grid}.dx * {WEEK_FACTOR})")),
             ("cy", cell_sql("t", "lat", f"({grid}.dy * {WEEK_FACTOR})")),
             ("category", "t.category"), ("status", "t.status")], per_cell, True),
        "issue_rollup_grid_totals": (
            [("grid_id", f"coalesce(t.grid_id, {NO_GRID})"), ("status", "t.status")],
            [("n", "1"), ("rated", f"({rated})::int"), ("on_time", f"(({on_time}) IS TRUE)::int")],
            False),
    }


def _scan_sql(table: str) -> tuple[str, list[str], list[str]]:
    """The rollup ``table`` computed from the issues: SQL, key columns, value columns."""
    keys, values, located = _sources()[table]
    knames, vnames = [k for k, _ in keys], [v for v, _ in values]
    cols = [f"{e} AS {k}" for k, e in keys] + [f"sum({e})::bigint AS {v}" for v, e in values]
    where = "WHERE t.lon IS NOT NULL" if located else ""
    sql = (f"SELECT {', '.join(cols)} FROM issues t CROSS JOIN issue_rollup_reference ref "
           f"{where} GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))}")
    return sql, knames, vnames


def _bind_conn(bind: Session | Connection | Engine):
    return bind.begin() if isinstance(bind, Engine) else _Same(bind)


class _Same:
    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        return self.conn

    def __exit__(self, *exc):
        return False


def city_cell_grid(bind: Session | Connection) -> CellGrid:
    """The cell grid of the whole city: the middle latitude of the current grids, and the cell
    size the heatmap picks for all of them (so the unfiltered city view reads the base cells)."""
    row = bind.execute(text("""
        SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (
            SELECT ST_Extent(geom) AS e FROM grids WHERE valid_to IS NULL) x""")).one()
    if row[0] is None:
        return CellGrid.at(DEFAULT_LAT0, MIN_CELL_M)
    minx, miny, maxx, maxy = row
    lat0 = (miny + maxy) / 2
    m_lon, m_lat = metres_per_degree(lat0)
    area = max((maxx - minx) * m_lon * (maxy - miny) * m_lat, 1.0)
    return CellGrid.at(lat0, pick_cell_size(area, HEAT_CELL_BUDGET * 4, HEAT_CELL_BUDGET))


def rebuild(bind: Session | Connection | Engine, grid: CellGrid | None = None) -> dict[str, int]:
    """Recompute the whole rollup from the issues (one statement per table), on the cell grid
    ``grid`` (default: :func:`city_cell_grid`); returns the rows per table. Call it after loading
    issues with the triggers off; it locks the issues against writes while it runs."""
    with _bind_conn(bind) as conn:
        grid = grid or city_cell_grid(conn)
        conn.execute(text("LOCK TABLE issues IN SHARE MODE"))
        conn.execute(text("""UPDATE issue_rollup_reference SET lat0 = :lat0, base_cell_m = :b,
                                  dx = :dx, dy = :dy WHERE id = 1"""),
                     {"lat0": grid.lat0, "b": grid.base_cell_m, "dx": grid.dx, "dy": grid.dy})
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)}, {CLOSINGS}, {DAYS}"))
        counts = {}
        for table in TABLES:
            sql, knames, vnames = _scan_sql(table)
            counts[table] = conn.execute(text(
                f"INSERT INTO {table} ({', '.join(knames + vnames)}) {sql}")).rowcount
        counts[CLOSINGS] = conn.execute(text(
            f"INSERT INTO {CLOSINGS} (grid_id, {', '.join(CLOSING_COLUMNS)}) "
            f"{_closings_scan_sql()}")).rowcount
        counts[DAYS] = conn.execute(text(
            f"INSERT INTO {DAYS} (day, category, status, {', '.join(DAY_COLUMNS)}) "
            f"{_days_scan_sql()}")).rowcount
        for table in (*TABLES, CLOSINGS, DAYS):
            conn.execute(text(f"ANALYZE {table}"))
        return counts


def check(bind: Session | Connection | Engine) -> list[dict]:
    """What differs between the rollup and a scan of the issues: one dict per key that differs
    (``table``, the key, ``stored`` and ``scanned`` values, None where absent). Empty when the
    rollup is exact."""
    out = []
    with _bind_conn(bind) as conn:
        for table in TABLES:
            sql, knames, vnames = _scan_sql(table)
            keys = ", ".join(knames)
            stored = ", ".join(f"r.{v}" for v in vnames)
            scanned = ", ".join(f"s.{v}" for v in vnames)
            rows = conn.execute(text(f"""
                SELECT {', '.join(f'coalesce(r.{k}, s.{k}) AS {k}' for k in knames)},
                       CASE WHEN r.n IS NULL THEN NULL ELSE ARRAY[{stored}] END AS stored,
                       CASE WHEN s.n IS NULL THEN NULL ELSE ARRAY[{scanned}] END AS scanned
                  FROM {table} r FULL JOIN ({sql}) s USING ({keys})
                 WHERE ROW({stored}) IS DISTINCT FROM ROW({scanned})
                 ORDER BY {keys}""")).mappings().all()
            out += [{"table": table, **{k: r[k] for k in knames},
                     "stored": _named(vnames, r["stored"]), "scanned": _named(vnames, r["scanned"])}
                    for r in rows]
        out += _check_closings(conn)
        out += _check_days(conn)
    return out


CLOSING_COLUMNS = ("n", "ids", "hours", "reported", "categories")


def _closings_scan_sql() -> str:
    """The closings computed from the issues: per grid (0: none), its closed cases with a
    closing time as arrays sorted by (hours, id)."""
    order = "ORDER BY t.hours, t.id"
    return f"""
        SELECT t.grid_id, count(*)::int, array_agg(t.id {order}), array_agg(t.hours {order}),
               array_agg(t.reported_at {order}), array_agg(t.category {order})
          FROM (SELECT coalesce(i.grid_id, {NO_GRID}) AS grid_id, i.id, i.reported_at,
                       i.category, {hours_to_close_sql('i')} AS hours
                  FROM issues i WHERE {closing_sql('i')}) t
         GROUP BY t.grid_id"""


def _check_closings(conn) -> list[dict]:
    stored = ", ".join(f"r.{c}" for c in CLOSING_COLUMNS)
    scanned = ", ".join(f"s.{c}" for c in CLOSING_COLUMNS)
    rows = conn.execute(text(f"""
        SELECT coalesce(r.grid_id, s.grid_id) AS grid_id, r.n IS NOT NULL AS has_r,
               s.n IS NOT NULL AS has_s, {', '.join(f'r.{c} AS r_{c}' for c in CLOSING_COLUMNS)},
               {', '.join(f's.{c} AS s_{c}' for c in CLOSING_COLUMNS)}
          FROM {CLOSINGS} r FULL JOIN ({_closings_scan_sql()}) s (grid_id, {', '.join(CLOSING_COLUMNS)})
               USING (grid_id)
         WHERE ROW({stored}) IS DISTINCT FROM ROW({scanned})
         ORDER BY 1""")).mappings().all()
    return [{"table": CLOSINGS, "grid_id": r["grid_id"],
             "stored": {c: r[f"r_{c}"] for c in CLOSING_COLUMNS} if r["has_r"] else None,
             "scanned": {c: r[f"s_{c}"] for c in CLOSING_COLUMNS} if r["has_s"] else None}
            for r in rows]


DAY_COLUMNS = ("n", "rated", "on_time", "hours")


def _days_scan_sql() -> str:
    """The day table computed from the issues: per (day, category, status) the counts and the
    sorted hours to close of the closed cases that have a closing time."""
    hours = f"CASE WHEN {closing_sql('i')} THEN {hours_to_close_sql('i')} END"
    return f"""
        SELECT {day_sql('i')} AS day, i.category, i.status, count(*)::bigint,
               count(*) FILTER (WHERE {rated_sql('i')})::bigint,
               count(*) FILTER (WHERE {on_time_sql('i')})::bigint,
               coalesce(array_agg({hours} ORDER BY {hours}) FILTER (WHERE {closing_sql('i')}),
                        '{{}}')
          FROM issues i GROUP BY 1, 2, 3"""


def _check_days(conn) -> list[dict]:
    keys = ("day", "category", "status")
    stored = ", ".join(f"r.{c}" for c in DAY_COLUMNS)
    scanned = ", ".join(f"s.{c}" for c in DAY_COLUMNS)
    rows = conn.execute(text(f"""
        SELECT {', '.join(f'coalesce(r.{k}, s.{k}) AS {k}' for k in keys)},
               r.n IS NOT NULL AS has_r, s.n IS NOT NULL AS has_s,
               {', '.join(f'r.{c} AS r_{c}' for c in DAY_COLUMNS)},
               {', '.join(f's.{c} AS s_{c}' for c in DAY_COLUMNS)}
          FROM {DAYS} r FULL JOIN ({_days_scan_sql()}) s ({', '.join(keys + DAY_COLUMNS)})
               USING ({', '.join(keys)})
         WHERE ROW({stored}) IS DISTINCT FROM ROW({scanned})
         ORDER BY 1, 2, 3""")).mappings().all()
    return [{"table": DAYS, **{k: r[k] for k in keys},
             "stored": {c: r[f"r_{c}"] for c in DAY_COLUMNS} if r["has_r"] else None,
             "scanned": {c: r[f"s_{c}"] for c in DAY_COLUMNS} if r["has_s"] else None}
            for r in rows]


def _named(names: list[str], values) -> dict | None:
    return None if values is None else dict(zip(names, values, strict=True))


def sizes(bind: Session | Connection | Engine) -> dict[str, int]:
    """Rows per rollup table."""
    with _bind_conn(bind) as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in (*TABLES, CLOSINGS, DAYS)}
