"""``aiokes tombstone ls|rm`` on a real key directory: the operator's explicit override."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

from aiokes.keystore.fs import FSKeystore
from tests.cli.conftest import invoke
from tests.keystore.contract import REALISTIC_RECORD


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(
        textwrap.dedent(
            f"""\
            admin:
              identity: disabled
            tls:
              key: server.key
              cert: server.crt
            keystore:
              fs:
                path: {tmp_path}/keys
            """
        )
    )
    return path


def _create_and_delete(directory: Path, name: str) -> FSKeystore:
    store = FSKeystore(directory, reuse_wait=310)

    async def run() -> None:
        await store.open()
        await store.create(name, REALISTIC_RECORD)
        await store.delete(name)

    asyncio.run(run())
    return store


def test_ls_shows_when_each_name_is_free_and_rm_frees_it(tmp_path: Path) -> None:
    config = _config(tmp_path)
    store = _create_and_delete(tmp_path / "keys", "k1")
    listed = invoke(["tombstone", "ls", "--config", str(config)])
    assert listed.exit_code == 0, listed.output
    (row,) = listed.output.splitlines()[1:]
    assert row.startswith("k1 ")
    assert row.endswith("Z")  # reusable at a time, not "now"

    removed = invoke(["tombstone", "rm", "--config", str(config), "k1"])
    assert removed.exit_code == 0, removed.output
    assert "Tombstone of 'k1' removed" in removed.output
    assert invoke(["tombstone", "ls", "--config", str(config)]).output.splitlines()[1:] == []
    asyncio.run(store.create("k1", REALISTIC_RECORD))  # no longer refused


def test_rm_needs_a_name_and_a_config(tmp_path: Path) -> None:
    no_name = invoke(["tombstone", "rm", "--config", str(_config(tmp_path))])
    assert no_name.exit_code == 1  # a usage error, as kes answers it
    result = invoke(["tombstone", "ls", "--config", str(tmp_path / "missing.yml")])
    assert result.exit_code == 1
    assert "cannot read the config file" in result.output
