"""One client connection: TCP + TLS on raw asyncio protocols, one request in flight at a time.

TLS session resumption: asyncio's ``create_connection`` has no ``session=`` argument, but both
asyncio's and uvloop's SSL layers create their ``SSLObject`` through ``context.wrap_bio``.
:class:`ClientContext` overrides that to offer the most recent session it has seen, like Go's
``tls.ClientSessionCache`` keyed by server name (MinIO's client keeps one of 100 entries).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.wire import Response, ResponseParser, WireError

__all__ = ["ClientContext", "ClientTLS", "Connection", "Endpoint", "client_context"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int
    server_hostname: str = "localhost"

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ClientTLS:
    """What a client presents and trusts; picklable, so it crosses process boundaries."""

    cert_file: str
    key_file: str
    ca_file: str = ""  # "" with insecure=False: the system trust store
    insecure: bool = False


class ClientContext(ssl.SSLContext):
    """An ``SSLContext`` whose new connections resume ``session`` when ``resume`` is set."""

    resume: bool
    session: ssl.SSLSession | None

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        if session is None and self.resume:
            session = self.session
        return super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)


def client_context(tls: ClientTLS, *, resume: bool = False) -> ClientContext:
    context = ClientContext(ssl.PROTOCOL_TLS_CLIENT)
    context.resume = resume
    context.session = None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    if tls.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif tls.ca_file:
        context.load_verify_locations(tls.ca_file)
    else:
        context.load_default_certs()
    if not Path(tls.cert_file).is_file() or not Path(tls.key_file).is_file():
        raise FileNotFoundError(f"client certificate or key missing: {tls.cert_file}")
    context.load_cert_chain(tls.cert_file, tls.key_file)
    return context


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = ResponseParser()
        self.waiter: asyncio.Future[Response] | None = None
        self.transport: asyncio.Transport | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's SSL transport is not an asyncio.Transport subclass, but has its methods.
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            response = self.parser.feed(data)
        except WireError as exc:
            self.fail(exc)
            return
        if response is not None and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(response)

    def eof_received(self) -> bool | None:
        self.fail(ConnectionResetError("server closed the connection"))
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.fail(exc or ConnectionResetError("connection closed"))

    def fail(self, exc: BaseException) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)


class Connection:
    """A TLS connection that sends pre-encoded requests and awaits their responses."""

    __slots__ = ("_loop", "_protocol", "_transport", "handshake_seconds", "resumed", "sent_at")

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol, seconds: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport = transport
        self._protocol = protocol
        self.handshake_seconds = seconds  # TCP connect + TLS handshake, as the client saw it
        self.sent_at = 0.0  # loop time of the request in flight, 0 when idle
        ssl_object: Any = transport.get_extra_info("ssl_object")
        self.resumed = bool(ssl_object is not None and ssl_object.session_reused)

    @classmethod
    async def open(
        cls, endpoint: Endpoint, context: ClientContext, handshake_timeout: float = 10.0
    ) -> Connection:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        transport, protocol = await loop.create_connection(
            _Protocol,
            endpoint.host,
            endpoint.port,
            ssl=context,
            server_hostname=endpoint.server_hostname,
            ssl_handshake_timeout=handshake_timeout,
        )
        return cls(transport, protocol, time.perf_counter() - started)

    @property
    def usable(self) -> bool:
        return not self._protocol.lost and not self._transport.is_closing()

    async def request(self, payload: bytes) -> Response:
        """Send and wait for the answer; no timeout of its own (see :meth:`expire`): an
        ``asyncio.timeout`` per request would cost the generator a tenth of its speed."""
        waiter: asyncio.Future[Response] = self._loop.create_future()
        self._protocol.waiter = waiter
        self.sent_at = self._loop.time()
        self._transport.write(payload)
        try:
            return await waiter
        finally:
            self._protocol.waiter = None
            self.sent_at = 0.0

    def expire(self, sent_before: float) -> bool:
        """Fail the request in flight with ``TimeoutError`` (and drop the connection) if it
        was sent before loop time ``sent_before``."""
        if not self.sent_at or self.sent_at >= sent_before:
            return False
        self._protocol.fail(TimeoutError("no answer in time"))
        self._transport.abort()
        return True

    def latest_session(self) -> ssl.SSLSession | None:
        """The TLS session to resume later (TLS 1.3 tickets arrive after the handshake)."""
        ssl_object: Any = self._transport.get_extra_info("ssl_object")
        return None if ssl_object is None else ssl_object.session

    def close(self) -> None:
        self._transport.close()

    def abort(self) -> None:
        self._transport.abort()
