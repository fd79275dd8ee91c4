"""systemd's readiness protocol (sd_notify) and watchdog, without a dependency.

A ``Type=notify`` service tells systemd about its life cycle by sending datagrams of
newline-separated ``KEY=value`` fields to the AF_UNIX socket named in ``$NOTIFY_SOCKET``
(a path, or ``@name`` for an abstract socket). See sd_notify(3) and systemd.service(5).
Outside systemd the variable is unset and every call here is a no-op.

    systemd.ready()       # the listener is up
    systemd.reloading()   # SIGHUP: re-reading the config...
    systemd.ready()       # ...done (or failed, and the old config still serves)
    systemd.stopping()    # SIGTERM: draining

Sending never raises: a service must not die because its supervisor's socket went away.
The helpers return nothing, so they fit callbacks typed ``Callable[[], None]`` (the worker
supervisor's :class:`~aiokes.server.supervisor.Hooks`); :func:`notify` says whether a
datagram went out.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time

__all__ = [
    "Watchdog",
    "notify",
    "ready",
    "reloading",
    "status",
    "stopping",
    "watchdog_interval",
    "watchdog_ping",
    "watchdog_task",
]

# systemd reads its notify socket at once; a full queue means PID 1 is stuck. Bound the wait
# so that a stuck supervisor cannot freeze the event loop these calls run on.
_SEND_TIMEOUT = 1.0


def notify(*fields: str) -> bool:
    """Send ``fields`` (``"READY=1"``, …) in one datagram; ``True`` if it was delivered.

    ``False`` when ``$NOTIFY_SOCKET`` is unset, unsupported or unreachable.
    """
    if not fields:
        raise ValueError("notify() needs at least one field")
    if any("\n" in field for field in fields):
        raise ValueError("a notify field must not contain a newline")
    address = _socket_address(os.environ.get("NOTIFY_SOCKET", ""))
    if address is None:
        return False
    return _send("\n".join(fields).encode(), address)


def ready() -> None:
    """The service is up: its listener accepts connections (again, after a reload)."""
    notify("READY=1")


def reloading() -> None:
    """The service is reloading its configuration; follow with :func:`ready` when done.

    ``MONOTONIC_USEC`` is required with ``RELOADING=1`` by ``Type=notify-reload``
    (systemd ≥ 253), which matches the message to the reload it requested.
    """
    notify("RELOADING=1", f"MONOTONIC_USEC={_monotonic_usec()}")


def stopping() -> None:
    """The service is shutting down (draining in-flight requests)."""
    notify("STOPPING=1")


def status(text: str) -> None:
    """A one-line status shown by ``systemctl status``; newlines become spaces."""
    notify("STATUS=" + " ".join(text.splitlines()))


def watchdog_interval() -> float | None:
    """Seconds within which systemd expects a watchdog ping, or ``None`` when the watchdog
    is off (``WatchdogSec=`` unset) or meant for another process (``$WATCHDOG_PID``)."""
    pid = os.environ.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None  # inherited by a child (a worker, say): only the main process pings
    usec = os.environ.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    return int(usec) / 1_000_000


def watchdog_ping() -> None:
    notify("WATCHDOG=1")


async def watchdog_task() -> None:
    """Ping the watchdog at half its interval until cancelled; returns at once when off.

    It runs on the event loop on purpose: a loop blocked for longer than ``WatchdogSec``
    stops the pings, and systemd restarts the service.
    """
    interval = watchdog_interval()
    if interval is None:
        return
    while True:
        watchdog_ping()
        await asyncio.sleep(interval / 2)


class Watchdog:
    """Watchdog pings for a process without an event loop (the worker supervisor's select
    loop): wait at most :meth:`timeout` seconds, then call :meth:`ping_if_due`.

    Ping only while the process is healthy: the supervisor should call ``ping_if_due`` only
    when every worker has shown a sign of life since the previous ping.
    """

    def __init__(self, interval: float | None = None) -> None:
        self.interval = watchdog_interval() if interval is None else interval
        self._due = time.monotonic()

    def timeout(self) -> float | None:
        """Seconds until the next ping is due (0 when overdue); ``None`` if the watchdog is off."""
        if self.interval is None:
            return None
        return max(0.0, self._due - time.monotonic())

    def ping_if_due(self) -> None:
        if self.interval is None or time.monotonic() < self._due:
            return
        watchdog_ping()
        self._due = time.monotonic() + self.interval / 2


def _socket_address(value: str) -> str | None:
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]  # Linux abstract namespace
    return None  # unset, or a transport we do not speak (vsock:…)


def _send(datagram: bytes, address: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(_SEND_TIMEOUT)
            sock.sendto(datagram, address)
    except OSError:
        return False
    return True


def _monotonic_usec() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
