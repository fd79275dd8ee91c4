"""Randomised concurrency: gets, creates, deletes, flushes, LRU evictions, failed reads and
cancelled callers, interleaved at random over a keystore that replies after random delays.

Two properties are checked on every ``get``:

* it never answers with another key's record (records name their key);
* when no create or delete of that name overlapped it, it answers exactly what the
  keystore holds: a deleted key never comes back, a replaced key never shows its old
  version. All writes go through the cache, so nothing excuses a stale answer.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiokes.cache import CacheSettings, KeyCache
from aiokes.errors import KeyExists, KeyNotFound, KeystoreUnreachable
from aiokes.keystore.memory import MemoryKeystore

from .fakes import decode, record

Op = tuple[str, str]
# Gets dominate, as in production. Flushes are rare: each one hides earlier mistakes.
KINDS = ("get",) * 16 + ("create", "delete") * 3 + ("sweep_any", "sweep_unused", "cancel", "flaky")


class JitteryKeystore(MemoryKeystore):
    """Replies after a random number of loop turns; reads fail at random while ``flaky``."""

    def __init__(self, rnd: random.Random) -> None:
        super().__init__()
        self.rnd = rnd
        self.flaky = False

    async def jitter(self, most: int = 2) -> None:
        for _ in range(self.rnd.randint(0, most)):
            await asyncio.sleep(0)  # a loop turn, to interleave; nothing waits on it

    async def get(self, name: str) -> bytes:
        await self.jitter()
        value = await super().get(name)
        # Replies are slow, so they often arrive after a later write has been applied.
        await self.jitter(most=10)
        if self.flaky and self.rnd.random() < 0.5:
            raise KeystoreUnreachable("connection reset")
        return value

    async def create(self, name: str, value: bytes) -> None:
        await self.jitter()
        await super().create(name, value)
        await self.jitter()

    async def delete(self, name: str) -> None:
        await self.jitter()
        await super().delete(name)
        await self.jitter()

    def truth(self, name: str) -> str | None:
        stored = self._records.get(name)
        return None if stored is None else decode(stored)


class Scenario:
    def __init__(self, rnd: random.Random, max_keys: int) -> None:
        self.rnd = rnd
        self.keystore = JitteryKeystore(rnd)
        self.cache = KeyCache(self.keystore, decode, CacheSettings(max_keys=max_keys))
        self.writes_started: Counter[str] = Counter()
        self.writes_done: Counter[str] = Counter()
        self.versions = 0
        self.gets: list[asyncio.Task[None]] = []
        self.violations: list[str] = []

    async def run(self, ops: Sequence[Op]) -> list[str]:
        tasks: list[asyncio.Task[None]] = []
        for kind, name in ops:
            await self.keystore.jitter()
            task = await self.start(kind, name)
            if task is not None:
                tasks.append(task)
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        unexpected = [o for o in outcomes if isinstance(o, Exception)]
        assert unexpected == [], unexpected
        self.keystore.flaky = False
        for name in {name for _, name in ops}:
            await self.get(name)  # quiet now: every answer must be the truth
        return self.violations

    async def start(self, kind: str, name: str) -> asyncio.Task[None] | None:
        if kind in ("sweep_any", "sweep_unused"):
            await getattr(self.cache, kind)()
        elif kind == "flaky":
            self.keystore.flaky = not self.keystore.flaky
        elif kind == "cancel":
            if self.gets:
                self.rnd.choice(self.gets).cancel()
        elif kind == "get":
            self.gets.append(asyncio.create_task(self.get(name)))
            return self.gets[-1]
        else:
            return asyncio.create_task(self.write(kind, name))
        return None

    async def write(self, kind: str, name: str) -> None:
        self.writes_started[name] += 1
        try:
            if kind == "create":
                self.versions += 1
                await self.cache.create(name, record(name, self.versions))
            else:
                await self.cache.delete(name)
        except (KeyExists, KeyNotFound):
            pass
        finally:
            self.writes_done[name] += 1

    async def get(self, name: str) -> None:
        quiet_since = (self.writes_started[name], self.writes_done[name])
        quiet = quiet_since[0] == quiet_since[1]
        try:
            answer: str | None = await self.cache.get(name)
        except KeyNotFound:
            answer = None
        except KeystoreUnreachable:
            return  # an injected failure: allowed, and checked not to be cached elsewhere
        if answer is not None and not answer.startswith(f"{name}#"):
            self.violations.append(f"get({name}) answered {answer}")
        still_quiet = quiet_since == (self.writes_started[name], self.writes_done[name])
        truth = self.keystore.truth(name)
        if quiet and still_quiet and answer != truth:
            self.violations.append(f"get({name}) answered {answer}, keystore has {truth}")


operations = st.lists(
    st.tuples(st.sampled_from(KINDS), st.sampled_from(["a", "b", "c", "d", "e"])),
    min_size=1,
    max_size=80,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, rnd=st.randoms(use_true_random=False), max_keys=st.sampled_from([2, 0]))
def test_random_interleavings_never_mix_up_or_resurrect_keys(
    ops: list[Op], rnd: random.Random, max_keys: int
) -> None:
    assert asyncio.run(Scenario(rnd, max_keys).run(ops)) == []


@pytest.mark.parametrize("seed", range(4))
def test_long_random_run_over_many_names(seed: int) -> None:
    """Thousands of operations over 40 names, with a bound that forces constant eviction."""
    rnd = random.Random(seed)
    names = [f"key-{i}" for i in range(40)]
    ops = [(rnd.choice(KINDS), rnd.choice(names)) for _ in range(3000)]
    assert asyncio.run(Scenario(rnd, max_keys=16).run(ops)) == []
