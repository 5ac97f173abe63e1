"""Working time in the database: the local calendar overrides, the calendar's status (which
years fall back to Monday to Friday), the time limits table and the office hours.

The start and end of the working day are settings (GRIDMAP_WORKDAY_START, GRIDMAP_WORKDAY_END);
the application puts them in each session's ``info`` (``api.main``, the ``gridmap`` command)
and :func:`workday_start` / :func:`workday_end` read them there, so every write that starts a
step and every count of working hours use the same values without threading them through every
call. A session without them (a test's, a script's) uses 08:30 and 17:30.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time
from importlib.metadata import version

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import NotFound
from gis.rules import DEFAULT_WORKDAY_END, DEFAULT_WORKDAY_START, URGENCIES
from gis.worktime.calendar import WorkCalendar, official_years
from gis.worktime.limits import Limit

WORKDAY_END_KEY = "workday_end"
WORKDAY_START_KEY = "workday_start"

# Limits by urgency and step: {"normal": {"handle": Limit, ...}, "urgent": {...}}
Limits = dict[str, dict[str, Limit]]


def workday_end(session: Session) -> time:
    return workday_end_of(session.info)


def workday_end_of(info: dict) -> time:
    """The end of the working day in a session's ``info`` (the settings' session_info())."""
    return info.get(WORKDAY_END_KEY, DEFAULT_WORKDAY_END)


def workday_start(session: Session) -> time:
    return session.info.get(WORKDAY_START_KEY, DEFAULT_WORKDAY_START)


# -- the calendar ----------------------------------------------------------------------------------
def load_calendar(session: Session, since: date | None = None) -> WorkCalendar:
    """The working calendar with the database's overrides (those from ``since`` on, if given:
    a deadline counts only days after its start)."""
    rows = session.execute(text(
        "SELECT day, working FROM calendar_overrides WHERE CAST(:since AS date) IS NULL "
        "OR day >= CAST(:since AS date)"), {"since": since}).all()
    return WorkCalendar(dict(rows))


@dataclass(frozen=True)
class Override:
    day: date
    working: bool
    note: str
    created_by: str | None


def set_override(session: Session, day: date, working: bool, note: str = "",
                 created_by: str | None = None) -> Override:
    """Make ``day`` a working day or a holiday, whatever the official calendar says. Deadlines
    already set stay as they were; steps started from now on count with it."""
    session.execute(text("""
        INSERT INTO calendar_overrides (day, working, note, created_by)
        VALUES (:day, :working, :note, :by)
        ON CONFLICT (day) DO UPDATE SET working = EXCLUDED.working, note = EXCLUDED.note,
               created_by = EXCLUDED.created_by, created_at = now()"""),
        {"day": day, "working": working, "note": note or "", "by": created_by})
    return Override(day, working, note or "", created_by)


def unset_override(session: Session, day: date) -> None:
    gone = session.execute(text("DELETE FROM calendar_overrides WHERE day = :d RETURNING day"),
                           {"d": day}).first()
    if gone is None:
        raise NotFound(f"no calendar override on {day}", zh=f"{day} 没有本地调整")


def list_overrides(session: Session, year: int | None = None) -> list[Override]:
    rows = session.execute(text("""
        SELECT day, working, note, created_by FROM calendar_overrides
         WHERE CAST(:y AS integer) IS NULL OR extract(year FROM day) = :y ORDER BY day"""),
        {"y": year}).all()
    return [Override(*r) for r in rows]


def calendar_status(session: Session, today: date) -> dict:
    """Which years the official calendar covers and which fall back to Monday to Friday plus the
    overrides: the current year and the next (deadlines reach into it), and any year with
    overrides. ``warning`` (English and Chinese) names the years that fall back, None if none."""
    counts = dict(session.execute(text(
        "SELECT CAST(extract(year FROM day) AS integer), count(*) FROM calendar_overrides "
        "GROUP BY 1")).all())
    known = official_years()
    years = sorted({today.year, today.year + 1} | set(counts))
    rows = [{"year": y, "source": "official" if y in known else "fallback",
             "overrides": counts.get(y, 0)} for y in years]
    fallback = [r["year"] for r in rows if r["source"] == "fallback"]
    return {"package": "chinesecalendar", "package_version": version("chinesecalendar"),
            "official_years": [min(known), max(known)], "years": rows,
            "fallback_years": fallback, **_warning(fallback, counts)}


def _warning(fallback: list[int], counts: dict[int, int]) -> dict:
    if not fallback:
        return {"warning": None, "warning_zh": None}
    listed = ", ".join(f"{y} ({counts.get(y, 0)} overrides)" for y in fallback)
    listed_zh = "、".join(f"{y} 年（本地调整 {counts.get(y, 0)} 天）" for y in fallback)
    return {
        "warning": f"the installed chinesecalendar has no holiday notice for {listed}: Monday "
                   "to Friday plus the local overrides apply. Upgrade chinesecalendar once the "
                   "State Council publishes the notice, or enter its holidays and adjusted "
                   "working days with `gridmap calendar set`.",
        "warning_zh": f"已安装的 chinesecalendar 没有 {listed_zh}的放假安排：按周一至周五加本地调整"
                      "计算工作日。国务院发布放假通知后请升级 chinesecalendar，或用 "
                      "`gridmap calendar set` 录入放假和调休日期。"}


# -- the time limits -------------------------------------------------------------------------------
def limits_from_rows(rows) -> Limits:
    """(urgency, step, value, unit) rows as :data:`Limits`."""
    limits: Limits = {u: {} for u in URGENCIES}
    for urgency, step, value, unit in rows:
        limits[urgency][step] = Limit(value, unit)
    return limits


def category_limits(session: Session, category: str) -> Limits:
    return limits_from_rows(session.execute(text(
        "SELECT urgency, step, value, unit FROM time_limits WHERE category = :c"),
        {"c": category}).all())


def all_limits(session: Session) -> dict[str, Limits]:
    """Every category's limits, by category code."""
    out: dict[str, Limits] = {}
    rows = session.execute(text(
        "SELECT category, urgency, step, value, unit FROM time_limits ORDER BY category")).all()
    for category, *row in rows:
        out.setdefault(category, {u: {} for u in URGENCIES})
        out[category][row[0]][row[1]] = Limit(row[2], row[3])
    return out


def limits_json_sql(k: str = "k") -> str:
    """The limits of category row ``k`` as JSON: {"normal": {"handle": {"value", "unit"}, ...},
    "urgent": {...}}; every urgency present, a step without a limit absent."""
    per_urgency = ", ".join(
        f"'{u}', coalesce((SELECT json_object_agg(t.step, json_build_object('value', t.value, "
        f"'unit', t.unit) ORDER BY t.step) FROM time_limits t WHERE t.category = {k}.code "
        f"AND t.urgency = '{u}'), '{{}}'::json)" for u in URGENCIES)
    return f"json_build_object({per_urgency})"

