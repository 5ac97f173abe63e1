"""Files in and out: layer files, import/export of tables, GeoPackages, demo loading."""
