"""Test doubles for the key cache: a counting keystore wrapper and a settable clock.

The records a test stores encode their own name (``b"<name>#<version>"``), so any value
served for the wrong name, or from before a delete, shows up in an assertion.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from aiokes.keystore import Keystore, KeystoreState, Page
from aiokes.keystore.memory import MemoryKeystore


def record(name: str, version: int = 1) -> bytes:
    """The record a test stores under ``name``; it names its key."""
    return f"{name}#{version}".encode()


def decode(value: bytes) -> str:
    """The cache's ``decode`` in tests: records are text."""
    return value.decode()


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def set(self, now: float) -> None:
        assert now >= self.now, "a monotonic clock never goes back"
        self.now = now


class CountingKeystore:
    """Wraps a real keystore; counts calls and can hold or fail them on request.

    * ``reads`` counts ``get`` calls per name, ``status_calls`` the status probes.
    * ``hold_reads``: when set, a read fetches the record *first*, then waits for this
      event, as a slow network reply would: the value returned may predate a later write.
      It is captured when the read starts, so a test can hold one read and not the next.
    * ``read_started`` is set whenever a read begins, to wait for one without sleeping.
    * ``read_error`` / ``status_error``: raised by every read / status call while set (a
      held read checks ``read_error`` when released).
    * ``hold_status``: when set, status calls wait for it; ``status_started`` is set by each.
    """

    def __init__(self, inner: Keystore | None = None) -> None:
        self.inner: Keystore = inner if inner is not None else MemoryKeystore()
        self.reads: Counter[str] = Counter()
        self.status_calls = 0
        self.hold_reads: asyncio.Event | None = None
        self.read_started = asyncio.Event()
        self.read_error: Exception | None = None
        self.status_error: Exception | None = None
        self.hold_status: asyncio.Event | None = None
        self.status_started = asyncio.Event()
        self.closed = False

    @property
    def total_reads(self) -> int:
        return sum(self.reads.values())

    async def create(self, name: str, value: bytes) -> None:
        await self.inner.create(name, value)

    async def get(self, name: str) -> bytes:
        self.reads[name] += 1
        hold = self.hold_reads
        self.read_started.set()
        value = await self.inner.get(name)
        if hold is not None:
            await hold.wait()
        if self.read_error is not None:
            raise self.read_error
        return value

    async def delete(self, name: str) -> None:
        await self.inner.delete(name)

    async def list(self, prefix: str, limit: int = -1) -> Page:
        return await self.inner.list(prefix, limit)

    async def status(self) -> KeystoreState:
        self.status_calls += 1
        self.status_started.set()
        if self.hold_status is not None:
            await self.hold_status.wait()
        if self.status_error is not None:
            raise self.status_error
        return await self.inner.status()

    async def close(self) -> None:
        self.closed = True
        await self.inner.close()
