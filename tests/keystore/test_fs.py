"""The fs keystore: the keystore contract, KES file compatibility, crash safety, path safety."""

from __future__ import annotations

import asyncio
import errno
import os
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

import pytest

from aiokes.errors import KeyExists, KeyNotFound, KeystoreError, KeystoreUnreachable
from aiokes.keystore import Keystore
from aiokes.keystore.fs import MAX_RECORD_SIZE, FSKeystore
from tests.read_only import read_only_directory

from .contract import REALISTIC_RECORD, KeystoreContract

# A v0.19-v0.22.2 JSON record as KES wrote it, from parseKeyVersionTests in
# minio/kes internal/crypto/key_test.go.
KES_JSON_RECORD = (
    b'{"bytes":"9ew6BCae3+13sniOUwttEJ62amg98YXc0OW0WBhNiCY=","algorithm":"XCHACHA20-POLY1305",'
    b'"created_at":"2009-11-10T23:00:00Z",'
    b'"created_by":"189d9de5331e3ee8abe9e4bd40d474ad621d79ccf83a711f6ac68050eb15a52a"}'
)

PATH_TRICKS = [
    "../escaped",
    "../../escaped",
    "a/b",
    "..",
    ".",
    "/tmp/escaped",
    "a\\b",
    "nul\x00byte",
    ".hidden",
    "",
    "x" * 256,
    "é" * 128,  # 128 characters but 256 bytes
    "lone-\udcff-surrogate",
]


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    return tmp_path / "keys"


@pytest.fixture
async def fs_keystore(key_dir: Path) -> AsyncIterator[FSKeystore]:
    store = FSKeystore(key_dir)
    await store.open()
    yield store
    await store.close()


class TestFSKeystore(KeystoreContract):
    @pytest.fixture
    def keystore(self, fs_keystore: FSKeystore) -> Keystore:
        return fs_keystore


def _tree(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_key_file_holds_exactly_the_record_with_mode_0600(
    fs_keystore: FSKeystore, key_dir: Path
) -> None:
    await fs_keystore.create("my-key", REALISTIC_RECORD)
    assert (key_dir / "my-key").read_bytes() == REALISTIC_RECORD
    assert _mode(key_dir / "my-key") == 0o600
    assert os.listdir(key_dir) == ["my-key"]  # no temporary file left behind


async def test_reads_records_kes_wrote(fs_keystore: FSKeystore, key_dir: Path) -> None:
    (key_dir / "kes-json").write_bytes(KES_JSON_RECORD)
    (key_dir / "kes-protobuf").write_bytes(REALISTIC_RECORD)
    assert await fs_keystore.get("kes-json") == KES_JSON_RECORD
    assert await fs_keystore.get("kes-protobuf") == REALISTIC_RECORD
    assert (await fs_keystore.list("kes-")).names == ["kes-json", "kes-protobuf"]
    assert (key_dir / "kes-json").read_bytes() == KES_JSON_RECORD  # read, never rewritten


async def test_get_returns_file_bytes_verbatim(fs_keystore: FSKeystore, key_dir: Path) -> None:
    """No stripping: a trailing newline an operator added stays part of the record."""
    (key_dir / "hand-written").write_bytes(KES_JSON_RECORD + b"\n")
    assert await fs_keystore.get("hand-written") == KES_JSON_RECORD + b"\n"


async def test_create_over_existing_file_raises_key_exists(
    fs_keystore: FSKeystore, key_dir: Path
) -> None:
    (key_dir / "kes-key").write_bytes(KES_JSON_RECORD)
    with pytest.raises(KeyExists):
        await fs_keystore.create("kes-key", REALISTIC_RECORD)
    assert (key_dir / "kes-key").read_bytes() == KES_JSON_RECORD
    assert os.listdir(key_dir) == ["kes-key"]


async def test_file_appearing_between_write_and_link_is_not_overwritten(
    fs_keystore: FSKeystore, key_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process creating the key while our record is being written wins, intact."""
    real_link = os.link

    def link_after_competitor(source: str | os.PathLike[str], target: Path) -> None:
        target.write_bytes(b"competitor")
        real_link(source, target)

    monkeypatch.setattr(os, "link", link_after_competitor)
    with pytest.raises(KeyExists):
        await fs_keystore.create("raced", b"ours")
    assert (key_dir / "raced").read_bytes() == b"competitor"
    assert os.listdir(key_dir) == ["raced"]


async def test_two_keystores_on_one_directory_never_both_create(key_dir: Path) -> None:
    """Worker processes each open their own FSKeystore on the shared directory."""
    first, second = FSKeystore(key_dir), FSKeystore(key_dir)
    await first.open()
    await second.open()
    outcomes = await asyncio.gather(
        *(
            store.create("shared", store_id)
            for store_id in (b"1", b"2")
            for store in (first, second)
        ),
        return_exceptions=True,
    )
    assert outcomes.count(None) == 1
    assert sum(isinstance(outcome, KeyExists) for outcome in outcomes) == 3
    assert (key_dir / "shared").read_bytes() in {b"1", b"2"}


async def test_failed_write_leaves_nothing_and_says_why(
    fs_keystore: FSKeystore, key_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(KeystoreError) as caught:
        await fs_keystore.create("unlucky", b"record")
    message = str(caught.value)
    assert "write temporary file" in message
    assert str(key_dir) in message
    assert "EIO" in message
    assert b"record" not in message.encode()
    assert os.listdir(key_dir) == []
    monkeypatch.undo()
    await fs_keystore.create("unlucky", b"record")
    assert await fs_keystore.get("unlucky") == b"record"


async def test_stale_temporary_files_are_ignored(fs_keystore: FSKeystore, key_dir: Path) -> None:
    """Half-written files from a crash are never listed or read, and block nothing."""
    (key_dir / ".aiokes-0123456789abcdef.tmp").write_bytes(REALISTIC_RECORD[:10])
    (key_dir / ".aiokes-fedcba9876543210.tmp").write_bytes(b"")
    await fs_keystore.create("real", REALISTIC_RECORD)
    assert (await fs_keystore.list("")).names == ["real"]
    with pytest.raises(KeystoreError, match="invalid key name"):
        await fs_keystore.get(".aiokes-0123456789abcdef.tmp")


async def test_list_skips_directories_and_names_no_key_can_have(
    fs_keystore: FSKeystore, key_dir: Path
) -> None:
    (key_dir / "subdir").mkdir()
    (key_dir / "notes.txt").write_bytes(b"not a key")
    (key_dir / "valid").write_bytes(b"record")
    assert (await fs_keystore.list("")).names == ["valid"]


async def test_get_of_a_directory_is_a_keystore_error(
    fs_keystore: FSKeystore, key_dir: Path
) -> None:
    (key_dir / "subdir").mkdir()
    with pytest.raises(KeystoreError, match="not a regular file"):
        await fs_keystore.get("subdir")


async def test_get_of_a_fifo_fails_instead_of_blocking(
    fs_keystore: FSKeystore, key_dir: Path
) -> None:
    os.mkfifo(key_dir / "pipe")
    with pytest.raises(KeystoreError, match="not a regular file"):
        await fs_keystore.get("pipe")


async def test_get_reads_records_up_to_one_mib(fs_keystore: FSKeystore, key_dir: Path) -> None:
    (key_dir / "largest").write_bytes(b"a" * MAX_RECORD_SIZE)
    (key_dir / "too-large").write_bytes(b"a" * (MAX_RECORD_SIZE + 1))
    assert len(await fs_keystore.get("largest")) == MAX_RECORD_SIZE
    with pytest.raises(KeystoreError, match="larger than"):
        await fs_keystore.get("too-large")


async def test_create_refuses_records_it_could_not_read_back(
    fs_keystore: FSKeystore, key_dir: Path
) -> None:
    with pytest.raises(KeystoreError, match="at most"):
        await fs_keystore.create("huge", b"a" * (MAX_RECORD_SIZE + 1))
    assert os.listdir(key_dir) == []


async def test_delete_removes_the_file(fs_keystore: FSKeystore, key_dir: Path) -> None:
    await fs_keystore.create("doomed", b"record")
    await fs_keystore.delete("doomed")
    assert os.listdir(key_dir) == []
    with pytest.raises(KeyNotFound):
        await fs_keystore.delete("doomed")


@pytest.mark.parametrize("name", PATH_TRICKS)
async def test_path_tricks_are_rejected_before_any_io(
    fs_keystore: FSKeystore, tmp_path: Path, name: str
) -> None:
    (tmp_path / "escaped").write_bytes(b"outside")
    before = _tree(tmp_path)
    for operation in (
        fs_keystore.create(name, b"record"),
        fs_keystore.get(name),
        fs_keystore.delete(name),
    ):
        with pytest.raises(KeystoreError, match="invalid key name") as caught:
            await operation
        assert repr(name[:64]) in str(caught.value)
    assert _tree(tmp_path) == before
    assert (tmp_path / "escaped").read_bytes() == b"outside"


async def test_names_up_to_255_bytes_are_accepted(fs_keystore: FSKeystore) -> None:
    for name in ("x" * 255, "é" * 127 + "x"):
        await fs_keystore.create(name, b"record")
        assert await fs_keystore.get(name) == b"record"


def test_constructor_does_no_io(key_dir: Path) -> None:
    FSKeystore(key_dir)
    assert not key_dir.exists()


async def test_open_creates_missing_directories_with_mode_0700(tmp_path: Path) -> None:
    key_dir = tmp_path / "nested" / "keys"
    await FSKeystore(key_dir).open()
    assert key_dir.is_dir()
    assert _mode(key_dir) == 0o700


async def test_open_keeps_an_existing_directory_and_its_keys(key_dir: Path) -> None:
    os.mkdir(key_dir, mode=0o750)
    (key_dir / "kes-key").write_bytes(KES_JSON_RECORD)
    store = FSKeystore(key_dir)
    await store.open()
    assert await store.get("kes-key") == KES_JSON_RECORD
    assert _mode(key_dir) == 0o750


async def test_open_rejects_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "not-a-dir"
    path.write_bytes(b"")
    with pytest.raises(KeystoreError, match="is not a directory"):
        await FSKeystore(path).open()


async def test_open_fails_when_a_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(KeystoreError, match="ENOTDIR"):
        await FSKeystore(tmp_path / "file" / "keys").open()


async def test_read_only_directory_serves_its_keys_and_refuses_writes(
    key_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A disk problem must not become an outage of every read (issue 12 item 4)."""
    key_dir.mkdir(mode=0o700)
    (key_dir / "kes-key").write_bytes(KES_JSON_RECORD)
    store = FSKeystore(key_dir)
    with read_only_directory(key_dir):
        await store.open()
        try:
            assert "serving the existing keys read-only" in caplog.text
            assert str(key_dir) in caplog.text
            assert await store.get("kes-key") == KES_JSON_RECORD
            assert (await store.list("")).names == ["kes-key"]
            assert (await store.status()).read_only is True
            with pytest.raises(KeystoreError, match="cannot create temporary file"):
                await store.create("new-key", b"record")
            with pytest.raises(KeystoreError, match="cannot delete key file"):
                await store.delete("kes-key")
            assert os.listdir(key_dir) == ["kes-key"]
        finally:
            await store.close()
    assert (await FSKeystore(key_dir).status()).read_only is False


async def test_writable_directory_is_not_read_only(fs_keystore: FSKeystore) -> None:
    assert (await fs_keystore.status()).read_only is False


async def test_unreadable_directory_is_refused(
    key_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_dir.mkdir()
    real_access = os.access
    # Root reads any directory, so the kernel's answer is replaced at the OS boundary.
    monkeypatch.setattr(
        os, "access", lambda path, mode: False if mode & os.R_OK else real_access(path, mode)
    )
    with pytest.raises(KeystoreError, match="not readable by this process"):
        await FSKeystore(key_dir).open()
    with pytest.raises(KeystoreUnreachable, match="not readable by this process"):
        await FSKeystore(key_dir).status()


# --- temporary files left by interrupted creates --------------------------------------------

_HOLD_DIRECTORY = """
import asyncio, sys
from aiokes.keystore.fs import FSKeystore

async def main():
    store = FSKeystore(sys.argv[1])
    await store.open()
    print("open", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    await store.close()

asyncio.run(main())
"""


def _leave_stale_temp_files(key_dir: Path) -> list[Path]:
    stale = [key_dir / ".aiokes-0123456789abcdef.tmp", key_dir / ".aiokes-fedcba9876543210.tmp"]
    stale[0].write_bytes(REALISTIC_RECORD[:10])
    stale[1].write_bytes(b"")
    return stale


async def test_open_sweeps_temporary_files_of_dead_creates(key_dir: Path) -> None:
    store = FSKeystore(key_dir)
    await store.open()
    await store.create("kept", REALISTIC_RECORD)
    await store.close()
    _leave_stale_temp_files(key_dir)
    (key_dir / ".not-ours").write_bytes(b"someone else's")
    store = FSKeystore(key_dir)
    await store.open()
    await store.close()
    assert sorted(os.listdir(key_dir)) == [".not-ours", "kept"]


async def test_open_keeps_temporary_files_while_another_process_uses_the_directory(
    key_dir: Path,
) -> None:
    """Another worker or instance may be halfway through a create right now."""
    key_dir.mkdir()
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLD_DIRECTORY, str(key_dir),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert holder.stdin is not None
    assert holder.stdout is not None
    try:
        assert await asyncio.wait_for(holder.stdout.readline(), 60) == b"open\n"
        stale = _leave_stale_temp_files(key_dir)
        store = FSKeystore(key_dir)
        await store.open()
        await store.close()
        assert all(path.exists() for path in stale)
    finally:
        holder.stdin.write(b"done\n")
        await holder.stdin.drain()
        assert await asyncio.wait_for(holder.wait(), 60) == 0
    # The holder has gone: the next start sweeps.
    store = FSKeystore(key_dir)
    await store.open()
    await store.close()
    assert os.listdir(key_dir) == []


async def test_a_second_open_keystore_in_this_process_also_prevents_the_sweep(
    fs_keystore: FSKeystore, key_dir: Path
) -> None:
    """The keystore of the state before a reload stays open while the new one opens."""
    stale = _leave_stale_temp_files(key_dir)
    second = FSKeystore(key_dir)
    await second.open()
    await second.close()
    assert all(path.exists() for path in stale)


async def test_creates_keep_working_after_a_sweep(key_dir: Path) -> None:
    key_dir.mkdir()
    _leave_stale_temp_files(key_dir)
    store = FSKeystore(key_dir)
    await store.open()
    try:
        await store.create("after", REALISTIC_RECORD)
        assert os.listdir(key_dir) == ["after"]
    finally:
        await store.close()


async def test_disk_full_fails_the_create_and_leaves_no_file(
    fs_keystore: FSKeystore, key_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC injected at the OS boundary; tests/test_keystore_faults.py fills a real one."""
    real_fdopen = os.fdopen

    def no_room(data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def full_fdopen(fd: int, mode: str) -> IO[Any]:
        file = real_fdopen(fd, mode)
        monkeypatch.setattr(file, "write", no_room)
        return file

    monkeypatch.setattr(os, "fdopen", full_fdopen)
    with pytest.raises(KeystoreError, match="ENOSPC") as caught:
        await fs_keystore.create("no-room", b"record")
    assert "write temporary file" in str(caught.value)
    assert os.listdir(key_dir) == []


async def test_status_is_unreachable_when_path_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "not-a-dir"
    path.write_bytes(b"")
    with pytest.raises(KeystoreUnreachable, match="is not a directory"):
        await FSKeystore(path).status()


async def test_status_is_unreachable_once_directory_is_gone(
    fs_keystore: FSKeystore, key_dir: Path
) -> None:
    os.rmdir(key_dir)
    with pytest.raises(KeystoreUnreachable, match="ENOENT"):
        await fs_keystore.status()


async def test_list_of_vanished_directory_is_a_keystore_error(
    fs_keystore: FSKeystore, key_dir: Path
) -> None:
    os.rmdir(key_dir)
    with pytest.raises(KeystoreError, match="cannot list directory"):
        await fs_keystore.list("")
