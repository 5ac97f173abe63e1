"""statistics rollup: per-grid totals over all time and the closing times of each grid's closed
cases, kept by triggers, so that the city's statistics by grid read 40,000 rows, not 10 million

- ``issue_rollup_grid_totals(grid_id, status)``: ``n`` issues, ``rated`` and ``on_time`` over
  every year and category (``grid_id`` 0: no grid). The per-grid statistics without a category
  or time filter read it instead of ``issue_rollup_grids`` (2 million rows at city scale).
- ``issue_rollup_closings(grid_id)``: the grid's closed cases that have a closing time, as
  parallel arrays sorted by (hours to close, id): ``ids``, ``hours`` (the very float8 the
  statistics' median orders by), ``reported`` (report times) and ``categories``; ``n`` their
  number. The median of a grid is the middle of its ``hours``; a filter by category or time
  reads the arrays' elements.

A row trigger adds an inserted issue (one upsert on the totals; a closed one, rare on intake,
also merges into its grid's closings). Statement triggers on UPDATE and DELETE add the changes
per key in key order and drop emptied keys; the closings rows a statement touches are locked in
grid order before they are rewritten from their current contents, so concurrent statements
neither lose each other's changes nor deadlock. TRUNCATE empties both.

The expressions are gis.queries.rollup's ``STATS_TABLES`` and gis.rules' ``hours_to_close_sql``, written out
here as history; gis.queries.rollup.check compares both tables with a scan.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 12:00:00
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# History: gis.rules.rated_sql / on_time_sql / CLOSED_STATUS, gis.queries.rollup.NO_GRID and
# hours_to_close_sql at the time of this migration.
GRID = "coalesce({t}.grid_id, 0)"
RATED = "({t}.status = 'closed' AND {t}.due_at IS NOT NULL)"
ON_TIME = "(({t}.status = 'closed' AND {t}.due_at IS NOT NULL AND {t}.closed_at <= {t}.due_at) IS TRUE)"
HOURS = "(extract(epoch FROM {t}.closed_at - {t}.reported_at) / 3600)::float8"
CLOSING = "({t}.status = 'closed' AND {t}.closed_at IS NOT NULL)"
KEYED = ("status", "grid_id", "category", "reported_at", "due_at", "closed_at")
CHANGED = " OR ".join(f"o.{c} IS DISTINCT FROM n.{c}" for c in KEYED)


def _totals_rows(source: str, sign: str) -> str:
    t = "t"
    return (f"SELECT {GRID.format(t=t)} AS grid_id, t.status, {sign} AS n, "
            f"{sign} * ({RATED.format(t=t)})::int AS rated, "
            f"{sign} * ({ON_TIME.format(t=t)})::int AS on_time FROM {source} t")


def _totals_apply(sources: list[tuple[str, str]]) -> str:
    union = " UNION ALL ".join(_totals_rows(s, sign) for s, sign in sources)
    return f"""
        FOR emptied IN
            INSERT INTO issue_rollup_grid_totals AS r (grid_id, status, n, rated, on_time)
            SELECT grid_id, status, sum(n), sum(rated), sum(on_time) FROM ({union}) c
             GROUP BY grid_id, status HAVING sum(n) <> 0 OR sum(rated) <> 0 OR sum(on_time) <> 0
             ORDER BY grid_id, status
            ON CONFLICT (grid_id, status) DO UPDATE SET
                n = r.n + excluded.n, rated = r.rated + excluded.rated,
                on_time = r.on_time + excluded.on_time
            RETURNING r.grid_id, r.status, r.n
        LOOP
            IF emptied.n = 0 THEN
                DELETE FROM issue_rollup_grid_totals
                 WHERE grid_id = emptied.grid_id AND status = emptied.status;
            END IF;
        END LOOP;"""


def _closing_elements(source: str) -> str:
    t = "t"
    return (f"SELECT {GRID.format(t=t)} AS grid_id, t.id, {HOURS.format(t=t)} AS hours, "
            f"t.reported_at AS reported, t.category FROM {source} t WHERE {CLOSING.format(t=t)}")


COLUMNS = "n, ids, hours, reported, categories"
SORTED = """count(*)::int, coalesce(array_agg(e.id ORDER BY e.hours, e.id), '{}'),
            coalesce(array_agg(e.hours ORDER BY e.hours, e.id), '{}'),
            coalesce(array_agg(e.reported ORDER BY e.hours, e.id), '{}'),
            coalesce(array_agg(e.category ORDER BY e.hours, e.id), '{}')"""
ELEMENTS = "AS e(id, hours, reported, category)"


def _closings_apply(gone: str | None, came: str | None) -> str:
    """Remove the closed cases of the transition table ``gone`` from their grids' closings and
    add those of ``came``: placeholders for new grids, the touched rows locked in grid order,
    each rewritten from its current contents and the changes, emptied rows dropped."""
    sides = [f"SELECT {side} AS side, x.* FROM ({_closing_elements(s)}) x"
             for side, s in (("'gone'", gone), ("'came'", came)) if s]
    came_ = "d.side = 'came'"
    deltas = f"""
        SELECT d.grid_id, coalesce(array_agg(d.id) FILTER (WHERE d.side = 'gone'), '{{}}') AS gone,
               coalesce(array_agg(d.id) FILTER (WHERE {came_}), '{{}}') AS ids,
               coalesce(array_agg(d.hours) FILTER (WHERE {came_}), '{{}}') AS hours,
               coalesce(array_agg(d.reported) FILTER (WHERE {came_}), '{{}}') AS reported,
               coalesce(array_agg(d.category) FILTER (WHERE {came_}), '{{}}') AS categories
          FROM ({' UNION ALL '.join(sides)}) d GROUP BY d.grid_id"""
    create = (f"""
        INSERT INTO issue_rollup_closings (grid_id, {COLUMNS})
        SELECT DISTINCT a.grid_id, 0, '{{}}'::int[], '{{}}'::float8[], '{{}}'::timestamptz[],
               '{{}}'::varchar[] FROM ({_closing_elements(came)}) a ORDER BY a.grid_id
        ON CONFLICT (grid_id) DO NOTHING;""" if came else "")
    return f"""
        {create}
        PERFORM 1 FROM issue_rollup_closings c
         WHERE c.grid_id IN (SELECT d.grid_id FROM ({deltas}) d) ORDER BY c.grid_id FOR UPDATE;
        UPDATE issue_rollup_closings c SET ({COLUMNS}) = (
            SELECT {SORTED} FROM (
                SELECT e.* FROM unnest(c.ids, c.hours, c.reported, c.categories) {ELEMENTS}
                 WHERE e.id <> ALL(d.gone)
                UNION ALL
                SELECT e.* FROM unnest(d.ids, d.hours, d.reported, d.categories) {ELEMENTS}) e)
          FROM ({deltas}) d WHERE c.grid_id = d.grid_id;
        DELETE FROM issue_rollup_closings c WHERE c.n = 0
           AND c.grid_id IN (SELECT d.grid_id FROM ({deltas}) d);"""


def _statement_function(name: str, totals: list[tuple[str, str]], gone: str | None,
                        came: str | None, guard: str = "") -> str:
    return f"""
        CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            emptied record;
        BEGIN
            {guard}
            {_totals_apply(totals)}
            {_closings_apply(gone, came)}
            RETURN NULL;
        END $$"""


def _insert_function() -> str:
    t = "NEW"
    return f"""
        CREATE FUNCTION gridmap_rollup_stats_insert() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO issue_rollup_grid_totals AS r (grid_id, status, n, rated, on_time)
            VALUES ({GRID.format(t=t)}, NEW.status, 1, ({RATED.format(t=t)})::int,
                    ({ON_TIME.format(t=t)})::int)
            ON CONFLICT (grid_id, status) DO UPDATE SET n = r.n + 1,
                rated = r.rated + excluded.rated, on_time = r.on_time + excluded.on_time;
            IF {CLOSING.format(t=t)} THEN
                INSERT INTO issue_rollup_closings AS r (grid_id, {COLUMNS})
                VALUES ({GRID.format(t=t)}, 1, ARRAY[NEW.id], ARRAY[{HOURS.format(t=t)}],
                        ARRAY[NEW.reported_at], ARRAY[NEW.category])
                ON CONFLICT (grid_id) DO UPDATE SET ({COLUMNS}) = (
                    SELECT {SORTED} FROM unnest(r.ids || excluded.ids, r.hours || excluded.hours,
                                                r.reported || excluded.reported,
                                                r.categories || excluded.categories)
                                         {ELEMENTS});
            END IF;
            RETURN NULL;
        END $$"""


UPDATE_GUARD = f"""IF NOT EXISTS (SELECT 1 FROM old_rows o JOIN new_rows n ON n.id = o.id
                                   WHERE {CHANGED}) THEN
                RETURN NULL;
            END IF;"""


def upgrade() -> None:
    op.execute("""
        CREATE TABLE issue_rollup_grid_totals (
            grid_id integer NOT NULL, status varchar(16) NOT NULL,
            n bigint NOT NULL, rated bigint NOT NULL, on_time bigint NOT NULL,
            PRIMARY KEY (grid_id, status)
        )""")
    op.execute("""
        CREATE TABLE issue_rollup_closings (
            grid_id integer PRIMARY KEY, n integer NOT NULL,
            ids integer[] NOT NULL, hours double precision[] NOT NULL,
            reported timestamptz[] NOT NULL, categories varchar(32)[] NOT NULL
        )""")
    # The medians read the middle of ``hours`` alone: kept compressed in the row, the other
    # arrays out of line, so the city's 40,000 medians read the table's heap, not its TOAST.
    op.execute("""ALTER TABLE issue_rollup_closings ALTER COLUMN hours SET STORAGE MAIN,
                  ALTER COLUMN ids SET STORAGE EXTERNAL,
                  ALTER COLUMN reported SET STORAGE EXTERNAL,
                  ALTER COLUMN categories SET STORAGE EXTERNAL""")
    op.execute(_insert_function())
    op.execute(_statement_function("gridmap_rollup_stats_update",
                                   [("new_rows", "1"), ("old_rows", "-1")], "old_rows",
                                   "new_rows", UPDATE_GUARD))
    op.execute(_statement_function("gridmap_rollup_stats_delete", [("old_rows", "-1")],
                                   "old_rows", None))
    op.execute("""
        CREATE FUNCTION gridmap_rollup_stats_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            TRUNCATE issue_rollup_grid_totals, issue_rollup_closings;
            RETURN NULL;
        END $$""")
    op.execute("""CREATE TRIGGER issues_rollup_stats_insert AFTER INSERT ON issues
                  FOR EACH ROW EXECUTE FUNCTION gridmap_rollup_stats_insert()""")
    for name, ref in (("update", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
                      ("delete", "OLD TABLE AS old_rows")):
        op.execute(f"""CREATE TRIGGER issues_rollup_stats_{name} AFTER {name.upper()} ON issues
                       REFERENCING {ref} FOR EACH STATEMENT
                       EXECUTE FUNCTION gridmap_rollup_stats_{name}()""")
    op.execute("""CREATE TRIGGER issues_rollup_stats_truncate AFTER TRUNCATE ON issues
                  FOR EACH STATEMENT EXECUTE FUNCTION gridmap_rollup_stats_truncate()""")
    # What is there already.
    op.execute(f"""
        INSERT INTO issue_rollup_grid_totals (grid_id, status, n, rated, on_time)
        SELECT {GRID.format(t='t')}, t.status, count(*), sum(({RATED.format(t='t')})::int),
               sum(({ON_TIME.format(t='t')})::int)
          FROM issues t GROUP BY 1, 2""")
    op.execute(f"""
        INSERT INTO issue_rollup_closings (grid_id, {COLUMNS})
        SELECT e.grid_id, {SORTED} FROM ({_closing_elements('issues')}) e GROUP BY e.grid_id""")


def downgrade() -> None:
    for name in ("insert", "update", "delete", "truncate"):
        op.execute(f"DROP TRIGGER IF EXISTS issues_rollup_stats_{name} ON issues")
        op.execute(f"DROP FUNCTION IF EXISTS gridmap_rollup_stats_{name}()")
    op.execute("DROP TABLE IF EXISTS issue_rollup_closings")
    op.execute("DROP TABLE IF EXISTS issue_rollup_grid_totals")
