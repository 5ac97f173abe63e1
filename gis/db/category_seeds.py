"""Seed rows of the category table: facility (部件) and issue (事件) categories.

Categories are data: the database table is the truth and a deployment edits it there. These rows
seed it once. ``std_code`` places a category in the urban-management classification (部件: 2-digit
major + 2-digit minor class, used in the 16-digit facility code; 事件: major class). 0101 and 0102
are the codes seen in real data; minor codes we could not confirm sit in the 扩展部件 class 99
(local extension) so that no code pretends to be standard.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    code: str
    kind: str  # "facility" or "issue"
    name_zh: str
    name_en: str
    std_code: str
    icon: str  # Font Awesome 4 name, as folium's Icon uses
    colour: str
    facility_categories: tuple[str, ...] = ()  # issues only: facilities it may concern
    # issues only: the time limits of each step by urgency, rows of ``time_limits``
    limits: tuple[LimitSeed, ...] = ()


@dataclass(frozen=True)
class LimitSeed:
    urgency: str  # normal (一般) or urgent (紧急)
    step: str  # accept, dispatch, handle, verify (gis.rules.STEPS)
    value: int
    unit: str  # minutes, hours, workdays


# What cities set for every category (Taiyuan's rules among them): a case is accepted (受理/立案)
# and dispatched within 10 minutes when urgent and 30 otherwise, and a fix is checked on site
# (核查) within 1 hour when urgent and 2 otherwise. The handling limit is the category's own.
_COMMON = {"urgent": {"accept": (10, "minutes"), "dispatch": (10, "minutes"), "verify": (1, "hours")},
           "normal": {"accept": (30, "minutes"), "dispatch": (30, "minutes"), "verify": (2, "hours")}}


def _limits(normal: tuple[int, str], urgent: tuple[int, str]) -> tuple[LimitSeed, ...]:
    """Every step's limit for both urgencies, given the handling limits."""
    handle = {"normal": normal, "urgent": urgent}
    return tuple(LimitSeed(urgency, step, *value)
                 for urgency, steps in _COMMON.items()
                 for step, value in (steps | {"handle": handle[urgency]}).items())


FACILITY_CATEGORIES: tuple[Category, ...] = (
    Category("water_cover", "facility", "上水井盖", "Water-supply cover", "0101", "circle", "#1f78b4"),
    Category("sewage_cover", "facility", "污水井盖", "Sewage manhole cover", "0102", "circle", "#6a3d9a"),
    Category("rain_cover", "facility", "雨水井盖", "Rain-water drain cover", "0103", "circle", "#33a02c"),
    Category("streetlight", "facility", "路灯", "Streetlight", "9901", "lightbulb-o", "#ff7f00"),
    Category("fitness", "facility", "健身器材", "Fitness equipment", "9902", "heartbeat", "#e31a1c"),
    Category("toilet", "facility", "公厕", "Public toilet", "9903", "male", "#a6cee3"),
    Category("bin", "facility", "垃圾桶", "Garbage bin", "9904", "trash", "#b15928"),
    Category("pavilion", "facility", "凉亭", "Pavilion", "9905", "home", "#fb9a99"),
    Category("bench", "facility", "座椅", "Bench", "9906", "minus", "#cab2d6"),
    Category("stage", "facility", "舞台", "Stage", "9907", "music", "#fdbf6f"),
    Category("barrier", "facility", "隔离栏", "Barrier", "9908", "ellipsis-h", "#808080"),
)

ISSUE_CATEGORIES: tuple[Category, ...] = (
    Category("sewer_blocked", "issue", "下水道堵塞", "Blocked sewer", "市容环境", "tint", "#6a3d9a",
             ("sewage_cover",), _limits((3, "workdays"), (4, "hours"))),
    Category("cover_damaged", "issue", "井盖破损/缺失", "Damaged or missing drain cover", "突发事件",
             "exclamation-triangle", "#e31a1c", ("rain_cover", "sewage_cover", "water_cover"),
             # made safe (fenced, covered) within 2 hours when urgent; replaced in a working day
             _limits((1, "workdays"), (2, "hours"))),
    Category("streetlight_out", "issue", "路灯不亮", "Streetlight out", "市容环境", "lightbulb-o",
             "#ff7f00", ("streetlight",),
             _limits((1, "workdays"), (12, "hours"))),
    Category("illegal_construction", "issue", "私搭乱建", "Illegal construction", "施工管理",
             "gavel", "#b15928", (),
             _limits((15, "workdays"), (3, "workdays"))),
    Category("parking_chaos", "issue", "乱停乱放", "Parking chaos", "街面秩序", "car", "#1f78b4", (),
             _limits((1, "workdays"), (2, "hours"))),
    Category("garbage", "issue", "垃圾堆积", "Garbage pile-up", "市容环境", "trash", "#33a02c", ("bin",),
             _limits((1, "workdays"), (4, "hours"))),
    Category("heating_failure", "issue", "供暖故障", "Heating failure", "扩展事件", "fire", "#fb9a99", (),
             _limits((24, "hours"), (4, "hours"))),
    Category("elevator_failure", "issue", "电梯故障", "Elevator failure", "扩展事件", "arrows-v",
             "#cab2d6", (),
             _limits((24, "hours"), (1, "hours"))),
    Category("road_damaged", "issue", "道路破损", "Damaged road", "施工管理", "road", "#808080", (),
             _limits((5, "workdays"), (4, "hours"))),
    # 园林所's matter: street trees (行道树) and green space; a fallen tree across a way is made
    # safe within 4 hours.
    Category("greenery", "issue", "绿化损坏", "Damaged greenery or trees", "市容环境", "tree",
             "#1b9e77", (), _limits((3, "workdays"), (4, "hours"))),
    Category("noise", "issue", "噪音扰民", "Noise", "街面秩序", "volume-up", "#fdbf6f", (),
             _limits((2, "workdays"), (2, "hours"))),
    Category("neighbour_dispute", "issue", "邻里纠纷", "Neighbour dispute", "扩展事件", "users",
             "#a6cee3", (),
             _limits((5, "workdays"), (1, "workdays"))),
    # A damaged or missing facility that no category above covers (部件巡检 opens it; migration
    # 0007 adds it to databases seeded before).
    Category("facility_damaged", "issue", "部件损坏/缺失", "Damaged or missing facility", "扩展事件",
             "wrench", "#8c564b", ("fitness", "toilet", "pavilion", "bench", "stage", "barrier"),
             _limits((3, "workdays"), (1, "workdays"))),
    Category("other", "issue", "其他", "Other", "扩展事件", "question", "#999999", (),
             _limits((5, "workdays"), (1, "workdays"))),
)

ALL_CATEGORIES: tuple[Category, ...] = FACILITY_CATEGORIES + ISSUE_CATEGORIES
