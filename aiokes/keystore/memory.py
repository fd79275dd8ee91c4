"""The in-memory keystore: a dict, for ``aiokes server --dev`` and tests.

Nothing survives the process, and every worker process has its own map. Operations never
await, so each one is atomic with respect to the event loop: two concurrent creates of one
name cannot both pass the existence check.
"""

from __future__ import annotations

from aiokes.errors import KeyExists, KeyNotFound
from aiokes.keystore import KeystoreState, Page, paginate

__all__ = ["MemoryKeystore"]

# KES's in-memory keystore reports a fixed 1 ms instead of measuring a dict lookup.
_REPORTED_LATENCY = 0.001


class MemoryKeystore:
    """A :class:`~aiokes.keystore.Keystore` that keeps records in a dict."""

    def __init__(self) -> None:
        self._records: dict[str, bytes] = {}

    async def create(self, name: str, value: bytes) -> None:
        if name in self._records:
            raise KeyExists()
        # A private copy: a caller mutating a bytearray later must not change the key.
        self._records[name] = bytes(value)

    async def get(self, name: str) -> bytes:
        try:
            return self._records[name]
        except KeyError:
            raise KeyNotFound() from None

    async def delete(self, name: str) -> None:
        try:
            del self._records[name]
        except KeyError:
            raise KeyNotFound() from None

    async def list(self, prefix: str, limit: int = -1) -> Page:
        return paginate(self._records, prefix, limit)

    async def status(self) -> KeystoreState:
        return KeystoreState(latency=_REPORTED_LATENCY)

    async def close(self) -> None:
        """Nothing to release; the records stay readable until the object is dropped."""
