"""RFC 7946 GeoJSON from store rows: one helper so every endpoint writes features the same way."""

from __future__ import annotations

from typing import Any

from fastapi import Request


def feature(row: dict[str, Any], id_key: str = "id") -> dict[str, Any]:
    props = {k: v for k, v in row.items() if k != "geometry"}
    return {"type": "Feature", "id": row.get(id_key), "geometry": row["geometry"], "properties": props}


def feature_collection(rows: list[dict], total: int, request: Request, limit: int,
                       offset: int) -> dict[str, Any]:
    links = []
    if offset + len(rows) < total:
        nxt = request.url.include_query_params(offset=offset + limit, limit=limit)
        links.append({"rel": "next", "href": str(nxt), "type": "application/geo+json"})
    if offset > 0:
        prev = request.url.include_query_params(offset=max(offset - limit, 0), limit=limit)
        links.append({"rel": "prev", "href": str(prev), "type": "application/geo+json"})
    return {"type": "FeatureCollection", "features": [feature(r) for r in rows],
            "numberMatched": total, "numberReturned": len(rows), "links": links}
