"""The demo community once loaded into PostGIS: sizes, tagging, and grid quality."""

from sqlalchemy import text

from gis.exchange.transfer import export_communities, export_features
from gis.geo.topology import check_grids


def test_demo_loads_fourteen_grids_with_workers(session):
    grids = session.execute(text(
        "SELECT g.code, u.username FROM grids g JOIN grid_workers gw ON gw.grid_code = g.code "
        "JOIN users u ON u.id = gw.user_id ORDER BY g.code")).all()
    assert len(grids) == 14
    assert [u for _, u in grids] == [f"worker{i:02d}" for i in range(1, 15)]
    assert all(code.startswith("140429100001") and len(code) == 15 for code, _ in grids)
    roles = dict(session.execute(text("SELECT username, role FROM users WHERE role <> 'worker'")).all())
    assert roles == {"leader": "leader", "admin": "admin", "dispatcher": "dispatcher",
                     **{f"{d}01": "department" for d in ("shizheng", "huanwei", "zhifa", "gongre", "wuye")}}
    scopes = dict(session.execute(text("""
        SELECT u.username, coalesce(r.name, d.name) FROM users u LEFT JOIN regions r ON r.id = u.region_id
          LEFT JOIN departments d ON d.id = u.department_id WHERE u.role <> 'worker'""")).all())
    assert scopes == {"leader": "太东社区", "dispatcher": "武乡县", "admin": None,
                      "shizheng01": "市政管理所", "huanwei01": "环卫所", "zhifa01": "综合行政执法队",
                      "gongre01": "供热公司", "wuye01": "物业公司"}


def test_dispatched_demo_cases_went_to_the_department_of_their_category(session):
    rows = session.execute(text("""
        SELECT i.category, d.code, count(*) FROM issues i LEFT JOIN departments d ON d.id = i.department_id
         WHERE EXISTS (SELECT 1 FROM issue_events e WHERE e.issue_id = i.id AND e.to_status = 'dispatched')
         GROUP BY 1, 2""")).all()
    handled = {c: d for c, d, _ in rows}
    assert handled["garbage"] == "huanwei" and handled["illegal_construction"] == "zhifa"
    assert handled.get("neighbour_dispute") is None  # the community's own matter
    never = session.execute(text("""
        SELECT count(*) FROM issues i WHERE i.department_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM issue_events e WHERE e.issue_id = i.id AND e.to_status = 'dispatched')""")).scalar()
    assert never == 0


def test_every_facility_and_building_lies_inside_a_grid(session):
    outside_f = session.execute(text(
        "SELECT count(*) FROM facilities f WHERE NOT EXISTS (SELECT 1 FROM grids g "
        "WHERE g.valid_to IS NULL AND ST_Contains(g.geom, f.geom))")).scalar_one()
    outside_b = session.execute(text(
        "SELECT count(*) FROM buildings b WHERE NOT EXISTS (SELECT 1 FROM grids g "
        "WHERE g.valid_to IS NULL AND ST_Contains(g.geom, b.geom))")).scalar_one()
    assert outside_f == 0 and outside_b == 0


def test_tagging_agrees_with_postgis_contains(session):
    wrong = session.execute(text("""
        SELECT count(*) FROM issues i JOIN grids g ON ST_Contains(g.geom, i.geom)
         WHERE g.valid_to IS NULL AND i.grid_id IS DISTINCT FROM g.id""")).scalar_one()
    untagged = session.execute(text("SELECT count(*) FROM issues WHERE grid_id IS NULL")).scalar_one()
    tagged_f = session.execute(text(
        "SELECT count(*) FROM facilities WHERE grid_id IS NOT NULL AND assignment = 'inside'")).scalar_one()
    total_f = session.execute(text("SELECT count(*) FROM facilities")).scalar_one()
    assert wrong == 0 and untagged == 0 and tagged_f == total_f


def test_every_issue_has_a_history_that_ends_in_its_status(session):
    mismatched = session.execute(text("""
        SELECT count(*) FROM issues i
          JOIN LATERAL (SELECT to_status FROM issue_events e WHERE e.issue_id = i.id
                         ORDER BY e.at DESC, e.id DESC LIMIT 1) last ON TRUE
         WHERE last.to_status <> i.status""")).scalar_one()
    without = session.execute(text(
        "SELECT count(*) FROM issues i WHERE NOT EXISTS (SELECT 1 FROM issue_events e "
        "WHERE e.issue_id = i.id)")).scalar_one()
    assert mismatched == 0 and without == 0


def test_demo_grids_pass_check_grids(session):
    grids = export_features(session, "grids")
    communities = export_communities(session)
    report = check_grids(grids.rename(columns={"community": "community_code"}),
                         communities.assign(code=communities["name"]))
    assert report.ok, report.to_table()
