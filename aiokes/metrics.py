"""Prometheus metrics under KES's names (spec §10.4).

Written by hand rather than with prometheus_client: KES's counters are named without the
``_total`` suffix that prometheus_client always appends to counters in the text format, and
kms-go and MinIO look the families up by name. The set is small and fixed, and plain integers
make counting on the hot path a dict increment.
"""

from __future__ import annotations

import bisect
import gc
import os
import resource
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = ["CONTENT_TYPE", "Metrics", "resident_bytes", "usable_cpus"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 3.0, 5.0, 10.0)


@dataclass(slots=True)
class Metrics:
    """Request metrics of one server process."""

    started: float = field(default_factory=time.monotonic)
    success: dict[int, int] = field(default_factory=dict)  # status -> count (2xx)
    error: dict[int, int] = field(default_factory=dict)  # 4xx
    failure: dict[int, int] = field(default_factory=dict)  # 5xx
    active: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * len(_BUCKETS))
    duration_sum: float = 0.0
    duration_count: int = 0
    audit_events: int = 0
    error_events: int = 0

    def observe(self, status: int, duration: float) -> None:
        family = self.success if status < 400 else self.error if status < 500 else self.failure
        family[status] = family.get(status, 0) + 1
        index = bisect.bisect_left(_BUCKETS, duration)
        if index < len(self.buckets):
            self.buckets[index] += 1
        self.duration_sum += duration
        self.duration_count += 1

    def render(self, extra: Iterable[str] = ()) -> str:
        lines: list[str] = []
        _counter(lines, "kes_http_request_success", _HELP_SUCCESS, self.success)
        _counter(lines, "kes_http_request_error", _HELP_ERROR, self.error)
        _counter(lines, "kes_http_request_failure", _HELP_FAILURE, self.failure)
        _gauge(lines, "kes_http_request_active", _HELP_ACTIVE, self.active)
        self._histogram(lines)
        _single_counter(lines, "kes_log_error_events", _HELP_ERROR_EVENTS, self.error_events)
        _single_counter(lines, "kes_log_audit_events", _HELP_AUDIT_EVENTS, self.audit_events)
        for name, help_text, read in _SYSTEM_GAUGES:
            _gauge(lines, name, help_text, read(self))
        lines.extend(extra)
        return "\n".join(lines) + "\n"

    def _histogram(self, lines: list[str]) -> None:
        name = "kes_http_response_time"
        lines += [f"# HELP {name} {_HELP_RESPONSE_TIME}", f"# TYPE {name} histogram"]
        cumulative = 0
        for bound, count in zip(_BUCKETS, self.buckets, strict=True):
            cumulative += count
            lines.append(f'{name}_bucket{{le="{_number(bound)}"}} {cumulative}')
        lines.append(f'{name}_bucket{{le="+Inf"}} {self.duration_count}')
        lines.append(f"{name}_sum {_number(self.duration_sum)}")
        lines.append(f"{name}_count {self.duration_count}")


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
    return (
        repr(float(value))
        if isinstance(value, float) and not value.is_integer()
        else (str(int(value)))
    )


def _uptime(metrics: Metrics) -> float:
    return round(time.monotonic() - metrics.started, 2)


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def resident_bytes() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()
    except OSError:  # not Linux: the peak is the best portable figure
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


_HELP_SUCCESS = "Number of requests that have been served successfully."
_HELP_ERROR = "Number of request that failed due to some error. (HTTP 4xx status code)"
_HELP_FAILURE = "Number of request that failed due to some internal failure. (HTTP 5xx status code)"
_HELP_ACTIVE = "Number of active requests that are not finished, yet."
_HELP_RESPONSE_TIME = "Histogram of request response times spawning from 10ms to 10s."
_HELP_ERROR_EVENTS = "Number of error log events written to the error log targets."
_HELP_AUDIT_EVENTS = "Number of audit log events written to the audit log targets."

_SYSTEM_GAUGES: tuple[tuple[str, str, Callable[[Metrics], float]], ...] = (
    ("kes_system_up_time", "The time the server has been up and running in seconds.", _uptime),
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
    # CPython has no separate stack accounting (frames live on the heap): reported as 0 so that
    # clients expecting the family (kms-go requires one sample) still find it.
    ("kes_system_mem_stack_used", "The number of bytes currently used on the stack.", lambda _: 0),
)
