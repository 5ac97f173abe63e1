"""the rollup's insert triggers per statement: a batch of reports adds to the rollup tables one
key at a time in key order, so concurrent batches neither deadlock nor need to take turns

Migrations 0011, 0013 and 0016 added an inserted issue to the rollup tables with row triggers
(one upsert per table and row). A multi-row insert (the intake's batch) then takes the rollup
rows in the order of its issues, table after table for each issue, and two batches written at
once could take the same rows in opposite orders and deadlock; the intake made them take turns
under an advisory lock. Here every insert trigger becomes a statement trigger over the inserted
rows (``REFERENCING NEW TABLE AS new_rows``): per table, one upsert per key in key order (the
functions the UPDATE and DELETE statement triggers run, with the new rows alone as their
source; for the days, one set-based upsert).

PostgreSQL fires the triggers of one event in the order of their names. The names made inserts
and deletes take the rollup tables in the order days, counts (0011's grids, cells and weeks),
statistics (0013's totals and closings), but updates in the order days, statistics, counts: a
report's batch and a status change of a case in the same grid and category could each hold
what the other waits for. 0011's triggers are renamed ``issues_rollup_counts_*``, so that every
insert, update and delete takes rollup rows in one global order: counts, days, statistics,
each table's keys in key order.

The functions are made by those migrations' own code (loaded from their files, as history); the
downgrade puts the row triggers and the old names back.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 12:00:00
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

NEW_ROWS = [("new_rows", "1")]


def _migration(filename: str):
    """An earlier migration's module, for the SQL its functions write."""
    path = Path(__file__).with_name(filename)
    spec = importlib.util.spec_from_file_location(f"gridmap_history_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _days_insert(days) -> str:
    """The inserted issues per (day, category, status) in one upsert in key order: counts added,
    the hours to close of the closed ones merged into the row's sorted hours. (0016's statement
    function, which also takes hours out, upserts one key at a time: twice the cost here.)"""
    key = days.KEY
    return f"""
        CREATE FUNCTION gridmap_rollup_days_insert() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO issue_rollup_days AS r ({key}, n, rated, on_time, hours)
            SELECT {key}, sum(n), sum(rated), sum(on_time),
                   coalesce(array_agg(hours ORDER BY hours) FILTER (WHERE hours IS NOT NULL),
                            '{{}}')
              FROM ({days._rows("new_rows", "1")}) c GROUP BY {key} ORDER BY {key}
            ON CONFLICT ({key}) DO UPDATE SET n = r.n + excluded.n,
                rated = r.rated + excluded.rated, on_time = r.on_time + excluded.on_time,
                hours = CASE WHEN cardinality(excluded.hours) = 0 THEN r.hours ELSE (
                    SELECT array_agg(v ORDER BY v) FROM unnest(r.hours || excluded.hours) v) END;
            RETURN NULL;
        END $$"""


def _stats_insert(stats) -> str:
    """0013's statement function with the new rows as its source, the closings (four statements)
    visited only when a closed case is inserted, which reports never are."""
    closing = stats.CLOSING.format(t="t")
    return f"""
        CREATE FUNCTION gridmap_rollup_stats_insert() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            emptied record;
        BEGIN
            {stats._totals_apply(NEW_ROWS)}
            IF EXISTS (SELECT 1 FROM new_rows t WHERE {closing}) THEN
                {stats._closings_apply(None, "new_rows")}
            END IF;
            RETURN NULL;
        END $$"""


def _triggers():
    """(trigger, function, its statement version, its row version) of each insert trigger."""
    rollup = _migration("0011_issue_rollup.py")
    stats = _migration("0013_statistics_rollup.py")
    days = _migration("0016_statistics_days.py")
    return (
        ("issues_rollup_days_insert", "gridmap_rollup_days_insert", _days_insert(days),
         days._insert_function()),
        ("issues_rollup_insert", "gridmap_rollup_insert",
         rollup._function("gridmap_rollup_insert", NEW_ROWS, drop_zero=False),
         rollup._insert_row_function()),
        ("issues_rollup_stats_insert", "gridmap_rollup_stats_insert", _stats_insert(stats),
         stats._insert_function()),
    )


# 0011's triggers, by their old names and their new ones (the insert trigger is made anew).
RENAMED = {f"issues_rollup_{event}": f"issues_rollup_counts_{event}"
           for event in ("update", "delete", "truncate")}
COUNTS_INSERT = ("issues_rollup_insert", "issues_rollup_counts_insert")


def upgrade() -> None:
    for old, new in RENAMED.items():
        op.execute(f"ALTER TRIGGER {old} ON issues RENAME TO {new}")
    for trigger, function, per_statement, _ in _triggers():
        op.execute(f"DROP TRIGGER {trigger} ON issues")
        op.execute(f"DROP FUNCTION {function}()")
        op.execute(per_statement)
        name = COUNTS_INSERT[1] if trigger == COUNTS_INSERT[0] else trigger
        op.execute(f"""CREATE TRIGGER {name} AFTER INSERT ON issues
                       REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
                       EXECUTE FUNCTION {function}()""")


def downgrade() -> None:
    for trigger, function, _, per_row in _triggers():
        name = COUNTS_INSERT[1] if trigger == COUNTS_INSERT[0] else trigger
        op.execute(f"DROP TRIGGER {name} ON issues")
        op.execute(f"DROP FUNCTION {function}()")
        op.execute(per_row)
        op.execute(f"""CREATE TRIGGER {trigger} AFTER INSERT ON issues
                       FOR EACH ROW EXECUTE FUNCTION {function}()""")
    for old, new in RENAMED.items():
        op.execute(f"ALTER TRIGGER {new} ON issues RENAME TO {old}")
