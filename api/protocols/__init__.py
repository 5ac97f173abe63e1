"""Wire formats of the standard interfaces: OGC API - Features, Open311 GeoReport v2, TileJSON."""
