"""``aiokes policy``: describe, list and show the server's policies (``kes policy …``)."""

from __future__ import annotations

from typing import Any

import click

from aiokes.cli._common import (
    ClientOptions,
    client_options,
    display_time,
    echo_json,
    failing_as,
    is_terminal,
    json_option,
    run_with_client,
)
from aiokes.cli.ls import print_names
from aiokes.client import Client

__all__ = ["policy"]


@click.group("policy")
def policy() -> None:
    """Inspect policies."""


@policy.command("info")
@click.argument("name")
@json_option
@client_options
def info(name: str, as_json: bool, insecure: bool) -> None:
    """Describe the policy NAME."""

    async def action(client: Client) -> dict[str, Any]:
        with failing_as(f"failed to describe policy '{name}'"):
            return await client.describe_policy(name)

    description = run_with_client(ClientOptions(insecure=insecure), action)
    if as_json:
        echo_json(description, indent=is_terminal())
        return
    click.echo(f"{'Name':<11} {name}")
    if description.get("created_at"):
        click.echo(f"{'Date':<11} {display_time(description['created_at'])}")
    if description.get("created_by"):
        click.echo(f"{'Created by':<11} {description['created_by']}")


@policy.command("ls")
@click.argument("prefix", required=False, default="")
@json_option
@client_options
def ls(prefix: str, as_json: bool, insecure: bool) -> None:
    """List the policies whose name starts with PREFIX."""
    names = run_with_client(ClientOptions(insecure=insecure), lambda c: c.list_policies(prefix))
    print_names("Policy", names, as_json=as_json)


@policy.command("show")
@click.argument("name")
@json_option
@client_options
def show(name: str, as_json: bool, insecure: bool) -> None:
    """Show the allow and deny rules of the policy NAME."""

    async def action(client: Client) -> dict[str, Any]:
        with failing_as(f"failed to show policy '{name}'"):
            return await client.read_policy(name)

    document = run_with_client(ClientOptions(insecure=insecure), action)
    if as_json or not is_terminal():
        echo_json(_policy_json(document), indent=is_terminal())
    else:
        _print_rules(document)


def _policy_json(document: dict[str, Any]) -> dict[str, Any]:
    """KES's layout for ``policy show``: the rules (when any) and who created them."""
    shown = {rule: document[rule] for rule in ("allow", "deny") if document.get(rule)}
    shown["created_at"] = document.get("created_at", "")
    if document.get("created_by"):
        shown["created_by"] = document["created_by"]
    return shown


def _print_rules(document: dict[str, Any]) -> None:
    lines: list[str] = []
    for title, rule in (("Allow", "allow"), ("Deny", "deny")):
        patterns = document.get(rule) or {}
        if not patterns:
            continue
        if lines:
            lines.append("")
        lines.append(f"{title}:")
        lines.extend(f"  · {pattern}" for pattern in patterns)
    lines.append("")
    if document.get("created_at"):
        lines.append(f"Created at: {display_time(document['created_at'])}")
    lines.append(f"Created by: {document.get('created_by') or '<unknown>'}")
    click.echo("\n".join(lines))
