"""One parsed request as the dispatcher sees it, with its body arriving in the background."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import httptools

from aiokes.http.response import DATE, Response, status_line

if TYPE_CHECKING:
    from aiokes.http.connection import Connection

__all__ = ["BODY_CAP", "BadBody", "Refused", "Request", "Stream", "request_path"]

# No route takes more (bulk decrypt's legacy 1 MiB); beyond it a body is never kept, only
# counted, so a client cannot make the server hold more than this per request.
BODY_CAP = 1 << 20


class BadBody(Exception):
    """The body is larger than the reader's limit (announced or as it arrived), or its
    framing is broken (a bad chunk)."""


class Request:
    """Method, decoded path, who sent it, and the body as it arrives.

    The connection fills the body in (``append``/``finish``); a handler that needs it awaits
    :meth:`read_body`. A body that arrived with its headers costs no waiting at all.
    """

    __slots__ = (
        "_channel",
        "_chunks",
        "_size",
        "_waiter",
        "aborted",
        "complete",
        "content_length",
        "expect_continue",
        "http10",
        "keep_alive",
        "limit",
        "malformed",
        "memo",
        "method",
        "path",
        "remote",
        "ssl_object",
        "streaming",
    )

    def __init__(
        self,
        method: str,
        path: str,
        remote: str,
        ssl_object: Any,
        content_length: int | None,
        http10: bool,
        keep_alive: bool,
        expect_continue: bool,
        channel: Connection,
        memo: dict[str, Any],
        /,
    ) -> None:
        # Positional only: made once per request, and keyword arguments cost half of that
        # (CPython matches each by name).
        self.method = method
        self.path = path
        self.remote = remote
        self.ssl_object = ssl_object
        self.content_length = content_length
        self.http10 = http10
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue and not http10  # 1.0 has no 100 Continue
        self._channel = channel
        # The connection's: what the handler worked out for earlier requests on it (whose
        # client, and so identity, is the same), keyed by path.
        self.memo = memo
        self.complete = False  # the whole message (body included) has been parsed
        self.aborted = False  # the connection went away before the body was complete
        self.malformed = False  # the body's framing broke (a bad chunk size)
        self.streaming = False  # a log stream: the connection cancels it when the client leaves
        self.limit = BODY_CAP
        self._chunks: list[bytes] = []
        self._size = 0
        self._waiter: asyncio.Future[None] | None = None

    # --- filled in by the connection -----------------------------------------------------

    def append(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size <= self.limit:
            self._chunks.append(chunk)
        else:
            self._chunks = []  # over the limit: the body is refused, keep nothing
            self._wake()

    def finish(self) -> None:
        self.complete = True
        if self._waiter is not None:  # nobody waits for a body that came with its head
            self._wake()

    def abort(self, *, malformed: bool = False) -> None:
        self.aborted = True
        self.malformed = malformed
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- used by the dispatcher ----------------------------------------------------------

    def body_at_hand(self, limit: int) -> bytes | None:
        """The body if it needs no waiting (it arrived with the headers), else ``None``."""
        if not self.complete:
            return None
        if self._size > limit:
            raise BadBody
        chunks = self._chunks
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def read_body(self, limit: int, within: float | None) -> bytes:
        """The whole body, at most ``limit`` bytes, arriving within ``within`` seconds.

        Raises :class:`BadBody` (also for a body stalled past ``within``) or
        :class:`ConnectionResetError` (the client left mid-body).
        """
        if self.content_length is not None and self.content_length > limit:
            raise BadBody
        self.limit = limit
        if self.expect_continue:
            self.expect_continue = False
            self._channel.send_continue()
        try:
            async with asyncio.timeout(within):
                while not self.complete and self._size <= limit:
                    if self.malformed:
                        raise BadBody
                    if self.aborted:
                        raise ConnectionResetError("the client left before the whole body")
                    self._waiter = asyncio.get_running_loop().create_future()
                    await self._waiter
        except TimeoutError:
            self._channel.body_stalled()  # counted and logged; the connection then closes
            raise BadBody from None
        body = self.body_at_hand(limit)
        if body is None:  # over the limit before the end
            raise BadBody
        return body

    async def stream(self, headers: bytes) -> Stream:
        """Start a streaming answer (200, chunked); its handler returns ``Stream.response``."""
        channel = self._channel
        framing = b"Connection: close" if self.http10 else b"Transfer-Encoding: chunked"
        head = (status_line(200, self.http10), headers, DATE.line(), framing)
        channel.send(b"%s%s%s%s\r\n\r\n" % head)
        self.streaming = True
        return Stream(self)


class Stream:
    """A response written while the handler runs (the ``/v1/log/*`` streams)."""

    __slots__ = ("_request", "response")

    def __init__(self, request: Request) -> None:
        self._request = request
        self.response = Response()
        self.response.sent = True

    async def write(self, data: bytes) -> None:
        """Send ``data`` as one chunk (as it is in HTTP/1.0, which then closes); wait while
        the client is slow to take it."""
        request = self._request
        chunk = data if request.http10 else b"%x\r\n%s\r\n" % (len(data), data)
        request._channel.send(chunk)
        await request._channel.drain()


class Refused(Exception):
    """A request the server will not serve (malformed or ambiguous framing): 400, close."""


def request_path(url: bytes) -> str:
    """The percent-decoded path of a request target (query and fragment dropped)."""
    # Searched as str: ``b"?" in url`` first tries b"?" as an int, and raising and clearing
    # that TypeError costs more than the rest of this function (bench/RESULTS.md, section 16).
    # llhttp has checked the target is ASCII (no control or 8-bit bytes in strict mode).
    text = url.decode("latin-1")
    if text[:1] != "/" or "?" in text or "#" in text:
        try:
            text = (httptools.parse_url(url).path or b"/").decode("latin-1")
        except httptools.HttpParserInvalidURLError:
            raise Refused("invalid request target") from None
    if "%" not in text:
        return text
    return unquote(text, errors="replace")
