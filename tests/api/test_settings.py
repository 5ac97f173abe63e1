"""The one Settings object: read from the environment when built, handed down to gis and maps,
and documented completely by .env.example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import AliasChoices, TypeAdapter
from pydantic_settings import BaseSettings

from api.main import create_app
from api.settings import (
    REPO_ROOT,
    DatabaseSettings,
    MapSettings,
    MediaSettings,
    ServerSettings,
    Settings,
)
from gis.geotag.index_cache import GridIndexCache
from gis.rules import DEFAULT_TOLERANCE_M
from tests.conftest import app_settings

GROUPS = (Settings, DatabaseSettings, ServerSettings, MapSettings, MediaSettings)


def _env_name(model: type[BaseSettings], field: str) -> str:
    alias = model.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return alias or model.model_config["env_prefix"] + field.upper()


def _every_setting() -> dict[str, tuple[type[BaseSettings], str]]:
    return {_env_name(model, name): (model, name) for model in GROUPS
            for name, info in model.model_fields.items()
            if not (isinstance(info.annotation, type) and issubclass(info.annotation, BaseSettings))}


def _documented() -> list[tuple[str, str]]:
    text = (REPO_ROOT / ".env.example").read_text(encoding="utf-8")
    return re.findall(r"^(?:# )?([A-Z][A-Z0-9_]*)=(.*)$", text, re.M)


def test_env_example_lists_every_setting_once_with_its_default():
    documented = _documented()
    names = [name for name, _ in documented]
    assert sorted(names) == sorted(_every_setting()) and len(set(names)) == len(names)
    for name, written in documented:
        model, field = _every_setting()[name]
        info = model.model_fields[field]
        if info.default is None:
            assert written == "", name  # shown empty: unset
            continue
        value = TypeAdapter(info.annotation).validate_python(written)
        if isinstance(info.default, Path):
            value = REPO_ROOT / value
        assert value == info.default, name


def test_the_tolerance_default_is_the_domain_rule():
    assert Settings.model_fields["assign_tolerance_m"].default == DEFAULT_TOLERANCE_M
    assert GridIndexCache().tolerance_m == DEFAULT_TOLERANCE_M


def test_the_environment_is_read_when_settings_are_built(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db.example/gridmap")
    monkeypatch.setenv("GRIDMAP_PG_BIN", str(tmp_path / "bin"))
    monkeypatch.setenv("GRIDMAP_NODE_MODULES", str(tmp_path / "npm"))
    monkeypatch.setenv("GRIDMAP_MAPS_ONLINE", "1")
    monkeypatch.setenv("GRIDMAP_PORT", "8443")
    monkeypatch.setenv("GRIDMAP_ASSIGN_TOLERANCE_M", "25")
    monkeypatch.setenv("GRIDMAP_SSL_KEYFILE", "")  # empty: unset, as .env.example shows it
    built = Settings()
    assert built.database.url == "postgresql://u:p@db.example/gridmap"
    assert built.database.pg_bin == tmp_path / "bin"
    assert built.maps.node_modules == tmp_path / "npm" and built.maps.online is True
    assert built.server.port == 8443 and built.server.ssl_keyfile is None
    assert built.assign_tolerance_m == 25.0
    assert "u:p@" not in repr(built)  # the URL's password stays out of logs
    monkeypatch.setenv("GRIDMAP_PORT", "9000")
    assert built.server.port == 8443  # read once, when built


def test_unknown_environment_names_are_refused(monkeypatch):
    monkeypatch.setenv("GRIDMAP_ENV", "prod")
    with pytest.raises(ValueError, match="development"):
        Settings()


def test_a_setting_passed_by_an_unknown_name_is_refused_not_dropped():
    with pytest.raises(TypeError, match="no setting database_url"):
        Settings(database_url="postgresql://x@127.0.0.1/x")  # now database=DatabaseSettings(url=)
    assert DatabaseSettings(DATABASE_URL="postgresql://x@h/d").url == "postgresql://x@h/d"


def test_the_app_keeps_the_settings_it_is_given_and_serves_the_assets_they_name(tmp_path):
    leaflet = tmp_path / "leaflet" / "dist" / "leaflet.js"
    leaflet.parent.mkdir(parents=True)
    leaflet.write_text("/* the one the settings name */")
    settings = app_settings("postgresql://nobody@127.0.0.1:1/none",
                            maps=MapSettings(node_modules=tmp_path))
    app = create_app(settings)
    assert app.state.settings is settings
    client = TestClient(app)  # no lifespan: static files need no database
    assert client.get("/static/npm/leaflet/dist/leaflet.js").text == leaflet.read_text()


def test_the_grid_index_takes_the_settings_tolerance(demo_engine, database_url):
    with TestClient(create_app(app_settings(database_url, assign_tolerance_m=12.5))) as client:
        assert client.app.state.grid_cache.tolerance_m == 12.5
