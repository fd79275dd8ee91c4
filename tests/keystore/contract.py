"""The behaviour every keystore backend must show, as a reusable test class.

A backend's test module subclasses :class:`KeystoreContract` under a ``Test*`` name and
overrides the ``keystore`` fixture::

    class TestMyKeystore(KeystoreContract):
        skipped_checks = {"test_binary_values_round_trip": "secrets are text"}

        @pytest.fixture
        async def keystore(self) -> AsyncIterator[Keystore]:
            store = MyKeystore(...)
            yield store
            await store.close()

Hooks for backends that share state with others (a real Key Vault):

* ``key_prefix`` (fixture, default ``""``): every name the suite creates starts with it, and
  listings are asked for under it. Return a fresh prefix per test to stay out of other keys'
  way; with a non-empty prefix the "empty prefix lists everything" check only requires that
  our keys are among the names.
* ``skipped_checks``: test name -> reason, for checks that cannot apply to the backend.
* ``concurrent_creates``: how many creates of one name race each other.

Names use only ``[0-9a-zA-Z-]``, which every backend accepts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import ClassVar

import pytest

from aiokes.errors import KeyExists, KeyNotFound
from aiokes.keystore import Keystore, KeystoreState

# A real E5 record (base64 protobuf), from parseKeyVersionTests in
# minio/kes internal/crypto/key_test.go. Records are opaque here; it is just realistic bytes.
REALISTIC_RECORD = (
    b"CiQKIMiHG7XrN94FuwblJJor4f7f6rbqAl7DwsLaiIoyz0D2EAESJAognLXl4yqa4cjZTcSbsU6sNnN8kP9ARWkXwa20"
    b"YQZa9HgQARoMCNithK0GEID67qYDIkAzZWNmY2RmMzhmY2JlMTQxYWUyNmExMDMwZjgxZTk2Yjc1MzM2NWE0Njc2MG"
    b"FlNmI1Nzg2OThhOTdjNTlmZDIy"
)


class KeystoreContract:
    """Checks any :class:`~aiokes.keystore.Keystore` must pass. Not collected by itself."""

    skipped_checks: ClassVar[Mapping[str, str]] = {}
    concurrent_creates: ClassVar[int] = 20

    @pytest.fixture
    def keystore(self) -> Keystore:
        """Overridden by each backend: yield a ready keystore, close it afterwards."""
        pytest.fail(f"{type(self).__name__} must override the 'keystore' fixture")

    @pytest.fixture
    def key_prefix(self) -> str:
        return ""

    @pytest.fixture(autouse=True)
    def _skip_unsupported_checks(self, request: pytest.FixtureRequest) -> None:
        unknown = set(self.skipped_checks) - {n for n in dir(self) if n.startswith("test_")}
        if unknown:
            pytest.fail(f"skipped_checks names no test of the contract: {sorted(unknown)}")
        reason = self.skipped_checks.get(request.function.__name__)
        if reason is not None:
            pytest.skip(reason)

    def test_satisfies_keystore_protocol(self, keystore: Keystore) -> None:
        assert isinstance(keystore, Keystore)

    async def test_get_returns_created_bytes(self, keystore: Keystore, key_prefix: str) -> None:
        await keystore.create(f"{key_prefix}my-key", REALISTIC_RECORD)
        assert await keystore.get(f"{key_prefix}my-key") == REALISTIC_RECORD

    async def test_create_existing_raises_and_keeps_first_value(
        self, keystore: Keystore, key_prefix: str
    ) -> None:
        name = f"{key_prefix}taken"
        await keystore.create(name, b"first")
        with pytest.raises(KeyExists):
            await keystore.create(name, b"second")
        assert await keystore.get(name) == b"first"

    async def test_concurrent_creates_have_exactly_one_winner(
        self, keystore: Keystore, key_prefix: str
    ) -> None:
        name = f"{key_prefix}contested"
        values = [f"value-{i}".encode() for i in range(self.concurrent_creates)]
        outcomes = await asyncio.gather(
            *(keystore.create(name, value) for value in values), return_exceptions=True
        )
        winners = [
            value for value, outcome in zip(values, outcomes, strict=True) if outcome is None
        ]
        losers = [outcome for outcome in outcomes if outcome is not None]
        assert len(winners) == 1
        assert all(isinstance(outcome, KeyExists) for outcome in losers), losers
        assert await keystore.get(name) == winners[0]

    async def test_get_missing_raises_key_not_found(
        self, keystore: Keystore, key_prefix: str
    ) -> None:
        with pytest.raises(KeyNotFound):
            await keystore.get(f"{key_prefix}missing")

    async def test_delete_missing_raises_key_not_found(
        self, keystore: Keystore, key_prefix: str
    ) -> None:
        with pytest.raises(KeyNotFound):
            await keystore.delete(f"{key_prefix}missing")

    async def test_get_after_delete_raises_key_not_found(
        self, keystore: Keystore, key_prefix: str
    ) -> None:
        await keystore.create(f"{key_prefix}doomed", b"value")
        await keystore.delete(f"{key_prefix}doomed")
        with pytest.raises(KeyNotFound):
            await keystore.get(f"{key_prefix}doomed")

    async def test_delete_leaves_other_keys(self, keystore: Keystore, key_prefix: str) -> None:
        await keystore.create(f"{key_prefix}doomed", b"doomed")
        await keystore.create(f"{key_prefix}kept", b"kept")
        await keystore.delete(f"{key_prefix}doomed")
        assert await keystore.get(f"{key_prefix}kept") == b"kept"
        assert (await keystore.list(key_prefix)).names == [f"{key_prefix}kept"]

    async def test_create_after_delete_stores_new_value(
        self, keystore: Keystore, key_prefix: str
    ) -> None:
        name = f"{key_prefix}reborn"
        await keystore.create(name, b"old")
        await keystore.delete(name)
        await keystore.create(name, b"new")
        assert await keystore.get(name) == b"new"

    async def test_list_is_sorted(self, keystore: Keystore, key_prefix: str) -> None:
        stems = ["b", "A", "a-2", "a", "0", "Z", "a-10"]
        await _create_all(keystore, [f"{key_prefix}{stem}" for stem in stems])
        page = await keystore.list(key_prefix)
        assert page.names == sorted(f"{key_prefix}{stem}" for stem in stems)
        assert page.continue_at == ""

    async def test_list_filters_by_prefix(self, keystore: Keystore, key_prefix: str) -> None:
        await _create_all(keystore, [f"{key_prefix}{s}" for s in ["app-1", "app-2", "ap", "db-1"]])
        page = await keystore.list(f"{key_prefix}app-")
        assert page.names == [f"{key_prefix}app-1", f"{key_prefix}app-2"]
        assert (await keystore.list(f"{key_prefix}nothing-here")).names == []

    async def test_list_empty_prefix_returns_all(self, keystore: Keystore, key_prefix: str) -> None:
        names = [f"{key_prefix}{stem}" for stem in ["x-1", "y-2", "z-3"]]
        await _create_all(keystore, names)
        listed = (await keystore.list("")).names
        if key_prefix:  # a shared backend may hold other keys besides ours
            assert set(names) <= set(listed)
        else:
            assert listed == names

    async def test_list_pages_with_small_limit(self, keystore: Keystore, key_prefix: str) -> None:
        names = [f"{key_prefix}key-{i}" for i in range(5)]
        await _create_all(keystore, names)
        first = await keystore.list(key_prefix, limit=2)
        assert first.names == names[:2]
        assert first.continue_at == names[2]  # the first name not returned
        whole = await keystore.list(key_prefix, limit=5)
        assert whole.names == names
        assert whole.continue_at == ""

    async def test_list_of_empty_store_is_empty(self, keystore: Keystore, key_prefix: str) -> None:
        page = await keystore.list(key_prefix)
        assert page.names == []
        assert page.continue_at == ""

    async def test_status_reports_latency(self, keystore: Keystore) -> None:
        state = await keystore.status()
        assert isinstance(state, KeystoreState)
        assert state.latency >= 0

    async def test_close_is_idempotent(self, keystore: Keystore) -> None:
        await keystore.close()
        await keystore.close()

    async def test_binary_values_round_trip(self, keystore: Keystore, key_prefix: str) -> None:
        value = bytes(range(256)) + b"\x00\r\n\xff"
        await keystore.create(f"{key_prefix}binary", value)
        assert await keystore.get(f"{key_prefix}binary") == value

    async def test_names_differing_only_in_case_are_distinct(
        self, keystore: Keystore, key_prefix: str
    ) -> None:
        await keystore.create(f"{key_prefix}case", b"lower")
        await keystore.create(f"{key_prefix}CASE", b"upper")
        assert await keystore.get(f"{key_prefix}case") == b"lower"
        assert await keystore.get(f"{key_prefix}CASE") == b"upper"


async def _create_all(keystore: Keystore, names: list[str]) -> None:
    for name in names:
        await keystore.create(name, f"record of {name}".encode())
