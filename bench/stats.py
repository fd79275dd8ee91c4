"""Merging the load processes' raw samples into one measurement: rates, percentiles, a CDF.

Percentiles are exact (nearest rank over every sample), not estimated from buckets: runs are
bounded by ``--max-requests`` and ``--duration``, so sorting every latency is affordable.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.loadgen import ProcessResult

__all__ = ["Measurement", "Percentiles", "cdf_points", "merge", "percentiles"]

_CDF_POINTS = 200


@dataclass(frozen=True, slots=True)
class Percentiles:
    """Milliseconds; ``count`` samples."""

    count: int
    mean: float
    p50: float
    p90: float
    p99: float
    p999: float
    max: float


@dataclass(frozen=True, slots=True)
class Measurement:
    requests: int  # measured requests that got an answer or failed
    ok: int  # 2xx answers
    seconds: float
    throughput: float  # 2xx answers per second
    statuses: dict[str, int]  # every answer by HTTP status
    errors: dict[str, int]  # non-2xx statuses and transport failures, by kind
    dropped: int  # open loop: released requests that no user could send before the end
    latency: Percentiles
    cdf: list[tuple[float, float]]  # (latency ms, fraction of requests at or below)
    handshake: Percentiles | None
    full_handshakes: int
    resumed_handshakes: int
    # Servers the harness started: CPU cores busy during the window, and CPU per 2xx answer.
    server_cpu_cores: float | None = None
    server_cpu_per_request_us: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def percentiles(ordered: Sequence[float]) -> Percentiles:
    """``ordered`` sorted ascending, in seconds."""
    if not ordered:
        return Percentiles(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

    def rank(q: float) -> float:
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000.0

    mean = sum(ordered) / len(ordered) * 1000.0
    return Percentiles(
        len(ordered), mean, rank(0.5), rank(0.9), rank(0.99), rank(0.999), ordered[-1] * 1000.0
    )


def cdf_points(ordered: Sequence[float], points: int = _CDF_POINTS) -> list[tuple[float, float]]:
    """Up to ``points`` (ms, fraction) pairs, denser in the tail where the interest is."""
    n = len(ordered)
    if n == 0:
        return []
    fractions = sorted({1.0 - 10 ** (-4.0 * i / points) for i in range(points)} | {1.0})
    return [(ordered[max(0, math.ceil(f * n) - 1)] * 1000.0, f) for f in fractions]


def merge(results: Sequence[ProcessResult]) -> Measurement:
    latencies = sorted(value for result in results for value in result.latencies)
    handshakes = sorted(value for result in results for value in result.handshakes)
    statuses: Counter[int] = Counter()
    transport: Counter[str] = Counter()
    for result in results:
        statuses.update(result.statuses)
        transport.update(result.errors)
    errors = {str(status): n for status, n in statuses.items() if not 200 <= status < 300}
    errors.update(transport)
    seconds = max((result.measured_seconds for result in results), default=0.0)
    ok = len(latencies)
    return Measurement(
        requests=statuses.total() + transport.total(),
        ok=ok,
        seconds=seconds,
        throughput=ok / seconds if seconds > 0 else 0.0,
        statuses={str(status): n for status, n in sorted(statuses.items())},
        errors=dict(sorted(errors.items())),
        dropped=sum(result.dropped for result in results),
        latency=percentiles(latencies),
        cdf=cdf_points(latencies),
        handshake=percentiles(handshakes) if handshakes else None,
        full_handshakes=sum(result.full_handshakes for result in results),
        resumed_handshakes=sum(result.resumed_handshakes for result in results),
    )
