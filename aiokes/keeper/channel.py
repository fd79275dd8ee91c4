"""The private channel between the key keeper and one worker slot: framed messages over an
``AF_UNIX``/``SOCK_SEQPACKET`` socketpair.

The supervisor creates one socketpair per worker slot before it forks anybody, so only the
group's own processes ever hold either end: there is no path in the file system, nothing
another local user can connect to. ``SOCK_SEQPACKET`` keeps message boundaries and sends
each message whole or not at all, so a worker killed in the middle of a send cannot leave
half a message for the worker that replaces it in the slot.

A message is ``kind (1 byte) | id (8 bytes) | fields``, each field a 4-byte length and its
bytes. ``id`` is a request id for requests and replies, a sequence number for broadcasts
that want an acknowledgement, and a process id for ``HELLO``. Records of keys cross this
channel, so nothing here logs a message's content.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import struct
from collections.abc import Callable, Iterable, Iterator

from aiokes.errors import (
    KeyExists,
    KeyNameReserved,
    KeyNotFound,
    KeystoreError,
    KeystoreUnreachable,
)

__all__ = [
    "MAX_MESSAGE",
    "STREAMS",
    "Channel",
    "Kind",
    "Message",
    "Outcome",
    "channel_pair",
    "decode",
    "encode",
    "failure_reply",
    "name_chunks",
    "parse_names",
    "raise_failure",
]

MAX_MESSAGE = 60 * 1024  # below the default socket buffer, so one message always fits
_HEAD = struct.Struct("!cQ")
_LENGTH = struct.Struct("!I")
_MAX_BACKLOG_LOG_LINES = 4096  # log lines queued for a slow peer before lines are dropped


class Kind:
    """Message kinds (one byte each). Worker to keeper, then keeper to worker."""

    HELLO = b"H"  # id = the worker's pid
    GET = b"g"  # name -> REPLY(record, cacheable)
    CREATE = b"c"  # name, record -> REPLY()
    DELETE = b"d"  # name -> REPLY()
    LIST = b"l"  # prefix -> REPLY(continue_at, *names)
    STATUS = b"s"  # -> REPLY(latency, read_only b"1"/b"0")
    MIRROR = b"m"  # -> REPLY(status JSON, metrics text) of a mirror keystore, REPLY() if none
    ACK = b"a"  # id = the broadcast's sequence number
    USED = b"u"  # id = sequence number; names used since the last collection
    DEMAND = b"D"  # stream, b"1"/b"0": a log subscriber appeared / the last one left
    LOG = b"L"  # stream, line: one log event (both directions)

    REPLY = b"R"  # id = request id; outcome, *fields
    PART = b"p"  # id = request id; a chunk of names before the REPLY of a LIST
    INVALIDATE = b"i"  # id = sequence number; name (acknowledge once dropped)
    FLUSH = b"f"  # id = sequence number (acknowledge once dropped)
    DROP = b"x"  # names the keeper's cache expired or evicted (no acknowledgement)
    COLLECT = b"C"  # id = sequence number: answer USED
    FORWARD = b"F"  # id = sequence number; stream, b"1"/b"0" (acknowledge)


class Outcome:
    """The first field of a ``REPLY``: success or which error to raise in the worker."""

    OK = b"0"
    NOT_FOUND = b"n"
    EXISTS = b"e"
    RESERVED = b"r"  # a deleted name whose tombstone still holds it (a KeyExists of its own)
    UNREACHABLE = b"u"
    KEYSTORE = b"k"


STREAMS = (b"a", b"e")  # the audit and the error log streams


def failure_reply(exc: BaseException) -> list[bytes]:
    """The ``REPLY`` fields that make the worker raise the same kind of error."""
    if isinstance(exc, KeyNotFound):
        return [Outcome.NOT_FOUND, exc.message.encode()]
    if isinstance(exc, KeyNameReserved):  # before KeyExists, its base: 409 and its own text
        return [Outcome.RESERVED, exc.message.encode()]
    if isinstance(exc, KeyExists):
        return [Outcome.EXISTS, exc.message.encode()]
    if isinstance(exc, KeystoreUnreachable):
        return [Outcome.UNREACHABLE, str(exc).encode()]
    if isinstance(exc, KeystoreError):
        return [Outcome.KEYSTORE, str(exc).encode()]
    return [Outcome.KEYSTORE, f"key keeper: {type(exc).__name__}".encode()]


def raise_failure(fields: list[bytes]) -> None:
    """Raise the error a ``REPLY`` carries, if it carries one."""
    outcome = fields[0] if fields else Outcome.KEYSTORE
    if outcome == Outcome.OK:
        return
    text = fields[1].decode(errors="replace") if len(fields) > 1 else "key keeper failed"
    if outcome == Outcome.NOT_FOUND:
        raise KeyNotFound(text)
    if outcome == Outcome.RESERVED:
        raise KeyNameReserved(text)
    if outcome == Outcome.EXISTS:
        raise KeyExists(text)
    if outcome == Outcome.UNREACHABLE:
        raise KeystoreUnreachable(text)
    raise KeystoreError(text)


class Message:
    __slots__ = ("fields", "id", "kind")

    def __init__(self, kind: bytes, ident: int, fields: list[bytes]) -> None:
        self.kind = kind
        self.id = ident
        self.fields = fields


def encode(kind: bytes, ident: int, *fields: bytes) -> bytes:
    parts = [_HEAD.pack(kind, ident)]
    for field in fields:
        parts.append(_LENGTH.pack(len(field)))
        parts.append(field)
    return b"".join(parts)


def decode(data: bytes) -> Message:
    """Parse one message; ``ValueError`` if it is malformed."""
    if len(data) < _HEAD.size:
        raise ValueError("short message")
    kind, ident = _HEAD.unpack_from(data)
    fields = []
    offset = _HEAD.size
    while offset < len(data):
        if offset + _LENGTH.size > len(data):
            raise ValueError("truncated field length")
        (length,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        if offset + length > len(data):
            raise ValueError("truncated field")
        fields.append(data[offset : offset + length])
        offset += length
    return Message(kind, ident, fields)


def channel_pair() -> tuple[socket.socket, socket.socket]:
    """A (keeper end, worker end) socketpair; both inheritable across fork, not exec."""
    keeper_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    return keeper_end, worker_end


class Channel:
    """One end of a channel on the running event loop: ordered, never blocking the loop.

    ``send`` writes at once when the socket takes it and otherwise queues, keeping the order
    of every message sent. ``on_message`` is called for each message received, in order;
    ``on_closed`` once the peer end is gone for good (every holder closed it).
    """

    def __init__(
        self,
        sock: socket.socket,
        on_message: Callable[[Message], None],
        on_closed: Callable[[], None] = lambda: None,
    ) -> None:
        sock.setblocking(False)
        self._sock = sock
        self.on_message = on_message  # may be replaced before the first message arrives
        self._on_closed = on_closed
        self._backlog: collections.deque[bytes] = collections.deque()
        self._log_lines_queued = 0
        self._loop = asyncio.get_running_loop()
        self._closed = False
        self._loop.add_reader(sock.fileno(), self._readable)

    @property
    def closed(self) -> bool:
        return self._closed

    def send(self, kind: bytes, ident: int = 0, *fields: bytes) -> None:
        self.send_raw(encode(kind, ident, *fields))

    def send_raw(self, data: bytes) -> None:
        if self._closed:
            return
        if len(data) > MAX_MESSAGE:
            raise ValueError("message too large for the keeper channel")
        if not self._backlog:
            try:
                self._sock.send(data)
                return
            except BlockingIOError:
                self._loop.add_writer(self._sock.fileno(), self._writable)
            except OSError:
                self.close()
                return
        self._backlog.append(data)

    def send_log(self, stream: bytes, line: bytes) -> None:
        """A log line, dropped (as a slow subscriber's would be) when the peer lags far."""
        if self._log_lines_queued >= _MAX_BACKLOG_LOG_LINES and self._backlog:
            return
        if self._backlog:
            self._log_lines_queued += 1
        self.send(Kind.LOG, 0, stream, line[: MAX_MESSAGE - 64])

    def _writable(self) -> None:
        while self._backlog:
            try:
                self._sock.send(self._backlog[0])
            except BlockingIOError:
                return
            except OSError:
                self.close()
                return
            self._backlog.popleft()
        self._log_lines_queued = 0
        self._loop.remove_writer(self._sock.fileno())

    def _readable(self) -> None:
        for _ in range(256):  # then let other callbacks run
            try:
                data = self._sock.recv(MAX_MESSAGE + 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self.close()
                self._on_closed()
                return
            try:
                message = decode(data)
            except ValueError:
                continue  # not from our code: ignore rather than act on garbage
            self.on_message(message)

    def close(self) -> None:
        """Stop reading and writing (the socket itself stays open for its owner)."""
        if self._closed:
            return
        self._closed = True
        self._backlog.clear()
        self._loop.remove_reader(self._sock.fileno())
        self._loop.remove_writer(self._sock.fileno())


def name_chunks(names: Iterable[str]) -> Iterator[bytes]:
    """Names as fields of NUL-separated names (a key name never contains NUL), each small
    enough for one message."""
    chunk: list[bytes] = []
    size = 0
    for name in names:
        encoded = name.encode()
        if chunk and size + len(encoded) + 1 > MAX_MESSAGE - 256:
            yield b"\0".join(chunk)
            chunk, size = [], 0
        chunk.append(encoded)
        size += len(encoded) + 1
    if chunk:
        yield b"\0".join(chunk)


def parse_names(field: bytes) -> list[str]:
    return field.decode().split("\0") if field else []
