"""GridMap's one Settings object: read from the environment (and ``.env``) here and nowhere else.

Every setting has the prefix ``GRIDMAP_`` (``DATABASE_URL`` is honoured as is). Settings are
grouped by concern in small models, each reading its own variables when the one
:class:`Settings` is built: by :func:`api.main.create_app` or by the ``gridmap`` command, which
then hand the values down. ``gis`` and ``maps`` never read the environment; they take what they
need (a directory, a tolerance) as arguments. ``.env.example`` lists every setting with its
default, and a test keeps the two in step.
"""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gis.media.photos import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, PILLOW_MAX_PIXELS
from gis.rules import (
    DEFAULT_TOLERANCE_M,
    DEFAULT_WORKDAY_END,
    DEFAULT_WORKDAY_START,
    MAX_VERTICES,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEVELOPMENT_SECRET = "gridmap-development-secret-not-for-production"
ENV_FILE = ".env"


def _config(prefix: str = "GRIDMAP_") -> SettingsConfigDict:
    # env_ignore_empty: "NAME=" (as .env.example shows an unset setting) keeps the default
    return SettingsConfigDict(env_prefix=prefix, env_file=ENV_FILE, env_ignore_empty=True,
                              extra="ignore", populate_by_name=True)


class _Settings(BaseSettings):
    """Unknown variables in the environment or .env are ignored, but a setting passed by name
    must exist: a misspelt or outdated name (``database_url``) is refused, not silently dropped."""

    def __init__(self, **values) -> None:
        known = set(type(self).model_fields) | _aliases(type(self))
        unknown = sorted(k for k in values if not k.startswith("_") and k not in known)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no setting {', '.join(unknown)}; "
                            f"it has {', '.join(type(self).model_fields)}")
        super().__init__(**values)


def _aliases(model: type[BaseSettings]) -> set[str]:
    names: set[str] = set()
    for info in model.model_fields.values():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
        elif isinstance(alias, str):
            names.add(alias)
    return names


class DatabaseSettings(_Settings):
    """Which PostGIS to use: a server of one's own, or the private cluster `gridmap db start` runs."""

    model_config = _config()

    url: str | None = Field(
        None, validation_alias=AliasChoices("DATABASE_URL", "GRIDMAP_DATABASE_URL"),
        repr=False,  # it may carry a password
        description="The application's PostGIS URL (what the server connects as); unset means "
                    "the private cluster of `gridmap db start`.")
    owner_url: str | None = Field(
        None, validation_alias="GRIDMAP_OWNER_DATABASE_URL", repr=False,
        description="The schema owner's URL, for migrations and the `gridmap` commands; unset "
                    "means DATABASE_URL.")
    read_url: str | None = Field(
        None, validation_alias="GRIDMAP_READ_DATABASE_URL", repr=False,
        description="A hot standby of that server for the heavy reads (statistics, map pages, "
                    "the dashboard, tiles, exports), as the application's role; unset means "
                    "every read goes to DATABASE_URL. `gridmap db start --replica` prints it.")
    pg_dir: Path = Field(REPO_ROOT / "data" / "pg", description="Where the private cluster lives.")
    pg_bin: Path | None = Field(None, description="PostgreSQL's initdb/pg_ctl directory for the "
                                "private cluster; unset means the newest version installed.")

    @model_validator(mode="after")
    def _owner_of_the_same_server(self) -> DatabaseSettings:
        if self.owner_url and not self.url:
            raise ValueError("GRIDMAP_OWNER_DATABASE_URL is the owner's connection to the server "
                             "DATABASE_URL names: set DATABASE_URL (the application's) too")
        return self


class ServerSettings(_Settings):
    """Where `gridmap serve` listens, and its certificate for HTTPS."""

    model_config = _config()

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    ssl_certfile: Path | None = Field(None, description="Serve HTTPS with this certificate (PEM); "
                                      "tablets allow locate-me only on HTTPS")
    ssl_keyfile: Path | None = Field(None, description="The certificate's private key (PEM)")


class MapSettings(_Settings):
    """The map pages: base maps, the page cache, and where the npm assets are installed."""

    model_config = _config("GRIDMAP_MAPS_")

    online: bool = Field(False, description="Tile servers are reachable; offer online base maps.")
    basemap: Literal["none", "osm", "tianditu", "amap"] = Field(
        "none", description="Base map when the URL names none (only with online).")
    tianditu_key: str | None = Field(None, description="Tianditu (天地图) browser key (tk).")
    cache_pages: int = Field(64, ge=0, description="Rendered pages kept in memory.")
    cache_ttl_s: float = Field(300.0, ge=0, description="Longest a cached page is served.")
    issue_link: str = Field("/maps/issue/{id}", description=(
        "Where an issue popup links; {id} is the issue id, and ?lang= is added."))
    node_modules: Path = Field(
        REPO_ROOT / "node_modules", validation_alias="GRIDMAP_NODE_MODULES",
        description="Where `npm ci` (`make assets`) installed the maps' JavaScript and CSS.")


class MediaSettings(_Settings):
    """Photos of cases: where they are kept, and the largest upload taken."""

    model_config = _config("GRIDMAP_MEDIA_")

    root: Path = Field(REPO_ROOT / "data" / "media", description=(
        "Where uploaded photos are kept, by the SHA-256 of their content."))
    max_bytes: int = Field(DEFAULT_MAX_BYTES, ge=1024, description=(
        "Largest photo file accepted, in bytes; larger ones get 413."))
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1, le=PILLOW_MAX_PIXELS, description=(
        "Most pixels (width x height) a photo may declare; more is refused (422) before it is "
        "decoded, against decompression bombs (at most Pillow's own limit)."))

    def limits(self):
        from gis.media.photos import PhotoLimits

        return PhotoLimits(self.max_bytes, self.max_pixels)

    def storage(self):
        from gis.media.storage import FileStorage

        return FileStorage(self.root)


class Settings(_Settings):
    """All of GridMap's settings. The API's own ones are at the top; the rest by concern."""

    model_config = _config()

    env: Literal["development", "production"] = Field(
        "development", description="production refuses to start without a secret key")
    secret_key: SecretStr | None = Field(
        None, description="Signs the pages' CSRF tokens; required outside development.")
    token_ttl_minutes: int = Field(600, ge=1, description="Longest a log-in lasts (a working day).")
    session_idle_minutes: int = Field(120, ge=1, description="A log-in unused this long is over.")
    password_min_length: int = Field(10, ge=8, le=128, description="Shortest password accepted.")
    password_min_classes: int = Field(3, ge=1, le=4, description=(
        "Character classes a password needs, of lower-case, upper-case, digits, other."))
    public_read: bool = Field(False, description=(
        "Let anyone read cases without personal data (a FixMyStreet-style public site); "
        "off: case data needs a log-in."))
    login_attempts_per_minute: int = Field(10, ge=1, description="Per client address and username.")
    max_body_bytes: int = Field(5_000_000, ge=1024, description="Largest request body accepted.")
    max_vertices: int = Field(MAX_VERTICES, ge=4, description="Most vertices accepted in one geometry.")
    assign_tolerance_m: float = Field(DEFAULT_TOLERANCE_M, ge=0,
                                      description="Nearest-grid tolerance in metres.")
    demo_password: str = Field("gridmap-demo", description="Password of the demo accounts.")
    workday_end: time = Field(DEFAULT_WORKDAY_END, description=(
        "End of the working day, Beijing time (HH:MM): a limit of N working days ends then on "
        "the N-th working day after the day its step starts."))
    workday_start: time = Field(DEFAULT_WORKDAY_START, description=(
        "Start of the working day, Beijing time (HH:MM): working hours (the evaluation's "
        "handling time) count office hours, from it to the end, of working days."))
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    maps: MapSettings = Field(default_factory=MapSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)

    def session_info(self) -> dict:
        """What the domain reads from a session's ``info`` (gis.worktime.store)."""
        from gis.worktime.store import WORKDAY_END_KEY, WORKDAY_START_KEY

        return {WORKDAY_END_KEY: self.workday_end, WORKDAY_START_KEY: self.workday_start}

    @model_validator(mode="after")
    def _a_working_day_ends_after_it_starts(self) -> Settings:
        if self.workday_end <= self.workday_start:
            raise ValueError(f"GRIDMAP_WORKDAY_END ({self.workday_end:%H:%M}) must be after "
                             f"GRIDMAP_WORKDAY_START ({self.workday_start:%H:%M})")
        return self

    def password_policy(self):
        from gis.people.passwords import PasswordPolicy

        return PasswordPolicy(self.password_min_length, self.password_min_classes)

    def session_policy(self):
        from gis.people.sessions import SessionPolicy

        return SessionPolicy(self.token_ttl_minutes, self.session_idle_minutes)

    @property
    def is_development(self) -> bool:
        return self.env == "development"

    def signing_secret(self) -> str:
        """The token secret. Development falls back to a fixed, publicly known one (never in production)."""
        if self.secret_key:
            return self.secret_key.get_secret_value()
        if self.is_development:
            return DEVELOPMENT_SECRET
        from gis.errors import SetupError

        raise SetupError("GRIDMAP_SECRET_KEY must be set outside development (GRIDMAP_ENV="
                         f"{self.env!r}); generate one with `python -c 'import secrets; "
                         "print(secrets.token_urlsafe(32))'`")

    def resolved_database_url(self) -> str:
        """The owner's connection, which migrations and the `gridmap` commands use:
        GRIDMAP_OWNER_DATABASE_URL, else DATABASE_URL, else the private cluster's owner."""
        if self.database.owner_url or self.database.url:
            return self.database.owner_url or self.database.url
        from gis.db.cluster import LocalCluster

        return LocalCluster.url(self._cluster_record())

    def application_database_url(self) -> str:
        """What the server connects as: DATABASE_URL, else the private cluster's application
        role, which may not change or remove audit entries (gis.db.roles)."""
        if self.database.url:
            return self.database.url
        from gis.db.cluster import LocalCluster

        url = LocalCluster.app_url(self._cluster_record())
        if url is None:
            from gis.errors import SetupError

            raise SetupError("The private cluster has no application role yet: run "
                             "`gridmap db start`, which adds it.")
        return url

    def application_role(self) -> str | None:
        """The role the server connects as, which migrations grant its privileges (gis.db.roles);
        None when DATABASE_URL names the owner's own role (or none)."""
        if not self.database.url:
            from gis.db.roles import APP_ROLE

            return APP_ROLE
        from sqlalchemy.engine import make_url

        role = make_url(self.database.url).username
        return role if role and role != make_url(self.resolved_database_url()).username else None

    def _cluster_record(self) -> dict:
        from gis.db.cluster import LocalCluster

        rec = LocalCluster(self.database.pg_dir).record()
        if rec is None:
            from gis.errors import SetupError

            raise SetupError("No database: set DATABASE_URL or run `gridmap db start` first.")
        return rec
