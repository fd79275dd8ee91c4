"""The HTTP layer in ``aiokes server --workers 3``: every worker refuses smuggling forms,
answers pipelined requests in order, sends no ``Server`` header, and cuts off stalled bodies,
counted in the metrics of the whole server; each check on fresh connections, so that they
land on different workers."""

from __future__ import annotations

import ssl
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from tests.http.raw import open_raw, request
from tests.server_process import config_head, spawn_server, stop_process, write_server_files

CONNECTIONS = 6  # fresh connections per check: with 3 workers, most land on several


@dataclass
class Workers:
    port: int
    context: ssl.SSLContext
    keystore: Path


@pytest.fixture
async def three_workers(tmp_path: Path, tls_ca: trustme.CA) -> AsyncIterator[Workers]:
    admin = write_server_files(tmp_path, tls_ca)
    config = tmp_path / "config.yml"
    config.write_text(
        config_head(tmp_path, admin.identity)
        + textwrap.dedent(
            f"""\
            keystore:
              fs:
                path: {tmp_path}/keys
            api:
              /v1/key/encrypt/:
                timeout: 1s
            """
        )
    )
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    context.load_cert_chain(admin.cert_file, admin.key_file)
    process, port = await spawn_server(config, "--addr", "127.0.0.1:0", "--workers", "3")
    try:
        yield Workers(port, context, tmp_path / "keys")
    finally:
        await stop_process(process)


async def test_every_worker_serves_the_lean_layer(three_workers: Workers) -> None:
    port, context = three_workers.port, three_workers.context
    async with open_raw(port, context) as raw:
        await raw.send(request("PUT", "/v1/key/create/k"))
        assert (await raw.answer()).status == 200
    for _ in range(CONNECTIONS):
        async with open_raw(port, context) as raw:
            await raw.send(request("GET", "/version") + request("GET", "/v1/key/describe/k"))
            first, second = await raw.answer(), await raw.answer()
            assert (first.status, second.status) == (200, 200)
            assert first.header("server") is None
            assert second.header("server") is None
        async with open_raw(port, context) as raw:
            await raw.send(
                b"PUT /v1/key/create/a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            )
            assert (await raw.answer()).status_line == "HTTP/1.1 400 Bad Request"
            assert await raw.closed_by_server()
    assert not (three_workers.keystore / "a").exists()


async def test_stalled_bodies_are_cut_off_and_counted_across_workers(
    three_workers: Workers,
) -> None:
    port, context = three_workers.port, three_workers.context
    stalled = request("PUT", "/v1/key/encrypt/k", b'{"plaintext":', "Content-Length: 64")
    for _ in range(3):
        async with open_raw(port, context) as raw:
            await raw.send(stalled)
            answer = await raw.answer()
            assert answer.status == 400
            assert answer.body == b'{"message":"invalid request body"\n}'
            assert await raw.closed_by_server()
    async with open_raw(port, context) as raw:
        await raw.send(request("GET", "/v1/metrics"))
        metrics = (await raw.answer()).body.decode()
    assert "aiokes_http_request_stalled 3\n" in metrics
