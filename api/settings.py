"""Settings from the environment (prefix GRIDMAP_; DATABASE_URL is honoured as is)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gis.edit.writes import MAX_VERTICES

REPO_DATA = Path(__file__).resolve().parent.parent / "data"
DEVELOPMENT_SECRET = "gridmap-development-secret-not-for-production"


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
    ssl_certfile: Path | None = Field(None, description="Serve HTTPS with this certificate (PEM); "
                                      "tablets allow locate-me only on HTTPS")
    ssl_keyfile: Path | None = Field(None, description="The certificate's private key (PEM)")
    demo_password: str = Field("gridmap-demo", description="Password of the demo accounts.")
    assign_tolerance_m: float = Field(50.0, ge=0, description="Nearest-grid tolerance in metres.")
    max_body_bytes: int = Field(5_000_000, ge=1024, description="Largest request body accepted.")
    login_attempts_per_minute: int = Field(10, ge=1, description="Per client address and username.")
    max_vertices: int = Field(MAX_VERTICES, ge=4, description="Most vertices accepted in one geometry.")
    secret_key: str | None = Field(None, description="Signs access tokens; required outside development.")
    token_ttl_minutes: int = Field(600, ge=1, description="Access token lifetime (a working day).")

    @property
    def is_development(self) -> bool:
        return self.env == "development"

    def signing_secret(self) -> str:
        """The token secret. Development falls back to a fixed, publicly known one (never in production)."""
        if self.secret_key:
            return self.secret_key
        if self.is_development:
            return DEVELOPMENT_SECRET
        from gis.errors import SetupError

        raise SetupError("GRIDMAP_SECRET_KEY must be set outside development (GRIDMAP_ENV="
                         f"{self.env!r}); generate one with `python -c 'import secrets; "
                         "print(secrets.token_urlsafe(32))'`")

    def resolved_database_url(self) -> str:
        """DATABASE_URL when given, else the URL recorded by the private cluster."""
        if self.database_url:
            return self.database_url
        from gis.db.cluster import LocalCluster

        rec = LocalCluster(self.pg_dir).record()
        if rec is None:
            from gis.errors import SetupError

            raise SetupError("No database: set DATABASE_URL or run `gridmap db start` first.")
        return LocalCluster.url(rec)
