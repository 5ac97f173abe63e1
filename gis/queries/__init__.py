"""Reads: the issue filter and read model, lists and items, statistics, map data and tile SQL."""
