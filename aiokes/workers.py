"""Several worker processes on one listening socket: aiokes on every core.

The supervisor (the process systemd starts) builds the TLS context and the listening socket,
then forks the workers, which inherit both. Building the ``SSLContext`` before forking gives
every worker the same session-ticket keys, so a client resumes its TLS session on whichever
worker accepts its next connection. The workers share a table of metric counters
(:class:`~aiokes.metrics.MetricsTable`) so that ``/v1/metrics`` shows the whole server.

The supervisor forwards SIGHUP (reload) and SIGTERM/SIGINT (graceful stop) to every worker and
restarts a worker that dies. It runs no event loop of its own: it waits on a self-pipe that
signals wake and on a pipe the workers report readiness and reloads through.
"""

from __future__ import annotations

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
from collections.abc import Callable
from dataclasses import dataclass

from aiokes.api.call import Services
from aiokes.config import ServerConfig
from aiokes.errors import AiokesError
from aiokes.log import error_logger
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

_READY, _RELOADED, _RELOAD_FAILED = b"r", b"h", b"f"
_PR_SET_PDEATHSIG = 1
_START_TIMEOUT = 120.0  # a worker connecting to a slow keystore may take a while
_FAST_DEATH = 2.0  # a worker dying this soon after start counts as a crash loop
_MAX_FAST_DEATHS = 5


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
        address: str | None = None,
        reload_config: Callable[[], ServerConfig] | None = None,
    ) -> None:
        if workers < 1:
            raise AiokesError(f"invalid number of workers {workers}: at least 1")
        self.config = config
        self.workers = workers
        self.address = parse_address(address or config.address)
        self.reload_config = reload_config
        self._pids: dict[int, int] = {}  # pid -> worker index
        self._started: dict[int, float] = {}  # worker index -> start time
        self._fast_deaths = 0
        self._stopping = False

    def run(self, hooks: Hooks) -> int:
        """Serve until SIGTERM/SIGINT; the exit status for the process."""
        context = tls_context(self.config)
        sock = listen_socket(self.address, reuse_port=False)
        table = MetricsTable(self.workers)
        report_r, report_w = os.pipe()
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        self._install_signals(wake_w)
        for index in range(self.workers):
            self._spawn(index, sock, context, table, report_w)
        try:
            return self._supervise(hooks, sock, context, table, report_r, report_w, wake_r)
        finally:
            signal.set_wakeup_fd(-1)
            self._terminate_all()

    def _install_signals(self, wake_w: int) -> None:
        signal.set_wakeup_fd(wake_w)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(signum, lambda *_: None)  # the wake-up fd carries the signal number

    def _supervise(
        self,
        hooks: Hooks,
        sock: socket.socket,
        context: ssl.SSLContext,
        table: MetricsTable,
        report_r: int,
        report_w: int,
        wake_r: int,
    ) -> int:
        starting, reloads_pending, reload_ok = self.workers, 0, True
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            timeout = max(0.0, deadline - time.monotonic()) if starting else None
            readable, _, _ = select.select([wake_r, report_r], [], [], timeout)
            if starting and not readable:
                raise AiokesError(f"workers did not start within {_START_TIMEOUT:.0f}s")
            if report_r in readable:
                for byte in os.read(report_r, 4096):
                    message = bytes([byte])
                    if message == _READY and starting:
                        starting -= 1
                        if starting == 0:
                            hooks.ready(sock.getsockname()[1])
                    elif message in (_RELOADED, _RELOAD_FAILED) and reloads_pending:
                        reloads_pending -= 1
                        reload_ok = reload_ok and message == _RELOADED
                        if reloads_pending == 0:
                            hooks.reloaded(reload_ok)
            if wake_r not in readable:
                continue
            for signum in os.read(wake_r, 4096):
                if signum in (signal.SIGTERM, signal.SIGINT):
                    hooks.stopping()
                    return self._stop()
                if signum == signal.SIGHUP:
                    hooks.reloading()
                    reloads_pending, reload_ok = len(self._pids), True
                    self._signal_all(signal.SIGHUP)
                if signum == signal.SIGCHLD:
                    failure = self._reap_and_restart(sock, context, table, report_w, starting)
                    if failure is not None:
                        error_logger.error("%s", failure)
                        self._stop()
                        return 1

    def _spawn(
        self,
        index: int,
        sock: socket.socket,
        context: ssl.SSLContext,
        table: MetricsTable,
        report_w: int,
    ) -> None:
        supervisor_pid = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                code = _worker_main(self, sock, context, table, index, report_w, supervisor_pid)
            finally:
                os._exit(code)
        self._pids[pid] = index
        self._started[index] = time.monotonic()

    def _reap_and_restart(
        self,
        sock: socket.socket,
        context: ssl.SSLContext,
        table: MetricsTable,
        report_w: int,
        starting: int,
    ) -> str | None:
        while self._pids:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return None
            index = self._pids.pop(pid, None)
            if index is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            if starting:
                return f"worker {index} exited during start-up (status {code})"
            lived = time.monotonic() - self._started[index]
            self._fast_deaths = self._fast_deaths + 1 if lived < _FAST_DEATH else 0
            if self._fast_deaths >= _MAX_FAST_DEATHS:
                return f"workers keep dying right after start (last status {code}); giving up"
            error_logger.error(
                "worker %d (pid %d) died with status %s; restarting", index, pid, code
            )
            self._spawn(index, sock, context, table, report_w)
        return None

    def _stop(self) -> int:
        self._stopping = True
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + SHUTDOWN_TIMEOUT + 5
        while self._pids and time.monotonic() < deadline:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid:
                self._pids.pop(pid, None)
            else:
                time.sleep(0.05)  # the supervisor is a plain process: no event loop to block
        return 0 if not self._pids else 1

    def _signal_all(self, signum: int) -> None:
        for pid in list(self._pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def _terminate_all(self) -> None:
        self._signal_all(signal.SIGKILL)
        for pid in list(self._pids):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self._pids.clear()


def _worker_main(
    supervisor: Supervisor,
    sock: socket.socket,
    context: ssl.SSLContext,
    table: MetricsTable,
    index: int,
    report_w: int,
    supervisor_pid: int,
) -> int:
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    _stop_with_parent(supervisor_pid)
    server = Server(
        supervisor.config,
        sock=sock,
        ssl_context=context,
        services=Services(metrics=table.worker(index)),
        reload_config=supervisor.reload_config,
    )

    def report(message: bytes) -> None:
        os.write(report_w, message)

    try:
        run_event_loop(
            server.serve_forever(
                on_ready=lambda: report(_READY),
                on_reload=lambda ok: report(_RELOADED if ok else _RELOAD_FAILED),
            )
        )
    except Exception as exc:  # the supervisor logs the exit status; say why here
        print(f"aiokes worker {index}: {exc}", file=sys.stderr)
        return 1
    return 0


def _stop_with_parent(supervisor_pid: int) -> None:
    """Have the kernel send SIGTERM to this worker when the supervisor dies, even by SIGKILL:
    an orphaned worker would keep serving a config nobody manages any more."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != supervisor_pid:  # the supervisor died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
