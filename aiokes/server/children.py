"""What runs in the processes the supervisor (:mod:`aiokes.server.supervisor`) forks: a worker,
which serves clients on the inherited listener, or the key keeper (:mod:`aiokes.keeper`).

A child reports to the supervisor through a pipe in two-byte messages, kind and worker index
(:data:`KEEPER` for the keeper): ready, reloaded, reload failed, and a heartbeat for the
systemd watchdog. Writes that small are atomic on a pipe, so the children share one.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import signal
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiokes.api.call import Services
from aiokes.config import ServerConfig, load_config
from aiokes.keeper.client import KeeperKeys
from aiokes.keeper.service import Keeper, run_keeper
from aiokes.metrics import MetricsTable
from aiokes.server.memory_lock import lock_memory
from aiokes.server.process import Server, run_event_loop

__all__ = [
    "HEARTBEAT",
    "HEARTBEAT_INTERVAL",
    "KEEPER",
    "READY",
    "RELOADED",
    "RELOAD_FAILED",
    "Group",
    "Shared",
    "keeper_main",
    "worker_main",
]

READY, RELOADED, RELOAD_FAILED, HEARTBEAT = b"r", b"h", b"f", b"b"
HEARTBEAT_INTERVAL = 1.0
KEEPER = 255  # the keeper's index in reports; workers are 0 to 254
_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15


@dataclass(slots=True)
class Shared:
    """What every worker inherits from the supervisor. ``channels`` holds the worker end of
    each slot's channel (the supervisor keeps them for restarted workers) and, until the
    keeper is forked, the keeper ends; a keeper restart replaces them all."""

    sock: socket.socket
    context: ssl.SSLContext
    table: MetricsTable
    report_w: int
    channels: list[tuple[socket.socket | None, socket.socket]]
    heartbeat_interval: float = HEARTBEAT_INTERVAL


@dataclass(frozen=True, slots=True)
class Group:
    """What the supervisor runs: its config, how a reload gets one, and how many workers."""

    config: ServerConfig
    workers: int
    reload_config: Callable[[], ServerConfig] | None


def worker_main(group: Group, shared: Shared, index: int, supervisor_pid: int) -> int:
    _reset_signals()
    _name_process(b"aiokes-worker")
    _stop_with_parent(supervisor_pid)
    lock_memory()  # locks are not inherited across fork; the banner reported the outcome
    channel = shared.channels[index][1]
    for _, worker_end in shared.channels:
        if worker_end is not channel:
            worker_end.close()
    services = Services(metrics=shared.table.worker(index))
    keys = KeeperKeys(
        channel, audit_stream=services.audit_stream, error_stream=services.error_stream
    )
    services.keys = keys
    server = Server(
        group.config,
        sock=shared.sock,
        ssl_context=shared.context,
        services=services,
        reload_config=group.reload_config,
    )

    async def serve(on_ready: Callable[[], None], on_reload: Callable[[bool], None]) -> None:
        keys.start()
        await server.serve_forever(on_ready=on_ready, on_reload=on_reload)

    return _run_child(f"worker {index}", index, shared, serve)


def keeper_main(group: Group, shared: Shared, supervisor_pid: int) -> int:
    _reset_signals()
    _name_process(b"aiokes-keeper")
    _stop_with_parent(supervisor_pid)
    lock_memory()
    shared.sock.close()  # the keeper serves no clients
    for _, worker_end in shared.channels:
        worker_end.close()
    config = group.config
    keeper = Keeper(
        config,
        [keeper_end for keeper_end, _ in shared.channels if keeper_end is not None],
        metrics=shared.table.worker(group.workers),
        reload_config=group.reload_config or (lambda: load_config(config.file)),
    )

    async def serve(on_ready: Callable[[], None], on_reload: Callable[[bool], None]) -> None:
        await run_keeper(keeper, on_ready=on_ready, on_reload=on_reload)

    return _run_child("key keeper", KEEPER, shared, serve)


def _run_child(
    label: str,
    index: int,
    shared: Shared,
    serve: Callable[[Callable[[], None], Callable[[bool], None]], Awaitable[None]],
) -> int:
    """Run a forked child's event loop: ``serve`` with the hooks that report readiness and
    reloads to the supervisor, and a heartbeat for the watchdog; the child's exit status."""

    def report(kind: bytes) -> None:
        os.write(shared.report_w, kind + bytes([index]))

    async def main() -> None:
        heartbeat = asyncio.create_task(_heartbeat(report, shared.heartbeat_interval))
        try:
            await serve(lambda: report(READY), lambda ok: report(RELOADED if ok else RELOAD_FAILED))
        finally:
            heartbeat.cancel()

    try:
        run_event_loop(main())
    except Exception as exc:  # the supervisor logs the exit status; say why here
        print(f"aiokes {label}: {exc}", file=sys.stderr)
        return 1
    return 0


def _reset_signals() -> None:
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)


async def _heartbeat(report: Callable[[bytes], None], interval: float) -> None:
    """Proves to the supervisor that this worker's event loop runs (for the watchdog)."""
    while True:
        report(HEARTBEAT)
        await asyncio.sleep(interval)


def _name_process(name: bytes) -> None:
    """Name the process as ps and /proc/<pid>/comm show it (``aiokes-keeper``, ...)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_NAME, ctypes.c_char_p(name[:15]))


def _stop_with_parent(supervisor_pid: int) -> None:
    """Have the kernel send SIGTERM to this worker when the supervisor dies, even by SIGKILL:
    an orphaned worker would keep serving a config nobody manages any more."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != supervisor_pid:  # the supervisor died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
