"""gis.queries.map_data.heatmap_data over more grids than its area budget, on the demo: the
communities or streets it draws carry exactly the sums of what it gives per grid, for the
filters and readers drawn."""

from __future__ import annotations

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gis.people.actors import load_actor
from gis.queries import map_data
from gis.queries.filters import IssueFilter
from gis.queries.reads import ScopedFilter
from gis.rules import ISSUE_STATUSES

EXAMPLES = settings(max_examples=12, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
COUNTED = ["issues", "open", "closed", "rejected", "overdue", "rated", "on_time", "households"]


@EXAMPLES
@given(budget=st.integers(0, 13), reader=st.sampled_from(["admin", "leader"]),
       statuses=st.sets(st.sampled_from(ISSUE_STATUSES), max_size=2),
       categories=st.sets(st.sampled_from(["garbage", "noise", "streetlight_out"]), max_size=2))
def test_areas_sum_their_grids(session, budget, reader, statuses, categories):
    actor, _ = load_actor(session, reader)
    flt = ScopedFilter.of(IssueFilter(statuses=tuple(sorted(statuses)),
                                      categories=tuple(sorted(categories))), actor)
    per_grid = map_data.heatmap_data(session, flt, hotspots=False)
    by_area = map_data.heatmap_data(session, flt, hotspots=False, area_budget=budget)
    assert per_grid.level == "grid" and by_area.level in ("community", "street")
    assert by_area.grid_count == len(per_grid.grids) > budget
    assert (by_area.total, by_area.unassigned) == (per_grid.total, per_grid.unassigned)
    key = f"{by_area.level}_code"
    codes = pd.Series(map_data.grids_in_scope(session, flt, geometry=False)
                      .set_index("code")[key])
    expected = per_grid.grids.assign(area=per_grid.grids["code"].map(codes)).groupby("area")[
        COUNTED].sum()
    got = by_area.grids.set_index("code")[COUNTED]
    assert sorted(got.index) == sorted(expected.index)
    assert (got.loc[expected.index] == expected).all().all()
    assert int(by_area.grids["n_grids"].sum()) == len(per_grid.grids)
    assert by_area.grids.geometry.notna().all()
