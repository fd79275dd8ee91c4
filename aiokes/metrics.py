"""Prometheus metrics under KES's names (spec §10.4), aggregated over worker processes.

Written by hand rather than with prometheus_client: KES's counters are named without the
``_total`` suffix that prometheus_client always appends to counters in the text format, and
kms-go and MinIO look the families up by name.

Each worker counts into its own row of a table of 64-bit integers in memory shared by all
workers (an anonymous ``mmap`` created before forking), so counting stays a local array
increment with no locks, and whichever worker answers ``/v1/metrics`` sums every row.
"""

from __future__ import annotations

import bisect
import gc
import mmap
import os
import resource
import threading
import time
from collections.abc import Callable
from typing import Any

from aiokes.cache.stats import PUBLISHED as _CACHE_FIELDS
from aiokes.cache.stats import CacheStats, describe, is_gauge

__all__ = ["CONTENT_TYPE", "Metrics", "MetricsTable", "resident_bytes", "usable_cpus"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 3.0, 5.0, 10.0)
# Every status the server answers with; anything else is counted under its class's first code.
_CODES = (200, 301, 400, 401, 403, 404, 405, 406, 409, 413, 500, 501, 502, 503, 504)
_CODE_INDEX = {code: index for index, code in enumerate(_CODES)}

# Row layout: status counts, histogram buckets, then single counters.
_BUCKET_BASE = len(_CODES)
_SUM_US = _BUCKET_BASE + len(_BUCKETS)  # response time sum in microseconds
_ACTIVE = _SUM_US + 1
_AUDIT_EVENTS = _ACTIVE + 1
_ERROR_EVENTS = _AUDIT_EVENTS + 1
_STALLED = _ERROR_EVENTS + 1
_CACHE_BASE = _STALLED + 1
_ROW = _CACHE_BASE + len(_CACHE_FIELDS)


class MetricsTable:
    """The counters of ``workers`` processes; create it before forking to share it.

    ``helpers`` rows more are for processes that serve no requests but count (the key
    keeper's cache counters); ``aiokes_workers`` still says ``workers``."""

    def __init__(self, workers: int = 1, *, helpers: int = 0) -> None:
        self.workers = workers
        self._rows = workers + helpers
        self._memory = mmap.mmap(-1, self._rows * _ROW * 8)  # anonymous, MAP_SHARED
        self._cells = memoryview(self._memory).cast("q")
        self.started = time.monotonic()

    def worker(self, index: int = 0) -> Metrics:
        return Metrics(self, index)

    def total(self, field: int) -> int:
        cells = self._cells
        return sum(cells[row * _ROW + field] for row in range(self._rows))


class Metrics:
    """One worker's view: counts into its own row, renders the sum of all rows."""

    __slots__ = ("_base", "_cells", "started", "table")

    def __init__(self, table: MetricsTable | None = None, index: int = 0) -> None:
        self.table = table or MetricsTable()
        self._cells = self.table._cells
        self._base = index * _ROW
        self.started = self.table.started

    def observe(self, status: int, duration: float) -> None:
        # Once per request: three cells, no call for the common status codes. The histogram's
        # count is the sum of the status counts, so it needs no cell of its own.
        cells, base = self._cells, self._base
        index = _CODE_INDEX.get(status)
        cells[base + (_code_index(status) if index is None else index)] += 1
        bucket = bisect.bisect_left(_BUCKETS, duration)
        if bucket < len(_BUCKETS):
            cells[base + _BUCKET_BASE + bucket] += 1
        cells[base + _SUM_US] += int(duration * 1e6)

    def request_started(self) -> None:
        self._cells[self._base + _ACTIVE] += 1

    def request_finished(self, status: int, duration: float) -> None:
        """A started request was answered: no longer active, and observed."""
        self._cells[self._base + _ACTIVE] -= 1
        self.observe(status, duration)

    def request_abandoned(self) -> None:
        """A started request ended without an answer (the client went away)."""
        self._cells[self._base + _ACTIVE] -= 1

    def audit_event(self) -> None:
        self._cells[self._base + _AUDIT_EVENTS] += 1

    def error_event(self) -> None:
        self._cells[self._base + _ERROR_EVENTS] += 1

    def request_stalled(self) -> None:
        """A client did not send a request's head or body in time (the connection closed)."""
        self._cells[self._base + _STALLED] += 1

    def publish_cache(self, stats: CacheStats) -> None:
        """Store this process's cache counters (the published fields of ``stats``)."""
        for offset, name in enumerate(_CACHE_FIELDS):
            self._cells[self._base + _CACHE_BASE + offset] = int(getattr(stats, name))

    def cache_totals(self) -> CacheStats:
        """The published cache counters summed over all processes; ``offline`` when any
        process is offline."""
        totals: dict[str, Any] = {
            name: self.table.total(_CACHE_BASE + i) for i, name in enumerate(_CACHE_FIELDS)
        }
        totals["offline"] = totals["offline"] > 0
        return CacheStats(**totals)

    def value(self, name: str) -> int:
        """A counter summed over all workers, by name (tests, ``/v1/status``)."""
        if name == "requests":
            return self._requests()
        return self.table.total(_FIELD_NAMES[name])

    def _requests(self) -> int:
        """Requests observed: every observation counts under exactly one status code."""
        return sum(self.table.total(index) for index in _CODE_INDEX.values())

    def render(self) -> str:
        total = self.table.total
        lines: list[str] = []
        for family, help_text, low, high in _REQUEST_FAMILIES:
            samples = {code: total(i) for code, i in _CODE_INDEX.items() if low <= code < high}
            _counter(lines, family, help_text, {c: n for c, n in samples.items() if n})
        _gauge(lines, "kes_http_request_active", _HELP_ACTIVE, total(_ACTIVE))
        self._histogram(lines)
        _single_counter(lines, "kes_log_error_events", _HELP_ERROR_EVENTS, total(_ERROR_EVENTS))
        _single_counter(lines, "kes_log_audit_events", _HELP_AUDIT_EVENTS, total(_AUDIT_EVENTS))
        for name, help_text, read in _SYSTEM_GAUGES:
            _gauge(lines, name, help_text, read(self))
        _gauge(lines, "aiokes_workers", "Number of worker processes.", self.table.workers)
        _single_counter(lines, "aiokes_http_request_stalled", _HELP_STALLED, total(_STALLED))
        for offset, field in enumerate(_CACHE_FIELDS):
            kind = "gauge" if is_gauge(field) else "counter"
            name = f"aiokes_cache_{field}"
            lines += [f"# HELP {name} {describe(field)}", f"# TYPE {name} {kind}"]
            lines.append(f"{name} {total(_CACHE_BASE + offset)}")
        return "\n".join(lines) + "\n"

    def _histogram(self, lines: list[str]) -> None:
        total = self.table.total
        name = "kes_http_response_time"
        lines += [f"# HELP {name} {_HELP_RESPONSE_TIME}", f"# TYPE {name} histogram"]
        cumulative = 0
        for index, bound in enumerate(_BUCKETS):
            cumulative += total(_BUCKET_BASE + index)
            lines.append(f'{name}_bucket{{le="{_number(bound)}"}} {cumulative}')
        count = self._requests()
        lines.append(f'{name}_bucket{{le="+Inf"}} {count}')
        lines.append(f"{name}_sum {_number(total(_SUM_US) / 1e6)}")
        lines.append(f"{name}_count {count}")


def _code_index(status: int) -> int:
    """The cell of a status aiokes does not send: its family's, at least."""
    return _CODE_INDEX[500 if status >= 500 else 400 if status >= 400 else 200]


def _counter(lines: list[str], name: str, help_text: str, samples: dict[int, int]) -> None:
    if not samples:  # Go's CounterVec omits families without observations
        return
    lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
    lines += [f'{name}{{code="{code}"}} {count}' for code, count in sorted(samples.items())]


def _single_counter(lines: list[str], name: str, help_text: str, value: int) -> None:
    lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter", f"{name} {value}"]


def _gauge(lines: list[str], name: str, help_text: str, value: float) -> None:
    lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {_number(value)}"]


def _number(value: float) -> str:
    if isinstance(value, float) and not value.is_integer():
        return repr(value)
    return str(int(value))


def usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def resident_bytes() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()
    except OSError:  # not Linux: the peak is the best portable figure
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


_FIELD_NAMES = {
    "active": _ACTIVE,
    "audit_events": _AUDIT_EVENTS,
    "error_events": _ERROR_EVENTS,
    "stalled": _STALLED,
    **{f"cache_{name}": _CACHE_BASE + i for i, name in enumerate(_CACHE_FIELDS)},
}
_REQUEST_FAMILIES = (
    (
        "kes_http_request_success",
        "Number of requests that have been served successfully.",
        200,
        400,
    ),
    (
        "kes_http_request_error",
        "Number of request that failed due to some error. (HTTP 4xx status code)",
        400,
        500,
    ),
    (
        "kes_http_request_failure",
        "Number of request that failed due to some internal failure. (HTTP 5xx status code)",
        500,
        600,
    ),
)
_HELP_ACTIVE = "Number of active requests that are not finished, yet."
_HELP_RESPONSE_TIME = "Histogram of request response times spawning from 10ms to 10s."
_HELP_ERROR_EVENTS = "Number of error log events written to the error log targets."
_HELP_AUDIT_EVENTS = "Number of audit log events written to the audit log targets."
_HELP_STALLED = "Connections closed because a request's head or body did not arrive in time."
# Process-wide figures: the answering worker's own (uptime, CPUs are the same for all).
_SYSTEM_GAUGES: tuple[tuple[str, str, Callable[[Metrics], float]], ...] = (
    (
        "kes_system_up_time",
        "The time the server has been up and running in seconds.",
        lambda m: round(time.monotonic() - m.started, 2),
    ),
    (
        "kes_system_num_cpu",
        "The number of logical CPUs available on the system.",
        lambda _: os.cpu_count() or 1,
    ),
    (
        "kes_system_num_cpu_used",
        "The number of logical CPUs usable by the server.",
        lambda _: usable_cpus(),
    ),
    (
        "kes_system_num_threads",
        "The number of threads that currently exist.",
        lambda _: threading.active_count(),
    ),
    (
        "kes_system_mem_heap_used",
        "The number of heap bytes currently allocated.",
        lambda _: resident_bytes(),
    ),
    (
        "kes_system_mem_heap_objects",
        "The number of heap objects currently allocated.",
        lambda _: len(gc.get_objects()),
    ),
    # CPython has no separate stack accounting (frames live on the heap): reported as 0 so
    # that clients expecting the family (kms-go requires one sample) still find it.
    (
        "kes_system_mem_stack_used",
        "The number of bytes currently used on the stack.",
        lambda _: 0,
    ),
)
