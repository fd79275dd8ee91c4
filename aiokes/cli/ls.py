"""``aiokes ls``: list keys (default), identities (``-i``) or policies (``-p``), as ``kes ls``."""

from __future__ import annotations

from collections.abc import Sequence

import click

from aiokes.cli._common import (
    ClientOptions,
    client_options,
    echo_json,
    json_option,
    run_with_client,
)
from aiokes.client import Client

__all__ = ["ls", "print_names"]


@click.command("ls")
@click.option("-i", "--identity", "identities", is_flag=True, help="List identities.")
@click.option("-p", "--policy", "policies", is_flag=True, help="List policies.")
@click.option("-s", "--server", default=None, metavar="HOST[:PORT]", help="Use this server.")
@click.option("-a", "--api-key", default=None, help="Authenticate with this API key.")
@click.argument("prefix", required=False, default="")
@json_option
@client_options
def ls(
    identities: bool,
    policies: bool,
    server: str | None,
    api_key: str | None,
    prefix: str,
    as_json: bool,
    insecure: bool,
) -> None:
    """List keys, identities or policies whose name starts with PREFIX."""
    if identities and policies:
        raise click.UsageError("'-p/--policy' and '-i/--identity' must not be used together")

    async def action(client: Client) -> list[str]:
        if identities:
            return await client.list_identities(prefix)
        if policies:
            return await client.list_policies(prefix)
        return await client.list_keys(prefix)

    options = ClientOptions(insecure=insecure, server=server, api_key=api_key)
    header = "Identity" if identities else "Policy" if policies else "Key"
    print_names(header, run_with_client(options, action), as_json=as_json)


def print_names(header: str, names: Sequence[str], *, as_json: bool) -> None:
    """A JSON array, or a header line and one name per line (nothing at all when empty)."""
    names = sorted(names)
    if as_json:
        echo_json(names)
    elif names:
        click.echo("\n".join([header, *names]))
