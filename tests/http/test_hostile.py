"""Hostile input against the HTTP layer (issue 12 items 1-3, issue 13): stalled heads and
bodies are cut off in bounded time and counted, smuggling forms get 400 and a closed
connection with nothing executed, and client errors log one line each, rate-limited, without
a traceback."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest

import aiokes.server.process
from tests.conftest import RecordingHandler, RunningServer, StartServer
from tests.http.raw import connect, request

# A route timeout short enough to wait for: the body of a request must arrive within it.
SHORT_ROUTE_TIMEOUT = """\
api:
  /v1/key/decrypt/:
    timeout: 1s
"""


ErrorLog = Callable[[], list[logging.LogRecord]]


@pytest.fixture
def error_log() -> Iterator[ErrorLog]:
    """Call it once the server runs (starting configures the error log afresh): the records
    of the error log from then on."""
    handler = RecordingHandler()
    records = handler.records
    logger = logging.getLogger("aiokes.error")

    def attach() -> list[logging.LogRecord]:
        logger.addHandler(handler)
        return records

    yield attach
    logger.removeHandler(handler)


def _stalled(server: RunningServer) -> int:
    return server.server.services.metrics.value("stalled")


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_a_stalled_body_is_answered_400_closed_and_counted(
    start_server: StartServer, error_log: ErrorLog, framing: str
) -> None:
    server = await start_server(SHORT_ROUTE_TIMEOUT)
    error_records = error_log()
    await server.client().create_key("k")
    if framing == "chunked":
        head = request("PUT", "/v1/key/decrypt/k", None, "Transfer-Encoding: chunked")
        partial = head + b"40\r\n" + b'{"ciphertext":'
    else:
        partial = request("PUT", "/v1/key/decrypt/k", b'{"ciphertext":', "Content-Length: 64")
    async with connect(server) as raw:
        await raw.send(partial)
        answer = await raw.answer()  # never comes if the server waits forever
        assert answer.status == 400
        assert answer.body == b'{"message":"invalid request body"\n}'
        assert await raw.closed_by_server()
    assert _stalled(server) == 1
    assert server.server.services.metrics.value("active") == 0
    lines = [r.getMessage() for r in error_records if "did not arrive in time" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "kes_http_request_error" in server.server.services.metrics.render()


async def test_a_stalled_head_closes_the_connection_and_is_counted(
    start_server: StartServer,
    monkeypatch: pytest.MonkeyPatch,
    error_log: ErrorLog,
) -> None:
    monkeypatch.setattr(aiokes.server.process, "HEADER_TIMEOUT", 0.3)
    server = await start_server()
    error_records = error_log()
    async with connect(server) as raw:
        await raw.send(b"GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        assert await raw.closed_by_server()
    assert _stalled(server) == 1
    assert any("request headers did not arrive" in r.getMessage() for r in error_records)


async def test_an_idle_new_connection_is_closed_quietly(
    start_server: StartServer,
    monkeypatch: pytest.MonkeyPatch,
    error_log: ErrorLog,
) -> None:
    monkeypatch.setattr(aiokes.server.process, "HEADER_TIMEOUT", 0.3)
    server = await start_server()
    error_records = error_log()
    async with connect(server) as raw:
        assert await raw.closed_by_server()
    assert _stalled(server) == 0
    assert not error_records


async def test_keep_alive_connections_wait_longer_than_the_header_timeout(
    start_server: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between requests the idle timeout (KES: 90 s) holds, not the header timeout."""
    monkeypatch.setattr(aiokes.server.process, "HEADER_TIMEOUT", 0.2)
    monkeypatch.setattr(aiokes.server.process, "KEEPALIVE_TIMEOUT", 0.6)
    server = await start_server()
    async with connect(server) as raw:
        await raw.send(request("GET", "/version"))
        assert (await raw.answer()).status == 200
        await raw.send(b"GET /version HTTP/1.1\r\n")  # a head begins: 0.2 s to finish it
        assert await raw.closed_by_server()
    assert _stalled(server) == 1


# (name, raw request): each must be refused with 400 and the connection closed; the
# smuggled part would create the key "smuggled" if anything executed it.
_SMUGGLED = b"PUT /v1/key/create/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
SMUGGLING = {
    "content-length-and-chunked": b"PUT /v1/key/create/a HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + _SMUGGLED,
    "chunked-and-content-length": b"PUT /v1/key/create/a HTTP/1.1\r\nHost: x\r\n"
    b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + _SMUGGLED,
    "duplicate-content-length": b"PUT /v1/key/create/a HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length: 0\r\nContent-Length: %d\r\n\r\n" % len(_SMUGGLED) + _SMUGGLED,
    "content-length-list": b"PUT /v1/key/create/a HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length: 0, 0\r\n\r\n" + _SMUGGLED,
    "chunked-not-last": b"PUT /v1/key/create/a HTTP/1.1\r\nHost: x\r\n"
    b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + _SMUGGLED,
    "identity-then-chunked": b"PUT /v1/key/create/a HTTP/1.1\r\nHost: x\r\n"
    b"Transfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n" + _SMUGGLED,
    "chunked-twice": b"PUT /v1/key/create/a HTTP/1.1\r\nHost: x\r\n"
    b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + _SMUGGLED,
    "space-before-colon": b"PUT /v1/key/create/a HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length : 0\r\n\r\n" + _SMUGGLED,
    "bare-lf": b"PUT /v1/key/create/a HTTP/1.1\nHost: x\nContent-Length: 0\n\n" + _SMUGGLED,
    "garbage": b"\x16\x03\x01 not http at all\r\n\r\n" + _SMUGGLED,
    "negative-length": b"PUT /v1/key/create/a HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length: -1\r\n\r\n" + _SMUGGLED,
}


@pytest.mark.parametrize("raw_request", list(SMUGGLING.values()), ids=list(SMUGGLING))
async def test_smuggling_forms_are_refused_with_400_and_closed(
    server: RunningServer, raw_request: bytes
) -> None:
    async with connect(server) as raw:
        await raw.send(raw_request)
        answer = await raw.answer()
        assert answer.status_line == "HTTP/1.1 400 Bad Request", answer
        assert answer.body == b"400 Bad Request"
        assert answer.header("connection") == "close"
        assert await raw.closed_by_server()
    assert not (server.keystore_dir / "a").exists()
    assert not (server.keystore_dir / "smuggled").exists()


@pytest.mark.parametrize(
    "chunks", [b"zz\r\nabc\r\n0\r\n\r\n", b"ffffffffffffffffffff\r\nabc", b"3\r\nabcXX0\r\n\r\n"]
)
async def test_a_bad_chunk_is_a_malformed_body_and_closes(
    server: RunningServer, chunks: bytes
) -> None:
    await server.client().create_key("k")
    head = request("PUT", "/v1/key/encrypt/k", None, "Transfer-Encoding: chunked")
    async with connect(server) as raw:
        await raw.send(head + chunks + _SMUGGLED)
        answer = await raw.answer()
        assert answer.status == 400
        assert answer.body == b'{"message":"invalid request body"\n}'
        assert await raw.closed_by_server()
    assert not (server.keystore_dir / "smuggled").exists()


async def test_an_announced_oversized_body_is_refused_unread_and_closed(
    server: RunningServer,
) -> None:
    await server.client().create_key("k")
    async with connect(server) as raw:
        await raw.send(request("PUT", "/v1/key/encrypt/k", b"{", "Content-Length: 1000001"))
        answer = await raw.answer()  # at once: the server does not wait for a megabyte
        assert answer.status == 400
        assert answer.body == b'{"message":"invalid request body"\n}'
        assert answer.header("connection") == "close"
        assert await raw.closed_by_server()


async def test_requests_before_a_malformed_one_are_answered_first(
    server: RunningServer,
) -> None:
    async with connect(server) as raw:
        await raw.send(request("GET", "/version") + b"GET /version HTTP/9\r\n\r\n")
        assert (await raw.answer()).status == 200
        assert (await raw.answer()).status == 400
        assert await raw.closed_by_server()


async def test_client_errors_log_one_line_each_rate_limited_without_traceback(
    server: RunningServer, error_log: ErrorLog
) -> None:
    error_records = error_log()
    for _ in range(40):
        async with connect(server) as raw:
            await raw.send(b"BROKEN\r\n\r\n")
            assert (await raw.answer()).status == 400
    assert error_records, "a refused request is worth a line"
    assert len(error_records) < 40, "the lines are rate-limited"
    for record in error_records:
        assert record.exc_info is None
        assert "\n" not in record.getMessage()
        assert record.levelno == logging.WARNING
        assert "127.0.0.1" in record.getMessage()


async def test_an_upgrade_request_is_answered_and_the_connection_closed(
    server: RunningServer,
) -> None:
    async with connect(server) as raw:
        upgrade = request("GET", "/version", None, "Connection: Upgrade", "Upgrade: h2c")
        await raw.send(upgrade + _SMUGGLED)
        answer = await raw.answer()
        assert answer.status == 200
        assert await raw.closed_by_server()
    assert not (server.keystore_dir / "smuggled").exists()
