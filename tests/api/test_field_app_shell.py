"""The worker app's shell over HTTP: public and the same for everyone (no case data in it), its
service worker listing every file the app loads with the right revision, the manifest of an
installable app, and the rules it applies on the tablet equal to the server's."""

from __future__ import annotations

import hashlib
import json
import re

from gis.issues.duplicates import DUPLICATE_RADIUS_M
from gis.issues.reporting import FACILITY_LINK_M
from gis.media.photos import MAX_SIDE
from gis.rules import STATUS_NAMES
from maps import field_app

MANIFEST = re.compile(r"precacheAndRoute\((\[.*?\]), \{")
IMPORTS = re.compile(r"""(?:^|\n)\s*import\s+(?:[^"';]+?\s+from\s+)?["']([^"']+)["']""")


def _precache(client) -> list[dict]:
    script = client.get("/app/sw.js").text
    return json.loads(MANIFEST.search(script).group(1))


def test_the_shell_is_public_and_revalidated(client):
    answer = client.get("/app/")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert answer.headers["cache-control"] == "no-cache"
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "'unsafe-eval'" not in policy
    assert "<script>" not in answer.text  # no inline script (the policy would refuse it)
    assert '<link rel="manifest" href="/app/manifest.webmanifest">' in answer.text
    assert client.get("/app", follow_redirects=False).headers["location"] == "/app/"


def test_the_service_worker_lists_every_file_with_its_revision(client):
    answer = client.get("/app/sw.js")
    assert answer.headers["service-worker-allowed"] == "/app/"
    assert answer.headers["cache-control"] == "no-cache"
    entries = _precache(client)
    assert entries, "the precache list was not filled in"
    for entry in entries:
        served = client.get(entry["url"])
        assert served.status_code == 200, entry["url"]
        assert hashlib.sha256(served.content).hexdigest()[:16] == entry["revision"], entry["url"]
    for package, file in field_app.WORKBOX_SCRIPTS:
        url = field_app.npm_url(package, file)
        assert f'"{url}"' in answer.text and client.get(url).status_code == 200


def test_every_module_and_style_the_shell_loads_works_offline(client):
    """What index.html links and what each module imports is precached: a file missing from
    the list would break the app in a basement, not here."""
    cached = {e["url"] for e in _precache(client)}
    shell = client.get("/app/").text
    linked = set(re.findall(r'(?:href|src)="(/[^"]+)"', shell))
    assert linked <= cached, linked - cached
    for url in [u for u in cached if u.endswith(".js") and u.startswith("/app/js/")]:
        for target in IMPORTS.findall(client.get(url).text):
            resolved = target if target.startswith("/") else "/app/js/" + target.removeprefix("./")
            assert resolved in cached, (url, target)


def test_no_file_of_ours_links_off_the_machine(client):
    """Our own files name no other host (the npm files' comments do; the browser tests check
    that no request leaves the machine)."""
    for entry in _precache(client):
        if entry["url"].startswith("/app/") and not entry["url"].endswith(".png"):
            text = client.get(entry["url"]).text
            assert not re.search(r"https?://(?!www\.w3\.org/)", text), entry["url"]


def test_the_manifest_makes_an_installable_app(client):
    manifest = client.get("/app/manifest.webmanifest").json()
    assert manifest["start_url"] == "/app/" and manifest["scope"] == "/app/"
    assert manifest["display"] == "standalone" and manifest["lang"] == "zh-CN"
    sizes = {icon["sizes"] for icon in manifest["icons"]}
    assert {"192x192", "512x512"} <= sizes
    for icon in manifest["icons"]:
        assert client.get(icon["src"]).status_code == 200


def test_the_tablet_rules_are_the_servers(client, settings):
    config = client.get("/app/config.json").json()
    assert config["tolerance_m"] == settings.assign_tolerance_m
    assert config["facility_link_m"] == FACILITY_LINK_M
    assert config["duplicate_radius_m"] == DUPLICATE_RADIUS_M
    assert config["photo_max_side"] == MAX_SIDE
    assert config["photo_max_bytes"] == settings.media.max_bytes
    assert {k: tuple(v) for k, v in config["statuses"].items()} == STATUS_NAMES


def test_the_app_files_are_all_there():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "node_modules"
    assert field_app.missing_files(root) == []
    assert field_app.app_size(root) > 0
