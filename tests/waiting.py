"""Waiting on a condition nothing signals (another process's files, the fake vault's state)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

POLL = 0.02


async def until(condition: Callable[[], bool], *, limit: float = 60.0) -> None:
    """Return once ``condition()`` holds; fail after ``limit`` seconds."""
    async with asyncio.timeout(limit):
        while not condition():  # noqa: ASYNC110 - the state changes elsewhere, unsignalled
            await asyncio.sleep(POLL)
