"""The error log and the audit log: stdlib loggers plus live streams for ``/v1/log/*``.

Audit events follow KES's audit stream format (LEGACY units: ``response.time`` in nanoseconds,
which is what kms-go decodes), one event per request — not only key creation (minio/kes#480).
Nothing here ever receives key material: events carry paths, identities and status codes.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TextIO

__all__ = ["AuditEvent", "LogStream", "audit_logger", "configure_logging", "error_logger"]

audit_logger = logging.getLogger("aiokes.audit")
error_logger = logging.getLogger("aiokes.error")

_SUBSCRIBER_BACKLOG = 1024


@dataclass(frozen=True, slots=True)
class AuditEvent:
    time: datetime.datetime
    ip: str
    method: str
    path: str
    identity: str
    status: int
    duration: float  # seconds

    def to_json(self) -> dict[str, Any]:
        request: dict[str, str] = {"path": self.path, "method": self.method}
        if self.ip:
            request["ip"] = self.ip
        if self.identity:
            request["identity"] = self.identity
        return {
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "request": request,
            "response": {"code": self.status, "time": int(self.duration * 1e9)},
        }


class LogStream:
    """Fans events out to live subscribers (the ``/v1/log/*`` streams).

    A slow subscriber loses events rather than slowing requests down: each has a bounded
    queue, and a full queue drops the newest event.
    """

    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self.delivered = 0

    @property
    def active(self) -> bool:
        return bool(self._subscribers)

    def publish(self, event: dict[str, Any]) -> None:
        for queue in self._subscribers:
            try:
                queue.put_nowait(event)
                self.delivered += 1
            except asyncio.QueueFull:
                pass

    def close(self) -> None:
        """End every subscription (server shutdown), so streaming responses finish."""
        for queue in self._subscribers:
            while True:
                try:
                    queue.put_nowait(None)
                    break
                except asyncio.QueueFull:
                    queue.get_nowait()  # make room: the end matters more than old events

    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(_SUBSCRIBER_BACKLOG)
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
            self._stream.publish({"message": self.format(record)})


class _JSONAuditFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event = record.args
        if isinstance(event, dict):
            return json.dumps(event, separators=(",", ":"))
        return record.getMessage()


def configure_logging(
    *,
    error_level: int | None,
    audit_level: int | None,
    error_stream: LogStream,
    count_error: Callable[[], None] = lambda: None,
    error_file: str = "",
    audit_file: str = "",
) -> None:
    """(Re)configure both loggers: errors as text on stderr, audit events as JSON on stdout.

    A level of ``None`` is KES's ``off``. Re-running replaces the previous handlers, so a
    reload can change levels and files.
    """
    _reset(error_logger, _handler(error_file, sys.stderr), error_level)
    error_logger.handlers[0].setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    )
    forward = _StreamHandler(error_stream, count_error)
    forward.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    error_logger.addHandler(forward)
    _reset(audit_logger, _handler(audit_file, sys.stdout), audit_level)
    audit_logger.handlers[0].setFormatter(_JSONAuditFormatter())


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
