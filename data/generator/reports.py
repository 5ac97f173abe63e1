"""A report before its workflow: the year's category mix and the record that both ways of
placing reports fill in."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.generator.drawing import quota

# A year's reports of the demo community by category; other totals keep these proportions.
# (绿化损坏, 园林所's, was counted under "other" before it had a category of its own.)
ISSUE_MIX = {
    "garbage": 880, "parking_chaos": 800, "heating_failure": 520, "sewer_blocked": 420,
    "noise": 440, "other": 260, "streetlight_out": 360, "neighbour_dispute": 340,
    "cover_damaged": 210, "road_damaged": 200, "illegal_construction": 230,
    "elevator_failure": 170, "greenery": 170,
}


ISSUE_CODES = np.array(list(ISSUE_MIX), dtype=object)


def issue_kinds(n: int) -> np.ndarray:
    """Category of each of ``n`` reports as a position in ``ISSUE_MIX``, in the mix's shares."""
    return np.repeat(np.arange(len(ISSUE_MIX)), quota(list(ISSUE_MIX.values()), n))


@dataclass
class Reports:
    """Issues before the workflow: what, where (lon/lat points), which grid, when."""

    kind: np.ndarray  # category as a position in ISSUE_MIX
    points: np.ndarray
    grid: np.ndarray
    description: np.ndarray
    facility_code: np.ndarray
    reported: np.ndarray
    # Where, beyond the point: the compound (row of the site's compounds, -1 none: a street, or
    # no detail) and the kind of place (site_reports' facility, street, yard, room, unit, side,
    # square; "street" without detail). Who must fix a case depends on them (a property's yard).
    compound: np.ndarray
    place_kind: np.ndarray
