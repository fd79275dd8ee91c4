"""The in-memory keystore passes the keystore contract and reports KES's fixed latency."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aiokes.keystore import Keystore
from aiokes.keystore.memory import MemoryKeystore

from .contract import KeystoreContract


class TestMemoryKeystore(KeystoreContract):
    @pytest.fixture
    async def keystore(self) -> AsyncIterator[Keystore]:
        store = MemoryKeystore()
        yield store
        await store.close()


async def test_status_reports_one_millisecond_like_kes() -> None:
    assert (await MemoryKeystore().status()).latency == 0.001


async def test_stored_value_is_a_private_copy() -> None:
    store = MemoryKeystore()
    value = bytearray(b"original")
    await store.create("key", value)  # type: ignore[arg-type]  # a caller breaking the types
    value[:] = b"mutated!"
    assert await store.get("key") == b"original"


async def test_stores_are_independent() -> None:
    first, second = MemoryKeystore(), MemoryKeystore()
    await first.create("key", b"value")
    assert (await second.list("")).names == []
