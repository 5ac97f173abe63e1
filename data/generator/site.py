"""The site of a detailed layout: compounds cut from the blocks, buildings in them, facilities on
the streets and in the yards, all in metres."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from shapely.geometry import Polygon

from data.generator.buildings import draw_buildings
from data.generator.compounds import compound_counts, draw_compounds
from data.generator.drawing import largest_polygon, rng_stream
from data.generator.facilities import draw_facilities
from data.generator.streets import Streets
from data.generator.town import Grids, Town

_LAND_SETBACK = 2.0  # pavement between the kerb and the first wall


@dataclass
class Site:
    """Compounds, buildings and facilities in metres (geometry columns hold metric shapes)."""

    grids: Grids
    streets: Streets
    compounds: pd.DataFrame
    buildings: pd.DataFrame
    facilities: pd.DataFrame


def build_site(town: Town, seed: int, year: int) -> Site:
    """Cut compounds from the blocks, fill them with buildings, furnish streets and yards."""
    rng = rng_stream(seed, "site")
    grids = Grids(town.grid_geoms)
    streets = Streets(town)
    land = _grid_land(town.grid_geoms, streets)
    n_old, n_est = compound_counts(town, land, rng)
    compounds = draw_compounds(town, streets, land, n_old, n_est, year, rng)
    buildings = draw_buildings(compounds, rng_stream(seed, "buildings"))
    compounds["households"] = buildings.groupby("compound")["households"].sum().reindex(
        compounds.index, fill_value=0).to_numpy()
    town.households = np.bincount(compounds["grid"], compounds["households"],
                                  len(town.grid_geoms)).astype(int)
    facilities = draw_facilities(town, grids, streets, compounds, buildings, year,
                                  rng_stream(seed, "facilities"))
    return Site(grids, streets, compounds, buildings, facilities)


def _grid_land(grid_geoms: np.ndarray, streets: Streets) -> list[Polygon]:
    """What is left of each grid for homes: the blocks minus the streets and a pavement."""
    out = []
    for g in grid_geoms:
        left = g.difference(streets.corridors_near(g))
        out.append(largest_polygon(left.buffer(-_LAND_SETBACK, join_style="mitre")))
    return out
