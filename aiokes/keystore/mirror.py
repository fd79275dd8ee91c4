"""The mirror keystore: every key in two keystores, so that losing one loses nothing.

``keystore: mirror: {primary: …, secondary: …}``. The rules, and why:

* **create** is create-only on both, primary first. A name either side holds is taken. The
  create is acknowledged only once both hold the record. If the secondary refuses or fails,
  the primary's copy is deleted again (leaving a tombstone, because another server may have
  read the key in between, see :mod:`._tombstone`) and the client gets the error. If that
  undo fails too, the key stays on the primary alone and unacknowledged; the error log says
  so and the next check copies it, byte for byte, to the secondary: the record can never
  differ between the two, because both sides are create-only and only ever receive it from
  the other side. The same holds after a crash (``kill -9``) between the two writes.
* **get** prefers the primary. When the primary fails, or no longer has the key and holds no
  tombstone for it (the key was lost, not deleted), the secondary answers. Each situation is
  logged once, not per request.
* **delete** removes from the primary first (its tombstone then hides the key from every
  read), then from the secondary. A primary that cannot delete fails the delete with nothing
  changed; a secondary that cannot is reported and finished by the next check.
* **check** (at start-up and every ``check_interval``) compares the two listings and brings
  them in step: a key only on the primary is copied to the secondary; a key only on the
  secondary is deleted there when the primary holds its tombstone (an unfinished delete) and
  otherwise copied back to the primary (the primary lost it). Copies are create-only, so
  several servers checking at once cannot conflict. What is out of step is reported by
  :meth:`MirrorKeystore.report` (``/v1/status`` and ``/v1/metrics``).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import sys
from dataclasses import replace
from datetime import UTC, datetime

from aiokes.errors import KeyExists, KeyNameReserved, KeyNotFound, KeystoreError
from aiokes.keystore import Keystore, KeystoreState, Page
from aiokes.keystore._mirror_report import MirrorReport
from aiokes.keystore._tombstone import Tombstone, Tombstoned
from aiokes.log import error_logger

__all__ = ["MirrorKeystore", "MirrorReport", "all_names"]

_log = logging.getLogger("aiokes.keystore.mirror")
_ALL = sys.maxsize  # a listing limit that means "every name"


async def all_names(store: Keystore) -> list[str]:
    """Every key name of ``store``, sorted."""
    return (await store.list("", _ALL)).names


class MirrorKeystore:
    """A :class:`~aiokes.keystore.Keystore` over a primary and a secondary keystore."""

    def __init__(
        self, primary: Keystore, secondary: Keystore, *, check_interval: float = 300.0
    ) -> None:
        self.primary = primary
        self.secondary = secondary
        self._check_interval = check_interval
        self._report = MirrorReport()
        self._primary_failing = False
        self._lost_logged: set[str] = set()
        self._checker: asyncio.Task[None] | None = None
        self._check_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"MirrorKeystore({self.primary!r}, {self.secondary!r})"

    async def open(self) -> None:
        """Start the check loop: one check now, then one every ``check_interval``."""
        if self._checker is None:
            self._checker = asyncio.create_task(self._check_loop(), name="mirror check")

    def report(self) -> MirrorReport:
        return self._report

    # -- the Keystore protocol ----------------------------------------------------------------

    async def create(self, name: str, value: bytes) -> None:
        await self._refuse_if_on_secondary(name)
        await self.primary.create(name, value)
        try:
            await self.secondary.create(name, value)
        except KeyExists as exc:
            if not isinstance(exc, KeyNameReserved) and await self._holds(name, value):
                return  # a concurrent check copied our own record over: that is success
            await self._undo_create(name, exc)
            raise
        except BaseException as exc:  # failure or cancellation: the primary must not keep it
            await asyncio.shield(self._undo_create(name, exc))
            raise

    async def get(self, name: str) -> bytes:
        try:
            value = await self.primary.get(name)
        except KeyNotFound:
            if await self._deleted_on_primary(name):
                raise
            value = await self.secondary.get(name)  # KeyNotFound if neither has it
            self._note_lost(name)
            return value
        except KeystoreError as exc:
            self._note_primary_failing(exc)
            return await self.secondary.get(name)
        self._note_primary_working()
        return value

    async def delete(self, name: str) -> None:
        missing_on_primary = False
        try:
            await self.primary.delete(name)
        except KeyNotFound:
            missing_on_primary = True
        try:
            await self.secondary.delete(name)
        except KeyNotFound:
            if missing_on_primary:
                raise
        except KeystoreError as exc:
            if not missing_on_primary:
                error_logger.error(
                    "mirror: key '%s' deleted from the primary but not from the secondary "
                    "(the next check finishes it): %s",
                    name,
                    exc,
                )
                self._mark(only_secondary=name)
            raise

    async def list(self, prefix: str, limit: int = -1) -> Page:
        try:
            page = await self.primary.list(prefix, limit)
        except KeystoreError as exc:
            self._note_primary_failing(exc)
            return await self.secondary.list(prefix, limit)
        self._note_primary_working()
        return page

    async def status(self) -> KeystoreState:
        """The primary's; while it is down, the secondary's, since reads still work."""
        secondary_ok = True
        try:
            await self.secondary.status()
        except KeystoreError:
            secondary_ok = False
        self._report = replace(self._report, secondary_reachable=secondary_ok)
        try:
            state = await self.primary.status()
        except KeystoreError as exc:
            self._note_primary_failing(exc)
            if not secondary_ok:
                raise
            return await self.secondary.status()
        self._note_primary_working()
        return state

    async def close(self) -> None:
        checker, self._checker = self._checker, None
        if checker is not None:
            checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checker
        try:
            await self.primary.close()
        finally:
            await self.secondary.close()

    # -- tombstones: either side's counts -----------------------------------------------------

    async def tombstone(self, name: str) -> Tombstone | None:
        found = [await _tombstone(store, name) for store in (self.primary, self.secondary)]
        known = [tombstone for tombstone in found if tombstone is not None]
        return max(known, key=lambda tombstone: tombstone.deleted_at, default=None)

    async def tombstones(self) -> builtins.list[Tombstone]:
        latest: dict[str, Tombstone] = {}
        for store in (self.primary, self.secondary):
            if isinstance(store, Tombstoned):
                for tombstone in await store.tombstones():
                    known = latest.get(tombstone.name)
                    if known is None or known.deleted_at < tombstone.deleted_at:
                        latest[tombstone.name] = tombstone
        return [latest[name] for name in sorted(latest)]

    async def forget_deletion(self, name: str) -> None:
        for store in (self.primary, self.secondary):
            if isinstance(store, Tombstoned):
                await store.forget_deletion(name)

    # -- checking and repairing ---------------------------------------------------------------

    async def check(self, *, repair: bool = True) -> MirrorReport:
        """Compare the listings; with ``repair``, bring the sides in step (see module doc)."""
        async with self._check_lock:
            self._report = await self._compare_and_repair(repair)
            if not self._report.in_step:
                error_logger.warning("mirror: keystores out of step: %s", self._report.describe())
            return self._report

    async def _compare_and_repair(self, repair: bool) -> MirrorReport:
        report = replace(self._report, checked_at=datetime.now(UTC))
        sides: list[set[str] | None] = []
        for store in (self.primary, self.secondary):
            try:
                sides.append(set(await all_names(store)))
            except KeystoreError as exc:
                error_logger.error("mirror: check: cannot list %r: %s", store, exc)
                sides.append(None)
        primary, secondary = sides
        report = replace(
            report,
            primary_reachable=primary is not None,
            secondary_reachable=secondary is not None,
            compared=primary is not None and secondary is not None,
        )
        if primary is None or secondary is None:
            return report
        only_primary, only_secondary = primary - secondary, secondary - primary
        repaired = 0
        if repair:
            for name in sorted(only_primary):
                if await self._copy(name, self.primary, self.secondary):
                    only_primary.discard(name)
                    repaired += 1
            for name in sorted(only_secondary):
                if await self._settle_only_on_secondary(name):
                    only_secondary.discard(name)
                    repaired += 1
        return replace(
            report,
            only_primary=frozenset(only_primary),
            only_secondary=frozenset(only_secondary),
            repaired=report.repaired + repaired,
        )

    async def _settle_only_on_secondary(self, name: str) -> bool:
        try:
            if await self._deleted_on_primary(name):
                _log.info("mirror: finishing the delete of '%s' on the secondary", name)
                with contextlib.suppress(KeyNotFound):
                    await self.secondary.delete(name)
                return True
        except KeystoreError as exc:
            error_logger.error("mirror: check: cannot delete '%s' on the secondary: %s", name, exc)
            return False
        return await self._copy(name, self.secondary, self.primary)

    async def _copy(self, name: str, source: Keystore, target: Keystore) -> bool:
        """Copy one record, create-only; ``True`` when the target now holds it."""
        try:
            value = await source.get(name)
            await target.create(name, value)
        except KeyNameReserved as exc:
            error_logger.error("mirror: check: cannot copy '%s': %s", name, exc.message)
            return False
        except KeyExists:
            return True  # another server's check, or a client's create, got there first
        except KeyNotFound:
            return True  # deleted meanwhile: nothing left to copy
        except KeystoreError as exc:
            side = "primary" if target is self.primary else "secondary"
            error_logger.error("mirror: check: cannot copy '%s' to the %s: %s", name, side, exc)
            return False
        side = "primary" if target is self.primary else "secondary"
        error_logger.info("mirror: check: copied key '%s' to the %s", name, side)
        return True

    async def _check_loop(self) -> None:
        while True:
            try:
                await self.check()
            except Exception as exc:  # a check must never end the loop
                error_logger.error("mirror: check failed: %r", exc)
            if self._check_interval <= 0:
                return
            await asyncio.sleep(self._check_interval)

    # -- helpers ------------------------------------------------------------------------------

    async def _refuse_if_on_secondary(self, name: str) -> None:
        try:
            await self.secondary.get(name)
        except KeyNotFound:
            return
        raise KeyExists()

    async def _holds(self, name: str, value: bytes) -> bool:
        try:
            return await self.secondary.get(name) == value
        except KeystoreError:
            return False

    async def _undo_create(self, name: str, cause: BaseException) -> None:
        try:
            await self.primary.delete(name)
        except (KeystoreError, KeyNotFound) as exc:
            error_logger.error(
                "mirror: key '%s' is on the primary only: the secondary failed (%s) and "
                "removing it from the primary failed too (%s); the next check copies it to "
                "the secondary, or delete it",
                name,
                _short(cause),
                exc,
            )
            self._mark(only_primary=name)
        else:
            error_logger.error(
                "mirror: create of key '%s' undone on the primary: the secondary failed: %s",
                name,
                _short(cause),
            )

    async def _deleted_on_primary(self, name: str) -> bool:
        try:
            return await _tombstone(self.primary, name) is not None
        except KeystoreError:
            return True  # cannot tell a lost key from a deleted one: do not resurrect it

    def _note_primary_failing(self, exc: BaseException) -> None:
        self._report = replace(self._report, primary_reachable=False)
        if not self._primary_failing:
            self._primary_failing = True
            error_logger.error(
                "mirror: primary keystore failing, serving from the secondary: %s", exc
            )

    def _note_primary_working(self) -> None:
        if self._primary_failing:
            self._primary_failing = False
            error_logger.info("mirror: primary keystore working again")
        if not self._report.primary_reachable:
            self._report = replace(self._report, primary_reachable=True)

    def _note_lost(self, name: str) -> None:
        self._mark(only_secondary=name)
        if name not in self._lost_logged:
            self._lost_logged.add(name)
            error_logger.error(
                "mirror: key '%s' is missing on the primary, served from the secondary "
                "(the next check copies it back)",
                name,
            )

    def _mark(self, *, only_primary: str = "", only_secondary: str = "") -> None:
        report = self._report
        self._report = replace(
            report,
            only_primary=report.only_primary | ({only_primary} if only_primary else set()),
            only_secondary=report.only_secondary | ({only_secondary} if only_secondary else set()),
        )


async def _tombstone(store: Keystore, name: str) -> Tombstone | None:
    return await store.tombstone(name) if isinstance(store, Tombstoned) else None


def _short(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
