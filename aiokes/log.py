"""The error log (the ``aiokes.error`` logger) and the live streams behind ``/v1/log/*``.

The audit log is :mod:`aiokes.audit`. Nothing here ever receives key material.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable
from typing import TextIO

__all__ = ["LogStream", "configure_logging", "error_logger"]

error_logger = logging.getLogger("aiokes.error")

_SUBSCRIBER_BACKLOG = 1024


class LogStream:
    """Fans events out to live subscribers (the ``/v1/log/*`` streams).

    A slow subscriber loses events rather than slowing requests down: each has a bounded
    queue, and a full queue drops the newest event.
    """

    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[bytes | None]] = set()

    @property
    def active(self) -> bool:
        return bool(self._subscribers)

    def publish(self, event: bytes) -> None:
        """Send one ndjson line (ending in a newline) to every subscriber."""
        for queue in self._subscribers:
            with contextlib.suppress(asyncio.QueueFull):  # a slow subscriber loses events
                queue.put_nowait(event)

    def close(self) -> None:
        """End every subscription (server shutdown), so streaming responses finish."""
        for queue in self._subscribers:
            while True:
                try:
                    queue.put_nowait(None)
                    break
                except asyncio.QueueFull:
                    queue.get_nowait()  # make room: the end matters more than old events

    async def subscribe(self) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(_SUBSCRIBER_BACKLOG)
        self._subscribers.add(queue)
        try:
            while (event := await queue.get()) is not None:
                yield event
        finally:
            self._subscribers.discard(queue)


class _StreamHandler(logging.Handler):
    """Forwards error-log records to the ``/v1/log/error`` subscribers as ``{"message": …}``,
    counting each (``kes_log_error_events``)."""

    def __init__(self, stream: LogStream, count: Callable[[], None]) -> None:
        super().__init__()
        self._stream = stream
        self._count = count

    def emit(self, record: logging.LogRecord) -> None:
        self._count()
        if self._stream.active:
            line = json.dumps({"message": self.format(record)}, separators=(",", ":"))
            self._stream.publish(line.encode() + b"\n")


def configure_logging(
    *,
    error_level: int | None,
    error_stream: LogStream,
    count_error: Callable[[], None] = lambda: None,
    error_file: str = "",
) -> None:
    """(Re)configure the error log: text on stderr or in ``error_file``, and forwarded to the
    ``/v1/log/error`` subscribers. A level of ``None`` is KES's ``off``. Re-running replaces
    the previous handlers, so a reload can change the level and the file."""
    _reset(error_logger, _handler(error_file, sys.stderr), error_level)
    error_logger.handlers[0].setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    )
    forward = _StreamHandler(error_stream, count_error)
    forward.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    error_logger.addHandler(forward)


def _handler(file: str, default: TextIO) -> logging.Handler:
    if file:
        return logging.FileHandler(file, encoding="utf-8")
    return logging.StreamHandler(default)


def _reset(logger: logging.Logger, handler: logging.Handler, level: int | None) -> None:
    for old in list(logger.handlers):
        logger.removeHandler(old)
        old.close()
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(level if level is not None else logging.CRITICAL + 1)
