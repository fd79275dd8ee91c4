"""How long a connection waits for its client: one timer per connection, rarely moved."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

__all__ = ["ClientDeadline"]


class ClientDeadline:
    """When waiting for the client's bytes must end (Go's ReadHeaderTimeout and IdleTimeout).

    Deadlines move on every request, and moving a timer costs more than comparing a number
    when it fires, so the timer never runs further ahead than ``step`` (the header timeout):
    a head beginning on an idle connection needs no new timer. ``expired`` runs once the
    deadline passed with the client silent; while ``answering()`` the route's own timeout
    bounds the wait and the deadline is looked at again later.
    """

    __slots__ = ("_answering", "_at", "_expired", "_loop", "_step", "_timer", "_timer_at")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        step: float,
        expired: Callable[[], None],
        answering: Callable[[], bool],
    ) -> None:
        self._loop = loop
        self._step = step
        self._expired = expired
        self._answering = answering
        self._at = math.inf
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def wait(self, seconds: float) -> None:
        """The client must send its next bytes within ``seconds`` from now."""
        now = self._loop.time()
        self._at = now + seconds
        if self._at < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._arm(now)

    def lift(self) -> None:
        """No deadline (a request's body is bounded by the route that reads it)."""
        self._at = math.inf

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _arm(self, now: float) -> None:
        self._timer_at = min(self._at, now + self._step)
        self._timer = self._loop.call_at(self._timer_at, self._check)

    def _check(self) -> None:
        self._timer, self._timer_at = None, math.inf
        now = self._loop.time()
        if self._answering():
            self._timer_at = now + self._step
            self._timer = self._loop.call_at(self._timer_at, self._check)
        elif now < self._at:
            if self._at != math.inf:
                self._arm(now)
        else:
            self._expired()
