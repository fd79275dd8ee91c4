"""`aiokes server --workers N` as a real process tree: shared listener, aggregated metrics,
TLS resumption across workers, restart of a dead worker, SIGHUP reload and SIGTERM stop."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import socket
import ssl
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from aiokes.client import Client
from aiokes.errors import NotAllowed
from tests.conftest import ClientIdentity, make_identity
from tests.http.raw import open_raw, request
from tests.server_process import config_head, spawn_server, stop_process, write_server_files


@dataclass
class ServerProcess:
    process: asyncio.subprocess.Process
    port: int
    config_file: Path
    ca_file: str
    admin: ClientIdentity
    app: ClientIdentity

    def client(self, who: ClientIdentity) -> Client:
        url = f"https://127.0.0.1:{self.port}"
        return Client(url, cert_file=who.cert_file, key_file=who.key_file, ca_file=self.ca_file)

    def workers(self) -> set[int]:
        return {pid for pid in self._children() if _comm(pid) == "aiokes-worker"}

    def keeper(self) -> int | None:
        keepers = [pid for pid in self._children() if _comm(pid) == "aiokes-keeper"]
        return keepers[0] if keepers else None

    def _children(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


StartWorkers = Callable[[int], Awaitable[ServerProcess]]


@pytest.fixture
async def start_workers(tmp_path: Path, tls_ca: trustme.CA) -> AsyncIterator[StartWorkers]:
    """Start ``aiokes server --workers N`` (once per test); stopped after the test."""
    started: list[ServerProcess] = []

    async def start(count: int) -> ServerProcess:
        admin = write_server_files(tmp_path, tls_ca)
        app = make_identity(tmp_path, "app")
        config_file = tmp_path / "config.yml"
        allowed = "/v1/key/generate/*"
        config_file.write_text(_config(tmp_path, admin.identity, app.identity, allowed))
        argv = ("--addr", "127.0.0.1:0", "--workers", str(count))
        process, port = await spawn_server(config_file, *argv)
        server = ServerProcess(process, port, config_file, str(tmp_path / "ca.crt"), admin, app)
        started.append(server)
        return server

    yield start
    for server in started:
        await stop_process(server.process)


@pytest.fixture
async def two_workers(start_workers: StartWorkers) -> ServerProcess:
    return await start_workers(2)


@pytest.fixture
async def three_workers(start_workers: StartWorkers) -> ServerProcess:
    return await start_workers(3)


async def test_requests_on_every_connection_are_counted_across_workers(
    two_workers: ServerProcess,
) -> None:
    assert len(two_workers.workers()) == 2
    async with two_workers.client(two_workers.admin) as admin:
        await admin.create_key("shared")
    for _ in range(10):  # new connections, spread over both workers by the kernel
        async with two_workers.client(two_workers.admin) as admin:
            await admin.generate_key("shared")
    async with two_workers.client(two_workers.admin) as admin:
        metrics = await admin.metrics()
    assert 'kes_http_request_success{code="200"} 11' in metrics
    assert "aiokes_workers 2" in metrics


async def test_tls_sessions_resume_on_workers_started_later(two_workers: ServerProcess) -> None:
    """The SSL context (and its session-ticket key) is built before forking: a session issued
    by one worker resumes on any other, even one forked after the session was issued."""
    context = ssl.create_default_context(cafile=two_workers.ca_file)
    context.load_cert_chain(two_workers.admin.cert_file, two_workers.admin.key_file)
    context.maximum_version = ssl.TLSVersion.TLSv1_2  # the session exists right after handshake
    session = (await asyncio.to_thread(_connect, context, two_workers.port, None))[1]
    old_workers = two_workers.workers()
    for pid in old_workers:
        os.kill(pid, signal.SIGKILL)
    await _eventually(lambda: len(two_workers.workers() - old_workers) == 2)
    resumed, _ = await asyncio.to_thread(_connect, context, two_workers.port, session)
    assert resumed


def _connect(
    context: ssl.SSLContext, port: int, session: ssl.SSLSession | None
) -> tuple[bool, ssl.SSLSession | None]:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost", session=session) as tls,
    ):
        return tls.session_reused is True, tls.session


async def test_a_dead_worker_is_replaced_and_the_server_keeps_serving(
    two_workers: ServerProcess,
) -> None:
    before = two_workers.workers()
    os.kill(min(before), signal.SIGKILL)
    await _eventually(lambda: len(two_workers.workers() - {min(before)}) == 2)
    assert min(before) not in two_workers.workers()
    async with two_workers.client(two_workers.admin) as admin:
        assert (await admin.version())["version"]


async def test_sighup_reloads_every_worker(two_workers: ServerProcess) -> None:
    async with two_workers.client(two_workers.admin) as admin:
        await admin.create_key("reloaded")
    async with two_workers.client(two_workers.app) as app:
        await app.generate_key("reloaded")
    text = two_workers.config_file.read_text().replace("/v1/key/generate/*", "/v1/nothing")
    two_workers.config_file.write_text(text)
    two_workers.process.send_signal(signal.SIGHUP)
    async with asyncio.timeout(30):
        while True:  # both workers must have reloaded: try on fresh connections
            denied = 0
            for _ in range(6):
                async with two_workers.client(two_workers.app) as app:
                    try:
                        await app.generate_key("reloaded")
                    except NotAllowed:
                        denied += 1
            if denied == 6:
                break
            await asyncio.sleep(0.1)


async def test_a_reload_reaches_connections_kept_alive_across_it_on_every_worker(
    three_workers: ServerProcess,
) -> None:
    """Each worker remembers per connection what its immediate path worked out (route,
    admission); requests on connections opened before a SIGHUP are judged by the new policy,
    whichever worker holds them."""
    server = three_workers
    async with server.client(server.admin) as admin:
        await admin.create_key("lane")
    context = ssl.create_default_context(cafile=server.ca_file)
    context.load_cert_chain(server.app.cert_file, server.app.key_file)
    generate = request("PUT", "/v1/key/generate/lane", b'{"context":"Y3R4"}')
    async with contextlib.AsyncExitStack() as stack:
        kept = [await stack.enter_async_context(open_raw(server.port, context)) for _ in range(9)]
        for raw in kept:
            await raw.send(generate)
            assert (await raw.answer()).status == 200
        text = server.config_file.read_text().replace("/v1/key/generate/*", "/v1/nothing")
        server.config_file.write_text(text)
        server.process.send_signal(signal.SIGHUP)
        async with asyncio.timeout(30):
            while True:  # every worker has reloaded once fresh connections are all refused
                statuses = set()
                for _ in range(9):
                    async with open_raw(server.port, context) as fresh:
                        await fresh.send(generate)
                        statuses.add((await fresh.answer()).status)
                if statuses == {403}:
                    break
                await asyncio.sleep(0.1)
        for _ in range(9):  # the reload emptied the caches: the key must be cached again
            async with server.client(server.admin) as admin:
                await admin.generate_key("lane")
        for raw in kept:
            await raw.send(generate)
            assert (await raw.answer()).status == 403


async def test_sigterm_stops_all_workers_and_exits_zero(two_workers: ServerProcess) -> None:
    workers = two_workers.workers()
    two_workers.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(two_workers.process.wait(), 30) == 0
    assert not any(os.path.exists(f"/proc/{pid}") for pid in workers)


async def _eventually(condition: Callable[[], bool]) -> None:
    """Wait for a condition on *another process's* state: there is no event to await, so
    poll it, within a bound."""
    async with asyncio.timeout(30):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


def _config(directory: Path, admin: str, app: str, allowed: str) -> str:
    return config_head(directory, admin) + textwrap.dedent(
        f"""\
        policy:
          app:
            allow: [{allowed}]
            identities: [{app}]
        keystore:
          fs:
            path: {directory}/keys
        """
    )


async def test_legacy_import_and_glob_listing_agree_on_every_worker(
    two_workers: ServerProcess,
) -> None:
    """kes-go v0.1.0's import body and its glob listing (issue 11), each request on a fresh
    connection, so that both workers answer: a key one worker imported is listed by all."""
    body = b'{"bytes":"' + base64.b64encode(bytes(range(32))) + b'"}'
    async with two_workers.client(two_workers.admin) as admin:
        status, _, _ = await admin.request("POST", "/v1/key/import/legacy-1", body)
    assert status == 200
    for _ in range(6):
        async with two_workers.client(two_workers.admin) as admin:
            status, headers, listed = await admin.request("GET", "/v1/key/list/legacy%2A")
        assert (status, headers["Content-Type"]) == (200, "application/x-ndjson")
        assert listed == b'{"name":"legacy-1"}\n'
