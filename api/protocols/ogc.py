"""OGC API - Features (Part 1: Core, GeoJSON, HTML, OpenAPI 3.0): the documents and their links.

Plain dicts for the landing page, conformance, collections and items, and an HTML page of any of
them (``templates/ogc.html``); ``api/routes/ogc.py`` sends them. The data comes from
``gis.queries.feature_collections`` (issues for logged-in readers, in their scope, without
personal data whoever asks).

Coordinates are CRS84 (lon, lat), the only CRS offered. Items are paged by ``limit`` (default 10,
at most 10,000: a larger limit is cut to that, as the standard asks) and ``offset``, which the
``next``/``prev`` links carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote, urlencode

from sqlalchemy.orm import Session

from api.protocols import templating
from gis import errors
from gis.errors import GridMapError, NotFound
from gis.queries import feature_collections as fc
from gis.queries.filters import BBox, local_time

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000
COMMON_PARAMETERS = ("bbox", "limit", "offset", "datetime", "f")
GEOJSON = "application/geo+json"
OPENAPI_JSON = "application/vnd.oai.openapi+json;version=3.0"
WORLD = [-180, -90, 180, 90]


class InvalidParameter(errors.InvalidParameter):
    """A query parameter the standard says is answered with 400 (``api/routes/ogc.py`` turns
    every invalid input into the standard's 400)."""


@dataclass(frozen=True)
class Collection:
    id: str
    title: str
    description: str
    filters: tuple[str, ...]  # properties accepted as query parameters (equality)
    temporal: bool = False  # datetime filters reported_at
    id_property: str = "id"


COLLECTIONS = {c.id: c for c in (
    Collection("grids", "网格 Grids", "Current grid boundaries (the newest version of each).",
               ("community",), id_property="code"),
    Collection("buildings", "楼栋 Buildings", "Building footprints with floors and households.",
               ("grid_code", "community")),
    Collection("facilities", "部件 Facilities", "Point assets with category and state.",
               ("grid_code", "community", "category", "status")),
    Collection("issues", "事件 Issues",
               "Geotagged problem reports and their workflow status, for logged-in users "
               "(HTTP Basic or a bearer token), in their scope; no personal data. "
               "datetime filters the time reported.",
               ("grid_code", "community", "category", "status"), temporal=True),
)}

def collection_spec(collection_id: str) -> Collection:
    try:
        return COLLECTIONS[collection_id]
    except KeyError:
        raise NotFound(f"no collection {collection_id!r}; collections: {', '.join(COLLECTIONS)}",
                       zh=f"没有名为 {collection_id!r} 的数据集；可用：{', '.join(COLLECTIONS)}") from None


# -- documents --------------------------------------------------------------------------------
def landing_page(base: str) -> dict:
    return {
        "title": "GridMap OGC API - Features",
        "description": "Grids, buildings, facilities and issues of community grid governance "
                       "(网格化管理), in WGS84 (CRS84).",
        "links": [
            _link(base, "self", "application/json", "This document"),
            _link(f"{base}?f=html", "alternate", "text/html", "This document as HTML"),
            _link(f"{base}/api", "service-desc", OPENAPI_JSON, "The API definition (OpenAPI 3.0)"),
            _link(f"{base}/api?f=html", "service-doc", "text/html", "The API documentation"),
            _link(f"{base}/conformance", "conformance", "application/json", "Conformance classes"),
            _link(f"{base}/collections", "data", "application/json", "The collections"),
        ],
    }


def conformance() -> dict:
    return {"conformsTo": CONFORMANCE}


def collections(session: Session, base: str) -> dict:
    return {
        "links": [_link(f"{base}/collections", "self", "application/json", "The collections"),
                  _link(f"{base}/collections?f=html", "alternate", "text/html", "As HTML")],
        "collections": [_collection(base, c, fc.extent(session, c.id))
                        for c in COLLECTIONS.values()],
    }


def collection(session: Session, base: str, collection_id: str) -> dict:
    spec = collection_spec(collection_id)
    return _collection(base, spec, fc.extent(session, spec.id))


def _collection(base: str, spec: Collection, extent: fc.Extent) -> dict:
    url = f"{base}/collections/{spec.id}"
    return {
        "id": spec.id, "title": spec.title, "description": spec.description, "itemType": "feature",
        "crs": [CRS84], "storageCrs": CRS84, "extent": _extent(spec, extent),
        "links": [
            _link(url, "self", "application/json", spec.title),
            _link(f"{url}?f=html", "alternate", "text/html", "As HTML"),
            _link(f"{url}/items", "items", GEOJSON, f"{spec.title} as GeoJSON"),
            _link(f"{url}/items?f=html", "items", "text/html", f"{spec.title} as HTML"),
        ],
    }


def _extent(spec: Collection, extent: fc.Extent) -> dict:
    box = [round(v, 7) for v in extent.bbox] if extent.bbox else WORLD
    doc: dict = {"spatial": {"bbox": [box], "crs": CRS84}}
    if spec.temporal:
        doc["temporal"] = {"interval": [[_iso(extent.first), _iso(extent.last)]], "trs": GREGORIAN}
    return doc


# -- items: parsing the query -------------------------------------------------------------------
def parse_items_query(spec: Collection, params: dict[str, str]) -> fc.FeatureFilter:
    """Query parameters of /items; an unknown parameter is a 400, as the standard asks."""
    allowed = set(COMMON_PARAMETERS) | set(spec.filters)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise InvalidParameter(
            f"unknown query parameter {', '.join(unknown)} for {spec.id}; "
            f"known: {', '.join(sorted(allowed))}",
            zh=f"{spec.id} 不接受查询参数 {', '.join(unknown)}；可用：{', '.join(sorted(allowed))}")
    since, until = parse_datetime(params.get("datetime"), spec)
    filters = {k: params[k] for k in spec.filters if params.get(k)}
    return fc.FeatureFilter(
        bbox=parse_bbox(params.get("bbox")), grid_code=filters.get("grid_code"),
        community=filters.get("community"), category=_values(filters.get("category")),
        status=_values(filters.get("status")), since=since, until=until,
        limit=_limit(params.get("limit")), offset=_whole(params.get("offset"), "offset", 0))


def _values(raw: str | None) -> tuple[str, ...]:
    """A filter's values: one, or several separated by commas."""
    return tuple(v.strip() for v in raw.split(",") if v.strip()) if raw else ()


def parse_bbox(raw: str | None) -> BBox | None:
    """``minx,miny,maxx,maxy`` or the 3D ``minx,miny,minz,maxx,maxy,maxz`` (heights ignored)."""
    if not raw:
        return None
    parts = raw.split(",")
    if len(parts) == 6:
        parts = parts[0:2] + parts[3:5]
    try:
        return BBox.parse(",".join(parts))
    except GridMapError as exc:
        raise InvalidParameter(str(exc), zh=exc.zh) from exc


def _limit(raw: str | None) -> int:
    return min(_whole(raw, "limit", DEFAULT_LIMIT, minimum=1), MAX_LIMIT)


def _whole(raw: str | None, name: str, default: int, minimum: int = 0) -> int:
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) < minimum:
        raise InvalidParameter(f"{name} must be a whole number >= {minimum}; got {raw!r}",
                               zh=f"{name} 应为不小于 {minimum} 的整数；收到 {raw!r}")
    return int(raw)


def parse_datetime(raw: str | None, spec: Collection) -> tuple[datetime | None, datetime | None]:
    """An instant or a closed interval (``a/b``, ``../b``, ``a/..``) as (since, until), both
    inclusive."""
    if not raw:
        return None, None
    if not spec.temporal:
        raise InvalidParameter(f"collection {spec.id} has no time; datetime applies to issues",
                               zh=f"数据集 {spec.id} 没有时间属性；datetime 只用于 issues（事件）")
    if "/" not in raw:
        return _instant(raw)
    first, _, last = raw.partition("/")
    since = None if first in ("", "..") else _instant(first)[0]
    until = None if last in ("", "..") else _instant(last)[1]
    if since is not None and until is not None and until < since:
        raise InvalidParameter(f"datetime interval ends before it starts: {raw!r}",
                               zh=f"datetime 时间段的结束早于开始：{raw!r}")
    return since, until


def _instant(raw: str) -> tuple[datetime, datetime]:
    """(first, last) instant: a date stands for that whole day (Beijing time), both ends
    inclusive as in :class:`gis.queries.filters.IssueFilter`; a date-time for that instant."""
    try:
        if len(raw) == 10:
            day = local_time(datetime.combine(date.fromisoformat(raw), datetime.min.time()))
            return day, day + timedelta(days=1) - timedelta(microseconds=1)
        moment = local_time(datetime.fromisoformat(raw))
    except ValueError as exc:
        raise InvalidParameter(f"datetime must be RFC 3339 (2025-03-01T08:00:00Z), a date, or an "
                               f"interval of them; got {raw!r}",
                               zh=f"datetime 应为 RFC 3339 时间（如 2025-03-01T08:00:00Z）、日期，"
                                  f"或它们组成的时间段；收到 {raw!r}") from exc
    return moment, moment


# -- items: the documents -----------------------------------------------------------------------
def items(session: Session, base: str, collection_id: str, params: dict[str, str],
          reader: fc.Reader = fc.ANONYMOUS) -> dict:
    """One page of a collection as a GeoJSON FeatureCollection with paging links."""
    spec = collection_spec(collection_id)
    query = parse_items_query(spec, params)
    page = fc.read_features(session, spec.id, query, reader)
    features = [_feature(spec, row) for row in page.items]
    return {
        "type": "FeatureCollection", "features": features,
        "numberMatched": page.total, "numberReturned": len(features),
        "timeStamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "links": _items_links(f"{base}/collections/{spec.id}", params, query, page.total),
    }


def _items_links(url: str, params: dict[str, str], query: fc.FeatureFilter,
                 total: int) -> list[dict]:
    keep = {k: v for k, v in params.items() if k not in ("f", "offset", "limit")}

    def at(offset: int, fmt: str | None = None) -> str:
        extra = {"f": fmt} if fmt else {}
        return f"{url}/items?" + urlencode(keep | {"limit": query.limit, "offset": offset} | extra)

    links = [_link(at(query.offset), "self", GEOJSON, "This page"),
             _link(at(query.offset, "html"), "alternate", "text/html", "This page as HTML"),
             _link(url, "collection", "application/json", "The collection")]
    if query.offset + query.limit < total:
        links.append(_link(at(query.offset + query.limit), "next", GEOJSON, "Next page"))
    if query.offset > 0:
        links.append(_link(at(max(query.offset - query.limit, 0)), "prev", GEOJSON, "Previous page"))
    return links


def item(session: Session, base: str, collection_id: str, feature_id: str,
         reader: fc.Reader = fc.ANONYMOUS) -> dict:
    spec = collection_spec(collection_id)
    feature = _feature(spec, fc.read_feature(session, spec.id, feature_id, reader))
    url = f"{base}/collections/{spec.id}"
    feature["links"] = [_link(f"{url}/items/{feature_id}", "self", GEOJSON, "This feature"),
                        _link(f"{url}/items/{feature_id}?f=html", "alternate", "text/html", "As HTML"),
                        _link(url, "collection", "application/json", "The collection")]
    return feature


def _feature(spec: Collection, row: dict) -> dict:
    props = {k: v for k, v in row.items() if k != "geometry"}
    return {"type": "Feature", "id": row[spec.id_property], "geometry": row["geometry"],
            "properties": props}


def _link(href: str, rel: str, media_type: str, title: str) -> dict:
    return {"href": href, "rel": rel, "type": media_type, "title": title}


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


# -- HTML -------------------------------------------------------------------------------------------
def render_html(title: str, doc: dict) -> str:
    """Any of the documents as a plain page: the links, then collections, features or properties
    as tables (``templates/ogc.html``, autoescaped)."""
    return templating.render(
        "ogc.html", title=title, description=doc.get("description"),
        conforms_to=doc.get("conformsTo"), collections=_html_collections(doc),
        features=_html_features(doc), paths=list(doc["paths"]) if "paths" in doc else None,
        properties=list(doc["properties"].items()) if doc.get("type") == "Feature" else None,
        links=doc.get("links", []))


def _html_collections(doc: dict) -> list[dict] | None:
    if "collections" not in doc:
        return None
    return [{"href": _href(c, "alternate") or "", "title": c["title"],
             "description": c["description"]} for c in doc["collections"]]


def _html_features(doc: dict) -> dict | None:
    if doc.get("type") != "FeatureCollection":
        return None
    columns = sorted({k for f in doc["features"] for k in f["properties"]})
    items_url = f"{_href(doc, 'collection')}/items"
    rows = [{"id": f["id"], "href": f"{items_url}/{quote(str(f['id']), safe='')}?f=html",
             "cells": [f["properties"].get(k) for k in columns]} for f in doc["features"]]
    return {"returned": doc["numberReturned"], "matched": doc["numberMatched"],
            "columns": columns, "rows": rows}


def _href(doc: dict, rel: str) -> str | None:
    return next((link["href"] for link in doc.get("links", []) if link["rel"] == rel), None)


# -- the OpenAPI 3.0 definition ---------------------------------------------------------------
def openapi(base: str) -> dict:
    """An OpenAPI 3.0 document of the OGC endpoints only (GDAL reads the filters it declares)."""
    paths: dict = {
        "/": _get_op("landingPage", "Landing page", "application/json"),
        "/conformance": _get_op("getConformance", "Conformance classes", "application/json"),
        "/collections": _get_op("getCollections", "The collections", "application/json"),
    }
    for spec in COLLECTIONS.values():
        url = f"/collections/{spec.id}"
        paths[url] = _get_op(f"describe_{spec.id}", spec.title, "application/json")
        filters = [{"name": p, "in": "query", "required": False, "schema": {"type": "string"},
                    "style": "form", "explode": False,
                    "description": f"Features whose {p} equals this (commas: any of several)"}
                   for p in spec.filters]
        common = [{"$ref": f"#/components/parameters/{p}"}
                  for p in ("bbox", "limit", "offset", "f") + (("datetime",) if spec.temporal else ())]
        paths[f"{url}/items"] = _get_op(f"get_{spec.id}_items", f"{spec.title}: features", GEOJSON,
                                        common + filters)
        paths[f"{url}/items/{{featureId}}"] = _get_op(
            f"get_{spec.id}_item", f"{spec.title}: one feature", GEOJSON,
            [{"$ref": "#/components/parameters/featureId"}, {"$ref": "#/components/parameters/f"}])
    return {"openapi": "3.0.3",
            "info": {"title": "GridMap OGC API - Features", "version": "1.0.0",
                     "description": "Grids, buildings, facilities and issues (no personal data)."},
            "servers": [{"url": base}], "paths": paths,
            "components": {"parameters": _PARAMETERS}}


def _get_op(operation_id: str, summary: str, media_type: str, parameters: list | None = None) -> dict:
    return {"get": {"operationId": operation_id, "summary": summary, "parameters": parameters or [],
                    "responses": {"200": {"description": summary,
                                          "content": {media_type: {"schema": {"type": "object"}},
                                                      "text/html": {"schema": {"type": "string"}}}},
                                  "400": {"description": "A query parameter is invalid"},
                                  "404": {"description": "No such collection or feature"}}}}


_PARAMETERS = {
    "bbox": {"name": "bbox", "in": "query", "required": False, "style": "form", "explode": False,
             "description": "minx,miny,maxx,maxy in CRS84",
             "schema": {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}},
    "limit": {"name": "limit", "in": "query", "required": False, "style": "form", "explode": False,
              "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                         "default": DEFAULT_LIMIT}},
    "offset": {"name": "offset", "in": "query", "required": False, "style": "form",
               "explode": False, "schema": {"type": "integer", "minimum": 0, "default": 0}},
    "datetime": {"name": "datetime", "in": "query", "required": False, "style": "form",
                 "explode": False, "schema": {"type": "string"},
                 "description": "An RFC 3339 instant, a date, or an interval a/b with .. for open"},
    "f": {"name": "f", "in": "query", "required": False, "style": "form", "explode": False,
          "schema": {"type": "string", "enum": ["json", "html"]}},
    "featureId": {"name": "featureId", "in": "path", "required": True,
                  "schema": {"type": "string"}},
}
