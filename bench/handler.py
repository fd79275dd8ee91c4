"""CPU per request of the HTTP layer and handler alone: aiokes's dispatcher vs the baseline's.

``python -m bench handler`` feeds pre-encoded ``generate`` requests straight into each
server's protocol objects (what a listening server would create per connection: aiokes's
:mod:`aiokes.http` connection, aiohttp's request handler for the baseline), through transports
that only record that a response was written. There is no TLS, no socket and no load
generator, so what is left is each HTTP layer's parsing and writing plus each server's own
handler, in one process on one core: a steady figure on a noisy machine, where the socket
benchmark (``run``) drifts by tens of percent between runs. Both servers run alternately in
the same process; the difference between them is what aiokes adds per request.

It complements ``run``, it does not replace it: on the real server the same Python runs with
colder caches (TLS and the kernel in between), and the measured gap there is larger.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from aiokes.api.call import Services
from aiokes.api.dispatch import Dispatcher
from aiokes.api.state import ServerState, build_state
from aiokes.api.table import default_routes
from aiokes.config import load_config
from aiokes.http import Listener
from bench.baseline import BaselineHandler
from bench.certs import BenchCertificates, make_certificates
from bench.scenarios import CONTEXT
from bench.serverconfig import aiokes_config
from bench.wire import build_request, json_body

__all__ = ["SCENARIOS", "HandlerCosts", "costs_table", "measure_handlers"]

_KEY = "bench-key-00000"
SCENARIOS = ("generate", "decrypt")
Progress = Callable[[str], None]
_WARMUP_ROUNDS = 100


@dataclass(frozen=True, slots=True)
class HandlerCosts:
    """CPU microseconds per request, one value per repeat, for each server."""

    scenario: str
    connections: int
    requests: int
    aiokes: list[float]
    baseline: list[float]

    @property
    def difference(self) -> float:
        """What aiokes adds per request: the median over repeats of the difference measured
        within each repeat (the machine's drift between repeats cancels out)."""
        pairs = zip(self.aiokes, self.baseline, strict=True)
        return statistics.median(ours - theirs for ours, theirs in pairs)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "connections": self.connections,
            "requests_per_repeat": self.requests,
            "aiokes_us": self.aiokes,
            "baseline_us": self.baseline,
            "aiokes_median_us": statistics.median(self.aiokes),
            "baseline_median_us": statistics.median(self.baseline),
            "difference_us": self.difference,
        }


class _RecordingTransport(asyncio.Transport):
    """Stands in for an mTLS connection: reports the client certificate, counts writes."""

    def __init__(self, peer: _PeerCertificate) -> None:
        super().__init__()
        self._extra = {
            "ssl_object": peer,
            "peername": ("127.0.0.1", 50000),
            "sockname": ("127.0.0.1", 7373),
        }
        self.answered: asyncio.Future[None] | None = None
        self.status_line = b""
        self.response = b""
        self._closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def write(self, data: Any) -> None:
        self._answer(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        self._answer(b"".join(list_of_data))

    def _answer(self, data: bytes) -> None:
        self.response = data
        self.status_line = data.partition(b"\r\n")[0]
        if self.answered is not None and not self.answered.done():
            self.answered.set_result(None)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass


class _PeerCertificate:
    """The part of an ``ssl.SSLObject`` aiokes reads: the client's certificate."""

    def __init__(self, der: bytes) -> None:
        self._der = der

    def getpeercert(self, binary_form: bool = False) -> bytes:
        return self._der


Server = Callable[[], asyncio.BaseProtocol]  # makes the protocol of one connection
_Link = tuple[asyncio.BaseProtocol, _RecordingTransport]


async def _cpu_per_request(
    server: Server, peer: _PeerCertificate, request: bytes, connections: int, requests: int
) -> float:
    """Send ``request`` on every connection, wait for every answer, repeat; CPU µs each."""
    links = _connect(server, peer, connections)
    try:
        for _ in range(_WARMUP_ROUNDS):
            await _round_trip(links, request)
        rounds = max(requests // connections, 1)
        started = time.process_time()
        for _ in range(rounds):
            await _round_trip(links, request)
        elapsed = time.process_time() - started
        _check_answers(links)
        return elapsed / (rounds * connections) * 1e6
    finally:
        _disconnect(links)


async def _answer_once(server: Server, peer: _PeerCertificate, request: bytes) -> bytes:
    """Send ``request`` once (set-up: create a key, seal a data key); the answer's body."""
    links = _connect(server, peer, 1)
    try:
        await _round_trip(links, request)
        _check_answers(links)
        return links[0][1].response.partition(b"\r\n\r\n")[2]
    finally:
        _disconnect(links)


def _connect(server: Server, peer: _PeerCertificate, count: int) -> list[_Link]:
    links = []
    for _ in range(count):
        protocol, transport = server(), _RecordingTransport(peer)
        protocol.connection_made(transport)
        links.append((protocol, transport))
    return links


async def _round_trip(links: list[_Link], request: bytes) -> None:
    loop = asyncio.get_running_loop()
    for protocol, transport in links:
        transport.answered = loop.create_future()
        _feed(protocol, request)
    for _, transport in links:
        assert transport.answered is not None
        await transport.answered


def _feed(protocol: asyncio.BaseProtocol, data: bytes) -> None:
    """Deliver ``data`` as the event loop would, to either kind of protocol."""
    if isinstance(protocol, asyncio.BufferedProtocol):
        buffer = memoryview(protocol.get_buffer(len(data)))
        buffer[: len(data)] = data
        protocol.buffer_updated(len(data))
    else:
        assert isinstance(protocol, asyncio.Protocol)
        protocol.data_received(data)


def _check_answers(links: list[_Link]) -> None:
    for _, transport in links:  # measuring an error path would be measuring the wrong thing
        if not transport.status_line.startswith(b"HTTP/1.1 200 "):
            raise RuntimeError(f"unexpected answer: {transport.status_line.decode()!r}")


def _disconnect(links: list[_Link]) -> None:
    for protocol, _ in links:
        protocol.connection_lost(None)


async def _aiokes_server(workdir: Path, certs: BenchCertificates) -> tuple[Server, ServerState]:
    """aiokes as the ``aiokes-fs`` target runs it: fs keystore, MinIO-like policy, audit on."""
    config = load_config(str(aiokes_config(workdir, certs)))
    state = await build_state(config, default_routes())
    services = Services()
    services.audit.configure(logging.INFO, "/dev/null")
    listener = Listener(Dispatcher(state, services))
    return listener.protocol, state


async def _measure(
    workdir: Path, certs: BenchCertificates, options: _Options, progress: Progress
) -> HandlerCosts:
    peer = _PeerCertificate(_client_der(certs))
    aiokes, state = await _aiokes_server(workdir, certs)
    baseline: Server = web.Server(BaselineHandler(), access_log=None)
    try:
        create = build_request("POST", f"/v1/key/create/{_KEY}", "127.0.0.1", b"")
        await _answer_once(aiokes, peer, create)
        servers: list[tuple[str, Server, bytes]] = [
            ("aiokes", aiokes, await _request(aiokes, peer, options.scenario)),
            ("baseline", baseline, await _request(baseline, peer, options.scenario)),
        ]
        costs: dict[str, list[float]] = {"aiokes": [], "baseline": []}
        for index in range(options.repeat):
            for name, server, request in servers:  # alternating, so drift hits both alike
                cost = await _cpu_per_request(
                    server, peer, request, options.connections, options.requests
                )
                costs[name].append(round(cost, 2))
                progress(f"repeat {index + 1}/{options.repeat} {name}: {cost:.1f} µs/request")
        return HandlerCosts(
            options.scenario,
            options.connections,
            options.requests,
            costs["aiokes"],
            costs["baseline"],
        )
    finally:
        await state.aclose()


async def _request(server: Server, peer: _PeerCertificate, scenario: str) -> bytes:
    """The request to measure: ``generate`` as MinIO sends it, or ``decrypt`` of a data key
    this server sealed (each server opens only its own ciphertexts)."""
    generate = build_request(
        "POST", f"/v1/key/generate/{_KEY}", "127.0.0.1", json_body(context=CONTEXT)
    )
    if scenario == "generate":
        return generate
    sealed = json.loads(await _answer_once(server, peer, generate))["ciphertext"]
    body = json_body(ciphertext=base64.b64decode(sealed), context=CONTEXT)
    return build_request("POST", f"/v1/key/decrypt/{_KEY}", "127.0.0.1", body)


@dataclass(frozen=True, slots=True)
class _Options:
    scenario: str
    connections: int
    requests: int
    repeat: int


def _client_der(certs: BenchCertificates) -> bytes:
    certificate = x509.load_pem_x509_certificate(Path(certs.client_cert).read_bytes())
    return certificate.public_bytes(serialization.Encoding.DER)


def measure_handlers(
    *,
    scenario: str = "generate",
    connections: int = 32,
    requests: int = 30_000,
    repeat: int = 7,
    progress: Progress = print,
) -> HandlerCosts:
    """CPU per request of both handlers, ``generate`` or ``decrypt`` (uvloop when installed)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    options = _Options(scenario, connections, requests, repeat)
    with tempfile.TemporaryDirectory(prefix="aiokes-bench-handler-") as scratch:
        workdir = Path(scratch)
        certs = make_certificates(workdir / "certs")
        coroutine = _measure(workdir, certs, options, progress)
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a dependency of aiokes on Linux
            return asyncio.run(coroutine)
        return uvloop.run(coroutine)


def costs_table(costs: HandlerCosts) -> str:
    rows = [
        "| server | CPU µs per request (median) | repeats |",
        "|---|---:|---|",
        _row("aiokes (Dispatcher)", costs.aiokes),
        _row("baseline handler", costs.baseline),
    ]
    label = "**aiokes - baseline** (median of per-repeat differences)"
    rows.append(f"| {label} | **{costs.difference:.1f}** | |")
    return "\n".join(rows)


def _row(name: str, values: list[float]) -> str:
    listed = " ".join(f"{value:.1f}" for value in values)
    return f"| {name} | {statistics.median(values):.1f} | {listed} |"
