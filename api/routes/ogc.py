"""OGC API - Features under /ogc/: what QGIS, GDAL (OAPIF) and ArcGIS read without custom code.

JSON (GeoJSON for features) by default, HTML with ``f=html`` or a browser's Accept header. The
documents and the HTML page are built in ``api.protocols.ogc``; invalid parameters are 400 here,
as the standard asks, worded in the caller's language.

The landing page, conformance, the API definition, the collections' metadata and the grids,
buildings and facilities are public; the features of the issues collection (case data) need a
log-in (HTTP Basic, as GIS desktops send it, or a bearer token) and are read in the caller's
scope: 401 for the anonymous, 403 for an issue outside the scope. Pages of features (what a GIS
desktop downloads) are read on the read session (a standby when there is one).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute

from api.deps import OptionalActor, ReadSessionDep, SessionDep, require_reader
from api.errors import language_headers, message_for, request_language, status_for
from api.protocols import ogc
from gis.errors import GridMapError
from gis.people.actors import Actor
from gis.queries import feature_collections as fc

MEDIA_TYPES = {"json": "application/json", "geojson": ogc.GEOJSON, "html": "text/html"}


class OgcRoute(APIRoute):
    """Invalid parameters are 400 in OGC API (GridMap's own API says 422)."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except (RequestValidationError, GridMapError) as exc:
                if status_for(exc) in (400, 422):
                    return _bad_request(request, exc)
                raise

        return guarded


# JSON (GeoJSON for features) or, with f=html or a browser's Accept header, HTML.
router = APIRouter(prefix="/ogc", tags=["ogc"], route_class=OgcRoute, responses={
    200: {"content": {"application/json": {}, "application/geo+json": {}, "text/html": {}}}})


def _bad_request(request: Request, exc: Exception) -> JSONResponse:
    lang = request_language(request)
    message = message_for(exc, lang)
    return JSONResponse({"code": "InvalidParameterValue", "description": message,
                         "detail": message}, status_code=400, headers=language_headers(lang))


def _base(request: Request) -> str:
    return f"{request.base_url}ogc"


def _wants_html(request: Request) -> bool:
    f = request.query_params.get("f")
    if f is not None:
        if f not in MEDIA_TYPES:
            raise ogc.InvalidParameter(f"f must be one of {', '.join(MEDIA_TYPES)}; got {f!r}",
                                       zh=f"f 应为 {', '.join(MEDIA_TYPES)} 之一；收到 {f!r}")
        return f == "html"
    accept = request.headers.get("accept", "")
    return accept.startswith("text/html") or ("text/html" in accept and "json" not in accept)


def _respond(request: Request, doc: dict, title: str, media_type: str = "application/json",
             headers: dict | None = None) -> Response:
    if _wants_html(request):
        return HTMLResponse(ogc.render_html(title, doc))
    return JSONResponse(jsonable_encoder(doc), media_type=media_type, headers=headers)


@router.get("", include_in_schema=False)
@router.get("/", summary="Landing page")
def landing_page(request: Request) -> Response:
    return _respond(request, ogc.landing_page(_base(request)), "GridMap OGC API - Features")


@router.get("/conformance", summary="Conformance classes")
def conformance(request: Request) -> Response:
    return _respond(request, ogc.conformance(), "Conformance")


@router.get("/api", summary="OpenAPI 3.0 definition of the OGC endpoints",
            responses={200: {"content": {ogc.OPENAPI_JSON: {}, "text/html": {}}}})
def api_definition(request: Request) -> Response:
    return _respond(request, ogc.openapi(_base(request)), "API definition", ogc.OPENAPI_JSON)


@router.get("/collections", summary="The collections")
def collections(request: Request, session: SessionDep) -> Response:
    return _respond(request, ogc.collections(session, _base(request)), "Collections")


@router.get("/collections/{collection_id}", summary="One collection, its extent and links")
def collection(request: Request, session: SessionDep, collection_id: str) -> Response:
    doc = ogc.collection(session, _base(request), collection_id)
    return _respond(request, doc, doc["title"])


@router.get("/collections/{collection_id}/items",
            summary="Features: bbox, limit, offset, datetime (issues) and property filters")
def items(request: Request, actor: OptionalActor, reads: ReadSessionDep,
          collection_id: str) -> Response:
    """Issues need a log-in and are those in the caller's scope; the rest is public."""
    doc = ogc.items(reads, _base(request), collection_id, dict(request.query_params),
                    _reader(request, actor, collection_id))
    return _respond(request, doc, f"{collection_id}: items", ogc.GEOJSON,
                    {"Content-Crs": f"<{ogc.CRS84}>"})


@router.get("/collections/{collection_id}/items/{feature_id}", summary="One feature")
def item(request: Request, session: SessionDep, actor: OptionalActor, collection_id: str,
         feature_id: str) -> Response:
    """An issue needs a log-in; one outside the caller's scope is 403."""
    doc = ogc.item(session, _base(request), collection_id, feature_id,
                   _reader(request, actor, collection_id))
    return _respond(request, doc, f"{collection_id} {feature_id}", ogc.GEOJSON,
                    {"Content-Crs": f"<{ogc.CRS84}>"})


def _reader(request: Request, actor: Actor | None, collection_id: str) -> fc.Reader:
    if collection_id in fc.CASE_DATA:
        require_reader(request, actor)
    return fc.Reader(actor, request.app.state.settings.public_read)
