"""A server process keeps what it made at start-up out of the later garbage collections: a full
collection over it stalls every request for a tenth of a second or more (api/startup.py)."""

import gc

from fastapi.testclient import TestClient

from api.main import create_app
from api.routes import maps


def _visited(obj) -> bool:
    """Whether a collection would visit ``obj`` (gc.get_objects leaves the frozen out)."""
    return any(o is obj for o in gc.get_objects())


def test_the_app_made_at_start_up_is_frozen_once_it_started(demo_engine, settings):
    gc.unfreeze()
    app = create_app(settings)
    assert _visited(app.router.__dict__)
    with TestClient(app):
        assert gc.get_freeze_count() > 10_000
        assert not _visited(app.router.__dict__)


def test_the_hotspot_statistics_import_is_frozen_after_its_warm_up():
    gc.unfreeze()
    maps._warm_up()
    import esda.getisord

    assert not _visited(vars(esda.getisord))
    gc.unfreeze()
    assert _visited(vars(esda.getisord))
