"""People: a grid worker per grid, the community secretary, the county command centre's
dispatcher, the staff of each department (data.generator.departments), an admin; and the masked
numbers residents' reports show."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.generator.columns import USER_COLUMNS
from data.generator.departments import DEMO_DEPARTMENTS

_SURNAMES = "王李张刘陈杨赵郝贾阎武牛申段程常侯郭马梁宋韩冯董曹田任秦史乔孟白崔康"
_GIVEN = ("建国", "志强", "秀英", "丽娟", "海燕", "晓东", "文亮", "红梅", "春花", "俊峰",
          "晓敏", "玉兰", "建华", "国庆", "雪梅", "志刚", "桂芳", "卫东", "小军", "丽萍",
          "永红", "翠萍", "海军", "艳芳", "保平", "爱莲", "慧敏", "晋生", "润生", "巧玲")
_MOBILE_PREFIXES = ("134", "135", "136", "137", "138", "139", "150", "151", "152", "155", "156",
                    "158", "159", "177", "180", "186", "187", "188", "189")


def draw_users(grid_codes: np.ndarray, rng, *, community_code: str, district_code: str) -> pd.DataFrame:
    """A worker per grid (worker01.. in grid code order), the community secretary (``leader``,
    over ``community_code``), the county command centre's dispatcher (over ``district_code``),
    the staff of each department (``shizheng01``, ``shizheng02``, ``huanwei01``...) and an admin.

    Phone numbers are from the 1380000xxxx block the demo reserves; names are common Shanxi
    names drawn at random, so any likeness to a real worker is chance. (The dispatcher's and the
    department staff's names come after everyone else's, so adding staff changes no earlier
    name.)
    """
    n = len(grid_codes)
    width = max(2, len(str(n)))
    pool = np.array([s + g for s in _SURNAMES for g in _GIVEN], dtype=object)
    pick = rng.choice(len(pool), n + 1, replace=n + 1 > len(pool))
    usernames = [f"worker{i:0{width}d}" for i in range(1, n + 1)]
    staff = staff_usernames()
    staff_names = rng.choice(len(pool), len(staff) + 1, replace=True)
    return pd.DataFrame({
        "username": [*usernames, "leader", "admin", "dispatcher", *staff],
        "display_name": [*pool[pick[:n]], pool[pick[n]], "系统管理员", *pool[staff_names]],
        "phone": ([str(13800000000 + i) for i in range(1, n + 1)] + ["13800000000", None]
                  + [str(13800009000 + i) for i in range(len(staff) + 1)]),
        "role": ["worker"] * n + ["leader", "admin", "dispatcher"] + ["department"] * len(staff),
        "grid_code": [*grid_codes.tolist(), None, None, None, *[None] * len(staff)],
        "region_code": [None] * n + [community_code, None, district_code, *[None] * len(staff)],
        "department": [None] * (n + 3) + [name[:-2] for name in staff],
    }, columns=USER_COLUMNS)


def staff_usernames() -> list[str]:
    """<department code>01, 02... for each department's staff, in the departments' order."""
    return [f"{d.code}{k:02d}" for d in DEMO_DEPARTMENTS for k in range(1, d.staff + 1)]


def staff_table() -> np.ndarray:
    """(department, k) -> a username of its staff, each department's repeated to the widest."""
    widest = max(d.staff for d in DEMO_DEPARTMENTS)
    return np.array([[f"{d.code}{k % d.staff + 1:02d}" for k in range(widest)]
                     for d in DEMO_DEPARTMENTS], dtype=object)


def masked_phones(rng, n: int) -> np.ndarray:
    """How the hotline shows a resident's number: 139****5678."""
    prefix = np.array([p + "****" for p in _MOBILE_PREFIXES], dtype=object)
    tail = np.array([f"{i:04d}" for i in range(10_000)], dtype=object)
    return prefix[rng.integers(0, len(prefix), n)] + tail[rng.integers(0, 10_000, n)]
