"""The key keeper: one process that owns the keystore and the server's one key cache, so that
a group of workers is ONE KES server (design decision 4, docs/workers.md).

The supervisor (:mod:`aiokes.server.supervisor`) forks the keeper before the workers and
gives it one end of a private channel per worker slot (:mod:`aiokes.keeper.channel`). The
keeper runs its own event loop and a :class:`~aiokes.cache.KeyCache` of key *records*:

* **Reads.** A worker that misses its local copy sends ``GET``. Concurrent misses of every
  worker join one keystore read (the cache's single flight), so a key is read once per
  expiry period for the whole server. The reply says whether the worker may keep a copy:
  only when the record is, at the moment of the reply, the one in the keeper's cache (a
  read overlapped by a delete, a create or a flush is never cached, as in the cache itself).
  A channel delivers in order, so a reply sent before an invalidation is always dropped by
  that invalidation.
* **Writes.** Create, import and delete go to the keeper, which writes the keystore, then
  broadcasts ``INVALIDATE(name)`` to every live worker and waits for each acknowledgement
  before it answers. A worker that does not acknowledge within a few seconds is
  fenced: killed with SIGKILL through a pidfd and waited for, so no process that could
  serve the old key survives the answer; the supervisor restarts it.
* **Expiry.** The cache's periodic jobs run here, for the whole server; what they drop is
  broadcast to the workers (no acknowledgement needed: expiry is not a write). The unused
  sweep first collects the names the workers used since the previous sweep.
* **Log streams.** The keeper is the hub of ``/v1/log/*``: while any worker has a
  subscriber every worker forwards its events here, and they are fanned out to the workers
  with subscribers, in order per worker.
* **Reload.** SIGHUP builds a new keystore and cache, swaps them whole, then flushes every
  worker's copies (acknowledged, like an invalidation).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import socket
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from aiokes.cache import KeyCache
from aiokes.cache.configured import create_configured_keys
from aiokes.config import ServerConfig
from aiokes.crypto import parse_key_version
from aiokes.errors import AiokesError, KeyExists, KeystoreError
from aiokes.keeper.channel import (
    STREAMS,
    Channel,
    Kind,
    Message,
    Outcome,
    failure_reply,
    name_chunks,
    parse_names,
)
from aiokes.keeper.slots import Slot, WorkerSlots
from aiokes.keystore import Keystore
from aiokes.keystore.mirror import MirrorKeystore
from aiokes.log import LogStream, configure_logging, error_logger
from aiokes.metrics import Metrics

__all__ = ["Keeper", "run_keeper"]

_STATS_INTERVAL = 1.0
_RETIRE_GRACE = 15.0  # KES's default route timeout: reads on a replaced store finish by then


@dataclass(frozen=True, slots=True)
class _Store:
    keystore: Keystore
    cache: KeyCache[bytes]

    async def aclose(self) -> None:
        try:
            await self.cache.aclose()
        finally:
            await self.keystore.close()


def _checked_record(record: bytes) -> bytes:
    """Cache the record as stored (workers decode it), once it proved decodable."""
    parse_key_version(record)
    return record


class Keeper:
    """Serves the worker slots' channels from one keystore and one cache."""

    def __init__(
        self,
        config: ServerConfig,
        channels: list[socket.socket],
        *,
        metrics: Metrics,
        reload_config: Callable[[], ServerConfig],
    ) -> None:
        self.config = config
        self._sockets = channels
        self._metrics = metrics
        self._reload_config = reload_config
        self._slots: WorkerSlots | None = None
        self._store: _Store | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._forwarding: set[bytes] = set()  # streams every worker currently forwards
        self.error_stream = LogStream()
        self._reload_lock = asyncio.Lock()

    @property
    def slots(self) -> WorkerSlots:
        assert self._slots is not None, "keeper not started"
        return self._slots

    @property
    def store(self) -> _Store:
        assert self._store is not None, "keeper not started"
        return self._store

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._configure_logging(self.config)
        self._store = await self._build(self.config)
        self._slots = WorkerSlots(self._sockets, self._on_message, self._lost_subscribers)
        self._spawn(self._publish_stats())

    async def _build(self, config: ServerConfig) -> _Store:
        keystore = await config.keystore.connect()
        try:
            cache: KeyCache[bytes] = KeyCache(
                keystore,
                _checked_record,
                config.cache,
                on_drop=self._on_drop,
                used_elsewhere=self._collect_used,
            )
            await create_configured_keys(config, cache)
            await cache.start()
        except BaseException:
            await keystore.close()
            raise
        return _Store(keystore, cache)

    async def reload(self) -> bool:
        """Swap keystore and cache whole, then flush every worker's copies."""
        async with self._reload_lock:
            try:
                config = self._reload_config()
                store = await self._build(config)
            except (AiokesError, OSError) as exc:
                error_logger.error("key keeper: reload failed, keeping the keystore: %s", exc)
                return False
            old, self._store, self.config = self.store, store, config
            self._configure_logging(config)
            await self.slots.broadcast(Kind.FLUSH)
            self._spawn(self._retire(old))
            return True

    async def _retire(self, old: _Store) -> None:
        await old.cache.aclose(grace=_RETIRE_GRACE)
        await old.keystore.close()

    async def stop(self) -> None:
        """Stop reading the channels, end every request task, close keystore and cache."""
        if self._slots is not None:
            self._slots.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._store is not None:
            await self._store.aclose()
            self._store = None

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _configure_logging(self, config: ServerConfig) -> None:
        configure_logging(
            error_level=config.log.error_level,
            error_stream=self.error_stream,
            count_error=self._metrics.error_event,
            error_file=config.log.error_file,
        )

    async def _publish_stats(self) -> None:
        """Publish the counters now and then too: probes and sweeps change them."""
        while True:
            self._publish()
            await asyncio.sleep(_STATS_INTERVAL)

    def _publish(self) -> None:
        """The keeper's counters in its row of the shared metrics table: the keystore reads,
        entries and offline state of the server (the workers count hits and misses). Done
        before every answer, so a client that got one sees counters that include it."""
        if self._store is None:
            return
        stats = self._store.cache.stats()
        # Hits and misses here are the workers' misses, which they count themselves.
        self._metrics.publish_cache(dataclasses.replace(stats, hits=0, misses=0))

    # -- messages --------------------------------------------------------------------------

    def _on_message(self, slot: Slot, message: Message) -> None:
        kind = message.kind
        if kind == Kind.ACK:
            self.slots.acknowledged(slot, message.id)
        elif kind == Kind.USED:
            names = slot.used.get(message.id)
            if names is not None and message.fields:
                names.update(parse_names(message.fields[0]))
        elif kind == Kind.LOG and len(message.fields) == 2:
            self._fan_out(slot, message.fields[0], message.fields[1])
        elif kind == Kind.HELLO:
            self._hello(slot, message.id)
        elif kind == Kind.DEMAND and len(message.fields) == 2:
            self._spawn(self._demand(slot, message.id, *message.fields))
        elif not (kind == Kind.GET and self._answer_from_cache(slot, message)):
            self._spawn(self._serve(slot, message))

    def _answer_from_cache(self, slot: Slot, message: Message) -> bool:
        """Answer a GET the cache holds at once, without a task (another worker's miss of a
        key already read); False when it needs a keystore read."""
        record = self.store.cache.cached(message.fields[0].decode()) if message.fields else None
        if record is None:
            return False
        slot.channel.send(Kind.REPLY, message.id, Outcome.OK, record, b"1")
        return True

    def _hello(self, slot: Slot, pid: int) -> None:
        """A (new) worker in the slot: it forwards the log streams somebody reads."""
        if self.slots.hello(slot, pid):
            for stream in self._forwarding:
                slot.channel.send(Kind.FORWARD, 0, stream, b"1")

    def _lost_subscribers(self, slot: Slot) -> None:
        """A worker with log subscribers is gone: forwarding may no longer be wanted."""
        slot.demand.clear()
        self._spawn(self._update_forwarding())

    async def _serve(self, slot: Slot, message: Message) -> None:
        channel = slot.channel
        try:
            reply = await self._answer(message, channel)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every failure is an answer: the worker must not hang
            reply = failure_reply(exc)
        self._publish()
        channel.send(Kind.REPLY, message.id, *reply)

    async def _answer(self, message: Message, channel: Channel) -> list[bytes]:
        kind, fields = message.kind, message.fields
        store = self.store
        if kind == Kind.GET:
            name = fields[0].decode()
            record = await store.cache.get(name)
            # Same loop step as the send: a later invalidation follows this reply.
            cacheable = self._store is store and store.cache.peek(name) is record
            return [Outcome.OK, record, b"1" if cacheable else b"0"]
        if kind == Kind.CREATE:
            name = fields[0].decode()
            try:
                await store.cache.create(name, fields[1])
            except KeyExists:
                raise
            except BaseException:
                await self._invalidate(name)  # a failed create may still have happened
                raise
            await self._invalidate(name)
            return [Outcome.OK]
        if kind == Kind.DELETE:
            name = fields[0].decode()
            try:
                await store.cache.delete(name)
            finally:
                await self._invalidate(name)  # even on failure: it may have happened
            return [Outcome.OK]
        if kind == Kind.LIST:
            page = await store.cache.list(fields[0].decode(), int(fields[1]))
            for chunk in name_chunks(page.names):
                channel.send(Kind.PART, message.id, chunk)
            return [Outcome.OK, page.continue_at.encode()]
        if kind == Kind.STATUS:
            state = await store.cache.status()
            return [Outcome.OK, repr(state.latency).encode(), b"1" if state.read_only else b"0"]
        if kind == Kind.MIRROR:
            return _mirror_reply(store.keystore)
        raise KeystoreError(f"key keeper: unknown request {kind!r}")

    # -- broadcasts ------------------------------------------------------------------------

    async def _invalidate(self, name: str) -> None:
        await self.slots.broadcast(Kind.INVALIDATE, name.encode())

    def _on_drop(self, names: list[str] | None) -> None:
        """The cache expired or evicted entries: the workers drop their copies too."""
        self._publish()
        for slot in self.slots.live():
            if names is None:
                slot.channel.send(Kind.FLUSH, 0)
            else:
                for chunk in name_chunks(names):
                    slot.channel.send(Kind.DROP, 0, chunk)

    async def _collect_used(self) -> Iterable[str]:
        """The names the workers used since the previous unused sweep."""
        slots = self.slots.all
        sequence = self.slots.next_sequence()
        for slot in slots:
            slot.used[sequence] = set()
        try:
            await self.slots.broadcast(Kind.COLLECT, fence=False, sequence=sequence)
            return set().union(*(slot.used.get(sequence, set()) for slot in slots))
        finally:
            for slot in slots:
                slot.used.pop(sequence, None)

    # -- log hub ---------------------------------------------------------------------------

    async def _demand(self, slot: Slot, request: int, stream: bytes, on: bytes) -> None:
        if stream in STREAMS:
            if on == b"1":
                slot.demand.add(stream)
            else:
                slot.demand.discard(stream)
            await self._update_forwarding()
        if request:
            slot.channel.send(Kind.REPLY, request, Outcome.OK)

    async def _update_forwarding(self) -> None:
        """Make every worker forward exactly the streams somebody subscribes to."""
        for stream in STREAMS:
            wanted = any(stream in slot.demand for slot in self.slots.all)
            if wanted == (stream in self._forwarding):
                continue
            if wanted:
                self._forwarding.add(stream)
            else:
                self._forwarding.discard(stream)
            if stream == b"e":  # the keeper's own errors (keystore failures) too
                self.error_stream.forward_to(self._keeper_error_line if wanted else None)
            on = b"1" if wanted else b"0"
            await self.slots.broadcast(Kind.FORWARD, stream, on, fence=False)

    def _keeper_error_line(self, line: bytes) -> None:
        self._fan_out(None, b"e", line)

    def _fan_out(self, source: Slot | None, stream: bytes, line: bytes) -> None:
        for slot in self.slots.all:
            if slot is not source and stream in slot.demand:
                slot.channel.send_log(stream, line)


async def run_keeper(
    keeper: Keeper,
    on_ready: Callable[[], None],
    on_reload: Callable[[bool], None],
) -> None:
    """Serve until SIGTERM/SIGINT; SIGHUP reloads."""
    await keeper.start()
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    loop.add_signal_handler(signal.SIGINT, stopping.set)
    reloads: set[asyncio.Task[None]] = set()

    async def reload() -> None:
        on_reload(await keeper.reload())

    def reload_in_background() -> None:
        task = asyncio.create_task(reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, reload_in_background)
    on_ready()
    try:
        await stopping.wait()
    finally:
        await keeper.stop()


def _mirror_reply(keystore: Keystore) -> list[bytes]:
    """What ``/v1/status`` and ``/v1/metrics`` show of a mirror keystore, which only this
    process holds (its checks run here); nothing for any other keystore."""
    if not isinstance(keystore, MirrorKeystore):
        return [Outcome.OK]
    report = keystore.report()
    return [Outcome.OK, json.dumps(report.as_status()).encode(), report.as_metrics().encode()]
