"""The one read model of an issue: the fields a reader may ask for, the SQL behind each, which of
them are personal, and the rule that decides who sees those.

The API's list and item, the answer to a report, the map pages, the grid package, OGC API
Features, Open311 and the exports all take their issue fields from :data:`ISSUE_FIELDS`, so an
issue reads the same whichever door it came through, ``overdue`` is the same boolean everywhere
(:func:`gis.rules.overdue_sql`), and no door hands out a personal field by accident.
"""

from __future__ import annotations

from functools import lru_cache

from gis.people.actors import Actor, personal_sql
from gis.people.privacy import contains_personal, mask_text
from gis.rules import FINAL_SQL, PROMISE_STEP, overdue_sql, step_overdue_sql

# Aliases: i = issues, k = categories, g = the grid version the issue is tagged to,
# c = that grid's community, fa = the linked facility.
ISSUE_FROM = """issues i JOIN categories k ON k.code = i.category
    LEFT JOIN grids g ON g.id = i.grid_id LEFT JOIN regions c ON c.id = g.community_id
    LEFT JOIN facilities fa ON fa.id = i.facility_id"""

ISSUE_FIELDS: dict[str, str] = {
    "id": "i.id",
    "department_id": "i.department_id",
    "client_uuid": "i.client_uuid::text",
    "category": "i.category",
    "category_zh": "k.name_zh",
    "category_en": "k.name_en",
    "description": "i.description",
    "channel": "i.channel",
    "status": "i.status",
    "priority": "i.priority",
    "urgency": "i.urgency",
    "grid_code": "g.code",
    "grid_name": "g.name",
    "grid_version": "i.grid_version",
    "community": "c.name",
    "assignment": "i.assignment",
    "assignment_distance_m": "i.assignment_distance_m",
    "facility_id": "i.facility_id",
    "facility_code": "fa.code",
    "facility_name": "fa.name",
    "reported_at": "i.reported_at",
    "due_at": "i.due_at",
    "closed_at": "i.closed_at",
    "updated_at": "i.updated_at",
    "reporter_contact": "i.reporter_contact",
    "photo_urls": "i.photo_urls",  # links to photos held elsewhere (Open311's media_url)
    # The photos uploaded for the case (gis.issues.photos), oldest first; the API turns each id
    # into the URLs that serve it to those who may read the case.
    "photos": """coalesce((SELECT json_agg(json_build_object(
                     'id', p.id, 'kind', p.kind, 'taken_at', p.taken_at, 'width', p.width,
                     'height', p.height) ORDER BY p.id)
                   FROM issue_photos p WHERE p.issue_id = i.id), '[]'::json)""",
    "location_source": "i.location_source",
    "source_crs": "i.source_crs",
    "overdue": overdue_sql("i"),
    "self_resolved": "i.self_resolved",  # 自处理: reported and closed on site in one visit
    "final": f"i.status IN {FINAL_SQL}",
    "lon": "i.lon",
    "lat": "i.lat",
    # the limit the case's due_at was counted with: its category's handling limit at its urgency
    "handle_limit": f"""(SELECT json_build_object('value', t.value, 'unit', t.unit)
                        FROM time_limits t WHERE t.category = i.category
                         AND t.urgency = i.urgency AND t.step = '{PROMISE_STEP}')""",
    # each step's latest run (gis.worktime.steps): {"handle": {"started_at", "due_at",
    # "done_at", "overdue", "late"}, ...}; steps not reached are absent
    "deadlines": f"""coalesce((SELECT json_object_agg(s.step, json_build_object(
                     'started_at', s.started_at, 'due_at', s.due_at, 'done_at', s.done_at,
                     'overdue', {step_overdue_sql('s')},
                     'late', coalesce(s.done_at > s.due_at, false)))
                   FROM (SELECT DISTINCT ON (step) * FROM issue_steps
                          WHERE issue_id = i.id ORDER BY step, started_at DESC, id DESC) s),
                  '{{}}'::json)""",
    # the last step of its history (a status change), else the last edit
    "last_changed_at": "coalesce((SELECT max(e.at) FROM issue_events e WHERE e.issue_id = i.id), "
                       "i.updated_at)",
}
# Personal data and the reporting device's idempotency key: only for those who may see the
# case's personal data (gis.people.actors: whoever may act on it); never exported, never on a
# public page. For everyone else the device key is left out and the contact masked.
PERSONAL_FIELDS = ("reporter_contact", "client_uuid")
# Free text that may name a phone or ID-card number: masked for those without the right.
FREE_TEXT_FIELDS = ("description",)
# What the API answers for one issue (list, item, the answer to a report): every field.
API_FIELDS = ("id", "client_uuid", "category", "category_zh", "category_en", "description",
              "channel", "status", "priority", "urgency", "grid_code", "grid_version", "department_id", "assignment",
              "assignment_distance_m", "facility_id", "facility_code", "reported_at", "due_at",
              "deadlines", "closed_at", "reporter_contact", "photo_urls", "photos", "location_source",
              "source_crs", "overdue", "self_resolved")


@lru_cache(maxsize=64)
def select_list(fields: tuple[str, ...], *, geometry: str | None = "geojson") -> str:
    """The SELECT list for ``fields`` (each ``expr AS name``), and the location as GeoJSON
    (``geometry``), WKB (``wkb``) or not at all (None). Made once per list (the intake reads
    every new report back with it)."""
    parts = []
    for name in fields:
        if name not in ISSUE_FIELDS:
            raise ValueError(f"no issue field {name!r}; known: {', '.join(ISSUE_FIELDS)}")
        parts.append(f"{ISSUE_FIELDS[name]} AS {name}")
    if geometry == "geojson":
        parts.append("ST_AsGeoJSON(i.geom, 7)::json AS geometry")
    elif geometry == "wkb":
        parts.append("ST_AsBinary(i.geom) AS wkb")
    return ", ".join(parts)


def personal_column(actor: Actor | None, t: str = "i") -> tuple[str, dict]:
    """A SELECT item ``... AS _personal`` (may ``actor`` see this row's personal data) and its
    parameters: the SQL form of :meth:`gis.people.actors.Actor.may_see_contact`."""
    sql, params = personal_sql(actor, t)
    return f"({sql}) AS _personal", params


def may_see_personal(actor: Actor | None, grid_code: str | None,
                     department_id: int | None = None) -> bool:
    return actor is not None and actor.may_see_contact(grid_code, department_id)


def present(row: dict, actor: Actor | None) -> bool:
    """Make ``row`` what ``actor`` may see: without the right, the device key is removed and the
    contact and free text masked. Returns whether personal data was left in view (an audited
    reveal). The right comes from the row's ``_personal`` column when the query selected it."""
    allowed = row.pop("_personal", None)
    if allowed is None:
        allowed = may_see_personal(actor, row.get("grid_code"), row.get("department_id"))
    if not allowed:
        row.pop("client_uuid", None)
        if "reporter_contact" in row:
            row["reporter_contact"] = mask_text(row["reporter_contact"])
        for name in FREE_TEXT_FIELDS:
            if name in row:
                row[name] = mask_text(row[name])
        return False
    return bool(row.get("reporter_contact")) or any(contains_personal(row.get(n))
                                                     for n in FREE_TEXT_FIELDS)


def mask_free_text(row: dict) -> dict:
    """For doors that never show personal data (maps, tiles, OGC API, Open311, exports)."""
    for name in FREE_TEXT_FIELDS:
        if name in row:
            row[name] = mask_text(row[name])
    return row
