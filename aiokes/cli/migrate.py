"""``aiokes migrate``: copy key records from one keystore to another (``kes migrate``, §9.3).

Both keystores are described by server config files (``--from``, ``--to``), so any pair that
aiokes supports works: an fs directory written by any KES release, an Azure Key Vault, a
mirror. Records are copied as the raw bytes the source stores, never decoded and re-encoded,
so every ciphertext made with them still opens.

As in KES, a name that exists at the target stops the run, ``--merge`` skips such names and
``--force`` replaces them. The keystores have no overwrite, so ``--force`` deletes the target's
key and creates it again, warning about each one: if the run is interrupted in between, that
name is missing at the target (and reserved by its tombstone) until the run is repeated with
``--force``. An interrupted run repeated with ``--merge`` copies exactly what is still missing,
since every copy is a create-only write of a complete record. ``--dry-run`` (aiokes only) says
what would happen and changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import click

from aiokes.cli._glob import compile_pattern
from aiokes.config import MirrorKeystoreConfig, load_config
from aiokes.errors import AiokesError, APIError, KeyExists, KeyNameReserved, KeyNotFound
from aiokes.keystore import Keystore
from aiokes.keystore._tombstone import Tombstoned
from aiokes.keystore.mirror import MirrorKeystore, all_names

__all__ = ["migrate", "open_keystore"]

_PROGRESS_PERIOD = 1.0


@dataclass(slots=True)
class _Tally:
    migrated: int = 0
    skipped: int = 0
    overwritten: int = 0
    refused: int = 0  # dry run: names the real run would stop at


@click.command("migrate")
@click.option("--from", "source_file", metavar="FILE", help="Config file of the source keystore.")
@click.option("--to", "target_file", metavar="FILE", help="Config file of the target keystore.")
@click.option(
    "-f", "--force", is_flag=True, help="Replace keys that exist at the target (delete, create)."
)
@click.option("--merge", is_flag=True, help="Skip keys that exist at the target.")
@click.option("--dry-run", is_flag=True, help="Only list what would be migrated; change nothing.")
# kes migrate's MinIO KMS target options: accepted so that the error can say what to do.
@click.option("-s", "--server", "kms_server", hidden=True)
@click.option("-e", "--enclave", "kms_enclave", hidden=True)
@click.option("-a", "--api-key", "kms_api_key", hidden=True)
@click.option("-k", "--insecure", is_flag=True, hidden=True)
@click.argument("patterns", nargs=-1, metavar="[PATTERN]")
def migrate(
    source_file: str | None,
    target_file: str | None,
    force: bool,
    merge: bool,
    dry_run: bool,
    kms_server: str | None,
    kms_enclave: str | None,
    kms_api_key: str | None,
    insecure: bool,
    patterns: tuple[str, ...],
) -> None:
    """Copy the keys whose names match PATTERN (default '*', a Go filepath.Match glob) from
    the keystore of one config file to the keystore of another, byte for byte."""
    if len(patterns) > 1:
        raise click.ClickException("too many arguments")
    if not source_file:
        raise click.ClickException("no source specified. Use '--from' flag")
    if kms_server or kms_enclave or kms_api_key:
        raise click.ClickException(
            "migrating to a MinIO KMS server (-s/-e/-a) is not supported by aiokes; "
            "use '--to' with a config file"
        )
    if not target_file:
        raise click.ClickException("missing migration target. Use '--to' or '--server'")
    if force and merge:
        raise click.ClickException("'--force' and '--merge' flags are mutually exclusive")
    try:
        pattern = compile_pattern(patterns[0] if patterns else "*")
    except ValueError as exc:
        raise click.ClickException(f"invalid pattern: {exc}") from None
    run = _Run(pattern, force=force, merge=merge, dry_run=dry_run)
    try:
        tally = asyncio.run(run.execute(source_file, target_file))
    except (AiokesError, OSError) as exc:
        raise click.ClickException(_message(exc)) from None
    _summary(tally, dry_run=dry_run)
    if dry_run and tally.refused:
        sys.exit(1)


@contextlib.asynccontextmanager
async def open_keystore(config_file: str) -> AsyncIterator[Keystore]:
    """The keystore of a server config file, for an operator command.

    A mirror is opened without its background check, which would repair the two sides while
    the command works on them.
    """
    config = load_config(config_file).keystore
    if isinstance(config, MirrorKeystoreConfig):
        primary = await config.primary.connect()
        try:
            secondary = await config.secondary.connect()
        except BaseException:
            await primary.close()
            raise
        store: Keystore = MirrorKeystore(primary, secondary, check_interval=0)
    else:
        store = await config.connect()
    try:
        yield store
    finally:
        await store.close()


class _Run:
    def __init__(
        self, pattern: re.Pattern[str], *, force: bool, merge: bool, dry_run: bool
    ) -> None:
        self._pattern = pattern
        self._force = force
        self._merge = merge
        self._dry_run = dry_run
        self._tally = _Tally()

    async def execute(self, source_file: str, target_file: str) -> _Tally:
        async with open_keystore(source_file) as source, open_keystore(target_file) as target:
            if repr(source) == repr(target) or _same_fs_directory(source, target):
                raise click.ClickException(
                    "the source and the target are the same keystore; nothing to migrate"
                )
            names = [name for name in await all_names(source) if self._pattern.fullmatch(name)]
            if not self._dry_run:
                click.echo("Starting key migration:\n")
            with self._progress():
                for name in names:
                    value = await source.get(name)
                    if self._dry_run:
                        await self._preview(target, name)
                    else:
                        await self._copy(target, name, value)
        return self._tally

    async def _copy(self, target: Keystore, name: str, value: bytes) -> None:
        try:
            await target.create(name, value)
        except KeyNameReserved as exc:
            if not self._force:
                _explain(f"'{name}' was deleted at the target recently; '--force' overrides it")
                raise click.ClickException(exc.message) from None
            _warn(f"key '{name}': lifting the target's tombstone (--force)")
            await _forget_deletion(target, name)
            await target.create(name, value)
        except KeyExists:
            if self._merge:
                self._tally.skipped += 1
                return
            if not self._force:
                _explain(
                    f"'{name}' exists at the target; use '--merge' to skip existing keys "
                    "or '--force' to replace them"
                )
                raise
            _warn(
                f"key '{name}' exists at the target and is replaced (--force); servers that "
                "cached the old key keep using it until their cache expires"
            )
            with contextlib.suppress(KeyNotFound):
                await target.delete(name)
            await _forget_deletion(target, name)
            await target.create(name, value)
            self._tally.overwritten += 1
        self._tally.migrated += 1

    async def _preview(self, target: Keystore, name: str) -> None:
        exists = True
        try:
            await target.get(name)
        except KeyNotFound:
            exists = False
        tombstone = None
        if not exists and isinstance(target, Tombstoned):
            tombstone = await target.tombstone(name)
        if not exists and tombstone is None:
            click.echo(f"would migrate   {name}")
            self._tally.migrated += 1
        elif exists and self._merge:
            click.echo(f"would skip      {name} (exists at the target)")
            self._tally.skipped += 1
        elif self._force:
            click.echo(f"would overwrite {name}" if exists else f"would migrate   {name}")
            self._tally.migrated += 1
            self._tally.overwritten += exists
        else:
            why = "exists at the target" if exists else "deleted at the target (tombstone)"
            click.echo(f"would stop at   {name} ({why})")
            self._tally.refused += 1

    @contextlib.contextmanager
    def _progress(self) -> Iterator[None]:
        """A progress line with count and rate, on a terminal only, updated every second."""
        if self._dry_run or not sys.stdout.isatty():
            yield
            return
        started = time.monotonic()

        async def report() -> None:
            while True:
                await asyncio.sleep(_PROGRESS_PERIOD)
                count = self._tally.migrated
                rate = count / max(time.monotonic() - started, 1e-9)
                click.echo(f"\rMigrated {count:6d} {_keys(count)} ... ({rate:.0f}/s)", nl=False)

        task = asyncio.get_running_loop().create_task(report())
        try:
            yield
        finally:
            task.cancel()
            click.echo("\r" + " " * 60 + "\r", nl=False)  # the summary replaces the line


async def _forget_deletion(target: Keystore, name: str) -> None:
    if isinstance(target, Tombstoned):
        await target.forget_deletion(name)


def _same_fs_directory(source: Keystore, target: Keystore) -> bool:
    paths = [getattr(store, "path", None) for store in (source, target)]
    if paths[0] is None or paths[1] is None:
        return False
    return bool(paths[0].resolve() == paths[1].resolve())


def _summary(tally: _Tally, *, dry_run: bool) -> None:
    if dry_run:
        click.echo(
            f"Dry run: {tally.migrated} {_keys(tally.migrated)} would be migrated "
            f"({tally.overwritten} overwritten), {tally.skipped} skipped, "
            f"{tally.refused} would stop the migration. Nothing was changed."
        )
        return
    if tally.migrated == 0:
        click.echo("Migration succeeded! No keys migrated.")
    else:
        click.echo(f"Migrated {tally.migrated:6d} keys successfully!")
    if tally.skipped:
        click.echo(f"Skipped  {tally.skipped:6d} existing at the target.")
    if tally.overwritten:
        click.echo(f"Replaced {tally.overwritten:6d} existing at the target.")


def _keys(count: int) -> str:
    return "key " if count == 1 else "keys"


def _warn(text: str) -> None:
    click.echo(f"Warning: {text}", err=True)


def _explain(text: str) -> None:
    click.echo(f"aiokes: {text}", err=True)


def _message(exc: BaseException) -> str:
    if isinstance(exc, APIError):
        return exc.message
    return str(exc)
