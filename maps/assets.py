"""Local copies of the JavaScript and CSS Folium links to, so that maps work with no internet.

Folium 0.20 and its plugins name their assets in class attributes (``default_js`` and
``default_css``: lists of (name, CDN URL)). :func:`localize` walks a figure and gives every
element *instance* its own lists pointing under ``/static/``; the classes are never touched, so
nothing leaks from one map to the next (``add_js_link`` would mutate the class-level list).
Every CDN URL must be in :data:`CDN_TO_LOCAL`; an unknown one (a folium upgrade, a new plugin)
raises :class:`UnmappedAsset` instead of slipping a CDN link into a page.

The files come from the npm registry: ``package.json`` at the repository root pins each package
and ``npm ci`` (``make assets``) installs them into ``node_modules/``, which the API serves at
``/static/npm/<package>/``. Our own small files (``maps/static/``) are served at
``/static/gridmap/``. Where ``node_modules`` is comes from the caller (the API's settings):
the functions that read installed files take it as their ``node_modules`` argument.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from branca.element import Element, Figure

from maps.literal import literal_elements

STATIC_URL = "/static"
NPM_URL = f"{STATIC_URL}/npm"
OWN_URL = f"{STATIC_URL}/gridmap"
PATCHED_URL = f"{STATIC_URL}/patched"
REPO_ROOT = Path(__file__).resolve().parent.parent
OWN_STATIC_DIR = Path(__file__).resolve().parent / "static"


def _npm(package: str, file: str) -> str:
    return f"{NPM_URL}/{package}/{file}"


def _own(file: str) -> str:
    return f"{OWN_URL}/{file}"


# Every CDN link of folium 0.20 (and the plugins GridMap uses) -> the local file(s) replacing it,
# in load order. Versions match folium's where npm has them (see package.json); where they differ
# the reason is given.
CDN_TO_LOCAL: dict[str, tuple[str, ...]] = {
    # folium.Map
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js":
        (_npm("leaflet", "dist/leaflet.js"),),
    "https://code.jquery.com/jquery-3.7.1.min.js": (_npm("jquery", "dist/jquery.min.js"),),
    "https://cdn.jsdelivr.net/npm/bootstrap@5.2.2/dist/js/bootstrap.bundle.min.js":
        (_npm("bootstrap", "dist/js/bootstrap.bundle.min.js"),),
    # cdnjs carries Leaflet.awesome-markers 2.0.2; npm's official package has 2.0.5 (same API).
    "https://cdnjs.cloudflare.com/ajax/libs/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.js":
        (_npm("leaflet.awesome-markers", "dist/leaflet.awesome-markers.js"),),
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css":
        (_npm("leaflet", "dist/leaflet.css"),),
    "https://cdn.jsdelivr.net/npm/bootstrap@5.2.2/dist/css/bootstrap.min.css":
        (_npm("bootstrap", "dist/css/bootstrap.min.css"),),
    # Bootstrap 3's glyphicons (folium's default Icon prefix) are not in Bootstrap 5; the npm
    # package glyphicons-only-bootstrap is Bootstrap 3.3's glyphicon CSS and fonts alone.
    "https://netdna.bootstrapcdn.com/bootstrap/3.0.0/css/bootstrap-glyphicons.css":
        (_npm("glyphicons-only-bootstrap", "css/bootstrap.min.css"),),
    # Font Awesome 6 as folium links it, plus its v4 shims: our category icons use Font Awesome 4
    # names (lightbulb-o, ...), which the shims map onto FA6 glyphs.
    "https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@6.2.0/css/all.min.css":
        (_npm("@fortawesome/fontawesome-free", "css/all.min.css"),
         _npm("@fortawesome/fontawesome-free", "css/v4-shims.min.css")),
    "https://cdnjs.cloudflare.com/ajax/libs/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.css":
        (_npm("leaflet.awesome-markers", "dist/leaflet.awesome-markers.css"),),
    # folium's own stylesheet (the icon rotation classes) is on no registry: maps/static has it.
    "https://cdn.jsdelivr.net/gh/python-visualization/folium/folium/templates/leaflet.awesome.rotate.min.css":
        (_own("leaflet.awesome.rotate.css"),),
    # plugins.HeatMap: folium links its own build of Leaflet.heat; npm's 0.2.0 release sums
    # weights per screen cell up to the layer's `max` option, which maps/heatmap.py sets.
    "https://cdn.jsdelivr.net/gh/python-visualization/folium@main/folium/templates/leaflet_heat.min.js":
        (_npm("leaflet.heat", "dist/leaflet-heat.js"),),
    # plugins.HeatMapWithTime: heatmap.js 2.0.5 and its Leaflet overlay (folium's pa7_* copies
    # are these files minified), leaflet-timedimension and the ISO 8601 period parser.
    "https://cdn.jsdelivr.net/npm/iso8601-js-period@0.2.1/iso8601.min.js":
        (_npm("iso8601-js-period", "iso8601.js"),),
    "https://cdn.jsdelivr.net/npm/leaflet-timedimension@1.1.1/dist/leaflet.timedimension.min.js":
        (_npm("leaflet-timedimension", "dist/leaflet.timedimension.min.js"),),
    "https://cdn.jsdelivr.net/gh/python-visualization/folium/folium/templates/pa7_hm.min.js":
        (_npm("heatmap.js", "build/heatmap.min.js"),),
    "https://cdn.jsdelivr.net/gh/python-visualization/folium/folium/templates/pa7_leaflet_hm.min.js":
        (_npm("leaflet-heatmap", "leaflet-heatmap.js"),),
    # Its control CSS loads the glyphicons font from netdna.bootstrapcdn.com: served patched.
    "https://cdn.jsdelivr.net/npm/leaflet-timedimension@1.1.1/dist/leaflet.timedimension.control.css":
        (f"{PATCHED_URL}/leaflet-timedimension/dist/leaflet.timedimension.control.css",),
    # plugins.MarkerCluster: cdnjs 1.1.0 predates Leaflet 1.9; 1.5.3 is the release made for it.
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/leaflet.markercluster.js":
        (_npm("leaflet.markercluster", "dist/leaflet.markercluster.js"),),
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/MarkerCluster.css":
        (_npm("leaflet.markercluster", "dist/MarkerCluster.css"),),
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/MarkerCluster.Default.css":
        (_npm("leaflet.markercluster", "dist/MarkerCluster.Default.css"),),
    # plugins.Fullscreen (npm 3.0.0 ships the unminified file only)
    "https://cdn.jsdelivr.net/npm/leaflet.fullscreen@3.0.0/Control.FullScreen.min.js":
        (_npm("leaflet.fullscreen", "Control.FullScreen.js"),),
    "https://cdn.jsdelivr.net/npm/leaflet.fullscreen@3.0.0/Control.FullScreen.css":
        (_npm("leaflet.fullscreen", "Control.FullScreen.css"),),
    # plugins.LocateControl
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet-locatecontrol/0.66.2/L.Control.Locate.min.js":
        (_npm("leaflet.locatecontrol", "dist/L.Control.Locate.min.js"),),
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet-locatecontrol/0.66.2/L.Control.Locate.min.css":
        (_npm("leaflet.locatecontrol", "dist/L.Control.Locate.min.css"),),
}

# npm files that themselves reach for a CDN, served with these replacements (old, new) applied.
PATCHES: dict[str, tuple[tuple[str, str], ...]] = {
    "leaflet-timedimension/dist/leaflet.timedimension.control.css": (
        ("//netdna.bootstrapcdn.com/bootstrap/3.0.0/fonts/",
         f"{NPM_URL}/glyphicons-only-bootstrap/fonts/"),
    ),
}

# Our own assets every GridMap page loads after folium's (touch sizes, legend, side panel).
PAGE_CSS = (_own("gridmap.css"),)
PAGE_JS = (_own("gridmap.js"),)
# Loaded by the issue action page only (log-in and the workflow buttons).
ISSUE_PAGE_JS = (_own("issue.js"),)
# The leaders' dashboard (/dash, no Folium): ECharts' build of lines and bars ("common": 650 KB
# against 1 MB for every chart type), Leaflet and Leaflet.heat for its small heat map, and our
# own script and styles.
DASH_CSS = (_npm("leaflet", "dist/leaflet.css"), _own("dash.css"))
DASH_JS = (_npm("echarts", "dist/echarts.common.min.js"), _npm("leaflet", "dist/leaflet.js"),
           _npm("leaflet.heat", "dist/leaflet-heat.js"), _own("dash.js"))


class UnmappedAsset(RuntimeError):
    """A Folium element links to a CDN URL that has no local copy in CDN_TO_LOCAL."""


def _walk(element: Element) -> Iterator[Element]:
    yield element
    for child in list(element._children.values()):
        yield from _walk(child)


def _local_links(links, owner: Element) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, url in links:
        if url.startswith(STATIC_URL + "/"):
            out.append((name, url))
            continue
        if url not in CDN_TO_LOCAL:
            raise UnmappedAsset(f"{type(owner).__name__} links to {url!r}, which has no local "
                                "copy; add it to maps.assets.CDN_TO_LOCAL and package.json")
        for i, local in enumerate(CDN_TO_LOCAL[url]):
            out.append((name if i == 0 else f"{name}~{i}", local))
    return out


def localize(root: Element) -> Element:
    """Point every asset link under ``root`` (a Figure or a Map) to ``/static/``.

    Sets instance attributes, shadowing the class lists, so other maps keep folium's defaults.
    """
    for element in _walk(root):
        for attr in ("default_js", "default_css"):
            links = getattr(element, attr, None)
            if links:
                setattr(element, attr, _local_links(links, element))
    return root


_LINK = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)\s*=\s*["']([^"']+)["']""", re.I)


def external_links(html: str) -> list[str]:
    """URLs of <script src> and <link href> in ``html`` that leave the server (absolute URLs,
    protocol-relative ones included)."""
    return [u for u in _LINK.findall(html) if re.match(r"^(?:[a-z][a-z0-9+.-]*:)?//", u, re.I)]


def render_page(root: Element) -> str:
    """Localize and render ``root``'s figure; raise UnmappedAsset if a CDN link remains."""
    figure = root.get_root()
    if not isinstance(figure, Figure):
        raise TypeError(f"'root' should be inside a branca Figure, got {type(figure)}")
    localize(figure)
    with literal_elements():
        html = figure.render()
    leaks = external_links(html)
    if leaks:
        raise UnmappedAsset(f"the page still links outside the server: {leaks}")
    return html


# -- what the server mounts -----------------------------------------------------------------------
def pinned_packages() -> dict[str, str]:
    """package -> exact version, from the repository's package.json."""
    manifest = json.loads((REPO_ROOT / "package.json").read_text(encoding="utf-8"))
    return dict(manifest["dependencies"])


def static_mounts(node_modules: Path) -> list[tuple[str, Path]]:
    """(URL prefix, directory) pairs to serve: one per pinned npm package, and our own files.
    Only the pinned packages are exposed, not the whole of node_modules."""
    mounts = [(f"{NPM_URL}/{name}", Path(node_modules) / name) for name in pinned_packages()]
    return [*mounts, (OWN_URL, OWN_STATIC_DIR)]


def missing_assets(node_modules: Path) -> list[str]:
    """Local files the pages need that are absent from ``node_modules`` (or our own files), or
    packages at another version than pinned: empty when ``npm ci`` has run on the current
    package-lock.json."""
    root = Path(node_modules)
    problems = []
    for name, version in pinned_packages().items():
        manifest = root / name / "package.json"
        if not manifest.exists():
            problems.append(f"{name}@{version} is not installed")
            continue
        found = json.loads(manifest.read_text(encoding="utf-8")).get("version")
        if found != version:
            problems.append(f"{name} is {found}, package.json pins {version}")
    own = set(PAGE_CSS + PAGE_JS + ISSUE_PAGE_JS + DASH_CSS + DASH_JS)
    for url in {u for urls in CDN_TO_LOCAL.values() for u in urls} | own:
        path = local_path(url, root)
        if path is None or not path.is_file():
            problems.append(f"{url} has no file")
    return sorted(problems)


def patched_file(path: str, node_modules: Path) -> str:
    """The text of the npm file ``path`` (package/file) in ``node_modules`` with its PATCHES
    applied; raises KeyError for a path that is not patched."""
    replacements = PATCHES[path]
    text = (Path(node_modules) / path).read_text(encoding="utf-8")
    for old, new in replacements:
        if old not in text:
            raise UnmappedAsset(f"{path} no longer contains {old!r}: review maps.assets.PATCHES")
        text = text.replace(old, new)
    return text


def local_path(url: str, node_modules: Path) -> Path | None:
    """The file a /static URL is served from, or None if no mount covers it."""
    if url.startswith(PATCHED_URL + "/"):
        return Path(node_modules) / url[len(PATCHED_URL) + 1:]
    for prefix, directory in static_mounts(node_modules):
        if url.startswith(prefix + "/"):
            return directory / url[len(prefix) + 1:]
    return None
