"""Work on site (gis.issues.field) against the demo database: 核实, 核查, 自处理 and facility
checks, each idempotent by its key; the worker's tasks; the duplicates of a report not yet sent;
self-resolved cases in the workers' statistics."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gis.errors import (
    AfterPhotoRequired,
    Conflict,
    Forbidden,
    IllegalTransition,
    InvalidCoordinates,
    InvalidParameter,
    PhotoRequired,
    ReasonRequired,
    UnknownCategory,
)
from gis.geotag.index_cache import GridIndexCache
from gis.issues import field, photos
from gis.issues.duplicates import duplicates_near, possible_duplicates
from gis.media.storage import FileStorage
from gis.people.actors import load_actor
from gis.queries import reads, statistics
from gis.rules import FACILITY_DAMAGED_CATEGORY, SELF_RESOLVED_NOTE, TRANSITIONS
from tests.api.scope_data import GRID_OTHER, GRID_OWN, add_case, grid_id, grid_point
from tests.photo_files import camera_jpeg


def actor(session, username):
    return load_actor(session, username)[0]


@pytest.fixture
def worker(session):
    return actor(session, "worker03")  # holds GRID_OWN


@pytest.fixture
def cache():
    return GridIndexCache()


def case(sql, status="reported", code=GRID_OWN, department=None, **kw) -> int:
    lon, lat = grid_point(sql, code)
    return add_case(sql, lon, lat, grid_id=grid_id(sql, code), status=status,
                    department=department, **kw)


def events(sql, issue_id):
    return sql("SELECT from_status, to_status, note, client_key FROM issue_events "
               "WHERE issue_id = :i ORDER BY id", i=issue_id)


def status(sql, issue_id):
    return sql("SELECT status FROM issues WHERE id = :i", i=issue_id)[0][0]


def photo(sql, issue_id, kind, *, ago=timedelta(0)):
    """A photo row of ``kind`` uploaded ``ago`` before now (the bytes do not matter here)."""
    sql("""INSERT INTO issue_photos (issue_id, kind, content_key, thumbnail_key, width, height,
                                     bytes, uploaded_at)
           VALUES (:i, :k, 'c', 't', 1, 1, 1, now() - :ago)""", i=issue_id, k=kind, ago=ago)


def resolved_at(sql, issue_id, ago=timedelta(0)):
    """The step into 'resolved', ``ago`` before now."""
    sql("""INSERT INTO issue_events (issue_id, from_status, to_status, at)
           VALUES (:i, 'in_progress', 'resolved', now() - :ago)""", i=issue_id, ago=ago)


# -- 核实 ---------------------------------------------------------------------------------------
def test_verify_valid_accepts_once_per_key(session, sql, worker):
    issue = case(sql)
    moved = field.verify(session, worker, issue, True, None, client_key="k-1")
    assert (moved.from_status, moved.to_status, moved.replayed) == ("reported", "accepted", False)
    assert moved.allowed_next == TRANSITIONS["accepted"]
    again = field.verify(session, worker, issue, True, None, client_key="k-1")
    assert (again.from_status, again.to_status, again.replayed) == ("reported", "accepted", True)
    assert status(sql, issue) == "accepted"
    assert [tuple(e) for e in events(sql, issue)] == [
        ("reported", "accepted", "核实有效 / verified on site", "k-1")]


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_verify_invalid_needs_a_reason(session, sql, worker, reason):
    issue = case(sql)
    with pytest.raises(ReasonRequired) as refused:
        field.verify(session, worker, issue, False, reason)
    assert refused.value.zh == "核实为无效时须填写原因"
    assert status(sql, issue) == "reported" and events(sql, issue) == []


def test_verify_invalid_rejects_with_the_reason_in_the_history(session, sql, worker):
    issue = case(sql)
    moved = field.verify(session, worker, issue, False, " 现场无此问题 ")
    assert moved.to_status == "rejected" and moved.allowed_next == ()
    assert events(sql, issue)[0].note == "核实无效 / not valid on site: 现场无此问题"
    assert sql("SELECT closed_at IS NOT NULL FROM issues WHERE id = :i", i=issue)[0][0]


def test_verify_only_a_reported_case_and_say_what_is_allowed(session, sql, worker):
    issue = case(sql, "dispatched")
    with pytest.raises(IllegalTransition) as refused:
        field.verify(session, worker, issue, True)
    assert "'dispatched'" in str(refused.value) and "'in_progress'" in str(refused.value)
    assert "核实只适用于「信息收集」" in refused.value.zh and "「任务处理」" in refused.value.zh


def test_a_key_used_for_another_outcome_is_a_conflict(session, sql, worker):
    issue = case(sql)
    field.verify(session, worker, issue, True, client_key="same")
    with pytest.raises(Conflict):
        field.verify(session, worker, issue, False, "不是", client_key="same")
    with pytest.raises(Conflict):
        field.self_resolve(session, worker, issue, client_key="same")
    assert len(events(sql, issue)) == 1


def test_out_of_scope_worker_and_department_staff(session, sql, worker):
    theirs = case(sql, code=GRID_OTHER)
    with pytest.raises(Forbidden):
        field.verify(session, worker, theirs, True)
    staff = actor(session, "shizheng01")
    own, other = case(sql, department="shizheng"), case(sql, department="huanwei")
    assert field.verify(session, staff, own, True).to_status == "accepted"
    with pytest.raises(Forbidden, match="department"):
        field.verify(session, staff, other, True)


# -- 核查 ---------------------------------------------------------------------------------------
def test_check_passed_closes(session, sql, worker):
    issue = case(sql, "resolved")
    moved = field.check(session, worker, issue, True, "已修复", client_key="c-1")
    assert (moved.to_status, moved.allowed_next) == ("closed", ())
    assert field.check(session, worker, issue, True, "已修复", client_key="c-1").replayed
    assert [e.note for e in events(sql, issue)] == ["核查通过 / check passed: 已修复"]


def test_check_failed_needs_an_after_photo_since_it_was_resolved(session, sql, worker):
    issue = case(sql, "resolved")
    resolved_at(sql, issue, timedelta(hours=2))
    photo(sql, issue, "after", ago=timedelta(hours=3))  # of the fix before: it does not count
    photo(sql, issue, "before")
    with pytest.raises(AfterPhotoRequired) as refused:
        field.check(session, worker, issue, False)
    assert refused.value.zh == "核查不通过须上传处置后照片"
    assert status(sql, issue) == "resolved"
    photo(sql, issue, "after", ago=timedelta(hours=1))
    moved = field.check(session, worker, issue, False, "井盖仍松动", client_key="c-2")
    assert (moved.from_status, moved.to_status) == ("resolved", "reopened")
    assert field.check(session, worker, issue, False, None, client_key="c-2").replayed
    assert events(sql, issue)[-1].note == "核查不通过，返工 / check failed, rework: 井盖仍松动"
    assert sql("SELECT count(*) FROM issue_events WHERE issue_id = :i AND to_status = 'reopened'",
               i=issue)[0][0] == 1


def test_check_only_a_resolved_case(session, sql, worker):
    with pytest.raises(IllegalTransition, match="is for cases in 'resolved'"):
        field.check(session, worker, case(sql, "in_progress"), True)


# -- 自处理 -------------------------------------------------------------------------------------
def test_self_resolve_needs_before_and_after_photos(session, sql, worker):
    issue = case(sql)
    with pytest.raises(PhotoRequired, match="missing: before, after") as refused:
        field.self_resolve(session, worker, issue)
    assert "处置前" in refused.value.zh and "处置后" in refused.value.zh
    photo(sql, issue, "before")
    with pytest.raises(PhotoRequired, match="missing: after"):
        field.self_resolve(session, worker, issue)
    photo(sql, issue, "after")
    moved = field.self_resolve(session, worker, issue, "已清理", client_key="s-1")
    assert (moved.from_status, moved.to_status) == ("reported", "closed")
    assert field.self_resolve(session, worker, issue, "已清理", client_key="s-1").replayed
    assert [tuple(e) for e in events(sql, issue)] == [
        ("reported", "closed", f"{SELF_RESOLVED_NOTE}: 已清理", "s-1")]
    assert sql("SELECT self_resolved, closed_at IS NOT NULL FROM issues WHERE id = :i",
               i=issue)[0] == (True, True)


def test_self_resolve_only_a_reported_case(session, sql, worker):
    issue = case(sql, "accepted")
    photo(sql, issue, "before")
    photo(sql, issue, "after")
    with pytest.raises(IllegalTransition, match="'accepted'"):
        field.self_resolve(session, worker, issue)


def test_workers_statistics_count_self_resolved_cases(session, sql, worker):
    leader = actor(session, "leader")

    def counted():
        rows = statistics.worker_stats(session, leader)
        return next(r for r in rows if r["username"] == "worker03")

    before = counted()
    issue = case(sql)
    photo(sql, issue, "before")
    photo(sql, issue, "after")
    field.self_resolve(session, worker, issue)
    after = counted()
    assert after["self_resolved"] == before["self_resolved"] + 1
    assert after["closed"] == before["closed"] + 1
    assert before["self_resolved"] == sql("""
        SELECT count(*) FROM issues i JOIN grids g ON g.id = i.grid_id
          JOIN grid_assignments ga ON ga.grid_code = g.code AND i.reported_at >= ga.valid_from
               AND (ga.valid_to IS NULL OR i.reported_at < ga.valid_to)
          JOIN users u ON u.id = ga.user_id
         WHERE u.username = 'worker03' AND i.self_resolved AND i.id <> :i""", i=issue)[0][0]


# -- 部件巡检 -----------------------------------------------------------------------------------
def facility_in(sql, code, category=None) -> int:
    return sql("""SELECT min(f.id) FROM facilities f JOIN grids g ON g.id = f.grid_id
                   WHERE g.code = :c AND (CAST(:k AS varchar) IS NULL OR f.category = :k)""",
               c=code, k=category)[0][0]


def facility_of(sql, category) -> int:
    return sql("SELECT min(id) FROM facilities WHERE category = :k AND grid_id IS NOT NULL",
               k=category)[0][0]


def test_an_ok_facility_opens_no_case(session, sql, worker, cache):
    facility = facility_in(sql, GRID_OWN)
    sql("UPDATE facilities SET status = 'damaged' WHERE id = :f", f=facility)
    checked = field.check_facility(session, cache, worker, facility, "ok", client_key="f-ok")
    assert (checked.result, checked.issue_id, checked.facility_status) == ("ok", None, "ok")
    assert sql("SELECT status FROM facilities WHERE id = :f", f=facility)[0][0] == "ok"


def test_a_damaged_facility_opens_one_linked_case_per_key(session, sql, worker, cache):
    facility = facility_in(sql, GRID_OWN)
    issues_before = sql("SELECT count(*) FROM issues")[0][0]
    checked = field.check_facility(session, cache, worker, facility, "damaged", "座椅断裂",
                                   client_key="f-1")
    assert checked.created and checked.issue_created and checked.facility_status == "damaged"
    issue = sql("""SELECT i.facility_id, i.status, i.description, g.code, i.due_at IS NOT NULL,
                          ST_Equals(i.geom, f.geom), e.actor_id
                     FROM issues i JOIN grids g ON g.id = i.grid_id
                     JOIN facilities f ON f.id = i.facility_id
                     JOIN issue_events e ON e.issue_id = i.id
                    WHERE i.id = :i""", i=checked.issue_id)
    assert issue == [(facility, "reported", "座椅断裂", GRID_OWN, True, True, worker.id)]
    replay = field.check_facility(session, cache, worker, facility, "damaged", "座椅断裂",
                                  client_key="f-1")
    assert (replay.id, replay.issue_id, replay.created) == (checked.id, checked.issue_id, False)
    assert sql("SELECT count(*) FROM issues")[0][0] == issues_before + 1
    assert sql("SELECT count(*) FROM facility_checks WHERE facility_id = :f", f=facility)[0][0] == 1
    with pytest.raises(Conflict):
        field.check_facility(session, cache, worker, facility, "ok", client_key="f-1")


def test_a_second_check_joins_the_open_case(session, sql, worker, cache):
    facility = facility_in(sql, GRID_OWN)
    first = field.check_facility(session, cache, worker, facility, "damaged")
    second = field.check_facility(session, cache, worker, facility, "missing")
    assert second.issue_id == first.issue_id and not second.issue_created
    assert second.facility_status == "missing"


@pytest.mark.parametrize("facility_category, issue_category", [
    ("streetlight", "streetlight_out"), ("sewage_cover", "cover_damaged"),
    ("bench", FACILITY_DAMAGED_CATEGORY), ("pavilion", FACILITY_DAMAGED_CATEGORY)])
def test_the_case_takes_the_category_that_covers_the_facility(session, sql, cache,
                                                              facility_category, issue_category):
    admin = actor(session, "admin")
    checked = field.check_facility(session, cache, admin, facility_of(sql, facility_category),
                                   "damaged")
    assert sql("SELECT category FROM issues WHERE id = :i", i=checked.issue_id)[0][0] == issue_category


def test_a_category_given_wins_and_an_unknown_one_is_refused(session, sql, worker, cache):
    facility = facility_in(sql, GRID_OWN)
    checked = field.check_facility(session, cache, worker, facility, "missing", category="other")
    assert sql("SELECT category FROM issues WHERE id = :i", i=checked.issue_id)[0][0] == "other"
    with pytest.raises(UnknownCategory):
        field.check_facility(session, cache, worker, facility, "damaged", category="ufo")
    with pytest.raises(InvalidParameter, match="result must be one of ok, damaged, missing"):
        field.check_facility(session, cache, worker, facility, "broken")


def test_facility_checks_follow_the_grid(session, sql, worker, cache):
    with pytest.raises(Forbidden):
        field.check_facility(session, cache, worker, facility_in(sql, GRID_OTHER), "ok")
    with pytest.raises(Forbidden):
        field.check_facility(session, cache, actor(session, "shizheng01"),
                             facility_in(sql, GRID_OWN), "ok")


def test_the_photo_of_a_check_is_a_photo_of_its_case(session, sql, worker, cache, tmp_path):
    storage = FileStorage(tmp_path)
    checked = field.check_facility(session, cache, worker, facility_in(sql, GRID_OWN), "damaged")
    upload = photos.PhotoUpload(camera_jpeg((320, 240), gps=(1.0, 2.0)), idempotency_key="p-1")
    added = photos.add_check_photo(session, storage, worker, checked.id, upload)
    assert added.created
    assert photos.add_check_photo(session, storage, worker, checked.id, upload).photo_id == added.photo_id
    row = photos.photo_row(session, added.photo_id)
    assert (row["issue_id"], row["facility_check_id"], row["kind"]) == (
        checked.issue_id, checked.id, "report")
    listed, _, _ = reads.get_issue(session, worker, checked.issue_id)
    assert [p["id"] for p in listed["photos"]] == [added.photo_id]
    # the position in its EXIF moved nothing: the case is where the facility is
    assert sql("SELECT lon > 100 FROM issues WHERE id = :i", i=checked.issue_id)[0][0]
    with pytest.raises(Forbidden):
        photos.add_check_photo(session, storage, actor(session, "worker05"), checked.id, upload)


def test_the_photo_of_an_ok_check_belongs_to_no_case(session, sql, worker, cache, tmp_path):
    storage = FileStorage(tmp_path)
    checked = field.check_facility(session, cache, worker, facility_in(sql, GRID_OWN), "ok")
    added = photos.add_check_photo(session, storage, worker, checked.id,
                                   photos.PhotoUpload(camera_jpeg((320, 240))))
    assert photos.photo_row(session, added.photo_id)["issue_id"] is None
    assert photos.stored_photo(session, actor(session, "shizheng01"), added.photo_id).id == added.photo_id
    with pytest.raises(Forbidden):
        photos.stored_photo(session, None, added.photo_id, public_read=True)


# -- 我的任务 -----------------------------------------------------------------------------------
def _order_key(row):
    return (not row["overdue"], row["due_at"] is None, row["due_at"],
            row["distance_m"] is None, row["distance_m"], row["id"])


def test_a_workers_tasks_are_the_open_cases_of_their_grids_overdue_first(session, sql, worker):
    lon, lat = grid_point(sql, GRID_OWN)
    due = sql("SELECT now() + interval '5 hours'")[0][0]
    near, far = case(sql), case(sql)
    sql("UPDATE issues SET due_at = :d, geom = ST_SetSRID(ST_MakePoint(:x, :y), 4326) WHERE id = :i",
        d=due, x=lon + 0.0001, y=lat, i=near)
    sql("UPDATE issues SET due_at = :d, geom = ST_SetSRID(ST_MakePoint(:x, :y), 4326) WHERE id = :i",
        d=due, x=lon + 0.0005, y=lat, i=far)
    overdue = case(sql, "resolved")
    sql("UPDATE issues SET due_at = now() - interval '1 hour' WHERE id = :i", i=overdue)
    page = reads.list_tasks(session, worker, lon, lat)
    rows = page.items
    expected = {i for (i,) in sql("""
        SELECT i.id FROM issues i JOIN grids g ON g.id = i.grid_id
         WHERE g.code = :c AND i.status NOT IN ('closed', 'rejected')""", c=GRID_OWN)}
    assert {r["id"] for r in rows} == expected and page.total == len(expected)
    assert rows == sorted(rows, key=_order_key)
    assert rows[0]["overdue"] and not rows[-1]["overdue"]
    ids = [r["id"] for r in rows]
    assert ids.index(near) == ids.index(far) - 1  # the same due time: nearer first
    by_id = {r["id"]: r for r in rows}
    assert by_id[near]["distance_m"] == pytest.approx(8.9, abs=0.3)
    assert by_id[near]["action"] == "verify" and by_id[overdue]["action"] == "check"
    assert "client_uuid" in by_id[near]  # their own grid: personal fields in view
    assert page.revealed


def test_tasks_of_others_follow_their_scope_without_a_position(session, sql):
    staff = actor(session, "shizheng01")
    mine, other = case(sql, department="shizheng"), case(sql, department="huanwei")
    rows = reads.list_tasks(session, staff).items
    ids = {r["id"] for r in rows}
    assert mine in ids and other not in ids
    assert all(r["distance_m"] is None for r in rows)
    assert rows == sorted(rows, key=_order_key)
    with pytest.raises(InvalidCoordinates):
        reads.list_tasks(session, staff, 112.86, None)


def test_at_most_500_tasks(session):
    admin = actor(session, "admin")
    page = reads.list_tasks(session, admin, limit=3)
    assert len(page.items) == 3 and page.total > 3
    assert reads.TASKS_LISTED == 500


# -- duplicates of a report not yet sent --------------------------------------------------------
def test_duplicates_before_sending_agree_with_those_of_the_stored_report(session, sql, worker,
                                                                         cache):
    from gis.issues.reporting import IssueReport, report_issue

    lon, lat = grid_point(sql, GRID_OWN)
    earlier = [case(sql, category="garbage") for _ in range(2)]
    sql("UPDATE issues SET geom = ST_SetSRID(ST_MakePoint(:x, :y), 4326) WHERE id = :i",
        x=lon + 0.0001, y=lat, i=earlier[1])
    before = duplicates_near(session, worker, "garbage", lon, lat)
    stored = report_issue(session, cache, worker, IssueReport(lon, lat, "garbage")).issue_id
    after_stored = possible_duplicates(session, stored, worker)
    assert set(earlier) <= {d["id"] for d in before}
    assert before == after_stored
    assert all(d["category"] == "garbage" for d in before)
    with pytest.raises(UnknownCategory):
        duplicates_near(session, worker, "ufo", lon, lat)
