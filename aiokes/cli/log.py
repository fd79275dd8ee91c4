"""``aiokes log``: follow the server's audit or error log (``kes log``, spec §9.3).

One line per event, as it happens: for the audit log the time (UTC, as the server stamps it),
status, the caller's identity (shortened), its IP, the request and how long it took; for the
error log the message. ``--json`` prints the events as the server streams them (ndjson).
Unlike KES HEAD's streams (spec §10.3), aiokes's deliver an audit event for every request.
Ctrl-C ends the command with exit code 1, as it ends ``kes log``.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any, Literal

import click

from aiokes._go.duration import format_duration
from aiokes.cli._common import (
    ClientOptions,
    client_options,
    echo_json,
    json_option,
    run_with_client,
)
from aiokes.cli._exit import FAILURE_EXIT
from aiokes.client import Client

__all__ = ["log"]

_IDENTITY_SHOWN = 12  # hex digits: enough to tell identities apart in a live view

_COLUMNS = (("Time", 10), ("Status", 8), ("Identity", 15), ("IP", 17), ("API", 46))
_AUDIT_HEADER = "".join(f"{title:<{width}}" for title, width in _COLUMNS) + "Latency"

_CLOCK = re.compile(r"T(\d{2}:\d{2}:\d{2})")


@click.command("log")
@click.option("--audit", "audit", is_flag=True, help="Print the audit log (the default).")
@click.option("--error", "error", is_flag=True, help="Print the error log.")
@json_option
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after this many events (default: follow until Ctrl-C).",
)
@client_options
def log(audit: bool, error: bool, as_json: bool, count: int | None, insecure: bool) -> None:
    """Follow the server's audit log (default) or error log."""
    if audit and error:
        raise click.UsageError("cannot display audit and error logs at the same time")
    kind: Literal["audit", "error"] = "error" if error else "audit"
    if kind == "audit" and not as_json:
        click.echo(_AUDIT_HEADER)

    async def follow(client: Client) -> None:
        shown = 0
        async with contextlib.aclosing(client.stream_log(kind)) as events:
            async for event in events:
                _print_event(kind, event, as_json)
                shown += 1
                if count is not None and shown >= count:
                    return

    try:
        run_with_client(ClientOptions(insecure=insecure), follow)
    except KeyboardInterrupt:  # Ctrl-C: kes log exits 1, silently (context.Canceled)
        raise click.exceptions.Exit(FAILURE_EXIT) from None


def _print_event(kind: str, event: dict[str, Any], as_json: bool) -> None:
    if as_json:
        echo_json(event)
    elif kind == "audit":
        click.echo(audit_line(event))
    else:
        click.echo(str(event.get("message", "")))


def audit_line(event: dict[str, Any]) -> str:
    """One audit event as a row under the header; missing fields show as ``-``."""
    request = _mapping(event.get("request"))
    response = _mapping(event.get("response"))
    api = " ".join(str(part) for part in (request.get("method"), request.get("path")) if part)
    cells = (
        _clock(event.get("time")),
        str(response.get("code", "-")),
        _short_identity(str(request.get("identity") or "")),
        str(request.get("ip") or "<unknown>"),
        api or "-",
    )
    row = "".join(f"{cell:<{width - 1}} " for cell, (_, width) in zip(cells, _COLUMNS, strict=True))
    return row + _latency(response.get("time"))


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _clock(value: object) -> str:
    match = _CLOCK.search(str(value or ""))
    return match[1] if match else "-"


def _short_identity(identity: str) -> str:
    if not identity:
        return "-"
    if len(identity) <= _IDENTITY_SHOWN:
        return identity
    return identity[:_IDENTITY_SHOWN] + "…"


def _latency(value: object) -> str:
    """``response.time`` (nanoseconds, as kms-go reads it) the way ``kes log`` shows it:
    rounded to two or three significant digits, in Go's duration notation."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    return format_duration(_round_for_display(int(value)))


# (at least, round to): 1.2s, 15ms, 1.5ms, 150µs — never more digits than a person reads.
_DISPLAY_ROUNDING = (
    (1_000_000_000, 100_000_000),
    (10_000_000, 1_000_000),
    (1_000_000, 100_000),
    (10_000, 1_000),
)


def _round_for_display(nanoseconds: int) -> int:
    for threshold, unit in _DISPLAY_ROUNDING:
        if nanoseconds >= threshold:
            return (nanoseconds + unit // 2) // unit * unit  # half away from zero, as Go
    return nanoseconds
