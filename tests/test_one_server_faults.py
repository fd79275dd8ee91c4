"""``--workers 3`` as one server under faults (issue 10, point 6): a stuck worker is fenced
before a delete answers, kill -9 of a worker during a delete storm and during a cold-key
storm, kill -9 of the key keeper, a SIGHUP that swaps the keystore, and random sequences of
writes and reads compared with a single-process server. Every request on a fresh connection,
none allowed to take longer than the route timeout (:meth:`Group.call`)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import trustme

from aiokes.errors import AiokesError
from tests.server_group import FileOpens, Group, keystore_reads, running_group

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pidfd, inotify")

FRESH = 12


@pytest.fixture
async def group(tmp_path: Path, tls_ca: trustme.CA) -> AsyncIterator[Group]:
    async with running_group(tmp_path / "group", tls_ca) as running:
        yield running


def _state(pid: int) -> str:
    """The process state letter from /proc (``Z``: exited, not reaped), ``""`` if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


async def _decrypt_or_refused(group: Group, name: str, ciphertext: bytes) -> int:
    """The status, or 0 when the connection died with a killed worker."""
    try:
        status, _ = await group.decrypt(name, ciphertext)
    except (aiohttp.ClientError, AiokesError, ConnectionError):
        return 0
    return status


async def _everywhere(group: Group, name: str, ciphertext: bytes) -> list[int]:
    tasks = (_decrypt_or_refused(group, name, ciphertext) for _ in range(FRESH))
    return list(await asyncio.gather(*tasks))


async def test_a_stuck_worker_is_fenced_before_a_delete_answers(group: Group) -> None:
    assert (await group.call("POST", "/v1/key/create/fenced"))[0] == 200
    _, _, ciphertext = await group.generate("fenced")
    assert set(await _everywhere(group, "fenced", ciphertext)) == {200}
    stuck = min(group.workers())
    os.kill(stuck, signal.SIGSTOP)  # alive, holding the key, but not answering
    try:
        assert await group.call("DELETE", "/v1/key/delete/fenced") == (200, b"")
        assert _state(stuck) in ("", "Z")  # dead before the delete answered
    finally:
        if _state(stuck) not in ("", "Z"):
            os.kill(stuck, signal.SIGKILL)
    await group.wait_for_group({stuck})
    assert await _everywhere(group, "fenced", ciphertext) == [404] * FRESH


async def test_kill_9_of_a_worker_during_a_delete_storm_serves_no_deleted_key(
    group: Group,
) -> None:
    names = [f"storm-{n}" for n in range(24)]
    ciphertexts = {}
    for name in names:
        assert (await group.call("POST", f"/v1/key/create/{name}"))[0] == 200
        ciphertexts[name] = (await group.generate(name))[2]
    for name in names:  # copies on (all but surely) every worker
        assert set(await _everywhere(group, name, ciphertexts[name])) == {200}
    victim = min(group.workers())

    async def delete_and_check(index: int, name: str) -> list[int]:
        if index == len(names) // 3:
            os.kill(victim, signal.SIGKILL)
        for _ in range(5):  # a delete sent to the killed worker got no answer: send it again
            try:
                status, _ = await group.call("DELETE", f"/v1/key/delete/{name}")
            except (aiohttp.ClientError, AiokesError, ConnectionError):
                continue
            if status in (200, 404):  # 404: the lost attempt had deleted it
                break
        return await _everywhere(group, name, ciphertexts[name])

    seen = await asyncio.gather(*(delete_and_check(n, name) for n, name in enumerate(names)))
    assert all(status in (0, 404) for statuses in seen for status in statuses), seen
    await group.wait_for_group({victim})
    for name in names:
        assert await _everywhere(group, name, ciphertexts[name]) == [404] * FRESH


async def test_kill_9_of_a_worker_during_a_cold_key_storm(group: Group) -> None:
    names = [f"cold-{n}" for n in range(5)]
    opens = FileOpens(group.keystore_dir)
    try:
        for name in names:
            assert (await group.call("POST", f"/v1/key/create/{name}"))[0] == 200
        victim = min(group.workers())

        async def generate(index: int) -> int:
            if index == 40:
                os.kill(victim, signal.SIGKILL)
            try:
                return (await group.generate(names[index % len(names)]))[0]
            except (aiohttp.ClientError, AiokesError, ConnectionError):
                return 0

        statuses = await asyncio.gather(*(generate(n) for n in range(120)))
        assert set(statuses) <= {0, 200}
        assert statuses.count(200) > 60
        await group.wait_for_group({victim})
        again = await asyncio.gather(*(group.generate(name) for name in names * 4))
        assert {status for status, _, _ in again} == {200}
        assert {name: opens.count(name) for name in names} == dict.fromkeys(names, 1)
        assert await keystore_reads(group) == len(names)  # exact: the keeper's own count
    finally:
        opens.close()


async def test_a_dead_keeper_restarts_with_every_worker(group: Group) -> None:
    assert (await group.call("POST", "/v1/key/create/kept"))[0] == 200
    assert (await group.call("POST", "/v1/key/create/gone"))[0] == 200
    _, plaintext, ciphertext = await group.generate("kept")
    _, _, gone_ciphertext = await group.generate("gone")
    assert set(await _everywhere(group, "gone", gone_ciphertext)) == {200}
    before = {group.keeper(), *group.workers()}
    os.kill(group.keeper(), signal.SIGKILL)
    await group.wait_for_group(before)  # a new keeper and three new workers
    assert not before & {group.keeper(), *group.workers()}
    assert await group.call("DELETE", "/v1/key/delete/gone") == (200, b"")
    assert await _everywhere(group, "gone", gone_ciphertext) == [404] * FRESH
    opened = await asyncio.gather(*(group.decrypt("kept", ciphertext) for _ in range(6)))
    assert opened == [(200, plaintext)] * 6


async def test_sighup_swaps_the_keystore_for_every_worker(group: Group) -> None:
    assert (await group.call("POST", "/v1/key/create/first-store"))[0] == 200
    _, _, ciphertext = await group.generate("first-store")
    assert set(await _everywhere(group, "first-store", ciphertext)) == {200}
    text = group.config_file.read_text()
    group.config_file.write_text(text.replace(f"{group.directory}/keys", f"{group.directory}/k2"))
    group.process.send_signal(signal.SIGHUP)
    async with asyncio.timeout(30):  # every worker drops the first store's key, together
        while await _everywhere(group, "first-store", ciphertext) != [404] * FRESH:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    assert (await group.call("POST", "/v1/key/create/second-store"))[0] == 200
    assert (group.directory / "k2" / "second-store").exists()
    assert not (group.keystore_dir / "second-store").exists()


# -- random sequences, compared with one process ----------------------------------------------

NAMES = ("a", "b", "c")


async def _run_sequence(group: Group, seed: int, steps: int) -> list[object]:
    """Random create/delete/generate/decrypt on fresh connections; the observable outcomes."""
    chosen = random.Random(seed)
    sealed: list[tuple[str, bytes, bytes]] = []  # (name, plaintext, ciphertext)
    outcomes: list[object] = []
    for _ in range(steps):
        operation = chosen.choice(("create", "delete", "generate", "decrypt", "decrypt"))
        name = chosen.choice(NAMES)
        if operation == "create":
            status, _ = await group.call("POST", f"/v1/key/create/{name}")
            outcomes.append((operation, name, status))
        elif operation == "delete":
            status, _ = await group.call("DELETE", f"/v1/key/delete/{name}")
            outcomes.append((operation, name, status))
        elif operation == "generate":
            status, plaintext, ciphertext = await group.generate(name)
            if status == 200:
                sealed.append((name, plaintext, ciphertext))
            outcomes.append((operation, name, status))
        elif sealed:
            name, plaintext, ciphertext = chosen.choice(sealed)
            status, opened = await group.decrypt(name, ciphertext)
            outcomes.append((operation, name, status, status != 200 or opened == plaintext))
    return outcomes


async def test_random_sequences_match_a_single_process_server(
    tmp_path: Path, tls_ca: trustme.CA
) -> None:
    seeds, steps = (1, 2, 3), 50
    async with running_group(tmp_path / "one", tls_ca, workers=1) as one:
        expected = [await _run_sequence(one, seed, steps) for seed in seeds]
    async with running_group(tmp_path / "three", tls_ca, workers=3) as three:
        for seed, outcomes in zip(seeds, expected, strict=True):  # the same order as above
            assert await _run_sequence(three, seed, steps) == outcomes


def _locked_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmLck:"):
            return int(line.split()[1])
    return 0


async def test_the_keeper_and_every_worker_lock_their_memory(group: Group) -> None:
    """Key material crosses into the keeper and the workers: each locks its pages (memory
    locks are not inherited across fork), wherever the supervisor could lock its own."""
    banner = "".join(group.output)
    if "MLock       enabled" not in banner:
        pytest.skip("mlockall is not permitted here (no CAP_IPC_LOCK, small LimitMEMLOCK)")
    assert (await group.call("POST", "/v1/key/create/locked"))[0] == 200
    assert (await group.generate("locked"))[0] == 200
    for pid in [group.keeper(), *group.workers()]:
        assert _locked_kib(pid) > 0, pid
