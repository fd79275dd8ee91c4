"""``aiokes tombstone``: see and lift the tombstones that keep deleted key names reserved.

A deleted name cannot be created again until every server's cache must have dropped the old
key (``aiokes.keystore._tombstone``). An operator who knows better (a single server, or every
server restarted since) lifts a tombstone here, explicitly, by name. Works on the keystore of
a server config file directly, like ``aiokes migrate``; aiokes only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from aiokes.cli.migrate import open_keystore
from aiokes.config import ServerConfig, load_config
from aiokes.errors import AiokesError, APIError
from aiokes.keystore._tombstone import Tombstone, Tombstoned, reuse_wait

__all__ = ["tombstone"]

T = TypeVar("T")

_config_option = click.option(
    "--config", "config_file", metavar="FILE", required=True, help="The server config file."
)


@click.group("tombstone")
def tombstone() -> None:
    """Deleted key names that cannot be reused yet."""


@tombstone.command("ls")
@_config_option
def ls(config_file: str) -> None:
    """List the tombstones and when each name can be reused."""
    config = _load(config_file)
    wait = reuse_wait(config.cache.expiry_any, config.cache.expiry_offline)
    found = _run(_tombstones(config_file))
    now = datetime.now(UTC)
    click.echo(f"{'Key':<32} {'Deleted':<21} Reusable")
    for entry in found:
        reusable = entry.reusable_at(wait)
        if reusable is None:
            when = "never (cache.expiry.any is 0)"
        elif reusable <= now:
            when = "now"
        else:
            when = _format(reusable)
        click.echo(f"{entry.name:<32} {_format(entry.deleted_at):<21} {when}")


@tombstone.command("rm")
@_config_option
@click.argument("names", nargs=-1, required=True)
def rm(config_file: str, names: tuple[str, ...]) -> None:
    """Lift the tombstones of NAMES, so that they can be created again at once.

    Only safe when no server can still hold the deleted key in its cache."""
    _load(config_file)
    _run(_forget(config_file, names))
    for name in names:
        click.echo(f"Tombstone of '{name}' removed: the name can be created again.")


async def _tombstones(config_file: str) -> list[Tombstone]:
    async with open_keystore(config_file) as store:
        return await _tombstoned(store).tombstones()


async def _forget(config_file: str, names: tuple[str, ...]) -> None:
    async with open_keystore(config_file) as store:
        for name in names:
            await _tombstoned(store).forget_deletion(name)


def _tombstoned(store: object) -> Tombstoned:
    if not isinstance(store, Tombstoned):
        raise click.ClickException("this keystore keeps no tombstones")
    return store


def _load(config_file: str) -> ServerConfig:
    try:
        return load_config(config_file)
    except AiokesError as exc:
        raise click.ClickException(str(exc)) from None


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coroutine)
    except (AiokesError, OSError) as exc:
        message = exc.message if isinstance(exc, APIError) else str(exc)
        raise click.ClickException(message) from None


def _format(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
