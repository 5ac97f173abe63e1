"""The four public feature collections (grids, buildings, facilities, issues) as OGC API -
Features reads them: each collection's extent, a page of features, one feature. Plain data;
``api/protocols/ogc.py`` writes the documents.

Features come from :mod:`gis.queries.reads`, so they read as they do in /api/v1, issues through
the one issue read model (:mod:`gis.queries.issue_model`), with one difference: OGC readers are
anonymous, so issues never carry the personal fields, whoever asks (:func:`read_public_issues`).
``since`` and ``until`` are both inclusive, as in :class:`gis.queries.filters.IssueFilter`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import NotFound
from gis.queries import reads
from gis.queries.filters import BBox, IssueFilter
from gis.queries.issue_model import PERSONAL_FIELDS

COLLECTION_IDS = ("grids", "buildings", "facilities", "issues")
# FROM ... WHERE ... of the rows whose extent each collection declares.
_EXTENT_SOURCES = {"grids": "grids WHERE valid_to IS NULL", "buildings": "buildings",
                   "facilities": "facilities", "issues": "issues"}


@dataclass(frozen=True)
class FeatureFilter:
    """What a page of features is restricted to (``since`` and ``until`` inclusive)."""

    bbox: BBox | None = None
    grid_code: str | None = None
    community: str | None = None
    category: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 10
    offset: int = 0


@dataclass(frozen=True)
class Extent:
    """(minx, miny, maxx, maxy) of the stored features (None when there are none) and, for
    issues, the first and last time reported."""

    bbox: tuple[float, float, float, float] | None
    first: datetime | None = None
    last: datetime | None = None


def extent(session: Session, collection_id: str) -> Extent:
    source = _EXTENT_SOURCES[collection_id]
    box = session.execute(text(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
        f"(SELECT ST_Extent(geom) AS e FROM {source}) s")).one()
    bbox = tuple(box) if box[0] is not None else None
    if collection_id != "issues":
        return Extent(bbox)
    first, last = session.execute(text(
        f"SELECT min(reported_at), max(reported_at) FROM {source}")).one()
    return Extent(bbox, first, last)


# -- pages of features ------------------------------------------------------------------------------
def read_features(session: Session, collection_id: str, flt: FeatureFilter) -> reads.Page:
    """One page of ``collection_id``; rows hold ``geometry`` (GeoJSON) and the properties."""
    return _READERS[collection_id](session, flt)


def _grids(session: Session, f: FeatureFilter) -> reads.Page:
    return reads.list_grids(session, bbox=f.bbox, community=f.community, limit=f.limit,
                            offset=f.offset)


def _buildings(session: Session, f: FeatureFilter) -> reads.Page:
    return reads.list_buildings(session, bbox=f.bbox, grid=f.grid_code, community=f.community,
                                limit=f.limit, offset=f.offset)


def _facilities(session: Session, f: FeatureFilter) -> reads.Page:
    return reads.list_facilities(session, bbox=f.bbox, grid=f.grid_code, community=f.community,
                                 category=list(f.category), status=list(f.status), limit=f.limit,
                                 offset=f.offset)


def read_public_issues(session: Session, f: FeatureFilter) -> reads.Page:
    """A page of issues as anyone may read them: without the personal properties."""
    filters = IssueFilter(bbox=f.bbox, grid=f.grid_code, community=f.community,
                          categories=f.category, statuses=f.status, since=f.since, until=f.until)
    page = reads.list_issues(session, None, filters, limit=f.limit, offset=f.offset)
    return reads.Page([_public(row) for row in page.items], page.total)


_READERS: dict[str, Callable[[Session, FeatureFilter], reads.Page]] = {
    "grids": _grids, "buildings": _buildings, "facilities": _facilities,
    "issues": read_public_issues,
}


# -- single features --------------------------------------------------------------------------------
def read_feature(session: Session, collection_id: str, feature_id: str) -> dict:
    """One feature: a grid by its code, anything else by its numeric id."""
    if collection_id == "grids":
        return reads.get_grid(session, feature_id)
    if not feature_id.isdigit():
        raise NotFound(f"no {collection_id} feature with id {feature_id!r}",
                       zh=f"{collection_id} 中没有 id 为 {feature_id!r} 的要素")
    if collection_id == "buildings":
        return reads.get_building(session, int(feature_id))
    if collection_id == "facilities":
        return reads.get_facility(session, int(feature_id))
    return read_public_issue(session, int(feature_id))


def read_public_issue(session: Session, issue_id: int) -> dict:
    """One issue as anyone may read it: without the personal properties."""
    return _public(reads.get_issue(session, None, issue_id))


def _public(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in PERSONAL_FIELDS}
