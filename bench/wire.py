"""Hand-written HTTP/1.1: request bytes built once, responses parsed with a few ``find`` calls.

The load generator must be much faster than the server it measures. aiohttp's client spends
more CPU per request than a small server does, so requests are pre-encoded ``bytes`` and the
parser only extracts what the harness needs: the status, the body, and whether the connection
stays open. It understands ``Content-Length`` and chunked bodies (Go's ``net/http``, and so
KES, may send either).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

__all__ = ["Response", "ResponseParser", "WireError", "build_request", "json_body"]

_HEADER_END = b"\r\n\r\n"
_MAX_HEADER = 64 * 1024


class WireError(Exception):
    """The peer sent something that is not an HTTP/1.1 response."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    keep_alive: bool


def build_request(
    method: str, path: str, host: str, body: bytes = b"", *, close: bool = False
) -> bytes:
    """A complete HTTP/1.1 request; ``close`` asks the server to close after answering."""
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {host}",
        "User-Agent: aiokes-bench",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


def json_body(**fields: bytes) -> bytes:
    """A KES request body: every field is bytes, sent as standard base64 (Go's ``[]byte``)."""
    document = {name: base64.b64encode(value).decode("ascii") for name, value in fields.items()}
    return json.dumps(document, separators=(",", ":")).encode("ascii")


class ResponseParser:
    """Feed bytes as they arrive; :meth:`feed` returns the response once it is complete.

    One response at a time (the harness never pipelines). Bytes after a complete response are
    kept for the next one.
    """

    __slots__ = ("_buffer", "_chunked", "_head", "_length")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._head: tuple[int, bool] | None = None  # (status, keep_alive) once headers are in
        self._length = -1
        self._chunked = False

    def feed(self, data: bytes) -> Response | None:
        if self._head is None and not self._buffer:
            whole = _whole_response(data)
            if whole is not None:
                return whole
        self._buffer += data
        if self._head is None and not self._parse_head():
            return None
        assert self._head is not None
        body = self._chunked_body() if self._chunked else self._sized_body()
        if body is None:
            return None
        status, keep_alive = self._head
        self._head = None
        return Response(status, body, keep_alive)

    def _parse_head(self) -> bool:
        end = self._buffer.find(_HEADER_END)
        if end < 0:
            if len(self._buffer) > _MAX_HEADER:
                raise WireError("response header too large")
            return False
        head = bytes(self._buffer[:end]).lower()
        del self._buffer[: end + 4]
        if not head.startswith(b"http/1."):
            raise WireError("not an HTTP/1.x response")
        try:
            status = int(head[9:12])
        except ValueError:
            raise WireError("malformed status line") from None
        keep_alive = b"\r\nconnection: close" not in head and not head.startswith(b"http/1.0")
        self._chunked = b"\r\ntransfer-encoding: chunked" in head
        self._length = _content_length(head)
        self._head = (status, keep_alive)
        return True

    def _sized_body(self) -> bytes | None:
        length = max(self._length, 0)
        if len(self._buffer) < length:
            return None
        body = bytes(self._buffer[:length])
        del self._buffer[:length]
        return body

    def _chunked_body(self) -> bytes | None:
        """Decode only once the terminating chunk is in; responses here are small."""
        chunks: list[bytes] = []
        position = 0
        while True:
            line_end = self._buffer.find(b"\r\n", position)
            if line_end < 0:
                return None
            size = int(bytes(self._buffer[position:line_end]).split(b";")[0], 16)
            start = line_end + 2
            if size == 0:
                trailer_end = self._buffer.find(b"\r\n", start)
                if trailer_end < 0:
                    return None
                del self._buffer[: trailer_end + 2]
                return b"".join(chunks)
            if len(self._buffer) < start + size + 2:
                return None
            chunks.append(bytes(self._buffer[start : start + size]))
            position = start + size + 2


def _whole_response(data: bytes) -> Response | None:
    """The common case, without copies: exactly one complete response with a canonical
    ``Content-Length`` header (aiohttp and Go both write it so). Anything else: ``None``,
    and the general parser takes over."""
    end = data.find(_HEADER_END)
    marker = data.find(b"\r\nContent-Length: ", 0, end)
    if marker < 0 or not data.startswith(b"HTTP/1.1 "):
        return None
    value_start = marker + 18
    value_end = data.find(b"\r\n", value_start)
    try:
        length = int(data[value_start:value_end])
        status = int(data[9:12])
    except ValueError:
        return None
    body_start = end + 4
    if len(data) != body_start + length:
        return None
    head = data[:end]
    keep_alive = b"onnection: close" not in head and b"onnection: Close" not in head
    return Response(status, data[body_start:], keep_alive)


def _content_length(head: bytes) -> int:
    marker = head.find(b"\r\ncontent-length:")
    if marker < 0:
        return -1
    value_start = marker + len(b"\r\ncontent-length:")
    value_end = head.find(b"\r\n", value_start)
    value = head[value_start:] if value_end < 0 else head[value_start:value_end]
    try:
        return int(value.strip())
    except ValueError:
        raise WireError("malformed Content-Length") from None
