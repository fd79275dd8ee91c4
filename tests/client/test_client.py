"""The async client against a real aiokes server over mutual TLS: every API method, the
canonical errors it raises, raw requests and log streams."""

from __future__ import annotations

import asyncio
import json

import pytest

from aiokes.client import DEK
from aiokes.errors import (
    APIError,
    DecryptError,
    IdentityNotFound,
    KeyExists,
    KeyNotFound,
    NotAllowed,
    PolicyNotFound,
)
from tests.conftest import RunningServer

# -- server information -------------------------------------------------------------------


async def test_version_names_the_server_version(server: RunningServer) -> None:
    version = await server.client().version()
    assert version["version"]
    assert all(isinstance(value, str) for value in version.values())


async def test_status_reports_the_kes_fields(server: RunningServer) -> None:
    state = await server.client().status()
    assert {"version", "os", "arch", "uptime", "num_cpu", "num_cpu_used"} <= state.keys()
    assert not state.get("keystore_unreachable")


async def test_ready_returns_when_the_keystore_is_up(server: RunningServer) -> None:
    await server.client().ready()  # raises unless the server answers 200


async def test_api_lists_every_route_with_its_limits(server: RunningServer) -> None:
    routes = {(api["method"], api["path"]): api for api in await server.client().api()}
    assert routes[("PUT", "/v1/key/encrypt/")]["max_body"] == 1_000_000
    assert ("GET", "/v1/key/list/") in routes


async def test_metrics_is_prometheus_text(server: RunningServer) -> None:
    text = await server.client().metrics()
    assert "# TYPE kes_" in text


# -- keys ---------------------------------------------------------------------------------


async def test_key_lifecycle_create_describe_list_delete(server: RunningServer) -> None:
    client = server.client()
    await client.create_key("my-key")
    description = await client.describe_key("my-key")
    assert description["name"] == "my-key"
    assert description["algorithm"] in ("AES256", "ChaCha20")
    assert description["created_by"] == server.admin.identity
    assert await client.list_keys() == ["my-key"]
    await client.delete_key("my-key")
    with pytest.raises(KeyNotFound):
        await client.describe_key("my-key")


async def test_creating_an_existing_key_raises_key_exists(server: RunningServer) -> None:
    client = server.client()
    await client.create_key("my-key")
    with pytest.raises(KeyExists) as caught:
        await client.create_key("my-key")
    assert (caught.value.status, caught.value.message) == (400, "key already exists")


async def test_operations_on_a_missing_key_raise_key_not_found(server: RunningServer) -> None:
    client = server.client()
    with pytest.raises(KeyNotFound):
        await client.generate_key("missing")
    with pytest.raises(KeyNotFound):
        await client.encrypt("missing", b"data")


async def test_generated_dek_decrypts_only_with_its_context(server: RunningServer) -> None:
    client = server.client()
    await client.create_key("my-key")
    dek = await client.generate_key("my-key", b'{"bucket":"bucket/object"}')
    assert len(dek.plaintext) == 32
    assert await client.decrypt("my-key", dek.ciphertext, b'{"bucket":"bucket/object"}') == (
        dek.plaintext
    )
    with pytest.raises(DecryptError):
        await client.decrypt("my-key", dek.ciphertext, b"another context")


async def test_generate_without_context_uses_empty_associated_data(server: RunningServer) -> None:
    client = server.client()
    await client.create_key("my-key")
    dek = await client.generate_key("my-key")
    assert await client.decrypt("my-key", dek.ciphertext) == dek.plaintext


async def test_encrypt_decrypt_round_trip_and_tampering(server: RunningServer) -> None:
    client = server.client()
    await client.create_key("my-key")
    ciphertext = await client.encrypt("my-key", b"hello world", b"ctx")
    assert await client.decrypt("my-key", ciphertext, b"ctx") == b"hello world"
    tampered = bytes([ciphertext[0] ^ 1]) + ciphertext[1:]
    with pytest.raises(DecryptError) as caught:
        await client.decrypt("my-key", tampered, b"ctx")
    assert caught.value.message == "decryption failed: ciphertext is not authentic"


async def test_imported_key_encrypts_and_decrypts(server: RunningServer) -> None:
    client = server.client()
    await client.import_key("my-imported", bytes(range(32)))
    assert (await client.describe_key("my-imported"))["algorithm"] == "AES256"
    ciphertext = await client.encrypt("my-imported", b"secret")
    assert await client.decrypt("my-imported", ciphertext) == b"secret"


async def test_import_of_a_short_key_is_refused_with_kes_message(server: RunningServer) -> None:
    with pytest.raises(APIError) as caught:
        await server.client().import_key("short", b"too short")
    assert (caught.value.status, caught.value.message) == (406, "invalid key size for 'AES256'")


async def test_bulk_decrypt_answers_in_request_order(server: RunningServer) -> None:
    client = server.client()
    await client.create_key("my-key")
    deks = [await client.generate_key("my-key", f"ctx{i}".encode()) for i in range(3)]
    items = [(dek.ciphertext, f"ctx{i}".encode()) for i, dek in enumerate(deks)]
    assert await client.bulk_decrypt("my-key", items) == [dek.plaintext for dek in deks]


async def test_hmac_is_deterministic_and_keyed(server: RunningServer) -> None:
    client = server.client()
    await client.create_key("key-a")
    await client.create_key("key-b")
    first = await client.hmac("key-a", b"message")
    assert len(first) == 32
    assert await client.hmac("key-a", b"message") == first
    assert await client.hmac("key-b", b"message") != first


async def test_list_keys_filters_by_prefix_and_sorts(server: RunningServer) -> None:
    client = server.client()
    for name in ("my-key-2", "other", "my-key-1"):
        await client.create_key(name)
    assert await client.list_keys("my-key") == ["my-key-1", "my-key-2"]
    assert await client.list_keys() == ["my-key-1", "my-key-2", "other"]
    assert await client.list_keys("none") == []


def test_dek_repr_hides_the_plaintext() -> None:
    dek = DEK(plaintext=b"\x01" * 32, ciphertext=b"ct")
    assert "plaintext" not in repr(dek)
    assert "ciphertext=b'ct'" in repr(dek)


# -- policies and identities ---------------------------------------------------------------


async def test_policy_apis_describe_read_and_list(server: RunningServer) -> None:
    client = server.client()
    assert await client.list_policies() == ["my-app"]
    assert (await client.describe_policy("my-app"))["name"] == "my-app"
    rules = await client.read_policy("my-app")
    assert "/v1/key/create/my-key*" in rules["allow"]
    assert "/v1/key/generate/my-key-denied*" in rules["deny"]
    with pytest.raises(PolicyNotFound):
        await client.describe_policy("nope")


async def test_identity_apis_describe_and_list(server: RunningServer) -> None:
    client = server.client()
    identities = await client.list_identities()
    assert {server.admin.identity, server.app.identity} <= set(identities)
    assert (await client.describe_identity(server.app.identity))["policy"] == "my-app"
    assert (await client.describe_identity(server.admin.identity))["admin"] is True
    with pytest.raises(IdentityNotFound):
        await client.describe_identity(server.stranger.identity)


async def test_describe_self_is_flat_for_a_policy_client(server: RunningServer) -> None:
    me = await server.client(server.app).describe_self()
    assert me["identity"] == server.app.identity
    assert me["admin"] is False
    assert me["policy"] == "my-app"
    assert "/v1/key/create/my-key*" in me["allow"]


async def test_policy_denial_raises_not_allowed(server: RunningServer) -> None:
    app = server.client(server.app)
    await app.create_key("my-key-1")
    with pytest.raises(NotAllowed):
        await app.create_key("other-key")
    with pytest.raises(NotAllowed):
        await app.generate_key("my-key-denied-1")
    with pytest.raises(NotAllowed):
        await server.client(server.stranger).list_keys()


# -- raw requests and logs -----------------------------------------------------------------


async def test_request_returns_status_headers_and_body_unchanged(server: RunningServer) -> None:
    client = server.client()
    status, headers, body = await client.request("GET", "/v1/key/describe/missing")
    assert status == 404
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == {"message": "key does not exist"}
    status, _, body = await client.request("GET", "/v1/key/list")
    assert (status, json.loads(body)["names"]) == (200, [])


async def test_audit_log_stream_yields_events_as_they_happen(server: RunningServer) -> None:
    client = server.client()
    stream = client.stream_log("audit")
    first_event = asyncio.ensure_future(anext(stream))
    while not first_event.done():  # keep acting until the subscription sees something
        await client.create_key(f"logged-{len(await client.list_keys())}")
        await asyncio.wait([first_event], timeout=0.05)
    event = first_event.result()
    assert event["request"]["path"].startswith("/v1/key/")
    await stream.aclose()
    # The server notices a gone subscriber at its next event; without one, stopping it
    # would wait for its drain timeout.
    await client.create_key("after-unsubscribe")


async def test_stream_log_rejects_unknown_kinds(server: RunningServer) -> None:
    with pytest.raises(ValueError, match="unknown log stream"):
        await anext(server.client().stream_log("debug"))  # type: ignore[arg-type]
