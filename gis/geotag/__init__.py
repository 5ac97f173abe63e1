"""Point -> grid: locating one point, the per-process index cache, re-tagging stored rows, bulk and dask."""
