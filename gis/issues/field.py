"""Work on site, as the grid worker's tablet does it (docs/ARCHITECTURE.md, "Work on site"):

- 核实 :func:`verify` a report: valid -> accepted, not valid -> rejected, with a reason;
- 核查 :func:`check` a fix: passed -> closed, failed -> reopened for rework (返工), which needs a
  photo after the fix uploaded since the case was last reported resolved;
- 自处理 :func:`self_resolve` a small problem at once: reported -> closed in one step, with a
  photo before and one after the fix, counted apart in statistics (``issues.self_resolved``);
- 部件巡检 :func:`check_facility`: the facility found ok, damaged or missing; damaged or missing
  opens a case at the facility (or joins the one already open for it).

Each is done by whoever may act on the case (:func:`gis.people.actors.require_act_on_issue`) or
change in the facility's grid, and each is idempotent by an optional client key (the tablet's
Idempotency-Key): the same key again returns what the first request did, without a second step;
the same key for another action or outcome is a :class:`~gis.errors.Conflict`. A move of a case
is one ``issue_events`` row carrying the key (unique per case).

Who may do which action when is :data:`gis.rules.FIELD_ACTIONS` and :data:`gis.rules.SELF_RESOLVE`;
an action on a case in another status is an :class:`~gis.errors.IllegalTransition` naming the
status it needs and where the case can go instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import (
    AfterPhotoRequired,
    Conflict,
    IllegalTransition,
    InvalidParameter,
    NotFound,
    PhotoRequired,
    ReasonRequired,
)
from gis.geotag.index_cache import GridIndexCache
from gis.issues import reporting, workflow
from gis.issues.actions import allowed_actions
from gis.people.actors import Actor, require_change
from gis.rules import (
    CHECK_OUTCOMES,
    FACILITY_CHECK_REPORTS,
    FACILITY_CHECK_RESULT_NAMES,
    FACILITY_CHECK_RESULTS,
    FACILITY_DAMAGED_CATEGORY,
    FIELD_ACTION_NAMES,
    FIELD_ACTIONS,
    OPEN_STATUSES,
    PHOTO_KIND_NAMES,
    SELF_RESOLVE,
    SELF_RESOLVED_NOTE,
    STATUS_NAMES,
    TRANSITIONS,
    VERIFY_OUTCOMES,
)

# The status each action starts from: FIELD_ACTIONS read backwards, and 自处理's own move.
ACTION_FROM = {action: status for status, action in FIELD_ACTIONS.items()} | {
    "self_resolve": SELF_RESOLVE[0]}
FACILITY_CHECK_NAMESPACE = uuid.UUID("0b6f3c1e-5a0d-4f2e-8d7c-2a9e6b4f1c33")


@dataclass(frozen=True)
class Moved:
    """What an action did to a case: from one status to another; ``replayed`` when the same key
    had done it before (nothing was written this time)."""

    issue_id: int
    from_status: str
    to_status: str
    replayed: bool = False

    @property
    def allowed_next(self) -> tuple[str, ...]:
        return TRANSITIONS[self.to_status]


# -- the actions on a case ----------------------------------------------------------------------
def verify(session: Session, actor: Actor, issue_id: int, valid: bool, reason: str | None = None,
           client_key: str | None = None) -> Moved:
    """核实: a report found on site to be valid (accepted, 案卷建立) or not (rejected, 不予立案,
    which needs the reason the history keeps)."""
    reason = _text(reason)
    if not valid and reason is None:
        raise ReasonRequired("a report verified as not valid needs a reason (reason)",
                             zh="核实为无效时须填写原因")
    note = (f"核实有效 / verified on site{_after(reason)}" if valid
            else f"核实无效 / not valid on site: {reason}")
    return _act(session, actor, issue_id, "verify", VERIFY_OUTCOMES[valid], note, client_key)


def check(session: Session, actor: Actor, issue_id: int, passed: bool, note: str | None = None,
          client_key: str | None = None) -> Moved:
    """核查: a fix checked on site: passed -> closed (核查结案); failed -> reopened for rework
    (返工), which needs a photo after the fix (kind ``after``) uploaded since the case was last
    reported resolved, showing what is still wrong."""
    note = _text(note)
    words = "核查通过 / check passed" if passed else "核查不通过，返工 / check failed, rework"
    needs = None if passed else _after_photo_since_resolved
    return _act(session, actor, issue_id, "check", CHECK_OUTCOMES[passed], words + _after(note),
                client_key, needs)


def self_resolve(session: Session, actor: Actor, issue_id: int, note: str | None = None,
                 client_key: str | None = None) -> Moved:
    """自处理: a report the worker fixed at once, closed in one step (reported -> closed) once it
    has a photo before the fix and one after it; the case is marked ``self_resolved``."""
    return _act(session, actor, issue_id, "self_resolve", SELF_RESOLVE[1],
                SELF_RESOLVED_NOTE + _after(_text(note)), client_key, _before_and_after_photos)


def _act(session: Session, actor: Actor, issue_id: int, action: str, to_status: str, note: str,
         client_key: str | None, precondition: Callable[[Session, int], None] | None = None) -> Moved:
    current = workflow.lock_case(session, actor, issue_id)
    required = ACTION_FROM[action]
    if client_key is not None:
        # ...and where that request left the case: the last move made in its transaction
        # (the same now()), which an automatic dispatch may have followed.
        earlier = session.execute(text("""
            SELECT e.from_status, e.to_status,
                   (SELECT l.to_status FROM issue_events l WHERE l.issue_id = e.issue_id
                       AND l.at = e.at AND l.to_status IS NOT NULL ORDER BY l.id DESC LIMIT 1)
                       AS left_at
              FROM issue_events e WHERE e.issue_id = :i AND e.client_key = :k"""),
            {"i": issue_id, "k": client_key}).first()
        if earlier is not None:
            return _replay(issue_id, action, earlier, required, to_status)
    if current != required:
        raise _wrong_status(issue_id, current, action, required)
    if precondition is not None:
        precondition(session, issue_id)
    workflow.record_move(session, actor, issue_id, current, to_status, note, client_key=client_key,
                         self_resolved=action == "self_resolve")
    # Where the case stands now: a report found valid goes on at once when a rule dispatches it.
    now = session.execute(text("SELECT status FROM issues WHERE id = :i"), {"i": issue_id}).scalar_one()
    return Moved(issue_id, current, now)


def _replay(issue_id: int, action: str, earlier, required: str, to_status: str) -> Moved:
    if (earlier.from_status, earlier.to_status) != (required, to_status):
        raise Conflict(
            f"idempotency key already used on issue {issue_id} for the move "
            f"{earlier.from_status!r} -> {earlier.to_status!r}, not for this {action}; "
            "use a new key for a new action",
            zh=f"该幂等键（Idempotency-Key）已用于事件 {issue_id} 的另一操作"
               f"（「{_zh(earlier.from_status)}」→「{_zh(earlier.to_status)}」）；新的操作请使用新的键")
    return Moved(issue_id, earlier.from_status, earlier.left_at, replayed=True)


def _wrong_status(issue_id: int, current: str, action: str, required: str) -> IllegalTransition:
    allowed = TRANSITIONS.get(current, ())
    name_zh, name_en = FIELD_ACTION_NAMES[action]
    return IllegalTransition(
        f"issue {issue_id} is {current!r}; {name_en} ({action}) is for cases in {required!r}. "
        f"From {current!r} it can go to "
        f"{', '.join(repr(s) for s in allowed) if allowed else 'nothing (final)'}",
        zh=f"事件 {issue_id} 当前为「{_zh(current)}」，{name_zh}只适用于「{_zh(required)}」状态的事件；"
           f"当前只能转为{workflow.allowed_zh(current)}",
        allowed=allowed_actions(current))


def _after_photo_since_resolved(session: Session, issue_id: int) -> None:
    found = session.execute(text("""
        SELECT EXISTS (SELECT 1 FROM issue_photos p WHERE p.issue_id = :i AND p.kind = 'after'
           AND p.uploaded_at >= coalesce((SELECT max(e.at) FROM issue_events e
                                           WHERE e.issue_id = :i AND e.to_status = 'resolved'),
                                          '-infinity'))"""), {"i": issue_id}).scalar_one()
    if not found:
        raise AfterPhotoRequired(
            f"a failed check sends issue {issue_id} back for rework and needs a photo after the "
            "fix (kind after) taken on this visit: upload it first "
            f"(POST /api/v1/issues/{issue_id}/photos with kind=after)",
            zh="核查不通过须上传处置后照片")


def _before_and_after_photos(session: Session, issue_id: int) -> None:
    kinds = set(session.execute(text(
        "SELECT DISTINCT kind FROM issue_photos WHERE issue_id = :i AND kind IN ('before', 'after')"),
        {"i": issue_id}).scalars())
    missing = [k for k in ("before", "after") if k not in kinds]
    if missing:
        raise PhotoRequired(
            f"resolving issue {issue_id} on site needs a photo before and a photo after the fix; "
            f"missing: {', '.join(missing)} (POST /api/v1/issues/{issue_id}/photos with kind)",
            zh=f"自处理须上传处置前和处置后照片；缺少：{'、'.join(PHOTO_KIND_NAMES[k][0] for k in missing)}")


# -- facility checks ------------------------------------------------------------------------------
@dataclass(frozen=True)
class FacilityChecked:
    """A stored facility check. ``created`` is False for a replay under the same key;
    ``issue_created`` says whether the check opened its case (False: none, or it joined the
    case already open for the facility, or a replay)."""

    id: int
    facility_id: int
    result: str
    issue_id: int | None
    checked_at: datetime
    facility_status: str
    created: bool = True
    issue_created: bool = False


def check_facility(session: Session, cache: GridIndexCache, actor: Actor, facility_id: int,
                   result: str, note: str | None = None, category: str | None = None,
                   client_key: str | None = None) -> FacilityChecked:
    """部件巡检: record what ``actor`` found at facility ``facility_id`` and set its status to it.

    Damaged or missing opens a case at the facility's location, linked to it, reported by the
    actor through :func:`gis.issues.reporting.report_issue` (tagged, given its due time, keyed by
    a UUID derived from ``client_key``), in ``category``, else the first issue category (by code)
    whose facility categories hold the facility's, else ``facility_damaged``. A case of that
    category already open for the facility is joined instead: a second patrol finding the same
    broken bench adds a check to the case, not a duplicate for the command centre to merge.

    Who may: whoever may change facilities in its grid (as edits of facilities,
    :func:`gis.people.actors.require_change`).
    """
    if result not in FACILITY_CHECK_RESULTS:
        raise InvalidParameter(
            f"result must be one of {', '.join(FACILITY_CHECK_RESULTS)}; got {result!r}",
            zh=f"巡检结果 result 应为 {'、'.join(FACILITY_CHECK_RESULTS)} 之一；收到 {result!r}")
    facility = _locked_facility(session, actor, facility_id)
    if client_key is not None:
        earlier = _check_by_key(session, client_key)
        if earlier is not None:
            return _replayed_check(earlier, facility_id, result)
    issue_id, created = None, False
    if result in FACILITY_CHECK_REPORTS:
        issue_id, created = _case_for(session, cache, actor, facility, result, _text(note),
                                      category, client_key)
    row = session.execute(text("""
        INSERT INTO facility_checks (facility_id, actor_id, result, note, issue_id, client_key)
        VALUES (:f, :a, :r, :n, :i, :k)
        ON CONFLICT (client_key) DO NOTHING
        RETURNING id, checked_at"""), {"f": facility_id, "a": actor.id, "r": result,
                                       "n": _text(note), "i": issue_id, "k": client_key}).first()
    if row is None:  # the same key, used for another facility by a request that came first
        return _replayed_check(_check_by_key(session, client_key), facility_id, result)
    session.execute(text("UPDATE facilities SET status = :s, updated_at = now() WHERE id = :f"),
                    {"s": result, "f": facility_id})
    return FacilityChecked(row.id, facility_id, result, issue_id, row.checked_at, result,
                           created=True, issue_created=created)


@dataclass(frozen=True)
class _Facility:
    id: int
    category: str
    category_zh: str
    name: str | None
    lon: float
    lat: float


def _locked_facility(session: Session, actor: Actor, facility_id: int) -> _Facility:
    row = session.execute(text("""
        SELECT f.id, f.category, k.name_zh, f.name, ST_X(f.geom) AS lon, ST_Y(f.geom) AS lat,
               g.code AS grid_code
          FROM facilities f JOIN categories k ON k.code = f.category
          LEFT JOIN grids g ON g.id = f.grid_id
         WHERE f.id = :id FOR UPDATE OF f"""), {"id": facility_id}).first()
    if row is None:
        raise NotFound(f"facility {facility_id} does not exist", zh=f"部件 {facility_id} 不存在")
    require_change(actor, row.grid_code, "facilities")
    return _Facility(row.id, row.category, row.name_zh, row.name, row.lon, row.lat)


def _check_by_key(session: Session, client_key: str):
    return session.execute(text("""
        SELECT c.id, c.facility_id, c.result, c.issue_id, c.checked_at, f.status
          FROM facility_checks c JOIN facilities f ON f.id = c.facility_id
         WHERE c.client_key = :k"""), {"k": client_key}).first()


def _replayed_check(earlier, facility_id: int, result: str) -> FacilityChecked:
    if (earlier.facility_id, earlier.result) != (facility_id, result):
        raise Conflict(
            f"idempotency key already used for check {earlier.id} (facility {earlier.facility_id}, "
            f"{earlier.result}); use a new key for a new check",
            zh=f"该幂等键（Idempotency-Key）已用于巡检记录 {earlier.id}（部件 {earlier.facility_id}，"
               f"{FACILITY_CHECK_RESULT_NAMES[earlier.result][0]}）；新的巡检请使用新的键")
    return FacilityChecked(earlier.id, earlier.facility_id, earlier.result, earlier.issue_id,
                           earlier.checked_at, earlier.status, created=False)


def _case_for(session: Session, cache: GridIndexCache, actor: Actor, facility: _Facility,
              result: str, note: str | None, category: str | None,
              client_key: str | None) -> tuple[int, bool]:
    """The case a damaged or missing facility goes into: (its id, whether it was opened now)."""
    category = category or _category_for(session, facility.category)
    open_case = session.execute(text("""
        SELECT id FROM issues WHERE facility_id = :f AND category = :c AND status = ANY(:open)
         ORDER BY reported_at DESC, id DESC LIMIT 1"""),
        {"f": facility.id, "c": category, "open": list(OPEN_STATUSES)}).scalar()
    if open_case is not None:
        return open_case, False
    what = facility.name or facility.category_zh
    zh, en = FACILITY_CHECK_RESULT_NAMES[result]
    report = reporting.IssueReport(
        x=facility.lon, y=facility.lat, category=category, facility_id=facility.id,
        description=note or f"部件巡检：{what}{zh} / facility check: {facility.category} {en}",
        client_uuid=(uuid.uuid5(FACILITY_CHECK_NAMESPACE, client_key) if client_key is not None
                     else None))
    stored = reporting.report_issue(session, cache, actor, report)
    return stored.issue_id, stored.created


def _category_for(session: Session, facility_category: str) -> str:
    found = session.execute(text("""
        SELECT code FROM categories WHERE kind = 'issue' AND :f = ANY(facility_categories)
         ORDER BY code LIMIT 1"""), {"f": facility_category}).scalar()
    return found or FACILITY_DAMAGED_CATEGORY


# -- helpers ---------------------------------------------------------------------------------------
def _text(value: str | None) -> str | None:
    """Free text as given, None when empty or blank."""
    return (value.strip() or None) if value is not None else None


def _after(text_: str | None) -> str:
    return f": {text_}" if text_ else ""


def _zh(status: str) -> str:
    return STATUS_NAMES.get(status, (status,))[0]
