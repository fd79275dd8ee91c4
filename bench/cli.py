"""``python -m bench`` / ``aiokes bench``: the command line of the benchmark suite."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from bench.cli_options import default_out, echo_machine, ints, write_json
from bench.cli_peers import instructions, saturate_command

__all__ = ["main"]

_Command = TypeVar("_Command", bound=Callable[..., Any])


def _mix(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    generate, sep, decrypt = text.partition(":")
    if (
        not sep
        or not generate.isdigit()
        or not decrypt.isdigit()
        or not int(generate) + int(decrypt)
    ):
        raise click.BadParameter(f"'{text}': expected GENERATE:DECRYPT weights such as 1:3")
    return int(generate), int(decrypt)


def _rates(text: str) -> tuple[str, ...]:
    rates = tuple(part.strip() for part in text.split(",") if part.strip())
    for rate in rates:
        number = rate.removesuffix("%")
        try:
            if float(number) <= 0:
                raise ValueError
        except ValueError:
            raise click.BadParameter(f"'{rate}': expected requests/s or a percentage") from None
    return rates


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Load tests for aiokes and any KES-compatible server (see bench/README.md)."""


main.add_command(saturate_command)
main.add_command(instructions)


@main.command("run")
@click.option(
    "--target",
    "targets",
    multiple=True,
    default=("aiokes",),
    show_default=True,
    help="aiokes | aiokes-fs | aiokes-azure | baseline | baseline-none | https://HOST:PORT "
    "(repeatable; KIND@N runs N workers, e.g. aiokes-fs@2).",
)
@click.option(
    "--baseline/--no-baseline",
    default=True,
    show_default=True,
    help="Also measure the baseline server at every point.",
)
@click.option(
    "--scenario",
    "scenarios",
    default="generate",
    show_default=True,
    help="Comma list: generate, decrypt, mixed, miss-storm, handshake, resumed, goclient.",
)
@click.option("--connections", default="64", show_default=True, help="Comma list (a sweep).")
@click.option(
    "--rate",
    "rates",
    default="",
    help="Open loop after the sweep: req/s or N% of "
    "the target's best closed-loop rate, comma list (e.g. 50%).",
)
@click.option("--duration", type=click.FloatRange(0.5, 3600), default=10.0, show_default=True)
@click.option("--warmup", type=click.FloatRange(0, 600), default=1.0, show_default=True)
@click.option("--max-requests", type=click.IntRange(0), default=0, help="Per run; 0: no limit.")
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Load-generator processes.",
)
@click.option("--keys", type=click.IntRange(1), default=None, help="Key names (mixed, goclient).")
@click.option("--mix", default=None, help="generate:decrypt weights for mixed/goclient (1:3).")
@click.option("--storm-keys", type=click.IntRange(1), default=2000, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="aiokes server --workers N (for the targets the harness starts).",
)
@click.option(
    "--pin/--no-pin",
    default=True,
    show_default=True,
    help="Pin server and load generator to disjoint cores.",
)
@click.option(
    "--audit/--no-audit",
    default=True,
    show_default=True,
    help="aiokes-fs/azure: audit log on (KES's default; written to /dev/null).",
)
@click.option(
    "--mlock/--no-mlock",
    default=True,
    show_default=True,
    help="--no-mlock: start aiokes without CAP_IPC_LOCK, so its mlockall fails.",
)
@click.option("--timeout", type=click.FloatRange(0.1, 120), default=10.0, show_default=True)
@click.option(
    "--repeat",
    type=click.IntRange(1, 20),
    default=1,
    show_default=True,
    help="Measure every point N times, targets alternating; ratios also as medians.",
)
@click.option("--cert", default="", help="Client certificate for external targets.")
@click.option("--key", "key_file", default="", help="Its private key.")
@click.option("--ca", default="", help="CA of an external target's server certificate.")
@click.option("-k", "--insecure", is_flag=True, help="Do not verify an external server.")
@click.option("--api-key", default="", envvar="KES_API_KEY", help="kes:v1: API key (external).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output directory [default: bench/out/<UTC time>].",
)
def run(
    targets: tuple[str, ...], baseline: bool, scenarios: str, connections: str, rates: str,
    duration: float, warmup: float, max_requests: int, processes: int, keys: int | None,
    mix: str | None, storm_keys: int, workers: int, pin: bool, audit: bool, mlock: bool,
    timeout: float, repeat: int,
    cert: str, key_file: str, ca: str, insecure: bool, api_key: str, out: Path | None,
) -> None:  # fmt: skip
    """Measure TARGETs (and the baseline) over scenarios and connection counts."""
    from bench.runner import ExternalOptions, SuiteOptions, run_suite
    from bench.scenarios import SCENARIOS

    names = tuple(name.strip() for name in scenarios.split(",") if name.strip())
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        raise click.BadParameter(
            f"unknown scenario(s): {', '.join(unknown)}", param_hint="--scenario"
        )
    options = SuiteOptions(
        out=out or default_out(),
        targets=targets,
        baseline=baseline,
        scenarios=names,
        connections=ints(connections),
        rates=_rates(rates),
        duration=duration,
        warmup=warmup,
        max_requests=max_requests,
        processes=processes,
        keys=keys,
        mix=_mix(mix),
        storm_keys=storm_keys,
        workers=workers,
        pin=pin,
        audit=audit,
        mlock=mlock,
        timeout=timeout,
        repeat=repeat,
        external=ExternalOptions(cert, key_file, ca, insecure, api_key),
        command=_command_line(),
    )
    document = run_suite(options)
    _write(document, options.out)


@main.command("report")
@click.argument("results", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def report(results: Path) -> None:
    """Rebuild summary.md and the plots from a results.json."""
    _write(json.loads(results.read_text()), results.parent)


def _write(document: dict[str, object], out: Path) -> None:
    from bench.report import write_outputs

    for kind, path in write_outputs(document, out).items():
        click.echo(f"{kind:<24}{path}")


def _command_line() -> str:
    executable = Path(sys.argv[0]) if sys.argv else Path("bench")
    program = executable.name
    if program == "__main__.py":  # python -m bench / python -m aiokes
        program = f"python -m {executable.parent.name}"
    return " ".join([program, *map(shlex.quote, sys.argv[1:])])


def _json_file_option(help_text: str) -> Callable[[_Command], _Command]:
    return click.option(
        "--json",
        "json_file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=help_text,
    )


@main.command("crypto")
@_json_file_option("Also write the rows as JSON here.")
def crypto(json_file: Path | None) -> None:
    """Seal/open inline vs asyncio.to_thread, 32 B … 1 MiB: choose crypto.inline_limit."""
    from bench.crypto import measure_crypto, recommend_limit, rows_json, table
    from bench.machine import describe_machine

    machine = describe_machine()
    rows = measure_crypto()
    echo_machine(machine)
    click.echo(table(rows))
    limit = recommend_limit(rows)
    click.echo(f"\nrecommended crypto.inline_limit: {limit} bytes")
    if json_file is not None:
        document = {"machine": machine, "rows": rows_json(rows), "recommended_limit": limit}
        write_json(json_file, document)


@main.command("handler")
@click.option(
    "--scenario", type=click.Choice(["generate", "decrypt"]), default="generate", show_default=True
)
@click.option("--connections", type=click.IntRange(1, 1000), default=32, show_default=True)
@click.option("--requests", type=click.IntRange(100), default=30_000, show_default=True)
@click.option("--repeat", type=click.IntRange(1, 50), default=7, show_default=True)
@_json_file_option("Also write the figures as JSON here.")
def handler(
    scenario: str, connections: int, requests: int, repeat: int, json_file: Path | None
) -> None:
    """CPU per request of aiokes's dispatcher vs the baseline's handler, in-process: no TLS,
    no sockets (a steady figure for hot-path work on a noisy machine)."""
    from bench.handler import costs_table, measure_handlers
    from bench.machine import describe_machine

    machine = describe_machine()
    costs = measure_handlers(
        scenario=scenario,
        connections=connections,
        requests=requests,
        repeat=repeat,
        progress=lambda line: click.echo(line, err=True),
    )
    echo_machine(machine)
    click.echo(costs_table(costs))
    if json_file is not None:
        document = {"machine": machine, **costs.to_json()}
        write_json(json_file, document)


@main.command("memory")
@click.option("--keys", type=click.IntRange(200), default=10_000, show_default=True)
@click.option("--connections", type=click.IntRange(1, 5000), default=500, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None)
def memory(keys: int, connections: int, out: Path | None) -> None:
    """Memory per cached key and per idle mTLS connection (aiokes-fs, one worker)."""
    from bench.memory import measure_memory, memory_table

    out = out or default_out()
    result = measure_memory(out, keys=keys, connections=connections)
    write_json(out / "memory.json", result)
    machine = result["machine"]
    echo_machine(machine)
    click.echo(memory_table(result))
    click.echo(f"\njson                    {out / 'memory.json'}")


@main.command("profile")
@click.option("--scenario", default="generate", show_default=True)
@click.option("--connections", type=click.IntRange(1), default=64, show_default=True)
@click.option("--duration", type=click.FloatRange(1, 600), default=15.0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None)
def profile(scenario: str, connections: int, duration: float, out: Path | None) -> None:
    """py-spy one aiokes process (fs keystore) under load; top hotspots to profile.md."""
    from bench.profiler import profile_server

    out = out or default_out()
    out.mkdir(parents=True, exist_ok=True)
    hotspots = profile_server(
        out, scenario_name=scenario, connections=connections, duration=duration
    )
    click.echo(hotspots.markdown(top=15))
    click.echo(f"profile                 {out / 'profile.md'}")


@main.command("crosscheck")
@click.option("--connections", type=click.IntRange(1), default=64, show_default=True)
@click.option("--duration", type=click.FloatRange(1, 600), default=10.0, show_default=True)
@click.option("--repeat", type=click.IntRange(1, 20), default=3, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None)
def crosscheck(connections: int, duration: float, repeat: int, out: Path | None) -> None:
    """This harness vs autocannon on baseline-none, baseline and aiokes-fs."""
    from bench.crosscheck import crosscheck as run_crosscheck
    from bench.crosscheck import crosscheck_table

    out = out or default_out()
    out.mkdir(parents=True, exist_ok=True)
    result = run_crosscheck(out, connections=connections, duration=duration, repeat=repeat)
    write_json(out / "crosscheck.json", result)
    machine = result["machine"]
    echo_machine(machine)
    click.echo(crosscheck_table(result))
