"""evaluation (综合评价): the weights of the composite score, the grades' thresholds and the
minimum number of cases for a grade, as data

- ``evaluation_weights(role, indicator, weight)``: how much each indicator of a role (department,
  worker, grid, community) weighs in its composite score; the pairs are the indicators of
  gis.rules.EVALUATION_INDICATORS.
- ``evaluation_grades(grade, min_score)``: the lowest score of each grade A-E (90, 75, 60, 40, 0).
- ``evaluation_minimums(role, min_cases)``: with fewer cases in a period, no score or grade (5).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-22 10:00:00
"""

from alembic import op
from sqlalchemy import text

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# History: the vocabulary and seeds at the time of this migration (gis.rules.EVALUATION_ROLES,
# EVALUATION_INDICATORS' keys, DEFAULT_EVALUATION_WEIGHTS, GRADES, DEFAULT_GRADE_THRESHOLDS,
# DEFAULT_MIN_CASES).
ROLES = ("department", "worker", "grid", "community")
_AREA = {"cases": 0, "per_1000_households": 20, "closure_rate": 30, "on_time_rate": 50}
WEIGHTS = {
    "department": {"dispatched": 0, "closure_rate": 25, "on_time_rate": 30, "rework_rate": 15,
                   "extension_rate": 10, "return_rate": 10, "handling_hours": 10},
    "worker": {"reports": 0, "valid_report_rate": 30, "on_time_verify_rate": 35,
               "on_time_check_rate": 35, "self_resolved": 0},
    "grid": _AREA,
    "community": _AREA,
}
GRADES = {"A": 90, "B": 75, "C": 60, "D": 40, "E": 0}
MIN_CASES = 5


def _listed(values) -> str:
    return ", ".join(f"'{v}'" for v in values)


def upgrade() -> None:
    pairs = [f"{role}:{key}" for role, keys in WEIGHTS.items() for key in keys]
    op.execute(f"""
        CREATE TABLE evaluation_weights (
            role varchar(16) NOT NULL CONSTRAINT role_valid CHECK (role IN ({_listed(ROLES)})),
            indicator varchar(32) NOT NULL,
            weight double precision NOT NULL CONSTRAINT weight_not_negative CHECK (weight >= 0),
            PRIMARY KEY (role, indicator),
            CONSTRAINT indicator_valid CHECK ((role || ':' || indicator) IN ({_listed(pairs)}))
        )""")
    op.execute(f"""
        CREATE TABLE evaluation_grades (
            grade varchar(1) PRIMARY KEY CONSTRAINT grade_valid CHECK (grade IN ({_listed(GRADES)})),
            min_score double precision NOT NULL
                CONSTRAINT min_score_range CHECK (min_score >= 0 AND min_score <= 100)
        )""")
    op.execute(f"""
        CREATE TABLE evaluation_minimums (
            role varchar(16) PRIMARY KEY CONSTRAINT role_valid CHECK (role IN ({_listed(ROLES)})),
            min_cases integer NOT NULL CONSTRAINT min_cases_not_negative CHECK (min_cases >= 0)
        )""")
    conn = op.get_bind()
    conn.execute(text("INSERT INTO evaluation_weights (role, indicator, weight) VALUES (:r, :i, :w)"),
                 [{"r": role, "i": key, "w": weight} for role, weights in WEIGHTS.items()
                  for key, weight in weights.items()])
    conn.execute(text("INSERT INTO evaluation_grades (grade, min_score) VALUES (:g, :s)"),
                 [{"g": grade, "s": score} for grade, score in GRADES.items()])
    conn.execute(text("INSERT INTO evaluation_minimums (role, min_cases) VALUES (:r, :n)"),
                 [{"r": role, "n": MIN_CASES} for role in ROLES])


def downgrade() -> None:
    op.execute("DROP TABLE evaluation_minimums")
    op.execute("DROP TABLE evaluation_grades")
    op.execute("DROP TABLE evaluation_weights")
