"""The leaders' dashboard: its page ``/dash`` and the data its script draws,
``/api/v1/dashboard/{summary,trend,overdue,heat}``.

Leaders, dispatchers and admins, each over the cases they may read (``gis.queries.dashboard``);
the page sends anyone not logged in to ``/login`` and refuses other roles (403). Every data
route takes the dashboard's filter: ``period`` (week, month, quarter), ``date`` (the day whose
period is shown; today in Beijing by default), ``community`` and ``category``. The page is
plain HTML with its words and settings in a data attribute; its script
(``maps/static/dash.js``), ECharts and Leaflet come from ``/static/`` and nothing else runs
(:data:`DASH_POLICY`). The league tables read ``/api/v1/evaluation`` once the app serves it.
All of it reads on the read session (a standby when there is one).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.routing import iter_route_contexts
from pydantic import BeforeValidator, Field

from api.dashboard_schemas import (
    DashHeatPublic,
    DashSummaryPublic,
    DashTrendPublic,
    OverduePublic,
    PeriodKind,
)
from api.deps import CurrentActor, PageActor, ReadSessionDep, csrf_token
from api.pages.routing import NO_STORE, PageRoute
from api.pages.templating import render
from api.pages.words import DASH_SCRIPT_WORDS, page_lang, t
from gis.errors import SetupError
from gis.queries import dashboard
from gis.queries.dashboard import DashFilter, period_of
from gis.rules import BEIJING
from maps import assets
from maps.dash import heat_layer

router = APIRouter(prefix="/api/v1/dashboard", tags=["dashboard"])
page_router = APIRouter(tags=["pages"], route_class=PageRoute, include_in_schema=False)
EVALUATION_PATH = "/api/v1/evaluation"
# Only the page's own files run (no inline script); ECharts and Leaflet position their parts
# with style attributes.
DASH_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; "
               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


def _blank_to_none(value):
    return value or None  # an empty form field means "no filter"


Day = Annotated[date, Field(ge=date(2000, 1, 1), le=date(2099, 12, 31))]


def dash_filter(
    period: Annotated[PeriodKind, Query(description="week (ISO), month or quarter")] = "month",
    day: Annotated[Day | None, BeforeValidator(_blank_to_none), Query(
        alias="date", description="A day of the period to show (Beijing time); today by default")
    ] = None,
    community: Annotated[str | None, Query(max_length=100,
                                           description="Community name or code")] = None,
    category: Annotated[list[str] | None, Query(
        description="Issue category code(s) (see /api/v1/categories)")] = None,
) -> DashFilter:
    day = day or today()
    return DashFilter(period_of(period, day), community or None,
                      tuple(c for c in category or () if c), day)


DashFilters = Annotated[DashFilter, Depends(dash_filter)]


def today() -> date:
    return datetime.now(BEIJING).date()


@router.get("/summary", response_model=DashSummaryPublic,
            summary="Open and overdue cases now; reported, closed and on time in the period")
def summary(actor: CurrentActor, reads: ReadSessionDep, flt: DashFilters):
    return dashboard.summary(reads, actor, flt)


@router.get("/trend", response_model=DashTrendPublic,
            summary="Cases per week by category, and the on-time closure rate per week")
def trend(actor: CurrentActor, reads: ReadSessionDep, flt: DashFilters):
    return dashboard.trend(reads, actor, flt, today())


@router.get("/overdue", response_model=OverduePublic,
            summary="Open cases past their promised deadline or their step's, latest first")
def overdue(actor: CurrentActor, reads: ReadSessionDep, flt: DashFilters,
            limit: Annotated[int, Query(ge=1, le=1000, description="Rows")] = 200):
    return dashboard.overdue(reads, actor, flt, limit=limit)


@router.get("/heat", response_model=DashHeatPublic,
            summary="The small heat map: cells of the period's cases and their scale")
def heat(actor: CurrentActor, reads: ReadSessionDep, flt: DashFilters,
         width: Annotated[int, Query(ge=100, le=4000, description="Map width, px")] = 960,
         height: Annotated[int, Query(ge=100, le=4000, description="Map height, px")] = 360):
    layer = heat_layer(dashboard.heat_data(reads, actor, flt), (width, height))
    return layer | {"period": flt.period.as_dict()}


# -- the page -----------------------------------------------------------------------------------
@page_router.get("/dash", response_class=HTMLResponse)
def dash_page(request: Request, actor: PageActor, reads: ReadSessionDep, flt: DashFilters,
              lang: Annotated[str | None, Query(max_length=8)] = None,
              screen: Annotated[Literal["tablet", "big"] | None, Query()] = None) -> HTMLResponse:
    lang = page_lang(lang)
    choices = dashboard.filter_choices(reads, actor)  # 403 for other roles
    _require_assets(request)
    settings = _script_settings(request, flt, lang, screen)
    html = render("dash.html", lang=lang, actor=actor, flt=flt, choices=choices, screen=screen,
                  csrf=csrf_token(request, actor.session_id or 0), assets=assets,
                  settings=json.dumps(settings, ensure_ascii=False, default=str))
    return HTMLResponse(html, headers=NO_STORE | {"Content-Security-Policy": DASH_POLICY,
                                                  "X-Content-Type-Options": "nosniff"})


def _require_assets(request: Request) -> None:
    missing = assets.missing_assets(request.app.state.settings.maps.node_modules)
    if missing:
        raise SetupError(f"the dashboard's files are not installed ({missing[0]}, ...): "
                         "run `make assets`")


def _script_settings(request: Request, flt: DashFilter, lang: str, screen: str | None) -> dict:
    return {"lang": lang, "screen": screen, "today": today(), "day": flt.day,
            "period": flt.period.as_dict(), "issue_url": "/maps/issue/",
            "api": "/api/v1/dashboard",
            "evaluation": EVALUATION_PATH if serves(request.app, EVALUATION_PATH) else None,
            "text": {key: t(key, lang) for key in DASH_SCRIPT_WORDS}}


def serves(app: FastAPI, path: str) -> bool:
    """Whether ``app`` has a route at ``path`` (the evaluation arrives in its own module)."""
    return any(route.path == path for route in iter_route_contexts(app.routes))
