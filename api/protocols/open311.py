"""Open311 GeoReport v2: issue categories as services, issues as service requests.

Plain data in and out; ``api/routes/open311.py`` writes it as the spec's JSON or XML. What the
spec leaves to the implementer is decided here:

- ``service_request_id`` is the issue id; ``status`` is ``closed`` for closed and rejected issues
  and ``open`` for every other workflow status, which ``status_notes`` names.
- Requests are located from ``lat``/``long`` (WGS84; the ``crs`` extension takes ``gcj02``,
  ``bd09``...) or from an ``address_string`` naming a compound or a building of the community
  ("水利局家属院3号楼"), then geotagged to a grid like any other report.
- Posting needs an ``api_key``; only its SHA-256 is stored. Reporter contact (email, phone, names)
  is stored for the grid's worker and never returned by a GET.
- Without dates, GET requests covers the last 90 days; a date range may not exceed 90 days
  (the spec's limit); at most 1,000 requests, newest first.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import Forbidden, GridMapError, NotFound
from gis.geo.crs import parse_crs, to_wgs84
from gis.geotag.index_cache import GridIndexCache
from gis.issues import reporting
from gis.queries.filters import local_time
from gis.rules import BEIJING, FINAL_SQL
from gis.rules import STATUS_NAMES as RULE_STATUS_NAMES

SPEC_URL = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-28T00:00:00+08:00"  # when this endpoint's behaviour last changed
MAX_RANGE = timedelta(days=90)
MAX_REQUESTS = 1000
MAX_DESCRIPTION = 4000
CHANNEL = "open311"
KEY_PREFIX = "gm311_"
IDEMPOTENCY_NAMESPACE = uuid.UUID("0c9e3f43-5a1e-4f0f-b1a2-311311311311")
STATUS_NAMES = {s: f"{zh} / {en.lower()}" for s, (zh, en) in RULE_STATUS_NAMES.items()}


class BadRequest(GridMapError):
    """A GeoReport parameter is missing or malformed (the spec's 400)."""

    code = "bad_request"


# -- services ---------------------------------------------------------------------------------
def list_services(session: Session) -> list[dict]:
    """Every issue category as a GeoReport service; ``metadata`` says it has attributes."""
    return [_service(row, bool(row["facility_categories"])) for row in _categories(session)]


def service_definition(session: Session, service_code: str) -> dict:
    row = _category(session, service_code)
    if row is None:
        raise NotFound(f"no service with service_code {service_code!r}; see services.json")
    return {"service_code": service_code, "attributes": _attributes(session, row)}


def _categories(session: Session, code: str | None = None) -> list[dict]:
    rows = session.execute(text(
        "SELECT code, name_zh, name_en, std_code, due_hours, facility_categories FROM categories "
        "WHERE kind = 'issue' AND (CAST(:c AS text) IS NULL OR code = :c) ORDER BY std_code, code"),
        {"c": code}).mappings()
    return [dict(r) for r in rows]


def _category(session: Session, code: str) -> dict | None:
    found = _categories(session, code)
    return found[0] if found else None


def _service(row: dict, metadata: bool) -> dict:
    return {"service_code": row["code"], "service_name": row["name_zh"],
            "description": f"{row['name_en']}. {_due_notice(row['due_hours'])}",
            "metadata": metadata, "type": "realtime",
            "keywords": ", ".join((row["code"], row["name_en"].lower())), "group": row["std_code"]}


def _due_notice(hours: int | None) -> str:
    return f"处理时限 {hours} 小时 / handled within {hours} h" if hours else "按规定时限处理"


def _attributes(session: Session, row: dict) -> list[dict]:
    """Categories that concern a facility (部件) ask which one: by its plate code, or its kind."""
    kinds = list(row["facility_categories"] or [])
    if not kinds:
        return []
    attributes = [{
        "variable": True, "code": "facility_code", "datatype": "string", "required": False,
        "datatype_description": "16 digits", "order": 1,
        "description": "部件编码 (设施铭牌上的16位编码) / the 16-digit code on the asset's plate, if visible",
        "values": []}]
    if len(kinds) > 1:
        names = dict(session.execute(text(
            "SELECT code, name_zh FROM categories WHERE code = ANY(:k)"), {"k": kinds}).all())
        attributes.append({
            "variable": True, "code": "facility_kind", "datatype": "singlevaluelist",
            "required": False, "datatype_description": None, "order": 2,
            "description": "哪一种设施 / which kind of asset",
            "values": [{"key": k, "name": names.get(k, k)} for k in kinds]})
    return attributes


# -- reading requests ---------------------------------------------------------------------------
@dataclass(frozen=True)
class RequestQuery:
    """GET requests parameters, parsed. ``ids`` overrides every other filter (the spec's rule)."""

    ids: tuple[int, ...] = ()
    service_codes: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    statuses: tuple[str, ...] = ()

    @classmethod
    def parse(cls, service_request_id: str | None = None, service_code: str | None = None,
              start_date: str | None = None, end_date: str | None = None,
              status: str | None = None, now: datetime | None = None) -> RequestQuery:
        if service_request_id:
            return cls(ids=tuple(_request_id(v) for v in _split(service_request_id)))
        statuses = tuple(_split(status))
        bad = [s for s in statuses if s not in ("open", "closed")]
        if bad:
            raise BadRequest(f"status must be open or closed (comma separated); got {', '.join(bad)}")
        start, end = _date_range(_w3c(start_date, "start_date"), _w3c(end_date, "end_date"),
                                 now or datetime.now(BEIJING))
        return cls(service_codes=tuple(_split(service_code)), start=start, end=end, statuses=statuses)


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _request_id(value: str) -> int:
    if not value.isdigit():
        raise BadRequest(f"service_request_id must be a number; got {value!r}")
    return int(value)


def _w3c(value: str | None, name: str) -> datetime | None:
    """A W3C date-time (``2025-03-01T08:00:00Z``) or date; without an offset it is Beijing time."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace(" ", "+"))
    except ValueError as exc:
        raise BadRequest(f"{name} must be a W3C date-time such as 2025-03-01T08:00:00Z; "
                         f"got {value!r}") from exc
    return local_time(parsed)


def _date_range(start: datetime | None, end: datetime | None,
                now: datetime) -> tuple[datetime, datetime]:
    if start is None and end is None:
        return now - MAX_RANGE, now
    if start is None:
        return end - MAX_RANGE, end
    if end is None:
        return start, start + MAX_RANGE
    if end < start:
        raise BadRequest(f"end_date {end.isoformat()} is before start_date {start.isoformat()}")
    if end - start > MAX_RANGE:
        raise BadRequest("start_date and end_date may not span more than 90 days; "
                         f"got {(end - start).days} days")
    return start, end


# Only what the public may read: no reporter contact, no client UUID.
_REQUEST_SQL = f"""
    SELECT i.id, i.category, k.name_zh AS service_name, k.due_hours, i.description, i.status,
           i.reported_at, i.due_at, i.photo_urls, ST_X(i.geom) AS lon,
           coalesce((SELECT max(e.at) FROM issue_events e WHERE e.issue_id = i.id),
                    i.updated_at) AS updated_at,
           ST_Y(i.geom) AS lat, g.code AS grid_code, g.name AS grid_name,
           i.status IN {FINAL_SQL} AS ended
      FROM issues i JOIN categories k ON k.code = i.category LEFT JOIN grids g ON g.id = i.grid_id"""


def list_requests(session: Session, query: RequestQuery) -> list[dict]:
    """Service requests matching ``query``, newest first, at most 1,000."""
    clauses, params = _request_where(query)
    rows = session.execute(text(
        f"{_REQUEST_SQL} WHERE {' AND '.join(clauses) or 'TRUE'} "
        "ORDER BY i.reported_at DESC, i.id DESC LIMIT :limit"),
        params | {"limit": MAX_REQUESTS}).mappings()
    return [_request(r) for r in rows]


def _request_where(query: RequestQuery) -> tuple[list[str], dict]:
    if query.ids:
        return ["i.id = ANY(:ids)"], {"ids": list(query.ids)}
    clauses = ["i.reported_at >= :start", "i.reported_at < :end"]
    params: dict = {"start": query.start, "end": query.end}
    if query.service_codes:
        clauses.append("i.category = ANY(:codes)")
        params["codes"] = list(query.service_codes)
    if len(set(query.statuses)) == 1:  # both open and closed is everything
        clauses.append(f"i.status {'IN' if query.statuses[0] == 'closed' else 'NOT IN'} {FINAL_SQL}")
    return clauses, params


def get_request(session: Session, request_id: int) -> dict:
    row = session.execute(text(f"{_REQUEST_SQL} WHERE i.id = :id"), {"id": request_id}).mappings().first()
    if row is None:
        raise NotFound(f"no service request with service_request_id {request_id}")
    return _request(row)


def _request(row) -> dict:
    photos = row["photo_urls"] or []
    agency = f"{row['grid_name']} ({row['grid_code']})" if row["grid_code"] else "社区待分派 / unassigned"
    return {
        "service_request_id": str(row["id"]),
        "status": "closed" if row["ended"] else "open",
        "status_notes": STATUS_NAMES.get(row["status"], row["status"]),
        "service_name": row["service_name"],
        "service_code": row["category"],
        "description": row["description"],
        "agency_responsible": agency,
        "service_notice": _due_notice(row["due_hours"]),
        "requested_datetime": _w3c_out(row["reported_at"]),
        "updated_datetime": _w3c_out(row["updated_at"]),
        "expected_datetime": _w3c_out(row["due_at"]),
        "address": None,
        "address_id": None,
        "zipcode": None,
        "lat": round(row["lat"], 7),
        "long": round(row["lon"], 7),
        "media_url": photos[0] if photos else None,
    }


def _w3c_out(value: datetime | None) -> str | None:
    return value.astimezone(BEIJING).isoformat(timespec="seconds") if value else None


# -- posting a request ------------------------------------------------------------------------
@dataclass
class RequestPost:
    """The fields of POST requests, as a client sends them (strings, form-encoded)."""

    service_code: str | None = None
    lat: str | None = None
    long: str | None = None
    address_string: str | None = None
    description: str = ""
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    media_url: str | None = None
    crs: str = "wgs84"  # an extension: Chinese SDKs hand out GCJ-02 or BD-09
    attributes: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Posted:
    service_request_id: int
    created: bool
    service_notice: str


def post_request(session: Session, cache: GridIndexCache, api_key_id: int, post: RequestPost,
                 idempotency_key: str | None = None) -> Posted:
    """Store a service request as an issue (geotagged, linked to its facility, given a due time).

    The same ``Idempotency-Key`` from the same api key returns the request stored the first time.
    """
    if not post.service_code:
        raise BadRequest("service_code is required; see services.json")
    category = _category(session, post.service_code)
    if category is None:
        raise BadRequest(f"unknown service_code {post.service_code!r}; see services.json")
    if len(post.description) > MAX_DESCRIPTION:
        raise BadRequest(f"description may hold {MAX_DESCRIPTION} characters; got {len(post.description)}")
    if post.media_url and not re.match(r"https?://\S+$", post.media_url.strip()):
        raise BadRequest(f"media_url must be an http(s) URL; got {post.media_url[:100]!r}")
    x, y, crs = _place(session, post)
    report = reporting.IssueReport(
        x=x, y=y, crs=crs, category=post.service_code, description=_description(post),
        reporter_contact=_contact(post), photo_urls=[post.media_url.strip()] if post.media_url else [],
        channel=CHANNEL, facility_id=_facility(session, category, post, x, y, crs),
        client_uuid=_client_uuid(api_key_id, idempotency_key))
    stored = reporting.report_issue(session, cache, None, report)
    return Posted(stored.issue_id, stored.created, _due_notice(category["due_hours"]))


def _place(session: Session, post: RequestPost) -> tuple[float, float, str]:
    if post.lat or post.long:
        if not (post.lat and post.long):
            raise BadRequest("lat and long go together; got only "
                             + ("lat" if post.lat else "long"))
        try:
            return float(post.long), float(post.lat), post.crs or "wgs84"
        except ValueError as exc:
            raise BadRequest(f"lat and long must be decimal degrees; got lat={post.lat!r}, "
                             f"long={post.long!r}") from exc
    if post.address_string and post.address_string.strip():
        lon, lat = geocode_address(session, post.address_string)
        return lon, lat, "wgs84"
    raise BadRequest("a location is required: lat and long, or an address_string naming a "
                     "compound or building")


def geocode_address(session: Session, address: str) -> tuple[float, float]:
    """A point inside the building or compound that ``address`` names (the longest name wins)."""
    compact = re.sub(r"\s+", "", address)
    row = session.execute(text("""
        SELECT ST_X(p), ST_Y(p) FROM (
            SELECT ST_PointOnSurface(b.geom) AS p, length(c.name || b.name) AS n
              FROM buildings b JOIN compounds c ON c.id = b.compound_id
             WHERE strpos(:a, c.name || b.name) > 0
            UNION ALL
            SELECT ST_PointOnSurface(c.geom), length(c.name) FROM compounds c
             WHERE strpos(:a, c.name) > 0) found
         ORDER BY n DESC LIMIT 1"""), {"a": compact}).first()
    if row is None:
        raise BadRequest(f"address_string {address!r} names no compound or building GridMap "
                         "knows; send lat and long instead")
    return row[0], row[1]


def _description(post: RequestPost) -> str:
    if post.address_string and (post.lat or post.long):
        return f"{post.description}\n[address: {post.address_string.strip()}]".strip()
    return post.description


def _contact(post: RequestPost) -> str | None:
    name = " ".join(p for p in (post.last_name, post.first_name) if p)
    parts = [p.strip() for p in (name, post.email, post.phone) if p and p.strip()]
    return "; ".join(parts)[:200] or None


def _facility(session: Session, category: dict, post: RequestPost, x: float, y: float,
              crs: str) -> int | None:
    """The facility named by ``attribute[facility_code]``, or the nearest of ``facility_kind``."""
    code = _one_attribute(post, "facility_code")
    if code:
        found = session.execute(text("SELECT id FROM facilities WHERE code = :c"), {"c": code}).scalar()
        if found is None:
            raise BadRequest(f"attribute[facility_code]: no facility has the code {code!r}")
        return found
    kind = _one_attribute(post, "facility_kind")
    if not kind:
        return None
    kinds = list(category["facility_categories"] or [])
    if kind not in kinds:
        raise BadRequest(f"attribute[facility_kind] must be one of {', '.join(kinds)}; got {kind!r}")
    lon, lat = to_wgs84(x, y, parse_crs(crs))
    return reporting.nearest_facility(session, lon, lat, [kind])


def _one_attribute(post: RequestPost, code: str) -> str | None:
    values = [v for v in post.attributes.get(code, []) if v]
    if len(values) > 1:
        raise BadRequest(f"attribute[{code}] takes one value; got {len(values)}")
    return values[0].strip() if values else None


def _client_uuid(api_key_id: int, idempotency_key: str | None) -> uuid.UUID | None:
    """Keys are scoped per api key, so two systems choosing the same key never meet."""
    if not idempotency_key:
        return None
    return uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{api_key_id}:{idempotency_key}")


# -- api keys ---------------------------------------------------------------------------------
def create_api_key(session: Session, label: str, created_by: str | None = None) -> tuple[int, str]:
    """A new key for another system: returns (id, key). The key is shown this once, never stored."""
    if not label.strip():
        raise BadRequest("an api key needs a label saying who uses it (e.g. '12345 hotline')")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = session.execute(text(
        "INSERT INTO api_keys (key_hash, label, created_by) VALUES (:h, :l, :b) RETURNING id"),
        {"h": _digest(key), "l": label.strip(), "b": created_by}).scalar_one()
    return key_id, key


def list_api_keys(session: Session) -> list[dict]:
    rows = session.execute(text(
        "SELECT id, label, created_by, created_at, revoked_at FROM api_keys ORDER BY id")).mappings()
    return [dict(r) for r in rows]


def revoke_api_key(session: Session, key_id: int) -> None:
    done = session.execute(text(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = :i RETURNING id"),
        {"i": key_id}).scalar()
    if done is None:
        raise NotFound(f"no api key with id {key_id}")


def authenticate_api_key(session: Session, key: str | None) -> int:
    """The id of the active key ``key``; Forbidden (the spec's 403) when missing, unknown or revoked.

    Keys are 256-bit random, so looking one up by its SHA-256 reveals nothing through timing; the
    final comparison is constant-time all the same.
    """
    if not key:
        raise Forbidden("api_key is required to post a service request; ask the city's GridMap "
                        "administrator for one")
    digest = _digest(key)
    row = session.execute(text(
        "SELECT id, key_hash FROM api_keys WHERE key_hash = :h AND revoked_at IS NULL"),
        {"h": digest}).first()
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        raise Forbidden("api_key is not valid: unknown or revoked")
    return row.id


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


# -- discovery --------------------------------------------------------------------------------
def discovery(endpoint_url: str) -> dict:
    return {
        "changeset": CHANGESET,
        "contact": "Your community's GridMap administrator",
        "key_service": "API keys are issued by the GridMap administrator (`gridmap api-key create`)",
        "endpoints": [{"specification": SPEC_URL, "url": endpoint_url, "changeset": CHANGESET,
                       "type": "production", "formats": ["text/xml", "application/json"]}],
    }

