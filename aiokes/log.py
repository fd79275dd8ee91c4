"""The error log (the ``aiokes.error`` logger) and the live streams behind ``/v1/log/*``.

The audit log is :mod:`aiokes.audit`. Nothing here ever receives key material.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TextIO

__all__ = ["LogStream", "Subscription", "configure_logging", "error_logger"]

error_logger = logging.getLogger("aiokes.error")

_SUBSCRIBER_BACKLOG = 1024


class LogStream:
    """Fans events out to live subscribers (the ``/v1/log/*`` streams).

    A slow subscriber loses events rather than slowing requests down: each has a bounded
    queue, and a full queue drops the newest event.

    In a multi-process server the stream also spans processes (:mod:`aiokes.keeper`): while
    any process has a subscriber, :meth:`forward_to` makes :meth:`publish` hand each event to
    the hub as well, events of other processes arrive through :meth:`deliver`, and
    :meth:`on_demand` tells the hub when this process's first subscriber arrives (awaited, so
    that the subscription starts only once every process forwards) and its last one leaves.
    """

    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[bytes | None]] = set()
        self._forward: Callable[[bytes], None] | None = None
        self._wanted: Callable[[], Awaitable[None]] | None = None
        self._unwanted: Callable[[], None] | None = None
        # Whether publishing reaches anyone: read once per request, so kept, not computed.
        self.active = False

    def _update_active(self) -> None:
        self.active = bool(self._subscribers) or self._forward is not None

    def publish(self, event: bytes) -> None:
        """Send one ndjson line (ending in a newline) to every subscriber."""
        self.deliver(event)
        if self._forward is not None:
            self._forward(event)

    def deliver(self, event: bytes) -> None:
        """Send an event to this process's subscribers only (one another process published)."""
        for queue in self._subscribers:
            with contextlib.suppress(asyncio.QueueFull):  # a slow subscriber loses events
                queue.put_nowait(event)

    def forward_to(self, forward: Callable[[bytes], None] | None) -> None:
        """Also hand every published event to ``forward`` (``None``: stop)."""
        self._forward = forward
        self._update_active()

    def on_demand(
        self, wanted: Callable[[], Awaitable[None]], unwanted: Callable[[], None]
    ) -> None:
        """Tell the hub about this process's subscribers: ``wanted`` when the first one comes
        (the subscription waits for it), ``unwanted`` when the last one goes."""
        self._wanted, self._unwanted = wanted, unwanted

    def close(self) -> None:
        """End every subscription (server shutdown), so streaming responses finish."""
        for queue in self._subscribers:
            while True:
                try:
                    queue.put_nowait(None)
                    break
                except asyncio.QueueFull:
                    queue.get_nowait()  # make room: the end matters more than old events

    async def open(self) -> Subscription:
        """Start a subscription: events published from now on are queued for it, by every
        process of the server once this returns."""
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(_SUBSCRIBER_BACKLOG)
        first = not self._subscribers
        self._subscribers.add(queue)
        self._update_active()
        subscription = Subscription(self, queue)
        if first and self._wanted is not None:
            try:
                await self._wanted()
            except BaseException:
                subscription.close()
                raise
        return subscription

    async def subscribe(self) -> AsyncIterator[bytes]:
        subscription = await self.open()
        try:
            async for event in subscription:
                yield event
        finally:
            subscription.close()

    def _leave(self, queue: asyncio.Queue[bytes | None]) -> None:
        if queue not in self._subscribers:
            return
        self._subscribers.discard(queue)
        self._update_active()
        if not self._subscribers and self._unwanted is not None:
            self._unwanted()


class Subscription:
    """One subscriber's queue: iterate for the events, ``close`` when done (idempotent)."""

    def __init__(self, stream: LogStream, queue: asyncio.Queue[bytes | None]) -> None:
        self._stream = stream
        self._queue = queue

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            while (event := await self._queue.get()) is not None:
                yield event
        finally:
            self.close()

    def close(self) -> None:
        self._stream._leave(self._queue)


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
