"""The system routes (spec §2.1-§2.5, §2.16, §10): version, status, readiness, metrics, the
route list's configured timeouts, the log streams, and the ``keys:`` of the config file."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from typing import Any

import aiohttp

from aiokes.crypto import Cipher, SecretKey
from tests.api.helpers import (
    KNOWN_KEY,
    b64,
    client_context,
    import_known_key,
    json_body,
    send,
)
from tests.conftest import RunningServer, StartServer

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")


# --- version, status, ready ------------------------------------------------------------------


async def test_version(server: RunningServer) -> None:
    reply = await send(server, "GET", "/version")
    document = reply.json()
    assert list(document) == ["version", "commit"]
    assert reply.body == json_body(document)
    assert document["version"]


async def test_status_of_a_healthy_server(server: RunningServer) -> None:
    reply = await send(server, "GET", "/v1/status")
    assert (reply.status, reply.content_type) == (200, "application/json")
    status = reply.json()
    for field in ("uptime", "num_cpu", "num_cpu_used", "mem_heap_used", "mem_stack_used"):
        assert isinstance(status[field], int), field
        assert status[field] >= 0, field
    assert status["num_cpu"] >= status["num_cpu_used"] >= 1
    assert (status["os"], status["arch"]) == ("linux", status["arch"])
    assert status["arch"]
    assert status["version"] == (await send(server, "GET", "/version")).json()["version"]
    assert isinstance(status["keystore_latency"], int)
    assert status["keystore_latency"] >= 1
    assert "keystore_unreachable" not in status
    assert "keystore_unavailable" not in status


async def test_ready_of_a_healthy_server(server: RunningServer) -> None:
    reply = await send(server, "GET", "/v1/ready")
    assert (reply.status, reply.body, reply.headers["content-length"]) == (200, b"", "0")


async def test_lost_keystore_directory_is_reported_and_recovered(server: RunningServer) -> None:
    shutil.rmtree(server.keystore_dir)
    status = await send(server, "GET", "/v1/status")
    assert status.status == 200
    document = status.json()
    assert (document["keystore_unreachable"], document["keystore_unavailable"]) == (True, True)
    assert "keystore_latency" not in document
    ready = await send(server, "GET", "/v1/ready")
    assert ready.is_error(504, "key store is not reachable"), ready
    create = await send(server, "PUT", "/v1/key/create/k")
    assert create.is_error(502, "failed to create key"), create
    server.keystore_dir.mkdir()
    assert (await send(server, "GET", "/v1/ready")).status == 200
    assert "keystore_unreachable" not in (await send(server, "GET", "/v1/status")).json()


# --- metrics ---------------------------------------------------------------------------------


def _samples(text: str) -> dict[str, str]:
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = value
    return samples


async def test_metrics_count_key_policy_and_identity_routes_only(server: RunningServer) -> None:
    for method, path in [
        ("GET", "/version"),
        ("GET", "/v1/status"),
        ("GET", "/v1/api"),
        ("GET", "/v1/ready"),
        ("GET", "/v1/metrics"),
        ("PUT", "/v1/key/create/k"),  # 200
        ("GET", "/v1/key/describe/k"),  # 200
        ("GET", "/v1/policy/list/"),  # 200
        ("GET", "/v1/key/describe/missing"),  # 404
        ("GET", "/v1/key/create/k"),  # 405: refused before the handler
        ("GET", "/v1/unknown"),  # 404 from the mux
    ]:
        await send(server, method, path)
    await send(server, "GET", "/v1/key/describe/k", who=server.stranger)  # 403: not counted
    reply = await send(server, "GET", "/v1/metrics")
    assert reply.status == 200
    assert reply.content_type == "text/plain; version=0.0.4; charset=utf-8"
    text = reply.body.decode()
    samples = _samples(text)
    assert samples['kes_http_request_success{code="200"}'] == "3"
    assert samples['kes_http_request_error{code="404"}'] == "1"
    assert not any(name.startswith("kes_http_request_failure") for name in samples)
    assert 'kes_http_request_error{code="403"}' not in samples
    assert 'kes_http_request_error{code="405"}' not in samples
    assert samples["kes_http_response_time_count"] == "4"
    assert samples["kes_http_request_active"] == "0"
    for family in ("kes_system_up_time", "kes_system_num_cpu", "kes_log_audit_events"):
        assert family in samples
    assert (
        "# HELP kes_http_request_success Number of requests that have been served successfully."
        in text.splitlines()
    )
    assert "# TYPE kes_http_request_success counter" in text.splitlines()


async def test_metrics_omit_request_counters_without_observations(server: RunningServer) -> None:
    text = (await send(server, "GET", "/v1/metrics")).body.decode()
    assert "kes_http_request_success" not in text
    assert "kes_http_request_error" not in text


# --- /v1/api configuration -------------------------------------------------------------------


async def test_api_shows_configured_timeouts(start_server: StartServer) -> None:
    server = await start_server(
        """\
        api:
          /v1/status:
            timeout: 30s
          /v1/key/create/:
            timeout: 1m
        """
    )
    routes = (await send(server, "GET", "/v1/api")).json()
    timeouts = {route["path"]: route["timeout"] for route in routes}
    assert (timeouts["/v1/status"], timeouts["/v1/key/create/"]) == (30, 60)
    assert (timeouts["/v1/key/generate/"], timeouts["/version"]) == (15, 10)


# --- log streams -----------------------------------------------------------------------------


async def _read_events(response: aiohttp.ClientResponse, count: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while len(events) < count:
        line = await asyncio.wait_for(response.content.readline(), timeout=5)
        assert line, "the stream ended"
        if line.strip():
            events.append(json.loads(line))
    return events


async def _end_dead_subscription(server: RunningServer) -> None:
    """Make the server notice that a log-stream client went away.

    The stream handler learns of a disconnect only when it next writes an event; until then
    it keeps the server's shutdown waiting for its full timeout (reported as a server bug).
    A failing create makes an audit event and an error event, so the handler writes, fails
    and ends.
    """
    shutil.rmtree(server.keystore_dir, ignore_errors=True)
    await send(server, "PUT", "/v1/key/create/after-unsubscribing")
    server.keystore_dir.mkdir()


async def test_audit_stream_delivers_requests_made_after_subscribing(
    server: RunningServer,
) -> None:
    await send(server, "GET", "/v1/key/describe/before-subscribing")
    connector = aiohttp.TCPConnector(ssl=client_context(server))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(server.url + "/v1/log/audit") as response,
    ):
        assert (response.status, response.content_type) == (200, "application/x-ndjson")
        # The server subscribes before it yields after sending the headers, long before a
        # new TLS connection's request can reach it.
        paths = [f"/v1/key/describe/probe-{i}" for i in range(3)]
        for path in paths:
            await send(server, "GET", path)
        events = await _read_events(response, 3)
    await _end_dead_subscription(server)
    assert [event["request"]["path"] for event in events] == paths
    for event in events:
        assert RFC3339.fullmatch(event["time"]), event
        assert event["request"]["identity"] == server.admin.identity
        assert event["request"]["ip"] == "127.0.0.1"
        assert event["response"]["code"] == 404
        assert isinstance(event["response"]["time"], int)


async def test_error_stream_delivers_keystore_failures(server: RunningServer) -> None:
    connector = aiohttp.TCPConnector(ssl=client_context(server))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(server.url + "/v1/log/error") as response,
    ):
        assert (response.status, response.content_type) == (200, "application/x-ndjson")
        shutil.rmtree(server.keystore_dir)
        assert (await send(server, "PUT", "/v1/key/create/lost-key")).status == 502
        (event,) = await _read_events(response, 1)
    await _end_dead_subscription(server)
    assert list(event) == ["message"]
    assert "failed to create key" in event["message"]
    assert "lost-key" in event["message"]


# --- keys: in the config file ----------------------------------------------------------------

KEYS = """\
    keys:
    - name: cfg-key
    - name: cfg-other
    """


async def test_config_keys_exist_at_start_and_survive_a_restart(
    start_server: StartServer,
) -> None:
    first = await start_server(KEYS)
    for name in ("cfg-key", "cfg-other"):
        described = (await send(first, "GET", f"/v1/key/describe/{name}")).json()
        assert (described["algorithm"], described["created_by"]) == (
            "AES256",
            first.admin.identity,
        )
    record = (first.keystore_dir / "cfg-key").read_bytes()
    sealed = await send(first, "PUT", "/v1/key/encrypt/cfg-key", b'{"plaintext":"aGk="}')
    described = (await send(first, "GET", "/v1/key/describe/cfg-key")).body
    await first.server.stop()

    second = await start_server(KEYS)
    assert (second.keystore_dir / "cfg-key").read_bytes() == record
    assert (await send(second, "GET", "/v1/key/describe/cfg-key")).body == described
    opened = await send(second, "PUT", "/v1/key/decrypt/cfg-key", sealed.body)
    assert opened.body == b'{"plaintext":"aGk="}\n'


async def test_config_keys_never_replace_an_existing_key(start_server: StartServer) -> None:
    first = await start_server()
    await import_known_key(first, "cfg-key")
    record = (first.keystore_dir / "cfg-key").read_bytes()
    await first.server.stop()
    second = await start_server(KEYS)
    assert (second.keystore_dir / "cfg-key").read_bytes() == record
    ciphertext = SecretKey(Cipher.AES256, KNOWN_KEY).encrypt(b"kept")
    body = json.dumps({"ciphertext": b64(ciphertext)}).encode()
    assert (await send(second, "PUT", "/v1/key/decrypt/cfg-key", body)).body == json_body(
        {"plaintext": b64(b"kept")}
    )
    assert (second.keystore_dir / "cfg-other").is_file()
