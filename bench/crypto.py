"""Where should aiokes seal and open: on the event loop, or in a thread (issue 5, point 2)?

For payload sizes from 32 bytes to 1 MiB this measures, with aiokes's own ``SecretKey``
(KES's format: HMAC-derived AES-GCM key per message) on a uvloop loop:

* ``inline``: wall time of one seal/open called directly in a coroutine (the loop is busy
  for exactly this long);
* ``to_thread``: wall time of ``await asyncio.to_thread(seal)`` (the request's latency);
* ``loop CPU``: CPU time the *event-loop thread* spends per offloaded op (``thread_time``):
  the hand-off, the wake-up and the callback. Offloading frees the loop only if this is
  less than the inline time;
* ``2-thread speedup``: throughput of two threads sealing at once over one thread; about 2
  means the library releases the GIL (a worker thread then runs beside the loop), about 1
  means it does not (the loop waits for the GIL either way).

The recommended ``crypto.inline_limit`` is the largest measured size at which inline still
costs the loop less than the offload does.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from aiokes.crypto import Cipher, SecretKey

__all__ = ["SIZES", "CryptoRow", "measure_crypto", "recommend_limit", "table"]

SIZES = (32, 256, 1024, 4096, 16384, 65536, 262144, 1048576)
_CONTEXT = b'{"bench":"bench/object"}'
_BUDGET = 0.15  # seconds per measurement


@dataclass(frozen=True, slots=True)
class CryptoRow:
    size: int
    seal_inline_us: float
    seal_thread_us: float
    seal_loop_cpu_us: float
    open_inline_us: float
    open_thread_us: float
    open_loop_cpu_us: float
    two_thread_speedup: float


def measure_crypto(sizes: tuple[int, ...] = SIZES) -> list[CryptoRow]:
    key = SecretKey(Cipher.AES256, os.urandom(32))
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(_measure_all(key, sizes))
    return uvloop.run(_measure_all(key, sizes))


async def _measure_all(key: SecretKey, sizes: tuple[int, ...]) -> list[CryptoRow]:
    rows = []
    for size in sizes:
        payload = os.urandom(size)
        sealed = key.encrypt(payload, _CONTEXT)

        def seal(payload: bytes = payload) -> bytes:
            return key.encrypt(payload, _CONTEXT)

        def open_(sealed: bytes = sealed) -> bytes:
            return key.decrypt(sealed, _CONTEXT)

        rows.append(
            CryptoRow(
                size,
                _inline(seal),
                *await _offloaded(seal),
                _inline(open_),
                *await _offloaded(open_),
                _two_thread_speedup(seal),
            )
        )
    return rows


def _iterations(operation: Callable[[], bytes]) -> int:
    started = time.perf_counter()
    for _ in range(5):
        operation()
    each = (time.perf_counter() - started) / 5
    return max(20, min(50_000, int(_BUDGET / max(each, 1e-7))))


def _inline(operation: Callable[[], bytes]) -> float:
    count = _iterations(operation)
    started = time.perf_counter()
    for _ in range(count):
        operation()
    return (time.perf_counter() - started) / count * 1e6


async def _offloaded(operation: Callable[[], bytes]) -> tuple[float, float]:
    """(wall µs per awaited to_thread call, event-loop-thread CPU µs per call)."""
    count = max(20, min(5_000, _iterations(operation) // 4))
    await asyncio.to_thread(operation)  # start the default executor's thread
    started, cpu_started = time.perf_counter(), time.thread_time()
    for _ in range(count):
        await asyncio.to_thread(operation)
    wall = (time.perf_counter() - started) / count * 1e6
    cpu = (time.thread_time() - cpu_started) / count * 1e6
    return wall, cpu


def _two_thread_speedup(operation: Callable[[], bytes]) -> float:
    count = _iterations(operation)

    def run() -> None:
        for _ in range(count):
            operation()

    with ThreadPoolExecutor(2) as pool:
        started = time.perf_counter()
        pool.submit(run).result()
        one = time.perf_counter() - started
        started = time.perf_counter()
        for future in [pool.submit(run), pool.submit(run)]:
            future.result()
        two = time.perf_counter() - started
    return 2 * one / two


def recommend_limit(rows: list[CryptoRow]) -> int:
    """The largest size whose inline seal and open cost the loop no more than offloading."""
    limit = rows[0].size if rows else 0
    for row in rows:
        inline = max(row.seal_inline_us, row.open_inline_us)
        offload = min(row.seal_loop_cpu_us, row.open_loop_cpu_us)
        if inline > offload and row.two_thread_speedup > 1.3:
            break
        limit = row.size
    return limit


def table(rows: list[CryptoRow]) -> str:
    lines = [
        "| payload | seal inline µs | seal to_thread µs | loop CPU per offload µs "
        "| open inline µs | open to_thread µs | loop CPU per offload µs | 2-thread speedup |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        cells = [_size(row.size)] + [
            f"{value:,.1f}"
            for value in (
                row.seal_inline_us, row.seal_thread_us, row.seal_loop_cpu_us,
                row.open_inline_us, row.open_thread_us, row.open_loop_cpu_us,
            )
        ] + [f"{row.two_thread_speedup:.2f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size // (1024 * 1024)} MiB"
    return f"{size // 1024} KiB" if size >= 1024 else f"{size} B"


def rows_json(rows: list[CryptoRow]) -> list[dict[str, Any]]:
    return [asdict(row) for row in rows]
