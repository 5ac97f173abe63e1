"""Small synthetic inputs for the map builders (no database): a 3x3 block of square grids
around the demo community's centre, with buildings, facilities and issues in the middle one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import Point, box

from gis.db.category_seeds import FACILITY_CATEGORIES, ISSUE_CATEGORIES
from gis.issues.detail import IssueDetail
from gis.queries.filters import IssueFilter
from gis.queries.map_data import GridMapData, HeatmapData, add_hotspots
from gis.rules import FINAL_STATUSES, TRANSITIONS, is_overdue

WGS84 = "EPSG:4326"
LON0, LAT0 = 112.86, 36.84
STEP = 0.003  # ~270 m x 330 m grids
NOW = datetime(2025, 12, 31, 12, tzinfo=UTC)


def categories(kind: str) -> pd.DataFrame:
    rows = FACILITY_CATEGORIES if kind == "facility" else ISSUE_CATEGORIES
    return pd.DataFrame([{"code": c.code, "name_zh": c.name_zh, "name_en": c.name_en,
                          "icon": c.icon, "colour": c.colour}
                         for c in rows])


def grids(counts: list[int] | None = None) -> gpd.GeoDataFrame:
    """3x3 grids (codes ...001-...009, west to east, north to south)."""
    geoms, rows = [], []
    for k in range(9):
        r, c = divmod(k, 3)
        x0, y0 = LON0 + (c - 1.5) * STEP, LAT0 + (0.5 - r) * STEP
        geoms.append(box(x0, y0, x0 + STEP, y0 + STEP))
        rows.append({"id": k + 1, "code": f"140429100001{k + 1:03d}", "name": f"第{k + 1:02d}网格",
                     "community": "太东社区", "community_code": "140429100001",
                     "households": 500 + 10 * k, "population": 1300 + 26 * k,
                     "worker": f"网格员{k + 1}"})
    frame = gpd.GeoDataFrame(rows, geometry=geoms, crs=WGS84)
    if counts is not None:
        frame["issues"] = counts
    return frame


def grid_map_data(n_issues: int = 3, *, bad_facility: str = "damaged") -> GridMapData:
    all_grids = grids()
    centre = all_grids.iloc[[4]].reset_index(drop=True)
    cx, cy = centre.geometry.iloc[0].centroid.coords[0]
    buildings = gpd.GeoDataFrame(
        [{"id": 1, "name": "1号楼", "compound": "东院", "floors": 6, "households": 48,
          "party_households": 5},
         {"id": 2, "name": "2号楼", "compound": "东院", "floors": 6, "households": 36,
          "party_households": 2}],
        geometry=[box(cx - 4e-4, cy, cx - 2e-4, cy + 1e-4), box(cx + 2e-4, cy, cx + 4e-4, cy + 1e-4)],
        crs=WGS84)
    facilities = gpd.GeoDataFrame(
        [{"id": 1, "code": "1404290101000001", "category": "water_cover", "name": "上水井盖1",
          "status": "ok"},
         {"id": 2, "code": "1404290102000002", "category": "sewage_cover", "name": "污水井盖2",
          "status": bad_facility},
         {"id": 3, "code": "1404299901000003", "category": "streetlight", "name": "路灯3",
          "status": "repairing"}],
        geometry=[Point(cx - 5e-4, cy - 5e-4), Point(cx, cy - 5e-4), Point(cx + 5e-4, cy - 5e-4)],
        crs=WGS84)
    return GridMapData(
        grid=centre, neighbours=all_grids.drop(index=4).reset_index(drop=True),
        buildings=buildings, facilities=facilities, issues=issues(n_issues, cx, cy),
        streets=gpd.GeoDataFrame({"name": ["太行街"], "kind": ["main"]},
                                 geometry=[box(cx - 2e-3, cy - 1e-4, cx + 2e-3, cy).exterior],
                                 crs=WGS84),
        community=gpd.GeoDataFrame({"code": ["140429100001"], "name": ["太东社区"]},
                                   geometry=[all_grids.union_all()], crs=WGS84),
        facility_categories=categories("facility"), issue_categories=categories("issue"))


def issues(n: int, cx: float = LON0, cy: float = LAT0) -> gpd.GeoDataFrame:
    """Open issues; the first is overdue, the rest are due in the future."""
    rng = np.random.default_rng(7)
    rows = []
    for k in range(n):
        reported = NOW - timedelta(days=3 + k)
        due = NOW - timedelta(hours=5) if k == 0 else NOW + timedelta(days=2)
        rows.append({"id": 100 + k, "category": "garbage" if k % 2 else "cover_damaged",
                     "description": f"<b>问题{k}</b> & 描述", "status": "dispatched",
                     "priority": 3, "reported_at": pd.Timestamp(reported),
                     "due_at": pd.Timestamp(due), "assignment": "inside",
                     "overdue": is_overdue("dispatched", due, NOW)})
    pts = [Point(cx + rng.uniform(-1e-3, 1e-3), cy + rng.uniform(-1e-3, 1e-3)) for _ in range(n)]
    return gpd.GeoDataFrame(rows, geometry=pts, crs=WGS84) if rows else gpd.GeoDataFrame(
        columns=["id", "category", "description", "status", "priority", "reported_at", "due_at",
                 "assignment", "overdue", "geometry"], geometry="geometry", crs=WGS84)


def heatmap_data(counts: list[int] | None = None) -> HeatmapData:
    """Aggregates as gis.queries.map_data would return them: grid counts, cells and weeks."""
    counts = counts or [5, 8, 2, 9, 40, 30, 1, 25, 35]
    g = grids(counts)
    g["open"], g["overdue"], g["closed"], g["on_time"] = 1, 0, 1, 1
    g["per_1000"] = (g["issues"] * 1000 / g["households"]).round(1)
    g["on_time_rate"] = 1.0
    g = add_hotspots(g, permutations=99)
    centres = shapely.centroid(g.geometry.values)
    cells = pd.DataFrame({"lat": shapely.get_y(centres), "lon": shapely.get_x(centres),
                          "weight": g["issues"]})
    weeks = pd.DataFrame({"week": ["2025-01-06"] * 9 + ["2025-01-13"] * 9,
                          "lat": list(cells["lat"]) * 2, "lon": list(cells["lon"]) * 2,
                          "weight": list((g["issues"] // 2).clip(lower=1)) * 2})
    return HeatmapData(IssueFilter(), g, cells, weeks, total=int(g["issues"].sum()) + 3,
                       unassigned=3, cell_m=20.0, week_cell_m=160.0,
                       communities=[{"code": "140429100001", "name": "太东社区"}],
                       categories=categories("issue"))


def children(m, cls) -> list:
    """Every element of type ``cls`` below the Folium element ``m``, depth first."""
    out = []

    def walk(el):
        for child in el._children.values():
            if isinstance(child, cls):
                out.append(child)
            walk(child)
    walk(m)
    return out


def issue_detail(status: str = "dispatched", *, description: str = "<b>井盖</b> & 破损",
                 photo_urls: list | None = None, grid: bool = True) -> IssueDetail:
    """One issue in the centre grid as :func:`gis.issues.detail.issue_detail` returns it: due
    five hours before NOW, linked to a facility, with a two-step history."""
    centre = grids().iloc[[4]].reset_index(drop=True)
    cx, cy = centre.geometry.iloc[0].centroid.coords[0]
    row = {"id": 4242, "category": "cover_damaged", "description": description,
           "status": status, "priority": 2,
           "reported_at": pd.Timestamp(NOW - timedelta(days=3)),
           "due_at": pd.Timestamp(NOW - timedelta(hours=5)),
           "closed_at": pd.Timestamp(NOW - timedelta(hours=1)) if status in FINAL_STATUSES else None,
           "overdue": is_overdue(status, NOW - timedelta(hours=5), NOW),
           "assignment": "inside", "photo_urls": photo_urls or [],
           "grid_code": centre["code"].iloc[0] if grid else None,
           "grid_name": centre["name"].iloc[0] if grid else None,
           "worker": "网格员5" if grid else None,
           "facility_code": "1404290102000002", "facility_name": "污水井盖2"}
    issue = gpd.GeoDataFrame([row], geometry=[Point(cx + 2e-4, cy - 1e-4)], crs=WGS84)
    facility = gpd.GeoDataFrame(
        [{"code": "1404290102000002", "name": "污水井盖2", "category": "sewage_cover",
          "status": "damaged"}], geometry=[Point(cx + 2.5e-4, cy - 1e-4)], crs=WGS84)
    cat = categories("issue").set_index("code").loc["cover_damaged"]
    events = [{"id": 1, "at": pd.Timestamp(NOW - timedelta(days=3)), "actor": None,
               "from_status": None, "to_status": "reported", "note": "12345热线转办"},
              {"id": 2, "at": pd.Timestamp(NOW - timedelta(days=2)), "actor": "leader",
               "from_status": "reported", "to_status": "accepted", "note": "<i>立案</i>"}]
    return IssueDetail(
        issue=issue, grid=centre[["code", "name", "geometry"]] if grid else centre.iloc[0:0],
        facility=facility,
        streets=gpd.GeoDataFrame({"name": ["太行街"], "kind": ["main"]},
                                 geometry=[box(cx - 2e-3, cy - 1e-4, cx + 2e-3, cy).exterior],
                                 crs=WGS84),
        category={"code": "cover_damaged", "name_zh": cat["name_zh"], "name_en": cat["name_en"],
                  "icon": cat["icon"], "colour": cat["colour"]},
        history=events, allowed_next=TRANSITIONS[status])


def issue_photos() -> list[dict]:
    """Photos of issue 4242 as the issue page is given them (oldest first, kinds interleaved):
    two as reported (the second without a time taken), one after and one before the fix. Times
    in UTC, which the page shows as Beijing time."""
    def photo(photo_id: int, kind: str, taken_at, width: int = 400, height: int = 300) -> dict:
        return {"id": photo_id, "url": f"/api/v1/photos/{photo_id}",
                "thumbnail_url": f"/api/v1/photos/{photo_id}/thumbnail", "kind": kind,
                "taken_at": taken_at, "width": width, "height": height}
    return [photo(11, "report", NOW - timedelta(days=3, hours=1)),
            photo(12, "report", None, 300, 400),
            photo(13, "after", NOW - timedelta(hours=2)),
            photo(14, "before", NOW - timedelta(days=1))]


# A mainland mobile number standing alone. Folium's element ids are random hex: a run of digits
# inside one (between letters or after "_") is no phone number and must not fail a test.
PHONE = r"(?<![0-9A-Za-z_])1[3-9]\d{9}(?![0-9A-Za-z_])"
