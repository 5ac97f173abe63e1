"""GridMap's own HTML pages around the maps: log-in, the password change, the admin's user page,
error pages; written through autoescaped Jinja2 templates (./templates)."""
