"""Load-generator processes: closed loop (fixed users) or open loop (fixed arrival rate).

Each process runs its own uvloop event loop with ``connections`` virtual users. The parent
starts them all, waits until every one has connected, then hands out one common start time
(``time.monotonic`` is system-wide on Linux), so the processes measure the same window.

* Closed loop: a user sends, waits for the answer, sends again. Latency = answer - send.
* Open loop: a scheduler releases requests at fixed intended times; users take them from a
  queue. Latency = answer - *intended* time, so a stalled server is charged for the requests
  it delayed (no coordinated omission). Requests still queued at the end count as ``dropped``.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from typing import Any

from bench.connection import ClientTLS, Connection, Endpoint, client_context
from bench.scenarios import Policy, RequestSource, Workload
from bench.wire import Response, WireError

__all__ = ["LoadSpec", "ProcessResult", "process_main"]

_PROGRESS_INTERVAL = 0.25
_GO_MAX_IDLE_PER_HOST = 2  # net/http DefaultMaxIdleConnsPerHost, which MinIO keeps


@dataclass(frozen=True, slots=True)
class LoadSpec:
    endpoint: Endpoint
    tls: ClientTLS
    workload: Workload
    connections: int  # virtual users in this process
    rate: float | None  # open loop: requests/s for this process; None: closed loop
    duration: float
    warmup: float
    max_requests: int  # measured requests for this process; 0: no limit
    share: tuple[int, int]  # (index, count) of this process among the load processes
    cpus: tuple[int, ...] = ()
    timeout: float = 10.0


@dataclass(slots=True)
class ProcessResult:
    latencies: array[float] = field(default_factory=lambda: array("d"))  # 2xx, seconds
    statuses: Counter[int] = field(default_factory=Counter)  # every measured response
    errors: Counter[str] = field(default_factory=Counter)  # failures without a response
    handshakes: array[float] = field(default_factory=lambda: array("d"))  # seconds
    full_handshakes: int = 0
    resumed_handshakes: int = 0
    dropped: int = 0
    measured_seconds: float = 0.0


def process_main(spec: LoadSpec, pipe: Pipe, progress: Any, slot: int) -> None:
    """Entry point of one load process (``multiprocessing``, spawn start method)."""
    if spec.cpus:
        os.sched_setaffinity(0, spec.cpus)
    load = _Load(spec, pipe, progress, slot)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency of aiokes on Linux
        result = asyncio.run(load.run())
    else:
        result = uvloop.run(load.run())
    pipe.send(result)


class _Load:
    def __init__(self, spec: LoadSpec, pipe: Pipe, progress: Any, slot: int) -> None:
        policy = spec.workload.scenario.policy
        self.spec = spec
        self.policy = policy
        self.pipe = pipe
        self.progress = progress
        self.slot = slot
        self.context = client_context(spec.tls, resume=policy in (Policy.RESUMED, Policy.GOCLIENT))
        self.source = RequestSource(spec.workload, spec.endpoint.authority, share=spec.share)
        self.result = ProcessResult()
        self.owned: list[Connection | None] = [None] * spec.connections
        self.idle: list[Connection] = []
        self.open_connections: set[Connection] = set()  # watched for timeouts by _tick
        self.measure_from = self.end = float("inf")
        self.recorded = 0
        self.last_done = 0.0

    async def run(self) -> ProcessResult:
        await self._prepare()
        self.pipe.send("ready")
        loop = asyncio.get_running_loop()
        start: float = await loop.run_in_executor(None, self.pipe.recv)
        self.measure_from = start + self.spec.warmup
        self.end = self.measure_from + self.spec.duration
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        ticker = asyncio.create_task(self._tick())
        if self.spec.rate:
            await self._open_loop(start, self.spec.rate)
        else:
            await asyncio.gather(*(self._user(slot) for slot in range(self.spec.connections)))
        ticker.cancel()
        self._publish()
        self._close_all()
        self.result.measured_seconds = max(0.0, self.last_done - self.measure_from)
        return self.result

    async def _prepare(self) -> None:
        """Connect before the clock starts: keep-alive users own one connection each, the Go
        client starts with its idle pool full, the resuming client holds a session."""
        if self.policy is Policy.KEEPALIVE:
            for slot in range(self.spec.connections):
                self.owned[slot] = await self._open()
        elif self.policy in (Policy.GOCLIENT, Policy.RESUMED):
            for _ in range(_GO_MAX_IDLE_PER_HOST):
                self.idle.append(await self._warm_connection())
            if self.policy is Policy.RESUMED:
                self._close_all()

    async def _open(self) -> Connection:
        connection = await Connection.open(self.spec.endpoint, self.context, self.spec.timeout)
        self.open_connections.add(connection)
        return connection

    def _close(self, connection: Connection) -> None:
        connection.close()
        self.open_connections.discard(connection)

    async def _warm_connection(self) -> Connection:
        connection = await self._open()
        await connection.request(self.source.next())  # TLS 1.3 tickets come after the handshake
        self._keep_session(connection)
        return connection

    def _budget_left(self) -> bool:
        limit = self.spec.max_requests
        return limit == 0 or self.recorded < limit

    async def _user(self, slot: int) -> None:
        while self._budget_left():
            now = time.monotonic()
            if now >= self.end:
                return
            if now >= self.measure_from:
                self.recorded += 1
            await self._one(slot, self.source.next(), now)

    async def _open_loop(self, start: float, rate: float) -> None:
        queue: asyncio.Queue[float] = asyncio.Queue()
        users = [
            asyncio.create_task(self._queued_user(slot, queue))
            for slot in range(self.spec.connections)
        ]
        interval = 1.0 / rate
        intended = start
        while intended < self.end and self._budget_left():
            now = time.monotonic()
            while intended <= now and intended < self.end and self._budget_left():
                queue.put_nowait(intended)
                if intended >= self.measure_from:
                    self.recorded += 1
                intended += interval
            await asyncio.sleep(max(0.0, intended - time.monotonic()))
        while not queue.empty():  # never sent: the server (or this process) fell behind
            if queue.get_nowait() >= self.measure_from:
                self.result.dropped += 1
        for _ in users:
            queue.put_nowait(-1.0)
        await asyncio.gather(*users)

    async def _queued_user(self, slot: int, queue: asyncio.Queue[float]) -> None:
        while (intended := await queue.get()) >= 0:
            if time.monotonic() >= self.end and intended >= self.measure_from:
                self.result.dropped += 1  # released in time, but no user was free before the end
                continue
            await self._one(slot, self.source.next(), intended)

    async def _one(self, slot: int, payload: bytes, since: float) -> None:
        measured = since >= self.measure_from
        response: Response | None = None
        error = ""
        try:
            response = await self._exchange(slot, payload, measured)
        except TimeoutError:  # from the watchdog in _tick, or a handshake that took too long
            error = "timeout"
            self._forget(slot)
        except (OSError, ssl.SSLError, WireError, EOFError) as exc:
            error = type(exc).__name__
            self._forget(slot)
        done = time.monotonic()
        if not measured:
            return
        self.last_done = max(self.last_done, done)
        if response is None:
            self.result.errors[error] += 1
            return
        self.result.statuses[response.status] += 1
        if 200 <= response.status < 300:
            self.result.latencies.append(done - since)

    async def _exchange(self, slot: int, payload: bytes, measured: bool) -> Response:
        if self.policy is Policy.KEEPALIVE:
            return await self._keepalive(slot, payload, measured)
        if self.policy is Policy.GOCLIENT:
            return await self._go_client(payload, measured)
        connection = await self._connect(measured)
        try:
            response = await connection.request(payload)
        finally:
            self._close(connection)
        self._keep_session(connection)
        return response

    async def _keepalive(self, slot: int, payload: bytes, measured: bool) -> Response:
        connection = self.owned[slot]
        if connection is None or not connection.usable:
            connection = self.owned[slot] = await self._connect(measured)
        response = await connection.request(payload)
        if not response.keep_alive:
            self._close(connection)
            self.owned[slot] = None
        return response

    async def _go_client(self, payload: bytes, measured: bool) -> Response:
        connection = self.idle.pop() if self.idle else await self._connect(measured)
        try:
            response = await connection.request(payload)
        except BaseException:
            connection.abort()
            self.open_connections.discard(connection)
            raise
        self._keep_session(connection)
        if response.keep_alive and connection.usable and len(self.idle) < _GO_MAX_IDLE_PER_HOST:
            self.idle.append(connection)
        else:
            self._close(connection)
        return response

    async def _connect(self, measured: bool) -> Connection:
        connection = await self._open()
        if measured:
            self.result.handshakes.append(connection.handshake_seconds)
            if connection.resumed:
                self.result.resumed_handshakes += 1
            else:
                self.result.full_handshakes += 1
        return connection

    def _keep_session(self, connection: Connection) -> None:
        if self.context.resume:
            session = connection.latest_session()
            if session is not None:
                self.context.session = session

    def _forget(self, slot: int) -> None:
        if self.policy is Policy.KEEPALIVE and self.owned[slot] is not None:
            connection = self.owned[slot]
            assert connection is not None
            connection.abort()
            self.open_connections.discard(connection)
            self.owned[slot] = None

    def _close_all(self) -> None:
        for connection in [*self.owned, *self.idle]:
            if connection is not None:
                self._close(connection)
        self.owned = [None] * self.spec.connections
        self.idle = []

    async def _tick(self) -> None:
        """Publish progress; fail requests that have waited longer than the timeout."""
        loop = asyncio.get_running_loop()
        while True:
            self._publish()
            sent_before = loop.time() - self.spec.timeout
            for connection in [c for c in self.open_connections if c.expire(sent_before)]:
                self.open_connections.discard(connection)
            await asyncio.sleep(_PROGRESS_INTERVAL)

    def _publish(self) -> None:
        ok = len(self.result.latencies)
        failed = self.result.errors.total() + self.result.statuses.total() - ok
        self.progress[2 * self.slot] = ok
        self.progress[2 * self.slot + 1] = failed
