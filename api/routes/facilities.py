"""Facilities (部件): read by anyone; created, moved and updated by workers in their grids,
leaders and admins."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from api.deps import BBoxDep, CurrentActor, Limit, Offset, SessionDep
from api.geojson import feature, feature_collection
from api.schemas import (
    FacilitiesPublic,
    FacilityCreate,
    FacilityPublic,
    FacilityStatus,
    FacilityUpdate,
    MaxVertices,
)
from gis.edit import writes
from gis.queries import reads

router = APIRouter(prefix="/api/v1/facilities", tags=["facilities"])
FacilityId = Annotated[int, Path(description="Facility id")]


@router.get("", summary="Facilities as a GeoJSON FeatureCollection",
            responses={200: {"model": FacilitiesPublic}}, response_model=None)
def list_facilities(
    request: Request,
    session: SessionDep,
    bbox: BBoxDep,
    grid: Annotated[str | None, Query(description="Grid code (15 digits)")] = None,
    community: Annotated[str | None, Query(description="Community name or code")] = None,
    category: Annotated[list[str] | None, Query(
        description="Facility category code (see /api/v1/categories); repeat for several")] = None,
    status: Annotated[list[FacilityStatus] | None, Query(
        description="ok | damaged | missing | repairing; repeat for several")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in the name or code")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict:
    page = reads.list_facilities(session, bbox=bbox, grid=grid, community=community,
                                 category=category, status=status, q=q, limit=limit, offset=offset)
    return feature_collection(page.items, page.total, request, limit, offset)


@router.get("/{facility_id}", summary="One facility as a GeoJSON Feature",
            responses={200: {"model": FacilityPublic}}, response_model=None)
def get_facility(session: SessionDep, facility_id: FacilityId) -> dict:
    return feature(reads.get_facility(session, facility_id))


@router.post("", status_code=201, summary="Add a facility (GeoJSON Feature or geometry + fields)",
             responses={201: {"model": FacilityPublic}}, response_model=None)
def create_facility(request: Request, session: SessionDep, actor: CurrentActor,
                    body: FacilityCreate, max_vertices: MaxVertices) -> dict:
    """Tagged with the grid its point falls in. Workers may add facilities in their own grids only."""
    facility_id = writes.create_facility(session, request.app.state.grid_cache, actor,
                                       max_vertices=max_vertices, **body.model_dump())
    session.commit()
    return feature(reads.get_facility(session, facility_id))


@router.patch("/{facility_id}", summary="Change a facility's status or fields, or move it",
              responses={200: {"model": FacilityPublic}}, response_model=None)
def update_facility(request: Request, session: SessionDep, actor: CurrentActor,
                    facility_id: FacilityId, body: FacilityUpdate, max_vertices: MaxVertices) -> dict:
    """A worker must own the facility's grid, and for a move the grid it moves into as well."""
    writes.update_facility(session, request.app.state.grid_cache, actor, facility_id,
                         max_vertices=max_vertices, **body.model_dump(exclude_unset=True))
    session.commit()
    return feature(reads.get_facility(session, facility_id))
