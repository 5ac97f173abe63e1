"""FastAPI dependencies: the database session and parsed query parameters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session

from gis.store import BBox


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def parse_bbox(
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy in WGS84 lon/lat",
                                      examples=["112.85,36.83,112.87,36.85"])] = None,
) -> BBox | None:
    return BBox.parse(bbox) if bbox else None


BBoxDep = Annotated[BBox | None, Depends(parse_bbox)]
Limit = Annotated[int, Query(ge=1, le=10_000, description="Page size")]
Offset = Annotated[int, Query(ge=0, description="Items to skip")]
