"""The ``aiokes`` command: a drop-in for the ``kes`` binary (spec §9).

Exit codes are kes's (:mod:`aiokes.cli._exit`): 0 done, 1 any failure (a usage error
included, after one ``Error: …`` line on stderr), 2 help. This package is the only place
that ends the process.
"""

from __future__ import annotations

import click

from aiokes.__about__ import __version__
from aiokes.build import describe
from aiokes.cli._exit import KesGroup, use_kes_exit_codes
from aiokes.cli.bench import bench
from aiokes.cli.identity import identity
from aiokes.cli.key import key
from aiokes.cli.log import log
from aiokes.cli.ls import ls
from aiokes.cli.metric import metric
from aiokes.cli.migrate import migrate
from aiokes.cli.policy import policy
from aiokes.cli.server import server
from aiokes.cli.status import status
from aiokes.cli.tombstone import tombstone

__all__ = ["main"]


def _show_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """``-v/--version``: the version and which build runs (:func:`aiokes.build.describe`),
    looked up only when asked for."""
    if value and not ctx.resilient_parsing:
        click.echo(f"aiokes, version {__version__} ({describe()})")
        ctx.exit()


@click.group("aiokes", cls=KesGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-v",
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_show_version,
    help="Show the version, and whether the request path is compiled, and exit.",
)
def main() -> None:
    """aiokes: a KES-compatible key encryption service.

    Client commands find the server and their credentials in KES's environment variables:
    MINIO_KES_SERVER / KES_SERVER (default 127.0.0.1:7373), MINIO_KES_API_KEY / KES_API_KEY,
    or KES_CLIENT_CERT and KES_CLIENT_KEY.
    """


for _command in (server, ls, key, policy, identity, status):
    main.add_command(_command)
main.add_command(log)
main.add_command(metric)
main.add_command(bench)
main.add_command(migrate)
main.add_command(tombstone)
use_kes_exit_codes(main)
