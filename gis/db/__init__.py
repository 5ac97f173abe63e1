"""The database: engine and sessions, models, Alembic migrations, category seeds, the private cluster."""
