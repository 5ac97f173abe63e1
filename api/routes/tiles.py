"""Vector tiles for the tablet maps: /tiles/{layer}/{z}/{x}/{y}.mvt and TileJSON at /tiles/{layer}.json.

An empty tile is 204. Every tile carries an ETag and a Cache-Control max-age per layer
(``api.protocols.tiles``); a client that sends the ETag back in If-None-Match gets 304 without
the body.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response

from api.deps import SessionDep
from api.protocols import tiles as tile_format
from gis.queries import tiles

router = APIRouter(prefix="/tiles", tags=["tiles"])
Layer = Annotated[str, Path(description=f"One of {', '.join(tiles.LAYERS)}")]


@router.get("/{layer}.json", summary="TileJSON 3.0 of a layer")
def tilejson(request: Request, session: SessionDep, layer: Layer) -> dict:
    url = f"{request.base_url}tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt"
    return tile_format.tilejson(layer, url, tiles.layer_bounds(session, layer))


@router.get("/{layer}/{z}/{x}/{y}.mvt", summary="A Mapbox vector tile (204 when empty)",
            response_class=Response, responses={200: {"content": {tile_format.MVT: {}}},
                                                204: {"description": "Nothing in this tile"},
                                                304: {"description": "Unchanged since the ETag"}})
def tile(session: SessionDep, layer: Layer, z: int, x: int, y: int,
         if_none_match: Annotated[str | None, Header()] = None) -> Response:
    data = tiles.render_tile(session, layer, z, x, y)
    headers = tile_format.cache_headers(layer)
    if not data:
        return Response(status_code=204, headers=headers)
    headers["ETag"] = etag = tile_format.etag(data)
    if tile_format.etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=tile_format.MVT, headers=headers)
