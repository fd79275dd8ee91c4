"""Keystore load under sustained traffic: hot keys cost one read each per ``any`` period.

This is the property that keeps a busy cluster under Azure Key Vault's 400 reads/s: the
number of keystore reads depends on the number of hot keys and on time, never on the
number of requests. Time is simulated; nothing here sleeps.
"""

from __future__ import annotations

import random

from aiokes.cache import CacheSettings, KeyCache

from .fakes import CountingKeystore, FakeClock, decode, record

HOT_KEYS = [f"bucket-{i}" for i in range(20)]
STEP = 0.5  # seconds of simulated time between bursts of requests
COLD_EVERY = 10  # steps between two one-off keys, i.e. every 5 s


async def simulate(requests_per_step: int, seconds: float, cold_keys: int = 0) -> KeyCache[str]:
    """Serve gets for random hot keys (plus a few one-off cold keys) for ``seconds``."""
    keystore = CountingKeystore()
    cold = [f"cold-{i}" for i in range(cold_keys)]
    for name in HOT_KEYS + cold:
        await keystore.create(name, record(name))
    clock = FakeClock()
    cache = KeyCache(keystore, decode, CacheSettings(), clock=clock)  # any 5m, unused 30s
    rnd = random.Random(7)
    steps = int(seconds / STEP)
    for step in range(steps):
        clock.set(step * STEP)
        await cache.run_due()
        for _ in range(requests_per_step):
            name = rnd.choice(HOT_KEYS)
            assert await cache.get(name) == f"{name}#1"
        if cold and step % COLD_EVERY == 0:
            await cache.get(cold.pop())
    assert cache.stats().keystore_reads == keystore.total_reads
    return cache


async def test_hot_keys_cost_one_read_per_any_period_whatever_the_request_rate() -> None:
    periods = 3  # 15 simulated minutes: the cache starts empty, then flushes at 5 and 10
    light = await simulate(requests_per_step=10, seconds=900)
    heavy = await simulate(requests_per_step=60, seconds=900)
    assert light.stats().keystore_reads == heavy.stats().keystore_reads == periods * 20
    assert heavy.stats().hits == 60 * 1800 - periods * 20
    assert light.stats().hits + light.stats().misses == 10 * 1800


async def test_one_off_keys_expire_and_do_not_accumulate() -> None:
    cache = await simulate(requests_per_step=10, seconds=299, cold_keys=50)
    stats = cache.stats()
    assert stats.keystore_reads == 20 + 50
    # A key requested once lives at most 30 s (unused expiry); one arrives every 5 s.
    assert stats.entries <= 20 + 6
    assert stats.expirations >= 50 - 6
