"""``aiokes server``: start the key server."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import click

from aiokes.__about__ import __version__
from aiokes.config import ServerConfig, load_config
from aiokes.errors import AiokesError
from aiokes.identity import is_identity
from aiokes.memory_lock import lock_memory
from aiokes.server import Server, parse_address

__all__ = ["server"]


@click.command("server")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Config file.")
@click.option("--addr", default=None, help="Listen address [ip]:port (overrides the config).")
@click.option("--dev", is_flag=True, help="Development server: in-memory keystore, no set-up.")
@click.option(
    "--auth",
    type=click.Choice(["on", "off"], case_sensitive=False),
    is_flag=False,
    flag_value="on",
    default=None,
    help="KES v0.x flag: 'on' verifies client certificates (as tls.auth: on), 'off' does not.",
)
@click.option(
    "--keystore-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="With --dev: keep keys in an fs keystore in this directory instead of in memory.",
)
@click.option("--mlock", is_flag=True, help="KES v0.x flag; memory is always locked if permitted.")
def server(
    config_file: str | None,
    addr: str | None,
    dev: bool,
    auth: str | None,
    keystore_dir: str | None,
    mlock: bool,
) -> None:
    """Start a KES-compatible server."""
    if dev and config_file:
        raise click.UsageError("'--dev' and '--config' cannot be used together")
    if not dev and not config_file:
        raise click.UsageError("no config file: use '--config <file>' or '--dev'")
    if keystore_dir and not dev:
        raise click.UsageError("'--keystore-dir' only goes with '--dev'; use the config file")
    if addr is not None:
        _check_address(addr)
    if dev:
        _run_dev(addr, keystore_dir or "")
        return
    assert config_file is not None
    config = _load(config_file)
    if auth is not None:
        config = _with_auth(config, auth.lower() == "on")
    _run(config, addr, banner_extra=lambda: None)


def _load(config_file: str) -> ServerConfig:
    try:
        return load_config(config_file)
    except AiokesError as exc:
        raise click.ClickException(str(exc)) from None


def _with_auth(config: ServerConfig, verify: bool) -> ServerConfig:
    import dataclasses

    click.echo("Note: '--auth' is deprecated; set 'tls.auth' in the config file instead.", err=True)
    tls = dataclasses.replace(config.tls, verify_client_certs=verify)
    return dataclasses.replace(config, tls=tls)


def _check_address(addr: str) -> None:
    try:
        parse_address(addr)
    except AiokesError as exc:
        raise click.BadParameter(str(exc), param_hint="'--addr'") from None


def _run_dev(addr: str | None, keystore_dir: str) -> None:
    from aiokes.dev import DEV_ADDRESS, dev_environment

    environment = dev_environment(addr or DEV_ADDRESS, keystore_dir)
    with environment.directory:

        def api_key_lines() -> None:
            click.echo(f"{'API Key':<12}{environment.api_key}")
            click.echo(f"{'':<12}(the admin identity: use it as KES_API_KEY)")

        _run(environment.config, addr, banner_extra=api_key_lines)


def _run(config: ServerConfig, addr: str | None, banner_extra: Callable[[], None]) -> None:
    mlock_problem = lock_memory()
    instance = Server(config, address=addr)

    def on_ready() -> None:
        _banner(instance, config, mlock_problem)
        banner_extra()

    try:
        _event_loop_runner(instance.serve_forever(on_ready))
    except AiokesError as exc:
        raise click.ClickException(str(exc)) from None


def _event_loop_runner(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:  # uvloop is not available on every platform; asyncio still works
        asyncio.run(main)
        return
    uvloop.run(main)


def _banner(instance: Server, config: ServerConfig, mlock_problem: str | None) -> None:
    host = instance.address.host
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
    admin = config.admin_identity if is_identity(config.admin_identity) else "<disabled>"
    levels = f"error={_level(config.log.error_level)} audit={_level(config.log.audit_level)}"
    rows = [
        ("Version", f"aiokes {__version__}  (Python {sys.version.split()[0]})"),
        ("KMS", config.keystore.describe()),
        ("API", f"https://{shown}:{instance.port}"),
        ("Admin", admin),
        ("Logs", levels),
        ("MLock", "enabled" if mlock_problem is None else f"disabled: {mlock_problem}"),
    ]
    for label, value in rows:
        click.echo(f"{label:<12}{value}")


def _level(level: int | None) -> str:
    import logging

    return "off" if level is None else logging.getLevelName(level)
