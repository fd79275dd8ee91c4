"""``aiokes identity``: make identities (key pairs, certificates, API keys), compute them, and
ask the server about them.

As ``kes identity`` (HEAD), the bare command makes a new API key, and ``aiokes identity
KEY|FILE`` computes an identity; for an Ed25519 private-key file it prints the API key that
is the same secret, with KES's warning (``kes identity <key-file>``). ``identity of`` only
ever prints identities. ``identity new`` behaves as in KES v0.22 and the operator tutorial:
it always writes a private key and a certificate, ``private.key`` and ``public.crt`` in the
current directory unless ``--key``/``--cert`` say otherwise, and prints them as the tutorial
shows. It prints no API key: with the key in a file, the API key would be that TLS private
key, on the screen and in the terminal's scroll-back, looking like something to paste.
"""

from __future__ import annotations

import datetime
import ipaddress
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
from aiokes.cli._identity_files import (
    IdentityFiles,
    Recognised,
    create_identity_files,
    parse_expiry,
    recognise,
)
from aiokes.cli.ls import print_names
from aiokes.client import Client
from aiokes.errors import AiokesError
from aiokes.identity import APIKey

__all__ = ["identity"]

_DEFAULT_COMMAND = "compute"


class _IdentityGroup(click.Group):
    """A group that runs a default command when no subcommand is named, as KES does for
    ``kes identity`` and ``kes identity <api-key|file>``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = [_DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


@click.group("identity", cls=_IdentityGroup)
def identity() -> None:
    """Create, compute and look up identities.

    Without a command: print a new API key and its identity, or the identity of an API key,
    certificate or private-key file given as the only argument.
    """


@identity.command(_DEFAULT_COMMAND, hidden=True)
@click.argument("source", metavar="[KEY|FILE]", required=False)
@json_option
def compute(source: str | None, as_json: bool) -> None:
    """New API key, or the identity of SOURCE."""
    if source is not None:
        found = _recognise(source)
        if found.api_key is not None:
            _print_key_file_api_key(source, found, as_json=as_json)
        else:
            _print_recognised(found, as_json=as_json)
        return
    api_key = APIKey.generate()
    if as_json:
        echo_json({"api_key": str(api_key), "identity": api_key.identity})
    elif is_terminal():
        click.echo(_new_api_key_text(api_key))
    else:
        click.echo(str(api_key))


@identity.command("new")
@click.argument("subject", required=False)
@click.option("--key", "key_file", metavar="PATH", help="Private key file [private.key].")
@click.option("--cert", "cert_file", metavar="PATH", help="Certificate file [public.crt].")
@click.option(
    "--ip",
    "ips",
    multiple=True,
    metavar="IP",
    callback=lambda _c, _p, v: _ips(v),
    help="Add IP as a subject alternative name (repeatable).",
)
@click.option(
    "--dns",
    "dns_names",
    multiple=True,
    metavar="DOMAIN",
    callback=lambda _c, _p, v: _split(v),
    help="Add DOMAIN as a subject alternative name (repeatable).",
)
@click.option(
    "--expiry",
    default="720h",
    show_default=True,
    metavar="DURATION",
    callback=lambda _c, _p, v: _duration(v),
    help="Validity of the certificate.",
)
@click.option("--encrypt", is_flag=True, help="Encrypt the private key with a password.")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing files.")
@json_option
def new(
    subject: str | None,
    key_file: str | None,
    cert_file: str | None,
    ips: list[str],
    dns_names: list[str],
    expiry: datetime.timedelta,
    encrypt: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Create an Ed25519 private key and a self-signed certificate for SUBJECT.

    The certificate's common name is SUBJECT, or the identity when SUBJECT is not given.
    """
    if bool(key_file) != bool(cert_file):
        given, missing = ("--key", "--cert") if key_file else ("--cert", "--key")
        raise click.UsageError(f"{given} needs {missing} as well")
    password = _new_password() if encrypt else None
    try:
        files = create_identity_files(
            key_file or "private.key",
            cert_file or "public.crt",
            subject=subject,
            ips=ips,
            dns_names=dns_names,
            validity=expiry,
            force=force,
            password=password,
        )
    except AiokesError as exc:
        raise click.ClickException(str(exc)) from None
    _print_new_files(files, as_json=as_json)


@identity.command("of")
@click.argument("source", metavar="KEY|FILE")
@json_option
def of(source: str, as_json: bool) -> None:
    """Print the identity of an API key, a certificate file or a private-key file.

    Never an API key: ``aiokes identity KEY-FILE`` prints one, as ``kes identity`` does."""
    _print_recognised(_recognise(source), as_json=as_json)


@identity.command("info")
@click.argument("identity_", metavar="[IDENTITY]", required=False)
@json_option
@client_options
def info(identity_: str | None, as_json: bool, insecure: bool) -> None:
    """Describe IDENTITY, or the identity this client authenticates as."""

    async def action(client: Client) -> dict[str, Any]:
        with failing_as("failed to describe identity"):
            if identity_ is None:
                return await client.describe_self()
            return {"identity": identity_, **await client.describe_identity(identity_)}

    description = run_with_client(ClientOptions(insecure=insecure), action)
    if as_json:
        echo_json(description, indent=is_terminal())
    else:
        click.echo("\n".join(_description_lines(description)))


@identity.command("ls")
@click.argument("prefix", required=False, default="")
@json_option
@client_options
def ls(prefix: str, as_json: bool, insecure: bool) -> None:
    """List the identities that start with PREFIX."""
    names = run_with_client(ClientOptions(insecure=insecure), lambda c: c.list_identities(prefix))
    print_names("Identity", names, as_json=as_json)


def _recognise(source: str) -> Recognised:
    try:
        return recognise(source)
    except AiokesError as exc:
        raise click.ClickException(str(exc)) from None


def _print_recognised(found: Recognised, *, as_json: bool) -> None:
    """The tutorial's ``  Identity:  <hex>`` on a terminal, the bare identity for scripts
    (``ID=$(aiokes identity of client.crt)``), as KES prints it."""
    if as_json:
        echo_json({"identity": found.identity})
    elif is_terminal():
        click.echo(f"\n  Identity:  {found.identity}")
    else:
        click.echo(found.identity)


def _print_key_file_api_key(source: str, found: Recognised, *, as_json: bool) -> None:
    """``kes identity <key-file>``: the API key form of an Ed25519 private key, which is the
    same secret; only the key for scripts, KES's warning for people."""
    if as_json:
        echo_json({"identity": found.identity, "api_key": str(found.api_key)})
    elif is_terminal():
        click.echo(
            "\n".join(
                [
                    "Your API key:",
                    "",
                    f"   {found.api_key}",
                    "",
                    f"It corresponds to the private key in: {source}.",
                    "Keep it secret and secure!",
                ]
            )
        )
    else:
        click.echo(str(found.api_key))


def _print_new_files(files: IdentityFiles, *, as_json: bool) -> None:
    if as_json:
        document = {"private_key": files.key_file, "certificate": files.cert_file}
        document["identity"] = files.identity
        echo_json(document)
        return
    click.echo(f"\n  Private key:  {files.key_file}")
    click.echo(f"  Certificate:  {files.cert_file}")
    click.echo(f"  Identity:     {files.identity}")
    click.echo(
        f"\n  {files.key_file} is secret (mode 0600): keep it where it is used and never"
        " share or paste it.\n  Share the identity or the certificate instead."
    )


def _new_api_key_text(api_key: APIKey) -> str:
    return "\n".join(
        [
            "Your API key:",
            "",
            f"   {api_key}",
            "",
            "This is the only time it is shown. Keep it secret and secure!",
            "",
            "Your API key's identity:",
            "",
            f"   {api_key.identity}",
            "",
            "The identity is not a secret and can be shared securely.",
            "Peers need your identity in order to verify your API key.",
            "",
            "This identity can be re-computed again via:",
            "",
            f"  $ aiokes identity {api_key}",
        ]
    )


def _description_lines(description: dict[str, Any]) -> list[str]:
    """KES's ``identity info`` layout: identity, policy, date, role, creator, then rules."""
    lines = [f"{'Identity':<11} {description.get('identity', '')}"]
    if description.get("policy"):
        lines.append(f"{'Policy':<11} {description['policy']}")
    lines.append(f"{'Created At':<11} {display_time(description.get('created_at'))}")
    lines.append(f"{'Role':<11} {'Admin' if description.get('admin') else 'User'}")
    if description.get("created_by"):
        lines.append(f"{'Created By':<11} {description['created_by']}")
    for title, rule in (("Allow", "allow"), ("Deny", "deny")):
        if description.get(rule):
            lines.append(title)
            lines.extend(f"{'':<11} · {pattern}" for pattern in description[rule])
    return lines


def _new_password() -> bytes:
    password: str = click.prompt(
        "Enter password for private key",
        hide_input=True,
        confirmation_prompt="Confirm password for private key",
        err=True,
    )
    if not password:
        raise click.ClickException("the password must not be empty")
    return password.encode()


def _split(values: tuple[str, ...]) -> list[str]:
    """Repeated and comma-separated values, as pflag's slice flags accept them."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _ips(values: tuple[str, ...]) -> list[str]:
    addresses = _split(values)
    for address in addresses:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise click.BadParameter(f"'{address}' is not an IP address") from None
    return addresses


def _duration(value: str) -> datetime.timedelta:
    try:
        return parse_expiry(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
