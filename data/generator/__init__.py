"""Deterministic synthetic data: the 太东社区 demo community, or a city of grids for benchmarks.

The public API; see :mod:`data.generator.dataset` for how a dataset is made.
"""

from data.generator.dataset import (
    COMMUNITY_CODE,
    DEMO_GRIDS,
    DEMO_ISSUES,
    DemoData,
    generate_demo,
    grid_reading_order,
)

__all__ = ["COMMUNITY_CODE", "DEMO_GRIDS", "DEMO_ISSUES", "DemoData", "generate_demo",
           "grid_reading_order"]
