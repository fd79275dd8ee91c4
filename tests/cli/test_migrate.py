"""``aiokes migrate`` between real directories and the fake vault, in-process and as a real
process (killed with SIGKILL half-way, and on a terminal for the progress line)."""

from __future__ import annotations

import asyncio
import os
import pty
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiokes.crypto import parse_key_version
from aiokes.keystore._tombstone import marker_directory_for
from bench.fakevault import CLIENT_SECRET, FakeVault
from tests.cli.conftest import ainvoke, invoke
from tests.crypto.vectors import JSON_RECORD_VECTORS, PROTOBUF_RECORD
from tests.test_azure_server import SECRET_VARIABLE, keystore_yaml
from tests.waiting import until

# One record of every era KES wrote: JSON of every release up to 2024-01, protobuf since.
ERA_RECORDS = {f"era-{v.name.replace('.', '-')}": v.record for v in JSON_RECORD_VECTORS} | {
    "era-protobuf": PROTOBUF_RECORD
}


def _config(path: Path, keystore: str) -> Path:
    path.write_text(
        textwrap.dedent(
            """\
            admin:
              identity: disabled
            tls:
              key: server.key
              cert: server.crt
            """
        )
        + keystore
    )
    return path


def _fs_config(tmp_path: Path, name: str) -> Path:
    return _config(tmp_path / f"{name}.yml", f"keystore:\n  fs:\n    path: {tmp_path / name}\n")


def _fill(directory: Path, records: dict[str, bytes]) -> None:
    directory.mkdir(mode=0o700, exist_ok=True)
    for name, record in records.items():
        (directory / name).write_bytes(record)


def _contents(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in directory.iterdir()}


@pytest.fixture
def fs_pair(tmp_path: Path) -> tuple[Path, Path]:
    _fill(tmp_path / "src", ERA_RECORDS)
    return _fs_config(tmp_path, "src"), _fs_config(tmp_path, "dst")


# -- fs to fs ------------------------------------------------------------------------------------


def test_copies_every_era_of_record_byte_for_byte(
    fs_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    source, target = fs_pair
    result = invoke(["migrate", "--from", str(source), "--to", str(target)])
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"Starting key migration:\n\nMigrated {len(ERA_RECORDS):6d} keys successfully!\n"
    )
    assert _contents(tmp_path / "dst") == ERA_RECORDS
    for record in _contents(tmp_path / "dst").values():
        parse_key_version(record)  # still a key every aiokes and KES release reads


def test_an_existing_name_stops_the_migration_like_kes(
    fs_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    source, target = fs_pair
    _fill(tmp_path / "dst", {"era-protobuf": b"the target's own record"})
    result = invoke(["migrate", "--from", str(source), "--to", str(target)])
    assert result.exit_code == 1
    assert result.output.endswith("Error: key already exists\n")
    assert "'era-protobuf' exists at the target; use '--merge'" in result.output
    assert (tmp_path / "dst" / "era-protobuf").read_bytes() == b"the target's own record"


def test_merge_skips_existing_names_and_force_replaces_them_saying_so(
    fs_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    source, target = fs_pair
    _fill(tmp_path / "dst", {"era-protobuf": b"the target's own record"})
    merged = invoke(["migrate", "--merge", "--from", str(source), "--to", str(target)])
    assert merged.exit_code == 0, merged.output
    assert f"Migrated {len(ERA_RECORDS) - 1:6d} keys successfully!" in merged.output
    assert "Skipped       1 existing at the target." in merged.output
    assert (tmp_path / "dst" / "era-protobuf").read_bytes() == b"the target's own record"

    forced = invoke(["migrate", "-f", "--from", str(source), "--to", str(target), "era-proto*"])
    assert forced.exit_code == 0, forced.output
    assert "Warning: key 'era-protobuf' exists at the target and is replaced" in forced.output
    assert "Replaced      1 existing at the target." in forced.output
    assert _contents(tmp_path / "dst") == ERA_RECORDS
    assert not (marker_directory_for(tmp_path / "dst") / "era-protobuf").exists()


def test_dry_run_lists_what_would_happen_and_changes_nothing(
    fs_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    source, target = fs_pair
    _fill(tmp_path / "dst", {"era-protobuf": b"mine"})
    result = invoke(
        ["migrate", "--dry-run", "--from", str(source), "--to", str(target), "era-[ep]*"]
    )
    assert result.exit_code == 1  # the real run would stop at era-protobuf
    lines = result.output.splitlines()
    assert "would stop at   era-protobuf (exists at the target)" in lines
    assert "would migrate   era-e1-zero" in lines
    assert _contents(tmp_path / "dst") == {"era-protobuf": b"mine"}

    merge = invoke(["migrate", "--dry-run", "--merge", "--from", str(source), "--to", str(target)])
    assert merge.exit_code == 0
    assert "would skip      era-protobuf (exists at the target)" in merge.output
    assert f"Dry run: {len(ERA_RECORDS) - 1} keys would be migrated" in merge.output
    assert _contents(tmp_path / "dst") == {"era-protobuf": b"mine"}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("era-e1-*", {"era-e1-zero", "era-e1-one", "era-e1-random"}),
        ("era-e1-[^o]*", {"era-e1-zero", "era-e1-random"}),  # Go's negation, not fnmatch's '!'
        ("era-e1-?ne", {"era-e1-one"}),
    ],
)
def test_pattern_is_a_go_filepath_match_glob(
    fs_pair: tuple[Path, Path], tmp_path: Path, pattern: str, expected: set[str]
) -> None:
    source, target = fs_pair
    result = invoke(["migrate", "--from", str(source), "--to", str(target), pattern])
    assert result.exit_code == 0, result.output
    assert set(_contents(tmp_path / "dst")) == expected


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--to", "dst.yml"], "no source specified. Use '--from' flag"),
        (["--from", "src.yml"], "missing migration target. Use '--to' or '--server'"),
        (["--from", "a", "--to", "b", "-f", "--merge"], "'--force' and '--merge' flags are"),
        (["--from", "a", "--to", "b", "x", "y"], "too many arguments"),
        (["--from", "a", "--to", "b", "x["], "invalid pattern"),
        (["--from", "a", "-s", "127.0.0.1:7373"], "migrating to a MinIO KMS server (-s/-e/-a)"),
    ],
)
def test_bad_invocations_fail_with_kes_messages(arguments: list[str], message: str) -> None:
    result = invoke(["migrate", *arguments])
    assert result.exit_code == 1
    assert "Error: " + message in result.output


def test_a_keystore_is_not_migrated_onto_itself(fs_pair: tuple[Path, Path]) -> None:
    source, _ = fs_pair
    result = invoke(["migrate", "--from", str(source), "--to", str(source)])
    assert result.exit_code == 1
    assert "the source and the target are the same keystore" in result.output


def test_a_recently_deleted_name_at_the_target_needs_force(
    fs_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    source, target = fs_pair
    assert invoke(["migrate", "--from", str(source), "--to", str(target)]).exit_code == 0
    (tmp_path / "dst" / "era-protobuf").unlink()
    marker = marker_directory_for(tmp_path / "dst")
    marker.mkdir()
    (marker / "era-protobuf").write_text('{"deleted_at": "2999-01-01T00:00:00+00:00"}')
    merged = invoke(["migrate", "--merge", "--from", str(source), "--to", str(target)])
    assert merged.exit_code == 1
    assert "key 'era-protobuf' was deleted at 2999-01-01T00:00:00Z" in merged.output
    forced = invoke(["migrate", "--force", "--from", str(source), "--to", str(target), "era-p*"])
    assert forced.exit_code == 0, forced.output
    assert "lifting the target's tombstone (--force)" in forced.output
    assert (tmp_path / "dst" / "era-protobuf").read_bytes() == PROTOBUF_RECORD


# -- to and from the vault -----------------------------------------------------------------------


@pytest.fixture
async def vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeVault]:
    monkeypatch.setenv(SECRET_VARIABLE, CLIENT_SECRET)
    async with FakeVault.running(tmp_path) as fake:
        yield fake


def _vault_config(tmp_path: Path, vault: FakeVault) -> Path:
    return _config(tmp_path / "vault.yml", keystore_yaml(vault.url, vault.ca_file, max_retries=0))


async def test_fs_to_vault_and_back_keeps_every_record_byte_for_byte(
    fs_pair: tuple[Path, Path], tmp_path: Path, vault: FakeVault
) -> None:
    source, _ = fs_pair
    to_vault = _vault_config(tmp_path, vault)
    result = await ainvoke(["migrate", "--from", str(source), "--to", str(to_vault)])
    assert result.exit_code == 0, result.output
    for name, record in ERA_RECORDS.items():
        assert vault.values(name) == [record.decode()]
    back = _fs_config(tmp_path, "back")
    result = await ainvoke(["migrate", "--from", str(to_vault), "--to", str(back)])
    assert result.exit_code == 0, result.output
    assert _contents(tmp_path / "back") == ERA_RECORDS


def _migrate_process(source: Path, target: Path, *, stdout: int) -> subprocess.Popen[bytes]:
    """``aiokes migrate`` in its own process, its output to ``stdout`` (a file descriptor)."""
    command = [sys.executable, "-m", "aiokes", "migrate", "--from", str(source), "--to"]
    return subprocess.Popen([*command, str(target)], stdout=stdout, stderr=subprocess.DEVNULL)


async def test_killed_half_way_then_rerun_with_merge_copies_everything_exactly_once(
    tmp_path: Path, vault: FakeVault
) -> None:
    records = {f"key-{i:03d}": PROTOBUF_RECORD[:-4] + f"{i:04d}".encode() for i in range(40)}
    _fill(tmp_path / "src", records)
    source, target = _fs_config(tmp_path, "src"), _vault_config(tmp_path, vault)
    vault.faults.delay = 0.05  # a slow vault: the kill lands in the middle
    process = _migrate_process(source, target, stdout=subprocess.DEVNULL)
    try:
        await until(lambda: sum(bool(vault.values(n)) for n in records) >= 3)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        await asyncio.to_thread(process.wait)
    copied = {name for name in records if vault.values(name)}
    assert 3 <= len(copied) < len(records)

    vault.faults.delay = 0
    result = await ainvoke(["migrate", "--merge", "--from", str(source), "--to", str(target)])
    assert result.exit_code == 0, result.output
    assert f"Skipped  {len(copied):6d} existing at the target." in result.output
    for name, record in records.items():
        assert vault.values(name) == [record.decode()]  # one version each: no duplicates


async def test_progress_line_with_count_and_rate_on_a_terminal(
    tmp_path: Path, vault: FakeVault
) -> None:
    records = {f"key-{i}": PROTOBUF_RECORD for i in range(12)}
    _fill(tmp_path / "src", records)
    source, target = _fs_config(tmp_path, "src"), _vault_config(tmp_path, vault)
    vault.faults.delay = 0.05
    controller, terminal = pty.openpty()
    process = _migrate_process(source, target, stdout=terminal)
    os.close(terminal)
    output = await asyncio.to_thread(_read_all, controller)
    assert await asyncio.to_thread(process.wait) == 0
    text = output.decode()
    progress = [part for part in text.split("\r") if part.startswith("Migrated") and "/s)" in part]
    assert progress, text
    assert text.rstrip().endswith(f"Migrated {len(records):6d} keys successfully!")


def _read_all(fd: int) -> bytes:
    chunks = []
    try:
        while chunk := os.read(fd, 4096):
            chunks.append(chunk)
    except OSError:  # EIO: the other side closed
        pass
    finally:
        os.close(fd)
    return b"".join(chunks)
