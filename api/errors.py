"""Errors -> HTTP status and message, in one table. Clients get {"detail", "code"}.

Every handler, GridMap's own JSON and the standards' formats (OGC API, Open311) alike, takes the
status from :func:`status_for` and the words from :func:`message_for`. ``ERRORS`` holds, per
machine-readable ``code``, the status and a safe message in English and in Chinese; a domain
error's own message (and its ``zh=`` text) is more specific and wins for 4xx. 5xx are logged with
the internal detail (personal data masked); the client gets the table's safe message only.
"""

from __future__ import annotations

import logging
import re
import traceback
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException

from api.i18n import Language, preferred_language, validation_message
from gis import errors
from gis.people.privacy import redact

log = logging.getLogger("gridmap.api")


@dataclass(frozen=True)
class ErrorKind:
    status: int
    en: str
    zh: str


ERRORS: dict[str, ErrorKind] = {
    # 4xx: the caller can fix it
    "error": ErrorKind(400, "The request cannot be served.", "请求无法处理。"),
    "bad_request": ErrorKind(400, "The request is malformed.", "请求格式有误。"),
    "unauthorized": ErrorKind(401, "Log in first.", "请先登录。"),
    "password_change_required": ErrorKind(403, "Set your own password first (POST /api/v1/me/password).",
                                          "请先修改初始密码（POST /api/v1/me/password）。"),
    "csrf_failed": ErrorKind(403, "The form is stale or was not sent by GridMap's page; reload it.",
                             "表单已过期或并非来自本系统页面，请刷新后重试。"),
    "forbidden": ErrorKind(403, "You may not do this.", "您没有权限执行此操作。"),
    "not_found": ErrorKind(404, "Not found.", "未找到所请求的对象。"),
    "method_not_allowed": ErrorKind(405, "This method is not allowed here.", "此地址不支持该请求方法。"),
    "illegal_transition": ErrorKind(409, "The issue cannot move to that status from its current one.",
                                    "事件无法从当前状态转到该状态。"),
    "conflict": ErrorKind(409, "The request conflicts with the stored data.", "请求与已保存的数据冲突。"),
    "payload_too_large": ErrorKind(413, "The request body is too large.", "请求内容过大。"),
    "unsupported_media_type": ErrorKind(415, "The request body's type is not supported.",
                                        "不支持该请求内容类型。"),
    "invalid_parameter": ErrorKind(422, "A parameter is invalid.", "参数无效。"),
    "invalid_coordinates": ErrorKind(422, "The coordinates are invalid.", "坐标无效。"),
    "unknown_crs": ErrorKind(422, "The coordinate system is unknown.", "无法识别的坐标系。"),
    "invalid_geometry": ErrorKind(422, "The geometry is invalid.", "几何图形无效。"),
    "unknown_category": ErrorKind(422, "The category is unknown.", "无法识别的类别。"),
    "import_failed": ErrorKind(422, "The file cannot be imported.", "文件无法导入。"),
    "validation_error": ErrorKind(422, "The request is invalid.", "请求内容有误。"),
    "invalid_photo": ErrorKind(422, "The file is not a photo that can be taken (JPEG, PNG or WebP).",
                               "该文件不是可接受的照片（JPEG、PNG 或 WebP）。"),
    "location_required": ErrorKind(422, "The report still needs a location.", "该上报仍缺少位置。"),
    "reason_required": ErrorKind(422, "A reason is required.", "须填写原因。"),
    "photo_required": ErrorKind(422, "Upload the photos this needs first.", "请先上传所需的照片。"),
    "after_photo_required": ErrorKind(422, "A failed check needs a photo after the fix.",
                                      "核查不通过须上传处置后照片"),
    "weak_password": ErrorKind(422, "The password does not meet the password policy.", "密码不符合密码策略。"),
    "account_locked": ErrorKind(423, "The account is locked after repeated failed log-ins; try later.",
                                "多次登录失败，账号已被暂时锁定，请稍后再试。"),
    "too_many_requests": ErrorKind(429, "Too many requests; try again later.", "请求过于频繁，请稍后再试。"),
    # 5xx: ours; the client never sees the detail
    "internal_error": ErrorKind(500, "Internal server error.", "服务器内部错误。"),
    "database_unavailable": ErrorKind(503, "The database is unavailable; try again shortly.",
                                      "数据库暂时无法访问，请稍后再试。"),
    "setup_error": ErrorKind(503, "The service is not fully set up; the administrator has been told.",
                             "服务尚未配置完整，请联系管理员。"),
}
# The code of an HTTPException raised by FastAPI, Starlette or api/ itself, by status.
HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
              415: "unsupported_media_type", 422: "validation_error", 423: "account_locked",
              429: "too_many_requests",
              500: "internal_error", 503: "database_unavailable"}
NUL_CHARACTER = ErrorKind(422, "text may not contain the NUL character (U+0000, %00)",
                          "文本中不能含有 NUL 字符（U+0000、%00）")
RETRY_AFTER_S = 5


class LocalizedHTTPException(HTTPException):
    """An HTTP error raised in api/ itself (log-in, tokens, limits), worded in both languages."""

    def __init__(self, status_code: int, detail: str, *, zh: str,
                 headers: dict[str, str] | None = None):
        super().__init__(status_code, detail, headers)
        self.zh = zh


# -- what an exception means ------------------------------------------------------------------------
def code_for(exc: BaseException) -> str:
    """The machine-readable code, the same in every language and format."""
    if isinstance(exc, errors.GridMapError):
        return next((c.code for c in type(exc).__mro__ if getattr(c, "code", None) in ERRORS), "error")
    if isinstance(exc, HTTPException):
        return HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    if isinstance(exc, RequestValidationError) or _is_nul_error(exc):
        return "validation_error"
    if isinstance(exc, OperationalError | InterfaceError):
        return "database_unavailable"  # the backstop; gis.db.engine raises DatabaseUnavailable
    return "internal_error"


def status_for(exc: BaseException) -> int:
    """The HTTP status of any exception: the one number every handler answers with."""
    if isinstance(exc, HTTPException):
        return exc.status_code
    return ERRORS[code_for(exc)].status


def message_for(exc: BaseException, lang: Language) -> str:
    """Words for the client in ``lang``: specific for 4xx, the table's safe message for 5xx."""
    kind = ERRORS.get(code_for(exc))
    if status_for(exc) >= 500:
        return _in(lang, kind or ERRORS["internal_error"])
    if isinstance(exc, RequestValidationError):
        return ("；" if lang == "zh" else "; ").join(validation_problems(exc, lang))
    if _is_nul_error(exc):
        return _in(lang, NUL_CHARACTER)
    own = getattr(exc, "zh", None) if lang == "zh" else _english(exc)
    return own or (_in(lang, kind) if kind else _english(exc))


def _english(exc: BaseException) -> str:
    return str(exc.detail if isinstance(exc, HTTPException) else exc)


def _in(lang: Language, kind: ErrorKind) -> str:
    return kind.zh if lang == "zh" else kind.en


def validation_problems(exc: RequestValidationError, lang: Language) -> list[str]:
    """One sentence per problem, each naming where it is (``lon: ...``)."""
    return [f"{where(err)}: {validation_message(err, lang)}" for err in exc.errors()]


def where(err: dict) -> str:
    # Drop "body" and the tags of a discriminated body ("plain", "feature"...) from the path.
    return ".".join(str(p) for p in err.get("loc", ())
                    if p not in ("body", "plain", "from_photo", "feature")) or "request"


def _is_nul_error(exc: BaseException) -> bool:
    """A value PostgreSQL cannot store that a client can send on purpose: text with a NUL
    character (U+0000), which PostgreSQL text never holds. Any other DataError is our bug."""
    return isinstance(exc, DataError) and "NUL" in str(exc.orig)


def request_language(request: Request) -> Language:
    return preferred_language(request.headers.get("accept-language"))


# -- logging without personal data ---------------------------------------------------------------
# Besides mobile and ID-card numbers (gis.people.privacy, the one definition): e-mail addresses
# and landline numbers, which a log line may carry but free text shown to users keeps.
_PERSONAL = [
    (re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+"), "<email>"),
    (re.compile(r"(?<!\d)0\d{2,3}-?\d{7,8}(?!\d)"), "<phone>"),
]


def loggable(text: str) -> str:
    """``text`` with e-mail addresses, mobile and landline numbers and ID-card numbers masked."""
    text = redact(text)
    for pattern, mask in _PERSONAL:
        text = pattern.sub(mask, text)
    return text


def log_failure(request: Request, exc: BaseException) -> None:
    """The internal detail of a 5xx, for the operator (never sent to the client)."""
    log.error("%s %s failed (%s): %s", request.method, request.url.path, code_for(exc),
              loggable(internal_detail(exc)))


def internal_detail(exc: BaseException) -> str:
    """What went wrong, for the log: a domain error's message; a database error's class, SQLSTATE,
    message and statement, values left out; anything else with its traceback."""
    if isinstance(exc, DBAPIError):
        return _database_detail(exc) + "\n" + "".join(traceback.format_tb(exc.__traceback__))
    if isinstance(exc, errors.GridMapError | HTTPException):
        return f"{type(exc).__name__}: {exc}"
    return "".join(traceback.format_exception(exc))


def _database_detail(exc: DBAPIError) -> str:
    """PostgreSQL quotes the offending value in its message ('invalid input syntax for type
    integer: "..."'): a quoted text that is not part of the statement is replaced."""
    statement = exc.statement or ""
    diag = getattr(exc.orig, "diag", None)
    primary = getattr(diag, "message_primary", None) or str(exc.orig).split("\n", 1)[0]
    primary = re.sub(r'"([^"]*)"|\'([^\']*)\'',
                     lambda m: m[0] if (m[1] or m[2] or "") in statement else "<value>", primary)
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return f"{type(exc.orig).__name__} (SQLSTATE {sqlstate}): {primary} [SQL: {statement}]"


# -- GridMap's own JSON errors ----------------------------------------------------------------------
def language_headers(lang: Language) -> dict[str, str]:
    return {"Content-Language": "zh-CN" if lang == "zh" else "en", "Vary": "Accept-Language"}


def error_response(request: Request, exc: BaseException, *, logged: bool = False) -> JSONResponse:
    """Any exception as GridMap's JSON error, in the caller's language (5xx logged here unless
    ``logged``)."""
    status, lang = status_for(exc), request_language(request)
    if status >= 500 and not logged:
        log_failure(request, exc)
    body = {"detail": message_for(exc, lang), "code": code_for(exc)}
    if isinstance(exc, RequestValidationError):
        body["errors"] = jsonable(exc.errors(), lang)
    if getattr(exc, "allowed", None) is not None:  # a refused move names the legal ones
        body["allowed"] = exc.allowed
    headers = language_headers(lang) | dict(getattr(exc, "headers", None) or {})
    if code_for(exc) == "database_unavailable":
        headers.setdefault("Retry-After", str(RETRY_AFTER_S))
    return JSONResponse(body, status_code=status, headers=headers)


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    return error_response(request, exc)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Starlette sends this answer, then re-raises: the server logs the traceback itself.
    return error_response(request, exc, logged=True)


def jsonable(problems: list[dict], lang: Language = "en") -> list[dict]:
    """Validation problems as JSON: ``loc`` and ``type`` as pydantic has them, ``msg`` in ``lang``."""
    return [{k: (v if isinstance(v, str | int | float | list | tuple | None) else str(v))
             for k, v in (e | {"msg": validation_message(e, lang)}).items()
             if k != "ctx" and k != "input"} for e in problems]


def add_exception_handlers(app: FastAPI) -> None:
    for kind in (HTTPException, RequestValidationError, errors.GridMapError, DBAPIError):
        app.add_exception_handler(kind, _handle)
    # Anything else is a bug: Starlette answers with this and re-raises, so the server logs it.
    app.add_exception_handler(Exception, _unexpected)
    _document_errors(app)


# What a 422 holds, as the OpenAPI document declares it for every operation: GridMap's error body
# (:func:`error_response`), with ``errors`` when the request failed validation, not FastAPI's own.
VALIDATION_ERROR_SCHEMA = {
    "title": "ErrorPublic",
    "type": "object",
    "required": ["detail", "code"],
    "properties": {
        "detail": {"type": "string", "description": "What is wrong, in the caller's language"},
        "code": {"type": "string", "description": "validation_error, or the domain error's code"},
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"},
                   "description": "Each problem of a request that failed validation"},
    },
}


def _document_errors(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = generate()
            schemas = schema.get("components", {}).get("schemas", {})
            if "HTTPValidationError" in schemas:
                schemas["HTTPValidationError"] = VALIDATION_ERROR_SCHEMA
        return app.openapi_schema

    app.openapi = openapi
