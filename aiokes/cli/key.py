"""``aiokes key``: create, import, describe, list and delete master keys; encrypt, decrypt and
derive data keys with them (``kes key …``, spec §9.3)."""

from __future__ import annotations

import click

from aiokes._go.base64 import b64encode_std
from aiokes.cli._common import (
    ClientOptions,
    base64_argument,
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

__all__ = ["key"]


@click.group("key")
def key() -> None:
    """Manage cryptographic keys."""


@key.command("create")
@click.argument("names", nargs=-1, required=True)
@client_options
def create(names: tuple[str, ...], insecure: bool) -> None:
    """Create new master keys, one per NAME."""

    async def action(client: Client) -> None:
        for name in names:
            with failing_as(f"failed to create key '{name}'"):
                await client.create_key(name)

    run_with_client(ClientOptions(insecure=insecure), action)


@key.command("import")
@click.argument("name")
@click.argument("key_bytes", metavar="KEY", callback=base64_argument)
@client_options
def import_(name: str, key_bytes: bytes, insecure: bool) -> None:
    """Import KEY (32 bytes, base64) as the master key NAME."""

    async def action(client: Client) -> None:
        with failing_as(f"failed to import key '{name}'"):
            await client.import_key(name, key_bytes)

    run_with_client(ClientOptions(insecure=insecure), action)


@key.command("info")
@click.argument("name")
@json_option
@client_options
def info(name: str, as_json: bool, insecure: bool) -> None:
    """Describe the master key NAME."""

    async def action(client: Client) -> dict[str, object]:
        with failing_as(f"failed to describe key '{name}'"):
            return await client.describe_key(name)

    description = run_with_client(ClientOptions(insecure=insecure), action)
    if as_json:
        echo_json(description)
        return
    click.echo(f"{'Name':<11} {description.get('name', name)}")
    click.echo(f"{'Algorithm':<11} {description.get('algorithm', '')}")
    click.echo(f"{'Date':<11} {display_time(description.get('created_at'))}")
    click.echo(f"{'Owner':<11} {description.get('created_by', '')}")


@key.command("ls")
@click.argument("prefix", required=False, default="")
@json_option
@client_options
def ls(prefix: str, as_json: bool, insecure: bool) -> None:
    """List master keys (the older form of ``aiokes ls``)."""
    names = run_with_client(ClientOptions(insecure=insecure), lambda c: c.list_keys(prefix))
    print_names("Key", names, as_json=as_json)


@key.command("rm")
@click.argument("names", nargs=-1, required=True)
@client_options
def rm(names: tuple[str, ...], insecure: bool) -> None:
    """Delete the master keys NAMES."""

    async def action(client: Client) -> None:
        for name in names:
            with failing_as(f"failed to remove key '{name}'"):
                await client.delete_key(name)

    run_with_client(ClientOptions(insecure=insecure), action)


@key.command("encrypt")
@click.argument("name")
@click.argument("message")
@click.argument("context", required=False, callback=base64_argument)
@json_option
@client_options
def encrypt(name: str, message: str, context: bytes | None, as_json: bool, insecure: bool) -> None:
    """Encrypt MESSAGE (text) with the key NAME; CONTEXT (base64) is associated data."""

    async def action(client: Client) -> bytes:
        with failing_as("failed to encrypt message"):
            return await client.encrypt(name, message.encode(), context or b"")

    ciphertext = run_with_client(ClientOptions(insecure=insecure), action)
    _print_fields({"ciphertext": ciphertext}, as_json=as_json)


@key.command("decrypt")
@click.argument("name")
@click.argument("ciphertext", callback=base64_argument)
@click.argument("context", required=False, callback=base64_argument)
@json_option
@client_options
def decrypt(
    name: str, ciphertext: bytes, context: bytes | None, as_json: bool, insecure: bool
) -> None:
    """Decrypt CIPHERTEXT (base64) with the key NAME; CONTEXT (base64) must match."""

    async def action(client: Client) -> bytes:
        with failing_as("failed to decrypt ciphertext"):
            return await client.decrypt(name, ciphertext, context or b"")

    plaintext = run_with_client(ClientOptions(insecure=insecure), action)
    _print_fields({"plaintext": plaintext}, as_json=as_json)


@key.command("dek")
@click.argument("name")
@click.argument("context", required=False, callback=base64_argument)
@json_option
@client_options
def dek(name: str, context: bytes | None, as_json: bool, insecure: bool) -> None:
    """Generate a data encryption key with the key NAME; CONTEXT (base64) is associated data."""

    async def action(client: Client) -> dict[str, bytes]:
        with failing_as("failed to derive key"):
            generated = await client.generate_key(name, context or b"")
        return {"plaintext": generated.plaintext, "ciphertext": generated.ciphertext}

    _print_fields(run_with_client(ClientOptions(insecure=insecure), action), as_json=as_json)


def _print_fields(fields: dict[str, bytes], *, as_json: bool) -> None:
    """KES's layout: aligned ``name: base64`` lines after a blank line on a terminal,
    one compact JSON object otherwise."""
    encoded = {name: b64encode_std(value) for name, value in fields.items()}
    if as_json or not is_terminal():
        echo_json(encoded)
        return
    width = max(len(name) for name in encoded) + 1
    click.echo()
    for name, value in encoded.items():
        click.echo(f"{name + ':':<{width}} {value}")
