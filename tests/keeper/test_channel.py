"""The keeper's channel: framing, names in chunks, and a SOCK_SEQPACKET socketpair that keeps
message boundaries and order (aiokes/keeper/channel.py)."""

from __future__ import annotations

import asyncio

import pytest

from aiokes.errors import KeyExists, KeyNotFound, KeystoreError, KeystoreUnreachable
from aiokes.keeper.channel import (
    MAX_MESSAGE,
    Channel,
    Kind,
    Message,
    channel_pair,
    decode,
    encode,
    failure_reply,
    name_chunks,
    parse_names,
    raise_failure,
)


def test_a_message_round_trips_with_empty_and_binary_fields() -> None:
    message = decode(encode(Kind.CREATE, 2**63, b"name", b"", bytes(range(256))))
    assert (message.kind, message.id) == (Kind.CREATE, 2**63)
    assert message.fields == [b"name", b"", bytes(range(256))]


@pytest.mark.parametrize("data", [b"", b"g", encode(Kind.GET, 1, b"name")[:-1]])
def test_malformed_messages_are_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"short|truncated"):
        decode(data)


def test_many_names_are_split_into_message_sized_chunks() -> None:
    names = [f"key-{n:05}-" + "x" * 60 for n in range(3000)]
    chunks = list(name_chunks(names))
    assert len(chunks) > 1
    assert all(len(chunk) < MAX_MESSAGE for chunk in chunks)
    assert [name for chunk in chunks for name in parse_names(chunk)] == names
    assert list(name_chunks([])) == []


@pytest.mark.parametrize(
    "error",
    [KeyNotFound(), KeyExists(), KeystoreUnreachable("down"), KeystoreError("broken")],
)
def test_errors_cross_as_the_same_kind(error: Exception) -> None:
    with pytest.raises(type(error)) as raised:
        raise_failure(failure_reply(error))
    assert str(raised.value) == str(error)


def test_an_unexpected_error_crosses_as_a_keystore_error_without_its_text() -> None:
    with pytest.raises(KeystoreError) as raised:
        raise_failure(failure_reply(RuntimeError("secret detail")))
    assert "secret" not in str(raised.value)


async def test_a_backlog_keeps_the_order_of_every_message() -> None:
    """More than the socket buffer holds: queued, then delivered whole and in order."""
    keeper_end, worker_end = channel_pair()
    received: list[Message] = []
    done = asyncio.Event()

    def on_message(message: Message) -> None:
        received.append(message)
        if len(received) == 400:
            done.set()

    sender = Channel(keeper_end, lambda message: None)
    receiver = Channel(worker_end, on_message)
    payload = b"k" * 30_000
    for n in range(400):
        sender.send(Kind.REPLY, n, payload)
    async with asyncio.timeout(10):
        await done.wait()
    assert [message.id for message in received] == list(range(400))
    assert all(message.fields == [payload] for message in received)
    sender.close()
    receiver.close()
    keeper_end.close()
    worker_end.close()


async def test_the_peer_closing_is_reported() -> None:
    keeper_end, worker_end = channel_pair()
    closed = asyncio.Event()
    channel = Channel(worker_end, lambda message: None, closed.set)
    keeper_end.close()
    async with asyncio.timeout(5):
        await closed.wait()
    assert channel.closed
    worker_end.close()
