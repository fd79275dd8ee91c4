"""Responses as Go's net/http writes them: the handler's headers sorted by name, then ``Date``
and ``Content-Length``; no ``Server`` header (KES sends none)."""

from __future__ import annotations

import email.utils
import http
import time
from collections.abc import Mapping

__all__ = ["BAD_REQUEST", "CONTINUE", "DATE", "STATUS_LINES", "Response", "status_line"]

# Go's answer to a request it cannot parse, byte for byte (net/http's "400 Bad Request").
BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\n\r\n400 Bad Request"
)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Response:
    """A complete answer: status, body and the handler's own headers.

    ``headers`` are kept as one pre-encoded block (``Name: value\\r\\n`` lines, sorted as Go
    sorts them), because the hot routes all send the same ``Content-Type`` and building a
    header block per request costs more than the rest of the response.
    """

    __slots__ = ("body", "header_block", "sent", "status")

    def __init__(
        self,
        body: bytes = b"",
        status: int = 200,
        headers: Mapping[str, str] | bytes | None = None,
    ) -> None:
        self.status = status
        self.body = body
        if isinstance(headers, bytes):  # first: every hot answer gives a ready-made block
            self.header_block = headers
        elif headers is None:
            self.header_block = b""
        else:
            self.header_block = header_block(headers)
        self.sent = False  # True once a streaming handler wrote it itself

    @property
    def content_type(self) -> str:
        for line in self.header_block.split(b"\r\n"):
            name, _, value = line.partition(b": ")
            if name.lower() == b"content-type":
                return value.decode("latin-1")
        return ""


def header_block(headers: Mapping[str, str]) -> bytes:
    """``Name: value`` lines sorted by name, as Go's ``Header.Write`` orders them."""
    return b"".join(f"{name}: {headers[name]}\r\n".encode("latin-1") for name in sorted(headers))


class _StatusLines(dict[tuple[int, bool], bytes]):
    """``HTTP/1.x <code> <reason>\\r\\n``, built once per status and version."""

    def __missing__(self, key: tuple[int, bool]) -> bytes:
        status, http10 = key
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = f"status code {status}"  # what Go writes for an unknown code
        line = self[key] = b"HTTP/1.%d %d %s\r\n" % (0 if http10 else 1, status, reason.encode())
        return line


STATUS_LINES = _StatusLines()  # by (status, http10); indexed directly on the hot path


def status_line(status: int, http10: bool = False) -> bytes:
    return STATUS_LINES[status, http10]


class DateHeader:
    """``Date: <RFC 7231 time>\\r\\n``, formatted once a second rather than per response."""

    __slots__ = ("_line", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    def line(self) -> bytes:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._line = b"Date: %s\r\n" % email.utils.formatdate(second, usegmt=True).encode()
        return self._line


DATE = DateHeader()  # one clock per process: every connection reads the same line
