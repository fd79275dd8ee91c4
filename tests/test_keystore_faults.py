"""A keystore directory that breaks under a running server (issue 12, items 4 and 5): read-only,
and full. Real servers, real kernel refusals: a directory made unwritable (tests/read_only.py)
and a tmpfs of a few pages mounted in a private user and mount namespace (``unshare``)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from aiokes.client import Client
from aiokes.errors import APIError
from tests.api.helpers import import_known_key, send
from tests.conftest import ClientIdentity, RunningServer, StartServer
from tests.read_only import read_only_directory
from tests.server_process import config_head, spawn_server, write_server_files

# --- read-only directory: an in-process server -----------------------------------------------


async def _assert_read_only_but_serving(server: RunningServer) -> None:
    ready = await send(server, "GET", "/v1/ready")
    assert (ready.status, ready.body) == (200, b"")
    status = (await send(server, "GET", "/v1/status")).json()
    assert status["keystore_read_only"] is True
    assert status["keystore_latency"] >= 1
    assert "keystore_unreachable" not in status
    generate = await send(server, "PUT", "/v1/key/generate/existing", b"{}")
    assert generate.status == 200, generate
    create = await send(server, "PUT", "/v1/key/create/new-key")
    assert create.is_error(502, "failed to create key"), create
    # MinIO creates its default key at every start and needs KES's answer for an existing one.
    again = await send(server, "PUT", "/v1/key/create/existing")
    assert again.is_error(400, "key already exists"), again
    delete = await send(server, "DELETE", "/v1/key/delete/existing")
    assert delete.is_error(502, "failed to delete key"), delete


async def test_directory_turning_read_only_keeps_reads_and_readiness(
    server: RunningServer,
) -> None:
    await import_known_key(server, "existing")
    with read_only_directory(server.keystore_dir):
        await _assert_read_only_but_serving(server)
    assert os.listdir(server.keystore_dir) == ["existing"]
    status = (await send(server, "GET", "/v1/status")).json()
    assert "keystore_read_only" not in status
    assert (await send(server, "PUT", "/v1/key/create/new-key")).status == 200


async def test_server_starts_on_a_read_only_directory(
    start_server: StartServer, capfd: pytest.CaptureFixture[str]
) -> None:
    first = await start_server()
    await import_known_key(first, "existing")
    await first.aclose()
    with read_only_directory(first.keystore_dir):
        restarted = await start_server()
        assert "serving the existing keys read-only" in capfd.readouterr().err
        await _assert_read_only_but_serving(restarted)


# --- real server processes -------------------------------------------------------------------


@dataclass
class ServerProcess:
    process: asyncio.subprocess.Process
    port: int
    directory: Path
    admin: ClientIdentity

    def client(self) -> Client:
        """A new client, so each request goes out on a fresh connection (any worker)."""
        return Client(
            f"https://127.0.0.1:{self.port}",
            cert_file=self.admin.cert_file,
            key_file=self.admin.key_file,
            ca_file=str(self.directory / "ca.crt"),
        )

    async def stop(self) -> str:
        """Stop the server; its error log (standard error)."""
        if self.process.returncode is None:
            self.process.terminate()
        assert self.process.stderr is not None
        errors = await asyncio.wait_for(self.process.stderr.read(), 60)
        await asyncio.wait_for(self.process.wait(), 60)
        return errors.decode(errors="replace")


@pytest.fixture
def admin(tmp_path: Path, tls_ca: trustme.CA) -> ClientIdentity:
    """Certificates and a config for servers on the fs keystore ``tmp_path/keys``."""
    admin = write_server_files(tmp_path, tls_ca)
    keystore = f"keystore:\n  fs:\n    path: {tmp_path}/keys\n"
    (tmp_path / "config.yml").write_text(config_head(tmp_path, admin.identity) + keystore)
    (tmp_path / "keys").mkdir(mode=0o700)
    return admin


@asynccontextmanager
async def server_process(
    directory: Path, admin: ClientIdentity, *command_prefix: str, workers: int
) -> AsyncIterator[ServerProcess]:
    """``aiokes server --workers N`` with the config of ``admin``, optionally run through
    ``command_prefix`` (e.g. ``unshare ... sh -c '...; exec "$@"' ...``)."""
    process, port = await spawn_server(
        directory / "config.yml",
        "--addr", "127.0.0.1:0", "--workers", str(workers),
        prefix=command_prefix,
        separate_stderr=True,
    )  # fmt: skip
    try:
        yield ServerProcess(process, port, directory, admin)
    finally:
        if process.returncode is None:
            process.kill()  # the workers follow: they get SIGTERM when it dies
            await process.wait()


async def test_three_workers_start_and_serve_reads_on_a_read_only_directory(
    tmp_path: Path, admin: ClientIdentity
) -> None:
    keys = tmp_path / "keys"
    async with server_process(tmp_path, admin, workers=1) as server:
        async with server.client() as client:
            await client.create_key("existing")
        await server.stop()
    with read_only_directory(keys):
        async with server_process(tmp_path, admin, workers=3) as server:
            for _ in range(6):
                async with server.client() as client:
                    await client.ready()
                    assert (await client.status())["keystore_read_only"] is True
                    await client.generate_key("existing")
                async with server.client() as client:
                    with pytest.raises(APIError) as caught:
                        await client.create_key("new-key")
                    assert (caught.value.status, caught.value.message) == (
                        502,
                        "failed to create key",
                    )
            errors = await server.stop()
    assert "serving the existing keys read-only" in errors
    assert os.listdir(keys) == ["existing"]


# --- disk full: a real, tiny filesystem ------------------------------------------------------

# Inside a new user + mount namespace, where an unprivileged user (and root, as in CI) may
# mount: a tmpfs of 16 pages as the key directory, filled up, then the server.
_FULL_DISK = """\
set -e
mount -t tmpfs -o size=64k,mode=0700 aiokes-full "$0"
head -c 1048576 /dev/zero > "$0/.filler" 2>/dev/null || true
exec "$@"
"""


def _namespaces_available() -> str | None:
    """Why a private mount namespace cannot be had here, or ``None``."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(
        [unshare, "--user", "--map-root-user", "--mount", "true"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        return f"user namespaces are not available: {probe.stderr.strip()}"
    return None


async def test_disk_full_answers_502_logs_enospc_and_leaves_no_file(
    tmp_path: Path, admin: ClientIdentity
) -> None:
    reason = _namespaces_available()
    if reason is not None:
        pytest.skip(reason)
    keys = tmp_path / "keys"
    unshare = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", _FULL_DISK]
    async with server_process(tmp_path, admin, *unshare, str(keys), workers=2) as server:
        # The server's view of the directory: the tmpfs, seen through its mount namespace.
        inside = Path(f"/proc/{server.process.pid}/root") / keys.relative_to("/")
        assert os.listdir(inside) == [".filler"]
        for name in ("first", "second"):
            async with server.client() as client:
                with pytest.raises(APIError) as caught:
                    await client.create_key(name)
            assert (caught.value.status, caught.value.message) == (502, "failed to create key")
        assert os.listdir(inside) == [".filler"]  # no key, no temporary file
        async with server.client() as client:
            assert await client.list_keys() == []
            await client.ready()
        errors = await server.stop()
    assert "ENOSPC" in errors
    assert "Traceback" not in errors
