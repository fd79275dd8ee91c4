"""``aiokes status``: the server's state and, with ``--api``, its routes (``kes status``).

Fields the server sends beyond KES's (aiokes's cache and offline state, for instance) are
printed too, so the command shows whatever the server knows about itself.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import click

from aiokes.cli._common import (
    ClientOptions,
    client_options,
    echo_json,
    is_terminal,
    json_option,
    run_with_client,
)
from aiokes.client import Client

__all__ = ["status"]

_SHOWN = {
    "version",
    "uptime",
    "os",
    "arch",
    "num_cpu",
    "num_cpu_used",
    "mem_heap_used",
    "mem_stack_used",
    "keystore_latency",
    "keystore_unreachable",
    "keystore_unavailable",
    "keystore_read_only",
}


@dataclass(frozen=True, slots=True)
class _Report:
    endpoint: str
    state: dict[str, Any]
    latency: float  # seconds the status request took
    apis: list[dict[str, Any]]


@click.command("status")
@click.option("-s", "--short", is_flag=True, help="Print only the server and whether it is up.")
@click.option("--api", "show_api", is_flag=True, help="List the server's APIs too.")
@json_option
@client_options
def status(short: bool, show_api: bool, as_json: bool, insecure: bool) -> None:
    """Print the server's status."""

    async def action(client: Client) -> _Report:
        start = time.perf_counter()
        state = await client.status()
        latency = time.perf_counter() - start
        apis = await client.api() if show_api else []
        return _Report(client.endpoint, state, latency, apis)

    report = run_with_client(ClientOptions(insecure=insecure), action)
    if as_json:
        echo_json(report.apis if show_api else report.state, indent=is_terminal() and not short)
        return
    click.echo(f"● {report.endpoint.removeprefix('https://')}")
    if not short:
        click.echo("\n".join(_state_lines(report.state, report.latency)))
    if show_api:
        click.echo("\n".join(_api_lines(report.apis)))


def _state_lines(state: dict[str, Any], latency: float) -> list[str]:
    lines = [
        _line("Version", state.get("version", "")),
        _line("Uptime", _uptime(float(state.get("uptime") or 0))),
        _line("Latency", _duration_ms(latency)),
        _line("OS", state.get("os", "")),
        _line("CPUs", f"{state.get('num_cpu_used', 0)} {state.get('arch', '')}"),
        _line("Memory", ""),
        f"  · {'Heap':<6} {_size(state.get('mem_heap_used') or 0)}",
        f"  · {'Stack':<6} {_size(state.get('mem_stack_used') or 0)}",
        _line("Keystore", _keystore(state)),
    ]
    for name in sorted(set(state) - _SHOWN):
        lines.extend(_extra_lines(name, state[name]))
    return lines


def _extra_lines(name: str, value: object) -> list[str]:
    """A field KES does not send, as a line, or as a section when it is an object."""
    if not isinstance(value, dict):
        return [_line(name, _plain(value))]
    width = max([6, *(len(str(key)) for key in value)])
    return [_line(name, "")] + [f"  · {key:<{width}} {_plain(v)}" for key, v in value.items()]


def _line(label: str, value: object) -> str:
    return f"  {label:<8} {value}".rstrip()


def _keystore(state: dict[str, Any]) -> str:
    if state.get("keystore_unreachable") or state.get("keystore_unavailable"):
        return "unreachable"
    latency = state.get("keystore_latency")
    reachable = "reachable, read-only" if state.get("keystore_read_only") else "reachable"
    return f"{reachable}, latency {latency}ms" if latency else reachable


def _plain(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _uptime(seconds: float) -> str:
    """KES's rounding: whole days and hours, else hours, minutes or seconds."""
    hours = seconds / 3600
    if hours > 24:
        return f"{hours / 24:.0f} days {hours % 24:.0f} hours"
    if hours > 1:
        return f"{hours:.0f} hours"
    if seconds > 60:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds:.0f} seconds"


def _duration_ms(seconds: float) -> str:
    """Go's ``Duration.Round(time.Millisecond).String()``: ``0s``, ``12ms``, ``1.5s``, ``1m2s``."""
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    if millis < 1000:
        return f"{millis}ms"
    minutes, millis = divmod(millis, 60_000)
    secs = f"{millis / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{minutes}m{secs}" if minutes else secs


def _size(count: object) -> str:
    """Decimal units with one decimal, as KES's ``mem.FormatSize(size, 'D', 1)``."""
    value = float(count) if isinstance(count, int | float) else 0.0
    if value < 1000:
        return f"{value:.0f} B"
    exponent = min(int(math.log10(value)) // 3, 3)
    return f"{value / 1000**exponent:.1f} {('KB', 'MB', 'GB')[exponent - 1]}"


def _api_lines(apis: list[dict[str, Any]]) -> list[str]:
    lines = ["", f"  {'Method':<7} {'API':<28} Timeout"]
    for api in apis:
        timeout = int(api.get("timeout") or 0)
        shown = _go_seconds(timeout) if timeout > 0 else "Inf"
        lines.append(f"  {api.get('method', ''):<7} {api.get('path', ''):<28} {shown}")
    return lines


def _go_seconds(total: int) -> str:
    """Go's ``Duration.String`` for whole seconds: ``15s``, ``1m30s``, ``1h0m0s``."""
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{seconds}s"
    return f"{minutes}m{seconds}s" if minutes else f"{seconds}s"
