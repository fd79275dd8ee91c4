"""User-space instructions per request under callgrind: a yardstick that does not drift.

On these shared VMs a server's CPU time per request moves by up to 2x between rounds of one
run (bench/RESULTS.md, section 15), which hides any single change below ~25 %. Instructions
counted by ``valgrind --tool=callgrind`` do not depend on what else the machine is doing, so
``python -m bench instructions`` runs each server under callgrind, loads it with vegeta at a
fixed rate, and reads the counters of exactly the load window (``callgrind_control --zero``
before, ``--dump`` after).

Each scenario is measured twice on fresh loader connections, with ``small`` and ``large``
requests, and the figure is the difference divided by the extra requests: the TLS handshakes
of the loader's connections (the same number in both windows) cancel out, as does any fixed
cost of the window. What it does not count is the kernel's share (the socket syscalls), which
both servers pay alike per request: one read and one write each.

Go's asynchronous preemption signals trip callgrind, so KES runs with
``GODEBUG=asyncpreemptoff=1`` (goroutines are still preempted at function calls).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.certs import BenchCertificates, make_certificates
from bench.saturate import Running, Server, prepare, start, write_targets
from bench.vegeta import Load, vegeta_argv, vegeta_figures

__all__ = ["Count", "Windows", "count_instructions", "counts_table", "per_request"]

_GO_ENVIRONMENT = {"GODEBUG": "asyncpreemptoff=1"}
_TOTALS = re.compile(rb"^(?:summary|totals): (\d+)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Count:
    server: str
    scenario: str
    requests: int  # the extra requests of the large window over the small one
    instructions_per_request: float


@dataclass(frozen=True, slots=True)
class Windows:
    """The two load windows whose difference is counted: ``small`` and ``large`` requests
    sent at ``rate`` per second over ``connections`` loader connections."""

    small: int = 500
    large: int = 2500
    rate: int = 250
    connections: int = 16


def count_instructions(
    workdir: Path,
    servers: list[Server],
    vegeta: str,
    windows: Windows = Windows(),
    progress: Callable[[str], None] = print,
) -> list[Count]:
    """Instructions per request of every server, for generate and decrypt (servers measured
    one by one, each under its own callgrind)."""
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise RuntimeError("valgrind (with callgrind_control) is needed: apt install valgrind")
    certs = make_certificates(workdir / "certs")
    counts = []
    for index, server in enumerate(servers):
        target = start(workdir, certs, _under_callgrind(server, workdir), 7600 + index, "0")
        try:
            prepare(target, certs, workdir, start_timeout=600.0)
            for scenario in ("generate", "decrypt"):
                window = _Window(target, certs, workdir, vegeta, scenario, windows)
                low, high = window.measure(windows.small), window.measure(windows.large)
                count = Count(server.name, scenario, high[0] - low[0], per_request(low, high))
                progress(f"{count.server} {scenario}: {count.instructions_per_request:,.0f}")
                counts.append(count)
        finally:
            target.process.send_signal(signal.SIGTERM)
            try:
                target.process.wait(120)
            except subprocess.TimeoutExpired:
                target.process.kill()
    return counts


def per_request(low: tuple[int, int], high: tuple[int, int]) -> float:
    requests, instructions = high[0] - low[0], high[1] - low[1]
    if requests <= 0:
        raise RuntimeError("the large window answered no more requests than the small one")
    return instructions / requests


def _under_callgrind(server: Server, workdir: Path) -> Server:
    out = workdir / server.name / "callgrind.out"
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *server.argv]
    environment = {**server.environment, **_GO_ENVIRONMENT}
    return Server(server.name, argv, environment)


@dataclass(frozen=True, slots=True)
class _Window:
    target: Running
    certs: BenchCertificates
    workdir: Path
    vegeta: str
    scenario: str
    windows: Windows

    def measure(self, requests: int) -> tuple[int, int]:
        """Answered requests and instructions counted while sending ``requests``."""
        pid = str(self.target.process.pid)
        _callgrind_control("--zero", pid)
        answered = self._attack(requests)
        directory = self.workdir / self.target.server.name
        for stale in directory.glob("callgrind.out.*"):
            stale.unlink()
        _callgrind_control("--dump", pid)
        dumps = list(directory.glob("callgrind.out.*"))
        if len(dumps) != 1:
            raise RuntimeError(f"expected one callgrind dump in {directory}, found {len(dumps)}")
        found = _TOTALS.search(dumps[0].read_bytes())
        if found is None:
            raise RuntimeError(f"no instruction total in {dumps[0]}")
        return answered, int(found.group(1))

    def _attack(self, requests: int) -> int:
        directory, name = self.workdir / self.target.server.name, self.target.server.name
        targets, results = directory / f"{self.scenario}.targets", directory / "instructions.bin"
        write_targets(targets, self.target, self.scenario)
        windows = self.windows
        load = Load(windows.rate, requests / windows.rate, windows.connections, "1", timeout=60.0)
        subprocess.run(vegeta_argv(self.vegeta, self.certs, targets, results, load), check=True)
        figures = vegeta_figures(self.vegeta, results)
        if figures["success"] < 1.0:
            raise RuntimeError(f"{name} {self.scenario}: not every answer was a 2xx")
        return int(figures["requests"])


def _callgrind_control(flag: str, pid: str) -> None:
    subprocess.run(["callgrind_control", flag, pid], check=True, capture_output=True)


def counts_table(
    counts: list[Count], ours: str = "aiokes", theirs: str = "kes", *, rows: bool = True
) -> str:
    """The counts (unless not ``rows``) and, per scenario, ``theirs``/``ours``."""
    lines = [
        "| scenario | server | requests counted | instructions per request |",
        "|---|---|---:|---:|",
    ]
    if rows:
        lines += [
            f"| {c.scenario} | {c.server} | {c.requests} | {c.instructions_per_request:,.0f} |"
            for c in counts
        ]
    by_key = {(c.server, c.scenario): c.instructions_per_request for c in counts}
    for scenario in dict.fromkeys(c.scenario for c in counts):
        if (ours, scenario) in by_key and (theirs, scenario) in by_key:
            ratio = by_key[theirs, scenario] / by_key[ours, scenario]
            lines.append(f"| **{scenario}** | {theirs}/{ours} | | **{ratio:.2f}** |")
    return "\n".join(lines)
