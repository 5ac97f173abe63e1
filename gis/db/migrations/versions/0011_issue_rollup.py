"""issue rollup: exact counts of issues by year, grid, cell, category and status, kept by
triggers, for the heatmap, the statistics and the dashboard at city scale

- ``issue_rollup_reference``: one row, the cell grid of the rollup: its latitude of reference
  (``lat0``), its base cell size in metres and the steps in degrees of that cell (``dx``, ``dy``;
  a cell is ``floor(lon / dx), floor(lat / dy)``, anchored at lon/lat 0).
- ``issue_rollup_grids(year, grid_id, category, status)``: ``n`` issues, ``rated`` (closed with
  a due time) and ``on_time`` (closed by it). ``grid_id`` 0 stands for no grid.
- ``issue_rollup_cells(year, cx, cy, category, status)``: located issues per base cell, ``n``
  and the sums of their positions in 1e-7 degrees (``sx``, ``sy``), exact integers.
- ``issue_rollup_weeks(week, cx, cy, category, status)``: the same per week (counted from Monday
  1992-01-06 Beijing time) and per cell of ``WEEK_FACTOR`` base cells on a side.

Years are Beijing calendar years of ``reported_at`` (their first day). A row trigger adds each inserted
issue (one upsert per table, tables in this order); statement triggers on UPDATE and DELETE add
each statement's changes per key, one upsert per key in (table, key) order, so that two
statements never wait for each other's rows in opposite orders, and remove rows whose count
falls to zero; TRUNCATE empties the rollup. Also two partial indexes: the issues whose time runs
(gis.rules.UNTIMED_STATUSES left out) by due time, since overdue depends on now() and is counted
from them, not rolled up; and the closed issues by closing time (the dashboard's closures of a
period).

The expressions are gis.queries.rollup's, written out here as history; a property test checks
that the triggers keep the tables equal to gis.queries.rollup.check's scan.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-24 10:00:00
"""

import math
import re

from alembic import op
from sqlalchemy import text

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# History: the values at the time of this migration (gis.rules.BEIJING_TZ_NAME, FINAL_STATUSES,
# UNTIMED_STATUSES, CLOSED_STATUS; gis.queries.rollup.WEEK_FACTOR, COORD_UNITS, MONDAY_0_EPOCH).
TZ = "Asia/Shanghai"
UNTIMED = "('closed', 'rejected', 'on_hold')"
WEEK_FACTOR = 8
COORD_UNITS = "1e7"
MONDAY_0_EPOCH = 694627200  # 1992-01-06 00:00 +08:00
DEFAULT_LAT0 = 36.84
BASE_CELL_M = 10.0

YEAR = f"date_trunc('year', t.reported_at AT TIME ZONE '{TZ}')::date"
WEEK = f"floor((date_part('epoch', t.reported_at) - {MONDAY_0_EPOCH}) / 604800)::int"
GRID = "coalesce(t.grid_id, 0)"
RATED = "(t.status = 'closed' AND t.due_at IS NOT NULL)"
ON_TIME = f"(({RATED} AND t.closed_at <= t.due_at) IS TRUE)"
CX, CY = "floor(t.lon / ref.dx)::bigint", "floor(t.lat / ref.dy)::bigint"
WCX = f"floor(t.lon / (ref.dx * {WEEK_FACTOR}))::bigint"
WCY = f"floor(t.lat / (ref.dy * {WEEK_FACTOR}))::bigint"
UNITS_X, UNITS_Y = f"round(t.lon * {COORD_UNITS})::bigint", f"round(t.lat * {COORD_UNITS})::bigint"

# (table, key columns and their expressions, value columns and their expressions, only located)
TABLES = (
    ("issue_rollup_grids",
     (("year", YEAR), ("grid_id", GRID), ("category", "t.category"), ("status", "t.status")),
     (("n", "1"), ("rated", f"{RATED}::int"), ("on_time", f"{ON_TIME}::int")), False),
    ("issue_rollup_cells",
     (("year", YEAR), ("cx", CX), ("cy", CY), ("category", "t.category"),
      ("status", "t.status")),
     (("n", "1"), ("sx", UNITS_X), ("sy", UNITS_Y)), True),
    ("issue_rollup_weeks",
     (("week", WEEK), ("cx", WCX), ("cy", WCY), ("category", "t.category"),
      ("status", "t.status")),
     (("n", "1"), ("sx", UNITS_X), ("sy", UNITS_Y)), True),
)
# The columns whose change can move an issue between keys or change a value.
KEYED = ("status", "category", "grid_id", "reported_at", "lon", "lat", "due_at", "closed_at")


def _rows(source: str, sign: str, keys, values, located: bool) -> str:
    """Key and signed value columns of the issues in ``source`` (a transition table)."""
    cols = [f"{expr} AS {name}" for name, expr in keys]
    cols += [f"{sign} * ({expr}) AS {name}" for name, expr in values]
    where = "WHERE t.lon IS NOT NULL" if located else ""
    return (f"SELECT {', '.join(cols)} FROM {source} t "
            f"CROSS JOIN issue_rollup_reference ref {where}")


def _apply(table: str, keys, values, located: bool, sources: list[tuple[str, str]],
           drop_zero: bool) -> str:
    """Add the changes to ``table``: one upsert per key in key order, then drop emptied keys."""
    knames = [k for k, _ in keys]
    vnames = [v for v, _ in values]
    union = " UNION ALL ".join(_rows(s, sign, keys, values, located) for s, sign in sources)
    klist = ", ".join(knames)
    sums = ", ".join(f"sum({v})" for v in vnames)
    nonzero = " OR ".join(f"sum({v}) <> 0" for v in vnames)
    upsert = f"""
        INSERT INTO {table} AS r ({klist}, {', '.join(vnames)})
        SELECT {klist}, {sums} FROM ({union}) c GROUP BY {klist} HAVING {nonzero}
         ORDER BY {klist}
        ON CONFLICT ({klist}) DO UPDATE SET
            {', '.join(f'{v} = r.{v} + excluded.{v}' for v in vnames)}"""
    if not drop_zero:
        return upsert + ";"
    # Each emptied key is deleted by its primary key (a join with the transition tables would be
    # planned blind, as a scan of the whole rollup table).
    matched = " AND ".join(f"{k} = emptied.{k}" for k in knames)
    return f"""
        FOR emptied IN {upsert} RETURNING {', '.join(f'r.{k}' for k in knames)}, r.n LOOP
            IF emptied.n = 0 THEN
                DELETE FROM {table} WHERE {matched};
            END IF;
        END LOOP;"""


def _function(name: str, sources: list[tuple[str, str]], drop_zero: bool, guard: str = "") -> str:
    body = "".join(_apply(t, k, v, located, sources, drop_zero) for t, k, v, located in TABLES)
    return f"""
        CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            emptied record;
        BEGIN
            {guard}
            {body}
            RETURN NULL;
        END $$"""


def _insert_row_function() -> str:
    """A report adds one issue: one upsert per table, with the values of NEW (a row trigger
    costs a report about half of what a statement trigger with transition tables does)."""
    body = ["SELECT * INTO ref FROM issue_rollup_reference WHERE id = 1;"]
    for table, keys, values, located in TABLES:
        knames, vnames = [k for k, _ in keys], [v for v, _ in values]
        exprs = [re.sub(r"\bt\.", "NEW.", e) for _, e in (*keys, *values)]
        upsert = f"""
            INSERT INTO {table} AS r ({', '.join(knames + vnames)}) VALUES ({', '.join(exprs)})
            ON CONFLICT ({', '.join(knames)}) DO UPDATE SET
                {', '.join(f'{v} = r.{v} + excluded.{v}' for v in vnames)};"""
        body.append(f"IF NEW.lon IS NOT NULL THEN {upsert} END IF;" if located else upsert)
    return f"""
        CREATE FUNCTION gridmap_rollup_insert() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            ref issue_rollup_reference;
        BEGIN
            {' '.join(body)}
            RETURN NULL;
        END $$"""


CHANGED = " OR ".join(f"o.{c} IS DISTINCT FROM n.{c}" for c in KEYED)
UPDATE_GUARD = f"""IF NOT EXISTS (SELECT 1 FROM old_rows o JOIN new_rows n ON n.id = o.id
                                   WHERE {CHANGED}) THEN
                RETURN NULL;
            END IF;"""


def _create_tables() -> None:
    op.execute("""
        CREATE TABLE issue_rollup_reference (
            id integer PRIMARY KEY DEFAULT 1 CONSTRAINT issue_rollup_reference_single_row
                CHECK (id = 1),
            lat0 double precision NOT NULL,
            base_cell_m double precision NOT NULL CHECK (base_cell_m > 0),
            dx double precision NOT NULL CHECK (dx > 0),
            dy double precision NOT NULL CHECK (dy > 0)
        )""")
    category_status = "category varchar(32) NOT NULL, status varchar(16) NOT NULL"
    op.execute(f"""
        CREATE TABLE issue_rollup_grids (
            year date NOT NULL, grid_id integer NOT NULL, {category_status},
            n bigint NOT NULL, rated bigint NOT NULL, on_time bigint NOT NULL,
            PRIMARY KEY (year, grid_id, category, status)
        )""")
    for table, bucket in (("issue_rollup_cells", "year date"), ("issue_rollup_weeks",
                                                                   "week integer")):
        op.execute(f"""
            CREATE TABLE {table} (
                {bucket} NOT NULL, cx bigint NOT NULL, cy bigint NOT NULL, {category_status},
                n bigint NOT NULL, sx bigint NOT NULL, sy bigint NOT NULL,
                PRIMARY KEY ({bucket.split()[0]}, cx, cy, category, status)
            )""")


def _reference() -> None:
    conn = op.get_bind()
    lat0 = conn.execute(text("""
        SELECT (ST_YMin(e) + ST_YMax(e)) / 2 FROM (
            SELECT ST_Extent(geom) AS e FROM grids WHERE valid_to IS NULL) x""")).scalar()
    lat0 = DEFAULT_LAT0 if lat0 is None else float(lat0)
    phi = math.radians(lat0)  # metres per degree on the WGS84 ellipsoid (gis.queries.rollup)
    m_lat = 111132.954 - 559.822 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi)
    m_lon = 111412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi)
    conn.execute(text("""INSERT INTO issue_rollup_reference (id, lat0, base_cell_m, dx, dy)
                         VALUES (1, :lat0, :b, :dx, :dy)"""),
                 {"lat0": lat0, "b": BASE_CELL_M, "dx": BASE_CELL_M / m_lon,
                  "dy": BASE_CELL_M / m_lat})


def upgrade() -> None:
    _create_tables()
    _reference()
    op.execute(f"""CREATE INDEX issues_timed_due_idx ON issues (due_at)
                   WHERE status NOT IN {UNTIMED}""")
    op.execute("CREATE INDEX issues_closed_at_idx ON issues (closed_at) WHERE status = 'closed'")
    op.execute(_insert_row_function())
    op.execute(_function("gridmap_rollup_update", [("new_rows", "1"), ("old_rows", "-1")],
                         drop_zero=True, guard=UPDATE_GUARD))
    op.execute(_function("gridmap_rollup_delete", [("old_rows", "-1")], drop_zero=True))
    op.execute("""
        CREATE FUNCTION gridmap_rollup_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            TRUNCATE issue_rollup_grids, issue_rollup_cells, issue_rollup_weeks;
            RETURN NULL;
        END $$""")
    op.execute("""CREATE TRIGGER issues_rollup_insert AFTER INSERT ON issues
                  FOR EACH ROW EXECUTE FUNCTION gridmap_rollup_insert()""")
    for op_name, ref in (("update", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
                         ("delete", "OLD TABLE AS old_rows")):
        op.execute(f"""CREATE TRIGGER issues_rollup_{op_name} AFTER {op_name.upper()} ON issues
                       REFERENCING {ref} FOR EACH STATEMENT
                       EXECUTE FUNCTION gridmap_rollup_{op_name}()""")
    op.execute("""CREATE TRIGGER issues_rollup_truncate AFTER TRUNCATE ON issues
                  FOR EACH STATEMENT EXECUTE FUNCTION gridmap_rollup_truncate()""")
    # What is there already: the insert trigger's sums over every issue.
    for table, keys, values, located in TABLES:
        op.execute(_apply(table, keys, values, located, [("issues", "1")], drop_zero=False))


def downgrade() -> None:
    for name in ("insert", "update", "delete", "truncate"):
        op.execute(f"DROP TRIGGER IF EXISTS issues_rollup_{name} ON issues")
        op.execute(f"DROP FUNCTION IF EXISTS gridmap_rollup_{name}()")
    op.execute("DROP INDEX IF EXISTS issues_timed_due_idx")
    op.execute("DROP INDEX IF EXISTS issues_closed_at_idx")
    for table in ("issue_rollup_weeks", "issue_rollup_cells", "issue_rollup_grids",
                  "issue_rollup_reference"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
