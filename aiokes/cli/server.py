"""``aiokes server``: start the key server."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from aiokes.__about__ import __version__
from aiokes.build import describe
from aiokes.config import ListenAddress, ServerConfig, load_config, parse_listen_address
from aiokes.errors import AiokesError
from aiokes.identity import is_identity
from aiokes.metrics import usable_cpus
from aiokes.server import systemd
from aiokes.server.memory_lock import lock_memory
from aiokes.server.process import Server, run_event_loop
from aiokes.server.supervisor import Hooks, Supervisor

__all__ = ["server"]


def _listen_address(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> ListenAddress | None:
    """``--addr``, parsed as the config file's ``address`` is."""
    if value is None:
        return None
    try:
        return parse_listen_address(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


@click.command("server")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Config file.")
@click.option(
    "--addr",
    default=None,
    callback=_listen_address,
    help="Listen address [ip]:port (overrides the config).",
)
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
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes sharing the listener [default: the number of usable CPUs].",
)
@click.option("--mlock", is_flag=True, help="KES v0.x flag; memory is always locked if permitted.")
def server(
    config_file: str | None,
    addr: ListenAddress | None,
    dev: bool,
    auth: str | None,
    keystore_dir: str | None,
    workers: int | None,
    mlock: bool,
) -> None:
    """Start a KES-compatible server."""
    if dev and config_file:
        raise click.UsageError("'--dev' and '--config' cannot be used together")
    if not dev and not config_file:
        raise click.UsageError("no config file: use '--config <file>' or '--dev'")
    if keystore_dir and not dev:
        raise click.UsageError("'--keystore-dir' only goes with '--dev'; use the config file")
    if dev and not keystore_dir and (workers or 1) > 1:
        raise click.UsageError(
            "'--dev' keeps keys in one process's memory: use '--keystore-dir' for several workers"
        )
    if dev:
        # An in-memory keystore lives in one process: more workers would not share keys.
        _run_dev(addr, keystore_dir or "", workers or (usable_cpus() if keystore_dir else 1))
        return
    assert config_file is not None
    config = _load(config_file)
    if auth is not None:
        config = _with_auth(config, auth.lower() == "on")
    _run(config, addr, workers or usable_cpus(), banner_extra=lambda: None)


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


def _run_dev(addr: ListenAddress | None, keystore_dir: str, workers: int) -> None:
    from aiokes.server.dev import DEV_ADDRESS, dev_environment

    environment = dev_environment(addr or DEV_ADDRESS, keystore_dir)
    with environment.directory:

        def api_key_lines() -> None:
            click.echo(f"{'API Key':<12}{environment.api_key}")
            click.echo(f"{'':<12}(the admin identity: use it as KES_API_KEY)")

        _run(
            environment.config,
            addr,
            workers,
            banner_extra=api_key_lines,
            reload_config=lambda: environment.config,
        )


def _run(
    config: ServerConfig,
    addr: ListenAddress | None,
    workers: int,
    banner_extra: Callable[[], None],
    reload_config: Callable[[], ServerConfig] | None = None,
) -> None:
    mlock_problem = lock_memory()
    if mlock_problem is not None:
        click.echo(
            f"Warning: memory is not locked, keys may be swapped to disk: {mlock_problem}", err=True
        )
    host = (addr or config.address).host

    def ready(port: int) -> None:
        _banner(config, host, port, workers, mlock_problem)
        banner_extra()
        systemd.ready()

    # A failed reload still serves the old config: READY either way (the error log says why).
    def reloaded(succeeded: bool) -> None:
        systemd.ready()

    try:
        if workers == 1:
            instance = Server(config, address=addr, reload_config=reload_config)
            serving = instance.serve_forever(
                on_ready=lambda: ready(instance.port),
                on_reload=reloaded,
                on_reloading=systemd.reloading,
                on_stopping=systemd.stopping,
                watchdog=True,
            )
            run_event_loop(serving)
            return
        supervisor = Supervisor(config, workers=workers, address=addr, reload_config=reload_config)
        hooks = Hooks(
            ready=ready, reloading=systemd.reloading, reloaded=reloaded, stopping=systemd.stopping
        )
        code = supervisor.run(hooks)
    except AiokesError as exc:
        raise click.ClickException(str(exc)) from None
    if code:
        raise click.exceptions.Exit(code)


def _banner(
    config: ServerConfig, host: str, port: int, workers: int, mlock_problem: str | None
) -> None:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
    admin = config.admin_identity if is_identity(config.admin_identity) else "<disabled>"
    levels = f"error={_level(config.log.error_level)} audit={_level(config.log.audit_level)}"
    rows = [
        ("Version", f"aiokes {__version__}  (Python {sys.version.split()[0]})"),
        ("Build", describe()),  # the compiled build or not: the operator cannot tell otherwise
        ("KMS", config.keystore.describe()),
        ("API", f"https://{shown}:{port}"),
        ("Workers", str(workers)),
        ("Admin", admin),
        ("Logs", levels),
        ("MLock", "enabled" if mlock_problem is None else f"disabled: {mlock_problem}"),
    ]
    for label, value in rows:
        click.echo(f"{label:<12}{value}")


def _level(level: int | None) -> str:
    import logging

    return "off" if level is None else logging.getLevelName(level)
