"""What the commands of ``python -m bench`` share: where results go, and how they are told."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import click

__all__ = ["default_out", "echo_machine", "ints", "ints_option", "write_json"]

_DEFAULT_OUT = Path(__file__).resolve().parent / "out"


def default_out() -> Path:
    return _DEFAULT_OUT / datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")


def ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter(f"'{text}': expected comma-separated integers") from None
    if not values or min(values) < 1:
        raise click.BadParameter(f"'{text}': expected positive integers")
    return values


def ints_option(_context: click.Context, _parameter: click.Parameter, text: str) -> tuple[int, ...]:
    """A click callback: :func:`ints` of the option's text."""
    return ints(text)


def echo_machine(machine: dict[str, Any]) -> None:
    click.echo(f"{machine['date_utc']}  nproc={machine['nproc']}  {machine['cpu_model']}")


def write_json(path: Path, document: object) -> None:
    path.write_text(json.dumps(document, indent=2) + "\n")
