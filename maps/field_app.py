"""The grid worker's app (网格通, served at /app/): its files, the settings it runs with, and the
list of files its service worker keeps for working offline.

The app is static: HTML, CSS and ES modules under ``maps/app/``, with Leaflet, idb and Workbox
from the pinned npm packages (served under /static/npm/, never a CDN). Everything a worker needs
offline falls in two parts: the *shell* (these files), which the service worker precaches with a
revision per file so that a new release replaces exactly the files that changed; and the *data*
(the worker's grids and their neighbours, buildings, facilities, categories, open cases), which
the app itself keeps in IndexedDB after an online log-in. Nothing here reads a database.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from maps.assets import NPM_URL

APP_URL = "/app"
APP_DIR = Path(__file__).resolve().parent / "app"
SERVICE_WORKER = "sw.js"

# Our own files, as served under /app/ (index.html is the shell at /app/ itself).
SHELL_FILES = (
    "app.css", "manifest.webmanifest", "icons/icon.svg", "icons/icon-192.png",
    "icons/icon-512.png", "js/main.js", "js/api.js", "js/store.js", "js/sync.js", "js/geo.js",
    "js/photos.js", "js/i18n.js", "js/mapview.js", "js/forms.js", "js/tasks.js", "js/dom.js",
)
# npm files the app loads (package, file inside it).
NPM_FILES = (
    ("leaflet", "dist/leaflet.js"), ("leaflet", "dist/leaflet.css"),
    ("idb", "build/index.js"), ("workbox-window", "build/workbox-window.prod.mjs"),
    ("@fortawesome/fontawesome-free", "css/fontawesome.min.css"),
    ("@fortawesome/fontawesome-free", "css/solid.min.css"),
    ("@fortawesome/fontawesome-free", "css/regular.min.css"),
    ("@fortawesome/fontawesome-free", "css/v4-shims.min.css"),
    ("@fortawesome/fontawesome-free", "webfonts/fa-solid-900.woff2"),
    ("@fortawesome/fontawesome-free", "webfonts/fa-regular-400.woff2"),
)
# Workbox's own builds, which the service worker imports (in this order: each needs the ones
# before it).
WORKBOX_SCRIPTS = (
    ("workbox-core", "build/workbox-core.prod.js"),
    ("workbox-routing", "build/workbox-routing.prod.js"),
    ("workbox-strategies", "build/workbox-strategies.prod.js"),
    ("workbox-precaching", "build/workbox-precaching.prod.js"),
)


@dataclass(frozen=True)
class PrecacheEntry:
    url: str
    revision: str
    size: int


def npm_url(package: str, file: str) -> str:
    return f"{NPM_URL}/{package}/{file}"


def _entry(url: str, path: Path) -> PrecacheEntry:
    data = path.read_bytes()
    return PrecacheEntry(url, hashlib.sha256(data).hexdigest()[:16], len(data))


@lru_cache(maxsize=4)
def precache_manifest(node_modules: Path) -> tuple[PrecacheEntry, ...]:
    """Every file the app needs offline, with a revision (a hash of its content). Read once per
    process: a release restarts the server."""
    entries = [_entry(f"{APP_URL}/", APP_DIR / "index.html")]
    entries += [_entry(f"{APP_URL}/{name}", APP_DIR / name) for name in SHELL_FILES]
    entries += [_entry(npm_url(p, f), Path(node_modules) / p / f) for p, f in NPM_FILES]
    return tuple(entries)


def service_worker(node_modules: Path) -> str:
    """The service worker's script: Workbox's builds imported, and the precache list filled in."""
    manifest = [{"url": e.url, "revision": e.revision} for e in precache_manifest(node_modules)]
    scripts = ", ".join(json.dumps(npm_url(p, f)) for p, f in WORKBOX_SCRIPTS)
    template = (APP_DIR / SERVICE_WORKER).read_text(encoding="utf-8")
    return (template.replace("/*WORKBOX_SCRIPTS*/", scripts)
            .replace("/*PRECACHE_MANIFEST*/[]", json.dumps(manifest, ensure_ascii=False)))


def app_size(node_modules: Path) -> int:
    """Bytes the app keeps for offline use (its shell, before any data)."""
    workbox = sum((Path(node_modules) / p / f).stat().st_size for p, f in WORKBOX_SCRIPTS)
    return sum(e.size for e in precache_manifest(node_modules)) + workbox


def missing_files(node_modules: Path) -> list[str]:
    """App files that are absent: empty when the checkout and ``npm ci`` are complete."""
    ours = [APP_DIR / n for n in ("index.html", SERVICE_WORKER, *SHELL_FILES)]
    theirs = [Path(node_modules) / p / f for p, f in (*NPM_FILES, *WORKBOX_SCRIPTS)]
    return [str(p) for p in ours + theirs if not p.is_file()]


# -- what the app's forms allow ---------------------------------------------------------------------
# A fix that poor is no better than a guess at the block: the form asks the worker to place the
# pin themselves (a phone in the open gets 5-15 m; under trees or between towers 30-100 m).
GPS_POOR_ACCURACY_M = 30.0
PHOTOS_PER_REPORT = (1, 6)
