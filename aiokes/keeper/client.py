"""A worker's side of the key keeper (:mod:`aiokes.keeper`): coherent local copies of keys.

:class:`KeeperKeys` is the :class:`~aiokes.cache.source.KeySource` of every worker of a
multi-process server. A hit is a dict lookup in this process, as with a local cache; a miss
asks the keeper (one local round trip), and concurrent misses of one name in this worker
share that request. The keeper answers with the record and whether it may be kept; the
copy is inserted in the same callback that reads the reply, so an invalidation that
follows the reply on the channel always removes it.

The keeper's broadcasts are handled here, in channel order: ``INVALIDATE`` and ``FLUSH``
drop copies (and detach requests in flight, so a later request asks again) before the
acknowledgement leaves; ``DROP`` is the keeper's expiry; ``COLLECT`` asks for the names used
since the previous collection; ``FORWARD`` turns forwarding of a log stream on or off, and
``LOG`` brings another process's event for this process's subscribers.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import itertools
import json
import os
import socket
from dataclasses import dataclass, field

from aiokes.cache.stats import CacheStats
from aiokes.crypto import KeyVersion, parse_key_version
from aiokes.errors import KeystoreUnreachable
from aiokes.keeper.channel import (
    STREAMS,
    Channel,
    Kind,
    Message,
    name_chunks,
    parse_names,
    raise_failure,
)
from aiokes.keystore import KeystoreState, Page
from aiokes.log import LogStream

__all__ = ["KeeperKeys"]


class _Copy:
    __slots__ = ("used", "value")

    def __init__(self, value: KeyVersion) -> None:
        self.value = value
        self.used = True


@dataclass(eq=False)
class _Request:
    future: asyncio.Future[builtins.list[bytes]]
    name: str = ""  # for GET: where a cacheable answer goes
    parts: builtins.list[bytes] = field(default_factory=list)  # LIST: chunks of names


class KeeperKeys:
    """Keys through the keeper, with local copies the keeper keeps coherent."""

    def __init__(
        self, sock: socket.socket, *, audit_stream: LogStream, error_stream: LogStream
    ) -> None:
        """The streams are this process's ``/v1/log/*`` subscribers' (the keeper forwards
        the other processes' events to them)."""
        self._sock = sock
        self._streams = {b"a": audit_stream, b"e": error_stream}
        self._entries: dict[str, _Copy] = {}
        self._flights: dict[str, asyncio.Future[KeyVersion]] = {}
        self._requests: dict[int, _Request] = {}
        # Ids unique to this process: a reply meant for this slot's previous worker is ignored.
        self._ids = itertools.count((os.getpid() & 0xFFFFFFFF) << 31)
        self._channel: Channel | None = None
        self._hits = self._misses = 0

    def start(self) -> None:
        """Say hello (with this pid, so the keeper can watch and fence this process)."""
        self._channel = Channel(self._sock, self._on_message, self._on_closed)
        self._channel.send(Kind.HELLO, os.getpid())
        for code, stream in self._streams.items():
            stream.on_demand(
                functools.partial(self._want, code), functools.partial(self._unwant, code)
            )

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._fail_all("key keeper link closed")

    # -- KeySource ----------------------------------------------------------------------------

    def cached(self, name: str) -> KeyVersion | None:
        copy = self._entries.get(name)
        if copy is None:
            return None
        copy.used = True
        self._hits += 1
        return copy.value

    async def get(self, name: str) -> KeyVersion:
        value = self.cached(name)
        if value is not None:
            return value
        self._misses += 1
        flight = self._flights.get(name)
        if flight is None:
            flight = asyncio.get_running_loop().create_future()
            self._flights[name] = flight
            self._ask(Kind.GET, name.encode(), name=name, flight=flight)
        # Shielded: one caller's timeout must not fail the others waiting for the same key.
        return await asyncio.shield(flight)

    async def create(self, name: str, value: bytes) -> None:
        await self._call(Kind.CREATE, name.encode(), value)

    async def delete(self, name: str) -> None:
        await self._call(Kind.DELETE, name.encode())

    async def list(self, prefix: str, limit: int = -1) -> Page:
        request = self._request()
        fields = await self._send(request, Kind.LIST, prefix.encode(), str(limit).encode())
        names = [name for part in request.parts for name in parse_names(part)]
        return Page(names, fields[1].decode() if len(fields) > 1 else "")

    async def status(self) -> KeystoreState:
        fields = await self._call(Kind.STATUS)
        return KeystoreState(latency=float(fields[1]), read_only=fields[2:3] == [b"1"])

    async def mirror_view(self) -> tuple[dict[str, object], str] | None:
        """The mirror keystore's ``/v1/status`` object and ``/v1/metrics`` lines, from the
        keeper that holds it; ``None`` when the keystore is no mirror."""
        fields = await self._call(Kind.MIRROR)
        if len(fields) < 3:
            return None
        status: dict[str, object] = json.loads(fields[1])
        return status, fields[2].decode()

    def stats(self) -> CacheStats:
        """Hits and misses of this worker; the keeper publishes reads, entries, offline."""
        return CacheStats(hits=self._hits, misses=self._misses)

    async def aclose(self) -> None:
        """Nothing: the link outlives every state built on it (see :meth:`close`)."""

    # -- requests -----------------------------------------------------------------------------

    def _request(self, name: str = "") -> _Request:
        return _Request(asyncio.get_running_loop().create_future(), name)

    async def _call(self, kind: bytes, *fields: bytes) -> builtins.list[bytes]:
        return await self._send(self._request(), kind, *fields)

    async def _send(self, request: _Request, kind: bytes, *fields: bytes) -> builtins.list[bytes]:
        ident = next(self._ids)
        self._requests[ident] = request
        try:
            self._transmit(kind, ident, *fields)
            reply = await request.future
        finally:
            self._requests.pop(ident, None)
        raise_failure(reply)
        return reply

    def _ask(
        self, kind: bytes, *fields: bytes, name: str, flight: asyncio.Future[KeyVersion]
    ) -> None:
        """Start a GET whose outcome settles ``flight`` (done in the reply's callback)."""
        ident = next(self._ids)
        request = _Request(flight, name)  # type: ignore[arg-type]  # settled as a KeyVersion
        self._requests[ident] = request
        self._transmit(kind, ident, *fields)

    def _transmit(self, kind: bytes, ident: int, *fields: bytes) -> None:
        channel = self._channel
        if channel is None or channel.closed:
            raise KeystoreUnreachable("the key keeper is not running")
        channel.send(kind, ident, *fields)

    # -- messages -----------------------------------------------------------------------------

    def _on_message(self, message: Message) -> None:
        kind = message.kind
        if kind == Kind.REPLY:
            self._reply(message)
        elif kind == Kind.PART:
            request = self._requests.get(message.id)
            if request is not None and message.fields:
                request.parts.append(message.fields[0])
        elif kind == Kind.INVALIDATE:
            if message.fields:
                self._drop(message.fields[0].decode())
            self._ack(message.id)
        elif kind == Kind.FLUSH:
            self._entries.clear()
            self._flights.clear()
            self._ack(message.id)
        elif kind == Kind.DROP:
            for name in parse_names(message.fields[0] if message.fields else b""):
                self._entries.pop(name, None)
        elif kind == Kind.COLLECT:
            self._report_used(message.id)
        elif kind == Kind.FORWARD and len(message.fields) == 2:
            self._forward(*message.fields)
            self._ack(message.id)
        elif kind == Kind.LOG and len(message.fields) == 2:
            stream = self._streams.get(message.fields[0])
            if stream is not None:
                stream.deliver(message.fields[1])

    def _reply(self, message: Message) -> None:
        request = self._requests.pop(message.id, None)
        if request is None or request.future.done():
            return  # for this slot's previous worker, or its caller is gone
        fields = message.fields
        if not request.name:
            request.future.set_result(fields)
            return
        flight: asyncio.Future[KeyVersion] = request.future  # type: ignore[assignment]
        attached = self._flights.get(request.name) is flight  # no invalidation detached it
        if attached:
            del self._flights[request.name]
        try:
            raise_failure(fields)
            value = parse_key_version(fields[1])
        except Exception as exc:
            flight.set_exception(exc)
            flight.exception()  # seen: nobody may be waiting any more
            return
        # Kept only if the keeper says so and no invalidation detached this request.
        if fields[2] == b"1" and attached:
            self._entries[request.name] = _Copy(value)
        flight.set_result(value)

    def _drop(self, name: str) -> None:
        self._entries.pop(name, None)
        # Detached: a request started after this drop must not join an older read.
        self._flights.pop(name, None)

    def _ack(self, sequence: int) -> None:
        if sequence and self._channel is not None:
            self._channel.send(Kind.ACK, sequence)

    def _report_used(self, sequence: int) -> None:
        used = [name for name, copy in self._entries.items() if copy.used]
        for copy in self._entries.values():
            copy.used = False
        assert self._channel is not None
        for chunk in name_chunks(used):
            self._channel.send(Kind.USED, sequence, chunk)
        self._ack(sequence)

    def _on_closed(self) -> None:
        """The keeper is gone: copies can no longer be kept coherent. The supervisor restarts
        the whole group; until then, serve nothing from the copies."""
        self._entries.clear()
        self._fail_all("the key keeper exited")

    def _fail_all(self, why: str) -> None:
        for request in self._requests.values():
            if not request.future.done():
                request.future.set_exception(KeystoreUnreachable(why))
                request.future.exception()
        self._requests.clear()
        self._flights.clear()

    # -- log streams --------------------------------------------------------------------------

    async def _want(self, stream: bytes) -> None:
        """This worker's first subscriber: returns once every worker forwards the stream."""
        await self._call(Kind.DEMAND, stream, b"1")

    def _unwant(self, stream: bytes) -> None:
        if self._channel is not None:
            self._channel.send(Kind.DEMAND, 0, stream, b"0")

    def _forward(self, stream: bytes, on: bytes) -> None:
        log = self._streams.get(stream)
        if log is None or stream not in STREAMS:
            return
        channel = self._channel
        if on == b"1" and channel is not None:
            log.forward_to(lambda line: channel.send_log(stream, line))
        else:
            log.forward_to(None)
