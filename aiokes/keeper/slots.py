"""The key keeper's view of the worker slots: which process is in each, whether it is alive,
and broadcasts that wait for every live worker's acknowledgement or fence the silent one.

A worker says ``HELLO`` with its pid; the keeper opens a pidfd for it, so it learns of the
worker's death at once (the fd becomes readable) and can kill it without racing a reused pid.
A broadcast waits for the acknowledgement of every live worker; a worker that dies meanwhile
needs none, and one that stays silent for :data:`ACK_TIMEOUT` is *fenced*: SIGKILL through
its pidfd, then a wait for its exit. Once SIGKILL is sent, the process runs no more code, so
nothing it cached can be served after the broadcast returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import os
import signal
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aiokes.keeper.channel import Channel, Message
from aiokes.log import error_logger

__all__ = ["ACK_TIMEOUT", "Slot", "WorkerSlots"]

ACK_TIMEOUT = 3.0  # a live worker drops a name within this, or it is fenced
_FENCE_TIMEOUT = 5.0  # how long a SIGKILLed worker may take to be gone


@dataclass(eq=False)
class Slot:
    """One worker slot: its channel and the process currently in it."""

    index: int
    channel: Channel
    pid: int = 0
    pidfd: int = -1
    demand: set[bytes] = field(default_factory=set)  # log streams with a subscriber there
    acks: dict[int, asyncio.Future[None]] = field(default_factory=dict)
    used: dict[int, set[str]] = field(default_factory=dict)  # collection sequence -> names

    @property
    def alive(self) -> bool:
        return self.pidfd >= 0


class WorkerSlots:
    """Every slot's channel and process. ``on_message(slot, message)`` gets what workers
    send; ``on_gone(slot)`` runs when a slot's process is gone (with its demand still set)."""

    def __init__(
        self,
        sockets: Iterable[socket.socket],
        on_message: Callable[[Slot, Message], None],
        on_gone: Callable[[Slot], None],
    ) -> None:
        self._on_gone = on_gone
        self._sequence = itertools.count(1)
        self.all: list[Slot] = []
        for index, sock in enumerate(sockets):
            slot = Slot(index, Channel(sock, lambda message: None))
            slot.channel.on_message = functools.partial(on_message, slot)
            self.all.append(slot)

    def live(self) -> list[Slot]:
        return [slot for slot in self.all if slot.alive and not slot.channel.closed]

    def next_sequence(self) -> int:
        return next(self._sequence)

    def hello(self, slot: Slot, pid: int) -> bool:
        """A (new) worker in the slot: watch for its death. False if it is already gone."""
        self.forget(slot)
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return False
        slot.pid, slot.pidfd = pid, pidfd
        asyncio.get_running_loop().add_reader(pidfd, self._died, slot, pidfd)
        return True

    def acknowledged(self, slot: Slot, sequence: int) -> None:
        future = slot.acks.pop(sequence, None)
        if future is not None and not future.done():
            future.set_result(None)

    def _died(self, slot: Slot, pidfd: int) -> None:
        if slot.pidfd == pidfd:
            self.forget(slot)

    def forget(self, slot: Slot) -> None:
        """The slot's process is gone: nothing to wait for from it."""
        if slot.pidfd >= 0:
            with contextlib.suppress(ValueError, RuntimeError):
                asyncio.get_running_loop().remove_reader(slot.pidfd)
            os.close(slot.pidfd)
        slot.pid, slot.pidfd = 0, -1
        for future in slot.acks.values():
            if not future.done():
                future.set_result(None)
        slot.acks.clear()
        if slot.demand:
            self._on_gone(slot)
            slot.demand.clear()

    def close(self) -> None:
        for slot in self.all:
            slot.channel.close()
            self.forget(slot)

    async def broadcast(
        self, kind: bytes, *fields: bytes, fence: bool = True, sequence: int = 0
    ) -> None:
        """Send to every live worker and wait for each acknowledgement (or its death). With
        ``fence``, a worker silent for :data:`ACK_TIMEOUT` is killed before this returns."""
        sequence = sequence or self.next_sequence()
        loop = asyncio.get_running_loop()
        waiting: list[tuple[Slot, asyncio.Future[None]]] = []
        for slot in self.live():
            future: asyncio.Future[None] = loop.create_future()
            slot.acks[sequence] = future
            slot.channel.send(kind, sequence, *fields)
            waiting.append((slot, future))
        if not waiting:
            return
        _, pending = await asyncio.wait([future for _, future in waiting], timeout=ACK_TIMEOUT)
        silent = [slot for slot, future in waiting if future in pending]
        for slot, _ in waiting:
            slot.acks.pop(sequence, None)
        if fence and silent:
            await asyncio.gather(*(self._fence(slot) for slot in silent))

    async def _fence(self, slot: Slot) -> None:
        """Kill a worker that did not confirm a drop, and wait until it is gone."""
        pidfd, pid = slot.pidfd, slot.pid
        if pidfd < 0:
            return
        error_logger.error(
            "key keeper: worker %d (pid %d) did not confirm dropping a key in %gs: killing it",
            slot.index,
            pid,
            ACK_TIMEOUT,
        )
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        loop = asyncio.get_running_loop()
        gone: asyncio.Future[None] = loop.create_future()

        def exited() -> None:
            if not gone.done():
                gone.set_result(None)

        with contextlib.suppress(ValueError, RuntimeError):
            loop.remove_reader(pidfd)
        loop.add_reader(pidfd, exited)
        try:
            # SIGKILL already stops it running any code; the wait is for the supervisor.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(gone, _FENCE_TIMEOUT)
        finally:
            if slot.pidfd == pidfd:
                self.forget(slot)
