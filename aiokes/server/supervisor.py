"""Several worker processes on one listening socket: aiokes on every core, ONE KES server.

The supervisor (the process systemd starts) builds the TLS context and the listening socket,
one private channel per worker slot, then forks the key keeper (:mod:`aiokes.keeper`, the
owner of the keystore and of the server's one key cache) and the workers, which inherit the
listener and their slot's channel (:mod:`aiokes.server.children` is what runs in them).
Workers keep coherent copies of keys and ask the keeper on a miss and for every write
(docs/workers.md has the whole design and its failure cases).

Building the ``SSLContext`` before forking gives every worker the same session-ticket keys,
so a client resumes its TLS session on whichever worker accepts its next connection. The
workers share a table of metric counters (:class:`~aiokes.metrics.MetricsTable`) so that
``/v1/metrics`` shows the whole server.

The supervisor forwards SIGHUP (reload) and SIGTERM/SIGINT (graceful stop) to every worker
and the keeper, restarts a worker that dies (in the same slot, on the same channel; the
keeper drops the dead worker from its broadcasts through a pidfd), restarts the keeper *and
every worker* when the keeper dies (their copies could not be kept coherent any more), and
pings the systemd watchdog only while every worker sends heartbeats. It runs no event loop:
it waits on a self-pipe that signals wake and on the pipe through which the children report
readiness, reloads and heartbeats.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiokes.config import ListenAddress, ServerConfig
from aiokes.errors import ServerStartError
from aiokes.keeper.channel import channel_pair
from aiokes.log import error_logger
from aiokes.metrics import MetricsTable
from aiokes.server.children import (
    HEARTBEAT,
    HEARTBEAT_INTERVAL,
    KEEPER,
    READY,
    RELOAD_FAILED,
    RELOADED,
    Group,
    Shared,
    keeper_main,
    worker_main,
)
from aiokes.server.listener import listen_socket, tls_context
from aiokes.server.process import SHUTDOWN_TIMEOUT
from aiokes.server.systemd import Watchdog, watchdog_interval

__all__ = ["Hooks", "Supervisor"]

_START_TIMEOUT = 120.0  # a worker connecting to a slow keystore may take a while
_FAST_DEATH = 2.0  # a worker dying this soon after start counts as a crash loop
_MAX_FAST_DEATHS = 5
_MAX_WORKERS = KEEPER - 1  # the worker index travels as one byte; 255 is the keeper


@dataclass(frozen=True, slots=True)
class Hooks:
    """What the supervisor tells its caller (banner, systemd notifications)."""

    ready: Callable[[int], None] = lambda port: None
    reloading: Callable[[], None] = lambda: None
    reloaded: Callable[[bool], None] = lambda succeeded: None
    stopping: Callable[[], None] = lambda: None


class Supervisor:
    def __init__(
        self,
        config: ServerConfig,
        *,
        workers: int,
        address: ListenAddress | None = None,
        reload_config: Callable[[], ServerConfig] | None = None,
    ) -> None:
        if not 1 <= workers <= _MAX_WORKERS:
            raise ServerStartError(f"invalid number of workers {workers}: 1 to {_MAX_WORKERS}")
        self.config = config
        self.workers = workers
        self.address = address or config.address
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
        shared = Shared(
            listen_socket(self.address),
            tls_context(self.config),
            MetricsTable(self.workers, helpers=1),
            report_w,
            [],
            heartbeat_interval(watchdog_interval()),
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

    def _supervise(self, hooks: Hooks, shared: Shared, report_r: int, wake_r: int) -> int:
        deadline = time.monotonic() + _START_TIMEOUT
        watchdog = Watchdog()
        while True:
            readable, _, _ = select.select([wake_r, report_r], [], [], _timeout(deadline, watchdog))
            if self._starting and time.monotonic() >= deadline:
                raise ServerStartError(f"workers did not start within {_START_TIMEOUT:.0f}s")
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

    def _read_reports(self, data: bytes, hooks: Hooks, shared: Shared) -> None:
        for offset in range(0, len(data) - 1, 2):
            kind, index = data[offset : offset + 1], data[offset + 1]
            if kind == HEARTBEAT:
                self._heartbeats.add(index)
            elif kind == READY and self._starting:
                self._starting -= 1
                if self._starting == 0:
                    hooks.ready(shared.sock.getsockname()[1])
            elif kind in (RELOADED, RELOAD_FAILED) and self._reloads_pending:
                self._reloads_pending -= 1
                self._reload_ok = self._reload_ok and kind == RELOADED
                if self._reloads_pending == 0:
                    hooks.reloaded(self._reload_ok)

    def _on_signal(self, signum: int, hooks: Hooks, shared: Shared) -> int | None:
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

    def _spawn_group(self, shared: Shared) -> None:
        """Fresh channels, the keeper, then every worker."""
        for _, worker_end in shared.channels:
            worker_end.close()
        shared.channels = [channel_pair() for _ in range(self.workers)]
        self._spawn(KEEPER, shared)
        for index, (keeper_end, worker_end) in enumerate(shared.channels):
            if keeper_end is not None:  # only the keeper holds these: its death is their EOF
                keeper_end.close()
            shared.channels[index] = (None, worker_end)
        for index in range(self.workers):
            self._spawn(index, shared)

    def _spawn(self, index: int, shared: Shared) -> None:
        supervisor_pid = os.getpid()
        pid = os.fork()
        if pid == 0:  # the keeper or a worker
            code = 1
            try:
                group = Group(self.config, self.workers, self.reload_config)
                if index == KEEPER:
                    code = keeper_main(group, shared, supervisor_pid)
                else:
                    code = worker_main(group, shared, index, supervisor_pid)
            finally:
                os._exit(code)
        self._pids[pid] = index
        self._started[index] = time.monotonic()

    def _reap_and_restart(self, shared: Shared) -> str | None:
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
            if index == KEEPER:
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
        self._wait_for(lambda: set(self._pids.values()) <= {KEEPER}, deadline)
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
            if keeper or index != KEEPER:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signum)

    def _kill_all(self) -> None:
        self._signal_all(signal.SIGKILL)
        for pid in list(self._pids):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self._pids.clear()


def heartbeat_interval(watchdog: float | None) -> float:
    """How often each child reports that its loop runs. The supervisor pings systemd only
    after hearing from every child since its last ping, and pings every half watchdog
    interval: children must report at least twice as often, or a short ``WatchdogSec=``
    would see pings late and restart a healthy service."""
    return HEARTBEAT_INTERVAL if watchdog is None else min(HEARTBEAT_INTERVAL, watchdog / 4)


def _timeout(deadline: float, watchdog: Watchdog) -> float | None:
    """How long select may wait: until the start-up deadline or the next watchdog ping (when
    that is overdue, heartbeats still missing wake select as they arrive)."""
    due = watchdog.timeout()
    timeouts = [] if due is None else [due or HEARTBEAT_INTERVAL]
    if deadline > time.monotonic():
        timeouts.append(deadline - time.monotonic())
    return max(0.0, min(timeouts)) if timeouts else None
