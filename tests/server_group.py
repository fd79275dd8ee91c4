"""A real ``aiokes server --workers N`` process tree for tests: started as the CLI starts it,
driven with every request on a fresh mTLS connection (so the kernel spreads them over the
workers), with the process tree (supervisor, key keeper, workers) at hand for faults."""

from __future__ import annotations

import asyncio
import base64
import ctypes
import ctypes.util
import json
import os
import ssl
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trustme

from aiokes.client import Client
from aiokes.client.tls import client_ssl_context
from tests.conftest import ClientIdentity
from tests.server_process import config_head, spawn_server, stop_process, write_server_files

START_TIMEOUT = 60.0
ROUTE_TIMEOUT = 15.0  # KES's default: no request may take longer
HANDSHAKES = 64  # TLS handshakes a storm runs at once


@dataclass
class Group:
    process: asyncio.subprocess.Process
    port: int
    directory: Path
    config_file: Path
    admin: ClientIdentity
    ca_file: str
    output: list[str] = field(default_factory=list)
    _context: ssl.SSLContext | None = None

    @property
    def keystore_dir(self) -> Path:
        return self.directory / "keys"

    def client(self) -> Client:
        """A client with its own connection pool: its first request opens a new connection."""
        if self._context is None:
            self._context = client_ssl_context(
                cert_file=self.admin.cert_file, key_file=self.admin.key_file, ca_file=self.ca_file
            )
        return Client(f"https://127.0.0.1:{self.port}", ssl_context=self._context)

    async def call(self, method: str, path: str, body: object = None) -> tuple[int, bytes]:
        """One request on a fresh connection: (status, body); never longer than the route
        timeout (a hang fails the test)."""
        payload = None if body is None else json.dumps(body).encode()
        async with asyncio.timeout(ROUTE_TIMEOUT + 5), self.client() as client:
            status, _, content = await client.request(method, path, payload)
        return status, content

    async def storm(
        self, name: str, count: int, *, all_sent: asyncio.Event | None = None
    ) -> list[int]:
        """The statuses of ``count`` generates of ``name``, each on its own connection, all in
        flight together; ``all_sent`` is set once every request is written.

        The connections are opened :data:`HANDSHAKES` at a time, each sending its request as
        soon as it is up: a busy two-core test machine cannot finish 1,000 simultaneous TLS
        handshakes within the server's 5 s handshake timeout ("server closed the
        connection"). Hold the keystore while ``all_sent`` is unset for a storm whose every
        request waits on the same cold read."""
        if self._context is None:
            self.client()  # builds the context
        assert self._context is not None
        context, gate, sent = self._context, asyncio.Semaphore(HANDSHAKES), [0]
        request = (
            f"POST /v1/key/generate/{name} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Length: 2\r\nConnection: close\r\n\r\n{}"
        ).encode()

        async def one() -> int:
            async with gate:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", self.port, ssl=context, server_hostname="127.0.0.1"
                )
                writer.write(request)
                await writer.drain()
            sent[0] += 1
            if sent[0] == count and all_sent is not None:
                all_sent.set()
            try:
                answer = await reader.read()  # Connection: close: the whole answer, then EOF
            finally:
                writer.close()
            return int(answer.split(b" ", 2)[1])

        async with asyncio.timeout(ROUTE_TIMEOUT * 4):
            return list(await asyncio.gather(*(one() for _ in range(count))))

    async def generate(self, name: str) -> tuple[int, bytes, bytes]:
        """(status, plaintext, ciphertext) of a data key of ``name``."""
        status, body = await self.call("POST", f"/v1/key/generate/{name}", {})
        if status != 200:
            return status, b"", b""
        reply = json.loads(body)
        return status, base64.b64decode(reply["plaintext"]), base64.b64decode(reply["ciphertext"])

    async def decrypt(self, name: str, ciphertext: bytes) -> tuple[int, bytes]:
        body = {"ciphertext": base64.b64encode(ciphertext).decode()}
        status, content = await self.call("POST", f"/v1/key/decrypt/{name}", body)
        if status != 200:
            return status, content
        return status, base64.b64decode(json.loads(content)["plaintext"])

    def children(self) -> dict[int, str]:
        """pid -> process name (``aiokes-keeper`` or ``aiokes-worker``)."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            pids = [int(pid) for pid in path.read_text().split()]
        except OSError:
            return {}
        return {pid: _comm(pid) for pid in pids}

    def workers(self) -> set[int]:
        return {pid for pid, name in self.children().items() if name == "aiokes-worker"}

    def keeper(self) -> int:
        keepers = [pid for pid, name in self.children().items() if name == "aiokes-keeper"]
        assert len(keepers) == 1, self.children()
        return keepers[0]

    async def wait_for_group(self, gone: set[int], workers: int = 3) -> None:
        """Until the supervisor replaced the processes in ``gone`` and every worker is ready
        again (it answers on a fresh connection)."""
        async with asyncio.timeout(30):
            while True:
                children = self.children()
                live = {pid for pid, name in children.items() if name == "aiokes-worker"}
                if not (set(children) & gone) and len(live) == workers:
                    break
                await asyncio.sleep(0.05)
            while (await self.call("GET", "/version"))[0] != 200:  # noqa: ASYNC110 - polled
                await asyncio.sleep(0.05)


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def config_yaml(directory: Path, admin: str, keystore: str = "", cache: str = "") -> str:
    keystore = keystore or f"keystore:\n  fs:\n    path: {directory}/keys\n"
    cache = cache or "cache:\n  expiry:\n    any: 1h\n    unused: 1h\n"
    return config_head(directory, admin, error_log=True) + cache + keystore


@asynccontextmanager
async def running_group(
    directory: Path,
    tls_ca: trustme.CA,
    *,
    workers: int = 3,
    keystore: str = "",
    cache: str = "",
    env: dict[str, str] | None = None,
) -> AsyncIterator[Group]:
    """``aiokes server --config … --workers N`` until the block ends (then SIGTERM)."""
    directory.mkdir(parents=True, exist_ok=True)
    admin = write_server_files(directory, tls_ca)
    config_file = directory / "config.yml"
    config_file.write_text(config_yaml(directory, admin.identity, keystore, cache))
    output: list[str] = []
    process, port = await spawn_server(
        config_file, "--addr", "127.0.0.1:0", "--workers", str(workers), env=env, lines=output
    )
    try:
        group = Group(process, port, directory, config_file, admin, str(directory / "ca.crt"))
        group.output = output
        drain = asyncio.create_task(_collect(process, output))
        try:
            yield group
        finally:
            await stop_process(process)
            await drain
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def keystore_reads(group: Group) -> int:
    """The server's count of keystore reads (``/v1/status``, one answer for the group)."""
    _, body = await group.call("GET", "/v1/status")
    return int(json.loads(body)["cache"]["keystore_reads"])


async def _collect(process: asyncio.subprocess.Process, lines: list[str]) -> None:
    assert process.stdout is not None
    while line := await process.stdout.readline():
        lines.append(line.decode(errors="replace"))


# -- counting keystore reads on the fs keystore: file opens, seen by inotify -----------------

_IN_OPEN = 0x20
_IN_CLOSE_NOWRITE = 0x10
_IN_NONBLOCK = os.O_NONBLOCK
_EVENT = struct.Struct("iIII")


class FileOpens:
    """Counts opens of each file in a directory, by any process (Linux inotify): how many
    times the fs keystore read a key, seen from outside the server.

    inotify merges an event with an identical one still unread, so two *overlapping* opens
    of one file may count once (closes are watched too, so that sequential reads alternate
    open/close and never merge). Exact counts come from the server's ``keystore_reads`` and
    from the fake vault; this is the outside view that needs no cooperation of the server."""

    def __init__(self, directory: Path) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self._fd = libc.inotify_init1(_IN_NONBLOCK)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        mask = _IN_OPEN | _IN_CLOSE_NOWRITE
        if libc.inotify_add_watch(self._fd, str(directory).encode(), mask) < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch")
        self.opens: dict[str, int] = {}

    def count(self, name: str) -> int:
        self._drain()
        return self.opens.get(name, 0)

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return
            offset = 0
            while offset < len(data):
                _, mask, _, length = _EVENT.unpack_from(data, offset)
                raw = data[offset + _EVENT.size : offset + _EVENT.size + length]
                name = raw.rstrip(b"\0").decode()
                if mask & _IN_OPEN and name:
                    self.opens[name] = self.opens.get(name, 0) + 1
                offset += _EVENT.size + length

    def close(self) -> None:
        os.close(self._fd)
