"""Vector tiles for the tablet maps: /tiles/{layer}/{z}/{x}/{y}.mvt and TileJSON at /tiles/{layer}.json.

An empty tile is 204. Every tile carries an ETag (a hash of its bytes) and a Cache-Control max-age
per layer; a client that sends the ETag back in If-None-Match gets 304 without the body.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response

from api.deps import SessionDep
from gis.queries import tiles

router = APIRouter(prefix="/tiles", tags=["tiles"])
MVT = "application/vnd.mapbox-vector-tile"
Layer = Annotated[str, Path(description=f"One of {', '.join(tiles.LAYERS)}")]


@router.get("/{layer}.json", summary="TileJSON 3.0 of a layer")
def tilejson(request: Request, session: SessionDep, layer: Layer) -> dict:
    url = f"{request.base_url}tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt"
    return tiles.tilejson(session, layer, url)


@router.get("/{layer}/{z}/{x}/{y}.mvt", summary="A Mapbox vector tile (204 when empty)",
            response_class=Response, responses={200: {"content": {MVT: {}}},
                                                204: {"description": "Nothing in this tile"},
                                                304: {"description": "Unchanged since the ETag"}})
def tile(session: SessionDep, layer: Layer, z: int, x: int, y: int,
         if_none_match: Annotated[str | None, Header()] = None) -> Response:
    data = tiles.render_tile(session, layer, z, x, y)
    headers = {"Cache-Control": f"public, max-age={tiles.layer_spec(layer).max_age}"}
    if not data:
        return Response(status_code=204, headers=headers)
    headers["ETag"] = etag = f'"{hashlib.blake2b(data, digest_size=16).hexdigest()}"'
    if if_none_match and _matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=MVT, headers=headers)


def _matches(if_none_match: str, etag: str) -> bool:
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags
