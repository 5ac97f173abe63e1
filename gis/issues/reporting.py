"""Issue reports: the first step of the closed loop (docs/ARCHITECTURE.md, "The issue workflow").

A report is geotagged on write with the same grid index as everything else, linked to the
facility it concerns, given its deadlines (the handling limit of its category and urgency
counted from the report as ``due_at``, the deadline promised to the resident, and the running
accept step's; docs/ARCHITECTURE.md, "Working time"), and made idempotent by its client UUID: a
tablet that retries the same report gets the same issue back, never a second row.

A report may come without coordinates when it says ``location_from_photo``: it is stored without
a location, and the first photo that carries a GPS position gives it one
(:func:`place_from_photo`), tagged and linked by the same rules as a report with coordinates.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.db.steps import (
    BEGIN,
    COMMIT,
    Call,
    Statement,
    Steps,
    array_text,
    json_text,
    merged,
    run_sync,
)
from gis.errors import (
    Conflict,
    Forbidden,
    GridMapError,
    InvalidCoordinates,
    InvalidParameter,
    NotFound,
    UnknownCategory,
)
from gis.geotag.index_cache import GridIndexCache
from gis.geotag.locate import locate_point
from gis.issues import duplicates
from gis.people import audit, sessions
from gis.people.actors import Actor
from gis.queries import reads
from gis.rules import BEIJING_TZ_NAME, DEFAULT_URGENCY, URGENCIES
from gis.worktime.calendar import WorkCalendar
from gis.worktime.limits import Limit, deadline
from gis.worktime.steps import promised_due, step_change
from gis.worktime.store import limits_json_sql, workday_end_of

FACILITY_LINK_M = 20.0
REPORTED_NOTE = "上报 / reported"
KEY_NAMESPACE = uuid.UUID("6f1d6a52-3c47-4b8e-9a53-5d0c1f2e7a10")


@dataclass
class IssueReport:
    """A report. ``x``/``y`` are in ``crs``; both None only with ``location_from_photo`` (the
    location comes from the first photo's GPS position)."""

    x: float | None
    y: float | None
    category: str
    crs: str = "wgs84"
    description: str = ""
    reporter_contact: str | None = None
    facility_id: int | None = None
    photo_urls: list[str] = field(default_factory=list)
    channel: str = "app"
    client_uuid: uuid.UUID | None = None
    location_from_photo: bool = False
    urgency: str = DEFAULT_URGENCY  # normal (一般) or urgent (紧急): which limits apply

    def __post_init__(self) -> None:
        texts = (self.category, self.crs, self.description, self.reporter_contact or "",
                 self.channel, *self.photo_urls)
        if any("\x00" in text for text in texts):  # PostgreSQL text never holds it
            raise InvalidParameter("text may not contain the NUL character (U+0000, %00)",
                                   zh="文本中不能含有 NUL 字符（U+0000、%00）")
        if self.urgency not in URGENCIES:
            raise InvalidParameter(f"urgency is one of {', '.join(URGENCIES)}, got {self.urgency!r}",
                                   zh=f"紧急程度须为 {'、'.join(URGENCIES)} 之一，而不是 {self.urgency!r}")
        if (self.x is None) != (self.y is None):
            raise InvalidCoordinates("give both lon and lat, or neither (with location_from_photo)",
                                     zh="经度和纬度须同时提供，或都不提供（并设置 location_from_photo）")
        if self.x is None and not self.location_from_photo:
            raise InvalidCoordinates(
                "a report needs lon and lat, unless it says location_from_photo: true (its "
                "first photo with a GPS position then gives it its location)",
                zh="上报需要经纬度（lon、lat）；若设置 location_from_photo: true，"
                   "则以第一张带 GPS 位置的照片确定位置")

    @property
    def waits_for_photo(self) -> bool:
        return self.x is None


@dataclass(frozen=True)
class _Nowhere:
    """The place of a report waiting for its photo: no location, no grid yet."""

    lon: None = None
    lat: None = None
    source_crs: str = "wgs84"  # what the photo's EXIF GPS will be in
    method: str = "unassigned"
    distance_m: None = None
    grid_id: None = None
    grid_version: None = None


_NOWHERE = _Nowhere()


@dataclass
class Reported:
    """A stored report; for a new one also what its possible duplicates are looked up by (lon
    and lat None while it waits for its photo's position)."""

    issue_id: int
    created: bool
    category: str | None = None
    lon: float | None = None
    lat: float | None = None
    reported_at: datetime | None = None
    audited: bool = False  # the request's audit entry was written with the report
    # The rows of its answer (gis.queries.reads.issue_statement and its possible duplicates), for
    # a new report read in its own transaction: :func:`answer_steps` makes the answer of them.
    answer: tuple[list[dict], list[dict]] | None = None


@dataclass
class Submission:
    """A report of an authenticated caller, for :func:`report_steps`; ``audit_entry`` (the
    keywords of :func:`gis.people.audit.record`, action included) is written in the report's
    transaction when it is stored or replayed, not when it is refused. ``caller``: the bearer
    token's session the actor was read from earlier (a process's cache), checked again by the
    insert itself; None for an actor checked in this request."""

    actor: Actor | None
    report: IssueReport
    audit_entry: dict | None = None
    caller: sessions.KnownCaller | None = None


@dataclass(frozen=True)
class CallerChanged:
    """The outcome of a report not written because its ``caller`` may no longer hold: the session
    ended, or an account, grid or region changed since the actor was read. Read the caller
    again and submit the report anew (nothing of it was stored)."""


@dataclass(frozen=True)
class ReportRules:
    """What a report is stored under besides its own fields, as of ``version`` (the 'rules' counter):
    the time limits of every issue category ({code: {urgency: {step: {value, unit}}}}), their
    codes for the message of an unknown one, and the working-day calendar."""

    version: int
    limits: dict
    known: str
    calendar: WorkCalendar
    read_at: datetime  # the database's time when read
    clock_offset: timedelta  # the database's clock minus this process's, when read

    def now(self) -> datetime:
        """The database's time now, by this process's clock."""
        return datetime.now(UTC) + self.clock_offset


class RulesCache:
    """A process's :class:`ReportRules` (the intake's): read once, and again when the insert
    finds them stale or a report names a category they do not know."""

    def __init__(self) -> None:
        self.rules: ReportRules | None = None
        self.reads = 0  # times read (tests, metrics)


def _rules_from_row(row: dict, sent_at: datetime) -> ReportRules:
    now = row["now"]
    overrides = {date.fromisoformat(d): w for d, w in (row["overrides"] or {}).items()}
    return ReportRules(row["version"], row["limits"] or {}, row["known"] or "",
                       WorkCalendar(overrides), now, now - sent_at)


def _read_rules(cache: RulesCache | None) -> Steps:
    """The rules as they are now (one round trip), kept in ``cache`` when there is one."""
    sent_at = datetime.now(UTC)
    ((row,),) = yield [Statement(_RULES, {})]
    rules = _rules_from_row(row, sent_at)
    if cache is not None:
        cache.rules = rules
        cache.reads += 1
    return rules


def _nearest_facility_sql(categories: str, lon: str, lat: str, r: str, deg: str) -> str:
    """The closest facility of a related category (``categories``, a varchar[] expression) within
    :data:`FACILITY_LINK_M` (``r``) of (``lon``, ``lat``); ``deg`` a box half-width from
    :func:`_degrees_covering` that lets the GiST index cut the candidates before the exact
    geodesic distance. The arguments are SQL expressions (parameters or columns)."""
    here = f"ST_SetSRID(ST_MakePoint({lon}, {lat}), 4326)"
    return f"""
        SELECT id FROM facilities
         WHERE category = ANY({categories})
           AND geom && ST_Expand({here}, {deg})
           AND ST_DWithin(geom::geography, {here}::geography, {r})
         ORDER BY geom::geography <-> {here}::geography, id
         LIMIT 1"""


_NEAREST_FACILITY_SQL = _nearest_facility_sql(
    "CAST(:facility_categories AS varchar[])", ":lon", ":lat", ":r", ":deg")

# The counter of the rules a report is stored under (categories, time limits, the calendar's
# overrides: migration 0019).
_RULES_VERSION_SQL = "SELECT version FROM versions WHERE name = 'rules'"

# The columns of one report in the insert's input (jsonb_to_recordset), in the order of the rows.
_INPUT_COLUMNS = """
        ord integer, uuid uuid, category varchar, description text, channel varchar,
        contact varchar, photos jsonb, lon float8, lat float8, source varchar, no_place boolean,
        crs varchar, x float8, y float8, grid_id integer, grid_version integer, method varchar,
        distance float8, facility_id bigint, deg float8, urgency varchar, due_at timestamptz,
        step_due timestamptz, actor integer, caller varchar, people_version bigint, audited boolean,
        audit_u varchar, audit_a varchar, audit_t text, audit_addr varchar, audit_o varchar,
        audit_d text"""

# The reports of a batch (:rows, a JSON array of objects with the columns above), each issue
# with the first step of its history and its running step, linked to the given facility or else
# the nearest related one, in one statement; written only while the grid index the reports were
# tagged with is current (:index_version, the grid_index_state version the process's index was
# built at), except those waiting for their photo (no grid, no index), and while the rules their
# deadlines were computed under are (:rules_version, the 'rules' counter). A report whose
# caller was checked by a bearer token the process knew already (``caller``, the token's digest,
# and the ``people_version`` its actor was read at: gis.people.sessions.CallerCache) is written
# only while that session is live (:hs, :idle, :touch: the batch's digests and the session
# policy; its last use is written here when it is due) and the 'people' counter stands; one
# that names a facility only if the facility exists. ``stored`` lists [id, client_uuid] of the
# rows written; a key missing from it was stored earlier or concurrently, its caller may have
# changed (``callers``: the digests of the live sessions, ``people_version``), its facility
# does not exist (``missing_facilities``), or the index or the rules were not current (the
# versions then tell the caller to read them again and write those reports anew).
# A report with ``audited`` has the request's audit entry (the audit_* columns) written with it.
# Batches written at once (by the server's processes, each with its writer) cannot deadlock:
# issues are inserted in key order (two batches holding the same keys take them in one order,
# and the later waits for the earlier to commit, then sees a replay), and the rollup's triggers
# add each statement's rows one key at a time in key order (migration 0017).
_INSERT = f"""
        WITH state AS (SELECT version FROM grid_index_state WHERE id = 1),
        rules AS ({_RULES_VERSION_SQL}),
        people AS ({sessions.PEOPLE_VERSION_SQL}),
        input AS (SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS t({_INPUT_COLUMNS})),
        callers AS ({sessions.LIVE_SESSIONS_SQL}),
        touched AS ({sessions.touch_stale_sql("callers")}),
        new AS (
            INSERT INTO issues (client_uuid, category, description, channel, reporter_contact,
                                photo_urls, geom, location_source, source_crs, source_x, source_y,
                                grid_id, grid_version, assignment, assignment_distance_m,
                                facility_id, urgency, reported_at, due_at)
            SELECT t.uuid, t.category, t.description, t.channel, t.contact, t.photos,
                   ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326), t.source, t.crs, t.x, t.y,
                   t.grid_id, t.grid_version, t.method, t.distance,
                   coalesce(t.facility_id, CASE WHEN t.lon IS NOT NULL THEN ({_nearest_facility_sql(
                       "k.facility_categories", "t.lon", "t.lat", ":r", "t.deg")}) END),
                   t.urgency, :now, t.due_at
              FROM input t JOIN categories k ON k.code = t.category AND k.kind = 'issue', state, rules
             WHERE (state.version = :index_version OR t.no_place)
               AND rules.version = :rules_version
               AND (t.caller IS NULL OR (t.people_version = (SELECT version FROM people)
                                         AND t.caller IN (SELECT token_hash FROM callers)))
               AND (t.facility_id IS NULL OR EXISTS (SELECT FROM facilities f
                                                      WHERE f.id = t.facility_id))
             ORDER BY t.uuid
            ON CONFLICT (client_uuid) DO NOTHING
            RETURNING id, client_uuid),
        event AS (
            INSERT INTO issue_events (issue_id, actor_id, from_status, to_status, note)
            SELECT new.id, t.actor, NULL, 'reported', :note
              FROM new JOIN input t ON t.uuid = new.client_uuid ORDER BY t.ord),
        step AS (
            INSERT INTO issue_steps (issue_id, step, started_at, due_at)
            SELECT new.id, :step, :now, t.step_due
              FROM new JOIN input t ON t.uuid = new.client_uuid ORDER BY t.ord),
        audit AS (
            INSERT INTO audit_log ({audit.ENTRY_COLUMNS})
            SELECT {audit.entry_values_sql("audit_", ref="t.")}
              FROM new JOIN input t ON t.uuid = new.client_uuid WHERE t.audited ORDER BY t.ord)
        SELECT (SELECT version FROM state) AS index_version,
               (SELECT version FROM rules) AS rules_version,
               coalesce((SELECT json_agg(json_build_array(id, client_uuid)) FROM new), '[]')
                   AS stored,
               (SELECT version FROM people) AS people_version,
               coalesce((SELECT json_agg(token_hash) FROM callers), '[]') AS callers,
               coalesce((SELECT json_agg(DISTINCT t.facility_id) FROM input t
                          WHERE t.facility_id IS NOT NULL AND NOT EXISTS (
                                SELECT FROM facilities f WHERE f.id = t.facility_id)), '[]')
                   AS missing_facilities"""

# The audit entries of replayed reports (:rows as for _INSERT, the audit_* columns).
_AUDIT_REPLAYS = f"""
        INSERT INTO audit_log ({audit.ENTRY_COLUMNS})
        SELECT {audit.entry_values_sql("audit_", ref="t.")}
          FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS t({_INPUT_COLUMNS}) ORDER BY t.ord"""

# The rules a report is stored under besides its own fields, in one statement: their version
# (the 'rules' counter), the database's time, the calendar overrides from today on, the time limits of
# every issue category and their codes (the message of an unknown one).
_RULES = f"""
        SELECT ({_RULES_VERSION_SQL}) AS version, now() AS now,
               (SELECT json_object_agg(o.day, o.working) FROM calendar_overrides o
                 WHERE o.day >= CAST(now() AT TIME ZONE '{BEIJING_TZ_NAME}' AS date)) AS overrides,
               (SELECT json_object_agg(c.code, {limits_json_sql("c")}) FROM categories c
                 WHERE c.kind = 'issue') AS limits,
               (SELECT string_agg(code, ', ' ORDER BY code) FROM categories
                 WHERE kind = 'issue') AS known"""
_EARLIER = """
        SELECT id, client_uuid, category, location_source, source_x, source_y FROM issues
         WHERE client_uuid = ANY(CAST(:uuids AS uuid[]))"""


def key_to_uuid(key: str) -> uuid.UUID:
    """An Idempotency-Key header as a UUID: itself if it is one, else a stable UUIDv5 of it."""
    try:
        return uuid.UUID(key)
    except ValueError:
        return uuid.uuid5(KEY_NAMESPACE, key)


def report_issue(session: Session, cache: GridIndexCache, actor: Actor, report: IssueReport,
                 audit_entry: dict | None = None) -> Reported:
    """Store a report, or return the one already stored under the same client UUID: the batch
    of one of :func:`report_steps`, on ``session`` (the caller commits). Raises the domain error
    that refuses it."""
    (outcome,) = run_sync(session, report_steps([Submission(actor, report, audit_entry)], cache,
                                                session.info))
    if isinstance(outcome, GridMapError):
        raise outcome
    return outcome


def report_steps(items: list[Submission], cache: GridIndexCache, info: dict,
                 rules: RulesCache | None = None,
                 policy: sessions.SessionPolicy | None = None) -> Steps:
    """Store a batch of reports (:mod:`gis.db.steps`); the result is one outcome per report, in
    order: a :class:`Reported` (a new one with its answer read in its transaction), the domain
    error that refuses it (an unknown category or facility, a reused key with other content),
    which leaves the others alone, or :class:`CallerChanged` for a submission whose ``caller``
    no longer holds (``policy``: the session policy it is checked under).

    A report whose key is stored already (earlier, by another batch meanwhile, or earlier in
    this batch) is a replay: the issue stored under it, if it is the same report. Round trips
    per batch: the rules (:class:`ReportRules`; none when ``rules`` holds them, as a server
    process's cache does, and they are current: the insert checks), then the insert, the new
    reports' answers and the commit (one transaction, one round trip); replays take one more."""
    keys = [s.report.client_uuid for s in _keyed(items)]
    known = rules.rules if rules is not None else None
    if known is None or any(s.report.category not in known.limits for s in items):
        known = yield from _read_rules(rules)
        now = known.read_at
    else:
        now = known.now()
    outcomes: list = [None] * len(items)
    new: list[int] = []
    first_of_key: set[uuid.UUID] = set()
    for i, item in enumerate(items):
        report, key = item.report, keys[i]
        if report.category not in known.limits:
            outcomes[i] = UnknownCategory(
                f"unknown issue category {report.category!r}; known: {known.known}",
                zh=f"未知的事件类别 {report.category!r}；可用的类别：{known.known}")
        elif key in first_of_key:
            continue  # a replay: answered once the batch's own keys are stored
        else:
            first_of_key.add(key)
            new.append(i)
    written, refused, missing = yield from _insert(
        items, keys, new, cache, now, known, rules, workday_end_of(info),
        policy or sessions.SessionPolicy(), outcomes)
    for i in new:
        if keys[i] in written:
            issue_id, place, answer = written[keys[i]]
            outcomes[i] = Reported(issue_id, created=True, category=items[i].report.category,
                                   lon=place.lon, lat=place.lat, reported_at=now,
                                   audited=items[i].audit_entry is not None, answer=answer)
        elif i in refused:
            outcomes[i] = CallerChanged()
    replays = [i for i, o in enumerate(outcomes) if o is None]
    if replays:
        yield from _replays(items, keys, replays, outcomes, missing)
    return outcomes


def _keyed(items: list[Submission]) -> list[Submission]:
    _keyed_reports([s.report for s in items])
    return items


def _keyed_reports(reports: list[IssueReport]) -> list[IssueReport]:
    """The reports, each with its client UUID: one of its own for a report sent without."""
    for r in reports:
        if r.client_uuid is None:
            r.client_uuid = uuid.uuid4()
    return reports


def _insert(items, keys, new: list[int], cache: GridIndexCache, now, known: ReportRules,
            rules: RulesCache | None, end, policy: sessions.SessionPolicy, outcomes: list) -> Steps:
    """Tag and insert the new reports ``new`` (indices into ``items``) and read their answers,
    in one transaction. Returns {key: (id, place, the answer's rows)} of those written, the
    indices of those refused because their caller no longer holds, and the facility ids named
    that do not exist. Tagged again with a rebuilt index, or given their deadlines again under
    the rules read anew, in a transaction of their own, when the grids or the rules changed
    meanwhile. A report that cannot be placed (a CRS or coordinates refused) gets its error in
    ``outcomes``."""
    written: dict[uuid.UUID, tuple] = {}
    refused: set[int] = set()
    missing: set[int] = set()
    grids = cache.peek()
    if grids is None:
        grids = yield Call(cache.latest)
    todo = list(new)
    while todo:
        places = {}
        for i in todo:
            try:
                places[i] = _place(items[i].report, cache, grids)
            except GridMapError as refusal:
                outcomes[i] = refusal
        todo = [i for i in todo if i in places]
        if not todo:
            break
        # The deadlines depend on the report's category and urgency alone (its time is the
        # batch's): computed once for each pair in the batch.
        deadlines = {(r.category, r.urgency): None for r in (items[i].report for i in todo)}
        for category, urgency in deadlines:
            deadlines[category, urgency] = _deadlines(now, known.limits[category][urgency],
                                                      known.calendar, end)
        rows = [_input_row(n, keys[i], items[i], places[i],
                           *deadlines[items[i].report.category, items[i].report.urgency])
                for n, i in enumerate(todo)]
        answers, answer_rows = merged([_new_answer_statement(
            items[i].actor, keys[i], items[i].report.category, places[i], now) for i in todo])
        callers = sorted({items[i].caller.token_hash for i in todo if items[i].caller})
        results = yield [BEGIN, Statement(_INSERT, {
            "rows": json_text(rows), "now": now, "index_version": grids.index.version,
            "rules_version": known.version, "r": FACILITY_LINK_M, "note": REPORTED_NOTE,
            "step": step_change(None, "reported").starts, "hs": array_text(callers),
            "idle": policy.idle_minutes, "touch": policy.touch_seconds}),
            *answers, COMMIT]
        (result,) = results[1]
        answered = answer_rows(results[2:-1])
        index_of = {keys[i]: n for n, i in enumerate(todo)}
        for issue_id, key in result["stored"]:
            key = uuid.UUID(key)
            n = index_of[key]
            written[key] = (issue_id, places[todo[n]], _split_answer(answered[n]))
        live = set(result["callers"])
        refused |= {i for i in todo if items[i].caller is not None and (
            items[i].caller.token_hash not in live
            or items[i].caller.people_version != result["people_version"])}
        missing |= set(result["missing_facilities"])
        index_current = result["index_version"] == grids.index.version
        if index_current and result["rules_version"] == known.version:
            break
        # The grids or the rules changed since this process read them: the reports tagged or
        # given deadlines under them were not written (those waiting for a photo were, when
        # only the grids changed); place them and give them their deadlines again.
        todo = [i for i in todo if keys[i] not in written and i not in refused]
        if not index_current:
            grids = yield Call(cache.get)
        if result["rules_version"] != known.version:
            known = yield from _read_rules(rules)
            now = known.read_at
    return written, refused, missing


def _place(report: IssueReport, cache: GridIndexCache, grids):
    return _NOWHERE if report.waits_for_photo else locate_point(
        None, cache, report.x, report.y, report.crs, with_grid=False, grids=grids)


def _new_answer_statement(actor: Actor | None, key: uuid.UUID, category: str, place,
                          now) -> Statement:
    """The answer to a new report, read in its own transaction by its key (its id is not known
    when the statement is sent), in one statement: the issue as its reporter may read it
    (:func:`gis.queries.reads.issue_statement`) with its possible duplicates from what the
    insert knows (:func:`gis.issues.duplicates.nearby_statement`; none while it waits for its
    photo's position) as ``_duplicates``. A batch's answers of one SQL (their reporters' scopes
    of one form) go as one statement (:func:`gis.db.steps.merged`)."""
    sql, params = reads.issue_statement(actor, client_uuid=key)
    if place.lon is None:
        return Statement(f"SELECT r.*, '[]'::json AS _duplicates FROM ({sql}) r", params)
    nearby, nearby_params = duplicates.nearby_statement(
        category, place.lon, place.lat, now, actor, exclude_key=key, public=actor is None)
    return Statement(f"""
        SELECT r.*, (SELECT coalesce(json_agg(d ORDER BY d.distance_m, d.id), '[]'::json)
                       FROM ({nearby}) d) AS _duplicates
          FROM ({sql}) r""", params | nearby_params)


def _split_answer(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """The rows of :func:`_new_answer_statement` as those of the issue's read and of its
    possible duplicates (each as :func:`gis.issues.duplicates.nearby_statement` gives it)."""
    if not rows:
        return [], []
    row = dict(rows[0])
    nearby = row.pop("_duplicates")
    return [row], [d | {"reported_at": datetime.fromisoformat(d["reported_at"])} for d in nearby]


def _replays(items, keys, replays: list[int], outcomes: list, missing: set[int]) -> Steps:
    """Answer the reports not written whose key is stored (earlier, concurrently, or earlier in
    the batch): the issue stored under it when it is the same report, else a conflict; the
    replays' audit entries are written. A report not written whose key is not stored named a
    facility that does not exist (``missing``), or was stored and gone again meanwhile."""
    (rows,) = yield [Statement(_EARLIER, {"uuids": sorted({keys[i] for i in replays}, key=str)})]
    stored = {row["client_uuid"]: SimpleNamespace(**row) for row in rows}
    audited = []
    for i in replays:
        if keys[i] not in stored:
            facility = items[i].report.facility_id
            outcomes[i] = NotFound(f"facility {facility} does not exist",
                                   zh=f"部件 {facility} 不存在") if facility in missing else \
                Conflict("the report could not be stored; send it again with the same key",
                         zh="上报未能保存，请使用同一幂等键重新发送")
            continue
        try:
            outcomes[i] = _replay(stored[keys[i]], items[i].report)
        except Conflict as exc:
            outcomes[i] = exc
            continue
        if items[i].audit_entry is not None:
            audited.append(_audit_columns(items[i].audit_entry) | {"ord": len(audited)})
    if audited:
        yield [Statement(_AUDIT_REPLAYS, {"rows": json_text(audited)})]


def _replay(existing, report: IssueReport) -> Reported:
    """The same key must mean the same report; a reused key with other content is a conflict."""
    if report.waits_for_photo:
        same_place = existing.location_source == "photo"
    else:
        same_place = (existing.location_source == "report" and existing.source_x is not None
                      and abs(existing.source_x - report.x) < 1e-9
                      and abs(existing.source_y - report.y) < 1e-9)
    if existing.category != report.category or not same_place:
        raise Conflict(f"idempotency key already used for issue {existing.id} with a different "
                       "category or location; use a new key for a new report",
                       zh=f"该幂等键（Idempotency-Key）已用于事件 {existing.id}，但类别或位置不同；"
                          "新的上报请使用新的键")
    return Reported(existing.id, created=False)


def _input_row(n: int, key: uuid.UUID, item: Submission, place, due_at, accept_due) -> dict:
    report = item.report
    return {
        "ord": n, "uuid": str(key), "category": report.category, "description": report.description,
        "channel": report.channel, "contact": report.reporter_contact, "photos": report.photo_urls,
        "lon": place.lon, "lat": place.lat,
        "source": "photo" if report.waits_for_photo else "report",
        "no_place": report.waits_for_photo,  # no grid yet, so no index to be current
        "crs": place.source_crs, "x": report.x, "y": report.y, "grid_id": place.grid_id,
        "grid_version": place.grid_version, "method": place.method, "distance": place.distance_m,
        "facility_id": report.facility_id,
        "deg": _degrees_covering(FACILITY_LINK_M, place.lat) if place.lat is not None else 0.0,
        "urgency": report.urgency,
        "due_at": due_at and due_at.isoformat(),  # none: no time limit, never overdue
        "step_due": accept_due and accept_due.isoformat(),
        "actor": item.actor.id if item.actor else None,
        "caller": item.caller and item.caller.token_hash,
        "people_version": item.caller and item.caller.people_version,
        **_audit_columns(item.audit_entry)}


def _audit_columns(entry: dict | None) -> dict:
    if entry is None:
        return {"audited": False}
    return {"audited": True} | audit.entry_params(**entry, prefix="audit_")


def _deadlines(now: datetime, spec: dict, calendar: WorkCalendar, end):
    """The deadline promised to the resident (``due_at``) and the accept step's, counted from
    the report (``now``, the transaction's time) under the category's limits ``spec`` (for the
    report's urgency)."""
    limits = {step: Limit(**s) for step, s in spec.items()}
    accept = limits.get(step_change(None, "reported").starts)
    return (promised_due(now, limits, calendar, end),
            deadline(now, accept, calendar, end) if accept else None)


def read_back(session: Session, actor: Actor, stored: Reported) -> tuple[dict, list[dict]]:
    """The answer to a report (:func:`answer_steps`) on ``session``."""
    return run_sync(session, answer_steps([(actor, stored)]))[0]


def answer_steps(stored: list[tuple[Actor | None, Reported]]) -> Steps:
    """The answers to stored reports, each for its reporter: the issue as they may see it (as
    the public would, when it lies outside their scope) and its possible duplicates. A new
    report's were read in its own transaction (:func:`report_steps`); the others' take a round
    trip (two for replays, three when some lie outside their reporter's scope)."""
    replays = [r.issue_id for _, r in stored if r.answer is None and not r.created]
    positions: dict[int, dict] = {}
    if replays:
        (rows,) = yield [Statement(duplicates.POSITIONS_SQL, {"ids": replays})]
        positions = {row["id"]: row for row in rows}
    unread = [n for n, (_, r) in enumerate(stored) if r.answer is None]
    if unread:
        results = yield [Statement(*s) for n in unread for s in (
            reads.issue_statement(stored[n][0], stored[n][1].issue_id),
            _duplicates_statement(stored[n][0], stored[n][1], positions.get(stored[n][1].issue_id)))]
        for k, n in enumerate(unread):
            stored[n][1].answer = (results[2 * k], results[2 * k + 1])
    answers, outside = [], []
    for n, (actor, r) in enumerate(stored):
        try:
            row = reads.issue_from_rows(r.answer[0], actor, r.issue_id)[0]
        except Forbidden:
            row = None
            outside.append(n)
        answers.append([row, duplicates.nearby_from_rows(r.answer[1])])
    if outside:
        public = yield [Statement(*reads.issue_statement(None, stored[n][1].issue_id, public_read=True))
                        for n in outside]
        for n, rows in zip(outside, public, strict=True):
            answers[n][0] = reads.issue_from_rows(rows, None, stored[n][1].issue_id)[0]
    return [tuple(a) for a in answers]


def _duplicates_statement(actor: Actor | None, r: Reported, position: dict | None) -> tuple[str, dict]:
    """The possible duplicates of a new report from what its insert knew; of a replay from its
    stored position (none while it waits for its photo's)."""
    if not r.created:
        if position is None:
            return "", {}
        r = Reported(r.issue_id, False, position["category"], position["lon"], position["lat"],
                     position["reported_at"])
    if r.lon is None or r.lat is None:
        return "", {}
    return duplicates.nearby_statement(r.category, r.lon, r.lat, r.reported_at, actor,
                                       exclude=r.issue_id, public=actor is None)


def place_from_photo(session: Session, cache: GridIndexCache, issue_id: int, lon: float,
                     lat: float) -> bool:
    """Give the report ``issue_id``, which waits for its photo's position, the place (lon, lat)
    (WGS84, from the photo's EXIF GPS): tagged with its grid and linked to the nearest matching
    facility by the same rules as a report sent with coordinates. False when it has a location
    already (another photo gave it one first)."""
    row = session.execute(text("""
        SELECT i.facility_id, k.facility_categories FROM issues i
          JOIN categories k ON k.code = i.category
         WHERE i.id = :id AND i.geom IS NULL FOR UPDATE OF i"""), {"id": issue_id}).first()
    if row is None:
        return False
    place = locate_point(session, cache, lon, lat, "wgs84", with_grid=False)
    facility_id = row.facility_id or nearest_facility(session, place.lon, place.lat,
                                                      list(row.facility_categories or []))
    session.execute(text("""
        UPDATE issues SET geom = ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), source_crs = :crs,
               source_x = :lon, source_y = :lat, grid_id = :grid_id, grid_version = :grid_version,
               assignment = :method, assignment_distance_m = :distance, facility_id = :facility_id,
               updated_at = now()
         WHERE id = :id"""), {
        "lon": place.lon, "lat": place.lat, "crs": place.source_crs, "grid_id": place.grid_id,
        "grid_version": place.grid_version, "method": place.method, "distance": place.distance_m,
        "facility_id": facility_id, "id": issue_id})
    return True


def nearest_facility(session: Session, lon: float, lat: float, categories: list[str]) -> int | None:
    """The closest facility of a related category within 20 m (a broken cover -> that cover)."""
    if not categories:
        return None
    return session.execute(text(f"SELECT ({_NEAREST_FACILITY_SQL})"), {
        "facility_categories": categories, "lon": lon, "lat": lat, "r": FACILITY_LINK_M,
        "deg": _degrees_covering(FACILITY_LINK_M, lat)}).scalar()


def _degrees_covering(metres: float, lat: float) -> float:
    """A box half-width in degrees that surely holds every point within ``metres`` (GiST prefilter
    before the exact geography distance); longitude degrees shrink with cos(lat)."""
    return 2 * metres / (111_320 * max(math.cos(math.radians(abs(lat))), 0.05))

