"""A benchmark suite: every scenario x connection count x target, then open-loop rates.

Targets are measured one after the other at each point (target, then baseline), so drift of
a shared machine hits both alike. The server and the load processes are pinned to disjoint
cores when there are enough of them.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from statistics import median
from typing import Any

from bench.certs import BenchCertificates, make_certificates
from bench.connection import ClientTLS
from bench.driver import drive, split
from bench.keys import create_keys, seal_samples
from bench.loadgen import LoadSpec
from bench.machine import describe_machine, session_cpu_seconds, usable_cpus
from bench.scenarios import Scenario, Workload, get_scenario, key_names
from bench.stats import Measurement
from bench.targets import Target, external_target, started_target

__all__ = ["ExternalOptions", "RunRecord", "SuiteOptions", "run_suite"]


@dataclass(frozen=True, slots=True)
class ExternalOptions:
    """Credentials for external (URL) targets."""

    cert: str = ""
    key: str = ""
    ca: str = ""
    insecure: bool = False
    api_key: str = ""


@dataclass(frozen=True, slots=True)
class SuiteOptions:
    out: Path
    targets: tuple[str, ...] = ("aiokes",)
    baseline: bool = True
    scenarios: tuple[str, ...] = ("generate",)
    connections: tuple[int, ...] = (64,)
    rates: tuple[str, ...] = ()  # "2000" (requests/s) or "50%" (of the target's best rate)
    duration: float = 10.0
    warmup: float = 1.0
    max_requests: int = 0
    processes: int = 1
    keys: int | None = None
    mix: tuple[int, int] | None = None
    storm_keys: int = 2000
    workers: int = 1
    pin: bool = True
    audit: bool = True
    mlock: bool = True
    timeout: float = 10.0
    repeat: int = 1  # every point this often, targets alternating, to see a drifting machine
    external: ExternalOptions = field(default_factory=ExternalOptions)
    command: str = ""


@dataclass(frozen=True, slots=True)
class RunRecord:
    target: str
    kind: str
    workers: int
    scenario: str
    policy: str
    mode: str  # "closed" or "open"
    connections: int
    processes: int
    rate: float | None  # requested arrival rate (open loop), requests/s
    rate_spec: str
    repeat: int  # 0 … options.repeat - 1
    measurement: Measurement

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["measurement"] = self.measurement.to_json()
        return document


def run_suite(options: SuiteOptions) -> dict[str, Any]:
    """Run everything ``options`` asks for; returns the JSON document of the results."""
    options.out.mkdir(parents=True, exist_ok=True)
    machine = describe_machine()
    certs = make_certificates(options.out / "work" / "certs")
    records: list[RunRecord] = []
    with _targets(options, certs) as targets:
        for name in options.scenarios:
            keys = options.storm_keys if name == "miss-storm" else options.keys
            scenario = get_scenario(name, keys=keys, mix=options.mix)
            records += _scenario_runs(options, scenario, targets)
    return {
        "command": options.command,
        "machine": machine,
        "options": _options_json(options),
        "runs": [record.to_json() for record in records],
        "ratios": ratios(records),
        "median_ratios": median_ratios(ratios(records)),
    }


@contextlib.contextmanager
def _targets(options: SuiteOptions, certs: BenchCertificates) -> Iterator[list[Target]]:
    work = options.out / "work"
    names = list(options.targets)
    if options.baseline and "baseline" not in names:
        names.append("baseline")
    with contextlib.ExitStack() as stack:
        targets = []
        for name in names:
            if "://" in name or ":" in name:
                targets.append(
                    external_target(name, _external_tls(options), options.external.api_key, work)
                )
                continue
            kind, workers = _kind_and_workers(name, options.workers)
            cpus = _server_cpus(options, workers)
            manager = started_target(
                kind, certs, work / name, cpus=cpus, workers=workers, audit=options.audit,
                mlock=options.mlock, name=name,
            )  # fmt: skip
            targets.append(stack.enter_context(manager))
        yield targets


def _kind_and_workers(name: str, default_workers: int) -> tuple[str, int]:
    """``aiokes-fs@2`` is aiokes-fs with 2 workers; without ``@N``, ``--workers`` applies."""
    kind, _, count = name.partition("@")
    if kind.startswith("baseline"):
        return kind, 1
    if not count:
        return kind, default_workers
    if not count.isdigit() or int(count) < 1:
        raise ValueError(f"target '{name}': expected KIND@WORKERS with WORKERS >= 1")
    return kind, int(count)


def _external_tls(options: SuiteOptions) -> ClientTLS | None:
    external = options.external
    if not (external.cert and external.key):
        return None
    return ClientTLS(external.cert, external.key, external.ca, external.insecure)


def _server_cpus(options: SuiteOptions, workers: int) -> tuple[int, ...]:
    cpus = usable_cpus()
    if not options.pin or len(cpus) < 2 or workers >= len(cpus):
        return ()
    return cpus[:workers]


def _load_cpus(options: SuiteOptions, target: Target) -> tuple[int, ...]:
    if not target.managed:
        return ()
    server = _server_cpus(options, target.workers)
    return tuple(cpu for cpu in usable_cpus() if cpu not in server) if server else ()


def _scenario_runs(
    options: SuiteOptions, scenario: Scenario, targets: Sequence[Target]
) -> list[RunRecord]:
    workloads = {target.name: _workload(scenario, target, 0) for target in targets}
    records: list[RunRecord] = []
    storms = itertools.count(1)  # every storm needs keys nobody has read yet
    for connections in options.connections:
        for repeat, target in itertools.product(range(options.repeat), targets):
            workload = workloads[target.name]
            if scenario.miss_storm and records:
                workload = _workload(scenario, target, next(storms))
            records.append(_measure(options, target, workload, connections, None, "", repeat))
    closed = list(records)
    for rate_spec in options.rates:
        for repeat, target in itertools.product(range(options.repeat), targets):
            rate = _resolve_rate(rate_spec, closed, target, scenario)
            workload = workloads[target.name]
            if scenario.miss_storm:
                workload = _workload(scenario, target, next(storms))
            connections = max(options.connections)
            records.append(
                _measure(options, target, workload, connections, rate, rate_spec, repeat)
            )
    return records


def _workload(scenario: Scenario, target: Target, generation: int) -> Workload:
    prefix = f"storm{generation}" if scenario.miss_storm else "bench-key"
    names = key_names(scenario, prefix)
    create_keys(target.endpoint, target.tls, names)
    sealed = seal_samples(target.endpoint, target.tls, names) if scenario.decrypt else {}
    return Workload(scenario, names, sealed)


def _resolve_rate(
    spec: str, records: Sequence[RunRecord], target: Target, scenario: Scenario
) -> float:
    if not spec.endswith("%"):
        return float(spec)
    # The best connection count, by its median over the repeats.
    by_connections: dict[int, list[float]] = {}
    for r in records:
        if r.target == target.name and r.scenario == scenario.name and r.mode == "closed":
            by_connections.setdefault(r.connections, []).append(r.measurement.throughput)
    best = max((median(values) for values in by_connections.values()), default=0.0)
    if best <= 0:
        raise ValueError(f"rate '{spec}' needs a closed-loop run of '{scenario.name}' first")
    return best * float(spec[:-1]) / 100.0


def _measure(
    options: SuiteOptions,
    target: Target,
    workload: Workload,
    connections: int,
    rate: float | None,
    rate_spec: str,
    repeat: int,
) -> RunRecord:
    scenario = workload.scenario
    processes = max(1, min(options.processes, connections))
    max_requests = options.max_requests
    warmup = options.warmup
    if scenario.miss_storm:
        max_requests = min(max_requests or scenario.keys, scenario.keys)
        warmup = 0.0  # a warm-up would spend cold keys
    base = LoadSpec(
        endpoint=target.endpoint,
        tls=target.tls,
        workload=workload,
        connections=1,
        rate=None,
        duration=options.duration,
        warmup=warmup,
        max_requests=0,
        share=(0, processes),
        cpus=_load_cpus(options, target),
        timeout=options.timeout,
    )
    users = split(connections, processes)
    budgets = split(max_requests, processes) if max_requests else [0] * processes
    specs = [
        replace(
            base,
            connections=users[i],
            rate=rate / processes if rate else None,
            max_requests=max(1, budgets[i]) if max_requests else 0,
            share=(i, processes),
        )
        for i in range(processes)
    ]
    mode = "open" if rate else "closed"
    label = f"{target.name} {scenario.name} c={connections}" + (f" r={rate:.0f}/s" if rate else "")
    label += f" #{repeat + 1}" if options.repeat > 1 else ""
    pid = target.pid
    probe = (lambda: session_cpu_seconds(pid)) if pid is not None else None
    measurement = drive(specs, label, probe)
    return RunRecord(
        target.name, target.kind, target.workers, scenario.name, scenario.policy.value,
        mode, connections, processes, rate, rate_spec, repeat, measurement,
    )  # fmt: skip


def ratios(records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """Each non-baseline run against the baseline run at the same point (same scenario, mode,
    connections, rate spec): throughput and p99 ratios."""
    baseline = {_point(r): r for r in records if r.kind == "baseline"}
    rows = []
    for record in records:
        reference = baseline.get(_point(record))
        if record.kind == "baseline" or reference is None:
            continue
        ours, theirs = record.measurement, reference.measurement
        rows.append(
            {
                "target": record.target,
                "workers": record.workers,
                "scenario": record.scenario,
                "mode": record.mode,
                "connections": record.connections,
                "rate_spec": record.rate_spec,
                "repeat": record.repeat,
                "throughput_ratio": _ratio(ours.throughput, theirs.throughput),
                "p50_ratio": _ratio(ours.latency.p50, theirs.latency.p50),
                "p99_ratio": _ratio(ours.latency.p99, theirs.latency.p99),
            }
        )
    return rows


def _point(record: RunRecord) -> tuple[str, str, int, str, int]:
    return (record.scenario, record.mode, record.connections, record.rate_spec, record.repeat)


def median_ratios(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ratios of every repeat of one point, reduced to their medians."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        key = (row["target"], row["workers"], row["scenario"], row["mode"], row["connections"],
               row["rate_spec"])  # fmt: skip
        groups.setdefault(key, []).append(row)
    medians = []
    for group in groups.values():
        summary = {name: group[0][name] for name in ("target", "workers", "scenario", "mode")}
        summary.update(connections=group[0]["connections"], rate_spec=group[0]["rate_spec"])
        summary["runs"] = len(group)
        for name in ("throughput_ratio", "p50_ratio", "p99_ratio"):
            values = [row[name] for row in group if row[name] is not None]
            summary[name] = round(median(values), 3) if values else None
        medians.append(summary)
    return medians


def _ratio(ours: float, theirs: float) -> float | None:
    return round(ours / theirs, 3) if theirs > 0 else None


def _options_json(options: SuiteOptions) -> dict[str, Any]:
    document = asdict(options)
    document["out"] = str(options.out)
    document["external"] = {
        **document["external"],
        "api_key": "<set>" if options.external.api_key else "",
    }
    return document
