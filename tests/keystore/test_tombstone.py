"""Tombstones in the fs and azure keystores, several keystore instances sharing one store.

Each "instance" is its own keystore object on the same real directory or the same fake vault,
as separate aiokes servers would have. Time does not pass in these tests: a tombstone is made
old by moving its deletion date into the past, as a clock would.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aiokes.errors import KeyExists, KeyNameReserved, KeyNotFound, KeystoreError
from aiokes.keystore._tombstone import marker_directory_for, reuse_wait
from aiokes.keystore.azure import AzureKeyVaultKeystore
from aiokes.keystore.fs import FSKeystore
from bench.fakevault import FakeVault
from tests.azure_emulator import azure_keystore
from tests.keystore.contract import REALISTIC_RECORD

WAIT = 310.0
OTHER_RECORD = b'{"bytes":"' + b"A" * 43 + b'="}'


def test_reuse_wait_is_the_longest_a_cache_can_hold_a_key() -> None:
    assert reuse_wait(300, 0) == 310
    assert reuse_wait(300, 3600) == 3910  # offline caching keeps entries past expiry.any
    assert math.isinf(reuse_wait(0, 0))  # nothing flushes a busy key: never reusable


# -- fs ------------------------------------------------------------------------------------------


async def _fs_instances(directory: Path, count: int = 3) -> list[FSKeystore]:
    stores = [FSKeystore(directory, reuse_wait=WAIT) for _ in range(count)]
    for store in stores:
        await store.open()
    return stores


def _age_marker(directory: Path, name: str, seconds: float) -> None:
    marker = marker_directory_for(directory) / name
    deleted = datetime.fromisoformat(json.loads(marker.read_text())["deleted_at"])
    older = (deleted - timedelta(seconds=seconds)).isoformat()
    marker.write_text(json.dumps({"deleted_at": older}))


async def test_fs_deleted_name_is_reserved_on_every_instance_until_the_wait_is_over(
    tmp_path: Path,
) -> None:
    a, b, c = await _fs_instances(tmp_path / "keys")
    await a.create("k1", REALISTIC_RECORD)
    assert await b.get("k1") == REALISTIC_RECORD  # B now holds k1 in its cache
    await a.delete("k1")

    for store in (a, c):
        with pytest.raises(KeyNameReserved) as refused:
            await store.create("k1", OTHER_RECORD)
        assert refused.value.status == 409
        assert "key 'k1' was deleted at " in refused.value.message
        assert "it can be reused after " in refused.value.message
    with pytest.raises(KeyNotFound):
        await b.get("k1")

    _age_marker(tmp_path / "keys", "k1", WAIT + 1)
    await c.create("k1", OTHER_RECORD)
    assert await a.get("k1") == OTHER_RECORD
    assert await a.tombstone("k1") is None  # the create used it up


async def test_fs_reserved_error_names_the_reuse_time(tmp_path: Path) -> None:
    (store,) = await _fs_instances(tmp_path / "keys", 1)
    await store.create("k1", REALISTIC_RECORD)
    before = datetime.now(UTC).replace(microsecond=0)
    await store.delete("k1")
    with pytest.raises(KeyNameReserved) as refused:
        await store.create("k1", OTHER_RECORD)
    reusable = refused.value.message.rsplit("reused after ", 1)[1]
    moment = datetime.fromisoformat(reusable.replace("Z", "+00:00"))
    assert before + timedelta(seconds=WAIT) <= moment <= before + timedelta(seconds=WAIT + 2)


async def test_fs_markers_live_outside_the_key_directory_so_neither_kes_nor_aiokes_lists_them(
    tmp_path: Path,
) -> None:
    """KES's fs keystore lists every directory entry as a key (``Readdirnames``), so a marker
    inside the key directory would appear as a key there; it lives next to it instead."""
    keys = tmp_path / "keys"
    (store,) = await _fs_instances(keys, 1)
    for name in ("k1", "k2"):
        await store.create(name, REALISTIC_RECORD)
    await store.delete("k1")
    assert sorted(os.listdir(keys)) == ["k2"]  # what KES's listing sees
    assert (await store.list("")).names == ["k2"]
    assert sorted(os.listdir(tmp_path / ".keys.aiokes-deleted")) == ["k1"]
    assert [t.name for t in await store.tombstones()] == ["k1"]


async def test_fs_directory_written_by_kes_without_markers_still_works(tmp_path: Path) -> None:
    """A KES delete leaves no tombstone: aiokes then knows nothing to reserve."""
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "from-kes").write_bytes(REALISTIC_RECORD)
    (store,) = await _fs_instances(keys, 1)
    (keys / "from-kes").unlink()  # kes key rm
    await store.create("from-kes", OTHER_RECORD)
    assert await store.get("from-kes") == OTHER_RECORD


async def test_fs_delete_of_a_missing_key_leaves_no_tombstone(tmp_path: Path) -> None:
    (store,) = await _fs_instances(tmp_path / "keys", 1)
    with pytest.raises(KeyNotFound):
        await store.delete("never-was")
    await store.create("never-was", REALISTIC_RECORD)


async def test_fs_forget_deletion_is_the_operator_override(tmp_path: Path) -> None:
    a, b, _ = await _fs_instances(tmp_path / "keys")
    await a.create("k1", REALISTIC_RECORD)
    await a.delete("k1")
    await b.forget_deletion("k1")
    await b.create("k1", OTHER_RECORD)
    assert await a.get("k1") == OTHER_RECORD


async def test_fs_delete_that_cannot_record_its_tombstone_deletes_nothing(tmp_path: Path) -> None:
    (store,) = await _fs_instances(tmp_path / "keys", 1)
    await store.create("k1", REALISTIC_RECORD)
    marker_directory_for(tmp_path / "keys").write_text("not a directory")
    with pytest.raises(KeystoreError, match="cannot record the deletion of 'k1'"):
        await store.delete("k1")
    assert await store.get("k1") == REALISTIC_RECORD


async def test_fs_without_a_wait_there_are_no_tombstones(tmp_path: Path) -> None:
    """The keystore alone (no config) keeps KES's behaviour: delete frees the name."""
    store = FSKeystore(tmp_path / "keys")
    await store.open()
    await store.create("k1", REALISTIC_RECORD)
    await store.delete("k1")
    await store.create("k1", OTHER_RECORD)
    assert not marker_directory_for(tmp_path / "keys").exists()


# -- azure ---------------------------------------------------------------------------------------


@pytest.fixture
async def vault_instances(vault: FakeVault) -> AsyncIterator[list[AzureKeyVaultKeystore]]:
    stores = [
        azure_keystore(vault.url, **vault.credentials(), ca_file=vault.ca_file, reuse_wait=WAIT)
        for _ in range(3)
    ]
    yield stores
    for store in stores:
        await store.close()


async def test_azure_deleted_name_is_reserved_by_the_soft_deleted_secret(
    vault: FakeVault, vault_instances: list[AzureKeyVaultKeystore]
) -> None:
    a, b, c = vault_instances
    await a.create("k1", REALISTIC_RECORD)
    assert await b.get("k1") == REALISTIC_RECORD
    await a.delete("k1")
    assert vault.is_soft_deleted("k1")  # kept: its deletion date is the tombstone

    with pytest.raises(KeyNameReserved, match=r"key 'k1' was deleted at .* reused after "):
        await c.create("k1", OTHER_RECORD)
    tombstone = await b.tombstone("k1")
    assert tombstone is not None
    assert abs((datetime.now(UTC) - tombstone.deleted_at).total_seconds()) < 5

    vault.age_deletion("k1", int(WAIT) + 1)
    await c.create("k1", OTHER_RECORD)  # purges the old secret, then writes
    assert await a.get("k1") == OTHER_RECORD
    assert vault.values("k1") == [OTHER_RECORD.decode()]


async def test_azure_forget_deletion_purges_the_tombstone(
    vault: FakeVault, vault_instances: list[AzureKeyVaultKeystore]
) -> None:
    a, b, _ = vault_instances
    await a.create("k1", REALISTIC_RECORD)
    await a.delete("k1")
    assert [t.name for t in await b.tombstones()] == ["k1"]
    await b.forget_deletion("k1")
    assert not vault.is_soft_deleted("k1")
    await b.create("k1", OTHER_RECORD)
    with pytest.raises(KeyExists):
        await a.create("k1", REALISTIC_RECORD)
