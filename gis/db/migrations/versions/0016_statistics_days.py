"""statistics by day: counts per (Beijing day, category, status) and the hours to close of the
closed cases, kept by triggers, so that the city's timeline reads about 100,000 rows, not 10
million

- ``issues_self_resolved_idx``: the self-resolved cases by grid and status, which the workers'
  statistics count per grid.
- ``issue_rollup_days(day, category, status)``: ``n`` issues reported that day, ``rated`` and
  ``on_time`` (as the other rollup tables count them), and ``hours``: the hours to close of
  its closed cases that have a closing time, sorted (the very float8 the statistics' median
  orders by; empty for the other statuses). A timeline bucket (day, ISO week, month) is a union
  of whole days, so its counts are sums of rows and its median the middle of the merged
  ``hours`` of its rows.

A row trigger adds an inserted issue (one upsert; a closed one merges its hours into the
row's). Statement triggers on UPDATE and DELETE upsert their changes one key at a time in key
order (the counts added; one occurrence of each hours value that went taken out, those that
came merged in) and drop emptied keys, so concurrent statements neither lose each other's
changes nor deadlock. TRUNCATE empties the table.

The expressions are gis.queries.rollup's ``day_sql`` and gis.rules' ``hours_to_close_sql``, written out
here as history; gis.queries.rollup.check compares the table with a scan.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 14:00:00
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# History: gis.rules.rated_sql / on_time_sql / CLOSED_STATUS, gis.queries.rollup.day_sql and
# hours_to_close_sql at the time of this migration.
DAY = "({t}.reported_at AT TIME ZONE 'Asia/Shanghai')::date"
RATED = "({t}.status = 'closed' AND {t}.due_at IS NOT NULL)"
ON_TIME = "(({t}.status = 'closed' AND {t}.due_at IS NOT NULL AND {t}.closed_at <= {t}.due_at) IS TRUE)"
HOURS = "(extract(epoch FROM {t}.closed_at - {t}.reported_at) / 3600)::float8"
CLOSING = "({t}.status = 'closed' AND {t}.closed_at IS NOT NULL)"
KEYED = ("status", "category", "reported_at", "due_at", "closed_at")
CHANGED = " OR ".join(f"o.{c} IS DISTINCT FROM n.{c}" for c in KEYED)
KEY = "day, category, status"


def _rows(source: str, sign: str) -> str:
    t = "t"
    return (f"SELECT {DAY.format(t=t)} AS day, t.category, t.status, {sign} AS n, "
            f"{sign} * ({RATED.format(t=t)})::int AS rated, "
            f"{sign} * ({ON_TIME.format(t=t)})::int AS on_time, "
            f"CASE WHEN {CLOSING.format(t=t)} THEN {HOURS.format(t=t)} END AS hours "
            f"FROM {source} t")


def _deltas(sources: list[tuple[str, str]]) -> str:
    """Per key: the changes of the counts, the hours that went (``gone``) and came, sorted."""
    union = " UNION ALL ".join(_rows(s, sign) for s, sign in sources)
    return f"""
        SELECT {KEY}, sum(n) AS n, sum(rated) AS rated, sum(on_time) AS on_time,
               coalesce(array_agg(hours ORDER BY hours)
                        FILTER (WHERE n < 0 AND hours IS NOT NULL), '{{}}') AS gone,
               coalesce(array_agg(hours ORDER BY hours)
                        FILTER (WHERE n > 0 AND hours IS NOT NULL), '{{}}') AS came
          FROM ({union}) c GROUP BY {KEY}"""


MERGE = """(SELECT coalesce(array_agg(x.v ORDER BY x.v), '{{}}') FROM (
                    SELECT a.v FROM (SELECT v, row_number() OVER (PARTITION BY v) AS k
                                       FROM unnest({held}) v) a
                     WHERE NOT EXISTS (
                        SELECT 1 FROM (SELECT g, row_number() OVER (PARTITION BY g) AS k
                                         FROM unnest({gone}) g) b
                         WHERE b.g = a.v AND b.k = a.k)
                    UNION ALL SELECT unnest({came})) x(v))"""


def _statement_function(name: str, sources: list[tuple[str, str]], guard: str = "") -> str:
    """One upsert per changed key, in key order: the counts added, one occurrence of each
    hours value that went taken out, those that came merged in; emptied keys dropped."""
    merged = MERGE.format(held="r.hours", gone="d.gone", came="d.came")
    return f"""
        CREATE FUNCTION gridmap_rollup_days_{name}() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            d record;
            left_n bigint;
        BEGIN
            {guard}
            FOR d IN SELECT * FROM ({_deltas(sources)}) c
                      WHERE c.n <> 0 OR c.rated <> 0 OR c.on_time <> 0 OR c.gone <> c.came
                      ORDER BY {KEY}
            LOOP
                INSERT INTO issue_rollup_days AS r ({KEY}, n, rated, on_time, hours)
                VALUES (d.day, d.category, d.status, d.n, d.rated, d.on_time, d.came)
                ON CONFLICT ({KEY}) DO UPDATE SET n = r.n + excluded.n,
                    rated = r.rated + excluded.rated, on_time = r.on_time + excluded.on_time,
                    hours = CASE WHEN d.gone = d.came THEN r.hours ELSE {merged} END
                RETURNING r.n INTO left_n;
                IF left_n = 0 THEN
                    DELETE FROM issue_rollup_days
                     WHERE day = d.day AND category = d.category AND status = d.status;
                END IF;
            END LOOP;
            RETURN NULL;
        END $$"""


def _insert_function() -> str:
    t = "NEW"
    return f"""
        CREATE FUNCTION gridmap_rollup_days_insert() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO issue_rollup_days AS r ({KEY}, n, rated, on_time, hours)
            VALUES ({DAY.format(t=t)}, NEW.category, NEW.status, 1, ({RATED.format(t=t)})::int,
                    ({ON_TIME.format(t=t)})::int,
                    CASE WHEN {CLOSING.format(t=t)} THEN ARRAY[{HOURS.format(t=t)}]
                         ELSE '{{}}'::float8[] END)
            ON CONFLICT ({KEY}) DO UPDATE SET n = r.n + 1,
                rated = r.rated + excluded.rated, on_time = r.on_time + excluded.on_time,
                hours = CASE WHEN cardinality(excluded.hours) = 0 THEN r.hours ELSE (
                    SELECT array_agg(v ORDER BY v) FROM unnest(r.hours || excluded.hours) v) END;
            RETURN NULL;
        END $$"""


# Reading a sorted array's values without detoasting it once per subscript: plpgsql expands
# an array argument once. The timeline's medians sample each day's hours, then read those
# between two guesses (gis.queries.statistics._bucket_medians).
SAMPLES_FUNCTION = """
    CREATE FUNCTION gridmap_sorted_samples(a float8[], k int, OUT n int, OUT samples float8[])
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
    BEGIN
        n := cardinality(a);
        samples := '{}';
        FOR j IN 1 .. k - 1 LOOP
            EXIT WHEN n = 0;
            samples := samples || a[greatest(ceil(n * j / k::numeric)::int, 1)];
        END LOOP;
    END $$"""
BETWEEN_FUNCTION = """
    CREATE FUNCTION gridmap_sorted_between(a float8[], lo float8, hi float8, OUT below int,
                                           OUT vals float8[])
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
    DECLARE
        upto int;
    BEGIN
        below := width_bucket(lo, a);
        upto := width_bucket(hi, a);
        vals := CASE WHEN upto > below THEN a[below + 1 : upto] ELSE '{}' END;
    END $$"""


UPDATE_GUARD = f"""IF NOT EXISTS (SELECT 1 FROM old_rows o JOIN new_rows n ON n.id = o.id
                                   WHERE {CHANGED}) THEN
                RETURN NULL;
            END IF;"""


def upgrade() -> None:
    op.execute("""
        CREATE TABLE issue_rollup_days (
            day date NOT NULL, category varchar(32) NOT NULL, status varchar(16) NOT NULL,
            n bigint NOT NULL, rated bigint NOT NULL, on_time bigint NOT NULL,
            hours double precision[] NOT NULL,
            PRIMARY KEY (day, category, status)
        )""")
    # hours to close hardly compress: kept out of line as they are, not tried each rewrite
    op.execute("ALTER TABLE issue_rollup_days ALTER COLUMN hours SET STORAGE EXTERNAL")
    op.execute(SAMPLES_FUNCTION)
    op.execute(BETWEEN_FUNCTION)
    op.execute(_insert_function())
    op.execute(_statement_function("update", [("new_rows", "1"), ("old_rows", "-1")],
                                   UPDATE_GUARD))
    op.execute(_statement_function("delete", [("old_rows", "-1")]))
    op.execute("""
        CREATE FUNCTION gridmap_rollup_days_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            TRUNCATE issue_rollup_days;
            RETURN NULL;
        END $$""")
    op.execute("""CREATE TRIGGER issues_rollup_days_insert AFTER INSERT ON issues
                  FOR EACH ROW EXECUTE FUNCTION gridmap_rollup_days_insert()""")
    for name, ref in (("update", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
                      ("delete", "OLD TABLE AS old_rows")):
        op.execute(f"""CREATE TRIGGER issues_rollup_days_{name} AFTER {name.upper()} ON issues
                       REFERENCING {ref} FOR EACH STATEMENT
                       EXECUTE FUNCTION gridmap_rollup_days_{name}()""")
    op.execute("""CREATE TRIGGER issues_rollup_days_truncate AFTER TRUNCATE ON issues
                  FOR EACH STATEMENT EXECUTE FUNCTION gridmap_rollup_days_truncate()""")
    # What is there already.
    op.execute(f"""
        INSERT INTO issue_rollup_days ({KEY}, n, rated, on_time, hours)
        SELECT {KEY}, sum(n), sum(rated), sum(on_time),
               coalesce(array_agg(hours ORDER BY hours) FILTER (WHERE hours IS NOT NULL), '{{}}')
          FROM ({_rows('issues', '1')}) c GROUP BY {KEY}""")
    op.execute("ANALYZE issue_rollup_days")
    # The workers' self-resolved cases (a few in a hundred), counted per grid from the index.
    op.execute("CREATE INDEX issues_self_resolved_idx ON issues (grid_id, status) "
               "WHERE self_resolved")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS issues_self_resolved_idx")
    for name in ("insert", "update", "delete", "truncate"):
        op.execute(f"DROP TRIGGER IF EXISTS issues_rollup_days_{name} ON issues")
        op.execute(f"DROP FUNCTION IF EXISTS gridmap_rollup_days_{name}()")
    op.execute("DROP FUNCTION IF EXISTS gridmap_sorted_samples(float8[], int)")
    op.execute("DROP FUNCTION IF EXISTS gridmap_sorted_between(float8[], float8, float8)")
    op.execute("DROP TABLE IF EXISTS issue_rollup_days")
