"""Open311 GeoReport v2: issue categories as services, issues as service requests, in the spec's
JSON and XML (``templates/open311.xml``) and with the spec's error list.

The reads are in ``gis.queries.open311_requests``, api keys in ``gis.people.api_keys``; this
module parses the spec's parameters and writes its formats. What the spec leaves to the
implementer is decided here:

- ``service_request_id`` is the issue id; ``status`` is ``closed`` for closed and rejected issues
  and ``open`` for every other workflow status, which ``status_notes`` names.
- Requests are located from ``lat``/``long`` (WGS84; the ``crs`` extension takes ``gcj02``,
  ``bd09``...) or from an ``address_string`` naming a compound or a building of the community
  ("水利局家属院3号楼"), then geotagged to a grid like any other report.
- Posting needs an ``api_key``. Reporter contact (email, phone, names) is stored for the grid's
  worker and never returned by a GET; phone and ID-card numbers in a description are masked.
- Reading requests needs a log-in (HTTP Basic or a bearer token) and returns the requests in the
  caller's scope; services and discovery are public.
- Without dates, GET requests covers the last 90 days; a date range may not exceed 90 days
  (the spec's limit); at most 1,000 requests, newest first.
- Invalid input is the spec's 400 (GridMap's own API says 422); other statuses are GridMap's.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from api.protocols import templating
from gis.errors import InvalidParameter, NotFound
from gis.geo.crs import parse_crs, to_wgs84
from gis.geotag.index_cache import GridIndexCache
from gis.issues import reporting
from gis.people.actors import Actor
from gis.queries import open311_requests as requests
from gis.queries.filters import IssueFilter, local_time
from gis.rules import BEIJING, DEFAULT_URGENCY, LIMIT_UNIT_NAMES, PROMISE_STEP
from gis.rules import STATUS_NAMES as RULE_STATUS_NAMES

SPEC_URL = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-28T00:00:00+08:00"  # when this endpoint's behaviour last changed
MAX_RANGE = timedelta(days=90)
MAX_REQUESTS = 1000
MAX_DESCRIPTION = 4000
CHANNEL = "open311"
IDEMPOTENCY_NAMESPACE = uuid.UUID("0c9e3f43-5a1e-4f0f-b1a2-311311311311")
STATUS_NAMES = {s: f"{zh} / {en.lower()}" for s, (zh, en) in RULE_STATUS_NAMES.items()}
XML_TYPE = "text/xml; charset=utf-8"
# The element that holds each item of a list, per the spec's XML examples.
ITEM_TAGS = {"services": "service", "service_requests": "request", "attributes": "attribute",
             "values": "value", "errors": "error", "endpoints": "endpoint", "formats": "format"}


class BadRequest(InvalidParameter):
    """A GeoReport parameter is missing or malformed (the spec's 400, see :func:`spec_status`)."""


# -- formats ----------------------------------------------------------------------------------------
def to_xml(root: str, data: Any) -> bytes:
    """``data`` as the spec's XML under ``root``: lists hold one element per item (ITEM_TAGS)."""
    return templating.render("open311.xml", root=root, data=data, item_tags=ITEM_TAGS).encode()


def errors_document(status: int, message: str) -> list[dict]:
    """The spec's error list: the HTTP status as ``code`` and a description."""
    return [{"code": status, "description": message}]


def spec_status(status: int) -> int:
    """GridMap's status for an error, except that the spec answers invalid input with 400."""
    return 400 if status == 422 else status


# -- services ---------------------------------------------------------------------------------
def list_services(session: Session) -> list[dict]:
    """Every issue category as a GeoReport service; ``metadata`` says it has attributes."""
    return [_service(row) for row in requests.issue_categories(session)]


def service_definition(session: Session, service_code: str) -> dict:
    row = requests.issue_category(session, service_code)
    if row is None:
        raise NotFound(f"no service with service_code {service_code!r}; see services.json",
                       zh=f"没有 service_code 为 {service_code!r} 的服务；见 services.json")
    return {"service_code": service_code, "attributes": _attributes(session, row)}


def _service(row: dict) -> dict:
    return {"service_code": row["code"], "service_name": row["name_zh"],
            "description": f"{row['name_en']}. {_due_notice(row['limits']['normal'].get(PROMISE_STEP))}",
            "metadata": bool(row["facility_categories"]), "type": "realtime",
            "keywords": ", ".join((row["code"], row["name_en"].lower())), "group": row["std_code"]}


def _due_notice(limit: dict | None) -> str:
    """The handling limit as a notice: 处理时限 15 个工作日 / handled within 15 working days."""
    if not limit:
        return "按规定时限处理"
    zh, en = LIMIT_UNIT_NAMES[limit["unit"]]
    return f"处理时限 {limit['value']} {zh} / handled within {limit['value']} {en}"


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
        names = requests.category_names(session, kinds)
        attributes.append({
            "variable": True, "code": "facility_kind", "datatype": "singlevaluelist",
            "required": False, "datatype_description": None, "order": 2,
            "description": "哪一种设施 / which kind of asset",
            "values": [{"key": k, "name": names.get(k, k)} for k in kinds]})
    return attributes


# -- reading requests ---------------------------------------------------------------------------
def parse_request_query(service_request_id: str | None = None, service_code: str | None = None,
                        start_date: str | None = None, end_date: str | None = None,
                        status: str | None = None,
                        now: datetime | None = None) -> IssueFilter:
    """GET requests parameters as the one issue filter. ``service_request_id`` overrides every
    other filter (the spec); ``status`` open is the open statuses, closed the final ones (closed
    or rejected); start and end dates are both included."""
    if service_request_id:
        return IssueFilter(ids=tuple(_request_id(v) for v in _split(service_request_id)))
    statuses = tuple(_split(status))
    bad = [s for s in statuses if s not in ("open", "closed")]
    if bad:
        raise BadRequest(f"status must be open or closed (comma separated); got {', '.join(bad)}",
                         zh=f"status 应为 open 或 closed（可用逗号分隔）；收到 {', '.join(bad)}")
    start, end = _date_range(_w3c(start_date, "start_date"), _w3c(end_date, "end_date"),
                             now or datetime.now(BEIJING))
    groups = {"open": "open", "closed": "final"}
    return IssueFilter(categories=tuple(_split(service_code)), since=start, until=end,
                       statuses=() if len(set(statuses)) != 1 else (groups[statuses[0]],))


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _request_id(value: str) -> int:
    if not value.isdigit():
        raise BadRequest(f"service_request_id must be a number; got {value!r}",
                         zh=f"service_request_id 应为数字；收到 {value!r}")
    return int(value)


def _w3c(value: str | None, name: str) -> datetime | None:
    """A W3C date-time (``2025-03-01T08:00:00Z``) or date; without an offset it is Beijing time."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace(" ", "+"))
    except ValueError as exc:
        raise BadRequest(f"{name} must be a W3C date-time such as 2025-03-01T08:00:00Z; "
                         f"got {value!r}",
                         zh=f"{name} 应为 W3C 日期时间，如 2025-03-01T08:00:00Z；收到 {value!r}") from exc
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
        raise BadRequest(f"end_date {end.isoformat()} is before start_date {start.isoformat()}",
                         zh=f"结束日期 end_date {end.isoformat()} 早于开始日期 start_date "
                            f"{start.isoformat()}")
    if end - start > MAX_RANGE:
        raise BadRequest("start_date and end_date may not span more than 90 days; "
                         f"got {(end - start).days} days",
                         zh=f"start_date 与 end_date 相隔不能超过 90 天；收到 {(end - start).days} 天")
    return start, end


PhotoUrl = Callable[[int], str]  # a stored photo's id -> the URL that serves it


def list_requests(session: Session, actor: Actor | None, query: IssueFilter, photo_url: PhotoUrl,
                  *, public_read: bool = False) -> list[dict]:
    """The service requests ``actor`` may read matching ``query``, newest first, at most 1,000."""
    rows = requests.read_service_requests(session, actor, query, MAX_REQUESTS,
                                          public_read=public_read)
    return [_request(row, photo_url) for row in rows]


def get_request(session: Session, actor: Actor | None, request_id: int, photo_url: PhotoUrl, *,
                public_read: bool = False) -> dict:
    return _request(requests.read_service_request(session, actor, request_id,
                                                  public_read=public_read), photo_url)


def _request(row: dict, photo_url: PhotoUrl) -> dict:
    """``media_url``: the first photo uploaded for the case, else the first link another system
    sent; ``lat``/``long`` are null while a report waits for its photo's position."""
    uploaded, links = row["photos"] or [], row["photo_urls"] or []
    media_url = photo_url(uploaded[0]["id"]) if uploaded else (links[0] if links else None)
    agency = f"{row['grid_name']} ({row['grid_code']})" if row["grid_code"] else "社区待分派 / unassigned"
    return {
        "service_request_id": str(row["id"]),
        "status": "closed" if row["final"] else "open",
        "status_notes": STATUS_NAMES.get(row["status"], row["status"]),
        "service_name": row["category_zh"],
        "service_code": row["category"],
        "description": row["description"],
        "agency_responsible": agency,
        "service_notice": _due_notice(row["handle_limit"]),
        "requested_datetime": _w3c_out(row["reported_at"]),
        "updated_datetime": _w3c_out(row["last_changed_at"]),
        "expected_datetime": _w3c_out(row["due_at"]),
        "address": None,
        "address_id": None,
        "zipcode": None,
        "lat": None if row["lat"] is None else round(row["lat"], 7),
        "long": None if row["lon"] is None else round(row["lon"], 7),
        "media_url": media_url,
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
    category = _checked_category(session, post)
    x, y, crs = _place(session, post)
    report = reporting.IssueReport(
        x=x, y=y, crs=crs, category=post.service_code, description=_description(post),
        reporter_contact=_contact(post), photo_urls=[post.media_url.strip()] if post.media_url else [],
        channel=CHANNEL, facility_id=_facility(session, category, post, x, y, crs),
        client_uuid=_client_uuid(api_key_id, idempotency_key))
    stored = reporting.report_issue(session, cache, None, report)
    return Posted(stored.issue_id, stored.created,
                  _due_notice(category["limits"][DEFAULT_URGENCY].get(PROMISE_STEP)))


def _checked_category(session: Session, post: RequestPost) -> dict:
    """The posted service's category, once the plain fields are known to be well formed."""
    if not post.service_code:
        raise BadRequest("service_code is required; see services.json",
                         zh="缺少 service_code（必填）；见 services.json")
    category = requests.issue_category(session, post.service_code)
    if category is None:
        raise BadRequest(f"unknown service_code {post.service_code!r}; see services.json",
                         zh=f"无法识别的 service_code {post.service_code!r}；见 services.json")
    if len(post.description) > MAX_DESCRIPTION:
        raise BadRequest(f"description may hold {MAX_DESCRIPTION} characters; got {len(post.description)}",
                         zh=f"description 最多 {MAX_DESCRIPTION} 个字符；收到 {len(post.description)} 个")
    if post.media_url and not re.match(r"https?://\S+$", post.media_url.strip()):
        raise BadRequest(f"media_url must be an http(s) URL; got {post.media_url[:100]!r}",
                         zh=f"media_url 应为 http(s) 网址；收到 {post.media_url[:100]!r}")
    return category


def _place(session: Session, post: RequestPost) -> tuple[float, float, str]:
    if post.lat or post.long:
        if not (post.lat and post.long):
            given = "lat" if post.lat else "long"
            raise BadRequest(f"lat and long go together; got only {given}",
                             zh=f"lat 与 long 须同时提供；只收到 {given}")
        try:
            return float(post.long), float(post.lat), post.crs or "wgs84"
        except ValueError as exc:
            raise BadRequest(f"lat and long must be decimal degrees; got lat={post.lat!r}, "
                             f"long={post.long!r}",
                             zh=f"lat 与 long 应为十进制度数；收到 lat={post.lat!r}, "
                                f"long={post.long!r}") from exc
    if post.address_string and post.address_string.strip():
        found = requests.locate_address(session, post.address_string)
        if found is None:
            raise BadRequest(f"address_string {post.address_string!r} names no compound or "
                             "building GridMap knows; send lat and long instead",
                             zh=f"address_string {post.address_string!r} 不是已知的院落或楼栋；"
                                "请改为提供 lat 和 long")
        return found[0], found[1], "wgs84"
    raise BadRequest("a location is required: lat and long, or an address_string naming a "
                     "compound or building",
                     zh="缺少位置：请提供 lat 和 long，或写明院落/楼栋名称的 address_string")


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
        found = requests.facility_by_code(session, code)
        if found is None:
            raise BadRequest(f"attribute[facility_code]: no facility has the code {code!r}",
                             zh=f"attribute[facility_code]：没有编码为 {code!r} 的部件")
        return found
    kind = _one_attribute(post, "facility_kind")
    if not kind:
        return None
    kinds = list(category["facility_categories"] or [])
    if kind not in kinds:
        raise BadRequest(f"attribute[facility_kind] must be one of {', '.join(kinds)}; got {kind!r}",
                         zh=f"attribute[facility_kind] 应为 {', '.join(kinds)} 之一；收到 {kind!r}")
    lon, lat = to_wgs84(x, y, parse_crs(crs))
    return reporting.nearest_facility(session, lon, lat, [kind])


def _one_attribute(post: RequestPost, code: str) -> str | None:
    values = [v for v in post.attributes.get(code, []) if v]
    if len(values) > 1:
        raise BadRequest(f"attribute[{code}] takes one value; got {len(values)}",
                         zh=f"attribute[{code}] 只能有一个值；收到 {len(values)} 个")
    return values[0].strip() if values else None


def _client_uuid(api_key_id: int, idempotency_key: str | None) -> uuid.UUID | None:
    """Keys are scoped per api key, so two systems choosing the same key never meet."""
    if not idempotency_key:
        return None
    return uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{api_key_id}:{idempotency_key}")


# -- discovery --------------------------------------------------------------------------------
def discovery(endpoint_url: str) -> dict:
    return {
        "changeset": CHANGESET,
        "contact": "Your community's GridMap administrator",
        "key_service": "API keys are issued by the GridMap administrator (`gridmap api-key create`)",
        "endpoints": [{"specification": SPEC_URL, "url": endpoint_url, "changeset": CHANGESET,
                       "type": "production", "formats": ["text/xml", "application/json"]}],
    }
