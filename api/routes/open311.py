"""Open311 GeoReport v2 under /open311/v2/: services, service definitions, service requests.

Every path ends in ``.json`` or ``.xml`` and answers in that format, errors included: the spec's
``[{"code": 400, "description": ...}]`` (or ``<errors><error>``), never GridMap's own error JSON.
The formats and the spec's rules are in ``api.protocols.open311``; this module parses the
request, calls it and sends its answer. Discovery and services are public; reading requests
needs a log-in (HTTP Basic or a bearer token) and shows the caller's scope; posting needs an
``api_key``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from api.deps import Reader, SessionDep
from api.errors import (
    language_headers,
    log_failure,
    message_for,
    request_language,
    status_for,
)
from api.protocols import open311
from api.routes.photos import photo_url
from gis.errors import NotFound
from gis.people.api_keys import authenticate_api_key
from gis.queries.filters import IssueFilter

Format = Annotated[Literal["json", "xml"], Path(description="json or xml")]


class Open311Route(APIRoute):
    """Turns every error under /open311/v2 into the spec's error list, in the path's format."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:  # noqa: BLE001 - every error in the spec's format
                return error_response(request, exc)

        return guarded


router = APIRouter(prefix="/open311/v2", tags=["open311"], route_class=Open311Route)
# Every answer is JSON or XML, as the path's extension says.
_JSON_OR_XML = {"content": {"application/json": {}, "text/xml": {}}}
ANSWERS = {200: _JSON_OR_XML}


def error_response(request: Request, exc: Exception) -> Response:
    """``exc`` as the spec's error list, in the path's format and the caller's language."""
    status, lang = open311.spec_status(status_for(exc)), request_language(request)
    if status >= 500:
        log_failure(request, exc)
    response = render(request, "errors", open311.errors_document(status, message_for(exc, lang)),
                      status_code=status)
    response.headers.update(language_headers(lang))
    if isinstance(exc, HTTPException) and exc.headers:  # a 401's WWW-Authenticate
        response.headers.update(exc.headers)
    return response


def render(request: Request, root: str, data: Any, status_code: int = 200) -> Response:
    """``data`` as JSON, or as XML under ``root`` when the path ends in .xml."""
    if request.url.path.endswith(".xml"):
        return Response(open311.to_xml(root, data), status_code=status_code,
                        media_type=open311.XML_TYPE)
    return JSONResponse(data, status_code=status_code)


@router.get("/discovery.{fmt}", summary="Where this endpoint is and which formats it speaks",
            responses=ANSWERS)
def discovery(request: Request, fmt: Format) -> Response:
    return render(request, "discovery", open311.discovery(f"{request.base_url}open311/v2"))


@router.get("/services.{fmt}", name="services", summary="Issue categories as GeoReport services",
            responses=ANSWERS)
def services(request: Request, session: SessionDep, fmt: Format) -> Response:
    return render(request, "services", open311.list_services(session))


@router.get("/services/{service_code}.{fmt}", summary="The attributes a service asks for",
            responses=ANSWERS)
def service_definition(request: Request, session: SessionDep, service_code: str,
                       fmt: Format) -> Response:
    return render(request, "service_definition", open311.service_definition(session, service_code))


def request_query(
    service_request_id: Annotated[str | None, Query(description="Ids, comma separated; overrides the rest")] = None,
    service_code: Annotated[str | None, Query(description="Service codes, comma separated")] = None,
    start_date: Annotated[str | None, Query(description="W3C date-time, e.g. 2025-03-01T00:00:00Z")] = None,
    end_date: Annotated[str | None, Query(description="W3C date-time; at most 90 days after start_date")] = None,
    status: Annotated[str | None, Query(description="open, closed or open,closed")] = None,
    jurisdiction_id: Annotated[str | None, Query(description="Accepted and ignored: one jurisdiction")] = None,
) -> IssueFilter:
    return open311.parse_request_query(service_request_id, service_code, start_date, end_date,
                                       status)


@router.get("/requests.{fmt}",
            summary="Service requests in the caller's scope, newest first (log-in; no personal data)",
            responses=ANSWERS)
def list_requests(request: Request, session: SessionDep, actor: Reader, fmt: Format,
                  query: Annotated[IssueFilter, Depends(request_query)]) -> Response:
    found = open311.list_requests(session, actor, query, partial(photo_url, request),
                                  public_read=request.app.state.settings.public_read)
    return render(request, "service_requests", found)


@router.get("/requests/{service_request_id}.{fmt}",
            summary="One service request (log-in; 403 outside the caller's scope)",
            responses=ANSWERS)
def get_request(request: Request, session: SessionDep, actor: Reader, service_request_id: int,
                fmt: Format) -> Response:
    found = open311.get_request(session, actor, service_request_id, partial(photo_url, request),
                                public_read=request.app.state.settings.public_read)
    return render(request, "service_requests", [found])


async def request_post(
    request: Request,
    service_code: Annotated[str | None, Form()] = None,
    lat: Annotated[str | None, Form(description="WGS84 latitude")] = None,
    long: Annotated[str | None, Form(description="WGS84 longitude")] = None,
    address_string: Annotated[str | None, Form(description="A compound or building name")] = None,
    description: Annotated[str, Form()] = "",
    email: Annotated[str | None, Form()] = None,
    phone: Annotated[str | None, Form()] = None,
    first_name: Annotated[str | None, Form()] = None,
    last_name: Annotated[str | None, Form()] = None,
    media_url: Annotated[str | None, Form()] = None,
    crs: Annotated[str, Form(description="Extension: wgs84 (default), gcj02, bd09, EPSG:n")] = "wgs84",
) -> open311.RequestPost:
    """The spec's form fields; ``attribute[CODE]`` (or ``attribute[CODE][]``) fields become attributes."""
    attributes: dict[str, list[str]] = {}
    for key, value in (await request.form()).multi_items():
        if key.startswith("attribute[") and isinstance(value, str):
            code = key[len("attribute["):].removesuffix("[]").removesuffix("]")
            attributes.setdefault(code, []).append(value)
    return open311.RequestPost(service_code, lat, long, address_string, description, email, phone,
                               first_name, last_name, media_url, crs, attributes)


async def posted_api_key(request: Request, api_key: Annotated[str | None, Form()] = None) -> str | None:
    return api_key or request.query_params.get("api_key")


@router.post("/requests.{fmt}", status_code=201, summary="Post a service request (needs api_key)",
             responses={201: _JSON_OR_XML,
                        200: {"description": "Replay of an earlier post with the same Idempotency-Key",
                              **_JSON_OR_XML}})
def post_request(
    request: Request, session: SessionDep, fmt: Format,
    post: Annotated[open311.RequestPost, Depends(request_post)],
    api_key: Annotated[str | None, Depends(posted_api_key)],
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> Response:
    key_id = authenticate_api_key(session, api_key)
    posted = open311.post_request(session, request.app.state.grid_cache, key_id, post, idempotency_key)
    session.commit()
    body = [{"service_request_id": str(posted.service_request_id),
             "service_notice": posted.service_notice, "account_id": None}]
    return render(request, "service_requests", body, status_code=201 if posted.created else 200)


@router.api_route("/{anything:path}", methods=["GET", "POST"], include_in_schema=False)
def unknown(request: Request, anything: str) -> Response:
    raise NotFound(f"no such GeoReport resource: /open311/v2/{anything}",
                   zh=f"没有此 GeoReport 资源：/open311/v2/{anything}")
