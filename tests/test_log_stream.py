"""A log stream across processes (aiokes/log.py): local subscribers, forwarding to the hub,
events from other processes, and the hub told of the first and the last subscriber."""

from __future__ import annotations

import asyncio

from aiokes.log import LogStream


async def test_published_events_reach_subscribers_and_the_hub() -> None:
    stream = LogStream()
    forwarded: list[bytes] = []
    was_active = stream.active
    stream.forward_to(forwarded.append)
    # another process has a subscriber: events must be made
    assert (was_active, stream.active) == (False, True)
    subscription = await stream.open()
    stream.publish(b"mine\n")
    stream.deliver(b"theirs\n")
    events = subscription.__aiter__()
    assert [await anext(events), await anext(events)] == [b"mine\n", b"theirs\n"]
    assert forwarded == [b"mine\n"]  # another process's event is not sent back
    subscription.close()
    stream.forward_to(None)
    assert not stream.active


async def test_the_hub_hears_of_the_first_and_the_last_subscriber() -> None:
    stream = LogStream()
    calls: list[str] = []
    confirmed = asyncio.Event()

    async def wanted() -> None:
        calls.append("wanted")
        await confirmed.wait()  # the hub confirms once every process forwards

    stream.on_demand(wanted, lambda: calls.append("unwanted"))
    opening = asyncio.create_task(stream.open())
    await asyncio.sleep(0)
    assert not opening.done()  # the subscription waits for the confirmation
    confirmed.set()
    first = await opening
    second = await stream.open()
    first.close()
    assert calls == ["wanted"]
    second.close()
    second.close()  # idempotent
    assert calls == ["wanted", "unwanted"]
