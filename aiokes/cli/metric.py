"""``aiokes metric``: a live view of the server's Prometheus metrics (``kes metric``, spec §9.3).

Every ``--rate`` it scrapes ``/v1/metrics`` and shows what happened since the previous scrape:
requests per second by outcome (2xx / 4xx / 5xx), an estimate of the latency percentiles from
the response-time histogram, active requests and uptime, plus every ``aiokes_*`` family the
server exports (cache, keystore, workers). ``--json`` prints one JSON object per interval.

The parser reads the Prometheus text format (version 0.0.4) as far as these families need:
samples with labels and ``# TYPE`` lines; timestamps and other comments are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import click

from aiokes._go.duration import format_duration, parse_duration
from aiokes.cli._common import (
    ClientOptions,
    client_options,
    echo_json,
    is_terminal,
    json_option,
    run_with_client,
)
from aiokes.client import Client

__all__ = [
    "Extra",
    "Report",
    "Sample",
    "Scrape",
    "dashboard",
    "metric",
    "parse_metrics",
    "quantile",
    "report",
]

_OUTCOMES = (
    ("success", "kes_http_request_success", "OK [2xx]"),
    ("error", "kes_http_request_error", "Err [4xx]"),
    ("failure", "kes_http_request_failure", "Fail [5xx]"),
)
_RESPONSE_TIME = "kes_http_response_time"
_QUANTILES = (0.5, 0.9, 0.99)
_EXTRA_PREFIX = "aiokes_"

Labels = tuple[tuple[str, str], ...]

# --- the text format ---------------------------------------------------------------------------

_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    labels: Labels
    value: float


@dataclass(frozen=True, slots=True)
class Scrape:
    """One ``/v1/metrics`` answer and when (monotonic seconds, local) it was taken."""

    samples: tuple[Sample, ...]
    types: Mapping[str, str] = field(default_factory=dict)  # family -> counter, gauge, …
    taken: float = 0.0

    def total(self, name: str) -> float:
        """The sum over every label set (how kms-go reads KES's request counters)."""
        return sum(sample.value for sample in self.samples if sample.name == name)

    def histogram(self, name: str) -> list[tuple[float, float]]:
        """``[(le, cumulative count), …]`` by bound, ending with ``+Inf``."""
        buckets = [
            (float(dict(sample.labels).get("le", "nan")), sample.value)
            for sample in self.samples
            if sample.name == name + "_bucket"
        ]
        return sorted(bucket for bucket in buckets if not math.isnan(bucket[0]))


def parse_metrics(text: str, taken: float = 0.0) -> Scrape:
    """Parse Prometheus text; a malformed line is a :class:`ValueError` naming it."""
    samples: list[Sample] = []
    types: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line.startswith("#"):
            parts = line.split()
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3]
        elif line:
            samples.append(_sample(line, number))
    return Scrape(tuple(samples), types, taken)


def _sample(line: str, number: int) -> Sample:
    match = _SAMPLE.match(line)
    try:
        if match is None:
            raise ValueError
        return Sample(match[1], _labels(match[2] or ""), float(match[3]))
    except ValueError:
        raise ValueError(f"line {number} is not a Prometheus sample: {line[:80]!r}") from None


def _labels(text: str) -> Labels:
    labels: list[tuple[str, str]] = []
    position = 0
    while position < len(text.rstrip()):
        match = _LABEL.match(text, position)
        if match is None:
            raise ValueError
        value = re.sub(r"\\.", lambda m: _UNESCAPE.get(m[0], m[0]), match[2])
        labels.append((match[1], value))
        position = match.end()
    return tuple(labels)


# --- what happened between two scrapes ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Extra:
    """One ``aiokes_*`` sample: its value, and its rate if it is a counter."""

    name: str
    labels: Labels
    value: float
    per_second: float | None


@dataclass(frozen=True, slots=True)
class Report:
    interval: float  # seconds between the two scrapes
    totals: Mapping[str, float]  # outcome -> requests since the server started
    per_second: Mapping[str, float]  # outcome -> requests per second in the interval
    active: float
    uptime: float
    latency: Mapping[str, float | None]  # mean, p50, p90, p99 (seconds) in the interval
    extras: tuple[Extra, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "interval": round(self.interval, 3),
            "uptime": self.uptime,
            "requests": {
                outcome: {"total": self.totals[outcome], "per_second": self.per_second[outcome]}
                for outcome, _, _ in _OUTCOMES
            },
            "active": self.active,
            "latency": dict(self.latency),
            "aiokes": [
                {"name": x.name, "labels": dict(x.labels), "value": x.value}
                | ({} if x.per_second is None else {"per_second": x.per_second})
                for x in self.extras
            ],
        }


def report(before: Scrape, after: Scrape) -> Report:
    interval = max(after.taken - before.taken, 1e-9)
    totals = {outcome: after.total(name) for outcome, name, _ in _OUTCOMES}
    per_second = {
        outcome: round(_increase(before.total(name), after.total(name)) / interval, 2)
        for outcome, name, _ in _OUTCOMES
    }
    return Report(
        interval=interval,
        totals=totals,
        per_second=per_second,
        active=after.total("kes_http_request_active"),
        uptime=after.total("kes_system_up_time"),
        latency=_latency(before, after),
        extras=tuple(_extras(before, after, interval)),
    )


def _increase(before: float, after: float) -> float:
    """A counter's increase; a counter that went down was reset (a restarted server)."""
    return after - before if after >= before else after


def _latency(before: Scrape, after: Scrape) -> dict[str, float | None]:
    count = _increase(
        before.total(_RESPONSE_TIME + "_count"), after.total(_RESPONSE_TIME + "_count")
    )
    total = _increase(before.total(_RESPONSE_TIME + "_sum"), after.total(_RESPONSE_TIME + "_sum"))
    old = dict(before.histogram(_RESPONSE_TIME))
    buckets = [(le, _increase(old.get(le, 0.0), n)) for le, n in after.histogram(_RESPONSE_TIME)]
    latency: dict[str, float | None] = {"mean": total / count if count else None}
    for q in _QUANTILES:
        latency[f"p{q * 100:g}"] = quantile(q, buckets)
    return latency


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Estimate the ``q`` quantile from cumulative buckets as Prometheus'
    ``histogram_quantile`` does: linear within the bucket the rank falls in, and the highest
    finite bound when it falls in ``+Inf``. ``None`` without observations."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, cumulative in buckets:
        if cumulative >= rank:
            if math.isinf(bound):
                return lower
            if cumulative == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (cumulative - below)
        lower, below = bound, cumulative
    return lower


def _extras(before: Scrape, after: Scrape, interval: float) -> Iterable[Extra]:
    previous = {(s.name, s.labels): s.value for s in before.samples}
    for sample in after.samples:
        if not sample.name.startswith(_EXTRA_PREFIX) or sample.name.endswith("_bucket"):
            continue  # a histogram's buckets are summed up by its _count and _sum
        per_second = None
        if _is_counter(sample.name, after.types):
            old = previous.get((sample.name, sample.labels), sample.value)
            per_second = round(_increase(old, sample.value) / interval, 2)
        yield Extra(sample.name, sample.labels, sample.value, per_second)


def _is_counter(name: str, types: Mapping[str, str]) -> bool:
    if types.get(name) == "counter":
        return True
    family, _, suffix = name.rpartition("_")
    if suffix in ("total", "count", "sum"):
        return types.get(family) in ("counter", "histogram", "summary")
    return False


# --- the command -------------------------------------------------------------------------------


@click.command("metric")
@click.option(
    "--rate",
    default="5s",
    show_default=True,
    callback=lambda _context, _parameter, value: _positive_duration(value),
    help="How often to scrape the metrics (a Go duration: 500ms, 5s, 1m).",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after this many intervals (default: until Ctrl-C).",
)
@json_option
@client_options
def metric(rate: float, count: int | None, as_json: bool, insecure: bool) -> None:
    """Show the server's request rates, latency and resources live."""
    show = _Display(as_json=as_json, redraw=is_terminal())

    async def watch(client: Client) -> None:
        previous = await _scrape(client)
        intervals = 0
        while count is None or intervals < count:
            await asyncio.sleep(rate)  # the scrape interval itself
            current = await _scrape(client)
            show(client.endpoint, report(previous, current))
            previous, intervals = current, intervals + 1

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: the user is done watching
        run_with_client(ClientOptions(insecure=insecure), watch)


def _positive_duration(value: str) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if seconds <= 0:
        raise click.BadParameter(f"'{value}' must be longer than 0s")
    return seconds


async def _scrape(client: Client) -> Scrape:
    text = await client.metrics()
    try:
        return parse_metrics(text, time.monotonic())
    except ValueError as exc:
        raise click.ClickException(f"{client.endpoint}/v1/metrics: {exc}") from None


class _Display:
    """Prints each report; on a terminal the new one replaces the previous one."""

    def __init__(self, *, as_json: bool, redraw: bool) -> None:
        self._as_json = as_json
        self._redraw = redraw
        self._height = 0  # lines of the report on screen

    def __call__(self, endpoint: str, current: Report) -> None:
        if self._as_json:
            echo_json(current.to_json())
            return
        lines = dashboard(endpoint, current)
        if self._redraw and self._height:
            click.echo(f"\x1b[{self._height}F\x1b[J", nl=False)  # up and clear to the end
        elif self._height:
            lines.insert(0, "")
        click.echo("\n".join(lines))
        self._height = len(lines)


def dashboard(endpoint: str, current: Report) -> list[str]:
    """The human view of one report."""
    lines = [
        f"● {endpoint.removeprefix('https://')}   up {format_duration(int(current.uptime) * 10**9)}"
        f"   every {format_duration(round(current.interval * 1000) * 10**6)}",
        f"  {'Requests':<12}{'total':>12}{'per second':>14}",
    ]
    for outcome, _, title in _OUTCOMES:
        lines.append(
            f"  {title:<12}{current.totals[outcome]:>12.0f}{current.per_second[outcome]:>14.2f}"
        )
    lines.append(f"  {'Active':<12}{current.active:>12.0f}")
    latency = "   ".join(f"{name} {_seconds(value)}" for name, value in current.latency.items())
    lines.append(f"  {'Latency':<12}{latency}")
    lines.extend(_extra_lines(current.extras))
    return lines


def _extra_lines(extras: tuple[Extra, ...]) -> list[str]:
    if not extras:
        return []
    rows = [(_series(x), f"{x.value:g}", "" if x.per_second is None else f"{x.per_second:.2f}/s")
            for x in extras]  # fmt: skip
    width = max(len(series) for series, _, _ in rows)
    return ["  aiokes"] + [f"    {s:<{width}} {v:>12} {r:>12}".rstrip() for s, v, r in rows]


def _series(extra: Extra) -> str:
    name = extra.name.removeprefix(_EXTRA_PREFIX)
    if not extra.labels:
        return name
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in extra.labels) + "}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return format_duration(round(value * 10_000) * 100_000)  # 0.1 ms resolution
