from typing import Annotated

from fastapi import APIRouter, Query, Request

from api.deps import BBoxDep, Limit, Offset, SessionDep
from api.geojson import feature_collection
from gis import store

router = APIRouter(prefix="/api/v1/grids", tags=["grids"])


@router.get("", summary="Current grids as a GeoJSON FeatureCollection")
def list_grids(
    request: Request,
    session: SessionDep,
    bbox: BBoxDep,
    community: Annotated[str | None, Query(description="Community name or code")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict:
    page = store.list_grids(session, bbox=bbox, community=community, limit=limit, offset=offset)
    return feature_collection(page.items, page.total, request, limit, offset)
