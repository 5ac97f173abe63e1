"""Who may do what, for every route the application serves: the authorization matrix of issue 12.

The routes come from the app's own route table, so a new route cannot be forgotten:

- :func:`test_every_route_has_a_row` fails for a route (method and path) that :data:`TABLE` does
  not describe (pages under :data:`PAGE_PREFIXES` are covered by their prefix);
- :func:`test_the_anonymous_are_refused` asks every route without credentials: the API answers
  401 and the pages under /maps, /admin and /account 303 to ``/login?next=``, except the public
  doors (:data:`TABLE` rows marked public, static assets, the log-in pages);
- :func:`test_each_role_in_and_out_of_scope` asks every route as each role, once about something
  in their scope and once about something outside it, and compares the statuses (and, for lists,
  whether the item is listed) with the row.

The cells: a worker in their own grid and in another's; a leader inside their community and
outside it (another street's community); a dispatcher inside their district (that other street)
and outside it (another district); department staff on their department's case and on another
department's; the admin on both. The out-of-scope places are added inside the test's
transaction (``tests/api/scope_data.py``), and each request runs in a savepoint of its own that
is rolled back, so one cell's write never changes what the next one meets.

Decisions written here (issue 12's list of public doors): health, log-in, static assets, the
documentation and the OpenAPI document, locate, grids, categories, Open311 services and
discovery, the OGC landing page, conformance, API definition and collection metadata, and the
grids layer are public. Buildings and facilities hold no case data and no personal data: they
stay public to read (their writes need a log-in and a scope). Posting an Open311 request needs an
api_key, not a log-in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

import mapbox_vector_tile
import pytest
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount

from api.main import create_app
from gis.media.photos import clean_photo
from gis.media.storage import FileStorage
from gis.people import api_keys
from gis.queries.tiles import tile_at
from tests.api.conftest import bearer
from tests.api.scope_data import (
    GRID_OTHER,
    GRID_OWN,
    add_case,
    grid_id,
    grid_point,
    other_places,
)
from tests.conftest import DEMO_PASSWORD, _forget_cached_state, app_settings, media_root_of_the_run
from tests.photo_files import camera_jpeg

APP_ROUTES = create_app(app_settings("postgresql://routes-only@127.0.0.1:1/none")).routes
PAGE_PREFIXES = ("/maps/", "/admin", "/account", "/notifications")
LOGIN_PAGES = ("/login", "/logout")  # the log-in page and its form: for the anonymous
STATIC_PREFIX = "/static/"
USERS = ("worker03", "leader", "dispatcher", "shizheng01", "admin")


def route_keys() -> list[tuple[str, str]]:
    """(method, path) of every route; a static mount as (GET, its path)."""
    keys = set()
    for route in iter_route_contexts(APP_ROUTES):
        if isinstance(route.original_route, Mount):
            keys.add(("GET", route.path))
        for method in route.methods or ():
            if method != "HEAD":
                keys.add((method, route.path))
    return sorted(keys, key=lambda k: (k[1], k[0]))


# -- the cells ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    label: str
    username: str
    place: str  # which target: "own" (grid 003), "other" (grid 005), "near" (another street), "far"


CELLS = (
    Cell("worker, own grid", "worker03", "own"),
    Cell("worker, another's grid", "worker03", "other"),
    Cell("leader, in region", "leader", "own"),
    Cell("leader, out of region", "leader", "near"),
    Cell("dispatcher, in region", "dispatcher", "near"),
    Cell("dispatcher, out of region", "dispatcher", "far"),
    Cell("department, own case", "shizheng01", "own"),
    Cell("department, another's case", "shizheng01", "other"),
    Cell("admin", "admin", "own"),
    Cell("admin, anywhere", "admin", "far"),
)


def by_role(worker, leader, dispatcher, department, admin) -> dict[str, Any]:
    """Expected values per cell, each role given as (in scope, out of scope)."""
    pairs = (worker, leader, dispatcher, department, admin)
    return {cell.label: pairs[i // 2][i % 2] for i, cell in enumerate(CELLS)}


def everyone(value) -> dict[str, Any]:
    return {cell.label: value for cell in CELLS}


READ = by_role((200, 200), (200, 403), (200, 403), (200, 403), (200, 200))  # a case
LISTED = {label: status == 200 for label, status in READ.items()}  # a case in a list
STATS = by_role((403, 403), (200, 200), (200, 200), (403, 403), (200, 200))
STATS_LISTED = by_role((None, None), (True, False), (True, False), (None, None), (True, True))
PACKAGE = by_role((200, 200), (200, 403), (200, 403), (200, 200), (200, 200))


def act(ok: int) -> dict[str, int]:
    """A change to a case: whoever may act on it."""
    return by_role((ok, 403), (ok, 403), (ok, 403), (ok, 403), (ok, ok))


def change(ok: int) -> dict[str, int]:
    """A change to buildings and facilities: by grid (department staff change none)."""
    return by_role((ok, 403), (ok, 403), (ok, 403), (403, 403), (ok, ok))


def admin_only(ok: int) -> dict[str, int]:
    return by_role((403, 403), (403, 403), (403, 403), (403, 403), (ok, ok))


# -- the data of a test -------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """What a cell asks about: a case, its grid, a facility and a building there, a point there."""

    issue: int
    grid: str
    facility: int
    building: int
    lon: float
    lat: float
    building_at: tuple[float, float]  # a point of the building
    photo: int = 0  # a photo of the case


@dataclass
class Data:
    sql: Callable
    targets: dict[str, Target]
    api_key: str
    extra: dict = field(default_factory=dict)

    def grid_geometry(self, code: str) -> dict:
        return json.loads(self.sql("SELECT ST_AsGeoJSON(geom) FROM grids WHERE code = :c AND "
                                   "valid_to IS NULL", c=code)[0][0])


def _demo_target(sql, code: str, department: str) -> Target:
    lon, lat = grid_point(sql, code)
    case = add_case(sql, lon, lat, grid_id=grid_id(sql, code), department=department)
    facility, building = sql("""
        SELECT (SELECT min(f.id) FROM facilities f JOIN grids g ON g.id = f.grid_id WHERE g.code = :c),
               (SELECT min(b.id) FROM buildings b JOIN grids g ON g.id = b.grid_id WHERE g.code = :c)""",
                             c=code)[0]
    return Target(case, code, facility, building, lon, lat, _point_of_building(sql, building))


def _point_of_building(sql, building: int) -> tuple[float, float]:
    return tuple(sql("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p "
                     "FROM buildings WHERE id = :b) s", b=building)[0])


# A camera photo, and what GridMap keeps of it (in the media directory of the tests' apps).
MATRIX_JPEG = camera_jpeg((160, 120), gps=(112.86, 36.84))
_CLEAN = clean_photo(MATRIX_JPEG)


def _add_photo(sql, issue_id: int) -> int:
    store = FileStorage(media_root_of_the_run())
    return sql("""INSERT INTO issue_photos (issue_id, content_key, thumbnail_key, width, height,
                                            bytes)
                  VALUES (:i, :c, :t, :w, :h, :b) RETURNING id""",
               i=issue_id, c=store.put(_CLEAN.data), t=store.put(_CLEAN.thumbnail),
               w=_CLEAN.width, h=_CLEAN.height, b=len(_CLEAN.data))[0][0]


@pytest.fixture
def data(sql, session) -> Data:
    places = other_places(sql)
    targets = {"own": _demo_target(sql, GRID_OWN, "shizheng"),
               "other": _demo_target(sql, GRID_OTHER, "huanwei")}
    for name, place in (("near", places.same_district), ("far", places.other_district)):
        targets[name] = Target(place.issue_id, place.grid_code, place.facility_id,
                               place.building_id, place.lon, place.lat,
                               _point_of_building(sql, place.building_id))
    targets = {name: replace(t, photo=_add_photo(sql, t.issue)) for name, t in targets.items()}
    _, key = api_keys.create_api_key(session, "matrix")
    session.flush()
    return Data(sql, targets, key)


@pytest.fixture(scope="module")
def tokens(app_client) -> dict[str, dict]:
    return {user: bearer(app_client, user) for user in USERS}


# -- a request ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Call:
    url: str
    json: Any = None
    data: dict | None = None
    files: dict | None = None


Make = Callable[[Data, Target], Call]


@dataclass(frozen=True)
class Variant:
    """One way of calling a route: the request for a target, what the anonymous get, and per cell
    the status (None: not asked here) and, for lists, whether the target is listed."""

    make: Make
    anonymous: int
    cells: dict[str, int] | None = None
    listed: Callable[[Any, Target], bool] | None = None
    expect_listed: dict[str, bool | None] | None = None
    name: str = ""


def row(*variants: Variant) -> tuple[Variant, ...]:
    return variants


def fixed(url: str, **kw) -> Make:
    return lambda d, t: Call(url, **kw)


def _ids(response) -> set:
    return {f["id"] for f in response.json()["features"]}


def _open311_ids(response) -> set:
    return {int(r["service_request_id"]) for r in response.json()}


def _tile_issue_ids(response) -> set:
    if response.status_code == 204:
        return set()
    layer = mapbox_vector_tile.decode(response.content).get("issues", {"features": []})
    return {f["properties"].get("issue_id") for f in layer["features"]}


def _tile(t: Target, layer: str, z: int) -> str:
    """The tile holding the target's building (buildings layer) or its point (the others)."""
    x, y = tile_at(*(t.building_at if layer == "buildings" else (t.lon, t.lat)), z)
    return f"/tiles/{layer}/{z}/{x}/{y}.mvt"


def _square(lon: float, lat: float, half: float = 0.00005) -> dict:
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half],
            [lon - half, lat + half], [lon - half, lat - half]]
    return {"type": "Polygon", "coordinates": [ring]}


def _at(d: Data, t: Target, status: str, *photo_kinds: str) -> None:
    """The target case put in ``status`` (inside the request's savepoint), with photo rows of
    ``photo_kinds``."""
    d.sql("UPDATE issues SET status = :s WHERE id = :i", s=status, i=t.issue)
    for kind in photo_kinds:
        d.sql("""INSERT INTO issue_photos (issue_id, kind, content_key, thumbnail_key, width,
                                           height, bytes) VALUES (:i, :k, 'c', 't', 1, 1, 1)""",
              i=t.issue, k=kind)


def _acting(status: str, action: str, body: dict, *photo_kinds: str) -> Make:
    def make(d: Data, t: Target) -> Call:
        _at(d, t, status, *photo_kinds)
        return Call(f"/api/v1/issues/{t.issue}/{action}", json=body)
    return make


def _check_photo(d: Data, t: Target) -> Call:
    """A photo of a check of the target's facility made by the admin (so that no other cell
    made it), which opened the target case."""
    check = d.sql("""INSERT INTO facility_checks (facility_id, actor_id, result, issue_id)
                     VALUES (:f, (SELECT id FROM users WHERE username = 'admin'), 'damaged', :i)
                     RETURNING id""", f=t.facility, i=t.issue)[0][0]
    return Call(f"/api/v1/facility-checks/{check}/photos",
                files={"photo": ("photo.jpg", MATRIX_JPEG, "image/jpeg")})


def _tasks(d: Data, t: Target) -> Call:
    # long overdue: first in every list that holds it, whatever else is open
    d.sql("UPDATE issues SET due_at = now() - interval '10 years' WHERE id = :i", i=t.issue)
    return Call(f"/api/v1/me/tasks?lon={t.lon}&lat={t.lat}")


# The command centre. The targets' cases are the 市政所's (own) and the 环卫所's (other): a worker
# handles no department's case; dispatchers, leaders and admins decide in their region.
DISPATCH = by_role((403, 403), (200, 403), (200, 403), (403, 403), (200, 200))
DESK = by_role((403, 403), (200, 200), (200, 200), (403, 403), (200, 200))


def HANDLE(ok: int) -> dict[str, int]:  # noqa: N802 - a cell table, like act()
    return by_role((403, 403), (403, 403), (403, 403), (ok, 403), (ok, ok))


def DECIDE_OR_HANDLE(ok: int) -> dict[str, int]:  # noqa: N802
    return by_role((403, 403), (ok, 403), (ok, 403), (ok, 403), (ok, ok))


def _pending_extension(d: Data, t: Target) -> Call:
    _at(d, t, "dispatched")
    d.sql("INSERT INTO extension_requests (issue_id, value, unit, reason) "
          "VALUES (:i, 2, 'workdays', '材料未到')", i=t.issue)
    return Call(f"/api/v1/issues/{t.issue}/extensions/decision", json={"approve": True})


def _supervision_reply(d: Data, t: Target) -> Call:
    _at(d, t, "dispatched")
    notice = d.sql("INSERT INTO supervisions (issue_id, note) VALUES (:i, '请加快') RETURNING id",
                   i=t.issue)[0][0]
    return Call(f"/api/v1/supervisions/{notice}/reply", json={"reply": "已处理"})


def _a_rule(d: Data, t: Target) -> Call:
    rule = d.sql("INSERT INTO dispatch_rules (category, region_id, department_id) "
                 "VALUES ('noise', (SELECT id FROM regions WHERE code = '140429'), NULL) "
                 "ON CONFLICT ON CONSTRAINT one_rule_per_category_and_region DO UPDATE SET auto = true "
                 "RETURNING id")[0][0]
    return Call(f"/api/v1/dispatch-rules/{rule}")


def _late(d: Data, t: Target) -> Call:
    """The overdue list, with the target case past its promised deadline."""
    d.sql("UPDATE issues SET due_at = now() - interval '1 hour' WHERE id = :i", i=t.issue)
    return Call("/api/v1/dashboard/overdue?limit=1000")


# A worker's tasks are the cases of their grids; everyone else's, the cases of their scope.
TASKS_LISTED = by_role((True, False), (True, False), (True, False), (True, False), (True, True))
NEW_PASSWORD = "Matrix-Check-2026!x"
PUBLIC = everyone(200)

# (method, path) -> the ways of calling it. Anonymous first, then each cell.
TABLE: dict[tuple[str, str], tuple[Variant, ...]] = {
    # -- public ---------------------------------------------------------------------------------
    ("GET", "/health"): row(Variant(fixed("/health"), 200, PUBLIC)),
    ("GET", "/openapi.json"): row(Variant(fixed("/openapi.json"), 200, PUBLIC)),
    ("GET", "/docs"): row(Variant(fixed("/docs"), 200, PUBLIC)),
    ("GET", "/docs/oauth2-redirect"): row(Variant(fixed("/docs/oauth2-redirect"), 200, PUBLIC)),
    ("GET", "/redoc"): row(Variant(fixed("/redoc"), 200, PUBLIC)),
    # the worker app's shell holds no case data: it must open with no network and no session
    ("GET", "/app"): row(Variant(fixed("/app"), 308, everyone(308))),
    ("GET", "/app/"): row(Variant(fixed("/app/"), 200, PUBLIC)),
    ("GET", "/app/sw.js"): row(Variant(fixed("/app/sw.js"), 200, PUBLIC)),
    ("GET", "/app/config.json"): row(Variant(fixed("/app/config.json"), 200, PUBLIC)),
    # a log-in carries its own credentials: no row per cell
    ("POST", "/api/v1/auth/token"): row(Variant(
        fixed("/api/v1/auth/token", data={"username": "worker03", "password": DEMO_PASSWORD}), 200)),
    ("GET", "/api/v1/locate"): row(Variant(
        lambda d, t: Call(f"/api/v1/locate?lon={t.lon}&lat={t.lat}"), 200, PUBLIC)),
    ("GET", "/api/v1/categories"): row(Variant(fixed("/api/v1/categories"), 200, PUBLIC)),
    ("GET", "/api/v1/grids"): row(Variant(fixed("/api/v1/grids"), 200, PUBLIC)),
    ("GET", "/api/v1/grids/{code}"): row(Variant(
        lambda d, t: Call(f"/api/v1/grids/{t.grid}"), 200, PUBLIC)),
    ("GET", "/api/v1/buildings"): row(Variant(fixed("/api/v1/buildings"), 200, PUBLIC)),
    ("GET", "/api/v1/buildings/{building_id}"): row(Variant(
        lambda d, t: Call(f"/api/v1/buildings/{t.building}"), 200, PUBLIC)),
    ("GET", "/api/v1/facilities"): row(Variant(fixed("/api/v1/facilities"), 200, PUBLIC)),
    ("GET", "/api/v1/facilities/{facility_id}"): row(Variant(
        lambda d, t: Call(f"/api/v1/facilities/{t.facility}"), 200, PUBLIC)),
    ("GET", "/open311/v2/discovery.{fmt}"): row(Variant(fixed("/open311/v2/discovery.json"), 200,
                                                        PUBLIC)),
    ("GET", "/open311/v2/services.{fmt}"): row(Variant(fixed("/open311/v2/services.xml"), 200,
                                                       PUBLIC)),
    ("GET", "/open311/v2/services/{service_code}.{fmt}"): row(Variant(
        fixed("/open311/v2/services/garbage.json"), 200, PUBLIC)),
    # posting needs an api_key, with or without a log-in
    ("POST", "/open311/v2/requests.{fmt}"): row(
        Variant(lambda d, t: Call("/open311/v2/requests.json", data={
            "service_code": "garbage", "lat": str(t.lat), "long": str(t.lon)}), 403, everyone(403),
            name="without api_key"),
        Variant(lambda d, t: Call("/open311/v2/requests.json", data={
            "service_code": "garbage", "lat": str(t.lat), "long": str(t.lon),
            "api_key": d.api_key}), 201, everyone(201), name="with api_key")),
    ("GET", "/open311/v2/{anything:path}"): row(Variant(fixed("/open311/v2/nothing.json"), 404,
                                                        everyone(404))),
    ("POST", "/open311/v2/{anything:path}"): row(Variant(fixed("/open311/v2/nothing.json"), 404,
                                                         everyone(404))),
    ("GET", "/ogc"): row(Variant(fixed("/ogc"), 200, PUBLIC)),
    ("GET", "/ogc/"): row(Variant(fixed("/ogc/"), 200, PUBLIC)),
    ("GET", "/ogc/conformance"): row(Variant(fixed("/ogc/conformance"), 200, PUBLIC)),
    ("GET", "/ogc/api"): row(Variant(fixed("/ogc/api"), 200, PUBLIC)),
    ("GET", "/ogc/collections"): row(Variant(fixed("/ogc/collections"), 200, PUBLIC)),
    ("GET", "/ogc/collections/{collection_id}"): row(Variant(fixed("/ogc/collections/issues"), 200,
                                                             PUBLIC)),
    ("GET", "/ogc/collections/{collection_id}/items"): row(
        *(Variant(fixed(f"/ogc/collections/{cid}/items?limit=5"), 200, PUBLIC, name=cid)
          for cid in ("grids", "buildings", "facilities")),
        Variant(lambda d, t: Call(f"/ogc/collections/issues/items?grid_code={t.grid}&limit=5000"),
                401, everyone(200), lambda r, t: t.issue in _ids(r), LISTED, name="issues")),
    ("GET", "/ogc/collections/{collection_id}/items/{feature_id}"): row(
        Variant(lambda d, t: Call(f"/ogc/collections/grids/items/{t.grid}"), 200, PUBLIC,
                name="grids"),
        Variant(lambda d, t: Call(f"/ogc/collections/buildings/items/{t.building}"), 200, PUBLIC,
                name="buildings"),
        Variant(lambda d, t: Call(f"/ogc/collections/facilities/items/{t.facility}"), 200, PUBLIC,
                name="facilities"),
        Variant(lambda d, t: Call(f"/ogc/collections/issues/items/{t.issue}"), 401, READ,
                name="issues")),
    ("GET", "/tiles/{layer}.json"): row(
        *(Variant(fixed(f"/tiles/{layer}.json"), 200, PUBLIC, name=layer)
          for layer in ("grids", "buildings", "facilities")),
        Variant(fixed("/tiles/issues.json"), 401, everyone(200), name="issues")),
    ("GET", "/tiles/{layer}/{z}/{x}/{y}.mvt"): row(
        *(Variant(lambda d, t, layer=layer: Call(_tile(t, layer, 17)), 200, PUBLIC, name=layer)
          for layer in ("grids", "buildings", "facilities")),
        # at zoom 22 a cell is a few centimetres: the target case is alone in its cell
        Variant(lambda d, t: Call(_tile(t, "issues", 22)), 401, everyone(200),
                lambda r, t: t.issue in _tile_issue_ids(r), LISTED, name="issues")),
    # -- the caller's own account -----------------------------------------------------------------
    ("GET", "/api/v1/me"): row(Variant(fixed("/api/v1/me"), 401, everyone(200))),
    ("GET", "/api/v1/calendar/status"): row(Variant(fixed("/api/v1/calendar/status"), 401,
                                                    everyone(200))),
    ("POST", "/api/v1/me/password"): row(Variant(
        fixed("/api/v1/me/password", json={"old_password": DEMO_PASSWORD,
                                           "new_password": NEW_PASSWORD}), 401, everyone(200))),
    ("POST", "/api/v1/auth/logout"): row(Variant(fixed("/api/v1/auth/logout"), 401, everyone(204))),
    # -- grids: admins change them ----------------------------------------------------------------
    ("POST", "/api/v1/grids"): row(Variant(fixed("/api/v1/grids", json={
        "code": "140429100001015", "name": "矩阵网格", "community": "140429100001",
        "geometry": _square(112.875, 36.84, 0.001)}), 401, admin_only(201))),
    ("PUT", "/api/v1/grids/{code}"): row(Variant(
        lambda d, t: Call(f"/api/v1/grids/{t.grid}", json={"geometry": d.grid_geometry(t.grid)}),
        401, admin_only(200))),
    ("DELETE", "/api/v1/grids/{code}"): row(Variant(
        lambda d, t: Call(f"/api/v1/grids/{t.grid}"), 401, admin_only(204))),
    # -- buildings and facilities: changed by grid ------------------------------------------------
    ("POST", "/api/v1/buildings"): row(Variant(lambda d, t: Call("/api/v1/buildings", json={
        "geometry": _square(t.lon, t.lat), "name": "矩阵楼"}), 401, change(201))),
    ("PATCH", "/api/v1/buildings/{building_id}"): row(Variant(
        lambda d, t: Call(f"/api/v1/buildings/{t.building}", json={"floors": 7}), 401, change(200))),
    ("POST", "/api/v1/facilities"): row(Variant(lambda d, t: Call("/api/v1/facilities", json={
        "geometry": {"type": "Point", "coordinates": [t.lon, t.lat]}, "category": "streetlight"}),
        401, change(201))),
    ("PATCH", "/api/v1/facilities/{facility_id}"): row(Variant(
        lambda d, t: Call(f"/api/v1/facilities/{t.facility}", json={"status": "damaged"}), 401,
        change(200))),
    # -- cases ----------------------------------------------------------------------------------
    ("GET", "/api/v1/issues"): row(Variant(
        lambda d, t: Call(f"/api/v1/issues?grid={t.grid}&limit=5000"), 401, everyone(200),
        lambda r, t: t.issue in _ids(r), LISTED)),
    ("GET", "/api/v1/issues/{issue_id}"): row(Variant(
        lambda d, t: Call(f"/api/v1/issues/{t.issue}"), 401, READ)),
    ("GET", "/api/v1/issues/{issue_id}/history"): row(Variant(
        lambda d, t: Call(f"/api/v1/issues/{t.issue}/history"), 401, READ)),
    ("POST", "/api/v1/issues"): row(Variant(lambda d, t: Call("/api/v1/issues", json={
        "category": "garbage", "lon": t.lon, "lat": t.lat}), 401, everyone(201))),  # anyone reports
    # photos: added by whoever may act on the case (and its reporter); seen by its readers
    ("POST", "/api/v1/issues/{issue_id}/photos"): row(Variant(
        lambda d, t: Call(f"/api/v1/issues/{t.issue}/photos",
                          files={"photo": ("photo.jpg", MATRIX_JPEG, "image/jpeg")}),
        401, act(201))),
    ("GET", "/api/v1/photos/{photo_id}"): row(Variant(
        lambda d, t: Call(f"/api/v1/photos/{t.photo}"), 401, READ)),
    ("GET", "/api/v1/photos/{photo_id}/thumbnail"): row(Variant(
        lambda d, t: Call(f"/api/v1/photos/{t.photo}/thumbnail"), 401, READ)),
    ("POST", "/api/v1/issues/{issue_id}/transitions"): row(Variant(
        lambda d, t: Call(f"/api/v1/issues/{t.issue}/transitions", json={"to": "in_progress"}),
        401, act(200))),
    # work on site (核实, 核查, 自处理, 部件巡检): whoever may act on the case, or change in the grid
    ("POST", "/api/v1/issues/{issue_id}/verify"): row(Variant(
        _acting("reported", "verify", {"valid": True}), 401, act(200))),
    ("POST", "/api/v1/issues/{issue_id}/check"): row(Variant(
        _acting("resolved", "check", {"passed": True}), 401, act(200))),
    ("POST", "/api/v1/issues/{issue_id}/self-resolve"): row(Variant(
        _acting("reported", "self-resolve", {}, "before", "after"), 401, act(200))),
    ("POST", "/api/v1/facilities/{facility_id}/checks"): row(Variant(
        lambda d, t: Call(f"/api/v1/facilities/{t.facility}/checks", json={"result": "damaged"}),
        401, change(201))),
    ("POST", "/api/v1/facility-checks/{check_id}/photos"): row(Variant(
        _check_photo, 401, change(201))),
    ("GET", "/api/v1/me/tasks"): row(Variant(
        _tasks, 401, everyone(200), lambda r, t: t.issue in _ids(r), TASKS_LISTED)),
    ("GET", "/api/v1/issues/duplicates"): row(Variant(
        lambda d, t: Call(f"/api/v1/issues/duplicates?lon={t.lon}&lat={t.lat}&category=garbage"),
        401, everyone(200), lambda r, t: t.issue in {i["id"] for i in r.json()}, LISTED)),
    ("GET", "/open311/v2/requests.{fmt}"): row(Variant(
        lambda d, t: Call(f"/open311/v2/requests.json?service_request_id={t.issue}"), 401,
        everyone(200), lambda r, t: t.issue in _open311_ids(r), LISTED)),
    ("GET", "/open311/v2/requests/{service_request_id}.{fmt}"): row(Variant(
        lambda d, t: Call(f"/open311/v2/requests/{t.issue}.xml"), 401, READ)),
    ("GET", "/api/v1/grids/{code}/package"): row(Variant(
        lambda d, t: Call(f"/api/v1/grids/{t.grid}/package"), 401, PACKAGE)),
    # -- the command centre: dispatch, the branches, rules, notifications --------------------------
    ("POST", "/api/v1/issues/{issue_id}/dispatch"): row(Variant(
        _acting("accepted", "dispatch", {"department": "huanwei"}), 401, DISPATCH)),
    ("POST", "/api/v1/issues/{issue_id}/return"): row(Variant(
        _acting("dispatched", "return", {"reason": "非本部门职责"}), 401, HANDLE(200))),
    ("POST", "/api/v1/issues/{issue_id}/hold"): row(Variant(
        _acting("in_progress", "hold", {"reason": "等待资金"}), 401, HANDLE(200))),
    ("POST", "/api/v1/issues/{issue_id}/resume"): row(Variant(
        _acting("on_hold", "resume", {}), 401, DECIDE_OR_HANDLE(200))),
    ("POST", "/api/v1/issues/{issue_id}/extensions"): row(Variant(
        _acting("dispatched", "extensions", {"value": 2, "unit": "workdays", "reason": "材料"}),
        401, HANDLE(201))),
    ("POST", "/api/v1/issues/{issue_id}/extensions/decision"): row(Variant(
        _pending_extension, 401, DISPATCH)),
    ("POST", "/api/v1/issues/{issue_id}/supervisions"): row(Variant(
        _acting("dispatched", "supervisions", {"note": "请加快处理"}), 401,
        by_role((403, 403), (201, 403), (403, 403), (403, 403), (201, 201)))),
    ("POST", "/api/v1/supervisions/{supervision_id}/reply"): row(Variant(
        _supervision_reply, 401,
        by_role((403, 403), (403, 403), (200, 403), (200, 403), (200, 200)))),
    ("GET", "/api/v1/me/notifications"): row(Variant(fixed("/api/v1/me/notifications"), 401,
                                                     everyone(200))),
    ("POST", "/api/v1/me/notifications/read"): row(Variant(
        fixed("/api/v1/me/notifications/read", json={"all": True}), 401, everyone(200))),
    ("GET", "/api/v1/dispatch-rules"): row(Variant(fixed("/api/v1/dispatch-rules"), 401, DESK)),
    ("PUT", "/api/v1/dispatch-rules"): row(Variant(fixed("/api/v1/dispatch-rules", json={
        "category": "garbage", "department": "huanwei"}), 401, admin_only(200))),
    ("DELETE", "/api/v1/dispatch-rules/{rule_id}"): row(Variant(_a_rule, 401, admin_only(204))),
    ("GET", "/api/v1/stats/dispatch"): row(Variant(fixed("/api/v1/stats/dispatch"), 401, DESK)),
    # -- statistics: leaders, dispatchers, admins, each over their region -------------------------
    ("GET", "/api/v1/stats/grids"): row(Variant(
        fixed("/api/v1/stats/grids"), 401, STATS,
        lambda r, t: t.grid in {g["grid_code"] for g in r.json()["data"]}, STATS_LISTED)),
    ("GET", "/api/v1/stats/timeline"): row(Variant(fixed("/api/v1/stats/timeline"), 401, STATS)),
    ("GET", "/api/v1/stats/workers"): row(Variant(fixed("/api/v1/stats/workers"), 401, STATS)),
    # -- the leaders' dashboard: as the statistics, over each reader's region --------------------
    ("GET", "/api/v1/dashboard/summary"): row(Variant(fixed("/api/v1/dashboard/summary"), 401,
                                                      STATS)),
    ("GET", "/api/v1/dashboard/trend"): row(Variant(fixed("/api/v1/dashboard/trend"), 401, STATS)),
    ("GET", "/api/v1/dashboard/overdue"): row(Variant(
        _late, 401, STATS, lambda r, t: t.issue in {c["id"] for c in r.json()["data"]},
        STATS_LISTED)),
    ("GET", "/api/v1/dashboard/heat"): row(Variant(
        fixed("/api/v1/dashboard/heat"), 401, STATS,
        lambda r, t: t.grid in {f["properties"]["code"] for f in r.json()["grids"]["features"]},
        STATS_LISTED)),
    ("GET", "/dash"): row(Variant(fixed("/dash"), 303, STATS)),
    # -- people and the audit trail ----------------------------------------------------------------
    ("GET", "/api/v1/audit"): row(Variant(fixed("/api/v1/audit"), 401, admin_only(200))),
    ("GET", "/api/v1/departments"): row(Variant(fixed("/api/v1/departments"), 401, everyone(200))),
    ("POST", "/api/v1/departments"): row(Variant(fixed("/api/v1/departments", json={
        "code": "matrix", "name": "矩阵所", "categories": ["garbage"]}), 401, admin_only(201))),
    ("GET", "/api/v1/users"): row(Variant(fixed("/api/v1/users"), 401, admin_only(200))),
    ("POST", "/api/v1/users"): row(Variant(lambda d, t: Call("/api/v1/users", json={
        "username": "matrix01", "display_name": "矩阵", "role": "worker", "grids": [t.grid]}),
        401, admin_only(201))),
    # who held a grid when: admins, and leaders and dispatchers for the grids of their region
    ("GET", "/api/v1/users/assignments"): row(Variant(
        lambda d, t: Call(f"/api/v1/users/assignments?grid={t.grid}"), 401,
        by_role((403, 403), (200, 403), (200, 403), (403, 403), (200, 200)))),
    ("GET", "/api/v1/users/{username}"): row(Variant(fixed("/api/v1/users/worker05"), 401,
                                                     admin_only(200))),
    ("PATCH", "/api/v1/users/{username}"): row(Variant(fixed(
        "/api/v1/users/worker05", json={"display_name": "矩阵改名"}), 401, admin_only(200))),
    ("POST", "/api/v1/users/{username}/disable"): row(Variant(
        fixed("/api/v1/users/worker05/disable"), 401, admin_only(200))),
    ("POST", "/api/v1/users/{username}/enable"): row(Variant(
        fixed("/api/v1/users/worker05/enable"), 401, admin_only(200))),
    ("POST", "/api/v1/users/{username}/password"): row(Variant(
        fixed("/api/v1/users/worker05/password", json={}), 401, admin_only(200))),
    # -- pages: the anonymous go to the log-in page; what each role sees is the pages' own tests'
    ("GET", "/maps/grid/{code}"): row(Variant(
        lambda d, t: Call(f"/maps/grid/{t.grid}"), 303, {"admin": 200})),
    ("GET", "/maps/issue/{issue_id}"): row(Variant(
        lambda d, t: Call(f"/maps/issue/{t.issue}"), 303, {"admin": 200})),
    ("GET", "/maps/heatmap"): row(Variant(fixed("/maps/heatmap"), 303, {"admin": 200})),
    ("GET", "/maps/overview"): row(Variant(fixed("/maps/overview"), 303, {"admin": 200})),
    ("GET", "/static/patched/{path:path}"): row(Variant(fixed(
        "/static/patched/leaflet-timedimension/dist/leaflet.timedimension.control.css"), 200,
        PUBLIC)),
}


def _is_page(path: str) -> bool:
    return path.startswith(PAGE_PREFIXES)


def _is_static(path: str) -> bool:
    return path.startswith(STATIC_PREFIX)


# -- generic requests, for routes the table does not know (a page added later) ---------------------
def _generic_url(path: str, t: Target) -> str:
    fills = {"code": t.grid, "issue_id": t.issue, "building_id": t.building,
             "facility_id": t.facility, "username": "worker03", "fmt": "json"}
    url = path
    while "{" in url:
        start, end = url.index("{"), url.index("}")
        name = url[start + 1:end].split(":")[0]
        url = url[:start] + str(fills.get(name, 1)) + url[end + 1:]
    return url


def _send(client, method: str, call: Call, headers: dict | None = None):
    kwargs = {"headers": headers or {}, "follow_redirects": False}
    if call.json is not None:
        kwargs["json"] = call.json
    if call.data is not None:
        kwargs["data"] = call.data
    if call.files is not None:
        kwargs["files"] = call.files
    return client.request(method, call.url, **kwargs)


@contextmanager
def isolated(conn, app, method: str) -> Iterator[None]:
    """One request in a savepoint of the test's transaction, rolled back afterwards; after a
    write the app's caches keyed by database counters are emptied, as the rollback moves the
    counters back."""
    savepoint = conn.begin_nested()
    try:
        yield
    finally:
        savepoint.rollback()
        if method != "GET":
            _forget_cached_state(app)


# -- the tests ----------------------------------------------------------------------------------
ROUTES = route_keys()


def test_every_route_has_a_row():
    missing = [f"{m} {p}" for m, p in ROUTES
               if (m, p) not in TABLE and not _is_page(p) and not _is_static(p)
               and not p.startswith(LOGIN_PAGES)]
    assert not missing, ("routes without a row in the authorization matrix; add what each role "
                         f"may do to TABLE: {missing}")
    gone = [f"{m} {p}" for m, p in TABLE if (m, p) not in ROUTES and not _is_page(p)]
    assert not gone, f"rows for routes the app no longer serves: {gone}"


# A log-in page: it never asks the anonymous to log in first (no 401, no redirect to itself);
# a post without the form's own token is 403, the log-in form's CSRF, not a demand to log in.
OPEN = "open to the anonymous"
REFUSED = "refused"  # a page's form: sent to log in (303), or 401/403; never done


def _unlisted_call(method: str, path: str, t: Target) -> tuple[Call, int | str]:
    """The request and the anonymous's answer for a route without a row: a static file (200), a
    log-in page (open), a page (303 to log in; a form: refused), else the API's 401."""
    if _is_static(path):
        name = "gridmap.css" if path.endswith("/gridmap") else "package.json"
        return Call(f"{path}/{name}"), 200
    if path.startswith(LOGIN_PAGES):
        return Call(_generic_url(path, t)), OPEN
    if _is_page(path):
        return Call(_generic_url(path, t)), 303 if method == "GET" else REFUSED
    return Call(_generic_url(path, t)), 401


def _check_anonymous(response, call: Call, expected: int | str) -> str | None:
    """What is wrong with the anonymous's answer, or None."""
    status, location = response.status_code, response.headers.get("location", "")
    if expected == OPEN:
        return None if status != 401 and "/login?next=" not in location else f"{status}"
    if expected == REFUSED:
        return None if status in (401, 403) or (status == 303 and location.startswith(
            "/login")) else f"{status} {location}"
    if status != expected:
        return f"{status}, expected {expected}"
    if status == 303:
        want = "/login?next=" + quote(call.url, safe="/")
        if location != want:
            return f"303 to {location}, expected {want}"
    if status == 401 and "Bearer" not in response.headers.get("www-authenticate", ""):
        return "401 without WWW-Authenticate"
    return None


@pytest.mark.parametrize("key", ROUTES, ids=lambda k: f"{k[0]} {k[1]}")
def test_the_anonymous_are_refused(client, data, db_connection, key):
    method, path = key
    target = data.targets["own"]
    if key in TABLE:
        asks = [(v.make(data, target), v.anonymous, v.name) for v in TABLE[key]]
    else:
        asks = [(*_unlisted_call(method, path, target), "")]
    wrong = {}
    for call, expected, name in asks:
        with isolated(db_connection, client.app, method):
            problem = _check_anonymous(_send(client, method, call), call, expected)
        if problem:
            wrong[name or call.url] = problem
    assert not wrong, wrong


ROLE_ROUTES = [k for k in ROUTES if k in TABLE and any(v.cells for v in TABLE[k])]


@pytest.mark.parametrize("key", ROLE_ROUTES, ids=lambda k: f"{k[0]} {k[1]}")
def test_each_role_in_and_out_of_scope(client, tokens, data, db_connection, key):
    method, _ = key
    got, want = {}, {}
    for variant in TABLE[key]:
        for cell in CELLS:
            expected = (variant.cells or {}).get(cell.label)
            if expected is None:
                continue
            target = data.targets[cell.place]
            label = f"{variant.name} {cell.label}".strip()
            with isolated(db_connection, client.app, method):
                response = _send(client, method, variant.make(data, target),
                                 tokens[cell.username])
                status = response.status_code
                if variant.listed and status == 204:
                    status = 200  # an empty tile is an empty list
                got[label], want[label] = status, expected
                listed = (variant.expect_listed or {}).get(cell.label)
                if listed is not None and status == 200:
                    got[f"{label}: listed"] = variant.listed(response, target)
                    want[f"{label}: listed"] = listed
    assert got == want
