from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from gis.queries.reads import database_ok

router = APIRouter(tags=["health"])


@router.get("/health", summary="Service and database health")
def health(request: Request) -> JSONResponse:
    """200 with ``database: ok`` when PostGIS answers; 503 with ``database: unavailable`` otherwise."""
    try:
        with request.app.state.sessions() as session:
            ok = database_ok(session)
    except SQLAlchemyError:
        ok = False
    body = {"status": "ok" if ok else "degraded", "database": "ok" if ok else "unavailable"}
    return JSONResponse(body, status_code=200 if ok else 503)
