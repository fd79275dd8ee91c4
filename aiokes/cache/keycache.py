"""The master-key cache: KES's expiry semantics, a size bound and one read per key at a time.

:class:`KeyCache` sits in front of a :class:`~aiokes.keystore.Keystore` and keeps *decoded*
key records by name, per process (spec §8):

* ``expiry_any``: every period the whole cache is dropped. This is a periodic full flush,
  not a per-entry TTL, so every hot key is re-read once per period.
* ``expiry_unused``: every ``unused/2`` entries not used since the previous sweep are
  dropped and the "used" bit of the others is cleared, so an idle entry lives between
  ``unused/2`` and ``unused``.
* ``expiry_offline``: when positive, the keystore is probed every ``probe_interval``. While
  the last probe failed the cache is *offline*: the two sweeps above pause (cached keys keep
  serving during an outage), the whole cache is dropped every ``expiry_offline`` instead,
  and :meth:`KeyCache.status` answers "unreachable" at once without contacting the keystore.
* ``max_keys``: a least-recently-used bound, which KES does not have.

Differences from KES HEAD, on purpose:

* Defaults are KES's documented ones (any 5m, unused 30s), not the ones its code applies
  (HEAD sets ``any`` to 30s and disables ``unused`` when ``unused`` is unset, spec §6.4).
* Offline state exists only when offline caching is on. HEAD's probe runs regardless and its
  ``Status`` short-circuits on the flag even with ``offline: 0``, although its own comment
  says "if ... offline caching is enabled". We follow the comment: with ``offline`` off,
  nothing depends on the flag, so the probe does not run and ``status`` always asks the
  keystore (a fresh answer instead of one up to 10 s old).
* A read that was in flight when its key was deleted or created, or when the cache was
  flushed, is returned to the callers waiting for it but never inserted: a deleted key
  must not come back (minio/minio#17377 is what a stale key cache costs).
* ``delete`` evicts the local entry whatever the keystore answered, because a failed or
  timed-out delete may still have happened; and a successful ``create`` evicts too, because
  it proves any cached value under that name was deleted elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, Generic, TypeVar

from aiokes.cache.settings import CacheSettings
from aiokes.cache.stats import CacheStats
from aiokes.cache.ticker import Ticker, run_forever, run_logged
from aiokes.errors import KeyNotFound, KeystoreError, KeystoreUnreachable
from aiokes.keystore import Keystore, KeystoreState, Page

__all__ = ["KeyCache"]

T = TypeVar("T")

_error_log = logging.getLogger("aiokes.error")

# How long aclose() lets reads in flight finish: KES's route timeout, after which no
# request can still be waiting for the answer.
_CLOSE_GRACE = 15.0


class _Entry(Generic[T]):
    __slots__ = ("used", "value")

    def __init__(self, value: T) -> None:
        self.value = value
        # Set on insert, as in KES: a fresh entry survives the next unused sweep.
        self.used = True


class _Flight(Generic[T]):
    """One keystore read of one name, shared by every ``get`` that missed meanwhile."""

    __slots__ = ("may_insert", "task")

    def __init__(self, fetch: Callable[[_Flight[T]], Coroutine[Any, Any, T]]) -> None:
        # Cleared when a delete, create or flush happens during the read: its result may
        # predate that event, so it must not outlive it in the cache.
        self.may_insert = True
        self.task = asyncio.get_running_loop().create_task(fetch(self))


class KeyCache(Generic[T]):
    """A :class:`~aiokes.keystore.Keystore` front that caches decoded records.

    ``get`` returns ``decode(record)``. A ``decode`` that raises fails that read like a
    keystore error: nothing is cached and every waiting caller gets the exception.
    Background jobs run from :meth:`start` until :meth:`aclose`; tests instead move the
    injected ``clock`` and call :meth:`run_due`, or call the jobs themselves.
    """

    def __init__(
        self,
        keystore: Keystore,
        decode: Callable[[bytes], T],
        settings: CacheSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_drop: Callable[[list[str] | None], None] | None = None,
        used_elsewhere: Callable[[], Awaitable[Iterable[str]]] | None = None,
    ) -> None:
        """``on_drop`` hears of entries the periodic jobs or ``max_keys`` dropped (``None``:
        all of them), and ``used_elsewhere`` names the entries used by copies of this cache
        since the last unused sweep (the key keeper's workers, :mod:`aiokes.keeper`)."""
        self._keystore = keystore
        self._on_drop = on_drop
        self._used_elsewhere = used_elsewhere
        self._decode = decode
        self._settings = settings
        self._lru = settings.max_keys > 0
        self._clock = clock
        self._entries: OrderedDict[str, _Entry[T]] = OrderedDict()
        self._flights: dict[str, _Flight[T]] = {}
        self._fetch_tasks: set[asyncio.Task[T]] = set()
        self._background: list[asyncio.Task[None]] = []
        self._probe_failed = False
        self._tickers = self._make_tickers()
        self._hits = self._misses = self._evictions = self._expirations = 0
        self._keystore_reads = self._keystore_read_errors = 0

    # -- lifecycle -------------------------------------------------------------------------

    def _make_tickers(self) -> list[Ticker]:
        settings = self._settings
        candidates = [
            Ticker("probe", settings.probe_interval, self.probe),
            Ticker("offline flush", settings.expiry_offline, self.sweep_offline),
            Ticker("any flush", settings.expiry_any, self.sweep_any),
            Ticker("unused sweep", settings.expiry_unused / 2, self.sweep_unused),
        ]
        if settings.expiry_offline <= 0:
            # Without offline caching the probe result would change nothing (module doc).
            candidates = candidates[2:]
        tickers = [ticker for ticker in candidates if ticker.period > 0]
        now = self._clock()
        for ticker in tickers:
            ticker.restart(now)
        return tickers

    async def start(self) -> None:
        """Start the periodic jobs, each first due one period from now. Idempotent."""
        if self._background:
            return
        now = self._clock()
        for ticker in self._tickers:
            ticker.restart(now)
            task = asyncio.create_task(run_forever(ticker, self._clock), name=ticker.name)
            self._background.append(task)

    async def aclose(self, *, grace: float = _CLOSE_GRACE) -> None:
        """Stop the jobs, let keystore reads in flight finish, and drop every entry.

        Reads still running after ``grace`` seconds are cancelled; their callers get a
        ``KeystoreError``. The keystore is left open: whoever built it closes it, after
        this returns.
        """
        for job in self._background:
            job.cancel()
        if self._fetch_tasks and grace > 0:
            # Requests still waiting for these reads (on reload) should get their key.
            await asyncio.wait(self._fetch_tasks, timeout=grace)
        tasks = [*self._background, *self._fetch_tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._background.clear()
        self._flush()

    async def run_due(self) -> None:
        """Run every job due at ``clock()``, as the background tasks would."""
        now = self._clock()
        for ticker in self._tickers:
            if ticker.take_due(now):
                await run_logged(ticker)

    # -- reads -----------------------------------------------------------------------------

    async def get(self, name: str) -> T:
        """The decoded record of ``name``; raises ``KeyNotFound`` or ``KeystoreError``."""
        value = self.cached(name)
        return await self._get_uncached(name) if value is None else value

    def cached(self, name: str) -> T | None:
        """The record of ``name`` if cached (a use and a hit), else ``None``. The hot path: a
        dict lookup, a bit set and an LRU touch; no lock, no task, no coroutine."""
        entry = self._entries.get(name)
        if entry is None:
            return None
        entry.used = True
        if self._lru:
            self._entries.move_to_end(name)
        self._hits += 1
        return entry.value

    def peek(self, name: str) -> T | None:
        """The record of ``name`` if cached, without counting a use or a hit."""
        entry = self._entries.get(name)
        return None if entry is None else entry.value

    def __contains__(self, name: object) -> bool:
        """Whether ``name`` is cached; does not count as a use."""
        return name in self._entries

    async def _get_uncached(self, name: str) -> T:
        self._misses += 1
        flight = self._flights.get(name)
        if flight is None:
            flight = self._start_flight(name)
        task = flight.task
        try:
            # Shielded: a caller that gives up must not cancel the read for the others.
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled() and not _current_task_cancelling():
                # The read was cancelled by aclose(), not this caller: report a failure,
                # since a CancelledError would look like this request being cancelled.
                raise KeystoreError("key cache closed while reading a key") from None
            raise

    def _start_flight(self, name: str) -> _Flight[T]:
        flight: _Flight[T] = _Flight(lambda flight: self._fetch(name, flight))
        self._flights[name] = flight
        self._fetch_tasks.add(flight.task)
        flight.task.add_done_callback(self._forget_fetch)
        return flight

    def _forget_fetch(self, task: asyncio.Task[T]) -> None:
        self._fetch_tasks.discard(task)
        # Mark the outcome as seen: when every caller gave up, nobody else awaits it and
        # asyncio would log "exception was never retrieved".
        if not task.cancelled():
            task.exception()

    async def _fetch(self, name: str, flight: _Flight[T]) -> T:
        self._keystore_reads += 1
        try:
            value = self._decode(await self._keystore.get(name))
        except KeyNotFound:
            raise
        except Exception:
            self._keystore_read_errors += 1
            raise
        finally:
            # Same loop step as the insert below (no await in between), so a get always
            # finds either this flight or the entry.
            if self._flights.get(name) is flight:
                del self._flights[name]
        if flight.may_insert:
            self._insert(name, value)
        return value

    def _insert(self, name: str, value: T) -> None:
        self._entries[name] = _Entry(value)
        self._entries.move_to_end(name)
        limit = self._settings.max_keys
        evicted = []
        while 0 < limit < len(self._entries):
            evicted.append(self._entries.popitem(last=False)[0])
            self._evictions += 1
        if evicted and self._on_drop is not None:
            self._on_drop(evicted)

    # -- writes and pass-through -----------------------------------------------------------

    async def create(self, name: str, value: bytes) -> None:
        """Create ``name`` in the keystore; does not cache it (KES does not either)."""
        await self._keystore.create(name, value)
        # The keystore had no such key, so anything cached under the name is stale.
        self._evict(name)

    async def delete(self, name: str) -> None:
        """Delete ``name`` from the keystore and from this cache."""
        try:
            await self._keystore.delete(name)
        finally:
            # Even on failure: a delete that timed out may have happened anyway.
            self._evict(name)

    async def list(self, prefix: str, limit: int = -1) -> Page:
        """Always the keystore's listing: the cache holds only recently used keys."""
        return await self._keystore.list(prefix, limit)

    async def status(self) -> KeystoreState:
        """The keystore's status; while offline, ``KeystoreUnreachable`` at once."""
        if self.offline:
            raise KeystoreUnreachable("keystore is offline")
        return await self._keystore.status()

    def _evict(self, name: str) -> None:
        self._entries.pop(name, None)
        flight = self._flights.pop(name, None)
        if flight is not None:
            # Detached, so the next get starts a read that postdates this write.
            flight.may_insert = False

    def _expire_all(self) -> None:
        self._expirations += self._flush()
        if self._on_drop is not None:
            self._on_drop(None)

    def _flush(self) -> int:
        dropped = len(self._entries)
        self._entries.clear()
        for flight in self._flights.values():
            flight.may_insert = False
        self._flights.clear()
        return dropped

    # -- periodic jobs ---------------------------------------------------------------------

    @property
    def offline(self) -> bool:
        """Offline caching is on and the last keystore probe failed."""
        return self._probe_failed and self._settings.expiry_offline > 0

    async def sweep_any(self) -> None:
        """Drop every entry (the ``expiry_any`` job); paused while offline."""
        if not self.offline:
            self._expire_all()

    async def sweep_unused(self) -> None:
        """Drop entries unused since the last sweep and clear the bit of the others."""
        if self.offline:
            return
        if self._used_elsewhere is not None:
            for name in await self._used_elsewhere():
                entry = self._entries.get(name)
                if entry is not None:
                    entry.used = True
        idle = [name for name, entry in self._entries.items() if not entry.used]
        for entry in self._entries.values():
            entry.used = False
        for name in idle:
            del self._entries[name]
        self._expirations += len(idle)
        if idle and self._on_drop is not None:
            self._on_drop(idle)

    async def sweep_offline(self) -> None:
        """Drop every entry if offline (the ``expiry_offline`` job)."""
        if self.offline:
            self._expire_all()

    async def probe(self) -> None:
        """Ask the keystore for its status and go offline or online accordingly.

        A probe slower than its own period counts as failed, so a hanging keystore cannot
        keep the cache "online".
        """
        timeout = self._settings.probe_interval if self._settings.probe_interval > 0 else None
        try:
            async with asyncio.timeout(timeout):
                await self._keystore.status()
        except Exception as exc:
            self._note_probe(exc)
        else:
            self._note_probe(None)

    def _note_probe(self, failure: Exception | None) -> None:
        failed = failure is not None
        if failed != self._probe_failed and self._settings.expiry_offline > 0:
            if failure is not None:
                _error_log.error("key cache: keystore unreachable, going offline: %r", failure)
            else:
                _error_log.info("key cache: keystore reachable again, going online")
        self._probe_failed = failed

    def stats(self) -> CacheStats:
        """Current counters; cheap, lock-free."""
        return CacheStats(
            hits=self._hits,
            misses=self._misses,
            evictions=self._evictions,
            expirations=self._expirations,
            keystore_reads=self._keystore_reads,
            keystore_read_errors=self._keystore_read_errors,
            entries=len(self._entries),
            offline=self.offline,
        )


def _current_task_cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
