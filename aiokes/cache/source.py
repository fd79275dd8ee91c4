"""What request handlers use to reach master keys, wherever the cache lives.

A single process (``--workers 1`` and the in-process :class:`~aiokes.server.Server` of the
tests) uses a :class:`~aiokes.cache.KeyCache` directly. A worker of a multi-process server
uses :class:`~aiokes.keeper.client.KeeperKeys`: coherent local copies in front of the key
keeper process (:mod:`aiokes.keeper`), which owns the keystore and the server's one cache.
"""

from __future__ import annotations

from typing import Protocol

from aiokes.cache.stats import CacheStats
from aiokes.crypto import KeyVersion
from aiokes.keystore import KeystoreState, Page

__all__ = ["KeySource"]


class KeySource(Protocol):
    """Master keys by name, with KES's errors (``KeyNotFound``, ``KeyExists``,
    ``KeystoreError``). A write has been seen by every reader when it returns."""

    def cached(self, name: str) -> KeyVersion | None:
        """The key if this process holds it (counted as a hit), else ``None``; never waits."""
        ...

    async def get(self, name: str) -> KeyVersion:
        """The key, read from the keystore on a miss."""
        ...

    async def create(self, name: str, value: bytes) -> None:
        """Store a new key record; ``KeyExists`` when the name is taken."""
        ...

    async def delete(self, name: str) -> None:
        """Delete the key from the keystore and from every cache."""
        ...

    async def list(self, prefix: str, limit: int = -1) -> Page:
        """The keystore's names starting with ``prefix``."""
        ...

    async def status(self) -> KeystoreState:
        """The keystore's status (``KeystoreUnreachable`` at once while offline)."""
        ...

    def stats(self) -> CacheStats:
        """This process's share of the cache counters (summed over processes in metrics)."""
        ...

    async def aclose(self) -> None:
        """Release what this state owns (a shared source stays open)."""
        ...
