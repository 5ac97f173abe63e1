"""TileJSON 3.0.0 of the vector tile layers and the HTTP caching of their tiles.

The tiles themselves come from ``gis.queries.tiles``. Each layer says here how its properties
read (TileJSON ``vector_layers``) and how long a client may reuse a tile without asking
(``Cache-Control: max-age``, ``private`` for the issues layer, which differs by reader); every
tile carries an ETag, a hash of its bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from gis.queries import tiles

MVT = "application/vnd.mapbox-vector-tile"
WEB_MERCATOR_WORLD = (-180, -85.0511, 180, 85.0511)


@dataclass(frozen=True)
class LayerInfo:
    description: str
    fields: dict[str, str]  # property -> description
    max_age: int  # seconds a client may reuse a tile without asking again


LAYER_INFO = {
    "regions": LayerInfo("Streets (街道) below zoom 12, communities (社区) from zoom 12",
                         {"code": "Region code", "name": "Region name",
                          "level": "street | community"}, 300),
    "grids": LayerInfo("Current grid boundaries (网格), from zoom 13",
                       {"code": "15-digit grid code", "name": "Grid name",
                        "households": "Households", "population": "Population"}, 300),
    "buildings": LayerInfo("Building footprints (楼栋)",
                           {"name": "Building name", "compound": "Compound (院落/小区)",
                            "floors": "Floors", "households": "Households"}, 300),
    "facilities": LayerInfo("Point assets (部件) with state; thinned below zoom 17 (the same "
                            "ones at a zoom, and those of the zoom above it)",
                            {"code": "16-digit facility code", "category": "Category code",
                             "status": "ok | damaged | missing | repairing", "name": "Name"}, 60),
    "issues": LayerInfo("Open issues (事件) in the reader's scope, aggregated to cells of 1/32 "
                        "tile; needs a log-in; no personal data",
                        {"count": "Open issues in the cell", "overdue": "Of them past their due time",
                         "category": "The most frequent category",
                         "issue_id": "The issue, when count is 1"}, 30),
}


def tilejson(layer: str, tiles_url: str,
             bounds: tuple[float, float, float, float] | None) -> dict:
    """TileJSON 3.0.0 for ``layer``; ``tiles_url`` holds ``{z}/{x}/{y}``; ``bounds`` of what the
    layer shows (the whole Web Mercator world when None)."""
    spec, info = tiles.layer_spec(layer), LAYER_INFO[layer]
    box = [round(v, 7) for v in bounds] if bounds else list(WEB_MERCATOR_WORLD)
    centre = [round((box[0] + box[2]) / 2, 7), round((box[1] + box[3]) / 2, 7),
              max(spec.minzoom, 15)]
    return {
        "tilejson": "3.0.0", "name": f"GridMap {spec.id}", "description": info.description,
        "version": "1.0.0", "scheme": "xyz", "tiles": [tiles_url], "minzoom": spec.minzoom,
        "maxzoom": tiles.MAX_ZOOM, "bounds": box, "center": centre,
        "vector_layers": [{"id": spec.id, "description": info.description, "fields": info.fields,
                           "minzoom": spec.minzoom, "maxzoom": tiles.MAX_ZOOM}],
    }


def cache_headers(layer: str) -> dict[str, str]:
    """Public layers may be kept by any cache; a case-data layer differs by reader, so only the
    reader's own cache may keep it, and it varies with the credentials."""
    max_age = LAYER_INFO[layer].max_age
    if tiles.layer_spec(layer).case_data:
        return {"Cache-Control": f"private, max-age={max_age}", "Vary": "Authorization, Cookie"}
    return {"Cache-Control": f"public, max-age={max_age}"}


def etag(data: bytes) -> str:
    """A strong ETag of a tile's bytes: the same data always makes the same tag."""
    return f'"{hashlib.blake2b(data, digest_size=16).hexdigest()}"'


def etag_matches(if_none_match: str | None, tag: str) -> bool:
    """Whether an If-None-Match header names ``tag`` (weak or strong) or is ``*``."""
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or tag in tags
