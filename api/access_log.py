"""The access log as `gridmap serve` writes it: uvicorn's lines, at a fraction of their cost.

uvicorn logs one line per request (``uvicorn.access``), formatted by its ``AccessFormatter``
(a copy of each record, the status phrase looked up, colour codes considered) and written by a
``StreamHandler`` that flushes the stream after every line: a write system call per request.
Under the intake's load that was 6.8% of a server process's sampled time (bench/README.md,
"Eleventh pass"). Here the same line, character for character (without colours: the log of a
service goes to a file or a journal), is made directly from the record's arguments, and the
lines of one turn of the event loop are written together at its end, as the answers are
(:mod:`api.http_protocol`). The logger stays uvicorn's: ``--no-access-log``, levels and a log
configuration of the operator's own work as before.
"""

from __future__ import annotations

import asyncio
import copy
import http
import logging

from uvicorn.config import LOGGING_CONFIG
from uvicorn.logging import AccessFormatter

# The message uvicorn's HTTP protocols log for each response (client, method, path with the
# query, HTTP version, status).
ACCESS_MESSAGE = '%s - "%s %s HTTP/%s" %d'
_PHRASES = {s.value: s.phrase for s in http.HTTPStatus}


class AccessLineFormatter(logging.Formatter):
    """uvicorn's access line without colours (``INFO:     127.0.0.1:50000 - "POST /api/v1/issues
    HTTP/1.1" 201 Created``), built in one step; any other record is uvicorn's
    ``AccessFormatter``'s to format."""

    def __init__(self) -> None:
        super().__init__()
        self._uvicorn = AccessFormatter(LOGGING_CONFIG["formatters"]["access"]["fmt"],
                                        use_colors=False)

    def format(self, record: logging.LogRecord) -> str:
        args = record.args
        if record.msg != ACCESS_MESSAGE or not isinstance(args, tuple) or len(args) != 5 \
                or record.exc_info or record.stack_info:
            return self._uvicorn.format(record)
        client, method, path, version, status = args
        status = int(status)
        level = record.levelname
        return (f'{level}:{" " * (8 - len(level))} {client} - "{method} {path} HTTP/{version}" '
                f'{status} {_PHRASES.get(status, "")}')


class TurnBufferedHandler(logging.StreamHandler):
    """A stream handler whose lines logged in one turn of the running event loop are written
    (and the stream flushed) once, at the end of that turn. A line logged where no event loop
    runs (another thread, start-up, shutdown) is written at once, after those waiting; closing
    or flushing the handler writes what waits."""

    def __init__(self, stream=None) -> None:
        super().__init__(stream)
        self._pending: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._pending.append(self.format(record) + self.terminator)
        except Exception:  # noqa: BLE001  logging's own rule: a bad record never stops the caller
            self.handleError(record)
            return
        if len(self._pending) > 1:
            return  # the end of this turn is planned already
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write_pending(record)
            return
        loop.call_soon(self._write_pending, record)

    def _write_pending(self, record: logging.LogRecord | None = None) -> None:
        with self.lock:
            if not self._pending:
                return
            lines, self._pending = "".join(self._pending), []
            try:
                self.stream.write(lines)
                self.stream.flush()
            except Exception:  # noqa: BLE001  as StreamHandler: reported, never raised
                self.handleError(record or logging.makeLogRecord({"msg": lines}))

    def flush(self) -> None:
        self._write_pending()
        super().flush()

    def close(self) -> None:
        self._write_pending()
        super().close()


def log_config() -> dict:
    """uvicorn's logging configuration with its access log written as above (``uvicorn.run(
    log_config=...)``)."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["access"] = {"()": f"{__name__}.AccessLineFormatter"}
    config["handlers"]["access"] = {"formatter": "access", "()": f"{__name__}.TurnBufferedHandler",
                                    "stream": "ext://sys.stdout"}
    return config
