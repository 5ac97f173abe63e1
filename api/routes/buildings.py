"""Buildings (楼栋): read by anyone; added and changed by workers in their grids, leaders, admins."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from api.deps import BBoxDep, CurrentActor, Limit, Offset, SessionDep
from api.geojson import feature, feature_collection
from api.schemas import BuildingCreate, BuildingPublic, BuildingsPublic, BuildingUpdate, MaxVertices
from gis.edit import writes
from gis.queries import reads

router = APIRouter(prefix="/api/v1/buildings", tags=["buildings"])
BuildingId = Annotated[int, Path(description="Building id")]


@router.get("", summary="Buildings as a GeoJSON FeatureCollection",
            responses={200: {"model": BuildingsPublic}}, response_model=None)
def list_buildings(
    request: Request,
    session: SessionDep,
    bbox: BBoxDep,
    grid: Annotated[str | None, Query(description="Grid code (15 digits)")] = None,
    community: Annotated[str | None, Query(description="Community name or code")] = None,
    q: Annotated[str | None, Query(max_length=200,
                                   description="Text in the building or compound name")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict:
    page = reads.list_buildings(session, bbox=bbox, grid=grid, community=community, q=q,
                                limit=limit, offset=offset)
    return feature_collection(page.items, page.total, request, limit, offset)


@router.get("/{building_id}", summary="One building as a GeoJSON Feature",
            responses={200: {"model": BuildingPublic}}, response_model=None)
def get_building(session: SessionDep, building_id: BuildingId) -> dict:
    return feature(reads.get_building(session, building_id))


@router.post("", status_code=201, summary="Add a building (GeoJSON Feature or geometry + fields)",
             responses={201: {"model": BuildingPublic}}, response_model=None)
def create_building(session: SessionDep, actor: CurrentActor, body: BuildingCreate,
                    max_vertices: MaxVertices) -> dict:
    """Tagged with the grid holding most of its area; workers add buildings in their own grids."""
    building_id = writes.create_building(session, actor, max_vertices=max_vertices, **body.model_dump())
    session.commit()
    return feature(reads.get_building(session, building_id))


@router.patch("/{building_id}", summary="Change a building's fields or outline",
              responses={200: {"model": BuildingPublic}}, response_model=None)
def update_building(session: SessionDep, actor: CurrentActor, building_id: BuildingId,
                    body: BuildingUpdate, max_vertices: MaxVertices) -> dict:
    writes.update_building(session, actor, building_id, max_vertices=max_vertices,
                         **body.model_dump(exclude_unset=True))
    session.commit()
    return feature(reads.get_building(session, building_id))
