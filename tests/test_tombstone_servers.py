"""Issue 15, point 4: three aiokes servers on one keystore, as an operator scaling out runs
them. ``delete k1`` on A, then ``create k1`` on C: refused while B may still serve the old k1
from its cache, with an answer that says when the name can be reused; allowed after that.

On one real fs directory and on one (fake) Key Vault. Time does not pass: the tombstone is
aged by moving its deletion date back.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import trustme

from aiokes.keystore._tombstone import marker_directory_for
from tests import test_azure_server
from tests.conftest import RunningServer, StartServer
from tests.server_process import server_setup, start_process, stop_process
from tests.test_azure_server import AzureServer, StartAzure

# The Azure server fixture, shared with the module that defines it (vault and link come
# from conftest.py).
start_azure = test_azure_server.start_azure

# The servers' cache.expiry.any is 1h in the Azure fixture and the default 5m for fs.
AZURE_WAIT = 3600 + 10
FS_WAIT = 300 + 10


Instance = RunningServer | AzureServer


async def _status_and_body(server: Instance, path: str) -> tuple[int, str]:
    status, _, body = await server.client().request("POST", path)
    return status, body.decode()


async def _scenario(a: Instance, b: Instance, c: Instance) -> None:
    """Up to the refused re-create."""
    await a.client().create_key("k1")
    dek = await b.client().generate_key("k1")  # B caches the old k1
    await a.client().delete_key("k1")

    for server in (c, a, b):
        status, body = await _status_and_body(server, "/v1/key/create/k1")
        assert status == 409, body
        assert "key 'k1' was deleted at " in body
        assert "it can be reused after " in body
    status, _ = await _status_and_body(c, "/v1/key/import/k1")
    assert status != 200  # import is a create too
    assert await b.client().decrypt("k1", dek.ciphertext) == dek.plaintext  # B's cache, as KES
    status, _ = await _status_and_body(c, "/v1/key/generate/k1")
    assert status == 404


async def _after_the_wait(a: Instance, c: Instance) -> None:
    await c.client().create_key("k1")
    ciphertext = await c.client().encrypt("k1", b"new k1")
    assert await a.client().decrypt("k1", ciphertext) == b"new k1"


async def test_fs_three_servers_on_one_directory(start_server: StartServer) -> None:
    a, b, c = [await start_server() for _ in range(3)]
    await _scenario(a, b, c)
    keys = a.keystore_dir
    assert sorted(p.name for p in keys.iterdir()) == []  # nothing KES would list as a key
    marker = marker_directory_for(keys) / "k1"
    deleted = datetime.fromisoformat(json.loads(marker.read_text())["deleted_at"])
    older = deleted - timedelta(seconds=FS_WAIT + 1)
    marker.write_text(json.dumps({"deleted_at": older.isoformat()}))
    await _after_the_wait(a, c)


async def test_azure_three_servers_on_one_vault(start_azure: StartAzure) -> None:
    a, b, c = [await start_azure() for _ in range(3)]
    await _scenario(a, b, c)
    assert a.vault.is_soft_deleted("k1")
    a.vault.age_deletion("k1", AZURE_WAIT + 1)
    await _after_the_wait(a, c)


async def test_fs_two_servers_of_three_workers_each(tmp_path: Path, tls_ca: trustme.CA) -> None:
    """Every worker of every server refuses the deleted name, each request on a fresh
    connection (so on whichever worker the kernel picks)."""
    setup = server_setup(tmp_path, tls_ca, f"keystore:\n  fs:\n    path: {tmp_path}/keys\n")
    servers = [await start_process(setup, "--workers", "3") for _ in range(2)]
    (_, port_a), (_, port_b) = servers
    try:
        async with setup.client(port_a) as client:
            await client.create_key("k1")
        async with setup.client(port_b) as client:
            await client.generate_key("k1")
        async with setup.client(port_a) as client:
            await client.delete_key("k1")
        for port in (port_a, port_b, port_a, port_b, port_a, port_b):
            async with setup.client(port) as client:
                status, _, body = await client.request("POST", "/v1/key/create/k1")
            assert status == 409, body
            assert b"it can be reused after " in body
    finally:
        for process, _ in servers:
            await stop_process(process)
