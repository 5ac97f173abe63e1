"""Domain errors -> HTTP status, in one table. Clients get {"detail", "code"}; 5xx are logged."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError

from gis import errors

log = logging.getLogger("gridmap.api")

STATUS_CODES: dict[type[errors.GridMapError], int] = {
    errors.NotFound: 404,
    errors.InvalidCoordinates: 422,
    errors.UnknownCRS: 422,
    errors.InvalidGeometry: 422,
    errors.UnknownCategory: 422,
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


def add_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.GridMapError, _domain_error)
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(InterfaceError, _database_down)
