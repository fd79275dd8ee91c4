"""A state's request counter: a replaced state waits for exactly its running requests."""

from __future__ import annotations

import asyncio

from aiokes.api.state import Activity

HANG_GUARD = 5.0  # seconds; only reached when the behaviour under test is broken


async def test_an_idle_state_is_idle_at_once() -> None:
    activity = Activity()
    await asyncio.wait_for(activity.wait_idle(), HANG_GUARD)
    activity.enter()
    activity.exit()
    await asyncio.wait_for(activity.wait_idle(), HANG_GUARD)


async def test_waiters_wake_when_the_last_request_leaves() -> None:
    activity = Activity()
    activity.enter()
    activity.enter()
    waiters = [asyncio.ensure_future(activity.wait_idle()) for _ in range(2)]
    await asyncio.sleep(0)  # let both start waiting
    activity.exit()
    await asyncio.sleep(0)
    assert not any(waiter.done() for waiter in waiters)  # one request still runs
    activity.exit()
    await asyncio.wait_for(asyncio.gather(*waiters), HANG_GUARD)
    assert activity.running == 0


async def test_a_waiter_giving_up_leaves_the_others_waiting() -> None:
    activity = Activity()
    activity.enter()
    quitter = asyncio.ensure_future(activity.wait_idle())
    stayer = asyncio.ensure_future(activity.wait_idle())
    await asyncio.sleep(0)
    quitter.cancel()
    await asyncio.sleep(0)
    assert not stayer.done()
    activity.exit()
    await asyncio.wait_for(stayer, HANG_GUARD)


async def test_a_state_busy_again_makes_new_waiters_wait() -> None:
    activity = Activity()
    activity.enter()
    first = asyncio.ensure_future(activity.wait_idle())
    await asyncio.sleep(0)
    activity.exit()
    await asyncio.wait_for(first, HANG_GUARD)
    activity.enter()
    second = asyncio.ensure_future(activity.wait_idle())
    await asyncio.sleep(0)
    assert not second.done()
    activity.exit()
    await asyncio.wait_for(second, HANG_GUARD)
