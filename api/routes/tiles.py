"""Vector tiles for the tablet maps: /tiles/{layer}/{z}/{x}/{y}.mvt and TileJSON at /tiles/{layer}.json.

An empty tile is 204. Every tile carries an ETag and a Cache-Control max-age per layer
(``api.protocols.tiles``); a client that sends the ETag back in If-None-Match gets 304 without
the body. The grids, buildings and facilities layers are public; the issues layer (case data)
needs a log-in, holds only the issues in the caller's scope, and may be kept only by the
caller's own cache (``private``, varying by who asks). Tiles are read on the read session (a
standby when there is one).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response

from api.deps import OptionalActor, ReadSessionDep, require_reader
from api.protocols import tiles as tile_format
from gis.people.actors import Actor
from gis.queries import reads, tiles

router = APIRouter(prefix="/tiles", tags=["tiles"])
Layer = Annotated[str, Path(description=f"One of {', '.join(tiles.LAYERS)}; `issues` needs a log-in")]


def _reader(request: Request, actor: Actor | None, layer: str) -> reads.Reader:
    if tiles.layer_spec(layer).case_data:
        require_reader(request, actor)
    return reads.Reader(actor, request.app.state.settings.public_read)


@router.get("/{layer}.json", summary="TileJSON 3.0 of a layer")
def tilejson(request: Request, actor: OptionalActor, reads: ReadSessionDep, layer: Layer) -> dict:
    reader = _reader(request, actor, layer)
    url = f"{request.base_url}tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt"
    return tile_format.tilejson(layer, url, tiles.layer_bounds(reads, layer, reader))


@router.get("/{layer}/{z}/{x}/{y}.mvt", summary="A Mapbox vector tile (204 when empty)",
            response_class=Response, responses={200: {"content": {tile_format.MVT: {}}},
                                                204: {"description": "Nothing in this tile"},
                                                304: {"description": "Unchanged since the ETag"}})
def tile(request: Request, actor: OptionalActor, reads: ReadSessionDep, layer: Layer, z: int,
         x: int, y: int, if_none_match: Annotated[str | None, Header()] = None) -> Response:
    data = tiles.render_tile(reads, layer, z, x, y, _reader(request, actor, layer))
    headers = tile_format.cache_headers(layer)
    if not data:
        return Response(status_code=204, headers=headers)
    headers["ETag"] = etag = tile_format.etag(data)
    if tile_format.etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=tile_format.MVT, headers=headers)
