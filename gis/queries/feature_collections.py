"""The four feature collections (grids, buildings, facilities, issues) as OGC API - Features
reads them: each collection's extent, a page of features, one feature. Plain data;
``api/protocols/ogc.py`` writes the documents.

Features come from :mod:`gis.queries.reads`, so they read as they do in /api/v1, issues through
the one issue read model (:mod:`gis.queries.issue_model`). Issues are case data
(:data:`CASE_DATA`): only a logged-in reader gets them, only those in the reader's scope
(:func:`gis.people.actors.read_scope_sql`), and never with personal data, whoever asks: a GIS
desktop keeps what it loads, so the personal fields are left out and free text is masked
(:func:`read_issues`). Grids, buildings and facilities hold no case data and are public; a grid's
counts of open issues are counted in the reader's scope. ``since`` and ``until`` are both
inclusive, as in :class:`gis.queries.filters.IssueFilter`.
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
from gis.queries.issue_model import PERSONAL_FIELDS, mask_free_text
from gis.queries.reads import ANONYMOUS, Reader

COLLECTION_IDS = ("grids", "buildings", "facilities", "issues")
CASE_DATA = frozenset({"issues"})  # read only by a logged-in caller, in their scope
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
def read_features(session: Session, collection_id: str, flt: FeatureFilter,
                  reader: Reader = ANONYMOUS) -> reads.Page:
    """One page of ``collection_id``; rows hold ``geometry`` (GeoJSON) and the properties."""
    return _READERS[collection_id](session, flt, reader)


def _grids(session: Session, f: FeatureFilter, _: Reader) -> reads.Page:
    return reads.list_grids(session, bbox=f.bbox, community=f.community, limit=f.limit,
                            offset=f.offset)


def _buildings(session: Session, f: FeatureFilter, _: Reader) -> reads.Page:
    return reads.list_buildings(session, bbox=f.bbox, grid=f.grid_code, community=f.community,
                                limit=f.limit, offset=f.offset)


def _facilities(session: Session, f: FeatureFilter, _: Reader) -> reads.Page:
    return reads.list_facilities(session, bbox=f.bbox, grid=f.grid_code, community=f.community,
                                 category=list(f.category), status=list(f.status), limit=f.limit,
                                 offset=f.offset)


def read_issues(session: Session, f: FeatureFilter, reader: Reader) -> reads.Page:
    """A page of the issues ``reader`` may read, without personal data."""
    filters = IssueFilter(bbox=f.bbox, grid=f.grid_code, community=f.community,
                          categories=f.category, statuses=f.status, since=f.since, until=f.until)
    page = reads.list_issues(session, reader.actor, filters, limit=f.limit, offset=f.offset,
                             public_read=reader.public_read)
    return reads.Page([_impersonal(row) for row in page.items], page.total)


_READERS: dict[str, Callable[[Session, FeatureFilter, Reader], reads.Page]] = {
    "grids": _grids, "buildings": _buildings, "facilities": _facilities, "issues": read_issues,
}


# -- single features --------------------------------------------------------------------------------
def read_feature(session: Session, collection_id: str, feature_id: str,
                 reader: Reader = ANONYMOUS) -> dict:
    """One feature: a grid by its code, anything else by its numeric id. An issue outside the
    reader's scope is :class:`~gis.errors.Forbidden`."""
    if collection_id == "grids":
        return reads.get_grid(session, feature_id, reader.actor, public_read=reader.public_read)
    if not feature_id.isdigit():
        raise NotFound(f"no {collection_id} feature with id {feature_id!r}",
                       zh=f"{collection_id} 中没有 id 为 {feature_id!r} 的要素")
    if collection_id == "buildings":
        return reads.get_building(session, int(feature_id))
    if collection_id == "facilities":
        return reads.get_facility(session, int(feature_id))
    row, _, _ = reads.get_issue(session, reader.actor, int(feature_id),
                                public_read=reader.public_read)
    return _impersonal(row)


def _impersonal(row: dict) -> dict:
    """An issue without its personal fields, free text masked; its uploaded photos are the API's
    to link (``/api/v1/issues``), not a flat property a GIS client could show."""
    return mask_free_text({k: v for k, v in row.items()
                           if k not in PERSONAL_FIELDS and k != "photos"})
