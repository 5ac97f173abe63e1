"""The grid worker's app at /app/: its shell, its service worker, and the settings it runs with.

The shell is public and the same for everyone (it holds no case data), so that the service
worker can keep it and the app opens with no network; what the worker may see comes from the
API, behind the log-in, and the app keeps it in IndexedDB. The files are ``maps.field_app``'s."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from gis.errors import SetupError
from gis.issues.duplicates import DUPLICATE_RADIUS_M
from gis.issues.reporting import FACILITY_LINK_M
from gis.media.photos import MAX_SIDE
from gis.rules import FACILITY_STATUSES, PHOTO_KIND_NAMES, STATUS_NAMES
from maps import field_app

router = APIRouter(include_in_schema=False)
# The shell and the service worker are checked on every visit (and then served from the cache
# when nothing changed); a stale service worker would keep a stale app for a day.
REVALIDATE = {"Cache-Control": "no-cache"}
# The app runs only its own files: no inline or foreign script can run in a page that holds a
# worker's cases. Styles may be inline (Leaflet positions its layers with style attributes);
# photos shown before sending are blob: URLs.
SHELL_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                "img-src 'self' blob: data:; font-src 'self'; connect-src 'self'; "
                "worker-src 'self'; manifest-src 'self'; object-src 'none'; base-uri 'none'; "
                "frame-ancestors 'none'; form-action 'self'")


class AppConfig(BaseModel):
    """The rules the app applies on the tablet before the server decides (the same values)."""

    tolerance_m: float
    facility_link_m: float
    duplicate_radius_m: float
    photo_max_side: int
    photo_max_bytes: int
    photos_per_report: tuple[int, int]
    gps_poor_accuracy_m: float
    statuses: dict[str, tuple[str, str]]
    photo_kinds: dict[str, tuple[str, str]]
    facility_statuses: tuple[str, ...]


@router.get("/app")
def app_root() -> RedirectResponse:
    return RedirectResponse(f"{field_app.APP_URL}/", status_code=308)


@router.get("/app/")
def shell() -> FileResponse:
    return FileResponse(field_app.APP_DIR / "index.html", media_type="text/html; charset=utf-8",
                        headers=REVALIDATE | {"Content-Security-Policy": SHELL_POLICY,
                                              "X-Content-Type-Options": "nosniff"})


@router.get("/app/sw.js")
def service_worker(request: Request) -> Response:
    node_modules = request.app.state.settings.maps.node_modules
    missing = field_app.missing_files(node_modules)
    if missing:
        raise SetupError(f"the app's files are not installed ({missing[0]}, ...): run `make assets`")
    script = field_app.service_worker(node_modules)
    return Response(script, media_type="application/javascript; charset=utf-8",
                    headers=REVALIDATE | {"Service-Worker-Allowed": f"{field_app.APP_URL}/"})


@router.get("/app/config.json")
def config(request: Request) -> AppConfig:
    settings = request.app.state.settings
    return AppConfig(
        tolerance_m=settings.assign_tolerance_m, facility_link_m=FACILITY_LINK_M,
        duplicate_radius_m=DUPLICATE_RADIUS_M, photo_max_side=MAX_SIDE,
        photo_max_bytes=settings.media.max_bytes, photos_per_report=field_app.PHOTOS_PER_REPORT,
        gps_poor_accuracy_m=field_app.GPS_POOR_ACCURACY_M, statuses=STATUS_NAMES,
        photo_kinds=PHOTO_KIND_NAMES, facility_statuses=FACILITY_STATUSES)


def install(app: FastAPI) -> None:
    """The routes above, then the rest of the app's files (CSS, modules, icons, manifest)."""
    app.include_router(router)
    app.mount(field_app.APP_URL, StaticFiles(directory=field_app.APP_DIR), name="field-app")
