"""The offline package of a grid for a worker's tablet: GET /api/v1/grids/{code}/package.

It needs a log-in, holds the cases the caller may read (a leader's or dispatcher's grid must be in
their region), never personal data, and each download is audited. It is read on the read session (a standby when there
is one); the audit entry goes to the primary."""

from __future__ import annotations

import os
import tempfile
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from api.deps import CurrentActor, ReadSessionDep, SessionDep, client_address
from gis.exchange.grid_package import export_grid_package
from gis.people import audit
from gis.queries.reads import Reader

router = APIRouter(prefix="/api/v1/grids", tags=["grids"])
GridCode = Annotated[str, Path(description="15-digit grid code", pattern=r"^\d{15}$",
                               examples=["140429100001003"])]
GEOPACKAGE = "application/geopackage+sqlite3"


@router.get("/{code}/package", summary="One GeoPackage to work offline in this grid (log-in)",
            response_class=FileResponse, responses={200: {"content": {GEOPACKAGE: {}}}})
def grid_package(request: Request, session: SessionDep, actor: CurrentActor, reads: ReadSessionDep,
                 code: GridCode) -> FileResponse:
    """The grid, its neighbours, buildings, facilities, the open issues the caller may read (no
    personal data) and the categories; offline reports go back through POST /api/v1/issues with
    an Idempotency-Key."""
    folder = tempfile.mkdtemp(prefix="gridmap-package-")
    path = os.path.join(folder, f"grid-{code}.gpkg")
    try:
        counts = export_grid_package(reads, code, path, reader=Reader(actor))
    except BaseException:
        _remove(folder)
        raise
    audit.record(session, "package", username=actor.username, address=client_address(request),
                 target=f"GET {request.url.path}", detail={"grid_code": code, "rows": counts})
    session.commit()
    return FileResponse(path, media_type=GEOPACKAGE, filename=f"grid-{code}.gpkg",
                        background=BackgroundTask(_remove, folder))


def _remove(folder: str) -> None:
    for name in os.listdir(folder):
        os.unlink(os.path.join(folder, name))
    os.rmdir(folder)
