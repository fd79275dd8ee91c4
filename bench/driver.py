"""Runs one measurement: starts the load processes, releases them together, shows progress,
collects and merges their results. Every wait is bounded; stragglers are terminated."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from bench.loadgen import LoadSpec, ProcessResult, process_main
from bench.progress import Progress
from bench.stats import Measurement, merge

__all__ = ["LoadError", "drive", "split"]

_CONNECT_TIMEOUT = 60.0  # spawning, importing and opening every connection
_START_DELAY = 0.2  # so every process has the start time before it passes
_GRACE = 15.0  # after the window: in-flight requests end by their timeout


class LoadError(Exception):
    """A load process failed before it could report."""


def split(total: int, parts: int) -> list[int]:
    """``total`` spread over ``parts`` as evenly as integers allow (largest first)."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def drive(
    specs: Sequence[LoadSpec], label: str, cpu_probe: Callable[[], float] | None = None
) -> Measurement:
    """Run the processes described by ``specs`` (one each) and merge what they measured.

    ``cpu_probe`` (the server's CPU seconds so far) is read when the measured window opens
    and when it closes, which gives the server's CPU time per answered request.
    """
    context = multiprocessing.get_context("spawn")
    counters: Any = context.RawArray("Q", 2 * len(specs))  # each process writes its own pair
    processes = []
    pipes = []
    for slot, spec in enumerate(specs):
        parent, child = context.Pipe()
        process = context.Process(
            target=process_main, args=(spec, child, counters, slot), daemon=True
        )
        process.start()
        child.close()
        processes.append(process)
        pipes.append(parent)
    try:
        return _run(specs, pipes, counters, label, cpu_probe)
    finally:
        for process in processes:
            process.join(timeout=5.0)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5.0)


def _run(
    specs: Sequence[LoadSpec],
    pipes: list[Any],
    counters: Any,
    label: str,
    cpu_probe: Callable[[], float] | None,
) -> Measurement:
    for index, pipe in enumerate(pipes):
        message = _receive(pipe, _CONNECT_TIMEOUT, f"load process {index} did not connect")
        if message != "ready":
            raise LoadError(f"load process {index}: unexpected message {message!r}")
    start = time.monotonic() + _START_DELAY
    for pipe in pipes:
        pipe.send(start)
    window = max(spec.warmup + spec.duration for spec in specs)
    progress = Progress(label, window)
    deadline = start + window + _GRACE + max(spec.timeout for spec in specs)
    opens = start + max(spec.warmup for spec in specs)
    cpu = _CPUWindow(cpu_probe, opens, start + window)
    results: list[ProcessResult] = []
    for index, pipe in enumerate(pipes):
        while not pipe.poll(0.1):
            progress.update(counters)
            cpu.sample()
            if time.monotonic() > deadline:
                raise LoadError(f"load process {index} did not finish in time")
        results.append(_receive(pipe, 1.0, f"load process {index} failed"))
    progress.update(counters, final=True)
    cpu.finish()
    measurement = merge(results)
    seconds = cpu.seconds()
    if seconds is None or measurement.throughput <= 0:
        return measurement
    busy = seconds / cpu.wall
    return replace(
        measurement,
        server_cpu_cores=busy,
        server_cpu_per_request_us=busy / measurement.throughput * 1e6,
    )


class _CPUWindow:
    """Server CPU seconds between two instants, read by polling (±0.1 s at each end)."""

    def __init__(self, probe: Callable[[], float] | None, opens: float, closes: float) -> None:
        self._probe = probe
        self._opens, self._closes = opens, closes
        self._first: tuple[float, float] | None = None
        self._last: tuple[float, float] | None = None
        self.wall = 0.0

    def sample(self) -> None:
        now = time.monotonic()
        if self._probe is None or now < self._opens or self._last is not None:
            return
        if self._first is None:
            self._first = (now, self._probe())
        elif now >= self._closes:
            self._last = (now, self._probe())
            self.wall = self._last[0] - self._first[0]

    def finish(self) -> None:
        """The processes reported before a poll saw the window close: read it now."""
        if self._probe is not None and self._first is not None and self._last is None:
            self._last = (time.monotonic(), self._probe())
            self.wall = self._last[0] - self._first[0]

    def seconds(self) -> float | None:
        if self._first is None or self._last is None or self.wall <= 0:
            return None
        return self._last[1] - self._first[1]


def _receive(pipe: Any, timeout: float, failure: str) -> Any:
    if not pipe.poll(timeout):
        raise LoadError(f"{failure} (timed out after {timeout:g}s)")
    try:
        return pipe.recv()
    except EOFError:
        raise LoadError(f"{failure} (it exited; see its traceback above)") from None
