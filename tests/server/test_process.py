"""Server lifecycle: reload swaps the whole state, a broken config changes nothing, stop drains."""

from __future__ import annotations

import pytest
import trustme
from cryptography import x509

from aiokes.errors import NotAllowed
from aiokes.identity import identity_of_certificate
from tests.conftest import RecordingHandler, RunningServer, StartServer


async def test_reload_swaps_policies_and_starts_with_an_empty_cache(
    server: RunningServer,
) -> None:
    admin, app = server.client(), server.client(server.app)
    await admin.create_key("my-key")
    await app.generate_key("my-key")
    old_state = server.server.state
    text = server.config_file.read_text().replace("/v1/key/generate/my-key*", "/v1/key/nothing")
    server.config_file.write_text(text)

    await server.server.reload()

    assert server.server.state is not old_state
    assert server.server.state.master_keys.stats().entries == 0
    with pytest.raises(NotAllowed):
        await app.generate_key("my-key")
    assert await admin.generate_key("my-key")  # keys survive: they live in the keystore


async def test_reload_with_a_broken_config_keeps_serving_the_old_one(
    server: RunningServer,
) -> None:
    app = server.client(server.app)
    await server.client().create_key("my-key")
    old_state = server.server.state
    server.config_file.write_text(server.config_file.read_text() + "\ntls:\n  auth: maybe\n")

    await server.server.reload()

    assert server.server.state is old_state
    assert await app.generate_key("my-key")


async def test_reload_logs_exactly_why_it_failed(server: RunningServer) -> None:
    import logging

    handler = RecordingHandler()
    logging.getLogger("aiokes.error").addHandler(handler)
    try:
        server.config_file.write_text(
            server.config_file.read_text() + "\ncache:\n  expiry:\n    any: -5m\n"
        )
        await server.server.reload()
    finally:
        logging.getLogger("aiokes.error").removeHandler(handler)
    messages = [record.getMessage() for record in handler.records]
    assert any(
        "reload failed" in m and "config.yml" in m and "cache.expiry.any" in m for m in messages
    ), messages


async def test_stop_closes_the_keystore_and_refuses_new_connections(server: RunningServer) -> None:
    client = server.client()
    await client.create_key("my-key")
    await server.server.stop()
    with pytest.raises(Exception, match=r"cannot reach"):
        await server.client().version()


def _served_certificate(server: RunningServer) -> bytes:
    import socket
    import ssl

    context = ssl.create_default_context(cafile=server.ca_file)
    context.load_cert_chain(server.admin.cert_file, server.admin.key_file)
    with (
        socket.create_connection(("127.0.0.1", server.server.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        certificate = tls.getpeercert(binary_form=True)
    assert certificate is not None
    return certificate


async def test_a_renewed_certificate_at_the_same_path_is_served_after_a_re_read(
    server: RunningServer, tls_ca: trustme.CA
) -> None:
    import asyncio

    before = await asyncio.to_thread(_served_certificate, server)
    renewed = tls_ca.issue_cert("127.0.0.1", "localhost")
    renewed.private_key_pem.write_to_path(str(server.directory / "server.key"))
    renewed.cert_chain_pems[0].write_to_path(str(server.directory / "server.crt"))

    assert server.server.reload_certificate()

    after = await asyncio.to_thread(_served_certificate, server)
    assert after != before
    assert identity_of_certificate(after) == identity_of_certificate(
        x509.load_pem_x509_certificate(renewed.cert_chain_pems[0].bytes())
    )
    assert await server.client().version()


async def test_a_broken_certificate_keeps_the_previous_one(
    server: RunningServer, tls_ca: trustme.CA
) -> None:
    import asyncio

    before = await asyncio.to_thread(_served_certificate, server)
    other = tls_ca.issue_cert("127.0.0.1")
    other.cert_chain_pems[0].write_to_path(str(server.directory / "server.crt"))  # key mismatch

    assert not server.server.reload_certificate()

    assert await asyncio.to_thread(_served_certificate, server) == before


async def test_refused_requests_are_audited_with_the_identity(server: RunningServer) -> None:
    import asyncio

    events = server.client().stream_log("audit")
    first = asyncio.ensure_future(anext(events))
    async with asyncio.timeout(10):  # requests until one shows up: the stream is subscribed
        while not first.done():
            await server.client().version()
            await asyncio.wait([first], timeout=0.05)
    with pytest.raises(NotAllowed):
        await server.client(server.stranger).create_key("x")
    event = await asyncio.wait_for(anext(events), 10)
    while event["request"]["path"] != "/v1/key/create/x":
        event = await asyncio.wait_for(anext(events), 10)
    assert event["request"]["identity"] == server.stranger.identity
    assert event["response"]["code"] == 403
    await events.aclose()


async def test_payloads_above_the_inline_limit_are_processed_off_the_event_loop(
    start_server: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from aiokes.crypto import secret_key

    server = await start_server("crypto:\n  inline_limit: 16\n")
    client = server.client()
    await client.create_key("my-key")  # an AES-256 key: each seal makes one AESGCM
    seen: list[str] = []

    # Spied on where aiokes hands the payload to the cryptography library: a method of the
    # key itself cannot be, as the compiled build calls it directly.
    def aesgcm(key: bytes) -> AESGCM:
        seen.append(threading.current_thread().name)
        return AESGCM(key)

    monkeypatch.setattr(secret_key, "AESGCM", aesgcm)
    small = await client.encrypt("my-key", b"x" * 16)
    large = await client.encrypt("my-key", b"x" * 17)
    monkeypatch.undo()
    assert seen[0] == threading.main_thread().name
    assert seen[1] != threading.main_thread().name
    assert len(seen) == 2
    assert await client.decrypt("my-key", small) == b"x" * 16
    assert await client.decrypt("my-key", large) == b"x" * 17


async def test_a_hanging_keystore_read_ends_at_the_route_timeout(
    start_server: StartServer,
) -> None:
    import asyncio

    from aiokes.errors import APIError

    server = await start_server("api:\n  /v1/key/generate/:\n    timeout: 1s\n")
    await server.client().create_key("my-key")
    keystore = server.server.state.keystore
    assert keystore is not None  # a one-process server owns its keystore
    never = asyncio.Event()

    async def hanging_get(name: str) -> bytes:  # a keystore that stopped answering
        await never.wait()
        raise AssertionError("unreachable")

    keystore.get = hanging_get  # type: ignore[method-assign]
    async with asyncio.timeout(10):  # generous: the route timeout is 1 s
        with pytest.raises(APIError) as info:
            await server.client().generate_key("my-key")
    assert (info.value.status, info.value.message) == (503, "request timed out")
    never.set()
