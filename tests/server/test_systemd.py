"""sd_notify against real AF_UNIX datagram sockets, as systemd would receive it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from aiokes.server import systemd
from aiokes.server.children import HEARTBEAT_INTERVAL
from aiokes.server.supervisor import heartbeat_interval


@pytest.fixture
def receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A datagram socket in a tmp dir, named in $NOTIFY_SOCKET as systemd names its own."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(5)  # a bound on a missing datagram, not a synchronisation
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        yield sock


@pytest.fixture
def abstract_receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    name = f"aiokes-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        yield sock


def test_notify_reports_delivery(receiver: socket.socket) -> None:
    assert systemd.notify("READY=1") is True
    assert receiver.recv(4096) == b"READY=1"


def test_ready_sends_exactly_ready(receiver: socket.socket) -> None:
    systemd.ready()
    assert receiver.recv(4096) == b"READY=1"


def test_stopping_and_status_datagrams(receiver: socket.socket) -> None:
    systemd.stopping()
    assert receiver.recv(4096) == b"STOPPING=1"
    systemd.status("serving on https://127.0.0.1:7373")
    assert receiver.recv(4096) == b"STATUS=serving on https://127.0.0.1:7373"


def test_status_cannot_inject_fields_through_newlines(receiver: socket.socket) -> None:
    """A status text taken from an error message must not smuggle in ``READY=1``."""
    systemd.status("reload failed:\nREADY=1")
    assert receiver.recv(4096) == b"STATUS=reload failed: READY=1"


def test_notify_rejects_a_field_with_a_newline(receiver: socket.socket) -> None:
    with pytest.raises(ValueError, match="newline"):
        systemd.notify("STATUS=a\nREADY=1")


def test_reloading_carries_the_monotonic_clock_in_microseconds(receiver: socket.socket) -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    systemd.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    first, second = receiver.recv(4096).split(b"\n")
    assert first == b"RELOADING=1"
    name, value = second.split(b"=")
    assert name == b"MONOTONIC_USEC"
    assert before <= int(value) <= after


def test_several_fields_go_in_one_datagram(receiver: socket.socket) -> None:
    assert systemd.notify("READY=1", "STATUS=up", "MAINPID=42")
    assert receiver.recv(4096) == b"READY=1\nSTATUS=up\nMAINPID=42"


def test_abstract_socket(abstract_receiver: socket.socket) -> None:
    assert systemd.notify("READY=1")
    assert abstract_receiver.recv(4096) == b"READY=1"


def test_unset_socket_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.notify("READY=1") is False
    systemd.ready()  # no socket, no error
    systemd.watchdog_ping()


@pytest.mark.parametrize("value", ["", "@", "relative/path", "vsock:2:1234"])
def test_unsupported_socket_values_are_a_no_op(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", value)
    assert systemd.notify("READY=1") is False


def test_unreachable_socket_returns_false(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert systemd.notify("READY=1") is False
    systemd.ready()  # does not raise either
    monkeypatch.setenv("NOTIFY_SOCKET", "@aiokes-test-nobody-" + uuid.uuid4().hex)
    assert systemd.notify("STOPPING=1") is False
    systemd.stopping()


def test_a_closed_receiver_returns_false(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The socket file is there but nothing reads it any more (systemd restarted)."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.close()
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    assert systemd.notify("READY=1") is False


def test_watchdog_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert systemd.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert systemd.watchdog_interval() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert systemd.watchdog_interval() == 30.0


@pytest.mark.parametrize("usec", ["0", "", "-5", "abc", "1.5"])
def test_watchdog_off_for_invalid_usec(usec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", usec)
    assert systemd.watchdog_interval() is None


def test_watchdog_is_for_the_process_it_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker inherits the variables; only the process systemd watches may ping."""
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert systemd.watchdog_interval() is None


def test_watchdog_ping(receiver: socket.socket) -> None:
    systemd.watchdog_ping()
    assert receiver.recv(4096) == b"WATCHDOG=1"


def test_loopless_watchdog_pings_once_per_half_interval(receiver: socket.socket) -> None:
    watchdog = systemd.Watchdog(interval=3600.0)
    assert watchdog.timeout() == 0.0  # the first ping is due at once
    watchdog.ping_if_due()
    assert receiver.recv(4096) == b"WATCHDOG=1"
    assert 1799.0 < (watchdog.timeout() or 0.0) <= 1800.0
    watchdog.ping_if_due()  # not due yet: nothing sent
    receiver.setblocking(False)
    with pytest.raises(BlockingIOError):
        receiver.recv(4096)


def test_loopless_watchdog_off(receiver: socket.socket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    watchdog = systemd.Watchdog()
    assert watchdog.timeout() is None
    watchdog.ping_if_due()
    receiver.setblocking(False)
    with pytest.raises(BlockingIOError):
        receiver.recv(4096)


async def test_watchdog_task_pings_repeatedly(
    receiver: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "40000")  # 40 ms: a ping every 20 ms
    receiver.setblocking(False)
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(systemd.watchdog_task())
    try:
        async with asyncio.timeout(5):
            pings = [await loop.sock_recv(receiver, 4096) for _ in range(3)]
    finally:
        task.cancel()
    assert pings == [b"WATCHDOG=1"] * 3
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_watchdog_task_returns_when_the_watchdog_is_off(
    receiver: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    async with asyncio.timeout(5):
        await systemd.watchdog_task()
    receiver.setblocking(False)
    with pytest.raises(BlockingIOError):
        receiver.recv(4096)


# --- the server process under a (simulated) systemd ---------------------------------------------


def _server_config(directory: Path, tls_ca: trustme.CA) -> Path:
    certificate = tls_ca.issue_cert("127.0.0.1")
    certificate.private_key_pem.write_to_path(str(directory / "server.key"))
    certificate.cert_chain_pems[0].write_to_path(str(directory / "server.crt"))
    config = directory / "config.yml"
    config.write_text(
        f"address: 127.0.0.1:0\nadmin:\n  identity: disabled\n"
        f"tls:\n  key: {directory}/server.key\n  cert: {directory}/server.crt\n"
        f"keystore:\n  fs:\n    path: {directory}/keys\nlog:\n  audit: off\n"
    )
    return config


class _Systemd:
    """The notify socket as systemd reads it: with each sender's PID (SCM_CREDENTIALS), so
    that, as under ``NotifyAccess=main``, a message from any other process is an error."""

    def __init__(self, receiver: socket.socket) -> None:
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._receiver = receiver
        self.main_pid = 0

    def next(self, *, skip: bytes = b"WATCHDOG=1") -> bytes:
        while True:
            datagram, ancillary, _, _ = self._receiver.recvmsg(4096, socket.CMSG_SPACE(12))
            (_, _, credentials) = ancillary[0]
            pid = struct.unpack("iII", credentials[:12])[0]
            assert pid == self.main_pid, f"{datagram!r} from {pid}, not the main process"
            if datagram != skip:
                return datagram


# As systemd starts a service: WATCHDOG_PID is the main process, which `exec` keeps.
_EXEC_WITH_WATCHDOG = 'WATCHDOG_PID=$$ WATCHDOG_USEC=200000 exec "$@"'


@pytest.mark.parametrize("workers", ["1", "2"])
def test_server_reports_its_life_cycle_to_systemd(
    tmp_path: Path, receiver: socket.socket, tls_ca: trustme.CA, workers: str
) -> None:
    """READY once the listener accepts, RELOADING/READY around SIGHUP, STOPPING on SIGTERM,
    and watchdog pings meanwhile: what Type=notify and WatchdogSec= in the unit rely on, with
    one process and with a supervisor of workers (only the supervisor may notify)."""
    systemd_socket = _Systemd(receiver)
    command = [sys.executable, "-m", "aiokes", "server", "--workers", workers, "--config"]
    process = subprocess.Popen(
        ["sh", "-c", _EXEC_WITH_WATCHDOG, "sh", *command, str(_server_config(tmp_path, tls_ca))],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    systemd_socket.main_pid = process.pid
    try:
        port = _listening_port(process)  # the banner: printed once the server is up
        receiver.settimeout(1)  # READY=1 goes out with the banner, not later
        assert systemd_socket.next() == b"READY=1"
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        assert systemd_socket.next(skip=b"") == b"WATCHDOG=1"

        process.send_signal(signal.SIGHUP)
        assert systemd_socket.next().startswith(b"RELOADING=1\nMONOTONIC_USEC=")
        assert systemd_socket.next() == b"READY=1"

        process.send_signal(signal.SIGTERM)
        assert systemd_socket.next() == b"STOPPING=1"
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()  # type: ignore[union-attr]
        process.stderr.close()  # type: ignore[union-attr]


def _listening_port(process: subprocess.Popen[str]) -> int:
    """The port from the banner's ``API  https://127.0.0.1:<port>`` line (bounded wait)."""
    assert process.stdout is not None
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        while line := pool.submit(process.stdout.readline).result(timeout=30):
            if line.startswith("API"):
                return int(line.rsplit(":", 1)[1])
    finally:
        pool.shutdown(wait=False)  # a hung read ends when the caller kills the process
    raise AssertionError(f"the server printed no API line: {process.stderr.read()}")  # type: ignore[union-attr]


def test_children_report_at_least_twice_per_watchdog_ping() -> None:
    """The supervisor pings every half interval, and only after hearing from every child:
    heartbeats at a quarter of ``WatchdogSec=`` keep a short watchdog fed; with no watchdog,
    or a long one, once a second is enough."""
    assert heartbeat_interval(0.2) == pytest.approx(0.05)
    assert heartbeat_interval(None) == HEARTBEAT_INTERVAL
    assert heartbeat_interval(60.0) == HEARTBEAT_INTERVAL
