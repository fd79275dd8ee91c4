"""``KeyCache.cached``: the hot path's lookup answers from the cache only, and counts."""

from __future__ import annotations

from aiokes.cache import CacheSettings, KeyCache

from .fakes import CountingKeystore, decode, record


async def test_cached_answers_a_cached_key_and_counts_a_hit() -> None:
    keystore = CountingKeystore()
    await keystore.create("k", record("k"))
    cache = KeyCache(keystore, decode, CacheSettings())
    assert await cache.get("k") == "k#1"  # a miss: read from the keystore
    assert cache.cached("k") == "k#1"
    stats = cache.stats()
    assert (stats.hits, stats.misses, keystore.reads["k"]) == (1, 1, 1)


async def test_cached_is_none_for_an_uncached_key_and_reads_nothing() -> None:
    keystore = CountingKeystore()
    await keystore.create("k", record("k"))
    cache = KeyCache(keystore, decode, CacheSettings())
    assert cache.cached("k") is None
    assert keystore.reads["k"] == 0
    assert cache.stats().misses == 0  # only get() counts a miss: it is the one that reads
