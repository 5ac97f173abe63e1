"""HTML map pages: parse the query, fetch with ``gis.queries.map_data``, render with ``maps``.

Pages are closed by default (docs/ARCHITECTURE.md, "People and scopes"): a reader who is not
logged in is sent to the log-in page and back (:data:`api.deps.PageReader`), unless
``GRIDMAP_PUBLIC_READ`` opens them. Each page shows its reader's scope: the cases are selected
through a :class:`gis.queries.reads.ScopedFilter`, an issue page outside the scope is a 403.
Pages never carry personal data (descriptions and notes masked; the issue page's own script asks
the API, with the session cookie, for what its reader may see).

Rendered pages are cached per filter, data version and reader's scope (``Actor.scope_key``),
never per session: the parts that belong to one session (its CSRF token, the user bar with the
log-out form) are added to each answer after the cache (:func:`api.pages.routing.personalise`).
The JS/CSS the pages load is served from ``/static/`` to anyone. :func:`install` sets all this
up with ``Settings.maps`` (:class:`api.settings.MapSettings`), given by the app factory.
The heatmap and the overview read on the read session (a standby when there is one); the page
cache is keyed by the data version the page was read at, so a page built on a standby a moment
behind is never served as a newer one.
"""

from __future__ import annotations

import threading
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BeforeValidator

from api.deps import PageReader, ReadSessionDep, SessionDep
from api.pages.routing import PageRoute, personalise
from api.settings import MapSettings
from api.startup import freeze_start_up_objects
from gis.errors import SetupError
from gis.issues.detail import issue_access, issue_detail, issue_photos
from gis.people.actors import Actor
from gis.queries import map_data
from gis.queries.filters import IssueFilter
from gis.queries.reads import ScopedFilter
from maps import assets
from maps.base import BaseMapOptions, render
from maps.cache import PageCache
from maps.grid_map import build_grid_map
from maps.heatmap import build_heatmap
from maps.issue_page import build_issue_page
from maps.overview import build_overview

router = APIRouter(prefix="/maps", tags=["maps"], route_class=PageRoute)
Lang = Annotated[Literal["zh", "en"], Query(description="Label language")]
Basemap = Annotated[Literal["none", "osm", "tianditu", "amap"] | None,
                    Query(description="Base map; online ones need GRIDMAP_MAPS_ONLINE")]


def install(app: FastAPI, settings: MapSettings) -> None:
    """Add the pages and their cache; serve the pinned npm packages (from
    ``settings.node_modules``) and maps/static under /static/; and warm the hotspot statistics
    import (PySAL takes seconds to import) off the request path."""
    app.include_router(router)
    app.state.map_cache = PageCache(settings.cache_pages, settings.cache_ttl_s)
    app.add_api_route(f"{assets.PATCHED_URL}/{{path:path}}", patched_asset, methods=["GET"],
                      include_in_schema=False)
    for prefix, directory in assets.static_mounts(settings.node_modules):
        app.mount(prefix, StaticFiles(directory=directory, check_dir=False), name=prefix)
    threading.Thread(target=_warm_up, name="gridmap-warm-up", daemon=True).start()


def _warm_up() -> None:
    map_data.warm_up()
    freeze_start_up_objects()  # PySAL's and SciPy's objects, out of the collector's way


def patched_asset(path: str, request: Request) -> Response:
    """An npm file that itself links to a CDN, served with the link pointed here instead."""
    if path not in assets.PATCHES:
        return Response(status_code=404)
    media = "text/css" if path.endswith(".css") else "application/javascript"
    text = assets.patched_file(path, request.app.state.settings.maps.node_modules)
    return Response(text, media_type=f"{media}; charset=utf-8",
                    headers={"Cache-Control": "public, max-age=3600"})


def _context(request: Request, basemap: str | None) -> tuple[MapSettings, PageCache, BaseMapOptions]:
    cfg: MapSettings = request.app.state.settings.maps
    missing = assets.missing_assets(cfg.node_modules)
    if missing:
        raise SetupError(f"map assets are not installed ({missing[0]}, ...): run `make assets`")
    options = BaseMapOptions(basemap or cfg.basemap, online=cfg.online,
                             tianditu_key=cfg.tianditu_key)
    return cfg, request.app.state.map_cache, options


def _page(request: Request, actor: Actor | None, lang: str, cache: PageCache, key: tuple,
          build) -> HTMLResponse:
    page, hit = cache.get_or_build(key, lambda: render(build()))
    return HTMLResponse(personalise(page, request, actor, lang),
                        headers={"X-Page-Cache": "hit" if hit else "miss",
                                 "Cache-Control": "private, no-store"})


def _scoped(request: Request, actor: Actor | None, flt: IssueFilter | None = None) -> ScopedFilter:
    return ScopedFilter.of(flt or IssueFilter(), actor,
                           public_read=request.app.state.settings.public_read)


def _scope_key(actor: Actor | None) -> tuple | None:
    return actor.scope_key() if actor is not None else None


@router.get("/grid/{code}", response_class=HTMLResponse, summary="A grid worker's tablet map")
def grid_map(code: str, request: Request, session: SessionDep, actor: PageReader,
             lang: Lang = "zh", basemap: Basemap = None) -> HTMLResponse:
    cfg, cache, options = _context(request, basemap)
    key = ("grid", code, lang, options, _scope_key(actor), map_data.data_version(session))
    return _page(request, actor, lang, cache, key, lambda: build_grid_map(
        map_data.grid_map_data(session, code, _scoped(request, actor)), lang=lang,
        options=options, issue_link=cfg.issue_link))


@router.get("/issue/{issue_id}", response_class=HTMLResponse,
            summary="The page to act on one issue (details, history and the workflow form)")
def issue_page(issue_id: Annotated[int, Path(ge=1, le=2_147_483_647, description="Issue id")],
               request: Request, session: SessionDep, actor: PageReader, lang: Lang = "zh",
               basemap: Basemap = None) -> HTMLResponse:
    _, cache, options = _context(request, basemap)
    access = issue_access(session, issue_id, actor,
                          public_read=request.app.state.settings.public_read)
    photos = issue_photos(session, issue_id)
    # Every status change adds an issue_events row, which changes the data version; an upload
    # changes the photos.
    key = ("issue", issue_id, lang, options, access, _scope_key(actor),
           map_data.data_version(session), tuple(p["id"] for p in photos))
    return _page(request, actor, lang, cache, key, lambda: build_issue_page(
        issue_detail(session, issue_id), access=access, lang=lang, options=options,
        photos=_linked(request, photos)))


def _linked(request: Request, photos: list[dict]) -> list[dict]:
    """The photos with the paths that serve them (not absolute URLs: a cached page is served
    under whichever host name it is asked for)."""
    def path(name: str, photo_id: int) -> str:
        return str(request.app.url_path_for(name, photo_id=photo_id))
    return [p | {"url": path("photo", p["id"]), "thumbnail_url": path("photo_thumbnail", p["id"])}
            for p in photos]


def _blank_to_none(value):
    return value or None  # an empty form field means "no filter"


Day = Annotated[date | None, BeforeValidator(_blank_to_none)]


def issue_filter(
    category: Annotated[list[str], Query(description="Issue category code(s)")] = (),
    status: Annotated[list[str], Query(description="Status(es), or 'open' / 'final'")] = (),
    since: Annotated[Day, Query(description="First day (Beijing time)")] = None,
    until: Annotated[Day, Query(description="Last day, inclusive")] = None,
    community: Annotated[str | None, Query(description="Community name or code")] = None,
    grid: Annotated[str | None, Query(description="Grid code")] = None,
) -> IssueFilter:
    return IssueFilter(categories=tuple(c for c in category if c),
                       statuses=tuple(s for s in status if s), since=since, until=until,
                       community=community or None, grid=grid or None)


@router.get("/heatmap", response_class=HTMLResponse, summary="The leaders' issue heatmap")
def heatmap(
    request: Request, actor: PageReader, reads: ReadSessionDep,
    flt: Annotated[IssueFilter, Depends(issue_filter)],
    mode: Annotated[Literal["raw", "rate"], Query(description="Choropleth colour")] = "raw",
    lang: Lang = "zh", basemap: Basemap = None,
) -> HTMLResponse:
    _, cache, options = _context(request, basemap)
    scoped = _scoped(request, actor, flt)
    key = ("heatmap", scoped.key(), mode, lang, options, map_data.data_version(reads))
    return _page(request, actor, lang, cache, key, lambda: build_heatmap(
        map_data.heatmap_data(reads, scoped), lang=lang, options=options, mode=mode))


@router.get("/overview", response_class=HTMLResponse, summary="All communities and grids")
def overview(request: Request, actor: PageReader, reads: ReadSessionDep, lang: Lang = "zh",
             basemap: Basemap = None) -> HTMLResponse:
    _, cache, options = _context(request, basemap)
    key = ("overview", lang, options, _scope_key(actor), map_data.data_version(reads))
    return _page(request, actor, lang, cache, key, lambda: build_overview(
        map_data.overview_data(reads, _scoped(request, actor)), lang=lang, options=options))
