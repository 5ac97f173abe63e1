"""Response models of the leaders' dashboard's data (api/routes/dashboard.py)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from gis.queries.dashboard import PERIODS
from gis.rules import ISSUE_STATUSES, STEPS

PeriodKind = Literal[PERIODS]


class PeriodPublic(BaseModel):
    kind: PeriodKind
    since: date = Field(description="First day (Beijing time)")
    until: date = Field(description="Last day, inclusive")
    label: str = Field(description="2026-W48, 2026-11 or 2026-Q4", examples=["2026-11"])


class DashSummaryPublic(BaseModel):
    period: PeriodPublic
    open: int = Field(description="Open cases now (neither closed nor rejected)")
    overdue: int = Field(description=(
        "Open cases overdue now: past the promised deadline or with their running step past "
        "its own (the overdue list's count)"))
    reported: int = Field(description="Cases reported in the period")
    closed: int = Field(description="Cases closed in the period (结案)")
    rated: int = Field(description="Of those, the cases that had a due time")
    on_time: int = Field(description="Of those, the cases closed by their due time")
    on_time_rate: float | None = Field(description="按期结案率 of the cases closed in the period")


class TrendCategory(BaseModel):
    code: str
    zh: str
    en: str
    colour: str | None
    counts: list[int] = Field(description="Cases reported each week, in the order of `weeks`")
    total: int


class WeekOnTime(BaseModel):
    week: date = Field(description="Monday of the week of closure (Beijing time)")
    closed: int
    rated: int
    on_time: int
    on_time_rate: float | None = Field(description="按期结案率 of the cases closed that week")


class DashTrendPublic(BaseModel):
    period: PeriodPublic
    weeks: list[date] = Field(description="Mondays (Beijing time), oldest first")
    categories: list[TrendCategory] = Field(description="Busiest first; none without cases")
    on_time: list[WeekOnTime]


class OverdueCase(BaseModel):
    id: int
    category: str
    category_zh: str | None
    category_en: str | None
    grid_code: str | None
    grid_name: str | None
    department_code: str | None
    department: str | None = Field(description="The department the case is dispatched to")
    status: Literal[ISSUE_STATUSES]
    reported_at: datetime
    due_at: datetime | None = Field(description="The deadline promised to the resident")
    due_hours_late: float | None = Field(description="Hours past `due_at` (null: not past)")
    step: Literal[STEPS] | None = Field(description="The running step")
    step_zh: str | None
    step_en: str | None
    step_due_at: datetime | None
    step_overdue: bool
    step_hours_late: float | None = Field(description="Hours past the step's deadline")
    hours_late: float = Field(description="The larger of the two")


class OverduePublic(BaseModel):
    data: list[OverdueCase] = Field(description="The latest first")
    count: int = Field(description="Every overdue case in scope (data holds at most `limit`)")


class HeatScalePublic(BaseModel):
    """Leaflet.heat's options (maps.heat_scale)."""

    radius: int
    blur: int
    max: float
    max_zoom: int
    min_opacity: float


class DashHeatPublic(BaseModel):
    period: PeriodPublic
    bounds: list[float] | None = Field(description="minx, miny, maxx, maxy of the grids")
    zoom: int | None = Field(description="The zoom at which the grids fit the map's box")
    scale: HeatScalePublic | None
    cells: list[list[float]] = Field(description="[lat, lon, weight], the densest first")
    grids: dict = Field(description="GeoJSON FeatureCollection: code, name, community, issues")
    total: int
    unassigned: int
    cell_m: float
