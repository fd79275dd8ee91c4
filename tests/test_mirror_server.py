"""``keystore: mirror`` in real servers: a process killed with SIGKILL in the middle of a
mirrored create, and a ``--workers 3`` server whose status and metrics say when the two
keystores are out of step."""

from __future__ import annotations

import asyncio
import signal
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme

from aiokes.client import Client
from aiokes.config import ListenAddress, load_config
from aiokes.server import Server
from bench.fakevault import CLIENT_SECRET, FakeVault
from tests.server_process import START_TIMEOUT, server_setup, start_process, stop_process
from tests.test_azure_server import SECRET_VARIABLE, keystore_yaml
from tests.waiting import until

# -- kill -9 in the middle of a mirrored create ------------------------------------------------


@pytest.fixture
async def vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeVault]:
    monkeypatch.setenv(SECRET_VARIABLE, CLIENT_SECRET)
    async with FakeVault.running(tmp_path) as fake:
        yield fake


async def test_killed_between_the_two_writes_the_restarted_server_completes_the_copy(
    tmp_path: Path, tls_ca: trustme.CA, vault: FakeVault
) -> None:
    """SIGKILL after the primary (fs) wrote the record and while the secondary's (the
    vault's) write is in flight: the client never got an answer; the restarted server's
    start-up check copies the record, byte for byte, to the secondary. It does not roll the
    key back: another server may have read it from the primary meanwhile."""
    azure = keystore_yaml(vault.url, vault.ca_file, max_retries=0).removeprefix("keystore:\n")
    setup = server_setup(
        tmp_path,
        tls_ca,
        "keystore:\n  mirror:\n    primary:\n"
        f"      fs:\n        path: {tmp_path}/keys\n"
        f"    secondary:\n{textwrap.indent(azure, '    ')}",
    )
    process, port = await start_process(setup, "--workers", "1")  # SIGKILL hits the writer
    try:
        vault.faults.stall_writes = True
        client = setup.client(port)
        create = asyncio.create_task(client.create_key("k1"))
        await until(lambda: (tmp_path / "keys" / "k1").exists())
        await until(lambda: vault.count("PUT", "/secrets/{name}") >= 1)
        process.send_signal(signal.SIGKILL)
        await process.wait()
        with pytest.raises(Exception):  # noqa: B017 - any transport failure will do
            await create
        await client.aclose()
    finally:
        await stop_process(process)
    assert vault.values("k1") == []  # the stalled write was never stored

    vault.faults.stall_writes = False
    server = Server(load_config(setup.config_file), address=ListenAddress("127.0.0.1", 0))
    await server.start()
    try:
        record = (tmp_path / "keys" / "k1").read_bytes()
        await until(lambda: vault.values("k1") == [record.decode()])
        async with setup.client(server.port) as client:
            await until_status(client, lambda mirror: mirror["in_step"] is True)
            await client.generate_key("k1")
    finally:
        await server.stop()


async def until_status(client: Client, wanted: object) -> dict[str, object]:
    """Poll ``/v1/status`` until its ``mirror`` field satisfies ``wanted``."""
    found: dict[str, object] = {}

    async def check() -> bool:
        nonlocal found
        found = (await client.status())["mirror"]
        return bool(wanted(found))  # type: ignore[operator]

    async with asyncio.timeout(START_TIMEOUT):
        while not await check():  # noqa: ASYNC110 - each worker reports on its own
            await asyncio.sleep(0.05)
    return found


# -- three workers: status and metrics --------------------------------------------------------


async def test_workers_status_and_metrics_say_when_the_sides_differ(
    tmp_path: Path, tls_ca: trustme.CA
) -> None:
    primary, secondary = tmp_path / "primary", tmp_path / "secondary"
    setup = server_setup(
        tmp_path,
        tls_ca,
        "keystore:\n  mirror:\n    check_interval: 200ms\n"
        f"    primary:\n      fs:\n        path: {primary}\n"
        f"    secondary:\n      fs:\n        path: {secondary}\n",
    )
    process, port = await start_process(setup, "--workers", "3")
    try:
        for name in ("k1", "k2", "k3"):
            async with setup.client(port) as client:  # a fresh connection, any worker
                await client.create_key(name)
        assert sorted(p.name for p in secondary.iterdir()) == ["k1", "k2", "k3"]
        for name in ("k1", "k2", "k3"):
            assert (primary / name).read_bytes() == (secondary / name).read_bytes()
        async with setup.client(port) as client:
            await until_status(client, lambda mirror: mirror["in_step"] is True)

        secondary.rename(tmp_path / "unplugged")  # the backup disk is gone
        for _ in range(3):
            async with setup.client(port) as client:
                mirror = await until_status(client, lambda m: m["secondary_unreachable"])
                assert mirror["in_step"] is False
                assert "aiokes_mirror_in_step 0" in await client.metrics()
                await client.generate_key("k1")  # the primary still serves

        secondary.mkdir()
        async with setup.client(port) as client:
            await until_status(client, lambda mirror: mirror["in_step"] is True)
        assert sorted(p.name for p in secondary.iterdir()) == ["k1", "k2", "k3"]
        async with setup.client(port) as client:
            metrics = await client.metrics()
        assert "aiokes_mirror_in_step 1" in metrics
        assert 'aiokes_mirror_keys_out_of_step{only_on="primary"} 0' in metrics
    finally:
        await stop_process(process)
