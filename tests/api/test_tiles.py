"""Vector tiles from a real server, decoded with mapbox-vector-tile, checked against the stored
features: each tile holds exactly the features that belong in it, where they are.

Tile bounds are computed here with pyproj from the Web Mercator definition, not with gis.queries.tiles.
The issues layer is case data: it is read here as the admin (every case), with HTTP Basic.
"""

from __future__ import annotations

import math

import httpx
import mapbox_vector_tile
import pytest
import shapely
from pyproj import Transformer
from sqlalchemy import text

from gis.rules import FACILITY_ALL_ZOOM, FACILITY_FIRST_ZOOM, facility_min_zoom, world_pixel
from tests.api.live import live_server
from tests.conftest import DEMO_PASSWORD

HALF = 20037508.342789244  # half the Web Mercator world width in metres
TO_LONLAT = Transformer.from_crs(3857, 4326, always_xy=True)
TO_MERCATOR = Transformer.from_crs(4326, 3857, always_xy=True)
ADMIN = ("admin", DEMO_PASSWORD)


@pytest.fixture(scope="module")
def base(demo_engine, app_database_url):
    with live_server(app_database_url) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def stored(demo_engine):
    """Stored features as shapely geometries: {layer: {key: geometry}}."""
    queries = {
        "grids": "SELECT code, ST_AsBinary(geom) FROM grids WHERE valid_to IS NULL",
        "buildings": "SELECT id, ST_AsBinary(geom) FROM buildings",
        "facilities": "SELECT id, ST_AsBinary(geom) FROM facilities",
        "regions": "SELECT code, ST_AsBinary(geom) FROM regions WHERE level IN ('street', 'community')",
        "open_issues": "SELECT id, ST_AsBinary(geom) FROM issues WHERE status NOT IN ('closed', 'rejected')",
    }
    with demo_engine.connect() as conn:
        return {layer: {k: shapely.from_wkb(bytes(w)) for k, w in conn.execute(text(q))}
                for layer, q in queries.items()}


def mercator_box(z: int, x: int, y: int, margin: float = 0.0) -> tuple[float, float, float, float]:
    size = 2 * HALF / 2 ** z
    minx, maxy = -HALF + x * size, HALF - y * size
    pad = margin * size
    return minx - pad, maxy - size - pad, minx + size + pad, maxy + pad


def tile_polygon(z, x, y, margin=0.0):
    minx, miny, maxx, maxy = mercator_box(z, x, y, margin)
    (w, e), (s, n) = TO_LONLAT.transform([minx, maxx], [miny, maxy])
    return shapely.box(w, s, e, n)


def tiles_over(geoms, z):
    minx, miny, maxx, maxy = shapely.total_bounds(list(geoms))
    (x0, x1), (y0, y1) = TO_MERCATOR.transform([minx, maxx], [miny, maxy])
    size = 2 * HALF / 2 ** z
    cols = range(int((x0 + HALF) // size), int((x1 + HALF) // size) + 1)
    rows = range(int((HALF - y1) // size), int((HALF - y0) // size) + 1)
    return [(z, x, y) for x in cols for y in rows]


def fetch(client, layer, z, x, y, auth=ADMIN):
    r = client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt", auth=auth)
    assert r.status_code in (200, 204), r.text
    return mapbox_vector_tile.decode(r.content).get(layer, {"features": []}) if r.status_code == 200 else None


def test_grids_start_at_zoom_13_with_regions_above(base, stored, demo_engine):
    grids = stored["grids"].values()
    assert all(fetch(base, "grids", *t) is None for t in tiles_over(grids, 12))
    assert any(fetch(base, "grids", *t) for t in tiles_over(grids, 13))
    for z, level in ((11, "street"), (12, "community")):
        codes = {f["properties"]["code"] for t in tiles_over(grids, z)
                 for f in (fetch(base, "regions", *t) or {"features": []})["features"]
                 if f["properties"]["level"] == level}
        with demo_engine.connect() as conn:
            want = set(conn.execute(text("SELECT code FROM regions WHERE level = :l"),
                                    {"l": level}).scalars())
        assert want and codes == want


def test_grid_tiles_hold_the_grids_that_touch_them(base, stored):
    for z, x, y in tiles_over(stored["grids"].values(), 16):
        inside = {c for c, g in stored["grids"].items() if g.intersects(tile_polygon(z, x, y))}
        near = {c for c, g in stored["grids"].items()
                if g.intersects(tile_polygon(z, x, y, margin=64 / 4096))}
        layer = fetch(base, "grids", z, x, y)
        codes = {f["properties"]["code"] for f in layer["features"]} if layer else set()
        assert inside <= codes <= near, (z, x, y)


@pytest.fixture(scope="module")
def categories(demo_engine):
    with demo_engine.connect() as conn:
        return dict(conn.execute(text("SELECT id, category FROM facilities")).all())


def shown_at(categories, z):
    """The facilities a zoom-z tile shows, by the rule (gis.rules.facility_min_zoom)."""
    return {i for i, c in categories.items() if facility_min_zoom(i, c) <= z}


@pytest.mark.parametrize("z", [12, 14, 16, 17, 18])
def test_facility_tiles_hold_exactly_their_points_in_place(base, stored, categories, z):
    facilities = {i: p for i, p in stored["facilities"].items() if i in shown_at(categories, z)}
    assert facilities  # the demo has facilities at every zoom sampled
    seen: dict[int, int] = {}
    tiles = tiles_over(facilities.values(), z)
    if z == 18:
        tiles = tiles[::7]  # a bounded sample at the deepest zoom
    for z_, x, y in tiles:
        box = tile_polygon(z_, x, y)
        expected = {i for i, p in facilities.items() if box.contains(p)}
        layer = fetch(base, "facilities", z_, x, y)
        got = {f["id"]: f for f in layer["features"]} if layer else {}
        assert set(got) == expected, (z_, x, y)
        minx, miny, maxx, maxy = mercator_box(z_, x, y)
        for fid, feature in got.items():
            seen[fid] = seen.get(fid, 0) + 1
            px, py = feature["geometry"]["coordinates"]  # tile units, y up (decoder default)
            lon, lat = TO_LONLAT.transform(minx + px / 4096 * (maxx - minx),
                                           miny + py / 4096 * (maxy - miny))
            want = facilities[fid]
            metres = math.hypot((lon - want.x) * 111_320 * math.cos(math.radians(lat)),
                                (lat - want.y) * 110_574)
            assert metres < (maxx - minx) / 4096 * 1.5, (fid, metres)
            assert set(feature["properties"]) <= {"code", "category", "status", "name"}
    if z != 18:
        assert set(seen) == set(facilities) and set(seen.values()) == {1}


def all_features(client, layer, z, geoms) -> dict:
    """Every feature of ``layer`` over the zoom-z tiles covering ``geoms``: id -> tiles holding it."""
    found: dict = {}
    for tile in tiles_over(geoms, z):
        for feature in (fetch(client, layer, *tile) or {"features": []})["features"]:
            found.setdefault(feature["id"], []).append(tile)
    return found


def test_thinning_is_monotone_and_complete_from_the_last_thinned_zoom(base, stored):
    points = stored["facilities"].values()
    shown = {z: set(all_features(base, "facilities", z, points))
             for z in range(FACILITY_FIRST_ZOOM, FACILITY_ALL_ZOOM + 1)}
    for z in range(FACILITY_FIRST_ZOOM, FACILITY_ALL_ZOOM):
        assert shown[z] <= shown[z + 1], z  # a facility shown at z is shown at z + 1
        assert len(shown[z]) < len(shown[z + 1]), z  # and zooming out thins for real
    assert shown[FACILITY_ALL_ZOOM] == set(stored["facilities"])
    assert base.get("/tiles/facilities/9/415/194.mvt").status_code == 204  # below the layer


def test_generated_tile_columns_follow_the_rules(demo_engine):
    with demo_engine.connect() as conn:
        facilities = conn.execute(text("SELECT id, category, min_zoom FROM facilities")).all()
        issues = conn.execute(text(
            "SELECT ST_X(geom), ST_Y(geom), wx, wy FROM issues WHERE geom IS NOT NULL")).all()
    assert facilities and issues
    assert all(z == facility_min_zoom(i, c) for i, c, z in facilities)
    assert all((wx, wy) == world_pixel(lon, lat) for lon, lat, wx, wy in issues)


def test_building_tiles_hold_the_buildings_that_touch_them(base, stored):
    buildings = stored["buildings"]
    for z, x, y in tiles_over(buildings.values(), 17):
        inside = {i for i, g in buildings.items() if g.intersects(tile_polygon(z, x, y))}
        near = {i for i, g in buildings.items() if g.intersects(tile_polygon(z, x, y, 64 / 4096))}
        layer = fetch(base, "buildings", z, x, y)
        ids = {f["id"] for f in layer["features"]} if layer else set()
        assert inside <= ids <= near, (z, x, y)


@pytest.mark.parametrize("z", [10, 12, 14, 15, 16, 18])
def test_issue_tiles_count_the_open_issues_and_nothing_personal(base, stored, z):
    issues = stored["open_issues"]
    total = 0
    for z_, x, y in tiles_over(issues.values(), z):
        box = tile_polygon(z_, x, y)
        expected = sum(1 for p in issues.values() if box.contains(p))
        layer = fetch(base, "issues", z_, x, y)
        cells = layer["features"] if layer else []
        assert sum(c["properties"]["count"] for c in cells) == expected, (z_, x, y)
        for cell in cells:
            assert set(cell["properties"]) <= {"count", "overdue", "category", "issue_id"}
            if cell["properties"]["count"] == 1:
                assert cell["properties"]["issue_id"] in issues
        total += expected
    assert total == len(issues)


def test_empty_tiles_are_204_and_tiles_carry_cache_headers(base, stored):
    empty = base.get("/tiles/grids/16/0/0.mvt")
    assert empty.status_code == 204 and not empty.content
    assert base.get("/tiles/buildings/10/830/388.mvt").status_code == 204  # below its minzoom
    z, x, y = tiles_over(stored["grids"].values(), 15)[0]
    first = base.get(f"/tiles/grids/{z}/{x}/{y}.mvt")
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert first.headers["cache-control"] == "public, max-age=300"
    etag = first.headers["etag"]
    again = base.get(f"/tiles/grids/{z}/{x}/{y}.mvt", headers={"If-None-Match": etag})
    assert again.status_code == 304 and not again.content and again.headers["etag"] == etag
    assert base.get(f"/tiles/grids/{z}/{x}/{y}.mvt",
                    headers={"If-None-Match": '"other"'}).status_code == 200


@pytest.mark.parametrize("path", ["/tiles/roads/16/0/0.mvt", "/tiles/grids/16/70000/0.mvt",
                                  "/tiles/grids/30/0/0.mvt", "/tiles/roads.json"])
def test_unknown_layers_and_tiles_are_404(base, path):
    assert base.get(path).status_code == 404


@pytest.mark.parametrize("layer", ["regions", "grids", "buildings", "facilities", "issues"])
def test_tilejson(base, stored, layer):
    doc = base.get(f"/tiles/{layer}.json", auth=ADMIN).json()
    assert doc["tilejson"] == "3.0.0" and doc["scheme"] == "xyz"
    assert doc["tiles"] == [f"{str(base.base_url).rstrip('/')}/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt"]
    assert [v["id"] for v in doc["vector_layers"]] == [layer]
    geoms = stored["open_issues" if layer == "issues" else layer].values()
    w, s, e, n = shapely.total_bounds(list(geoms))
    assert doc["bounds"] == pytest.approx([w, s, e, n], abs=1e-6)
    assert w <= doc["center"][0] <= e and s <= doc["center"][1] <= n
    assert "reporter_contact" not in str(doc)


def test_the_issues_layer_needs_a_log_in_and_is_private_to_the_reader(base, stored):
    z, x, y = tiles_over(stored["open_issues"].values(), 14)[0]
    for path in (f"/tiles/issues/{z}/{x}/{y}.mvt", "/tiles/issues.json"):
        anonymous = base.get(path)
        assert anonymous.status_code == 401 and "Basic" in anonymous.headers["www-authenticate"]
    tile = base.get(f"/tiles/issues/{z}/{x}/{y}.mvt", auth=ADMIN)
    assert tile.status_code == 200
    assert tile.headers["cache-control"] == "private, max-age=30"
    assert tile.headers["vary"] == "Authorization, Cookie"
    for layer in ("grids", "buildings", "facilities"):  # public layers need no log-in
        assert base.get(f"/tiles/{layer}.json").status_code == 200


def test_a_department_sees_its_own_cases_in_the_issue_tiles(base, demo_engine):
    # The department with the most open cases: which departments hold open cases depends on the
    # moment the demo is generated for (sanitation had none from 03:00 to 06:00 on 2 December 2026).
    with demo_engine.connect() as conn:
        code = conn.execute(text("""
            SELECT d.code FROM issues i JOIN departments d ON d.id = i.department_id
             WHERE i.status NOT IN ('closed', 'rejected')
             GROUP BY d.code ORDER BY count(*) DESC, d.code LIMIT 1""")).scalar_one()
        own = {i: shapely.from_wkb(bytes(w)) for i, w in conn.execute(text("""
            SELECT i.id, ST_AsBinary(i.geom) FROM issues i JOIN departments d ON d.id = i.department_id
             WHERE d.code = :code AND i.status NOT IN ('closed', 'rejected')"""), {"code": code})}
    assert own
    tiles = tiles_over(own.values(), 14)
    counted = sum(c["properties"]["count"] for t in tiles
                  for c in (fetch(base, "issues", *t, auth=(f"{code}01", DEMO_PASSWORD)) or
                            {"features": []})["features"])
    assert counted == len(own)
