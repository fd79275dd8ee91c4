"""The servers a run measures: ones the harness starts, and external KES-compatible endpoints.

Kinds the harness starts itself, each on 127.0.0.1 and a free port:

* ``aiokes``: ``aiokes server --dev`` (in-memory keystore; the admin API key it prints is
  the client credential);
* ``aiokes-fs``: ``aiokes server --config`` with an fs keystore and a MinIO-like policy for
  the harness's client certificate;
* ``aiokes-azure``: the same on the Azure keystore against the fake vault
  (``bench/fakevault.py``), so cache misses cost HTTPS round trips;
* ``baseline``: ``bench/baseline.py``; ``baseline-none`` answers without parsing or crypto
  (to show how fast the load generator itself is).

An external endpoint (``https://host:port``) is used as it is: nothing is started or stopped.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from bench.certs import BenchCertificates
from bench.connection import ClientTLS, Endpoint
from bench.serverconfig import TargetError, aiokes_config, api_key_files, wait_until_serving

__all__ = ["MANAGED_KINDS", "Target", "TargetError", "external_target", "started_target"]

MANAGED_KINDS = ("aiokes", "aiokes-fs", "aiokes-azure", "baseline", "baseline-none")
_REPO = Path(__file__).resolve().parent.parent
_START_TIMEOUT = 60.0
_BANNER_PREFIXES = ("API Key", "ready")
_STOP_TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class Target:
    name: str  # as reported: "aiokes", "aiokes-fs", "baseline", or the external URL
    kind: str
    endpoint: Endpoint
    tls: ClientTLS
    pid: int | None = None  # the server's main process, when the harness started it
    workers: int = 1

    @property
    def managed(self) -> bool:
        return self.pid is not None


def external_target(
    url: str, tls: ClientTLS | None, api_key: str, workdir: Path, name: str = ""
) -> Target:
    """An endpoint given by URL and client certificate/key or ``kes:v1:`` API key."""
    parts = urlsplit(url if "://" in url else f"https://{url}")
    if parts.scheme != "https" or not parts.hostname:
        raise TargetError(f"'{url}': expected https://host:port")
    if api_key:
        cert, key = api_key_files(api_key, workdir / "external-api-key")
        tls = ClientTLS(cert, key, tls.ca_file if tls else "", tls.insecure if tls else False)
    if tls is None:
        raise TargetError(f"'{url}': give --cert and --key, or --api-key")
    host = parts.hostname
    endpoint = Endpoint(host, parts.port or 7373, server_hostname=host)
    return Target(name or url, "external", endpoint, tls)


@contextlib.contextmanager
def started_target(
    kind: str,
    certs: BenchCertificates,
    workdir: Path,
    *,
    cpus: tuple[int, ...] = (),
    workers: int = 1,
    audit: bool = True,
    mlock: bool = True,
    name: str = "",
) -> Iterator[Target]:
    """Start a server of ``kind``, wait until it answers, stop it (SIGTERM) on exit.

    ``mlock=False`` starts aiokes without CAP_IPC_LOCK (where ``setpriv`` can drop it), so its
    ``mlockall`` fails as on a host that does not grant it.
    """
    if kind not in MANAGED_KINDS:
        raise TargetError(f"unknown target kind '{kind}' (known: {', '.join(MANAGED_KINDS)})")
    workdir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    endpoint = Endpoint("127.0.0.1", port)
    client = ClientTLS(certs.client_cert, certs.client_key, certs.ca_file)
    with contextlib.ExitStack() as stack:
        if kind.startswith("baseline"):
            argv = [sys.executable, "-m", "bench.baseline", "--addr", f"127.0.0.1:{port}"]
            argv += ["--cert", certs.server_cert, "--key", certs.server_key, "--ca", certs.ca_file]
            argv += ["--work", "none" if kind == "baseline-none" else "seal"]
            workers = 1
        else:
            argv = [sys.executable, "-m", "aiokes", "server", "--addr", f"127.0.0.1:{port}"]
            argv = _without_memory_lock(argv) if not mlock else argv
            argv += _workers_flag(workers)
            if kind == "aiokes":
                argv.append("--dev")
            else:
                vault = stack.enter_context(_fake_vault(workdir)) if kind == "aiokes-azure" else ""
                config = aiokes_config(workdir, certs, vault_url=vault, audit=audit)
                argv += ["--config", str(config)]
        watch = kind == "aiokes"
        process = stack.enter_context(_server_process(kind, argv, workdir, cpus, watch=watch))
        if kind == "aiokes":
            api_key = process.banner("API Key").split()[-1]
            cert, key = api_key_files(api_key, workdir / "dev-api-key")
            client = ClientTLS(cert, key, insecure=True)  # --dev has its own self-signed cert
        wait_until_serving(endpoint, client, process.popen, _START_TIMEOUT, process.log)
        yield Target(name or kind, kind, endpoint, client, process.pid, workers)


def supports_workers() -> bool:
    """Whether this aiokes has ``server --workers`` (feature detection through ``--help``)."""
    argv = [sys.executable, "-m", "aiokes", "server", "--help"]
    help_text = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    return "--workers" in help_text.stdout


def _workers_flag(workers: int) -> list[str]:
    if supports_workers():
        return ["--workers", str(workers)]  # its default is every CPU: always say how many
    if workers != 1:
        raise TargetError("this aiokes has no 'server --workers'; run with --workers 1")
    return []


def _without_memory_lock(argv: list[str]) -> list[str]:
    if not shutil.which("setpriv"):
        raise TargetError("--no-mlock needs setpriv (util-linux) to drop CAP_IPC_LOCK")
    return ["setpriv", "--bounding-set", "-ipc_lock", "--inh-caps", "-ipc_lock", *argv]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _server_process(
    kind: str, argv: list[str], workdir: Path, cpus: tuple[int, ...], *, watch: bool = False
) -> Iterator[_Process]:
    """Start ``argv`` in its own session; ``watch`` reads its stdout for banner lines (and
    keeps draining it, so the server never blocks on a full pipe); otherwise stdout, where
    aiokes writes the audit log by default, is discarded."""
    if cpus and shutil.which("taskset"):  # before the first instruction: workers inherit it
        argv = ["taskset", "-c", ",".join(map(str, cpus)), *argv]
    log = (workdir / f"{kind}.log").open("w")
    path = os.pathsep.join(filter(None, [str(_REPO), os.environ.get("PYTHONPATH", "")]))
    stdout = subprocess.PIPE if watch else subprocess.DEVNULL
    popen = subprocess.Popen(
        argv,
        stdout=stdout,
        stderr=log,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
        cwd=_REPO,
        start_new_session=True,
    )
    process = _Process(popen, workdir / f"{kind}.log")
    try:
        yield process
    finally:
        _stop(popen)
        log.close()


class _Process:
    """A started server and the banner lines (``API Key …``, ``ready …``) it printed."""

    def __init__(self, popen: subprocess.Popen[str], log: Path) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.log = log
        self._lines: queue.Queue[str] = queue.Queue()
        if popen.stdout is not None:
            threading.Thread(target=self._read, args=(popen.stdout,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in stream:
                if line.startswith(_BANNER_PREFIXES):
                    self._lines.put(line.strip())

    def banner(self, prefix: str) -> str:
        """The first stdout line starting with ``prefix`` (waits, bounded)."""
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                break
            try:
                line = self._lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line.startswith(prefix):
                return line
        raise TargetError(f"the server printed no '{prefix}' line; see {self.log}")


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: only its workers
            process.wait(timeout=_STOP_TIMEOUT)


@contextlib.contextmanager
def _fake_vault(workdir: Path) -> Iterator[str]:
    argv = [sys.executable, "-m", "bench.fakevault", str(workdir / "vault")]
    with _server_process("fakevault", argv, workdir, (), watch=True) as process:
        yield process.banner("ready").split()[-1]
