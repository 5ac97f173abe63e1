"""api.access_log: the access line `gridmap serve` writes is uvicorn's, character for character;
the lines of one turn of the event loop leave as one write, and none is lost (outside a loop, at
close, under the configuration `gridmap serve` gives uvicorn)."""

from __future__ import annotations

import asyncio
import logging
import logging.config

from hypothesis import given
from hypothesis import strategies as st
from uvicorn.config import LOGGING_CONFIG
from uvicorn.logging import AccessFormatter

from api.access_log import ACCESS_MESSAGE, AccessLineFormatter, TurnBufferedHandler, log_config

UVICORN = AccessFormatter(LOGGING_CONFIG["formatters"]["access"]["fmt"], use_colors=False)


def _record(args, level=logging.INFO, msg=ACCESS_MESSAGE) -> logging.LogRecord:
    return logging.LogRecord("uvicorn.access", level, __file__, 1, msg, args, None)


@given(client=st.text(max_size=30), method=st.sampled_from(["GET", "POST", "PATCH", "DELETE"]),
       path=st.text(max_size=40), version=st.sampled_from(["1.0", "1.1", "2"]),
       status=st.integers(100, 599),
       level=st.sampled_from([logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR]))
def test_the_line_is_uvicorns(client, method, path, version, status, level):
    record = _record((client, method, path, version, status), level)
    assert AccessLineFormatter().format(record) == UVICORN.format(_record(
        (client, method, path, version, status), level))


def test_other_records_are_formatted_by_uvicorn():
    record = _record(("127.0.0.1:1", "GET", "/", "1.1", 200), msg='%s - "%s %s HTTP/%s" %d ')
    assert AccessLineFormatter().format(record) == UVICORN.format(record)


class CountingStream:
    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> None:
        self.writes.append(text)

    def flush(self) -> None:
        pass


def _handler() -> tuple[TurnBufferedHandler, CountingStream]:
    stream = CountingStream()
    handler = TurnBufferedHandler(stream)
    handler.setFormatter(AccessLineFormatter())
    return handler, stream


def test_the_lines_of_one_turn_leave_as_one_write():
    handler, stream = _handler()
    lines = [_record(("127.0.0.1:5000", "POST", "/api/v1/issues", "1.1", 201))] * 3

    async def main():
        for record in lines:
            handler.handle(record)
        assert stream.writes == []  # held until the turn ends
        await asyncio.sleep(0)
        assert len(stream.writes) == 1
        handler.handle(lines[0])
        await asyncio.sleep(0)

    asyncio.run(main())
    expected = 'INFO:     127.0.0.1:5000 - "POST /api/v1/issues HTTP/1.1" 201 Created\n'
    assert stream.writes == [expected * 3, expected]


def test_outside_a_loop_a_line_is_written_at_once_and_close_writes_what_waits():
    handler, stream = _handler()
    handler.handle(_record(("a", "GET", "/", "1.1", 404)))
    assert stream.writes == ['INFO:     a - "GET / HTTP/1.1" 404 Not Found\n']

    async def main():
        handler.handle(_record(("b", "GET", "/x", "1.1", 599)))
        handler.close()  # the loop's turn never ends for it: shutdown
        assert stream.writes[-1] == 'INFO:     b - "GET /x HTTP/1.1" 599 \n'

    asyncio.run(main())
    assert len(stream.writes) == 2


def test_gridmap_serves_configuration_writes_the_access_log_to_stdout(capfd):
    loggers = [logging.getLogger(n) for n in ("uvicorn", "uvicorn.error", "uvicorn.access")]
    saved = [(lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    access = loggers[-1]
    try:
        logging.config.dictConfig(log_config())
        (handler,) = access.handlers
        assert isinstance(handler, TurnBufferedHandler)

        async def main():
            access.info(ACCESS_MESSAGE, "10.0.0.1:9", "GET", "/health", "1.1", 200)

        asyncio.run(main())
        assert capfd.readouterr().out == 'INFO:     10.0.0.1:9 - "GET /health HTTP/1.1" 200 OK\n'
    finally:
        for lg, (handlers, level, propagate) in zip(loggers, saved, strict=True):
            for h in lg.handlers:
                if h not in handlers:
                    h.close()
            lg.handlers[:], lg.level, lg.propagate = handlers, level, propagate
