"""One client connection: parse requests with httptools (llhttp), answer them in order.

A :class:`asyncio.BufferedProtocol`, so uvloop reads into one buffer per connection instead
of allocating a 256 KiB one per read. Requests on a connection are served one at a time, in
the order they arrived (pipelining); the next one's bytes are parsed meanwhile, up to a few.
"""

from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING, Any, cast

import httptools

from aiokes.http.deadline import ClientDeadline
from aiokes.http.request import Refused, Request, request_path
from aiokes.http.response import BAD_REQUEST, CONTINUE, DATE, STATUS_LINES, Response

if TYPE_CHECKING:
    from aiokes.http.listener import Listener

__all__ = ["Connection"]

_READ_SIZE = 64 * 1024
_MAX_QUEUED = 8  # parsed requests waiting for their turn before reading pauses
_FRAMING_NAME_LENGTHS = frozenset(map(len, (b"content-length", b"transfer-encoding", b"expect")))
_METHODS = {name.encode(): name for name in ("GET", "HEAD", "POST", "PUT", "DELETE")}


class Connection(asyncio.BufferedProtocol):
    def __init__(self, listener: Listener) -> None:
        self._listener = listener
        self._handler = listener.handler
        self._answer_now = getattr(listener.handler, "answer_now", None)
        self._buffer = memoryview(bytearray(_READ_SIZE))
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._remote = ""
        self._ssl_object: Any = None
        self._queue: collections.deque[Request] = collections.deque()
        self._memo: dict[str, Any] = {}  # the handler's, for this connection (Request.memo)
        self._parsing: Request | None = None  # the request whose body is being parsed
        self._task: asyncio.Task[None] | None = None
        self._answer_scheduled = False  # the listener answers the queue after this loop's reads
        self._refusal: str | None = None  # why the bytes after the queued requests are refused
        self._closing = False  # answer what is queued, then close (shutdown, upgrade, EOF)
        self._parse_ended = False  # after a refusal or an upgrade request: bytes are ignored
        self._read_paused = False
        self._write_paused = False
        self._drained: asyncio.Future[None] | None = None
        self._deadline = ClientDeadline(
            listener.loop,
            listener.limits.header_timeout,
            self._client_too_slow,
            lambda: self._task is not None or self._answer_scheduled,
        )
        self._head_started = False  # a request's head has begun and is not complete yet
        self._head_timed = False  # ... and the header timeout runs for it (it spans reads)
        self._last_url, self._last_path = b"", ""  # clients repeat their request targets
        self._url = b""  # this and the next: per message, while its head is parsed
        self._content_length: int | None = None
        self._chunked = False
        self._expect_continue = False

    # --- asyncio protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, but behave as one.
        self._transport = transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self._remote = peer[0] if isinstance(peer, tuple) else ""
        self._ssl_object = transport.get_extra_info("ssl_object")
        self._listener.opened(self)
        # As Go's ReadHeaderTimeout: the first request's head must come soon.
        self._deadline.wait(self._listener.limits.header_timeout)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        if self._parse_ended:
            return
        try:
            self._parser.feed_data(self._buffer[:nbytes])
        except httptools.HttpParserUpgrade:
            self._parse_ended = self._closing = True  # no upgrades: answer, then close
            self._pause_reading()
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if not isinstance(cause, Refused):
                raise
            self._refuse(str(cause))
        except httptools.HttpParserError as exc:
            self._refuse(str(exc) or type(exc).__name__)
        if self._head_started and not self._head_timed:
            # A head that began in this read and is not complete: Go's ReadHeaderTimeout
            # starts now. Heads that arrive whole (nearly all) never need a timer moved.
            self._head_timed = True
            self._deadline.wait(self._listener.limits.header_timeout)
        if self._queue:
            if self._task is not None or self._answer_scheduled:
                if len(self._queue) > _MAX_QUEUED:
                    self._pause_reading()
            elif self._queue[0].complete:
                self._answer_scheduled = True
                self._listener.answer_soon(self)
            else:  # its body is on its way: the route reads it, under its own time limit
                self._start_serving()
        elif self._refusal is not None and self._task is None:
            self._send_refusal()

    def eof_received(self) -> bool:
        if self._parsing is not None:
            self._parsing.abort()
        if self._task is None and not self._answer_scheduled:
            self._close()
            return False
        self._closing = True  # half-closed: answer what was asked, then close
        return self._ssl_object is None  # TLS closes on the client's close_notify regardless

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._listener.closed(self)
        self._deadline.cancel()
        if self._parsing is not None:
            self._parsing.abort()
        if self._drained is not None and not self._drained.done():
            self._drained.set_exception(ConnectionResetError("the client went away"))
        task = self._task
        if task is not None and self._queue and self._queue[0].streaming:
            task.cancel()  # a log stream only ends when its client leaves

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    # --- httptools callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._content_length = None
        self._chunked = False
        self._expect_continue = False
        self._head_started = True

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # Only three names matter here, of 14, 17 and 6 bytes: most headers (Host,
        # User-Agent, Accept-Encoding, Content-Type) are passed over without lowering them.
        if len(name) not in _FRAMING_NAME_LENGTHS:
            return
        name = name.lower()
        if name == b"content-length":
            if self._content_length is not None or self._chunked:
                raise Refused("ambiguous message length")
            self._content_length = int(value)  # llhttp has checked it is all digits
        elif name == b"transfer-encoding":
            # Go serves only "chunked"; anything else (a list, another coding) is ambiguous.
            if value.lower() != b"chunked" or self._chunked:
                raise Refused("unsupported Transfer-Encoding")
            if self._content_length is not None:
                raise Refused("ambiguous message length")
            self._chunked = True
        elif name == b"expect":
            self._expect_continue = value.lower() == b"100-continue"

    def on_headers_complete(self) -> None:
        if self._head_timed:
            self._head_timed = False
            self._deadline.lift()  # the body's time is bounded by the route that reads it
        self._head_started = False
        parser = self._parser
        http10 = parser.get_http_version() == "1.0"
        url = self._url
        if url != self._last_url:
            self._last_path = request_path(url)
            self._last_url = url
        method = parser.get_method()
        request = Request(
            _METHODS.get(method) or method.decode("ascii"),
            self._last_path,
            self._remote,
            self._ssl_object,
            self._content_length,
            http10,
            parser.should_keep_alive(),
            self._expect_continue,
            self,
            self._memo,
        )
        self._parsing = request
        self._queue.append(request)

    def on_body(self, body: bytes) -> None:
        if self._parsing is not None:
            self._parsing.append(body)

    def on_message_complete(self) -> None:
        if self._parsing is not None:
            self._parsing.finish()
            self._parsing = None

    # --- serving -------------------------------------------------------------------------

    def answer_queued(self, date: bytes) -> None:
        """Answer, in order, the queued requests the handler can answer without waiting (a
        cached key's generate or decrypt); start the serving task at the first it cannot.
        No task, coroutine or future is made for a request answered here. The listener calls
        this (with the iteration's ``Date`` line) once per loop iteration for all connections
        that received requests in it: the answers then share the iteration's audit write and
        the next poll finds more ready (answering in the read callback cost 8 % more CPU, §16
        of bench/RESULTS.md)."""
        self._answer_scheduled = False
        if self._transport is None or self._task is not None or not self._queue:
            return
        queue, answer_now = self._queue, self._answer_now
        try:
            while answer_now is not None and queue and not self._write_paused:
                request = queue[0]
                response = answer_now(request)
                if response is None:
                    break
                queue.popleft()
                if not self._answer(request, response, date):
                    return
        except Exception:
            self.abort()  # a bug of ours, not the client's: the traceback goes to the log
            raise
        if queue:
            self._start_serving()
        else:
            if self._read_paused:
                self._resume_if_room()
            self._after_answers()

    def _start_serving(self) -> None:
        # The listener's loop, not asyncio.get_running_loop(): on Python 3.11 that calls
        # getpid() (a syscall) each time: 0.27 µs against 0.02 µs for the attribute.
        self._task = self._listener.loop.create_task(self._serve())

    async def _serve(self) -> None:
        """Answer the queued requests in order; runs while there are any."""
        queue = self._queue
        try:
            if self._write_paused:
                await self.drain()
            while queue and self._transport is not None:
                request = queue[0]
                try:
                    response = await self._handler(request)
                finally:
                    if queue:
                        queue.popleft()
                if not self._answer(request, response, DATE.line()):
                    return
                if self._write_paused:
                    await self.drain()
                self._resume_if_room()
        except (ConnectionError, asyncio.CancelledError):
            self.abort()  # the client left (or the server stops): nobody to answer
            return
        except Exception:
            self.abort()  # a bug of ours, not the client's: the traceback goes to the log
            raise
        finally:
            self._task = None
        self._after_answers()

    def _after_answers(self) -> None:
        """Every queued request is answered: refuse, close, or wait for the next one."""
        if self._refusal is not None:
            self._send_refusal()
        elif self._closing:
            self._close()
        elif self._head_started:  # the next head's time starts now, as in Go
            self._head_timed = True
            self._deadline.wait(self._listener.limits.header_timeout)
        elif self._parsing is None:
            self._deadline.wait(self._listener.limits.keepalive_timeout)

    def _answer(self, request: Request, response: Response, date: bytes) -> bool:
        """Write ``response``; whether the connection stays open for the next request."""
        transport = self._transport
        if transport is None:
            return False
        keep = request.keep_alive and request.complete and not self._closing
        if response.sent:  # a stream its handler wrote: end it
            if not request.http10:
                transport.write(b"0\r\n\r\n")
            keep = keep and not request.http10
        else:
            body = response.body
            if keep:
                end = b"Connection: keep-alive\r\n\r\n" if request.http10 else b"\r\n"
            else:
                end = b"Connection: close\r\n\r\n"
            head = b"%s%s%sContent-Length: %d\r\n%s" % (
                STATUS_LINES[response.status, request.http10],
                response.header_block,
                date,
                len(body),
                end,
            )
            if request.method == "HEAD":
                transport.write(head)
            elif len(body) > 16384:  # not copied into the head
                transport.writelines((head, body))
            else:
                transport.write(head + body)
        if not keep:
            self._close()
        return keep

    async def drain(self) -> None:
        """Wait until the client takes what was written (at once unless writing paused)."""
        if self._transport is None:
            raise ConnectionResetError("the client went away")
        if self._write_paused:
            self._drained = asyncio.get_running_loop().create_future()
            await self._drained

    # --- used by requests ----------------------------------------------------------------

    def send_continue(self) -> None:
        if self._transport is not None:
            self._transport.write(CONTINUE)

    def body_stalled(self) -> None:
        self._listener.stalled(self._remote, "the request body")

    def send(self, data: bytes) -> None:
        """Write ``data`` as it is (a streaming answer's head and chunks)."""
        if self._transport is None:
            raise ConnectionResetError("the client went away")
        self._transport.write(data)

    # --- closing and timeouts ------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop taking requests: close now when idle, else after the ones being answered."""
        self._closing = True
        if self._task is None and not self._answer_scheduled:
            self._close()

    def _refuse(self, reason: str) -> None:
        """Stop reading; answer what came before, then 400 and close. A request whose head
        was fine but whose body broke (a bad chunk) is answered by its route instead, whose
        body reader fails as on any malformed body."""
        self._listener.complain(self._remote, f"refused a malformed request: {reason}")
        self._parse_ended = True
        self._pause_reading()
        if self._parsing is not None:
            self._parsing.abort(malformed=True)
            self._parsing = None
        else:
            self._refusal = reason  # sent once the requests before it are answered

    def _send_refusal(self) -> None:
        if self._transport is not None:
            self._transport.write(BAD_REQUEST)
        self._close()

    def _client_too_slow(self) -> None:
        if self._transport is None:
            return
        if self._head_started:
            self._listener.stalled(self._remote)
            self.abort()
        else:  # an idle connection is closed quietly, as Go does
            self._close()

    def _pause_reading(self) -> None:
        if not self._read_paused and self._transport is not None:
            self._read_paused = True
            self._transport.pause_reading()

    def _resume_if_room(self) -> None:
        """Read again once the queue of parsed requests is short enough."""
        room = len(self._queue) <= _MAX_QUEUED and not self._parse_ended
        if self._read_paused and room and self._transport is not None:
            self._read_paused = False
            self._transport.resume_reading()

    def _close(self) -> None:
        """Close after what is written; nothing more is read or answered."""
        self._parse_ended = True
        self._queue.clear()
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()
