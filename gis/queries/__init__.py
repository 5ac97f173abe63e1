"""Reads: the issue filter and read model, lists and items, statistics, map data, tile SQL, and
what the standard interfaces read (feature_collections for OGC API, open311_requests)."""
