"""One keystore read per name at a time, shared by every caller that missed meanwhile."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from aiokes.cache import CacheSettings, KeyCache
from aiokes.errors import InvalidKeyRecord, KeyNotFound, KeystoreError, KeystoreUnreachable

from .fakes import CountingKeystore, decode, record


async def make_cache(*names: str) -> tuple[KeyCache[str], CountingKeystore]:
    keystore = CountingKeystore()
    for name in names:
        await keystore.create(name, record(name))
    return KeyCache(keystore, decode, CacheSettings()), keystore


async def start_held_gets(
    cache: KeyCache[str], keystore: CountingKeystore, name: str, count: int
) -> tuple[asyncio.Event, list[asyncio.Task[str]]]:
    """``count`` gets of ``name`` all waiting on one read that is held open."""
    release = asyncio.Event()
    keystore.hold_reads = release
    tasks = [asyncio.create_task(cache.get(name)) for _ in range(count)]
    await keystore.read_started.wait()
    keystore.hold_reads = None
    return release, tasks


async def test_concurrent_misses_cause_one_keystore_read() -> None:
    cache, keystore = await make_cache("k")
    release, tasks = await start_held_gets(cache, keystore, "k", 50)
    release.set()
    assert await asyncio.gather(*tasks) == ["k#1"] * 50
    assert keystore.reads["k"] == 1
    assert cache.stats().keystore_reads == 1
    assert cache.stats().misses == 50


async def test_failed_read_fails_every_waiter_with_the_same_error_and_is_not_cached() -> None:
    cache, keystore = await make_cache("k")
    failure = KeystoreUnreachable("connection refused")
    keystore.read_error = failure
    tasks = [asyncio.create_task(cache.get("k")) for _ in range(10)]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(result is failure for result in results)
    assert keystore.reads["k"] == 1
    assert "k" not in cache
    assert cache.stats().keystore_read_errors == 1
    keystore.read_error = None
    assert await cache.get("k") == "k#1"
    assert keystore.reads["k"] == 2


async def test_missing_key_is_not_cached_and_not_a_read_error() -> None:
    cache, keystore = await make_cache()
    for _ in range(2):
        with pytest.raises(KeyNotFound):
            await cache.get("nope")
    assert keystore.reads["nope"] == 2
    assert cache.stats().keystore_read_errors == 0


async def test_decode_failure_fails_the_read_and_is_not_cached() -> None:
    keystore = CountingKeystore()
    await keystore.create("k", b"garbage")
    failure = InvalidKeyRecord("not a key record")

    def refuse(value: bytes) -> str:
        raise failure

    cache = KeyCache(keystore, refuse, CacheSettings())
    results = await asyncio.gather(cache.get("k"), cache.get("k"), return_exceptions=True)
    assert list(results) == [failure, failure]
    assert "k" not in cache
    assert cache.stats().keystore_read_errors == 1


async def test_cancelling_one_waiter_does_not_cancel_the_read_for_others() -> None:
    cache, keystore = await make_cache("k")
    release, tasks = await start_held_gets(cache, keystore, "k", 3)
    tasks[0].cancel()
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    assert results[1:] == ["k#1", "k#1"]
    assert keystore.reads["k"] == 1
    assert "k" in cache


async def test_read_completes_and_caches_when_every_waiter_gave_up() -> None:
    cache, keystore = await make_cache("k")
    release, tasks = await start_held_gets(cache, keystore, "k", 2)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    release.set()
    assert await cache.get("k") == "k#1"
    assert keystore.reads["k"] == 1


async def abandon_a_failing_read() -> None:
    """Start a read, cancel every caller waiting for it, then let the read fail."""
    cache, keystore = await make_cache("k")
    tasks_before = asyncio.all_tasks()
    release, waiters = await start_held_gets(cache, keystore, "k", 2)
    (read,) = asyncio.all_tasks() - tasks_before - set(waiters)
    for waiter in waiters:
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    keystore.read_error = KeystoreUnreachable("connection reset")
    release.set()
    await asyncio.wait([read])


async def test_failure_nobody_awaits_is_not_reported_as_never_retrieved() -> None:
    """A read whose callers all gave up must not log "Task exception was never retrieved"."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        await abandon_a_failing_read()
        gc.collect()  # the failed task is garbage now; asyncio reports when it is collected
    finally:
        loop.set_exception_handler(None)
    assert reported == []


async def test_different_names_are_read_concurrently() -> None:
    cache, keystore = await make_cache("a", "b")
    release = asyncio.Event()
    keystore.hold_reads = release
    first = asyncio.create_task(cache.get("a"))
    await keystore.read_started.wait()
    keystore.read_started.clear()
    second = asyncio.create_task(cache.get("b"))
    await keystore.read_started.wait()  # b's read began while a's is still held
    release.set()
    assert list(await asyncio.gather(first, second)) == ["a#1", "b#1"]


async def test_hit_completes_without_suspending() -> None:
    """The hot path takes no lock and starts no task: it never yields to the loop."""
    cache, keystore = await make_cache("k")
    await cache.get("k")
    tasks_before = len(asyncio.all_tasks())
    coroutine = cache.get("k")
    with pytest.raises(StopIteration) as finished:
        coroutine.send(None)
    assert finished.value.value == "k#1"
    assert len(asyncio.all_tasks()) == tasks_before
    assert cache.stats().hits == 1
    assert keystore.reads["k"] == 1


async def test_aclose_lets_reads_in_flight_answer_their_callers() -> None:
    """On reload, requests that missed just before the swap still get their key."""
    cache, keystore = await make_cache("k")
    release, tasks = await start_held_gets(cache, keystore, "k", 2)
    closing = asyncio.create_task(cache.aclose())  # runs before the released read resumes
    release.set()
    await closing
    assert list(await asyncio.gather(*tasks)) == ["k#1", "k#1"]
    assert "k" not in cache


async def test_aclose_fails_reads_outliving_the_grace_with_a_keystore_error() -> None:
    """Waiters of a read cut short by aclose get an error, not a stray CancelledError."""
    cache, keystore = await make_cache("k")
    release, tasks = await start_held_gets(cache, keystore, "k", 2)
    await cache.aclose(grace=0)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(type(result) is KeystoreError for result in results)
    assert "k" not in cache
    release.set()
