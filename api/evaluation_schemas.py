"""Response models of the evaluation (综合评价, api/routes/evaluation.py): the contract the
leaders' dashboard reads."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from gis.rules import EVALUATION_ROLES, GRADES, INDICATOR_BETTER, INDICATOR_UNITS

Grade = Literal[GRADES]


class PeriodPublic(BaseModel):
    since: date = Field(description="First day, Beijing time (inclusive)")
    until: date = Field(description="Last day, Beijing time (inclusive)")
    label: str = Field(description="2026-W46, 2026-11, 2026-Q4, or 2026-11-01/2026-11-15",
                       examples=["2026-11"])


class IndicatorPublic(BaseModel):
    key: str
    zh: str
    en: str
    unit: Literal[INDICATOR_UNITS] = Field(description=(
        "rate: a share from 0 to 1; count; hours: working hours; per_1000: cases per 1,000 "
        "households"))
    better: Literal[INDICATOR_BETTER]


class EvaluationRow(BaseModel):
    key: str = Field(description="Department code, username, grid code or community code")
    name: str
    values: dict[str, int | float | None] = Field(description=(
        "Each indicator's value in the period, null when there is nothing to judge by"))
    score: float | None = Field(description="Composite score 0-100; null below the minimum of "
                                            "cases or without a weighted value")
    grade: Grade | None
    previous_score: float | None = Field(description="The score in the period before")
    previous_grade: Grade | None
    score_change: float | None = Field(description="score - previous_score")


class EvaluationPublic(BaseModel):
    role: Literal[EVALUATION_ROLES]
    period: PeriodPublic
    previous: PeriodPublic = Field(description="The period of the same kind just before")
    indicators: list[IndicatorPublic]
    data: list[EvaluationRow] = Field(description="Best score first")
    count: int
