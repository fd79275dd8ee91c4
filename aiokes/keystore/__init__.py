"""Keystores: where master-key records live.

A keystore is a plain map from a key name to the opaque stored record (the bytes KES writes;
see :mod:`aiokes.crypto` for their meaning). Backends do not inherit from :class:`Keystore`;
they satisfy the protocol structurally and are checked against it by the contract tests.
Backends are looked up by name and imported lazily, so the Azure SDK stays an optional extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from aiokes.keystore._listing import LIST_LIMIT, Page, paginate

__all__ = [
    "LIST_LIMIT",
    "Keystore",
    "KeystoreState",
    "Page",
    "paginate",
]


@dataclass(frozen=True, slots=True)
class KeystoreState:
    """Result of a successful status probe: the keystore serves the keys it has."""

    latency: float  # seconds the probe took
    # Existing keys can be read but no key can be created or deleted (e.g. a read-only mount).
    read_only: bool = False


@runtime_checkable
class Keystore(Protocol):
    """What every keystore backend provides.

    Errors: ``create`` raises :class:`~aiokes.errors.KeyExists` when the name is taken (and
    never overwrites); ``get`` and ``delete`` raise :class:`~aiokes.errors.KeyNotFound`;
    every backend failure is a :class:`~aiokes.errors.KeystoreError` (``KeystoreUnreachable``
    when the backend cannot be contacted). Cancellation propagates unchanged.
    """

    async def create(self, name: str, value: bytes) -> None:
        """Store ``value`` under ``name`` if, and only if, ``name`` does not exist yet."""
        ...

    async def get(self, name: str) -> bytes:
        """Return the record stored under ``name``."""
        ...

    async def delete(self, name: str) -> None:
        """Remove ``name``."""
        ...

    async def list(self, prefix: str, limit: int = -1) -> Page:
        """Names starting with ``prefix``, sorted, paged as KES does (see :func:`paginate`)."""
        ...

    async def status(self) -> KeystoreState:
        """Probe the backend; raise ``KeystoreUnreachable`` if it cannot be reached."""
        ...

    async def close(self) -> None:
        """Release connections and files. Idempotent."""
        ...
