"""Domain errors. The API maps each error's ``code`` to an HTTP status in one table (api/errors.py).

Messages are written for the person who sent the data: they say what was expected and what came.
The message is English; an error a worker's tablet or a clerk actually meets also carries the same
explanation in Chinese (``zh=``), which a Chinese-speaking caller gets instead. Without ``zh`` the
caller gets the Chinese message of the error's kind (the table in api/errors.py).
"""

from __future__ import annotations


class GridMapError(Exception):
    """Base class of every error GridMap raises on purpose. ``zh`` is the same message in
    Chinese, for Chinese callers; without it they get the error's general Chinese message."""

    code = "error"

    def __init__(self, message: str = "", *, zh: str | None = None):
        super().__init__(message)
        self.zh = zh


class NotFound(GridMapError):
    code = "not_found"


class InvalidCoordinates(GridMapError):
    code = "invalid_coordinates"


class UnknownCRS(GridMapError):
    code = "unknown_crs"


class InvalidGeometry(GridMapError):
    code = "invalid_geometry"


class UnknownCategory(GridMapError):
    code = "unknown_category"


class InvalidParameter(GridMapError):
    """A query parameter that is well-formed but cannot be meant (since after until, an unknown
    status)."""

    code = "invalid_parameter"


class IllegalTransition(GridMapError):
    """A move or action the case's status does not allow; ``allowed`` says what it does allow
    (``{"to": [statuses], "actions": [actions]}``, gis.issues.actions), for the 409's body."""

    code = "illegal_transition"

    def __init__(self, message: str = "", *, zh: str | None = None, allowed: dict | None = None):
        super().__init__(message, zh=zh)
        self.allowed = allowed


class Conflict(GridMapError):
    code = "conflict"


class ImportFailed(GridMapError):
    """A file could not be imported; ``rows`` lists (row number, reason) for each bad row."""

    code = "import_failed"

    def __init__(self, message: str, rows: list[tuple[int, str]] | None = None, *,
                 zh: str | None = None):
        super().__init__(message, zh=zh)
        self.rows = rows or []


class DatabaseUnavailable(GridMapError):
    """PostgreSQL cannot be reached or dropped the connection (raised by the engine, see
    ``gis.db.engine``); the message holds the driver's reason, for the log."""

    code = "database_unavailable"


class SetupError(GridMapError):
    """The machine lacks something GridMap needs (binaries, permissions); the message says what."""

    code = "setup_error"


class Forbidden(GridMapError):
    """The actor is known but may not do this (a worker outside their grids, a non-admin...)."""

    code = "forbidden"


class Unauthorized(GridMapError):
    """The caller is not (or no longer) logged in: no session, an expired or revoked one."""

    code = "unauthorized"


class AccountLocked(GridMapError):
    """Too many failed log-ins for a username: refused, even with the right password, until
    ``until`` (an aware datetime)."""

    code = "account_locked"

    def __init__(self, message: str, until, *, zh: str | None = None):
        super().__init__(message, zh=zh)
        self.until = until


class PasswordChangeRequired(GridMapError):
    """The caller logged in with an initial password and must set their own before anything else."""

    code = "password_change_required"


class WeakPassword(GridMapError):
    code = "weak_password"


class InvalidPhoto(GridMapError):
    """An upload that is not a photo GridMap takes: not an image, a format other than JPEG, PNG
    or WebP, damaged, or more pixels than allowed (a decompression bomb)."""

    code = "invalid_photo"


class PhotoTooLarge(GridMapError):
    """A photo file larger than the limit (GRIDMAP_MEDIA_MAX_BYTES)."""

    code = "payload_too_large"


class LocationRequired(GridMapError):
    """A report sent without coordinates (``location_from_photo``) still has no location, and the
    photo sent for it carries no GPS position."""

    code = "location_required"


class ReasonRequired(GridMapError):
    """An action on site that needs a reason came without one (a report verified as not valid)."""

    code = "reason_required"


class PhotoRequired(GridMapError):
    """An action on site that needs photos of the case came before they were uploaded (自处理:
    a photo before and a photo after the fix)."""

    code = "photo_required"


class AfterPhotoRequired(PhotoRequired):
    """A failed check on site (核查不通过) needs a photo taken after the fix, uploaded since the
    case was last reported as resolved."""

    code = "after_photo_required"
