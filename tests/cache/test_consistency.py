"""The cache never serves a deleted key, a stale version, or one key's value for another."""

from __future__ import annotations

import asyncio

import pytest

from aiokes.cache import CacheSettings, KeyCache
from aiokes.errors import KeyExists, KeyNotFound, KeystoreError, KeystoreUnreachable

from .fakes import CountingKeystore, decode, record

HANG_GUARD = 5.0  # seconds; only reached when the behaviour under test is broken


async def make_cache(*names: str) -> tuple[KeyCache[str], CountingKeystore]:
    keystore = CountingKeystore()
    for name in names:
        await keystore.create(name, record(name))
    return KeyCache(keystore, decode, CacheSettings()), keystore


class FailingDeletes(CountingKeystore):
    async def delete(self, name: str) -> None:
        await super().delete(name)  # it happened, but the reply was lost
        raise KeystoreUnreachable("timeout reading the reply")


async def hold_one_read(
    cache: KeyCache[str], keystore: CountingKeystore, name: str
) -> tuple[asyncio.Event, asyncio.Task[str]]:
    """A get of ``name`` whose keystore read has fetched the record and is held open."""
    release = asyncio.Event()
    keystore.hold_reads = release
    task = asyncio.create_task(cache.get(name))
    await keystore.read_started.wait()
    keystore.hold_reads = None
    return release, task


async def test_delete_evicts_the_entry() -> None:
    cache, keystore = await make_cache("k")
    await cache.get("k")
    await cache.delete("k")
    assert "k" not in cache
    with pytest.raises(KeyNotFound):
        await cache.get("k")
    assert keystore.reads["k"] == 2


async def test_delete_evicts_when_keystore_says_not_found() -> None:
    """Deleted by another replica: our delete answers 404 and drops the stale entry."""
    cache, keystore = await make_cache("k")
    await cache.get("k")
    await keystore.inner.delete("k")
    with pytest.raises(KeyNotFound):
        await cache.delete("k")
    assert "k" not in cache


async def test_delete_evicts_even_when_the_keystore_fails() -> None:
    keystore = FailingDeletes()
    await keystore.create("k", record("k"))
    cache = KeyCache(keystore, decode, CacheSettings())
    await cache.get("k")
    with pytest.raises(KeystoreError):
        await cache.delete("k")
    assert "k" not in cache
    with pytest.raises(KeyNotFound):
        await cache.get("k")


async def test_read_racing_a_delete_does_not_resurrect_the_key() -> None:
    cache, keystore = await make_cache("k")
    release, racing_get = await hold_one_read(cache, keystore, "k")  # read k#1 ...
    await cache.delete("k")  # ... then k is deleted before the reply arrives
    release.set()
    assert await racing_get == "k#1", "the racing read may answer with what it read"
    assert "k" not in cache, "but must not cache a deleted key"
    with pytest.raises(KeyNotFound):
        await cache.get("k")


async def test_get_after_delete_does_not_join_the_older_read() -> None:
    cache, keystore = await make_cache("k")
    release, racing_get = await hold_one_read(cache, keystore, "k")
    await cache.delete("k")
    with pytest.raises(KeyNotFound):
        # Its own read answers at once; joining the held one would hang (hence the guard).
        await asyncio.wait_for(cache.get("k"), timeout=HANG_GUARD)
    assert keystore.reads["k"] == 2
    release.set()
    await racing_get


async def test_read_racing_a_delete_and_recreate_keeps_the_new_version() -> None:
    cache, keystore = await make_cache("k")
    release, racing_get = await hold_one_read(cache, keystore, "k")
    await cache.delete("k")
    await cache.create("k", record("k", 2))
    assert await asyncio.wait_for(cache.get("k"), timeout=HANG_GUARD) == "k#2"
    release.set()
    await racing_get
    assert await cache.get("k") == "k#2"


async def test_flush_during_a_read_keeps_its_result_out() -> None:
    cache, keystore = await make_cache("k")
    release, racing_get = await hold_one_read(cache, keystore, "k")
    await cache.sweep_any()
    release.set()
    assert await racing_get == "k#1"
    assert "k" not in cache


async def test_create_does_not_populate_the_cache() -> None:
    cache, keystore = await make_cache()
    await cache.create("k", record("k"))
    assert "k" not in cache
    assert await cache.get("k") == "k#1"
    assert keystore.reads["k"] == 1


async def test_create_evicts_a_key_deleted_elsewhere() -> None:
    """A successful create proves the cached value under that name is gone from the store."""
    cache, keystore = await make_cache("k")
    await cache.get("k")
    await keystore.inner.delete("k")  # another replica deleted it
    await cache.create("k", record("k", 2))
    assert await cache.get("k") == "k#2"


async def test_failed_create_keeps_the_entry() -> None:
    cache, keystore = await make_cache("k")
    await cache.get("k")
    with pytest.raises(KeyExists):
        await cache.create("k", record("k", 2))
    assert await cache.get("k") == "k#1"
    assert keystore.reads["k"] == 1


async def test_list_always_asks_the_keystore() -> None:
    cache, _ = await make_cache("a", "b")
    await cache.get("a")
    page = await cache.list("", -1)
    assert page.names == ["a", "b"]
    await cache.create("c", record("c"))
    assert (await cache.list("c")).names == ["c"]
