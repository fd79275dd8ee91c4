"""A raw HTTP/1.1 client over real mTLS, for what a well-behaved client never sends: several
requests in one write, HTTP/1.0, ``Expect: 100-continue``, bodies cut short, smuggling forms."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

from tests.api.helpers import client_context
from tests.conftest import RunningServer

__all__ = ["Answer", "Raw", "connect", "open_raw", "request"]

HANG_GUARD = 10.0  # seconds; only reached when the behaviour under test is broken


@dataclass(frozen=True)
class Answer:
    status_line: str
    headers: list[tuple[str, str]]  # in the order sent, names lower-cased
    body: bytes

    @property
    def status(self) -> int:
        return int(self.status_line.split()[1])

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)


class Raw:
    """One connection: write bytes, read answers one at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self) -> Answer:
        async with asyncio.timeout(HANG_GUARD):
            head = await self.reader.readuntil(b"\r\n\r\n")
            status_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
            headers = [_split(line) for line in lines]
            fields = dict(headers)
            if "content-length" in fields:
                body = await self.reader.readexactly(int(fields["content-length"]))
            elif fields.get("transfer-encoding") == "chunked":
                body = b""  # a stream: read it with chunk()
            elif " 100 " in status_line + " ":
                body = b""
            else:
                body = await self.reader.read()
        return Answer(status_line, headers, body)

    async def chunk(self) -> bytes:
        async with asyncio.timeout(HANG_GUARD):
            size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
            data = await self.reader.readexactly(size + 2)
        return data[:-2]

    async def closed_by_server(self) -> bool:
        """Whether the server closes the connection (rather than waiting for more)."""
        async with asyncio.timeout(HANG_GUARD):
            try:
                return await self.reader.read() == b""
            except (ConnectionError, ssl.SSLError):
                return True


def _split(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    return name.strip().lower(), value.strip()


def connect(
    server: RunningServer, who: object = None
) -> contextlib.AbstractAsyncContextManager[Raw]:
    """A raw connection as the admin (or ``who``: a conftest identity)."""
    context = client_context(server) if who is None else client_context(server, who)
    return open_raw(server.server.port, context)


@contextlib.asynccontextmanager
async def open_raw(port: int, context: ssl.SSLContext) -> AsyncIterator[Raw]:
    """A raw connection to ``127.0.0.1:port`` over ``context``."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="127.0.0.1"
    )
    try:
        yield Raw(reader, writer)
    finally:
        writer.transport.abort()


def request(method: str, path: str, body: bytes | None = None, *headers: str) -> bytes:
    """One request as bytes; a body gets its Content-Length unless ``headers`` frame it."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers]
    framed = any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers)
    if body is not None and not framed:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
