"""tiles at city scale: facilities thinned by zoom, open issues aggregated from a covering index

- ``facilities.min_zoom``: the first zoom whose tiles show the facility (gis.rules.facility_min_zoom:
  a hash of the id shifted by the category's importance), generated from the row so that every
  write fills it; one partial GiST index per thinned zoom (``WHERE min_zoom <= z``), so a
  zoomed-out tile reads only the facilities it shows.
- ``issues.wx``, ``issues.wy``: the point's Web Mercator position in integer pixels of a
  2^30-pixel world (level 30: zoom 18 at 4096 units a tile), generated from ``geom``; a tile's box
  and cells are bit shifts of them. ``ix_issues_open_tiles`` covers the open issues by (wy, wx)
  with what an aggregated cell needs, so the issues layer at zoom 10 reads an index, not the heap.
- ``ix_facilities_grid``: facilities by grid, for re-tagging the rows of redrawn grids.

Revision ID: 0012
Revises: 0010 (the lead re-chains it after 0011)
Create Date: 2026-12-01 00:45:00
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# History: the rules at the time of this migration (gis.rules.facility_min_zoom_sql(None),
# FACILITY_FIRST_ZOOM 10 .. FACILITY_ALL_ZOOM 17; gis.rules.FINAL_STATUSES; gis.queries.tiles.WORLD_LEVEL).
MIN_ZOOM = (
    "LEAST(17, GREATEST(10, 17 - (CASE category WHEN 'toilet' THEN 4 WHEN 'pavilion' THEN 3 "
    "WHEN 'stage' THEN 3 WHEN 'fitness' THEN 2 ELSE 0 END) - floor(ln(1 / ((((id * 2654435761) "
    "% 4294967296)::float8 + 0.5) / 4294967296)) / ln(4))::int))"
)
THINNED_ZOOMS = range(10, 17)
WORLD = 2 ** 30
WX = f"LEAST({WORLD - 1}, GREATEST(0, floor((ST_X(geom) + 180) / 360 * {WORLD})))::int"
WY = (f"LEAST({WORLD - 1}, GREATEST(0, floor((1 - ln(tan(pi() / 4 + radians(LEAST(85.0511287798, "
      f"GREATEST(-85.0511287798, ST_Y(geom)))) / 2)) / pi()) / 2 * {WORLD})))::int")
OPEN = "status NOT IN ('closed', 'rejected')"


def upgrade() -> None:
    op.execute(f"ALTER TABLE facilities ADD COLUMN min_zoom smallint "
               f"GENERATED ALWAYS AS ({MIN_ZOOM}) STORED")
    for z in THINNED_ZOOMS:
        op.execute(f"CREATE INDEX ix_facilities_geom_z{z} ON facilities USING gist (geom) "
                   f"WHERE min_zoom <= {z}")
    op.execute("CREATE INDEX ix_facilities_grid ON facilities (grid_id)")
    op.execute(f"ALTER TABLE issues ADD COLUMN wx integer GENERATED ALWAYS AS ({WX}) STORED, "
               f"ADD COLUMN wy integer GENERATED ALWAYS AS ({WY}) STORED")
    op.execute("CREATE INDEX ix_issues_open_tiles ON issues (wy, wx) "
               f"INCLUDE (id, category, status, due_at, department_id) WHERE {OPEN}")


def downgrade() -> None:
    op.execute("DROP INDEX ix_issues_open_tiles")
    op.execute("ALTER TABLE issues DROP COLUMN wy, DROP COLUMN wx")
    op.execute("DROP INDEX ix_facilities_grid")
    op.execute("ALTER TABLE facilities DROP COLUMN min_zoom")  # drops its partial indexes too
