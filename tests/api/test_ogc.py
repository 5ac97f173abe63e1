"""OGC API - Features against a real server, read by GDAL's OAPIF driver (Debian gdal-bin) and
OWSLib's Features client, and checked against counts written independently in SQL.

The issues collection is case data: both clients read it with HTTP Basic credentials, as a GIS
desktop does; grids, buildings and facilities need none. (Scopes per role are checked in
tests/api/test_authorization_matrix.py and tests/api/test_doors.py.)"""

from __future__ import annotations

import re
import subprocess
from datetime import datetime, timedelta

import httpx
import pytest
import shapely
from owslib.ogcapi.features import Features
from owslib.util import Authentication
from sqlalchemy import text

from api.protocols import ogc
from tests.api.live import live_server
from tests.conftest import DEMO_PASSWORD

# The admin reads every case (the counts below are over all of them); HTTP Basic, as QGIS sends it.
ADMIN = ("admin", DEMO_PASSWORD)
GDAL_ADMIN = ("--config", "GDAL_HTTP_AUTH", "BASIC",
              "--config", "GDAL_HTTP_USERPWD", f"{ADMIN[0]}:{ADMIN[1]}")


@pytest.fixture(scope="module")
def base(demo_engine, app_database_url):
    with live_server(app_database_url) as url:
        yield f"{url}/ogc"


@pytest.fixture(scope="module")
def sql(demo_engine):
    def run(query, **params):
        with demo_engine.connect() as conn:
            return conn.execute(text(query), params).all()
    return run


def get(url, auth=None, **params):
    # httpx replaces a URL's own query with params when params are given, even empty ones
    return httpx.get(url, params=params or None, auth=auth, timeout=30)


def ogrinfo(*args: str) -> str:
    done = subprocess.run(["ogrinfo", "-ro", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


# -- GDAL ---------------------------------------------------------------------------------------
def test_gdal_lists_the_collections(base):
    out = ogrinfo(*GDAL_ADMIN, "-so", f"OAPIF:{base}")
    assert re.findall(r"^\d+: (\w+) \(title: [^)]*\) \(([\w ]+)\)$", out, re.M) == [
        ("grids", "Multi Polygon"), ("buildings", "Polygon"), ("facilities", "Point"),
        ("issues", "Point")]


def test_gdal_reads_issues_with_basic_credentials_and_not_without(base, sql):
    out = ogrinfo(*GDAL_ADMIN, "-so", f"OAPIF:{base}", "issues")
    assert f"Feature Count: {sql('SELECT count(*) FROM issues')[0][0]}" in out
    for credentials, words in (((), "Log in first"),
                               (("--config", "GDAL_HTTP_AUTH", "BASIC", "--config",
                                 "GDAL_HTTP_USERPWD", "admin:wrong"), "Wrong username or password")):
        # GDAL shows the collection's metadata (public) and reads no feature: the server said 401
        refused = subprocess.run(["ogrinfo", "-ro", *credentials, "-so", f"OAPIF:{base}", "issues"],
                                 capture_output=True, text=True, timeout=120)
        assert "Feature Count: 0" in refused.stdout
        assert "HTTP error code : 401" in refused.stderr and words in refused.stderr


def test_gdal_reads_every_grid_with_its_geometry(base, sql):
    out = ogrinfo("-al", "-q", f"OAPIF:{base}", "grids")
    read = {}
    for block in out.split("OGRFeature(grids):")[1:]:
        code = re.search(r"^  code \(String\) = (\d{15})$", block, re.M).group(1)
        read[code] = re.search(r"^  (MULTIPOLYGON .*)$", block, re.M).group(1)
    stored = dict(sql("SELECT code, ST_AsText(geom) FROM grids WHERE valid_to IS NULL"))
    assert read.keys() == stored.keys() and len(read) == 14
    for code, wkt in read.items():
        got, want = shapely.from_wkt(wkt), shapely.from_wkt(stored[code])
        assert got.geom_type == "MultiPolygon"
        assert shapely.equals_exact(shapely.normalize(got), shapely.normalize(want), tolerance=1e-7), code


def test_gdal_counts_features_and_reads_the_extent(base, sql):
    out = ogrinfo("-so", f"OAPIF:{base}", "facilities")
    assert f"Feature Count: {sql('SELECT count(*) FROM facilities')[0][0]}" in out
    minx, miny, maxx, maxy = sql("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                                 "(SELECT ST_Extent(geom) e FROM facilities) s")[0]
    assert f"Extent: ({minx:.6f}, {miny:.6f}) - ({maxx:.6f}, {maxy:.6f})" in out


# -- OWSLib -------------------------------------------------------------------------------------
def test_owslib_pages_through_issues(base, sql, demo_month):
    client = Features(base, auth=Authentication(*ADMIN))
    assert set(ogc.CONFORMANCE) <= set(client.conformance()["conformsTo"])
    assert [c["id"] for c in client.collections()["collections"]] == list(ogc.COLLECTIONS)
    a, b = f"{demo_month.first}T00:00:00+08:00", f"{demo_month.last}T23:59:59+08:00"
    window = f"{a}/{b}"
    ids: list[int] = []
    offset, pages = 0, 0
    while True:
        page = client.collection_items("issues", limit=200, offset=offset, datetime_=window)
        ids += [f["id"] for f in page["features"]]
        pages += 1
        assert page["numberReturned"] == len(page["features"])
        if not any(link["rel"] == "next" for link in page["links"]):
            break
        offset += 200
    expected = {i for (i,) in sql("SELECT id FROM issues WHERE reported_at BETWEEN :a AND :b",
                                  a=a, b=b)}
    assert len(ids) == len(set(ids)) == page["numberMatched"] == len(expected)
    assert set(ids) == expected and pages == -(-len(expected) // 200)


# -- documents ----------------------------------------------------------------------------------
def test_landing_page_and_conformance(base):
    landing = get(base).json()
    rels = {link["rel"]: link for link in landing["links"]}
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= rels.keys()
    assert rels["service-desc"]["type"] == ogc.OPENAPI_JSON
    assert get(rels["data"]["href"]).json()["collections"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in get(
        rels["conformance"]["href"]).json()["conformsTo"]


def test_collections_declare_extents_and_crs84(base, sql):
    collections = {c["id"]: c for c in get(f"{base}/collections").json()["collections"]}
    assert list(collections) == ["grids", "buildings", "facilities", "issues"]
    for cid, table in (("grids", "grids WHERE valid_to IS NULL"), ("buildings", "buildings"),
                       ("facilities", "facilities"), ("issues", "issues")):
        c = collections[cid]
        assert c["crs"] == [ogc.CRS84] and c["extent"]["spatial"]["crs"] == ogc.CRS84
        box = sql(f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                  f"(SELECT ST_Extent(geom) e FROM {table}) s")[0]
        assert c["extent"]["spatial"]["bbox"][0] == pytest.approx(list(box), abs=1e-6)
        assert {link["rel"] for link in c["links"]} >= {"self", "items"}
        assert get(f"{base}/collections/{cid}").json()["id"] == cid
    first, last = collections["issues"]["extent"]["temporal"]["interval"][0]
    oldest, newest = sql("SELECT min(reported_at), max(reported_at) FROM issues")[0]
    assert abs(datetime.fromisoformat(first) - oldest) < timedelta(seconds=1)
    assert abs(datetime.fromisoformat(last) - newest) < timedelta(seconds=1)
    assert get(f"{base}/collections/roads").status_code == 404


def test_items_page_with_next_and_prev_links(base, sql):
    total = sql("SELECT count(*) FROM buildings")[0][0]
    page = get(f"{base}/collections/buildings/items", limit=50, offset=50)
    assert page.headers["content-type"] == ogc.GEOJSON
    body = page.json()
    assert body["numberMatched"] == total and body["numberReturned"] == 50
    links = {link["rel"]: link["href"] for link in body["links"]}
    assert "offset=100" in links["next"] and "offset=0" in links["prev"]
    follow, seen = f"{base}/collections/buildings/items?limit=100", []
    while follow:
        body = get(follow).json()
        seen += [f["id"] for f in body["features"]]
        follow = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
    assert sorted(seen) == [i for (i,) in sql("SELECT id FROM buildings ORDER BY id")]
    default = get(f"{base}/collections/buildings/items").json()
    assert default["numberReturned"] == ogc.DEFAULT_LIMIT
    huge = get(f"{base}/collections/facilities/items", limit=50_000).json()
    assert huge["numberReturned"] == sql("SELECT count(*) FROM facilities")[0][0]  # capped, not refused


def test_bbox_datetime_and_property_filters(base, sql, demo_month):
    box = "112.856,36.838,112.862,36.842"
    n = sql("SELECT count(*) FROM facilities WHERE ST_Intersects(geom, "
            "ST_MakeEnvelope(112.856, 36.838, 112.862, 36.842, 4326)) AND category = 'streetlight'")[0][0]
    got = get(f"{base}/collections/facilities/items", bbox=box, category="streetlight", limit=1000).json()
    assert got["numberMatched"] == n > 0
    assert all(f["properties"]["category"] == "streetlight" for f in got["features"])
    grid = "140429100001003"
    since = demo_month.first
    n = sql("""SELECT count(*) FROM issues i JOIN grids g ON g.id = i.grid_id
                WHERE g.code = :g AND i.status NOT IN ('closed', 'rejected')
                  AND i.reported_at >= :s""", g=grid, s=f"{since}T00:00:00+08:00")[0][0]
    got = get(f"{base}/collections/issues/items", ADMIN, grid_code=grid, status="open",
              datetime=f"{since}/..").json()
    assert got["numberMatched"] == n
    day = demo_month.first + timedelta(days=7)
    n = sql("SELECT count(*) FROM issues WHERE reported_at >= :a AND reported_at < :b",
            a=f"{day}T00:00:00+08:00", b=f"{day + timedelta(days=1)}T00:00:00+08:00")[0][0]
    assert get(f"{base}/collections/issues/items", ADMIN,
               datetime=f"{day}").json()["numberMatched"] == n > 0


@pytest.mark.parametrize("path, params, words", [
    ("grids/items", {"colour": "red"}, "unknown query parameter colour"),
    ("grids/items", {"bbox": "1,2,3"}, "bbox"),
    ("grids/items", {"limit": "0"}, "limit"),
    ("grids/items", {"datetime": "2025-01-01"}, "no time"),
    ("issues/items", {"datetime": "last week"}, "RFC 3339"),
    ("issues/items", {"datetime": "2025-02-01/2025-01-01"}, "ends before"),
    ("issues/items", {"category": "ufo"}, "unknown issue category"),
    ("issues/items", {"f": "xml"}, "f must be one of"),
])
def test_invalid_parameters_are_400(base, path, params, words):
    r = get(f"{base}/collections/{path}", ADMIN, **params)
    assert r.status_code == 400, r.text
    assert words in r.json()["description"]


def test_single_features(base, sql):
    grid = get(f"{base}/collections/grids/items/140429100001003").json()
    assert grid["id"] == "140429100001003" and grid["geometry"]["type"] == "MultiPolygon"
    fid = sql("SELECT min(id) FROM facilities")[0][0]
    assert get(f"{base}/collections/facilities/items/{fid}").json()["id"] == fid
    assert get(f"{base}/collections/facilities/items/99999999").status_code == 404
    assert get(f"{base}/collections/buildings/items/abc").status_code == 404


def test_issues_carry_no_personal_data(base, sql):
    # not even for the admin, who may see them in /api/v1: a GIS desktop keeps what it loads
    contacts = [c for (c,) in sql("SELECT reporter_contact FROM issues WHERE reporter_contact "
                                  "IS NOT NULL ORDER BY reported_at DESC LIMIT 500")]
    assert contacts
    body = get(f"{base}/collections/issues/items", ADMIN, limit=500).text
    one = get(f"{base}/collections/issues/items/"
              f"{sql('SELECT max(id) FROM issues WHERE reporter_contact IS NOT NULL')[0][0]}",
              ADMIN).text
    for private in ("reporter_contact", "client_uuid", *contacts):
        assert private not in body and private not in one


def test_html_by_f_or_accept(base):
    page = get(f"{base}/collections/grids/items", f="html", limit=3)
    assert page.headers["content-type"].startswith("text/html")
    assert "140429100001001" in page.text and "<table>" in page.text
    browser = httpx.get(f"{base}/collections", headers={"Accept": "text/html,application/xhtml+xml"})
    assert browser.headers["content-type"].startswith("text/html") and "事件 Issues" in browser.text
    assert get(base, f="html").text.count("<a href=") >= 5
    assert httpx.get(base, headers={"Accept": "application/json"}).json()["title"]


def test_openapi_30_definition(base):
    r = get(f"{base}/api")
    assert r.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    doc = r.json()
    assert doc["openapi"].startswith("3.0.")
    params = doc["paths"]["/collections/issues/items"]["get"]["parameters"]
    names = {p.get("name") or p["$ref"].rsplit("/", 1)[-1] for p in params}
    assert {"bbox", "limit", "offset", "datetime", "category", "status", "grid_code"} <= names
    assert doc["components"]["parameters"]["limit"]["schema"]["maximum"] == ogc.MAX_LIMIT


# -- who reads the issues -------------------------------------------------------------------------
def test_issues_need_a_log_in_the_rest_is_public(base, sql):
    issue = sql("SELECT max(id) FROM issues")[0][0]
    for url in (f"{base}/collections/issues/items", f"{base}/collections/issues/items/{issue}"):
        anonymous = get(url)
        assert anonymous.status_code == 401 and "Basic" in anonymous.headers["www-authenticate"]
        assert get(url, ("admin", "wrong")).status_code == 401
        assert get(url, ADMIN).status_code == 200
    for cid in ("grids", "buildings", "facilities"):
        assert get(f"{base}/collections/{cid}/items", limit=1).json()["numberReturned"] == 1
    assert get(f"{base}/collections/issues").json()["id"] == "issues"  # metadata stays public


def test_department_staff_read_their_departments_cases_only(base, sql):
    expected = sql("""SELECT count(*) FROM issues i JOIN departments d ON d.id = i.department_id
                       WHERE d.code = 'huanwei'""")[0][0]
    body = get(f"{base}/collections/issues/items", ("huanwei01", DEMO_PASSWORD), limit=1).json()
    assert body["numberMatched"] == expected > 0
    other = sql("""SELECT min(i.id) FROM issues i JOIN departments d ON d.id = i.department_id
                    WHERE d.code = 'shizheng'""")[0][0]
    assert get(f"{base}/collections/issues/items/{other}",
               ("huanwei01", DEMO_PASSWORD)).status_code == 403
