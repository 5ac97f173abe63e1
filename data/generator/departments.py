"""The departments (专业部门) a county's command centre dispatches to, how well each works, and the
dispatch rules (category x region -> department) of the demo.

Who must fix a case depends on what and where: a blocked drain on a street is 市政所's, the
same drain in the yard of an estate its property company's (物业); a neighbours' quarrel is the
community's own matter, for the grid worker (no department). The rules know categories and
regions only, never yards, so the desk must look where a case lies: rules that cannot be sure
only suggest, and those that dispatch automatically sometimes send a case to a department that
returns it (回退).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data.generator.columns import DEPARTMENT_COLUMNS, DISPATCH_RULE_COLUMNS
from data.generator.compounds import PROPERTY_COMPANIES
from data.generator.reports import ISSUE_MIX


@dataclass(frozen=True)
class DepartmentSpec:
    """A department and how it works: the share of its handling done within the time limit, and
    how often it asks for more time, puts a case on hold (挂账), has a fix fail its check (返工),
    returns a case that is its own (推诿), and leaves a supervision notice (督办) unanswered."""

    code: str
    name: str
    categories: tuple[str, ...]
    staff: int  # accounts <code>01, <code>02...
    on_time: float
    extension: float
    hold: float
    rework: float
    shirk: float
    silent: float


_PROPERTY_MATTERS = ("elevator_failure", "garbage", "parking_chaos", "sewer_blocked",
                     "road_damaged", "greenery")
# The county's departments, then the property companies that manage the compounds
# (data.generator.compounds.PROPERTY_COMPANIES, in that order). They range from well run to
# hardly run at all (安居物业 has all but left its old yards): every grade of the evaluation
# (A-E) has a department.
DEMO_DEPARTMENTS = (
    DepartmentSpec("shizheng", "市政所", ("sewer_blocked", "cover_damaged", "streetlight_out",
                                        "road_damaged"), 2, 0.96, 0.03, 0.008, 0.03, 0.004, 0.02),
    DepartmentSpec("huanwei", "环卫所", ("garbage",), 2, 0.93, 0.02, 0.002, 0.05, 0.01, 0.04),
    DepartmentSpec("yuanlin", "园林所", ("greenery",), 1, 0.88, 0.08, 0.02, 0.06, 0.02, 0.05),
    DepartmentSpec("gongre", "供热公司", ("heating_failure",), 1, 0.55, 0.08, 0.02, 0.14, 0.04,
                   0.12),
    DepartmentSpec("zhifa", "综合执法队", ("illegal_construction", "parking_chaos", "noise"), 2,
                   0.86, 0.10, 0.035, 0.04, 0.02, 0.06),
    DepartmentSpec("anju", PROPERTY_COMPANIES[0], _PROPERTY_MATTERS, 1, 0.1, 0.35, 0.15, 0.35,
                   0.25, 0.6),
    DepartmentSpec("wuye", PROPERTY_COMPANIES[1], _PROPERTY_MATTERS, 1, 0.97, 0.03, 0.005, 0.03,
                   0.005, 0.02),
    DepartmentSpec("jinhua", PROPERTY_COMPANIES[2], _PROPERTY_MATTERS, 1, 0.88, 0.05, 0.01, 0.05,
                   0.01, 0.05),
    DepartmentSpec("hengtai", PROPERTY_COMPANIES[3], _PROPERTY_MATTERS, 1, 0.15, 0.3, 0.08, 0.28,
                   0.15, 0.35),
    DepartmentSpec("hongda", PROPERTY_COMPANIES[4], _PROPERTY_MATTERS, 1, 0.5, 0.1, 0.03, 0.14,
                   0.04, 0.12),
)
# The community's own matters, handled by the grid worker, as a row of the same table.
COMMUNITY = DepartmentSpec("", "网格员", (), 0, 0.9, 0.02, 0.005, 0.04, 0.0, 0.03)
DEPARTMENT_CODES = np.array([d.code for d in DEMO_DEPARTMENTS], dtype=object)
COMPANIES = np.array([d.name in PROPERTY_COMPANIES for d in DEMO_DEPARTMENTS])  # 物业 or not
WORKER = -1  # the grid worker, where a department index is expected
_INDEX = {d.code: i for i, d in enumerate(DEMO_DEPARTMENTS)}
# The public department of each category in ISSUE_MIX order (WORKER: the community's own).
_PUBLIC = {"garbage": "huanwei", "parking_chaos": "zhifa", "heating_failure": "gongre",
           "sewer_blocked": "shizheng", "noise": "zhifa", "other": None,
           "streetlight_out": "shizheng", "neighbour_dispute": None, "cover_damaged": "shizheng",
           "road_damaged": "shizheng", "illegal_construction": "zhifa",
           "elevator_failure": "wuye", "greenery": "yuanlin"}
PUBLIC = np.array([_INDEX[_PUBLIC[c]] if _PUBLIC[c] else WORKER for c in ISSUE_MIX])
PROPERTY_MATTER = np.isin(np.array(list(ISSUE_MIX)), _PROPERTY_MATTERS)
# Noise in a flat (装修, a dog, the neighbours upstairs) is mediated by the community.
_NOISE = list(ISSUE_MIX).index("noise")


def table(attribute: str) -> np.ndarray:
    """One attribute of every department, then of the community (the last row)."""
    return np.array([getattr(d, attribute) for d in (*DEMO_DEPARTMENTS, COMMUNITY)])


def departments_frame() -> pd.DataFrame:
    return pd.DataFrame([(d.code, d.name, list(d.categories)) for d in DEMO_DEPARTMENTS],
                        columns=DEPARTMENT_COLUMNS)


def property_company_of(maintainers: np.ndarray) -> np.ndarray:
    """The department code of each compound's property company (None: it has none)."""
    codes = {d.name: d.code for d in DEMO_DEPARTMENTS}
    return np.array([codes.get(m) if isinstance(m, str) else None for m in maintainers],
                    dtype=object)


def responsible(kinds: np.ndarray, compound_company: np.ndarray, place_kind: np.ndarray) -> np.ndarray:
    """Who must fix each case, as an index of DEMO_DEPARTMENTS or WORKER: the category's public
    department, the compound's property company for what happens in a managed yard, the grid
    worker for the community's own matters."""
    company = np.array([_INDEX[c] if c else -2 for c in compound_company], dtype=np.int64) \
        if len(compound_company) else np.zeros(0, np.int64)
    right = PUBLIC[kinds].copy()
    managed = PROPERTY_MATTER[kinds] & (company >= 0)
    right[managed] = company[managed]
    right[(kinds == _NOISE) & (place_kind == "room")] = WORKER
    return right


# -- dispatch rules -----------------------------------------------------------------------------
# (category, region level it is set for (None: anywhere), department (None: the grid worker),
# automatic). Garbage is dispatched automatically across the county, but in 太东社区, a
# community of walled yards, the desk first looks whose yard it is; lifts belong to the estates'
# companies, so the rule only suggests the largest.
DISPATCH_RULES = (
    ("garbage", "district", "huanwei", True),
    ("garbage", "community", "huanwei", False),
    ("streetlight_out", None, "shizheng", True),
    ("cover_damaged", None, "shizheng", True),
    ("sewer_blocked", "district", "shizheng", False),
    ("road_damaged", "district", "shizheng", False),
    ("greenery", "district", "yuanlin", True),
    ("heating_failure", "district", "gongre", True),
    ("illegal_construction", "district", "zhifa", True),
    ("parking_chaos", "district", "zhifa", False),
    ("noise", "district", "zhifa", False),
    ("elevator_failure", "community", "wuye", False),
    ("neighbour_dispute", "community", None, True),
    ("other", "community", None, False),
)
_LEVEL_RANK = {"community": 0, "street": 1, "district": 2, None: 3}  # the most specific first


@dataclass
class Rules:
    """The rules as rows (``frame``, loaded in order: rule numbers are positions from 1) and, for
    each category (ISSUE_MIX order) and community (``communities`` order), the rule that applies:
    its number (0: none), department (index, WORKER) and whether it dispatches by itself."""

    frame: pd.DataFrame
    number: np.ndarray
    department: np.ndarray
    auto: np.ndarray


def dispatch_rules(region_codes, region_levels, communities: np.ndarray) -> Rules:
    """The demo's rules for the town's regions: a community rule for each community, a district
    rule for the district."""
    levels = dict(zip(region_codes, region_levels, strict=True))
    district = next(c for c, lv in levels.items() if lv == "district")
    rows = []
    for category, level, department, auto in DISPATCH_RULES:
        regions = [None] if level is None else [district] if level == "district" else \
            list(communities)
        rows += [(category, region, department, auto, level) for region in regions]
    frame = pd.DataFrame(rows, columns=[*DISPATCH_RULE_COLUMNS, "level"])
    codes = list(ISSUE_MIX)
    shape = (len(codes), len(communities))
    number, rank = np.zeros(shape, np.int64), np.full(shape, 99)
    department, auto = np.full(shape, WORKER), np.zeros(shape, bool)
    where = {c: i for i, c in enumerate(communities)}
    for pos, (category, region, code, automatic, level) in enumerate(rows, start=1):
        k = codes.index(category)
        cols = [where[region]] if level == "community" else list(range(shape[1]))
        better = [c for c in cols if _LEVEL_RANK[level] < rank[k, c]]
        number[k, better], rank[k, better] = pos, _LEVEL_RANK[level]
        department[k, better] = _INDEX[code] if code else WORKER
        auto[k, better] = automatic
    return Rules(frame[DISPATCH_RULE_COLUMNS], number, department, auto)
