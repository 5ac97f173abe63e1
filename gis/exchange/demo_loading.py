"""Bulk loading: category seeds and a whole demo community into PostGIS.

Rows go in with COPY (one round trip per table) so that the same code loads the 14-grid demo and
the million-issue benchmark data. Geometries travel as EWKT, which PostGIS parses on input.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict

import geopandas as gpd
import pandas as pd
import shapely
from sqlalchemy import Connection, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from gis.db import models
from gis.db.category_seeds import ALL_CATEGORIES
from gis.worktime.limits import Limit
from gis.worktime.steps import replay
from gis.worktime.store import all_limits, load_calendar, workday_end

# Tables a demo (re)load empties, children first.
DEMO_TABLES = ("notifications", "step_alerts", "supervisions", "extension_requests",
               "facility_checks", "issue_steps", "issue_events", "issues", "facilities",
               "buildings", "compounds", "streets", "grid_assignments", "sessions",
               "login_failures", "grids", "dispatch_rules", "users", "departments", "regions")


def seed_categories(session: Session) -> int:
    """Insert the seed categories that are missing, with their time limits; never overwrite a
    deployment's edits (a category's limits are seeded only with the category)."""
    rows = [{k: v for k, v in asdict(c).items() if k != "limits"}
            | {"facility_categories": list(c.facility_categories)} for c in ALL_CATEGORIES]
    stmt = (insert(models.Category).values(rows)
            .on_conflict_do_nothing(index_elements=["code"]).returning(models.Category.code))
    added = {code for (code,) in session.execute(stmt).all()}
    limits = [{"category": c.code, "urgency": s.urgency, "step": s.step, "value": s.value,
               "unit": s.unit} for c in ALL_CATEGORIES if c.code in added for s in c.limits]
    if limits:
        session.execute(insert(models.TimeLimit).values(limits).on_conflict_do_nothing())
    return len(added)


def clear_demo(session: Session) -> None:
    session.execute(text(f"TRUNCATE {', '.join(DEMO_TABLES)} RESTART IDENTITY CASCADE"))


def load_demo(session: Session, demo, password_hash: str) -> dict[str, int]:
    """Replace the community data with ``demo`` (a ``data.generator.DemoData``).

    Grid assignment of the loaded rows is left to the caller (``gis.geotag.assign``), which uses the same
    grid index as live reports.
    """
    clear_demo(session)
    seed_categories(session)
    conn = session.connection()
    region_ids = _load_regions(session, demo.regions)
    grid_ids = _load_grids(conn, demo.grids, region_ids)
    department_ids = _load_departments(session, demo.departments)
    user_ids = _load_users(session, demo.users, password_hash, region_ids, department_ids)
    _load_grid_workers(session, demo.users, user_ids, demo.issues)
    _copy(conn, "streets", ["name", "kind", "geom"], _rows(demo.streets, ["name", "kind"]))
    compound_ids = _load_compounds(conn, demo.compounds)
    _load_buildings(conn, demo.buildings, compound_ids)
    _load_facilities(conn, demo.facilities)
    rule_ids = _load_dispatch_rules(conn, demo.dispatch_rules, region_ids, department_ids)
    issue_ids = _load_issues(conn, demo.issues, department_ids)
    numbered = {"rule": rule_ids,
                "request": _load_extension_requests(conn, demo.extension_requests, issue_ids,
                                                    user_ids),
                "supervision": _load_supervisions(conn, demo.supervisions, issue_ids, user_ids)}
    _load_events(conn, demo.issue_events, issue_ids, user_ids, department_ids, numbered)
    steps = _load_steps(session, demo.issues, demo.issue_events, issue_ids)
    # Statistics for the planner now, not at autovacuum's leisure: the evaluation's joins over
    # a freshly copied year are several times slower without them.
    for table in ("issues", "issue_events", "issue_steps", "extension_requests", "supervisions"):
        session.execute(text(f"ANALYZE {table}"))
    return {
        "regions": len(region_ids), "grids": len(grid_ids), "users": len(user_ids),
        "departments": len(department_ids), "dispatch_rules": len(rule_ids),
        "streets": len(demo.streets), "compounds": len(compound_ids),
        "buildings": len(demo.buildings), "facilities": len(demo.facilities),
        "issues": len(issue_ids), "issue_events": len(demo.issue_events), "issue_steps": steps,
        "extension_requests": len(demo.extension_requests),
        "supervisions": len(demo.supervisions),
    }


# -- helpers per table -----------------------------------------------------------------------
def _load_regions(session: Session, regions: gpd.GeoDataFrame) -> dict[str, int]:
    ids: dict[str, int] = {}
    order = {"district": 0, "street": 1, "community": 2}
    for row in regions.sort_values("level", key=lambda s: s.map(order)).itertuples():
        region = models.Region(code=row.code, name=row.name, level=row.level,
                               parent_id=ids.get(row.parent_code), geom=_ewkt(_multi(row.geometry)))
        session.add(region)
        session.flush()
        ids[row.code] = region.id
    return ids


def _load_grids(conn: Connection, grids: gpd.GeoDataFrame, region_ids: dict[str, int]) -> dict[str, int]:
    frame = grids.assign(community_id=grids["community_code"].map(region_ids))
    cols = ["code", "name", "community_id", "households", "population"]
    _copy(conn, "grids", [*cols, "geom"], _rows(frame, cols, multi=True))
    found = conn.execute(text("SELECT code, id FROM grids WHERE valid_to IS NULL")).all()
    return dict(found)


def _load_departments(session: Session, departments: pd.DataFrame) -> dict[str, int]:
    ids = {}
    for row in departments.itertuples():
        department = models.Department(code=row.code, name=row.name, categories=list(row.categories))
        session.add(department)
        session.flush()
        ids[row.code] = department.id
    return ids


def _load_users(session: Session, users: pd.DataFrame, password_hash: str,
                region_ids: dict[str, int], department_ids: dict[str, int]) -> dict[str, int]:
    ids = {}
    for row in users.itertuples():
        user = models.User(username=row.username, display_name=row.display_name, phone=row.phone,
                           role=row.role, password_hash=password_hash,
                           region_id=region_ids.get(row.region_code),
                           department_id=department_ids.get(row.department))
        session.add(user)
        session.flush()
        ids[row.username] = user.id
    return ids


def _load_grid_workers(session: Session, users: pd.DataFrame, user_ids: dict[str, int],
                       issues: pd.DataFrame) -> None:
    """Each demo worker has held their grid since before the first report."""
    since = issues["reported_at"].min() if len(issues) else None
    workers = users[users["role"].eq("worker") & users["grid_code"].notna()]
    for row in workers.itertuples():
        assignment = models.GridAssignment(grid_code=row.grid_code, user_id=user_ids[row.username])
        if since is not None and not pd.isna(since):
            assignment.valid_from = pd.Timestamp(since).to_pydatetime()
        session.add(assignment)
    session.flush()


def _load_dispatch_rules(conn: Connection, rules: pd.DataFrame, region_ids: dict[str, int],
                         department_ids: dict[str, int]) -> list[int]:
    """The rules in their order; returns their ids, by position (rule number - 1)."""
    frame = rules.assign(region_id=_ids(rules["region_code"], region_ids),
                         department_id=_ids(rules["department"], department_ids))
    cols = ["category", "region_id", "department_id", "auto"]
    _copy(conn, "dispatch_rules", cols, _rows(frame, cols, geometry=False))
    return list(conn.execute(text("SELECT id FROM dispatch_rules ORDER BY id")).scalars())


def _load_compounds(conn: Connection, compounds: gpd.GeoDataFrame) -> dict[str, int]:
    cols = ["name", "kind", "has_property_company", "built_year"]
    _copy(conn, "compounds", [*cols, "geom"], _rows(compounds, cols))
    return dict(conn.execute(text("SELECT name, id FROM compounds")).all())


def _load_buildings(conn: Connection, buildings: gpd.GeoDataFrame, compound_ids: dict[str, int]) -> None:
    frame = buildings.assign(compound_id=buildings["compound"].map(compound_ids).astype("Int64"))
    cols = ["name", "compound_id", "floors", "households", "party_households"]
    _copy(conn, "buildings", [*cols, "geom"], _rows(frame, cols))


def _load_facilities(conn: Connection, facilities: gpd.GeoDataFrame) -> None:
    cols = ["code", "category", "name", "status", "install_date", "owner", "maintainer"]
    _copy(conn, "facilities", [*cols, "geom"], _rows(facilities, cols))


def _load_issues(conn: Connection, issues: gpd.GeoDataFrame,
                 department_ids: dict[str, int]) -> dict[str, int]:
    frame = issues.assign(client_uuid=issues["client_uuid"].astype(str),
                          source_x=issues.geometry.x, source_y=issues.geometry.y,
                          department_id=_ids(issues["department"], department_ids))
    cols = ["client_uuid", "category", "description", "channel", "reporter_contact", "status",
            "urgency", "reported_at", "due_at", "closed_at", "department_id", "self_resolved",
            "source_x", "source_y"]
    _copy(conn, "issues", [*cols, "geom"], _rows(frame, cols))
    found = conn.execute(text("SELECT client_uuid::text, id FROM issues")).all()
    return dict(found)


def _load_events(conn: Connection, events: pd.DataFrame, issue_ids: dict[str, int],
                 user_ids: dict[str, int], department_ids: dict[str, int],
                 numbered: dict[str, list[int]]) -> None:
    """The history rows in their order (ids follow it, as ``at`` does). The rule, extension
    request and supervision notice a row's details name by their number (position from 1 in
    the demo's frames) are stored as the loaded rows' ids."""
    if events.empty:
        return
    frame = events.assign(issue_id=events["issue_client_uuid"].astype(str).map(issue_ids),
                          actor_id=events["actor_username"].map(user_ids).astype("Int64"),
                          department_id=_ids(events["department"], department_ids),
                          details=events["details"].map(lambda d: _with_ids(d, numbered)))
    cols = ["issue_id", "at", "actor_id", "from_status", "to_status", "note", "kind",
            "department_id", "details"]
    _copy(conn, "issue_events", cols, _rows(frame, cols, geometry=False))


def _with_ids(details, numbered: dict[str, list[int]]):
    if not isinstance(details, dict):
        return details
    return details | {key: ids[details[key] - 1] for key, ids in numbered.items()
                      if details.get(key)}


def _load_extension_requests(conn: Connection, requests: pd.DataFrame, issue_ids: dict[str, int],
                             user_ids: dict[str, int]) -> list[int]:
    """The requests in their order; returns their ids, by position."""
    frame = requests.assign(issue_id=requests["issue_client_uuid"].astype(str).map(issue_ids),
                            requested_by=_ids(requests["requested_by"], user_ids),
                            decided_by=_ids(requests["decided_by"], user_ids))
    cols = ["issue_id", "requested_by", "requested_at", "value", "unit", "reason", "decided_by",
            "decided_at", "approved", "decision_note", "due_before", "due_after"]
    _copy(conn, "extension_requests", cols, _rows(frame, cols, geometry=False))
    return list(conn.execute(text("SELECT id FROM extension_requests ORDER BY id")).scalars())


def _load_supervisions(conn: Connection, supervisions: pd.DataFrame, issue_ids: dict[str, int],
                       user_ids: dict[str, int]) -> list[int]:
    """The notices in their order; returns their ids, by position."""
    frame = supervisions.assign(
        issue_id=supervisions["issue_client_uuid"].astype(str).map(issue_ids),
        issued_by=_ids(supervisions["issued_by"], user_ids),
        replied_by=_ids(supervisions["replied_by"], user_ids))
    cols = ["issue_id", "issued_by", "issued_at", "note", "reply_due_at", "replied_by",
            "replied_at", "reply"]
    _copy(conn, "supervisions", cols, _rows(frame, cols, geometry=False))
    return list(conn.execute(text("SELECT id FROM supervisions ORDER BY id")).scalars())


def _ids(keys: pd.Series, ids: dict) -> pd.Series:
    """Keys (codes, usernames; missing: none) as the ids they stand for."""
    return keys.map(ids).astype("Int64")


def _load_steps(session: Session, issues: pd.DataFrame, events: pd.DataFrame,
                issue_ids: dict[str, int]) -> int:
    """Each case's steps and deadlines, replayed from its history by the live rule
    (gis.worktime.steps.replay) with the database's limits and calendar: its moves, and the
    approved extensions that moved the deadline of the step running then."""
    if events.empty:
        return 0
    limits, calendar, end = all_limits(session), load_calendar(session), workday_end(session)
    kind = dict(zip(issues["client_uuid"].astype(str),
                    zip(issues["category"], issues["urgency"], strict=True), strict=True))
    ordered = events.assign(uuid=events["issue_client_uuid"].astype(str)).sort_values(
        ["uuid", "at"], kind="stable")
    rows = []
    for uuid, history in ordered.groupby("uuid", sort=False):
        category, urgency = kind[uuid]
        moved = history[history["to_status"].notna()]
        moves = zip(moved["at"].map(pd.Timestamp.to_pydatetime), moved["from_status"].where(
            moved["from_status"].notna(), None), moved["to_status"], strict=True)
        approved = history[history["kind"].eq("extension_approved")]
        granted = [(at.to_pydatetime(), Limit(d["value"], d["unit"]))
                   for at, d in zip(approved["at"], approved["details"], strict=True)]
        mine = limits.get(category, {}).get(urgency, {})
        rows.extend((issue_ids[uuid], s.step, s.started_at, s.due_at, s.done_at)
                    for s in replay(moves, mine, calendar, end, granted))
    _copy(session.connection(), "issue_steps", ["issue_id", "step", "started_at", "due_at",
                                                "done_at"], rows)
    return len(rows)


# -- COPY plumbing ---------------------------------------------------------------------------
def _rows(frame: pd.DataFrame, cols: Sequence[str], *, multi: bool = False,
          geometry: bool = True) -> Iterable[tuple]:
    values = [frame[c].astype(object).where(frame[c].notna(), None).tolist() for c in cols]
    if geometry:
        geoms = frame.geometry.values
        if multi:
            geoms = [_multi(g) for g in geoms]
        values.append(["SRID=4326;" + w for w in shapely.to_wkt(geoms, rounding_precision=-1)])
    return zip(*values, strict=True)


def _copy(conn: Connection, table: str, cols: Sequence[str], rows: Iterable[tuple]) -> None:
    raw = conn.connection.driver_connection  # psycopg 3 connection inside SQLAlchemy's transaction
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([_plain(v) for v in row])


def _plain(value):
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def _multi(geom):
    return shapely.multipolygons([geom]) if geom.geom_type == "Polygon" else geom


def _ewkt(geom) -> str:
    return "SRID=4326;" + shapely.to_wkt(geom, rounding_precision=-1)


