"""What the client commands share: their options, the client from the environment, running a
coroutine with errors turned into one ``Error: …`` line, and KES's output conventions.

KES prints for people on a terminal and JSON for programs otherwise; ``--json`` forces JSON.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import re
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from aiokes.client import Client, client_from_env
from aiokes.errors import AiokesError, APIError, ServerRefused

__all__ = [
    "ClientOptions",
    "base64_argument",
    "client_options",
    "display_time",
    "echo_json",
    "failing_as",
    "is_terminal",
    "json_option",
    "run_with_client",
]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

_NOT_TRUSTED_HINT = (
    " (pass -k/--insecure to skip the check, or trust the server's CA with MINIO_KMS_KES_CAPATH)"
)


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """The connection flags of one invocation; ``server``/``api_key`` override the env."""

    insecure: bool = False
    server: str | None = None
    api_key: str | None = field(default=None, repr=False)


_CLIENT_OPTIONS = (
    click.option(
        "-k", "--insecure", is_flag=True, help="Skip the verification of the server's certificate."
    ),
    # Accepted for compatibility with kes, and ignored: aiokes has no enclaves and no colours.
    click.option("-e", "--enclave", hidden=True, expose_value=False),
    click.option("--color", type=click.Choice(["auto", "never", "always"]), hidden=True,
                 expose_value=False),
)  # fmt: skip


def client_options(function: F) -> F:
    """``-k/--insecure`` plus KES's accepted-but-unused ``-e/--enclave`` and ``--color``."""
    for option in reversed(_CLIENT_OPTIONS):
        function = option(function)
    return function


def json_option(function: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(function)


def run_with_client(options: ClientOptions, action: Callable[[Client], Awaitable[T]]) -> T:
    """Run ``action`` with a client configured from the environment; errors exit with 1."""

    async def main() -> T:
        client = client_from_env(
            insecure=options.insecure,
            server=options.server,
            api_key=options.api_key,
            key_password=_prompt_key_password,
        )
        async with client:
            return await action(client)

    try:
        return asyncio.run(main())
    except AiokesError as exc:
        raise click.ClickException(_one_line(str(exc))) from None


def _prompt_key_password() -> str:
    # Called by OpenSSL only when the client's private key file is encrypted.
    password: str = click.prompt("Enter password for private key", hide_input=True, err=True)
    return password


def _one_line(message: str) -> str:
    message = " ".join(message.split())
    if "server certificate not trusted" in message:
        message += _NOT_TRUSTED_HINT
    return message


def base64_argument(ctx: click.Context, param: click.Parameter, value: str | None) -> bytes | None:
    """Decode a standard, padded base64 argument (KES's ``base64.StdEncoding``); a bad one is
    a usage error that names the argument."""
    if value is None:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise click.BadParameter("not valid base64 (standard alphabet, with padding)") from None


def is_terminal() -> bool:
    """Whether standard output is a terminal: KES prints for people there, JSON otherwise."""
    return sys.stdout.isatty()


def echo_json(document: Any, *, indent: bool = False) -> None:
    """One JSON document and a newline, compact like Go's ``json.Encoder`` unless indented."""
    if indent:
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        click.echo(json.dumps(document, separators=(",", ":"), ensure_ascii=False))


_RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})")


def display_time(value: Any) -> str:
    """``2024-01-12T10:39:20.886816Z`` → ``2024-01-12 10:39:20`` (KES's date display)."""
    match = _RFC3339.match(str(value or ""))
    if match is None:
        return str(value or "")
    return f"{match[1]} {match[2]}"


@contextlib.contextmanager
def failing_as(what: str) -> Iterator[None]:
    """Prefix a server's refusal with what was attempted: ``failed to create key 'k': …``."""
    try:
        yield
    except APIError as exc:
        raise ServerRefused(f"{what}: {exc.message}") from exc
