"""``--workers 3`` is ONE KES server (issue 10): writes are seen by every worker before they
answer, a key is read from the keystore once for the whole server, the keys the server holds
serve on every worker in an outage, ``/v1/status`` gives one answer and the log streams carry
every worker's events. Every request goes on a fresh connection, so the kernel spreads them
over the workers; 12 of them per check make it all but certain that every worker answers.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import trustme

from aiokes.client.tls import client_ssl_context
from bench.fakevault import CLIENT_SECRET, FakeVault
from tests.server_group import FileOpens, Group, keystore_reads, running_group
from tests.test_azure_server import GET_VERSION, SECRET_VARIABLE, keystore_yaml
from tests.vault_link import VaultLink

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pidfd, inotify")

FRESH = 12  # fresh connections per check
STORM = 150  # concurrent generates of one cold key, each on its own connection
ISSUE_STORM = 1000  # issue 10's own case: 1,000 concurrent generates on 4 workers


@pytest.fixture
async def group(tmp_path: Path, tls_ca: trustme.CA) -> AsyncIterator[Group]:
    async with running_group(tmp_path / "group", tls_ca) as running:
        yield running


async def _everywhere(group: Group, name: str, ciphertext: bytes) -> list[int]:
    """Decrypt on FRESH fresh connections: the statuses."""
    results = await asyncio.gather(*(group.decrypt(name, ciphertext) for _ in range(FRESH)))
    return [status for status, _ in results]


async def _created_and_warm(group: Group, name: str) -> tuple[bytes, bytes]:
    """Create ``name``, seal a data key with it and decrypt that on every worker (so every
    worker holds a copy of the key)."""
    assert await group.call("POST", f"/v1/key/create/{name}") == (200, b"")
    status, plaintext, ciphertext = await group.generate(name)
    assert status == 200
    assert await _everywhere(group, name, ciphertext) == [200] * FRESH
    return plaintext, ciphertext


# -- point 1: writes are seen everywhere before they answer ------------------------------------


async def test_a_deleted_key_decrypts_on_no_worker(group: Group) -> None:
    _, ciphertext = await _created_and_warm(group, "doomed")
    assert await group.call("DELETE", "/v1/key/delete/doomed") == (200, b"")
    assert await _everywhere(group, "doomed", ciphertext) == [404] * FRESH
    generated = await asyncio.gather(*(group.generate("doomed") for _ in range(FRESH)))
    assert [status for status, _, _ in generated] == [404] * FRESH


async def test_a_recreated_name_opens_none_of_the_old_ciphertexts(group: Group) -> None:
    _, old = await _created_and_warm(group, "reborn")
    assert await group.call("DELETE", "/v1/key/delete/reborn") == (200, b"")
    # The name is reserved by its tombstone (other instances may still cache the key) until
    # an operator lifts it; then the name is free and the old key must stay dead everywhere.
    status, _ = await group.call("POST", "/v1/key/create/reborn")
    assert status == 409
    await _lift_tombstone(group, "reborn")
    assert await group.call("POST", "/v1/key/create/reborn") == (200, b"")
    assert await _everywhere(group, "reborn", old) == [400] * FRESH  # not authentic
    status, plaintext, new = await group.generate("reborn")
    assert status == 200
    opened = await asyncio.gather(*(group.decrypt("reborn", new) for _ in range(FRESH)))
    assert opened == [(200, plaintext)] * FRESH


async def test_a_created_or_imported_key_is_found_by_every_worker(group: Group) -> None:
    missing = await asyncio.gather(*(group.call("GET", "/v1/key/describe/new") for _ in range(6)))
    assert {status for status, _ in missing} == {404}
    assert await group.call("POST", "/v1/key/create/new") == (200, b"")
    found = await asyncio.gather(*(group.call("GET", "/v1/key/describe/new") for _ in range(6)))
    assert {status for status, _ in found} == {200}
    key = os.urandom(32)
    body = {"key": base64.b64encode(key).decode(), "cipher": "AES256"}
    assert await group.call("POST", "/v1/key/import/imported", body) == (200, b"")
    sealed = await group.call("POST", "/v1/key/encrypt/imported", {"plaintext": "aGk="})
    assert sealed[0] == 200
    ciphertext = base64.b64decode(json.loads(sealed[1])["ciphertext"])
    assert await _everywhere(group, "imported", ciphertext) == [200] * FRESH


# -- point 2: one keystore read per key for the whole server -----------------------------------


async def _storm(group: Group, name: str, size: int = STORM) -> list[int]:
    results = await asyncio.gather(*(group.generate(name) for _ in range(size)))
    return [status for status, _, _ in results]


async def test_a_cold_key_storm_reads_the_fs_keystore_once(group: Group) -> None:
    opens = FileOpens(group.keystore_dir)
    try:
        assert await group.call("POST", "/v1/key/create/cold") == (200, b"")
        assert await _storm(group, "cold") == [200] * STORM
        assert await _storm(group, "cold") == [200] * (STORM)
        assert opens.count("cold") == 1  # every worker served it; the keystore saw one read
    finally:
        opens.close()

    # /v1/status: one answer for the server, whichever worker gives it.
    statuses = await asyncio.gather(*(keystore_reads(group) for _ in range(6)))
    assert set(statuses) == {1}


async def test_a_cold_key_storm_reads_the_vault_once(tmp_path: Path, tls_ca: trustme.CA) -> None:
    async with FakeVault.running(tmp_path) as vault:
        link = VaultLink(vault.url)
        await link.start()
        keystore = keystore_yaml(link.url, vault.ca_file, max_retries=2, retry_max_delay="20ms")
        env = {SECRET_VARIABLE: CLIENT_SECRET}
        try:
            async with running_group(
                tmp_path / "g", tls_ca, workers=4, keystore=keystore, env=env
            ) as group:
                assert await group.call("POST", "/v1/key/create/cold") == (200, b"")
                reads = vault.count(*GET_VERSION)
                link.hold()  # every request of the storm waits on the one cold read
                all_sent = asyncio.Event()
                storm = asyncio.ensure_future(group.storm("cold", ISSUE_STORM, all_sent=all_sent))
                await all_sent.wait()
                link.release()
                assert await storm == [200] * ISSUE_STORM
                assert vault.count(*GET_VERSION) == reads + 1
        finally:
            await link.cut()


# -- offline: the keys the server holds serve on every worker ----------------------------------


async def test_in_an_outage_every_worker_serves_the_keys_the_server_holds(
    tmp_path: Path, tls_ca: trustme.CA
) -> None:
    cache = "cache:\n  expiry:\n    any: 1h\n    unused: 1h\n    offline: 1h\n"
    async with running_group(tmp_path / "g", tls_ca, cache=cache) as group:
        assert await group.call("POST", "/v1/key/create/held") == (200, b"")
        _, plaintext, ciphertext = await group.generate("held")  # one worker read it
        group.keystore_dir.rename(group.directory / "keys-gone")  # the keystore is gone
        results = await asyncio.gather(*(group.decrypt("held", ciphertext) for _ in range(FRESH)))
        assert results == [(200, plaintext)] * FRESH


# -- point 3: log streams carry every worker's events ------------------------------------------


async def _subscribed_lines(
    group: Group, kind: str, requests: int, path: str, marker: str
) -> list[str]:
    """Subscribe to ``/v1/log/<kind>``, then send ``requests`` requests to ``path`` with a
    numbered suffix on fresh connections; the stream's lines until ``requests`` lines hold
    ``marker``."""
    context: ssl.SSLContext = client_ssl_context(
        cert_file=group.admin.cert_file, key_file=group.admin.key_file, ca_file=group.ca_file
    )
    connector = aiohttp.TCPConnector(ssl=context)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(
            f"https://127.0.0.1:{group.port}/v1/log/{kind}",
            timeout=aiohttp.ClientTimeout(total=None),
        ) as response,
    ):
        assert response.status == 200  # from here on every worker forwards its events
        await asyncio.gather(*(group.call("GET", f"{path}{n}") for n in range(requests)))
        lines: list[str] = []
        async with asyncio.timeout(10):
            while sum(marker in line for line in lines) < requests:
                lines.append((await response.content.readline()).decode())
        return lines


async def test_the_audit_stream_carries_every_workers_requests(group: Group) -> None:
    lines = await _subscribed_lines(group, "audit", FRESH, "/v1/key/describe/audited-", "audited-")
    paths = {json.loads(line)["request"]["path"] for line in lines if "audited-" in line}
    assert paths == {f"/v1/key/describe/audited-{n}" for n in range(FRESH)}


async def test_one_workers_events_reach_another_workers_subscriber_in_order(
    group: Group,
) -> None:
    """40 requests on one keep-alive connection (one worker), each sent after the previous
    answer, while requests on fresh connections interleave: that worker's events arrive in
    the order it made them (and, with two chances in three, through the keeper's hub)."""
    context = client_ssl_context(
        cert_file=group.admin.cert_file, key_file=group.admin.key_file, ca_file=group.ca_file
    )
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session,
        session.get(
            f"https://127.0.0.1:{group.port}/v1/log/audit",
            timeout=aiohttp.ClientTimeout(total=None),
        ) as response,
        group.client() as keep_alive,
    ):
        assert response.status == 200

        async def in_sequence() -> None:
            for n in range(40):
                await keep_alive.request("GET", f"/v1/key/describe/ordered-{n:02}")

        noise = (group.call("GET", f"/v1/key/describe/noise-{n}") for n in range(FRESH))
        await asyncio.gather(in_sequence(), *noise)
        ordered: list[str] = []
        async with asyncio.timeout(10):
            while len(ordered) < 40:
                line = (await response.content.readline()).decode()
                if "ordered-" in line:
                    ordered.append(json.loads(line)["request"]["path"])
    assert ordered == [f"/v1/key/describe/ordered-{n:02}" for n in range(40)]


async def test_the_error_stream_carries_every_workers_errors(group: Group) -> None:
    broken = group.keystore_dir / "broken-0"
    for n in range(FRESH):
        path = group.keystore_dir / f"broken-{n}"
        path.write_bytes(b"not a key record")
        path.chmod(0o600)
    assert broken.exists()
    marker = "failed to read key 'broken-"
    lines = await _subscribed_lines(group, "error", FRESH, "/v1/key/describe/broken-", marker)
    failures = {json.loads(line)["message"].split("'")[1] for line in lines if marker in line}
    assert failures == {f"broken-{n}" for n in range(FRESH)}


async def test_unused_expiry_counts_the_hits_of_every_worker(
    tmp_path: Path, tls_ca: trustme.CA
) -> None:
    """Hits stay in the workers, yet a key in use on any worker survives the keeper's unused
    sweeps (every half second here); once idle it is dropped everywhere and read again once.
    Without the keeper collecting the workers' hits it would be dropped within a second."""
    cache = "cache:\n  expiry:\n    any: 1h\n    unused: 1s\n"
    async with running_group(tmp_path / "g", tls_ca, cache=cache) as group:
        assert await group.call("POST", "/v1/key/create/busy") == (200, b"")
        loop = asyncio.get_running_loop()
        busy_until = loop.time() + 3  # six sweeps
        while loop.time() < busy_until:
            assert (await group.generate("busy"))[0] == 200
        assert await keystore_reads(group) == 1

        async def entries() -> int:
            _, body = await group.call("GET", "/v1/status")
            return int(json.loads(body)["cache"]["entries"])

        async with asyncio.timeout(15):  # idle: the keeper's sweeps drop it
            while await entries() != 0:  # noqa: ASYNC110 - polled: no event to await
                await asyncio.sleep(0.2)
        assert await _storm_of(group, "busy", FRESH) == [200] * FRESH
        assert await keystore_reads(group) == 2  # dropped by every worker, read once again


async def _storm_of(group: Group, name: str, count: int) -> list[int]:
    results = await asyncio.gather(*(group.generate(name) for _ in range(count)))
    return [status for status, _, _ in results]


async def _lift_tombstone(group: Group, name: str) -> None:
    """``aiokes tombstone rm``, as an operator runs it against the server's config file."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aiokes",
        "tombstone",
        "rm",
        "--config",
        str(group.config_file),
        name,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
