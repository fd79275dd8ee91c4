"""Memory per cached key and per idle TLS connection (issue 4, point 6).

* Per cached key, two ways: the RSS growth of a running aiokes (fs keystore, one worker)
  after it has served one request for each of N keys (each read fills one cache entry), and
  ``tracemalloc`` of a :class:`~aiokes.cache.KeyCache` in this process filled with N decoded
  key records (Python objects only, no allocator slack).
* Per idle connection: the RSS growth of aiokes (and of the baseline, for comparison) while
  the harness holds N idle mTLS keep-alive connections, each after one request.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from pathlib import Path
from typing import Any

from aiokes.cache import CacheSettings, KeyCache
from aiokes.crypto import encode_key_version, generate_key_version, parse_key_version
from aiokes.keystore.memory import MemoryKeystore
from bench.certs import make_certificates
from bench.connection import Connection, Endpoint, client_context
from bench.keys import create_keys, seal_samples
from bench.machine import describe_machine
from bench.targets import Target, started_target
from bench.wire import build_request

__all__ = ["measure_memory", "memory_table", "rss_bytes"]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def measure_memory(out: Path, *, keys: int = 10_000, connections: int = 500) -> dict[str, Any]:
    work = out / "work"
    certs = make_certificates(work / "certs")
    result: dict[str, Any] = {
        "machine": describe_machine(),
        "keys": keys,
        "connections": connections,
    }
    for label, mlock in (("aiokes", True), ("aiokes_no_mlock", False)):
        directory = work / label
        with started_target("aiokes-fs", certs, directory, audit=False, mlock=mlock) as target:
            result[f"{label}_locked_kib"] = _locked_kib(_pid(target))
            result[f"{label}_rss_per_cached_key"] = _rss_per_cached_key(target, keys)
            result[f"{label}_rss_per_idle_connection"] = _rss_per_connection(target, connections)
    with started_target("baseline", certs, work / "baseline") as target:
        result["baseline_rss_per_idle_connection"] = _rss_per_connection(target, connections)
    result["keycache_tracemalloc_per_key"] = asyncio.run(_traced_bytes_per_entry(keys))
    return result


def _locked_kib(pid: int) -> int:
    """``VmLck``: memory that ``mlockall`` keeps resident (0 when locking failed)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmLck:"):
            return int(line.split()[1])
    return 0


def _pid(target: Target) -> int:
    assert target.pid is not None
    return target.pid


def _rss_per_cached_key(target: Target, keys: int) -> dict[str, float]:
    names = [f"mem-key-{index:06d}" for index in range(keys)]
    create_keys(target.endpoint, target.tls, names)  # a create does not fill the cache
    seal_samples(target.endpoint, target.tls, names[:100])  # warm every code path first
    before = rss_bytes(_pid(target))
    seal_samples(target.endpoint, target.tls, names[100:])  # one cache entry per key
    after = rss_bytes(_pid(target))
    return {
        "rss_before": before,
        "rss_after": after,
        "bytes_per_key": (after - before) / (keys - 100),
    }


def _rss_per_connection(target: Target, count: int) -> dict[str, float]:
    before = rss_bytes(_pid(target))

    async def hold() -> int:
        context = client_context(target.tls)
        opened = [await _open_used(target.endpoint, context) for _ in range(count)]
        await asyncio.sleep(0.5)  # let the server settle its per-connection state
        during = rss_bytes(_pid(target))
        for connection in opened:
            connection.close()
        return during

    during = asyncio.run(hold())
    return {
        "rss_before": before,
        "rss_during": during,
        "bytes_per_connection": (during - before) / count,
    }


async def _open_used(endpoint: Endpoint, context: Any) -> Connection:
    connection = await Connection.open(endpoint, context)
    await connection.request(build_request("GET", "/version", endpoint.authority))
    return connection


async def _traced_bytes_per_entry(keys: int) -> float:
    store = MemoryKeystore()
    for index in range(keys):
        await store.create(f"k{index}", encode_key_version(generate_key_version("bench")))
    cache: KeyCache[Any] = KeyCache(store, parse_key_version, CacheSettings(max_keys=keys * 2))
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for index in range(keys):
            await cache.get(f"k{index}")
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    await cache.aclose()
    return grown / keys


def memory_table(result: dict[str, Any]) -> str:
    keys, connections = f"{result['keys']:,}", result["connections"]
    rows = ["| quantity | mlockall on | mlockall off |", "|---|---:|---:|"]

    def row(title: str, field: str, unit: str) -> None:
        values = [result[f"{label}_{field}"][unit] for label in ("aiokes", "aiokes_no_mlock")]
        rows.append(f"| {title} | " + " | ".join(f"{v:,.0f} B" for v in values) + " |")

    row(f"aiokes RSS growth per cached key ({keys} keys)", "rss_per_cached_key", "bytes_per_key")
    row(
        f"aiokes RSS growth per idle mTLS connection ({connections})",
        "rss_per_idle_connection",
        "bytes_per_connection",
    )
    locked = [result[f"{label}_locked_kib"] for label in ("aiokes", "aiokes_no_mlock")]
    rows.append(f"| aiokes VmLck at start | {locked[0]:,} KiB | {locked[1]:,} KiB |")
    base = result["baseline_rss_per_idle_connection"]["bytes_per_connection"]
    rows.append(
        f"| baseline RSS growth per idle mTLS connection (no mlockall) | - | {base:,.0f} B |"
    )
    traced = result["keycache_tracemalloc_per_key"]
    rows.append(
        f"| KeyCache entry, tracemalloc (decoded record + bookkeeping) | {traced:,.0f} B | |"
    )
    return "\n".join(rows)
