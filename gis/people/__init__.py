"""People who act: actors, their roles and the grids they hold."""
