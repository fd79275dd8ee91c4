"""The mirror keystore on real directories and the fake vault, with real outages.

An Azure side is reached through a :class:`~tests.test_azure_server.VaultLink`, a TCP
pass-through the tests cut (connection refused) and restore; an fs side is a real directory.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiokes.errors import KeyExists, KeyNotFound, KeystoreError, KeystoreUnreachable
from aiokes.keystore import Keystore
from aiokes.keystore.azure import AzureKeyVaultKeystore
from aiokes.keystore.fs import FSKeystore
from aiokes.keystore.mirror import MirrorKeystore
from bench.fakevault import FakeVault
from tests.azure_emulator import azure_keystore
from tests.keystore.contract import REALISTIC_RECORD, KeystoreContract
from tests.vault_link import VaultLink

WAIT = 310.0
RECORDS = {f"key-{i}": REALISTIC_RECORD[:-4] + f"{i:04d}".encode() for i in range(3)}


class TestMirrorOfTwoDirectories(KeystoreContract):
    @pytest.fixture
    async def keystore(self, tmp_path: Path) -> AsyncIterator[Keystore]:
        primary, secondary = FSKeystore(tmp_path / "a"), FSKeystore(tmp_path / "b")
        for side in (primary, secondary):
            await side.open()
        store = MirrorKeystore(primary, secondary, check_interval=0)
        await store.open()
        yield store
        await store.close()


# -- fixtures: an fs side and an Azure side that can be cut -------------------------------------


def _azure(vault: FakeVault, link: VaultLink) -> AzureKeyVaultKeystore:
    return azure_keystore(
        link.url,
        **vault.credentials(),
        ca_file=vault.ca_file,
        reuse_wait=WAIT,
        max_retries=1,  # a pooled connection the cut reset is retried once
        retry_max_delay=0.01,
        timeout=5.0,
    )


async def _fs(directory: Path) -> FSKeystore:
    store = FSKeystore(directory, reuse_wait=WAIT)
    await store.open()
    return store


@pytest.fixture
async def azure_then_fs(
    tmp_path: Path, vault: FakeVault, link: VaultLink
) -> AsyncIterator[MirrorKeystore]:
    """Typical use: Key Vault primary, a local directory secondary."""
    store = MirrorKeystore(_azure(vault, link), await _fs(tmp_path / "backup"), check_interval=0)
    yield store
    await store.close()


@pytest.fixture
async def fs_then_azure(
    tmp_path: Path, vault: FakeVault, link: VaultLink
) -> AsyncIterator[MirrorKeystore]:
    store = MirrorKeystore(await _fs(tmp_path / "keys"), _azure(vault, link), check_interval=0)
    yield store
    await store.close()


def _fs_primary(store: MirrorKeystore) -> FSKeystore:
    """The fs keystore in front: it keeps tombstones, which the Keystore protocol does not."""
    assert isinstance(store.primary, FSKeystore)
    return store.primary


async def _create_all(store: MirrorKeystore) -> None:
    for name, record in RECORDS.items():
        await store.create(name, record)


def _errors(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


# -- create ---------------------------------------------------------------------------------------


async def test_create_lands_on_both_sides_byte_for_byte(
    fs_then_azure: MirrorKeystore, vault: FakeVault, tmp_path: Path
) -> None:
    await _create_all(fs_then_azure)
    for name, record in RECORDS.items():
        assert (tmp_path / "keys" / name).read_bytes() == record
        assert vault.values(name) == [record.decode()]
    assert (await fs_then_azure.check()).in_step


async def test_a_name_held_by_the_secondary_alone_is_taken(
    fs_then_azure: MirrorKeystore, vault: FakeVault, tmp_path: Path
) -> None:
    vault.set_version("only-there", "other record")
    with pytest.raises(KeyExists):
        await fs_then_azure.create("only-there", REALISTIC_RECORD)
    assert not (tmp_path / "keys" / "only-there").exists()
    assert await _fs_primary(fs_then_azure).tombstone("only-there") is None  # primary untouched


async def test_secondary_down_during_creates_fails_them_and_keeps_no_half_made_key(
    fs_then_azure: MirrorKeystore,
    vault: FakeVault,
    link: VaultLink,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await fs_then_azure.create("before", REALISTIC_RECORD)
    await link.cut()
    for name in RECORDS:
        with pytest.raises(KeystoreUnreachable):
            await fs_then_azure.create(name, RECORDS[name])
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["before"]
    await link.restore()
    for name in RECORDS:
        with pytest.raises(KeyNotFound):
            await fs_then_azure.get(name)
        assert vault.values(name) == []
    report = await fs_then_azure.check()
    assert report.in_step
    assert vault.values("before") == [REALISTIC_RECORD.decode()]
    await fs_then_azure.create("after", REALISTIC_RECORD)
    assert vault.values("after") == [REALISTIC_RECORD.decode()]


async def test_secondary_failing_after_the_primary_wrote_undoes_the_primary(
    fs_then_azure: MirrorKeystore,
    vault: FakeVault,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The existence check on the secondary passes, then its write fails: the primary's
    copy is removed again and a tombstone keeps the name from being reused at once (another
    server may have read the key in between)."""
    vault.faults.fail_status, vault.faults.fail_next = 500, 0
    original_create = fs_then_azure.secondary.create

    async def failing_create(name: str, value: bytes) -> None:
        vault.faults.fail_next = 10
        await original_create(name, value)

    fs_then_azure.secondary.create = failing_create  # type: ignore[method-assign]
    with pytest.raises(KeystoreError):
        await fs_then_azure.create("k1", REALISTIC_RECORD)
    vault.faults.fail_next = 0
    assert not (tmp_path / "keys" / "k1").exists()
    assert await _fs_primary(fs_then_azure).tombstone("k1") is not None
    assert _errors(caplog, "create of key 'k1' undone on the primary")


async def test_when_the_undo_fails_too_the_key_stays_on_the_primary_and_the_check_copies_it(
    azure_then_fs: MirrorKeystore,
    vault: FakeVault,
    link: VaultLink,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The secondary's directory is gone, and the vault becomes unreachable just after the
    primary's write, so the undo fails too: the key stays on the primary alone and
    unacknowledged; the report says so, and once both are back the check copies the very
    same bytes to the secondary."""
    backup = tmp_path / "backup"
    shutil.rmtree(backup)
    secondary = azure_then_fs.secondary
    original_create = secondary.create

    async def cut_then_create(name: str, value: bytes) -> None:  # only the timing is staged
        await link.cut()
        await original_create(name, value)

    secondary.create = cut_then_create  # type: ignore[method-assign]
    with pytest.raises(KeystoreError):
        await azure_then_fs.create("k1", REALISTIC_RECORD)
    secondary.create = original_create  # type: ignore[method-assign]
    assert vault.values("k1") == [REALISTIC_RECORD.decode()]
    assert azure_then_fs.report().only_primary == {"k1"}
    assert _errors(caplog, "key 'k1' is on the primary only")

    await link.restore()
    await FSKeystore(backup).open()
    report = await azure_then_fs.check()
    assert report.in_step
    assert (backup / "k1").read_bytes() == REALISTIC_RECORD


# -- get ------------------------------------------------------------------------------------------


async def test_primary_down_during_reads_serves_from_the_secondary_and_logs_once(
    azure_then_fs: MirrorKeystore, link: VaultLink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "aiokes.error")
    await _create_all(azure_then_fs)
    await link.cut()
    for _ in range(3):
        for name, record in RECORDS.items():
            assert await azure_then_fs.get(name) == record
    assert len(_errors(caplog, "primary keystore failing")) == 1
    assert not azure_then_fs.report().primary_reachable
    await link.restore()
    assert await azure_then_fs.get("key-0") == RECORDS["key-0"]
    assert len(_errors(caplog, "primary keystore working again")) == 1
    assert azure_then_fs.report().primary_reachable


async def test_vault_deleted_behind_the_servers_back_every_key_is_still_served_and_restored(
    azure_then_fs: MirrorKeystore, vault: FakeVault, caplog: pytest.LogCaptureFixture
) -> None:
    await _create_all(azure_then_fs)
    vault.wipe()
    for name, record in RECORDS.items():
        assert await azure_then_fs.get(name) == record
        assert await azure_then_fs.get(name) == record
    assert len(_errors(caplog, "is missing on the primary, served from the secondary")) == 3
    assert azure_then_fs.report().only_secondary == set(RECORDS)

    report = await azure_then_fs.check()
    assert report.in_step
    assert report.repaired == len(RECORDS)
    for name, record in RECORDS.items():
        assert vault.values(name) == [record.decode()]


async def test_secondary_vault_wiped_is_refilled_by_the_check(
    fs_then_azure: MirrorKeystore, vault: FakeVault
) -> None:
    await _create_all(fs_then_azure)
    vault.wipe()
    report = await fs_then_azure.check(repair=False)
    assert report.only_primary == set(RECORDS)
    assert not report.in_step
    assert (await fs_then_azure.check()).in_step
    for name, record in RECORDS.items():
        assert vault.values(name) == [record.decode()]


# -- delete ---------------------------------------------------------------------------------------


async def test_delete_removes_from_both_and_leaves_tombstones(
    fs_then_azure: MirrorKeystore, vault: FakeVault, tmp_path: Path
) -> None:
    await _create_all(fs_then_azure)
    await fs_then_azure.delete("key-0")
    assert not (tmp_path / "keys" / "key-0").exists()
    assert vault.values("key-0") == []
    assert vault.is_soft_deleted("key-0")
    with pytest.raises(KeyNotFound):
        await fs_then_azure.delete("key-0")
    with pytest.raises(KeyExists):  # reserved on both sides
        await fs_then_azure.create("key-0", REALISTIC_RECORD)


async def test_delete_with_the_secondary_down_is_not_undone_by_reads_and_is_finished_later(
    fs_then_azure: MirrorKeystore, vault: FakeVault, link: VaultLink
) -> None:
    await _create_all(fs_then_azure)
    await link.cut()
    with pytest.raises(KeystoreUnreachable):
        await fs_then_azure.delete("key-1")
    with pytest.raises(KeyNotFound):  # the primary's tombstone: deleted, not lost
        await fs_then_azure.get("key-1")
    await link.restore()
    assert vault.values("key-1") == [RECORDS["key-1"].decode()]
    report = await fs_then_azure.check()
    assert report.in_step
    assert vault.values("key-1") == []


async def test_primary_down_fails_a_delete_and_changes_nothing(
    azure_then_fs: MirrorKeystore, link: VaultLink, tmp_path: Path
) -> None:
    await _create_all(azure_then_fs)
    await link.cut()
    with pytest.raises(KeystoreUnreachable):
        await azure_then_fs.delete("key-2")
    assert (tmp_path / "backup" / "key-2").read_bytes() == RECORDS["key-2"]


async def test_status_answers_from_the_secondary_while_the_primary_is_down(
    azure_then_fs: MirrorKeystore, link: VaultLink
) -> None:
    await azure_then_fs.status()
    await link.cut()
    await azure_then_fs.status()  # reads still work, so the mirror is not offline
    assert not azure_then_fs.report().primary_reachable
    assert azure_then_fs.report().as_status()["primary_unreachable"] is True


async def test_a_check_that_cannot_list_a_side_leaves_the_mirror_out_of_step(
    tmp_path: Path,
) -> None:
    """Until a check has compared both listings, nothing is known to be in step: a side
    that answers a status probe again does not make up for the comparison it missed."""
    primary, secondary = await _fs(tmp_path / "a"), await _fs(tmp_path / "b")
    store = MirrorKeystore(primary, secondary, check_interval=0)
    try:
        assert not store.report().in_step  # no check yet
        await store.create("k1", REALISTIC_RECORD)
        (tmp_path / "b").rename(tmp_path / "unplugged")
        report = await store.check()
        assert (report.compared, report.secondary_reachable, report.in_step) == (
            False,
            False,
            False,
        )
        (tmp_path / "b").mkdir()
        await store.status()
        assert not store.report().in_step
        assert (await store.check()).in_step
        assert (tmp_path / "b" / "k1").read_bytes() == REALISTIC_RECORD
    finally:
        await store.close()
