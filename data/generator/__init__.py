"""Deterministic synthetic data: the 太东社区 demo community, or a city of grids for benchmarks.

The public API is :func:`generate_demo` and the :class:`DemoData` it returns, with the constants
other code needs; each module of the package draws one part of the data (see
:mod:`data.generator.dataset` for the whole picture).
"""

from data.generator.dataset import DemoData, generate_demo
from data.generator.place import COMMUNITY_CODE, DEMO_GRIDS, DEMO_ISSUES
from data.generator.town import grid_reading_order

__all__ = ["COMMUNITY_CODE", "DEMO_GRIDS", "DEMO_ISSUES", "DemoData", "generate_demo",
           "grid_reading_order"]
