"""Several worker processes on one listening socket: aiokes on every core, ONE KES server.

The supervisor (the process systemd starts) builds the TLS context and the listening socket,
one private channel per worker slot, then forks the key keeper (:mod:`aiokes.keeper`, the
owner of the keystore and of the server's one key cache) and the workers, which inherit the
listener and their slot's channel. Workers keep coherent copies of keys and ask the keeper
on a miss and for every write (docs/workers.md has the whole design and its failure cases).

Building the ``SSLContext`` before forking gives every worker the same session-ticket keys,
so a client resumes its TLS session on whichever worker accepts its next connection. The
workers share a table of metric counters (:class:`~aiokes.metrics.MetricsTable`) so that
``/v1/metrics`` shows the whole server.

The supervisor forwards SIGHUP (reload) and SIGTERM/SIGINT (graceful stop) to every worker
and the keeper, restarts a worker that dies (in the same slot, on the same channel; the
keeper drops the dead worker from its broadcasts through a pidfd), restarts the keeper *and
every worker* when the keeper dies (their copies could not be kept coherent any more), and
pings the systemd watchdog only while every worker sends
heartbeats. It runs no event loop: it waits on a self-pipe that signals wake and on a pipe
through which workers report readiness, reloads and heartbeats (two-byte messages: kind and
worker index, 255 for the keeper; writes that small are atomic on a pipe).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import select
import signal
import socket
import ssl
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiokes import systemd
from aiokes.api.call import Services
from aiokes.config import ServerConfig, load_config
from aiokes.errors import AiokesError
from aiokes.keeper import Keeper, run_keeper
from aiokes.keeper_channel import channel_pair
from aiokes.keeper_client import KeeperKeys
from aiokes.log import error_logger
from aiokes.memory_lock import lock_memory
from aiokes.metrics import MetricsTable
from aiokes.server import (
    SHUTDOWN_TIMEOUT,
    Server,
    listen_socket,
    parse_address,
    run_event_loop,
    tls_context,
)

__all__ = ["Hooks", "Supervisor"]

_READY, _RELOADED, _RELOAD_FAILED, _HEARTBEAT = b"r", b"h", b"f", b"b"
_HEARTBEAT_INTERVAL = 1.0
_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15
_START_TIMEOUT = 120.0  # a worker connecting to a slow keystore may take a while
_FAST_DEATH = 2.0  # a worker dying this soon after start counts as a crash loop
_MAX_FAST_DEATHS = 5
_MAX_WORKERS = 254  # the worker index travels as one byte; 255 is the keeper
_KEEPER = 255


@dataclass(frozen=True, slots=True)
class Hooks:
    """What the supervisor tells its caller (banner, systemd notifications)."""

    ready: Callable[[int], None] = lambda port: None
    reloading: Callable[[], None] = lambda: None
    reloaded: Callable[[bool], None] = lambda succeeded: None
    stopping: Callable[[], None] = lambda: None


@dataclass(slots=True)
class _Shared:
    """What every worker inherits from the supervisor. ``channels`` holds the worker end of
    each slot's channel (the supervisor keeps them for restarted workers) and, until the
    keeper is forked, the keeper ends; a keeper restart replaces them all."""

    sock: socket.socket
    context: ssl.SSLContext
    table: MetricsTable
    report_w: int
    channels: list[tuple[socket.socket | None, socket.socket]]


class Supervisor:
    def __init__(
        self,
        config: ServerConfig,
        *,
        workers: int,
        address: str | None = None,
        reload_config: Callable[[], ServerConfig] | None = None,
    ) -> None:
        if not 1 <= workers <= _MAX_WORKERS:
            raise AiokesError(f"invalid number of workers {workers}: 1 to {_MAX_WORKERS}")
        self.config = config
        self.workers = workers
        self.address = parse_address(address or config.address)
        self.reload_config = reload_config
        self._pids: dict[int, int] = {}  # pid -> worker index
        self._started: dict[int, float] = {}  # worker index -> start time
        self._fast_deaths = 0
        self._starting = workers + 1  # and the keeper
        self._reloads_pending = 0
        self._reload_ok = True
        self._heartbeats: set[int] = set()  # workers heard from since the last watchdog ping

    def run(self, hooks: Hooks) -> int:
        """Serve until SIGTERM/SIGINT; the exit status for the process."""
        report_r, report_w = os.pipe()
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        shared = _Shared(
            listen_socket(self.address),
            tls_context(self.config),
            MetricsTable(self.workers, helpers=1),
            report_w,
            [],
        )
        signal.set_wakeup_fd(wake_w)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(signum, lambda *_: None)  # the wake-up fd carries the signal number
        try:
            self._spawn_group(shared)
            return self._supervise(hooks, shared, report_r, wake_r)
        finally:
            signal.set_wakeup_fd(-1)
            self._kill_all()

    def _supervise(self, hooks: Hooks, shared: _Shared, report_r: int, wake_r: int) -> int:
        deadline = time.monotonic() + _START_TIMEOUT
        watchdog = systemd.Watchdog()
        while True:
            readable, _, _ = select.select([wake_r, report_r], [], [], _timeout(deadline, watchdog))
            if self._starting and time.monotonic() >= deadline:
                raise AiokesError(f"workers did not start within {_START_TIMEOUT:.0f}s")
            if report_r in readable:
                self._read_reports(os.read(report_r, 4096), hooks, shared)
            # Ping only while every worker shows signs of life: a hung worker then makes
            # systemd restart the service.
            if watchdog.timeout() == 0 and self._heartbeats >= set(self._pids.values()):
                watchdog.ping_if_due()
                self._heartbeats.clear()
            if wake_r in readable:
                for signum in os.read(wake_r, 4096):
                    code = self._on_signal(signum, hooks, shared)
                    if code is not None:
                        return code

    def _read_reports(self, data: bytes, hooks: Hooks, shared: _Shared) -> None:
        for offset in range(0, len(data) - 1, 2):
            kind, index = data[offset : offset + 1], data[offset + 1]
            if kind == _HEARTBEAT:
                self._heartbeats.add(index)
            elif kind == _READY and self._starting:
                self._starting -= 1
                if self._starting == 0:
                    hooks.ready(shared.sock.getsockname()[1])
            elif kind in (_RELOADED, _RELOAD_FAILED) and self._reloads_pending:
                self._reloads_pending -= 1
                self._reload_ok = self._reload_ok and kind == _RELOADED
                if self._reloads_pending == 0:
                    hooks.reloaded(self._reload_ok)

    def _on_signal(self, signum: int, hooks: Hooks, shared: _Shared) -> int | None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            hooks.stopping()
            return self._stop()
        if signum == signal.SIGHUP:
            hooks.reloading()
            self._reloads_pending, self._reload_ok = len(self._pids), True
            self._signal_all(signal.SIGHUP)
        elif signum == signal.SIGCHLD:
            failure = self._reap_and_restart(shared)
            if failure is not None:
                error_logger.error("%s", failure)
                self._stop()
                return 1
        return None

    def _spawn_group(self, shared: _Shared) -> None:
        """Fresh channels, the keeper, then every worker."""
        for _, worker_end in shared.channels:
            worker_end.close()
        shared.channels = [channel_pair() for _ in range(self.workers)]
        self._spawn(_KEEPER, shared)
        for index, (keeper_end, worker_end) in enumerate(shared.channels):
            if keeper_end is not None:  # only the keeper holds these: its death is their EOF
                keeper_end.close()
            shared.channels[index] = (None, worker_end)
        for index in range(self.workers):
            self._spawn(index, shared)

    def _spawn(self, index: int, shared: _Shared) -> None:
        supervisor_pid = os.getpid()
        pid = os.fork()
        if pid == 0:  # the keeper or a worker
            code = 1
            try:
                if index == _KEEPER:
                    code = _keeper_main(self, shared, supervisor_pid)
                else:
                    code = _worker_main(self, shared, index, supervisor_pid)
            finally:
                os._exit(code)
        self._pids[pid] = index
        self._started[index] = time.monotonic()

    def _reap_and_restart(self, shared: _Shared) -> str | None:
        while self._pids:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return None
            index = self._pids.pop(pid, None)
            if index is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            if self._starting:
                return f"worker {index} exited during start-up (status {code})"
            lived = time.monotonic() - self._started[index]
            self._fast_deaths = self._fast_deaths + 1 if lived < _FAST_DEATH else 0
            if self._fast_deaths >= _MAX_FAST_DEATHS:
                return f"workers keep dying right after start (last status {code}); giving up"
            if index == _KEEPER:
                error_logger.error(
                    "key keeper (pid %d) died, status %s; restarting it and every worker",
                    pid,
                    code,
                )
                self._kill_all()
                self._spawn_group(shared)
                continue
            error_logger.error("worker %d (pid %d) died, status %s; restarting", index, pid, code)
            self._spawn(index, shared)
        return None

    def _stop(self) -> int:
        """Workers first (draining requests may still need the keeper), then the keeper."""
        deadline = time.monotonic() + SHUTDOWN_TIMEOUT + 5
        self._signal_all(signal.SIGTERM, keeper=False)
        self._wait_for(lambda: set(self._pids.values()) <= {_KEEPER}, deadline)
        self._signal_all(signal.SIGTERM)
        self._wait_for(lambda: not self._pids, deadline + 5)
        return 0 if not self._pids else 1

    def _wait_for(self, done: Callable[[], bool], deadline: float) -> None:
        while not done() and time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid:
                self._pids.pop(pid, None)
            else:
                time.sleep(0.05)  # the supervisor is a plain process: no event loop to block

    def _signal_all(self, signum: int, *, keeper: bool = True) -> None:
        for pid, index in list(self._pids.items()):
            if keeper or index != _KEEPER:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signum)

    def _kill_all(self) -> None:
        self._signal_all(signal.SIGKILL)
        for pid in list(self._pids):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self._pids.clear()


def _timeout(deadline: float, watchdog: systemd.Watchdog) -> float | None:
    """How long select may wait: until the start-up deadline or the next watchdog ping (when
    that is overdue, heartbeats still missing wake select as they arrive)."""
    due = watchdog.timeout()
    timeouts = [] if due is None else [due or _HEARTBEAT_INTERVAL]
    if deadline > time.monotonic():
        timeouts.append(deadline - time.monotonic())
    return max(0.0, min(timeouts)) if timeouts else None


def _worker_main(supervisor: Supervisor, shared: _Shared, index: int, supervisor_pid: int) -> int:
    _reset_signals()
    _name_process(b"aiokes-worker")
    _stop_with_parent(supervisor_pid)
    lock_memory()  # locks are not inherited across fork; the banner reported the outcome
    channel = shared.channels[index][1]
    for _, worker_end in shared.channels:
        if worker_end is not channel:
            worker_end.close()
    services = Services(metrics=shared.table.worker(index))
    keys = KeeperKeys(channel, services)
    services.keys = keys
    server = Server(
        supervisor.config,
        sock=shared.sock,
        ssl_context=shared.context,
        services=services,
        reload_config=supervisor.reload_config,
    )

    async def serve(on_ready: Callable[[], None], on_reload: Callable[[bool], None]) -> None:
        keys.start()
        await server.serve_forever(on_ready=on_ready, on_reload=on_reload)

    return _run_child(f"worker {index}", index, shared.report_w, serve)


def _keeper_main(supervisor: Supervisor, shared: _Shared, supervisor_pid: int) -> int:
    _reset_signals()
    _name_process(b"aiokes-keeper")
    _stop_with_parent(supervisor_pid)
    lock_memory()
    shared.sock.close()  # the keeper serves no clients
    for _, worker_end in shared.channels:
        worker_end.close()
    config = supervisor.config
    keeper = Keeper(
        config,
        [keeper_end for keeper_end, _ in shared.channels if keeper_end is not None],
        metrics=shared.table.worker(supervisor.workers),
        reload_config=supervisor.reload_config or (lambda: load_config(config.file)),
    )

    async def serve(on_ready: Callable[[], None], on_reload: Callable[[bool], None]) -> None:
        await run_keeper(keeper, on_ready=on_ready, on_reload=on_reload)

    return _run_child("key keeper", _KEEPER, shared.report_w, serve)


def _run_child(
    label: str,
    index: int,
    report_w: int,
    serve: Callable[[Callable[[], None], Callable[[bool], None]], Awaitable[None]],
) -> int:
    """Run a forked child's event loop: ``serve`` with the hooks that report readiness and
    reloads to the supervisor, and a heartbeat for the watchdog; the child's exit status."""

    def report(kind: bytes) -> None:
        os.write(report_w, kind + bytes([index]))

    async def main() -> None:
        heartbeat = asyncio.create_task(_heartbeat(report))
        try:
            await serve(
                lambda: report(_READY), lambda ok: report(_RELOADED if ok else _RELOAD_FAILED)
            )
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


async def _heartbeat(report: Callable[[bytes], None]) -> None:
    """Proves to the supervisor that this worker's event loop runs (for the watchdog)."""
    while True:
        report(_HEARTBEAT)
        await asyncio.sleep(_HEARTBEAT_INTERVAL)


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
