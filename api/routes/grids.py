"""Grids (网格): read by anyone (the counts of open issues only by those logged in, in their
scope); created, redrawn (a new version) and retired by admins."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from api.deps import BBoxDep, CurrentActor, Limit, Offset, OptionalActor, SessionDep
from api.geojson import feature, feature_collection
from api.schemas import GridCreate, GridDetailPublic, GridsPublic, GridUpdate, MaxVertices
from gis.edit import writes
from gis.queries import reads

router = APIRouter(prefix="/api/v1/grids", tags=["grids"])
GridCode = Annotated[str, Path(description="15-digit grid code", pattern=r"^\d{15}$",
                               examples=["140429100001003"])]


@router.get("", summary="Current grids as a GeoJSON FeatureCollection",
            responses={200: {"model": GridsPublic}}, response_model=None)
def list_grids(
    request: Request,
    session: SessionDep,
    bbox: BBoxDep,
    community: Annotated[str | None, Query(description="Community name or code")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in the grid code or name")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict:
    page = reads.list_grids(session, bbox=bbox, community=community, q=q, limit=limit, offset=offset)
    return feature_collection(page.items, page.total, request, limit, offset)


@router.get("/{code}", summary="A current grid with its worker, open issues and facilities",
            responses={200: {"model": GridDetailPublic}}, response_model=None)
def get_grid(request: Request, session: SessionDep, actor: OptionalActor, code: GridCode) -> dict:
    return feature(reads.get_grid(session, code, actor,
                                  public_read=request.app.state.settings.public_read))


@router.post("", status_code=201, summary="Create a grid (admins)",
             responses={201: {"model": GridDetailPublic}}, response_model=None)
def create_grid(request: Request, session: SessionDep, actor: CurrentActor, body: GridCreate,
                max_vertices: MaxVertices) -> dict:
    """Stored issues, facilities and buildings are re-tagged against the new set of grids."""
    writes.create_grid(session, actor, tolerance_m=request.app.state.grid_cache.tolerance_m,
                     max_vertices=max_vertices, **body.model_dump())
    session.commit()
    return feature(reads.get_grid(session, body.code, actor))


@router.put("/{code}", summary="Redraw a grid (admins): a new version, the old one kept",
            responses={200: {"model": GridDetailPublic}}, response_model=None)
def redraw_grid(request: Request, session: SessionDep, actor: CurrentActor, code: GridCode,
                body: GridUpdate, max_vertices: MaxVertices) -> dict:
    """The current version gets `valid_to`; open issues, facilities and buildings are re-tagged."""
    writes.redraw_grid(session, actor, code, tolerance_m=request.app.state.grid_cache.tolerance_m,
                     max_vertices=max_vertices, **body.model_dump(exclude_unset=True))
    session.commit()
    return feature(reads.get_grid(session, code, actor))


@router.delete("/{code}", status_code=204, summary="Retire a grid (admins); nothing is deleted")
def retire_grid(request: Request, session: SessionDep, actor: CurrentActor,
                code: GridCode) -> Response:
    writes.retire_grid(session, actor, code, tolerance_m=request.app.state.grid_cache.tolerance_m)
    session.commit()
    return Response(status_code=204)
