from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from api.deps import SessionDep
from api.schemas import Assignment
from gis.geotag.locate import locate_point

router = APIRouter(prefix="/api/v1", tags=["geotagging"])


class Worker(BaseModel):
    username: str
    display_name: str


class GridRef(BaseModel):
    code: str
    name: str
    worker: Worker | None


class LocatePublic(BaseModel):
    grid: GridRef | None
    method: Assignment
    distance_m: float | None
    lon: float
    lat: float


@router.get("/locate", summary="Which grid (and grid worker) a point belongs to")
def locate(
    request: Request,
    session: SessionDep,
    lon: Annotated[float, Query(description="Longitude, or easting for a projected EPSG CRS")],
    lat: Annotated[float, Query(description="Latitude, or northing for a projected EPSG CRS")],
    crs: Annotated[str, Query(description="wgs84 | cgcs2000 | gcj02 | bd09 | EPSG:nnnn")] = "wgs84",
) -> LocatePublic:
    """Converts the point to WGS84 and applies the rules: inside, boundary, nearest, unassigned."""
    found = locate_point(session, request.app.state.grid_cache, lon, lat, crs)
    return LocatePublic(grid=found.grid, method=found.method, distance_m=found.distance_m,
                        lon=found.lon, lat=found.lat)
