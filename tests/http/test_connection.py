"""The HTTP/1.1 layer with well-formed clients (issue 13): keep-alive, pipelining answered in
order, HTTP/1.0, ``Expect: 100-continue``, chunked bodies, streaming answers, Go's headers
and no ``Server`` header, and a drain on stop that finishes what is in flight."""

from __future__ import annotations

import asyncio
import base64
import json

from tests.conftest import RunningServer
from tests.http.raw import HANG_GUARD, connect, request

GENERATE_BODY = b'{"context":"Y3R4"}'


async def _with_key(server: RunningServer, name: str = "k") -> RunningServer:
    await server.client().create_key(name)
    return server


async def test_pipelined_requests_are_answered_in_order_on_one_connection(
    server: RunningServer,
) -> None:
    await _with_key(server)
    async with connect(server) as raw:
        await raw.send(
            request("GET", "/version")
            + request("PUT", "/v1/key/generate/k", GENERATE_BODY)
            + request("GET", "/v1/key/describe/missing")
            + request("GET", "/v1/key/describe/k")
        )
        answers = [await raw.answer() for _ in range(4)]
    assert [a.status for a in answers] == [200, 200, 404, 200]
    assert "version" in json.loads(answers[0].body)
    assert set(json.loads(answers[1].body)) == {"plaintext", "ciphertext"}
    assert answers[2].body == b'{"message":"key does not exist"\n}'
    assert json.loads(answers[3].body)["name"] == "k"


async def test_keep_alive_serves_many_requests_on_one_connection(server: RunningServer) -> None:
    await _with_key(server)
    async with connect(server) as raw:
        for _ in range(20):
            await raw.send(request("POST", "/v1/key/generate/k", GENERATE_BODY))
            answer = await raw.answer()
            assert answer.status == 200, answer
            assert answer.header("connection") is None


async def test_answers_carry_gos_headers_in_gos_order_and_no_server_header(
    server: RunningServer,
) -> None:
    await _with_key(server)
    async with connect(server) as raw:
        await raw.send(request("PUT", "/v1/key/generate/k", GENERATE_BODY))
        generated = await raw.answer()
        await raw.send(request("GET", "/v1/key/generate/k"))
        refused = await raw.answer()
        await raw.send(request("GET", "/nowhere"))
        missing = await raw.answer()
    assert [name for name, _ in generated.headers] == ["content-type", "date", "content-length"]
    assert generated.header("content-type") == "application/json"
    assert generated.header("content-length") == str(len(generated.body))
    assert str(generated.header("date")).endswith(" GMT")
    assert [name for name, _ in refused.headers] == [
        "accept",
        "content-type",
        "date",
        "content-length",
    ]
    assert [name for name, _ in missing.headers] == [
        "content-type",
        "x-content-type-options",
        "date",
        "content-length",
    ]
    for answer in (generated, refused, missing):
        assert answer.header("server") is None


async def test_http_1_0_is_answered_in_http_1_0_and_closed(server: RunningServer) -> None:
    async with connect(server) as raw:
        await raw.send(b"GET /version HTTP/1.0\r\n\r\n")
        answer = await raw.answer()
        assert answer.status_line == "HTTP/1.0 200 OK"
        assert answer.header("connection") == "close"
        assert await raw.closed_by_server()


async def test_http_1_0_keep_alive_is_honoured(server: RunningServer) -> None:
    async with connect(server) as raw:
        for _ in range(2):
            await raw.send(b"GET /version HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            answer = await raw.answer()
            assert answer.status_line == "HTTP/1.0 200 OK"
            assert answer.header("connection") == "keep-alive"


async def test_connection_close_is_honoured(server: RunningServer) -> None:
    async with connect(server) as raw:
        await raw.send(request("GET", "/version", None, "Connection: close"))
        answer = await raw.answer()
        assert (answer.status, answer.header("connection")) == (200, "close")
        assert await raw.closed_by_server()


async def test_expect_100_continue_gets_continue_before_the_body(server: RunningServer) -> None:
    await _with_key(server)
    async with connect(server) as raw:
        head = request("PUT", "/v1/key/generate/k", None, "Expect: 100-continue")
        head = head.replace(b"\r\n\r\n", b"\r\nContent-Length: %d\r\n\r\n" % len(GENERATE_BODY))
        await raw.send(head)
        interim = await raw.answer()
        assert interim.status_line == "HTTP/1.1 100 Continue"
        await raw.send(GENERATE_BODY)
        answer = await raw.answer()
    assert answer.status == 200, answer
    assert set(json.loads(answer.body)) == {"plaintext", "ciphertext"}


async def test_expect_100_continue_refused_without_continue(server: RunningServer) -> None:
    """A request refused before its body is read gets its answer, not a 100, and the
    connection closes: the body was never read."""
    async with connect(server, server.stranger) as raw:
        head = request("PUT", "/v1/key/generate/k", None, "Expect: 100-continue")
        await raw.send(head.replace(b"\r\n\r\n", b"\r\nContent-Length: 18\r\n\r\n"))
        answer = await raw.answer()
        assert answer.status == 403, answer
        assert await raw.closed_by_server()


async def test_chunked_body_in_pieces_is_read_whole(server: RunningServer) -> None:
    await _with_key(server)
    encrypted = await server.client().encrypt("k", b"secret", b"ctx")
    body = b'{"ciphertext":"%s","context":"%s"}' % (
        base64.b64encode(encrypted),
        base64.b64encode(b"ctx"),
    )
    async with connect(server) as raw:
        await raw.send(request("PUT", "/v1/key/decrypt/k", None, "Transfer-Encoding: chunked"))
        for start in range(0, len(body), 7):
            piece = body[start : start + 7]
            await raw.send(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece))
        await raw.send(b"0\r\n\r\n")
        answer = await raw.answer()
        assert answer.status == 200, answer
        assert base64.b64decode(json.loads(answer.body)["plaintext"]) == b"secret"
        await raw.send(request("GET", "/version"))  # the connection goes on
        assert (await raw.answer()).status == 200


async def test_head_request_gets_no_body(server: RunningServer) -> None:
    async with connect(server) as raw:
        await raw.send(request("HEAD", "/version") + request("GET", "/version"))
        head = await raw.reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 405 ")
        following = await raw.answer()  # the next bytes are the next answer, not a body
        assert following.status == 200


async def test_log_stream_is_chunked_and_ends_when_the_client_leaves(
    server: RunningServer,
) -> None:
    stream = server.server.services.audit_stream
    async with connect(server) as raw:
        await raw.send(request("GET", "/v1/log/audit"))
        head = await raw.answer()
        assert head.status == 200
        assert head.header("transfer-encoding") == "chunked"
        assert head.header("content-type") == "application/x-ndjson"
        assert stream.active
        await server.client().version()
        event = json.loads(await raw.chunk())
        assert event["request"]["path"] == "/version"
    async with asyncio.timeout(HANG_GUARD):
        while stream.active:  # noqa: ASYNC110 - no event to wait on: the subscriber set
            await asyncio.sleep(0.01)


async def test_stop_closes_idle_connections_and_finishes_requests_in_flight(
    server: RunningServer,
) -> None:
    await _with_key(server)
    metrics = server.server.services.metrics
    async with connect(server) as idle, connect(server) as busy:
        await idle.send(request("GET", "/version"))
        assert (await idle.answer()).status == 200
        head = request("PUT", "/v1/key/generate/k", GENERATE_BODY[:5])
        await busy.send(head.replace(b"Content-Length: 5", b"Content-Length: 18"))
        async with asyncio.timeout(HANG_GUARD):
            while metrics.value("active") == 0:  # noqa: ASYNC110 - a counter, no event
                await asyncio.sleep(0.001)
        stopping = asyncio.ensure_future(server.server.stop())
        assert await idle.closed_by_server()
        await busy.send(GENERATE_BODY[5:])
        answer = await busy.answer()
        assert answer.status == 200, answer
        assert answer.header("connection") == "close"
        await asyncio.wait_for(stopping, HANG_GUARD)


async def test_nothing_is_answered_after_a_connection_close_request(
    server: RunningServer,
) -> None:
    await _with_key(server)
    async with connect(server) as raw:
        closing = request("GET", "/version", None, "Connection: close")
        await raw.send(closing + request("PUT", "/v1/key/create/after-close"))
        assert (await raw.answer()).status == 200
        assert await raw.closed_by_server()
    assert not (server.keystore_dir / "after-close").exists()
