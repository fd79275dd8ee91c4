"""Background jobs belong to the cache; a failing job is logged and keeps its schedule;
the counters tell metrics what happened."""

from __future__ import annotations

import asyncio
import logging

import pytest

from aiokes.cache import CacheSettings, CacheStats, KeyCache
from aiokes.cache.ticker import Ticker, run_forever
from aiokes.errors import KeyNotFound, KeystoreUnreachable

from .fakes import CountingKeystore, FakeClock, decode, record

HANG_GUARD = 5.0  # seconds; only reached when the behaviour under test is broken
OFFLINE_FAST = CacheSettings(expiry_offline=60, probe_interval=0.01)


def other_tasks() -> set[asyncio.Task[object]]:
    return asyncio.all_tasks() - {asyncio.current_task()}


async def test_start_runs_the_probe_in_the_background() -> None:
    keystore = CountingKeystore()
    keystore.status_error = KeystoreUnreachable("network down")
    cache = KeyCache(keystore, decode, OFFLINE_FAST)  # real clock, 10 ms probe period
    await cache.start()
    try:
        await asyncio.wait_for(keystore.status_started.wait(), HANG_GUARD)
        # The failing probe finished in the same loop step as it signalled.
        assert cache.offline
    finally:
        await cache.aclose()


async def test_aclose_stops_every_task_and_leaves_the_keystore_open() -> None:
    keystore = CountingKeystore()
    await keystore.create("k", record("k"))
    cache = KeyCache(keystore, decode, OFFLINE_FAST)
    await cache.start()
    await cache.get("k")
    assert len(other_tasks()) == 4  # probe, offline flush, any flush, unused sweep
    await cache.aclose()
    assert other_tasks() == set()
    assert not keystore.closed
    assert "k" not in cache, "closing drops the key material"


async def test_start_twice_starts_the_jobs_once() -> None:
    cache = KeyCache(CountingKeystore(), decode, CacheSettings())
    await cache.start()
    await cache.start()
    try:
        assert len(other_tasks()) == 2  # any flush and unused sweep; no offline caching
    finally:
        await cache.aclose()


async def test_failing_job_is_logged_and_runs_again(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    second_run = asyncio.Event()
    runs = 0

    async def job() -> None:
        nonlocal runs
        runs += 1
        clock.set(clock.now + 1)  # next run due at once
        if runs == 1:
            raise RuntimeError("a bug in a sweep")
        second_run.set()

    ticker = Ticker("flaky job", 1.0, job)
    ticker.restart(clock())
    clock.set(1.0)
    caplog.set_level(logging.ERROR, logger="aiokes.error")
    loop = asyncio.create_task(run_forever(ticker, clock))
    try:
        await asyncio.wait_for(second_run.wait(), HANG_GUARD)
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
    (failure,) = [r for r in caplog.records if r.name == "aiokes.error"]
    assert "flaky job" in failure.getMessage()
    assert failure.exc_info is not None


async def test_going_offline_and_back_is_logged_once_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    keystore = CountingKeystore()
    cache = KeyCache(keystore, decode, CacheSettings(expiry_offline=60))
    caplog.set_level(logging.INFO, logger="aiokes.error")
    keystore.status_error = KeystoreUnreachable("network down")
    await cache.probe()
    await cache.probe()
    keystore.status_error = None
    await cache.probe()
    await cache.probe()
    messages = [r.getMessage() for r in caplog.records if r.name == "aiokes.error"]
    assert len(messages) == 2
    assert "offline" in messages[0]
    assert "network down" in messages[0]
    assert "online" in messages[1]


async def test_stats_count_what_happened() -> None:
    keystore = CountingKeystore()
    for name in ("a", "b"):
        await keystore.create(name, record(name))
    clock = FakeClock()
    settings = CacheSettings(max_keys=1, expiry_offline=60)
    cache = KeyCache(keystore, decode, settings, clock=clock)
    await cache.get("a")  # miss, read
    await cache.get("a")  # hit
    await cache.get("b")  # miss, read, evicts a
    with pytest.raises(KeyNotFound):
        await cache.get("nope")  # miss, read, not an error
    keystore.read_error = KeystoreUnreachable("reset")
    with pytest.raises(KeystoreUnreachable):
        await cache.get("a")  # miss, read, error
    await cache.sweep_any()  # expires b
    keystore.status_error = KeystoreUnreachable("down")
    await cache.probe()
    assert cache.stats() == CacheStats(
        hits=1,
        misses=4,
        evictions=1,
        expirations=1,
        keystore_reads=4,
        keystore_read_errors=1,
        entries=0,
        offline=True,
    )
