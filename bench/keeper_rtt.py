"""What a cache miss costs a worker of a multi-process server: one round trip to the key
keeper (issue 10, point 4), and what a hit costs (no round trip).

    python -m bench.keeper_rtt [--rounds 5000]

A real keeper process (forked, its own event loop, an in-memory keystore) and a real worker
link (:class:`~aiokes.keeper.client.KeeperKeys`) on a ``SOCK_SEQPACKET`` socketpair, as the
supervisor sets them up. A miss is forced by dropping the worker's copy before each ``get``;
the keeper answers from its cache, so the figure is the round trip plus decoding the record
in the worker (which a miss of the single-process cache pays too), without keystore time;
the bare round trip (an in-memory keystore's status) and the decoding are timed apart. A
hit is timed on the worker's copy and, for comparison, on the single-process
:class:`~aiokes.cache.KeyCache`. Prints one JSON object.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import statistics
import sys
import time
from collections.abc import Callable

import click

from aiokes.cache import CacheSettings, KeyCache
from aiokes.config import ListenAddress, ServerConfig
from aiokes.config.schema import MemoryKeystoreConfig, TLSConfig
from aiokes.crypto import encode_key_version, generate_key_version, parse_key_version
from aiokes.keeper.channel import channel_pair
from aiokes.keeper.client import KeeperKeys
from aiokes.keeper.service import Keeper, run_keeper
from aiokes.keystore.memory import MemoryKeystore
from aiokes.log import LogStream
from aiokes.metrics import MetricsTable
from aiokes.server.process import run_event_loop

_CONFIG = ServerConfig(
    file="<bench>",
    address=ListenAddress("127.0.0.1", 0),
    admin_identity="bench",
    tls=TLSConfig(key_file="", cert_file=""),
    keystore=MemoryKeystoreConfig(),
)


def _keeper_process(sock: socket.socket) -> None:
    keeper = Keeper(
        _CONFIG, [sock], metrics=MetricsTable(1).worker(0), reload_config=lambda: _CONFIG
    )
    run_event_loop(run_keeper(keeper, on_ready=lambda: None, on_reload=lambda ok: None))


async def _measure(keys: KeeperKeys, rounds: int) -> dict[str, float]:
    record = encode_key_version(generate_key_version("bench"))
    await keys.create("rtt", record)
    await keys.get("rtt")
    misses = []
    for _ in range(rounds):
        keys._drop("rtt")  # force a miss: the copy goes, the keeper keeps it
        started = time.perf_counter()
        await keys.get("rtt")
        misses.append(time.perf_counter() - started)
    trips = []
    for _ in range(rounds):  # the bare round trip: an in-memory keystore's status
        started = time.perf_counter()
        await keys.status()
        trips.append(time.perf_counter() - started)
    decode = _per_call(lambda: parse_key_version(record), rounds // 10)
    hit = _per_call(lambda: keys.cached("rtt"), rounds * 20)
    single = KeyCache(MemoryKeystore(), parse_key_version, CacheSettings())
    await single.create("rtt", record)
    await single.get("rtt")
    single_hit = _per_call(lambda: single.cached("rtt"), rounds * 20)
    misses.sort()
    trips.sort()
    return {
        "rounds": rounds,
        "miss_median_us": round(statistics.median(misses) * 1e6, 1),
        "miss_p99_us": round(misses[int(len(misses) * 0.99)] * 1e6, 1),
        "miss_mean_us": round(statistics.fmean(misses) * 1e6, 1),
        "round_trip_median_us": round(statistics.median(trips) * 1e6, 1),
        "round_trip_p99_us": round(trips[int(len(trips) * 0.99)] * 1e6, 1),
        "decode_record_us": round(decode * 1e6, 1),
        "hit_worker_copy_ns": round(hit * 1e9, 1),
        "hit_single_process_cache_ns": round(single_hit * 1e9, 1),
    }


def _per_call(call: Callable[[], object], count: int) -> float:
    """Seconds per call, the best of five batches (the least disturbed by other load)."""
    best = math.inf
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(count):
            call()
        best = min(best, (time.perf_counter() - started) / count)
    return best


@click.command()
@click.option("--rounds", default=5000, show_default=True, type=click.IntRange(min=10))
def main(rounds: int) -> None:
    keeper_end, worker_end = channel_pair()
    pid = os.fork()
    if pid == 0:
        worker_end.close()
        code = 0
        try:
            _keeper_process(keeper_end)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    keeper_end.close()

    result: dict[str, float] = {}

    async def run() -> None:
        keys = KeeperKeys(worker_end, audit_stream=LogStream(), error_stream=LogStream())
        keys.start()
        try:
            result.update(await _measure(keys, rounds))
        finally:
            keys.close()

    try:
        run_event_loop(run())  # uvloop, as in a worker
    finally:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
