"""The listening side: accepts connections, holds their shared settings, drains on stop."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from aiokes.http.connection import Connection
from aiokes.http.request import Request
from aiokes.http.response import DATE, Response
from aiokes.log import error_logger

__all__ = ["EagerHandler", "Handler", "Limits", "Listener"]

Handler = Callable[[Request], Awaitable[Response]]


class EagerHandler(Protocol):
    """A handler that can also answer some requests without waiting (see
    :meth:`aiokes.api.dispatch.Dispatcher.answer_now`); ``None`` means: await the handler."""

    def __call__(self, request: Request, /) -> Awaitable[Response]: ...

    def answer_now(self, request: Request, /) -> Response | None: ...


@dataclass(frozen=True, slots=True)
class Limits:
    """How long the server waits for a client; KES's values (Go's http.Server settings)."""

    header_timeout: float = 5.0  # ReadHeaderTimeout: a request's head, and the TLS handshake
    keepalive_timeout: float = 90.0  # IdleTimeout: between requests on one connection


class Listener:
    """Serves ``handler`` on a listening socket; ``shutdown`` stops and drains."""

    def __init__(
        self,
        handler: Handler | EagerHandler,
        *,
        limits: Limits = Limits(),
        on_stalled: Callable[[], None] = lambda: None,
    ) -> None:
        self.handler = handler
        self.limits = limits
        self.loop = asyncio.get_running_loop()
        self.connections: set[Connection] = set()
        self._all_closed = asyncio.Event()
        self._on_stalled = on_stalled
        self._server: asyncio.Server | None = None
        self._complaints = _RateLimit()
        self._to_answer: list[Connection] = []

    async def start(self, sock: socket.socket, ssl_context: ssl.SSLContext | None) -> None:
        self._server = await self.loop.create_server(
            self.protocol,
            sock=sock,
            ssl=ssl_context,
            ssl_handshake_timeout=self.limits.header_timeout if ssl_context else None,
        )

    def protocol(self) -> Connection:
        """The protocol of a new connection."""
        return Connection(self)

    def answer_soon(self, connection: Connection) -> None:
        """Have ``connection`` answer its queued requests once this loop iteration's reads
        are done (:meth:`Connection.answer_queued`): one callback for all of them."""
        if not self._to_answer:
            self.loop.call_soon(self._answer_all)
        self._to_answer.append(connection)

    def _answer_all(self) -> None:
        connections, self._to_answer = self._to_answer, []
        date = DATE.line()
        for connection in connections:
            try:
                connection.answer_queued(date)
            except Exception as exc:  # a bug of ours: that connection is cut, the rest served
                self.loop.call_exception_handler(
                    {"message": "answering a request failed", "exception": exc}
                )

    async def shutdown(self, grace: float) -> None:
        """Stop accepting, close idle connections, give busy ones ``grace`` seconds to
        answer what they are answering, then cut what is left."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for connection in list(self.connections):
            connection.shutdown()
        if self.connections:
            self._all_closed.clear()
            try:
                async with asyncio.timeout(grace):
                    await self._all_closed.wait()
            except TimeoutError:
                pass
        for connection in list(self.connections):
            connection.abort()
        await asyncio.sleep(0)  # let the aborted connections run connection_lost

    # --- shared by the connections -------------------------------------------------------

    def opened(self, connection: Connection) -> None:
        self.connections.add(connection)

    def closed(self, connection: Connection) -> None:
        self.connections.discard(connection)
        if not self.connections:
            self._all_closed.set()

    def complain(self, remote: str, text: str) -> None:
        """One line per client error, no traceback, and at most a few per second: anyone who
        can reach the port can send garbage, and must not be able to flood the log."""
        suppressed = self._complaints.take()
        if suppressed is None:
            return
        more = f" ({suppressed} similar lines suppressed)" if suppressed else ""
        error_logger.warning("http: %s: %s%s", remote, text, more)

    def stalled(self, remote: str, what: str = "request headers") -> None:
        self._on_stalled()
        self.complain(remote, f"{what} did not arrive in time; closed the connection")


class _RateLimit:
    """A token bucket: ``burst`` events at once, ``rate`` per second after that."""

    def __init__(self, rate: float = 1.0, burst: int = 10) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last = time.monotonic()
        self._suppressed = 0

    def take(self) -> int | None:
        """``None`` when over the limit, else how many were suppressed since the last one."""
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1.0:
            self._suppressed += 1
            return None
        self._tokens -= 1.0
        suppressed, self._suppressed = self._suppressed, 0
        return suppressed
