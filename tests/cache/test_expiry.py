"""Expiry as KES defines it (spec §8): periodic flushes, a used bit, offline mode, an LRU bound.

Time is a :class:`FakeClock`; ``run_due`` runs whatever the background tasks would run at
that moment, so every test is exact and instant.
"""

from __future__ import annotations

import asyncio
import math

import pytest

from aiokes.cache import CacheSettings, KeyCache
from aiokes.errors import KeystoreUnreachable

from .fakes import CountingKeystore, FakeClock, decode, record


async def make_cache(
    settings: CacheSettings, names: tuple[str, ...] = ("a", "b", "c", "d")
) -> tuple[KeyCache[str], CountingKeystore, FakeClock]:
    keystore = CountingKeystore()
    for name in names:
        await keystore.create(name, record(name))
    clock = FakeClock()
    return KeyCache(keystore, decode, settings, clock=clock), keystore, clock


async def advance(cache: KeyCache[str], clock: FakeClock, to: float) -> None:
    clock.set(to)
    await cache.run_due()


def test_defaults_are_kes_documented_intent_not_its_bug() -> None:
    """any 5m and unused 30s (KES HEAD instead flushes all every 30s), offline off."""
    settings = CacheSettings()
    assert (settings.expiry_any, settings.expiry_unused, settings.expiry_offline) == (
        300.0,
        30.0,
        0.0,
    )
    assert settings.probe_interval == 10.0
    assert settings.max_keys == 100_000


@pytest.mark.parametrize("field", ["expiry_any", "expiry_unused", "expiry_offline"])
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_settings_reject_non_finite_periods(field: str, bad: float) -> None:
    with pytest.raises(ValueError, match=field):
        CacheSettings(**{field: bad})  # type: ignore[arg-type]


async def test_any_is_a_periodic_full_flush_not_a_per_entry_ttl() -> None:
    """An entry cached one second before the tick goes with everything else at the tick."""
    cache, _, clock = await make_cache(CacheSettings(expiry_any=300, expiry_unused=0))
    assert await cache.get("a") == "a#1"
    await advance(cache, clock, 299)
    assert await cache.get("b") == "b#1"
    await advance(cache, clock, 299.9)
    assert ("a" in cache, "b" in cache) == (True, True)
    await advance(cache, clock, 300)
    assert ("a" in cache, "b" in cache) == (False, False)
    # The next flush is a full period later, whatever was cached in between.
    await cache.get("a")
    await advance(cache, clock, 599.9)
    assert "a" in cache
    await advance(cache, clock, 600)
    assert "a" not in cache
    assert cache.stats().expirations == 3


async def test_unused_entry_lives_between_half_and_full_unused_period() -> None:
    cache, _, clock = await make_cache(CacheSettings(expiry_any=0, expiry_unused=30))
    await advance(cache, clock, 14.9)
    await cache.get("a")  # cached just before the first sweep: 15.1 s to live
    await advance(cache, clock, 15)
    assert "a" in cache, "a fresh entry is marked used and survives one sweep"
    await advance(cache, clock, 29.9)
    assert "a" in cache
    await advance(cache, clock, 30)
    assert "a" not in cache


async def test_used_entry_survives_unused_sweeps() -> None:
    cache, keystore, clock = await make_cache(CacheSettings(expiry_any=0, expiry_unused=30))
    await cache.get("a")
    for tick in range(1, 20):
        await advance(cache, clock, tick * 15 - 1)
        assert await cache.get("a") == "a#1"  # a use in every half period
        await advance(cache, clock, tick * 15)
        assert "a" in cache
    assert keystore.reads["a"] == 1
    await advance(cache, clock, 20 * 15)  # not used since the last sweep
    assert "a" not in cache


async def test_zero_periods_disable_expiry() -> None:
    """As in KES before 2024-04: with every period off, entries live for ever."""
    settings = CacheSettings(expiry_any=0, expiry_unused=0, expiry_offline=0)
    cache, _, clock = await make_cache(settings)
    await cache.get("a")
    await advance(cache, clock, 1e9)
    assert "a" in cache


async def test_missed_ticks_are_skipped_not_replayed() -> None:
    """Like a Go ticker: after a stall the job runs once, then on its original grid."""
    cache, _, clock = await make_cache(CacheSettings(expiry_any=300, expiry_unused=0))
    await cache.get("a")
    await advance(cache, clock, 3000.5)  # ten periods late
    assert cache.stats().expirations == 1
    await cache.get("a")
    await advance(cache, clock, 3000.5)
    await advance(cache, clock, 3299.9)
    assert "a" in cache, "no catch-up flush for the nine missed ticks"
    await advance(cache, clock, 3300)
    assert "a" not in cache


async def test_lru_bound_evicts_least_recently_used() -> None:
    cache, keystore, _ = await make_cache(CacheSettings(max_keys=3))
    for name in ("a", "b", "c"):
        await cache.get(name)
    await cache.get("a")  # now b is the least recently used
    await cache.get("d")
    assert ["a" in cache, "b" in cache, "c" in cache, "d" in cache] == [True, False, True, True]
    assert cache.stats().evictions == 1
    assert cache.stats().entries == 3
    await cache.get("b")
    assert "c" not in cache
    assert keystore.reads["b"] == 2


async def test_unbounded_when_max_keys_is_zero() -> None:
    names = tuple(f"k{i}" for i in range(50))
    cache, _, _ = await make_cache(CacheSettings(max_keys=0), names)
    for name in names:
        await cache.get(name)
    assert cache.stats().entries == 50
    assert cache.stats().evictions == 0


OFFLINE = CacheSettings(expiry_any=300, expiry_unused=30, expiry_offline=60, probe_interval=10)


async def test_failed_probe_turns_offline_and_pauses_any_and_unused() -> None:
    cache, keystore, clock = await make_cache(OFFLINE)
    await cache.get("a")
    keystore.status_error = KeystoreUnreachable("network down")
    await advance(cache, clock, 10)  # probe fails
    assert cache.offline
    assert cache.stats().offline
    for now in (15, 30, 45):  # unused sweeps at 15 and 30 would have dropped "a"
        await advance(cache, clock, now)
    assert "a" in cache, "cached keys keep serving during an outage"
    await advance(cache, clock, 59.9)
    assert "a" in cache
    await advance(cache, clock, 60)  # the offline flush
    assert "a" not in cache


async def test_offline_skips_the_any_flush() -> None:
    settings = CacheSettings(expiry_any=30, expiry_unused=0, expiry_offline=100)
    cache, keystore, clock = await make_cache(settings)
    keystore.status_error = KeystoreUnreachable("network down")
    await advance(cache, clock, 20)  # probes at 10 and 20 fail
    await cache.get("a")
    await advance(cache, clock, 30)
    assert "a" in cache


async def test_successful_probe_goes_back_online_and_sweeps_resume() -> None:
    cache, keystore, clock = await make_cache(OFFLINE)
    keystore.status_error = KeystoreUnreachable("network down")
    await advance(cache, clock, 10)
    await cache.get("a")
    keystore.status_error = None
    await advance(cache, clock, 20)  # probe succeeds
    assert not cache.offline
    await advance(cache, clock, 30)  # sweep at 30 clears the bit
    await advance(cache, clock, 45)  # sweep at 45 drops it
    assert "a" not in cache


async def test_offline_flush_does_nothing_while_online() -> None:
    cache, _, clock = await make_cache(OFFLINE)
    await advance(cache, clock, 59)
    await cache.get("a")
    await advance(cache, clock, 60)  # offline job is due, but the probes succeeded
    assert "a" in cache


async def test_status_while_offline_fails_without_contacting_keystore() -> None:
    """Spec §2.2/§2.3: ready and status answer at once during an outage."""
    cache, keystore, _ = await make_cache(OFFLINE)
    keystore.status_error = KeystoreUnreachable("network down")
    await cache.probe()
    calls = keystore.status_calls
    with pytest.raises(KeystoreUnreachable):
        await cache.status()
    assert keystore.status_calls == calls


async def test_status_online_asks_the_keystore() -> None:
    cache, keystore, _ = await make_cache(OFFLINE)
    state = await cache.status()
    assert state.latency == 0.001
    assert keystore.status_calls == 1


async def test_without_offline_caching_a_failed_probe_changes_nothing() -> None:
    """offline: 0 means no offline mode: sweeps run and status asks the keystore."""
    cache, keystore, clock = await make_cache(CacheSettings(expiry_any=300, expiry_unused=0))
    keystore.status_error = KeystoreUnreachable("network down")
    await cache.probe()
    assert not cache.offline
    await cache.get("a")
    await advance(cache, clock, 300)
    assert "a" not in cache
    with pytest.raises(KeystoreUnreachable, match="network down"):
        await cache.status()  # the keystore's own answer, not the cached flag


async def test_without_offline_caching_no_probe_is_scheduled() -> None:
    cache, keystore, clock = await make_cache(CacheSettings())
    await advance(cache, clock, 100)
    assert keystore.status_calls == 0


async def test_probe_runs_every_probe_interval() -> None:
    cache, keystore, clock = await make_cache(OFFLINE)
    await advance(cache, clock, 9.9)
    assert keystore.status_calls == 0
    for tick in range(1, 6):
        await advance(cache, clock, tick * 10)
    assert keystore.status_calls == 5


async def test_probe_slower_than_its_period_counts_as_failure() -> None:
    """A hanging keystore must not keep the cache online (real 10 ms timeout)."""
    settings = CacheSettings(expiry_offline=60, probe_interval=0.01)
    cache, keystore, _ = await make_cache(settings)
    keystore.hold_status = asyncio.Event()  # never set
    await cache.probe()
    assert cache.offline
