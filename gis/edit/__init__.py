"""Writes of grids, buildings and facilities, each checked and re-tagged."""
