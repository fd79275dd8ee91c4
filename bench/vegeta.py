"""The loader: vegeta (Go, from the Go module proxy), found, run over mTLS and read.

The Python load generator tops out below what the servers answer; vegeta on its own core
saturates them (``bench saturate``) or holds a fixed rate (``bench instructions``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.certs import BenchCertificates

__all__ = ["Load", "find_vegeta", "parse_report", "vegeta_argv", "vegeta_figures"]


def find_vegeta(path: str | None) -> str:
    found = path or os.environ.get("VEGETA") or shutil.which("vegeta")
    if not found or not os.access(found, os.X_OK):
        raise FileNotFoundError(
            "vegeta not found: pass --vegeta, set VEGETA or put it on PATH "
            "(go install github.com/tsenart/vegeta/v12@latest)"
        )
    return found


def parse_report(text: str) -> dict[str, float]:
    """The figures of ``vegeta report -type=json`` this harness uses (latencies in ms)."""
    report = json.loads(text)
    latencies = report["latencies"]
    return {
        "requests": float(report["requests"]),
        "success": float(report["success"]),
        "throughput": float(report["throughput"]),
        "p50_ms": latencies["50th"] / 1e6,
        "p99_ms": latencies["99th"] / 1e6,
    }


@dataclass(frozen=True, slots=True)
class Load:
    """How vegeta loads a server: ``rate`` requests/s (0: as many as it answers) for
    ``duration`` seconds over at most ``connections`` connections, on ``cpus``. ``workers``
    fixes vegeta's workers (saturation: one per connection); ``None`` leaves vegeta to add
    workers as a fixed rate needs them (a server slowed down by callgrind)."""

    rate: int
    duration: float
    connections: int
    cpus: str
    timeout: float
    workers: int | None = None


def vegeta_argv(
    vegeta: str, certs: BenchCertificates, targets: Path, results: Path, load: Load
) -> list[str]:
    """``vegeta attack`` over mTLS and HTTP/1.1 (as MinIO talks to KES), pinned to the load's
    CPUs, writing its results to ``results``."""
    connections = str(load.connections)
    rate = f"{load.rate}/1s" if load.rate else "0"
    workers: list[str] = []
    if load.workers is not None:
        workers = ["-max-workers", str(load.workers), "-workers", str(load.workers)]
    return ["taskset", "-c", load.cpus, vegeta, "attack", "-targets", str(targets),
            "-rate", rate, "-duration", f"{load.duration:.3f}s", "-http2=false", *workers,
            "-max-connections", connections, "-connections", connections,
            "-cert", certs.client_cert, "-key", certs.client_key, "-root-certs", certs.ca_file,
            "-timeout", f"{load.timeout:g}s", "-output", str(results)]  # fmt: skip


def vegeta_figures(vegeta: str, results: Path) -> dict[str, float]:
    """The figures of a results file (:func:`parse_report`)."""
    report = subprocess.run(
        [vegeta, "report", "-type=json", str(results)], capture_output=True, text=True, check=True
    )
    return parse_report(report.stdout)
