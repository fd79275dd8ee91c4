"""A TCP pass-through in front of the fake Key Vault (:mod:`bench.fakevault`), which a test can
cut, hold or restore: real outages for the Azure keystore's tests."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

__all__ = ["VaultLink"]


class VaultLink:
    """A TCP pass-through in front of the fake vault (TLS passes through untouched).

    :meth:`cut` makes a real outage: the port refuses connections (ECONNREFUSED) and the
    connections aiokes holds are reset. :meth:`restore` listens on the same port again.
    :meth:`break_connections` is an outage that can be counted: every connection is
    accepted (and counted), then reset, as behind a load balancer without a healthy backend.
    :meth:`hold` keeps what aiokes sends from reaching the vault until :meth:`release`, so a
    vault read stays in flight for as long as a test needs.
    """

    def __init__(self, upstream_url: str) -> None:
        upstream = urlsplit(upstream_url)
        self._upstream = (upstream.hostname or "", upstream.port or 443)
        self.port = 0
        self.connections = 0  # accepted since start
        self.resetting = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._open = asyncio.Event()
        self._open.set()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def vault(self) -> str:
        """The vault's name in aiokes's error messages."""
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    restore = start

    async def cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self._reset_all()  # before waiting: on 3.12+ wait_closed waits for the connections
        if server is not None:
            await server.wait_closed()

    def break_connections(self) -> None:
        self.resetting = True
        self._reset_all()

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def _reset_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.resetting:
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.transport.abort()
            return
        ends = {writer, upstream_writer}
        self._writers |= ends
        pumps = [
            asyncio.create_task(self._pump(reader, upstream_writer, gated=True)),
            asyncio.create_task(self._pump(upstream_reader, writer, gated=False)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            for end in ends:
                end.transport.abort()
            self._writers -= ends

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, gated: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if gated:
                    await self._open.wait()
                writer.write(data)
                await writer.drain()
        except OSError:  # reset by either side: the connection is over
            return
