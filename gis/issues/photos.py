"""Photos of a case: an upload checked and cleaned (:mod:`gis.media.photos`), kept in the media
store under the SHA-256 of its bytes (:mod:`gis.media.storage`) and recorded in
``issue_photos``; and a stored photo found for a reader who may see it.

Who may add a photo: whoever may act on the case (:meth:`gis.people.actors.Actor.may_act_on`),
and its reporter, who may add photos of the problem as reported (kind ``report``). An upload's
idempotency key is unique per case: the same key returns the photo stored under it, never a
second copy. A report sent without coordinates (``location_from_photo``) takes its location
from the first photo with a GPS position (:func:`gis.issues.reporting.place_from_photo`); a
photo without one is refused until the report has a location. The GPS position and every other
piece of metadata are gone from what is stored.

Photos of a facility check (部件巡检, :mod:`gis.issues.field`) are kept the same way
(:func:`add_check_photo`): added by whoever made the check or may change facilities in its grid,
idempotent per check. When the check opened a case (or joined one), the photo is also one of
that case's photos as reported: one row with both ids, no copy.

Who may see a photo: whoever may read its case (:func:`gis.people.actors.read_scope_sql`); the
photo of a check that found the facility ok, which belongs to no case, any logged-in user
(facilities are no case data).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import Conflict, Forbidden, InvalidParameter, LocationRequired, NotFound
from gis.geotag.index_cache import GridIndexCache
from gis.issues.reporting import place_from_photo
from gis.media.photos import DEFAULT_LIMITS, PhotoLimits, clean_photo
from gis.media.storage import MediaStorage
from gis.people.actors import Actor, read_scope_sql, require_act_on_issue, require_change
from gis.rules import PHOTO_KIND_NAMES, PHOTO_KINDS


@dataclass(frozen=True)
class PhotoUpload:
    """What was sent: the file's bytes, what the photo shows (:data:`gis.rules.PHOTO_KINDS`),
    when it was taken if the sender says so (else the photo's EXIF says), the idempotency key."""

    data: bytes
    kind: str = "report"
    taken_at: datetime | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class AddedPhoto:
    photo_id: int
    created: bool  # False: the photo stored earlier under the same idempotency key
    located: bool  # this photo gave a report waiting for it its location


@dataclass(frozen=True)
class StoredPhoto:
    id: int
    issue_id: int | None
    content_key: str
    thumbnail_key: str


def add_photo(session: Session, cache: GridIndexCache, storage: MediaStorage, actor: Actor,
              issue_id: int, upload: PhotoUpload, limits: PhotoLimits = DEFAULT_LIMITS) -> AddedPhoto:
    """Check, clean and keep ``upload`` as a photo of case ``issue_id`` (see the module)."""
    if upload.kind not in PHOTO_KINDS:
        raise InvalidParameter(f"kind must be one of {', '.join(PHOTO_KINDS)}; got {upload.kind!r}",
                               zh=f"照片类型 kind 应为 {', '.join(PHOTO_KINDS)} 之一；收到 {upload.kind!r}")
    case = _case(session, issue_id)
    _require_may_add(actor, case, upload.kind)
    if upload.idempotency_key is not None:
        earlier = _by_key(session, issue_id, upload.idempotency_key)
        if earlier is not None:
            return AddedPhoto(earlier, created=False, located=False)
    photo = clean_photo(upload.data, limits)
    if case.waiting and photo.position is None:
        raise LocationRequired(
            f"issue {issue_id} was reported without coordinates and takes its location from a "
            "photo's GPS position, but this photo carries none: send a photo taken with the "
            "camera's location on",
            zh=f"事件 {issue_id} 上报时未带坐标，需由照片的 GPS 位置确定位置，但此照片没有位置信息："
               "请开启相机定位后拍摄并上传")
    located = case.waiting and place_from_photo(session, cache, issue_id, *photo.position)
    photo_id = _insert(session, storage, photo, upload, actor, issue_id=issue_id)
    if photo_id is None:  # a concurrent upload under the same key was stored first
        return AddedPhoto(_by_key(session, issue_id, upload.idempotency_key), False, False)
    return AddedPhoto(photo_id, created=True, located=located)


def add_check_photo(session: Session, storage: MediaStorage, actor: Actor, check_id: int,
                    upload: PhotoUpload, limits: PhotoLimits = DEFAULT_LIMITS) -> AddedPhoto:
    """Check, clean and keep ``upload`` as a photo of facility check ``check_id`` (kind report),
    and of the case it opened if any (see the module)."""
    check = session.execute(text("""
        SELECT c.actor_id, c.issue_id, g.code AS grid_code FROM facility_checks c
          JOIN facilities f ON f.id = c.facility_id LEFT JOIN grids g ON g.id = f.grid_id
         WHERE c.id = :id"""), {"id": check_id}).first()
    if check is None:
        raise NotFound(f"facility check {check_id} does not exist", zh=f"部件巡检记录 {check_id} 不存在")
    if check.actor_id != actor.id:
        require_change(actor, check.grid_code, "facilities")
    if upload.idempotency_key is not None:
        earlier = _by_check_key(session, check_id, upload.idempotency_key)
        if earlier is not None:
            return AddedPhoto(earlier, created=False, located=False)
    photo = clean_photo(upload.data, limits)
    photo_id = _insert(session, storage, photo, replace(upload, kind="report"), actor,
                       issue_id=check.issue_id, check_id=check_id)
    if photo_id is None:
        photo_id = _by_check_key(session, check_id, upload.idempotency_key)
        if photo_id is None:  # the key was taken by a photo the case had already
            raise Conflict(f"idempotency key already used for another photo of issue "
                           f"{check.issue_id}; use a new key for a new photo",
                           zh=f"该幂等键（Idempotency-Key）已用于事件 {check.issue_id} 的另一张照片；"
                              "新的照片请使用新的键")
        return AddedPhoto(photo_id, created=False, located=False)
    return AddedPhoto(photo_id, created=True, located=False)


def _insert(session: Session, storage: MediaStorage, photo, upload: PhotoUpload, actor: Actor, *,
            issue_id: int | None, check_id: int | None = None) -> int | None:
    """Keep the cleaned ``photo`` and its thumbnail and record them; None when a photo was
    stored under the same key first."""
    content_key, thumbnail_key = storage.put(photo.data), storage.put(photo.thumbnail)
    return session.execute(text("""
        INSERT INTO issue_photos (issue_id, facility_check_id, kind, content_key, thumbnail_key,
                                  width, height, bytes, taken_at, uploaded_by, idempotency_key)
        VALUES (:issue, :check, :kind, :content, :thumbnail, :width, :height, :bytes, :taken_at,
                :actor, :key)
        ON CONFLICT DO NOTHING
        RETURNING id"""), {
        "issue": issue_id, "check": check_id, "kind": upload.kind, "content": content_key,
        "thumbnail": thumbnail_key, "width": photo.width, "height": photo.height,
        "bytes": len(photo.data), "taken_at": upload.taken_at or photo.taken_at, "actor": actor.id,
        "key": upload.idempotency_key}).scalar()


def photo_row(session: Session, photo_id: int) -> dict:
    """A stored photo's description: id, issue_id, facility_check_id, kind, width, height,
    bytes, taken_at, uploaded_at."""
    row = session.execute(text("""
        SELECT id, issue_id, facility_check_id, kind, width, height, bytes, taken_at, uploaded_at
          FROM issue_photos WHERE id = :id"""), {"id": photo_id}).mappings().first()
    if row is None:
        raise NotFound(f"no photo with id {photo_id}", zh=f"未找到：照片 {photo_id}")
    return dict(row)


def stored_photo(session: Session, actor: Actor | None, photo_id: int, *,
                 public_read: bool = False) -> StoredPhoto:
    """Where photo ``photo_id`` is kept, for a reader who may read its case: NotFound when there
    is no such photo, Forbidden when its case is outside what ``actor`` may read."""
    scope, params = read_scope_sql(actor, public_read=public_read)
    row = session.execute(text(f"""
        SELECT p.id, p.issue_id, p.content_key, p.thumbnail_key,
               CASE WHEN p.issue_id IS NULL THEN :logged_in ELSE coalesce(({scope}), FALSE) END
                   AS readable
          FROM issue_photos p LEFT JOIN issues i ON i.id = p.issue_id WHERE p.id = :id"""),
        params | {"id": photo_id, "logged_in": actor is not None}).first()
    if row is None:
        raise NotFound(f"no photo with id {photo_id}", zh=f"未找到：照片 {photo_id}")
    if not row.readable and row.issue_id is None:
        raise Forbidden(f"photo {photo_id} is of a facility check: log in to see it",
                        zh=f"照片 {photo_id} 属于部件巡检记录：请登录后查看")
    if not row.readable:
        raise Forbidden(f"photo {photo_id} belongs to issue {row.issue_id}, which is outside what "
                        "you may read",
                        zh=f"照片 {photo_id} 属于事件 {row.issue_id}，不在您的查看范围内")
    return StoredPhoto(row.id, row.issue_id, row.content_key, row.thumbnail_key)


# -- helpers ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Case:
    grid_code: str | None
    department_id: int | None
    reporter_id: int | None
    waiting: bool  # reported without coordinates; no location yet


def _case(session: Session, issue_id: int) -> _Case:
    row = session.execute(text("""
        SELECT g.code, i.department_id,
               (SELECT e.actor_id FROM issue_events e WHERE e.issue_id = i.id
                   AND e.from_status IS NULL ORDER BY e.id LIMIT 1) AS reporter_id,
               i.geom IS NULL AS waiting
          FROM issues i LEFT JOIN grids g ON g.id = i.grid_id WHERE i.id = :id"""),
        {"id": issue_id}).first()
    if row is None:
        raise NotFound(f"issue {issue_id} does not exist", zh=f"事件 {issue_id} 不存在")
    return _Case(*row)


def _require_may_add(actor: Actor, case: _Case, kind: str) -> None:
    if actor.may_act_on(case.grid_code, case.department_id):
        return
    if case.reporter_id is not None and case.reporter_id == actor.id:
        if kind == "report":
            return
        raise Forbidden(
            f"as the reporter of this case, {actor.username} may add photos of the problem as "
            f"reported (kind report), not {kind!r} photos, which are for those who act on it",
            zh=f"{actor.username} 作为该事件的上报人，只能补充上报照片（report），"
               f"不能上传「{PHOTO_KIND_NAMES[kind][0]}」照片（由处置人上传）")
    require_act_on_issue(actor, case.grid_code, case.department_id)


def _by_check_key(session: Session, check_id: int, key: str) -> int | None:
    return session.execute(text(
        "SELECT id FROM issue_photos WHERE facility_check_id = :c AND idempotency_key = :k"),
        {"c": check_id, "k": key}).scalar()


def _by_key(session: Session, issue_id: int, key: str) -> int | None:
    return session.execute(text(
        "SELECT id FROM issue_photos WHERE issue_id = :i AND idempotency_key = :k"),
        {"i": issue_id, "k": key}).scalar()
