"""The key cache measured where it costs: in requests at Azure Key Vault (issue 4, point 5).

The real server on the Azure keystore, against the fake vault through the
:class:`~tests.test_azure_server.VaultLink`, which a test cuts for a real outage (connection
refused) or holds to keep a read in flight. The cache's periodic jobs are an hour away, so
each test runs them (``sweep_any``, ``sweep_offline``, ``probe``) exactly when it means to:
nothing sleeps, and the counts are exact.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

from aiokes.client import DEK
from tests import test_azure_server as azure_harness
from tests.test_azure_server import (
    PROBE,
    READ_FAILED,
    AzureServer,
    StartAzure,
)

# The server-on-a-fake-vault fixture, shared with tests/test_azure_server.py (vault and link
# come from conftest.py).
start_azure = azure_harness.start_azure

HOT_KEYS = [f"hot-{n}" for n in range(5)]
REQUESTS_PER_READ = 2  # a listing of the secret's versions, then a get of the oldest
UNREACHABLE = {"keystore_unavailable": True, "keystore_unreachable": True}
NOT_READY = (504, b'{"message":"key store is not reachable"\n}')
ROUTE_TIMEOUT = 15.0  # KES's default route timeout: no client waits longer for an answer


async def _dek_load(azure: AzureServer, requests: int, names: Sequence[str]) -> None:
    """``requests`` DEK requests spread over ``names``, 32 at a time: generate, then
    decrypt what it returned, as MinIO does for a PUT and a later GET of an object."""
    client = azure.client()
    limit = asyncio.Semaphore(32)

    async def generate_and_decrypt(name: str) -> None:
        async with limit:
            dek = await client.generate_key(name)
            assert await client.decrypt(name, dek.ciphertext) == dek.plaintext

    await asyncio.gather(
        *(generate_and_decrypt(names[n % len(names)]) for n in range(requests // 2))
    )


async def _until(condition: Callable[[], bool]) -> None:
    """Wait for a condition on the server's counters, which have no event to wait on."""
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110 - polled: nothing signals a counter change
            await asyncio.sleep(0.005)


async def _status(azure: AzureServer) -> dict[str, Any]:
    status, body = await azure.call("GET", "/v1/status")
    assert status == 200
    document: dict[str, Any] = json.loads(body)
    return document


def _reports_unreachable(status: dict[str, Any]) -> bool:
    return {flag: status.get(flag) for flag in UNREACHABLE} == UNREACHABLE


# -- reads per period ---------------------------------------------------------------------------


async def test_vault_reads_per_any_period_are_one_per_hot_key_whatever_the_load(
    start_azure: StartAzure,
) -> None:
    azure = await start_azure()
    for name in HOT_KEYS:
        assert await azure.call("POST", f"/v1/key/create/{name}") == (200, b"")
    requests_per_period = []
    for load in (400, 2000):
        requests = azure.vault_requests()
        await _dek_load(azure, load, HOT_KEYS)
        requests_per_period.append(azure.vault_requests() - requests)
        await azure.keys.sweep_any()  # the expiry.any period ends
    assert requests_per_period == [len(HOT_KEYS) * REQUESTS_PER_READ] * 2
    assert azure.keys.stats().keystore_reads == 2 * len(HOT_KEYS)


async def test_concurrent_generates_on_an_uncached_key_make_one_vault_read(
    start_azure: StartAzure,
) -> None:
    """50 generates arrive while the read they all need is held in flight: one read."""
    azure = await start_azure()
    assert await azure.call("POST", "/v1/key/create/my-key") == (200, b"")
    client = azure.client()
    reads, misses = azure.vault_reads(), azure.keys.stats().misses
    azure.link.hold()
    generates = [asyncio.create_task(client.generate_key("my-key")) for _ in range(50)]
    await _until(lambda: azure.keys.stats().misses == misses + 50)  # all 50 wait for it
    azure.link.release()
    deks: list[DEK] = await asyncio.gather(*generates)
    assert azure.vault_reads() == (reads[0] + 1, reads[1] + 1)
    assert len({dek.plaintext for dek in deks}) == 50
    for dek in deks:  # all sealed with the one key read
        assert await client.decrypt("my-key", dek.ciphertext) == dek.plaintext


# -- outages --------------------------------------------------------------------------------


async def _warm_then_cut(azure: AzureServer) -> dict[str, DEK]:
    """Create the hot keys and ``cold``, use the hot ones, then take the vault away."""
    client = azure.client()
    for name in [*HOT_KEYS, "cold"]:
        await client.create_key(name)
    deks = {name: await client.generate_key(name) for name in HOT_KEYS}
    await azure.link.cut()
    return deks


async def test_offline_cached_keys_keep_serving_and_uncached_keys_answer_502(
    start_azure: StartAzure,
) -> None:
    azure = await start_azure(offline="5m")
    deks = await _warm_then_cut(azure)
    await azure.keys.probe()
    assert azure.keys.stats().offline
    client = azure.client()
    for name, dek in deks.items():
        assert await client.decrypt(name, dek.ciphertext) == dek.plaintext
        fresh = await client.generate_key(name)
        assert await client.decrypt(name, fresh.ciphertext) == fresh.plaintext
    async with asyncio.timeout(ROUTE_TIMEOUT):
        assert await azure.call("POST", "/v1/key/generate/cold") == READ_FAILED
    going_offline, read_failed = azure.log.errors()
    assert going_offline.startswith("key cache: keystore unreachable, going offline: ")
    assert read_failed.startswith(
        f"failed to read key 'cold': azure key vault {azure.link.vault}: get key 'cold': "
        "vault not reachable (ServiceRequestError): "
    )


async def test_offline_uncached_key_fails_after_one_connection_retry(
    start_azure: StartAzure,
) -> None:
    azure = await start_azure(offline="5m", max_retries=4, retry_max_delay="10ms")
    await _warm_then_cut(azure)
    await azure.link.restore()
    azure.link.break_connections()  # down, but every connection attempt is counted
    await azure.keys.probe()
    assert azure.keys.stats().offline
    attempts = azure.link.connections
    assert await azure.call("POST", "/v1/key/generate/cold") == READ_FAILED
    # One attempt plus the single retry connection errors get (max_retries=4 would be 5).
    assert azure.link.connections - attempts == 2


async def test_offline_status_and_ready_answer_without_contacting_the_vault(
    start_azure: StartAzure,
) -> None:
    """While offline, status and readiness come from the last probe: even a vault that is
    back is not asked (nor connected to) until the next probe."""
    azure = await start_azure(offline="5m")
    await _warm_then_cut(azure)
    await azure.keys.probe()
    await azure.link.restore()
    requests, connections = azure.vault_requests(), azure.link.connections
    async with asyncio.timeout(5):
        assert _reports_unreachable(await _status(azure))
        assert await azure.call("GET", "/v1/ready") == NOT_READY
    assert (azure.vault_requests(), azure.link.connections) == (requests, connections)
    await azure.keys.probe()
    assert not azure.keys.stats().offline
    assert "keystore_latency" in await _status(azure)
    assert await azure.call("GET", "/v1/ready") == (200, b"")


async def test_offline_pauses_the_any_flush_until_the_offline_flush(
    start_azure: StartAzure,
) -> None:
    azure = await start_azure(offline="5m")
    deks = await _warm_then_cut(azure)
    await azure.keys.probe()
    await azure.keys.sweep_any()
    await azure.keys.sweep_unused()
    await azure.keys.sweep_unused()
    client = azure.client()
    for name, dek in deks.items():
        assert await client.decrypt(name, dek.ciphertext) == dek.plaintext
    await azure.keys.sweep_offline()
    assert await azure.call("POST", f"/v1/key/generate/{HOT_KEYS[0]}") == READ_FAILED


async def test_without_offline_cached_keys_serve_until_the_any_flush(
    start_azure: StartAzure,
) -> None:
    azure = await start_azure()  # cache.expiry.offline: 0
    deks = await _warm_then_cut(azure)
    await azure.keys.probe()
    assert not azure.keys.stats().offline
    client = azure.client()
    for name, dek in deks.items():
        assert await client.decrypt(name, dek.ciphertext) == dek.plaintext
    await azure.keys.sweep_any()
    assert await azure.call("POST", f"/v1/key/generate/{HOT_KEYS[0]}") == READ_FAILED


async def test_without_offline_status_asks_the_vault_every_time(
    start_azure: StartAzure,
) -> None:
    azure = await start_azure()
    await _warm_then_cut(azure)
    async with asyncio.timeout(ROUTE_TIMEOUT):
        assert _reports_unreachable(await _status(azure))
        assert await azure.call("GET", "/v1/ready") == NOT_READY
    await azure.link.restore()
    probes = azure.vault.count(*PROBE)
    status = await _status(azure)
    assert "keystore_latency" in status
    assert "keystore_unreachable" not in status
    assert azure.vault.count(*PROBE) == probes + 1
