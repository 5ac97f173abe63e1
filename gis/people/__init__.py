"""People who act: actors, their roles and the grids they hold, and the API keys of other systems."""
