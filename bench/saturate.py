"""Saturation runs with a compiled loader: aiokes vs real KES, each pinned to one core.

The Python load generator tops out near 36k requests/s with its core at 100 %, below what the
servers can answer, so ``python -m bench saturate`` drives them with vegeta (Go, from the Go
module proxy: ``go install github.com/tsenart/vegeta/v12@latest``) on another core instead.
Every server runs on the same config file (fs keystore, MinIO-like policy, audit log on), gets
the same request bytes, and is measured in alternating order round after round, so the ratios
of one run compare like with like on a noisy machine. The loader's CPU share is reported with
every row: a loader near one full core means the row measures the loader, not the server.

Servers: this checkout's aiokes (``aiokes``), optionally another aiokes source tree
(``--before DIR``, run with ``PYTHONPATH=DIR``) and a KES binary you built (``--kes PATH``;
the harness never builds or downloads one).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.certs import BenchCertificates, make_certificates
from bench.quota import CpuQuota
from bench.scenarios import CONTEXT
from bench.serverconfig import aiokes_config
from bench.vegeta import Load, vegeta_argv, vegeta_figures

__all__ = [
    "KEY",
    "Placement",
    "Row",
    "Running",
    "Server",
    "compared_pairs",
    "compared_servers",
    "prepare",
    "ratio_table",
    "rows_table",
    "saturate",
    "start",
    "write_targets",
]

KEY = "bench-key"
_START_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Server:
    name: str
    argv: list[str]
    environment: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where servers and loader run (``taskset`` CPU lists) and the load: ``rate`` requests
    per second, or 0 for as many as the server answers (saturation). The default pins the
    server to core 0 and the loader to core 1; ``all_cores`` shares every core, as a server
    with one worker per core meets its clients on one machine."""

    server_cpus: str = "0"
    loader_cpus: str = "1"
    rate: int = 0
    server_quota: float = 0.0  # cores each server may use (bench/quota.py); 0: no cap

    @classmethod
    def all_cores(cls, rate: int = 0) -> Placement:
        every = f"0-{max((os.cpu_count() or 1) - 1, 0)}"
        return cls(every, every, rate)


@dataclass(frozen=True, slots=True)
class Row:
    round: int
    scenario: str
    server: str
    requests: int
    success: float  # fraction of 2xx answers
    throughput: float  # 2xx answers per second
    server_cores: float  # server CPU seconds per wall second
    server_us_per_request: float
    loader_cores: float
    p50_ms: float
    p99_ms: float


@dataclass(slots=True)
class Running:
    server: Server
    port: int
    process: subprocess.Popen[bytes]
    bodies: dict[str, Path] = field(default_factory=dict)


def saturate(
    workdir: Path,
    servers: list[Server],
    *,
    vegeta: str,
    scenarios: tuple[str, ...] = ("generate", "decrypt"),
    rounds: int = 3,
    duration: float = 10.0,
    connections: int = 64,
    placement: Placement = Placement(),
    progress: Callable[[str], None] = print,
) -> list[Row]:
    """Start every server on the placement's server CPUs (one at a time is measured), drive
    each with vegeta on its loader CPUs; one :class:`Row` per round, scenario and server."""
    certs = make_certificates(workdir / "certs")
    quota = CpuQuota(placement.server_quota) if placement.server_quota else None
    running = [
        start(workdir, certs, server, 7500 + i, placement.server_cpus, quota)
        for i, server in enumerate(servers)
    ]
    rows = []
    try:
        for target in running:
            prepare(target, certs, workdir)
        for index in range(rounds):
            order = running if index % 2 == 0 else running[::-1]
            for scenario in scenarios:
                for target in order:
                    row = _attack(target, certs, workdir, vegeta, scenario, index, duration,
                                  connections, placement)  # fmt: skip
                    progress(_row_line(row))
                    rows.append(row)
    finally:
        for target in running:
            target.process.send_signal(signal.SIGTERM)
        for target in running:
            try:
                target.process.wait(15)
            except subprocess.TimeoutExpired:
                target.process.kill()
        if quota is not None:
            quota.remove()
    return rows


def start(
    workdir: Path,
    certs: BenchCertificates,
    server: Server,
    port: int,
    cpus: str,
    quota: CpuQuota | None = None,
) -> Running:
    directory = workdir / server.name
    directory.mkdir(parents=True, exist_ok=True)
    config = aiokes_config(directory, certs)
    config.write_text(config.read_text().replace("127.0.0.1:7373", f"127.0.0.1:{port}"))
    argv = [arg.replace("{config}", str(config)) for arg in server.argv]
    if quota is not None:
        argv = quota.wrap(argv)
    with open(directory / "server.log", "wb") as log:
        process = subprocess.Popen(
            ["taskset", "-c", cpus, *argv],
            stdout=subprocess.DEVNULL,  # the audit log
            stderr=log,
            env={**os.environ, **server.environment},
            cwd=directory,
        )
    return Running(server, port, process)


def prepare(
    target: Running,
    certs: BenchCertificates,
    workdir: Path,
    *,
    start_timeout: float = _START_TIMEOUT,
) -> None:
    """Wait for the server, create the key, seal one data key: the request bodies."""
    deadline = time.monotonic() + start_timeout
    while True:
        try:
            _call(target.port, certs, "GET", "/version")
            break
        except (OSError, http.client.HTTPException):
            if target.process.poll() is not None or time.monotonic() > deadline:
                log = (workdir / target.server.name / "server.log").read_text()[-2000:]
                raise RuntimeError(f"{target.server.name} did not start: {log}") from None
            time.sleep(0.2)
    _call(target.port, certs, "POST", f"/v1/key/create/{KEY}")  # 400 if it exists: fine
    context = base64.b64encode(CONTEXT).decode()
    generate = _compact({"context": context})  # the bytes MinIO sends
    status, answer = _call(target.port, certs, "POST", f"/v1/key/generate/{KEY}", generate)
    if status != 200:
        raise RuntimeError(f"{target.server.name}: generate answered {status}: {answer!r}")
    decrypt = _compact({"ciphertext": json.loads(answer)["ciphertext"], "context": context})
    for scenario, body in (("generate", generate), ("decrypt", decrypt)):
        path = workdir / target.server.name / f"{scenario}.json"
        path.write_bytes(body)
        target.bodies[scenario] = path


def _compact(value: dict[str, str]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _call(
    port: int, certs: BenchCertificates, method: str, path: str, body: bytes = b""
) -> tuple[int, bytes]:
    context = ssl.create_default_context(cafile=certs.ca_file)
    context.load_cert_chain(certs.client_cert, certs.client_key)
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=5)
    try:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _attack(
    target: Running,
    certs: BenchCertificates,
    workdir: Path,
    vegeta: str,
    scenario: str,
    index: int,
    duration: float,
    connections: int,
    placement: Placement,
) -> Row:
    targets, results = workdir / "targets.txt", workdir / "results.bin"
    write_targets(targets, target, scenario)
    load = Load(
        placement.rate, duration, connections, placement.loader_cpus, 10.0, workers=connections
    )
    argv = vegeta_argv(vegeta, certs, targets, results, load)
    cpu_before, started = _cpu_seconds(target.process.pid), time.monotonic()
    loader = subprocess.Popen(argv)
    _, _, usage = os.wait4(loader.pid, 0)
    wall = time.monotonic() - started
    server_seconds = _cpu_seconds(target.process.pid) - cpu_before
    figures = vegeta_figures(vegeta, results)
    answered = figures["requests"] * figures["success"]
    return Row(
        round=index,
        scenario=scenario,
        server=target.server.name,
        requests=int(figures["requests"]),
        success=figures["success"],
        throughput=figures["throughput"],
        server_cores=server_seconds / wall,
        server_us_per_request=server_seconds / max(answered, 1.0) * 1e6,
        loader_cores=(usage.ru_utime + usage.ru_stime) / wall,
        p50_ms=figures["p50_ms"],
        p99_ms=figures["p99_ms"],
    )


def write_targets(path: Path, target: Running, scenario: str) -> None:
    """vegeta's targets file: the scenario's route on ``target`` with the body prepared."""
    url = f"https://127.0.0.1:{target.port}/v1/key/{scenario}/{KEY}"
    path.write_text(f"POST {url}\n@{target.bodies[scenario]}\n")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all its threads) and its child processes."""
    ticks = os.sysconf("SC_CLK_TCK")
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    total = 0.0
    for each in [pid, *map(int, children.split())]:
        try:
            with open(f"/proc/{each}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _row_line(row: Row) -> str:
    return (
        f"round {row.round} {row.scenario} {row.server}: {row.throughput:.0f} req/s, "
        f"server {row.server_cores:.2f} cores {row.server_us_per_request:.0f} µs/req, "
        f"loader {row.loader_cores:.2f} cores, p99 {row.p99_ms:.1f} ms"
    )


def rows_table(rows: list[Row]) -> str:
    lines = [
        "| round | scenario | server | req/s | server cores | server µs/req | loader cores "
        "| p50 ms | p99 ms | 2xx |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.round} | {r.scenario} | {r.server} | {r.throughput:.0f} | {r.server_cores:.2f} "
        f"| {r.server_us_per_request:.0f} | {r.loader_cores:.2f} | {r.p50_ms:.1f} "
        f"| {r.p99_ms:.1f} | {r.success:.0%} |"
        for r in rows
    ]
    return "\n".join(lines)


def ratio_table(rows: list[Row], ours: str, theirs: str) -> str:
    """Per round: ``ours``/``theirs`` req/s and ``theirs``/``ours`` CPU per request (> 1:
    ours is cheaper), with the median over rounds."""
    lines = [
        f"| scenario | round | req/s {ours}/{theirs} | CPU per request {theirs}/{ours} |",
        "|---|---|---:|---:|",
    ]
    for scenario in dict.fromkeys(r.scenario for r in rows):
        pairs = []
        for index in sorted({r.round for r in rows}):
            found = {r.server: r for r in rows if r.scenario == scenario and r.round == index}
            if ours in found and theirs in found:
                a, b = found[ours], found[theirs]
                pair = (
                    a.throughput / b.throughput,
                    b.server_us_per_request / a.server_us_per_request,
                )
                pairs.append(pair)
                lines.append(f"| {scenario} | {index} | {pair[0]:.2f} | {pair[1]:.2f} |")
        if pairs:
            rate = statistics.median(p[0] for p in pairs)
            cpu = statistics.median(p[1] for p in pairs)
            lines.append(f"| **{scenario}** | median | **{rate:.2f}** | **{cpu:.2f}** |")
    return "\n".join(lines)


def aiokes_server(name: str = "aiokes", source: str | None = None, workers: int = 1) -> Server:
    environment = {"PYTHONPATH": source} if source else {}
    argv = [sys.executable, "-m", "aiokes", "server", "--config", "{config}"]
    argv += ["--workers", str(workers)]
    return Server(name, argv, environment)


def kes_server(binary: str) -> Server:
    return Server("kes", [binary, "server", "--config", "{config}"])


def compared_servers(
    kes: str | None, before: str | None, workers: int = 1, *, compiled: str | None = None
) -> list[Server]:
    """This checkout's aiokes, then the ``--compiled`` build, the ``--before`` tree and the
    ``--kes`` binary, those given."""
    servers = [aiokes_server(workers=workers)]
    if compiled:
        servers.append(aiokes_server("compiled", compiled, workers))
    if before:
        servers.append(aiokes_server("before", before, workers))
    if kes:
        servers.append(kes_server(kes))
    return servers


def compared_pairs(names: list[str]) -> list[tuple[str, str]]:
    """Which servers the ratio tables compare: each aiokes build with every server after it."""
    ours = [name for name in names if name in ("aiokes", "compiled")]
    return [(a, b) for a in ours for b in names[names.index(a) + 1 :]]


def rows_json(rows: list[Row]) -> list[dict[str, Any]]:
    return [asdict(row) for row in rows]
