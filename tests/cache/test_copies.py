"""The hooks through which the key keeper keeps the workers' copies coherent with its cache:
what the periodic jobs and ``max_keys`` drop is reported, and the unused sweep counts the
uses that other processes report (docs/workers.md)."""

from __future__ import annotations

from collections.abc import Iterable

from aiokes.cache import CacheSettings, KeyCache

from .fakes import CountingKeystore, FakeClock, decode, record


async def make_cache(
    settings: CacheSettings, used_elsewhere: set[str] | None = None
) -> tuple[KeyCache[str], list[list[str] | None], FakeClock]:
    keystore = CountingKeystore()
    for name in ("a", "b", "c"):
        await keystore.create(name, record(name))
    dropped: list[list[str] | None] = []

    async def used() -> Iterable[str]:
        return set(used_elsewhere or ())

    clock = FakeClock()
    cache = KeyCache(
        keystore,
        decode,
        settings,
        clock=clock,
        on_drop=dropped.append,
        used_elsewhere=None if used_elsewhere is None else used,
    )
    return cache, dropped, clock


async def test_the_any_flush_reports_that_everything_went() -> None:
    cache, dropped, _ = await make_cache(CacheSettings(expiry_any=60, expiry_unused=0))
    await cache.get("a")
    await cache.sweep_any()
    assert dropped == [None]
    assert "a" not in cache


async def test_the_unused_sweep_reports_the_idle_names_only() -> None:
    cache, dropped, _ = await make_cache(CacheSettings(expiry_any=0, expiry_unused=60))
    await cache.get("a")
    await cache.get("b")
    await cache.sweep_unused()  # clears the bits set on insert
    assert dropped == []
    cache.cached("a")
    await cache.sweep_unused()
    assert dropped == [["b"]]


async def test_uses_reported_by_other_processes_keep_an_entry() -> None:
    """Hits in the workers never reach the keeper's cache: their used-sets do."""
    used_elsewhere = {"b"}
    cache, dropped, _ = await make_cache(
        CacheSettings(expiry_any=0, expiry_unused=60), used_elsewhere
    )
    await cache.get("a")
    await cache.get("b")
    await cache.sweep_unused()
    await cache.sweep_unused()
    assert dropped == [["a"]]
    assert "b" in cache


async def test_max_keys_reports_what_it_evicts() -> None:
    cache, dropped, _ = await make_cache(CacheSettings(expiry_any=0, expiry_unused=0, max_keys=2))
    for name in ("a", "b", "c"):
        await cache.get(name)
    assert dropped == [["a"]]


async def test_peek_neither_counts_nor_touches() -> None:
    cache, _, _ = await make_cache(CacheSettings(expiry_any=0, expiry_unused=60))
    value = await cache.get("a")
    hits = cache.stats().hits
    await cache.sweep_unused()
    assert cache.peek("a") is value
    assert cache.peek("b") is None
    assert cache.stats().hits == hits
    await cache.sweep_unused()  # the peek was no use: the entry goes
    assert cache.peek("a") is None
