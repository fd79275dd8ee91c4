"""One serving process: listener, TLS, state snapshot, reload and graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import ssl
from collections.abc import Callable, Coroutine
from typing import Any

from aiokes.api.call import Services
from aiokes.api.dispatch import Dispatcher
from aiokes.api.state import ServerState, build_state
from aiokes.api.table import default_routes
from aiokes.config import ListenAddress, ServerConfig, load_config
from aiokes.errors import AiokesError
from aiokes.http import Limits, Listener
from aiokes.log import configure_logging, error_logger
from aiokes.server.listener import listen_socket, tls_context
from aiokes.server.systemd import watchdog_task
from aiokes.tls import load_server_certificate

__all__ = ["Server", "run_event_loop"]

KEEPALIVE_TIMEOUT = 90.0  # KES's idle timeout
HEADER_TIMEOUT = 5.0  # KES's ReadHeaderTimeout (a request's head; also the TLS handshake)
SHUTDOWN_TIMEOUT = 10.0  # in-flight requests get this long to finish on SIGTERM
TLS_REFRESH_INTERVAL = 15 * 60.0  # as KES
CACHE_STATS_INTERVAL = 1.0  # how stale another worker's cache counters may be in /v1/metrics
RETIRE_TIMEOUT = 15.0  # KES's default route timeout: no request runs longer on an old state


class Server:
    """One serving process. ``start`` listens, ``reload`` swaps the state, ``stop`` drains."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        address: ListenAddress | None = None,
        sock: socket.socket | None = None,
        services: Services | None = None,
        ssl_context: ssl.SSLContext | None = None,
        reload_config: Callable[[], ServerConfig] | None = None,
    ) -> None:
        """``address`` overrides the config's; ``reload_config`` gives the config a reload
        uses: by default the config file is read again (``--dev`` passes its generated config
        instead)."""
        self.config = config
        self._reload_config = reload_config or (lambda: load_config(self.config.file))
        self.address = address or config.address
        self.services = services or Services()
        self._sock = sock
        self._port = self.address.port
        self._ssl_context = ssl_context
        self.http_limits = Limits(HEADER_TIMEOUT, KEEPALIVE_TIMEOUT)
        self._listener: Listener | None = None
        self._dispatcher: Dispatcher | None = None
        self._reload_lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()
        self._background: list[asyncio.Task[None]] = []

    @property
    def state(self) -> ServerState:
        assert self._dispatcher is not None, "server not started"
        return self._dispatcher.state

    @property
    def port(self) -> int:
        """The port actually listened on (useful with port 0)."""
        return self._port

    async def start(self) -> None:
        self._configure_logging(self.config)
        if self._ssl_context is None:
            self._ssl_context = tls_context(self.config)
        state = await build_state(self.config, default_routes(), shared_keys=self.services.keys)
        self._dispatcher = Dispatcher(state, self.services)
        if self._sock is None:
            self._sock = listen_socket(self.address)
        self._port = int(self._sock.getsockname()[1])
        self._listener = Listener(
            self._dispatcher,
            limits=self.http_limits,
            on_stalled=self.services.metrics.request_stalled,
        )
        await self._listener.start(self._sock, self._ssl_context)
        self._background = [
            asyncio.create_task(self._publish_cache_stats()),
            asyncio.create_task(self._refresh_certificate()),
        ]

    async def _publish_cache_stats(self) -> None:
        """Keep this worker's cache counters in the shared metrics table fresh, so that any
        worker answering /v1/metrics or /v1/status shows the whole server."""
        while True:
            await asyncio.sleep(CACHE_STATS_INTERVAL)
            if self._dispatcher is not None:
                self.services.metrics.publish_cache(self._dispatcher.state.master_keys.stats())

    async def reload(self, config: ServerConfig | None = None) -> bool:
        """Re-read the config file and swap state atomically; on any error keep the old state.

        In-flight requests finish on the snapshot they started with; the old keystore and cache
        are closed once the new ones serve.
        """
        async with self._reload_lock:
            try:
                config = config or self._reload_config()
                state = await build_state(config, default_routes(), shared_keys=self.services.keys)
            except (AiokesError, OSError) as exc:
                error_logger.error("reload failed, still serving the previous config: %s", exc)
                return False
            self.reload_certificate(config)
            old = self.state
            assert self._dispatcher is not None
            self._dispatcher.state = state
            self.config = config
            self._configure_logging(config)
            error_logger.info("reloaded the config file '%s'", config.file)
            retiring = asyncio.create_task(self._retire(old))
            self._retiring.add(retiring)
            retiring.add_done_callback(self._retiring.discard)
            return True

    async def _retire(self, old: ServerState) -> None:
        """Close a replaced state once the requests still running on it are done (bounded by
        the longest route timeout, after which they would have been answered anyway)."""
        try:
            async with asyncio.timeout(RETIRE_TIMEOUT):
                await old.activity.wait_idle()
        except TimeoutError:
            error_logger.warning(
                "closing the previous keystore with %d requests still running on it",
                old.activity.running,
            )
        await old.aclose()

    def reload_certificate(self, config: ServerConfig | None = None) -> bool:
        """Re-read the server certificate and key (a renewed certificate at the same path).

        New connections use it; established ones keep theirs, and the session-ticket keys do
        not change. The client-certificate mode is part of the listener and needs a restart.
        A broken file keeps the previous certificate.
        """
        assert self._ssl_context is not None
        tls = (config or self.config).tls
        try:
            load_server_certificate(self._ssl_context, tls.cert_file, tls.key_file, tls.password)
        except AiokesError as exc:
            error_logger.error("keeping the previous TLS certificate: %s", exc)
            return False
        return True

    async def _refresh_certificate(self) -> None:
        """KES re-reads its TLS files every 15 minutes, so a renewed certificate is picked
        up without a reload; only when the files changed, to keep this cheap."""
        seen = _modified(self.config)
        while True:
            await asyncio.sleep(TLS_REFRESH_INTERVAL)
            now = _modified(self.config)
            if now != seen and self.reload_certificate():
                error_logger.info("re-read the TLS certificate '%s'", self.config.tls.cert_file)
            seen = now

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (bounded), close the keystore."""
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background = []
        self.services.audit_stream.close()  # log streams never end on their own
        self.services.error_stream.close()
        if self._listener is not None:
            await self._listener.shutdown(SHUTDOWN_TIMEOUT)
            self._listener = None
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
        if self._dispatcher is not None:
            await self._dispatcher.state.aclose()
            self._dispatcher = None
        self.services.audit.flush()

    async def serve_forever(
        self,
        on_ready: Callable[[], None] | None = None,
        on_reload: Callable[[bool], None] | None = None,
        *,
        on_reloading: Callable[[], None] | None = None,
        on_stopping: Callable[[], None] | None = None,
        watchdog: bool = False,
    ) -> None:
        """Start, handle SIGHUP (reload) and SIGTERM/SIGINT (graceful stop) until stopped.

        ``on_ready`` runs once the listener accepts connections, ``on_reloading`` and
        ``on_reload`` (with whether it succeeded) around every reload, ``on_stopping`` when a
        stop begins: the worker supervisor and systemd use them. ``watchdog`` pings systemd's
        watchdog from this event loop (single-process mode; workers leave it to the supervisor).
        """
        await self.start()
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stopping.set)
        loop.add_signal_handler(signal.SIGINT, stopping.set)
        background: set[asyncio.Task[None]] = set()  # keep references until each finishes

        async def reload_and_report() -> None:
            succeeded = await self.reload()
            if on_reload is not None:
                on_reload(succeeded)

        def reload_in_background() -> None:
            if on_reloading is not None:
                on_reloading()
            task = asyncio.create_task(reload_and_report())
            background.add(task)
            task.add_done_callback(background.discard)

        loop.add_signal_handler(signal.SIGHUP, reload_in_background)
        if on_ready is not None:
            on_ready()
        pinger = asyncio.create_task(watchdog_task()) if watchdog else None
        try:
            await stopping.wait()
        finally:
            if pinger is not None:
                pinger.cancel()
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                with contextlib.suppress(ValueError, RuntimeError):
                    loop.remove_signal_handler(signum)
            if on_stopping is not None:
                on_stopping()
            await self.stop()

    def _configure_logging(self, config: ServerConfig) -> None:
        log = config.log
        configure_logging(
            error_level=log.error_level,
            error_stream=self.services.error_stream,
            count_error=self.services.metrics.error_event,
            error_file=log.error_file,
        )
        self.services.audit.configure(log.audit_level, log.audit_file)


def run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop where it exists (asyncio elsewhere)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def _modified(config: ServerConfig) -> tuple[float, float]:
    """Modification times of the certificate and key files (0 when unreadable)."""

    def mtime(path: str) -> float:
        try:
            return os.stat(path).st_mtime
        except OSError:
            return 0.0

    return mtime(config.tls.cert_file), mtime(config.tls.key_file)
