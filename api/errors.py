"""Domain errors -> HTTP status, in one table. Clients get {"detail", "code"}; 5xx are logged."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException

from gis import errors

log = logging.getLogger("gridmap.api")

STATUS_CODES: dict[type[errors.GridMapError], int] = {
    errors.NotFound: 404,
    errors.Forbidden: 403,
    errors.InvalidCoordinates: 422,
    errors.UnknownCRS: 422,
    errors.InvalidGeometry: 422,
    errors.UnknownCategory: 422,
    errors.InvalidParameter: 422,
    errors.ImportFailed: 422,
    errors.IllegalTransition: 409,
    errors.Conflict: 409,
    errors.DatabaseUnavailable: 503,
    errors.SetupError: 503,
}


def _status_for(exc: errors.GridMapError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return 400


async def _domain_error(request: Request, exc: errors.GridMapError) -> JSONResponse:
    status = _status_for(exc)
    if status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc)
    return JSONResponse({"detail": str(exc), "code": exc.code}, status_code=status)


async def _database_down(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s: database unavailable: %s", request.method, request.url.path, exc)
    return JSONResponse({"detail": "The database is unavailable; try again shortly.",
                         "code": "database_unavailable"}, status_code=503, headers={"Retry-After": "5"})


async def _data_error(request: Request, exc: DataError) -> JSONResponse:
    """A value PostgreSQL cannot store. The one a client can send on purpose is text with a NUL
    character (U+0000), which PostgreSQL text never holds: that is the client's 422. Anything
    else here is our bug: logged, and a plain 500."""
    if "NUL" in str(exc.orig):
        return JSONResponse({"detail": "text may not contain the NUL character (U+0000, %00)",
                             "code": "validation_error"}, status_code=422)
    log.error("%s %s failed: %s", request.method, request.url.path, exc)
    return JSONResponse({"detail": "Internal server error", "code": "internal_error"},
                        status_code=500)


HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
              415: "unsupported_media_type", 429: "too_many_requests"}


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    code = HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    return JSONResponse({"detail": exc.detail, "code": code}, status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 whose detail is one readable sentence per problem, naming where it is."""
    problems = []
    for err in exc.errors():
        # Drop "body" and the tags of a discriminated body ("plain"/"feature") from the path.
        where = ".".join(str(p) for p in err.get("loc", ())
                         if p not in ("body", "plain", "feature")) or "request"
        problems.append(f"{where}: {err.get('msg', 'invalid')}")
    return JSONResponse({"detail": "; ".join(problems), "code": "validation_error",
                         "errors": jsonable(exc.errors())}, status_code=422)


def jsonable(errors: list[dict]) -> list[dict]:
    return [{k: (v if isinstance(v, str | int | float | list | tuple | None) else str(v))
             for k, v in e.items() if k != "ctx" and k != "input"} for e in errors]


def add_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(errors.GridMapError, _domain_error)
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(InterfaceError, _database_down)
    app.add_exception_handler(DataError, _data_error)
