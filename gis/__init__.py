"""GridMap's spatial domain: grids, facilities, issues and their geometry. No web, no HTML."""
