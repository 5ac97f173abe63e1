from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from api.errors import log_failure, status_for
from gis.errors import DatabaseUnavailable
from gis.queries.reads import database_ok

router = APIRouter(tags=["health"])


@router.get("/health", summary="Service and database health")
def health(request: Request) -> JSONResponse:
    """200 with ``database: ok`` when PostGIS answers; 503 with ``database: unavailable`` otherwise."""
    try:
        with request.app.state.sessions() as session:
            if not database_ok(session):
                raise DatabaseUnavailable("PostGIS is not installed in the database")
    except (DatabaseUnavailable, SQLAlchemyError) as exc:
        log_failure(request, exc)
        return JSONResponse({"status": "degraded", "database": "unavailable"},
                            status_code=status_for(DatabaseUnavailable()),
                            headers={"Retry-After": "5"})
    return JSONResponse({"status": "ok", "database": "ok"})
