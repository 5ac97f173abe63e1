"""Issues: reporting, the workflow, duplicates, and the detail behind the issue page."""
