"""Settings from the environment (prefix GRIDMAP_; DATABASE_URL is honoured as is)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_DATA = Path(__file__).resolve().parent.parent / "data"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDMAP_", env_file=".env", extra="ignore")

    env: str = Field("development", description="development | production")
    database_url: str | None = Field(
        None, validation_alias=AliasChoices("DATABASE_URL", "GRIDMAP_DATABASE_URL"),
        description="A PostGIS URL; unset means the private cluster of `gridmap db start`.",
    )
    pg_dir: Path = Field(REPO_DATA / "pg", description="Where the private cluster lives.")
    host: str = "127.0.0.1"
    port: int = 8000
    demo_password: str = Field("gridmap-demo", description="Password of the demo accounts.")
    assign_tolerance_m: float = Field(50.0, ge=0, description="Nearest-grid tolerance in metres.")

    def resolved_database_url(self) -> str:
        """DATABASE_URL when given, else the URL recorded by the private cluster."""
        if self.database_url:
            return self.database_url
        from gis.pgcluster import LocalCluster

        rec = LocalCluster(self.pg_dir).record()
        if rec is None:
            from gis.errors import SetupError

            raise SetupError("No database: set DATABASE_URL or run `gridmap db start` first.")
        return LocalCluster.url(rec)
