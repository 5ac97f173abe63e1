"""Pure geometry: coordinate systems, the in-memory grid index and grid topology (no database)."""
