"""Periodic jobs for the key cache, scheduled on an injectable clock.

KES runs each cache job on its own Go ticker: the first run one period after start, then
every period, and ticks the job was too slow to take are dropped rather than queued. A
:class:`Ticker` keeps that schedule as plain numbers so that tests can move a fake clock
and ask which jobs are due, instead of sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

__all__ = ["Ticker", "run_forever", "run_logged"]

_error_log = logging.getLogger("aiokes.error")


@dataclass(slots=True)
class Ticker:
    """A job that is due every ``period`` seconds of a clock, Go ticker style."""

    name: str
    period: float
    job: Callable[[], Awaitable[None]]
    next_due: float = field(default=0.0)

    def restart(self, now: float) -> None:
        """Make the first run due one period after ``now``."""
        self.next_due = now + self.period

    def take_due(self, now: float) -> bool:
        """Whether the job is due at ``now``; if so, schedule the next tick after ``now``.

        Missed ticks are skipped, not replayed: a cache flush that ran late must not run
        again immediately to "catch up".
        """
        if now < self.next_due:
            return False
        missed = math.floor((now - self.next_due) / self.period)
        self.next_due += (missed + 1) * self.period
        return True


async def run_logged(ticker: Ticker) -> None:
    """Run the job once; an unexpected exception is logged, never raised.

    A periodic job that died silently would leave the cache unflushed forever, so the loop
    must survive any bug in one run. The log names the job only: jobs handle key material.
    """
    try:
        await ticker.job()
    except Exception:
        _error_log.exception("key cache: periodic job %r failed", ticker.name)


async def run_forever(ticker: Ticker, clock: Callable[[], float]) -> None:
    """Sleep until the ticker is due by ``clock``, run its job, repeat until cancelled."""
    while True:
        await asyncio.sleep(max(0.0, ticker.next_due - clock()))
        if ticker.take_due(clock()):
            await run_logged(ticker)
