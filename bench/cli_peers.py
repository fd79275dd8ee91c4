"""The commands that measure aiokes against peers built outside the repository: ``saturate``
(a compiled loader, server pinned to one core) and ``instructions`` (callgrind counts)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import click

from bench.cli_options import default_out, echo_machine, ints_option, write_json

__all__ = ["instructions", "saturate_command"]

_COMPILED_HELP = (
    "An installed compiled build, measured as 'compiled': "
    "pip install --no-deps --target DIR <wheel built with AIOKES_COMPILE=1>."
)


@click.command("saturate")
@click.option("--kes", "kes", default=None, help="A KES binary you built, measured alongside.")
@click.option("--before", default=None, help="Another aiokes source tree, measured as 'before'.")
@click.option("--compiled", default=None, help=_COMPILED_HELP)
@click.option("--vegeta", default=None, help="The vegeta binary (default: $VEGETA or PATH).")
@click.option("--scenario", "scenarios", default="generate,decrypt", show_default=True)
@click.option("--rounds", type=click.IntRange(1, 50), default=3, show_default=True)
@click.option("--duration", type=click.FloatRange(1, 600), default=10.0, show_default=True)
@click.option("--connections", type=click.IntRange(1, 5000), default=64, show_default=True)
@click.option("--rate", type=click.IntRange(0), default=0, help="Requests/s (0: saturate).")
@click.option(
    "--server-quota",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Cap each server to this many cores (a cgroup; root): saturated with the loader to "
    "spare, req/s per quota is throughput per core. Latency is then meaningless.",
)
@click.option(
    "--all-cores",
    is_flag=True,
    help="Servers and loader share every core; aiokes runs one worker per core.",
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None)
def saturate_command(
    kes: str | None,
    before: str | None,
    compiled: str | None,
    vegeta: str | None,
    scenarios: str,
    rounds: int,
    duration: float,
    connections: int,
    rate: int,
    server_quota: float | None,
    all_cores: bool,
    out: Path | None,
) -> None:
    """aiokes (and KES, and an older aiokes) on core 0, saturated by vegeta on core 1."""
    from bench.machine import describe_machine
    from bench.quota import QuotaError
    from bench.saturate import (
        Placement,
        compared_pairs,
        compared_servers,
        ratio_table,
        rows_json,
        rows_table,
        saturate,
    )
    from bench.vegeta import find_vegeta

    try:
        loader = find_vegeta(vegeta)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    chosen = tuple(part for part in scenarios.split(",") if part)
    if not set(chosen) <= {"generate", "decrypt"}:
        raise click.BadParameter(f"'{scenarios}': generate and/or decrypt")
    placement = Placement.all_cores(rate) if all_cores else Placement(rate=rate)
    if server_quota:
        placement = dataclasses.replace(placement, server_quota=server_quota)
    workers = (os.cpu_count() or 1) if all_cores else 1
    servers = compared_servers(kes, before, workers, compiled=compiled)
    out = out or default_out()
    machine = describe_machine()
    try:
        rows = saturate(
            out,
            servers,
            vegeta=loader,
            scenarios=chosen,
            rounds=rounds,
            duration=duration,
            connections=connections,
            placement=placement,
            progress=lambda line: click.echo(line, err=True),
        )
    except QuotaError as exc:
        raise click.ClickException(str(exc)) from None
    echo_machine(machine)
    click.echo(rows_table(rows))
    for ours, theirs in compared_pairs([server.name for server in servers]):
        click.echo()
        click.echo(ratio_table(rows, ours, theirs))
    write_json(out / "saturate.json", {"machine": machine, "rows": rows_json(rows)})


@click.command("instructions")
@click.option("--kes", "kes", default=None, help="A KES binary you built, measured alongside.")
@click.option("--before", default=None, help="Another aiokes source tree, measured as 'before'.")
@click.option("--compiled", default=None, help=_COMPILED_HELP)
@click.option("--vegeta", default=None, help="The vegeta binary (default: $VEGETA or PATH).")
@click.option("--requests", "sizes", default="500,2500", show_default=True, callback=ints_option)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None)
def instructions(
    kes: str | None,
    before: str | None,
    compiled: str | None,
    vegeta: str | None,
    sizes: tuple[int, ...],
    out: Path | None,
) -> None:
    """Instructions per request under callgrind (steady on a noisy machine), vs KES."""
    from bench.instructions import Windows, count_instructions, counts_table
    from bench.machine import describe_machine
    from bench.saturate import compared_servers
    from bench.vegeta import find_vegeta

    if len(sizes) != 2 or sizes[0] >= sizes[1]:
        raise click.BadParameter(f"{sizes}: expected SMALL,LARGE request counts, SMALL < LARGE")
    try:
        loader = find_vegeta(vegeta)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    out = out or default_out()
    counts = count_instructions(
        out,
        compared_servers(kes, before, compiled=compiled),
        loader,
        Windows(small=sizes[0], large=sizes[1]),
        progress=lambda line: click.echo(line, err=True),
    )
    echo_machine(describe_machine())
    click.echo(counts_table(counts))
    if compiled:
        click.echo(counts_table(counts, ours="compiled", theirs="kes", rows=False))
