"""The application factory. Nothing heavy happens at import time; the lifespan owns the engine.

The one :class:`~api.settings.Settings` object is built here when the caller (``gridmap serve``,
a test) does not pass one, kept as ``app.state.settings``, and its values handed down.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from sqlalchemy import Engine

from api.deps import BasicCache, LoginRedirect
from api.errors import add_exception_handlers
from api.intake import GroupCommit
from api.limits import BodySizeLimit, LoginThrottle
from api.own_writes import OwnWrites
from api.routes import app as field_app
from api.routes import audit as audit_trail
from api.routes import (
    auth,
    buildings,
    calendar,
    categories,
    command,
    dashboard,
    evaluation,
    facilities,
    field,
    grids,
    health,
    issues,
    issues_read,
    locate,
    ogc,
    open311,
    package,
    pages,
    photos,
    stats,
    tiles,
    users,
)
from api.routes import maps as map_pages
from api.settings import Settings
from api.startup import freeze_start_up_objects
from gis.db.engine import libpq_url, make_engine, session_factory
from gis.db.replica import ReadRouter, describe, make_read_engine, read_only_sessions
from gis.geotag.index_cache import GridIndexCache


async def _to_login(request, exc: LoginRedirect) -> RedirectResponse:
    return RedirectResponse(exc.location, status_code=303)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for ``settings``; without them, for the settings the environment gives."""
    settings = settings if settings is not None else Settings()
    settings.signing_secret()  # refuse to start outside development without a secret

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine = make_engine(settings.application_database_url())
        app.state.engine = engine
        app.state.sessions = session_factory(engine, settings.session_info())
        app.state.grid_cache = GridIndexCache(settings.assign_tolerance_m)
        app.state.intake = GroupCommit(libpq_url(settings.application_database_url()),
                                       app.state.sessions, app.state.grid_cache,
                                       app.state.session_policy, settings.session_info())
        read_engine = _read_routing(app, settings)
        freeze_start_up_objects()
        yield
        await app.state.intake.close()
        if read_engine is not None:
            read_engine.dispose()
        engine.dispose()

    app = FastAPI(
        title="GridMap",
        summary="Community grid governance (网格化管理): grids, facilities and geotagged issues",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.read_router = None  # heavy reads on the primary unless a read database is set
    app.state.login_throttle = LoginThrottle(settings.login_attempts_per_minute)
    app.state.session_policy = settings.session_policy()
    app.state.basic_cache = BasicCache()
    app.state.media = settings.media.storage()  # photos of cases (gis.media.storage)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes,
                       larger=[(photos.UPLOAD_PATH, photos.upload_limit(settings))])
    if settings.database.read_url:
        app.add_middleware(OwnWrites)  # a writer's reads wait for the standby or use the primary
    add_exception_handlers(app)
    app.add_exception_handler(LoginRedirect, _to_login)
    # issues first: the routes are tried in order and the intake is the busiest (its paths are
    # no other route's); field before issues_read: /api/v1/issues/duplicates is not an issue id
    for module in (issues, health, auth, grids, locate, field, issues_read, photos, buildings,
                   facilities, categories, calendar, command, stats, dashboard, evaluation,
                   package, open311, ogc, tiles, pages, users):
        app.include_router(module.router)
    app.include_router(dashboard.page_router)  # /dash, the leaders' dashboard
    app.include_router(audit_trail.router)
    map_pages.install(app, settings.maps)  # HTML maps, and their JS/CSS under /static/
    field_app.install(app)  # the grid worker's app at /app/
    logging.getLogger("gridmap").setLevel(logging.INFO)
    return app


def _read_routing(app: FastAPI, settings: Settings) -> Engine | None:
    """With GRIDMAP_READ_DATABASE_URL, a second, read-only engine on the standby and the router
    that gives heavy reads a session there (api.deps.ReadSessionDep); the engine, or None."""
    if not settings.database.read_url:
        return None
    read_engine = make_read_engine(settings.database.read_url)
    app.state.read_router = ReadRouter(
        session_factory(read_engine, settings.session_info()),
        read_only_sessions(app.state.engine, settings.session_info()),
        label=describe(settings.database.read_url))
    return read_engine
