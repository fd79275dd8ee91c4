"""Names and listing patterns as KES validates them (spec §1.6, §2; validName/validPattern):
byte-exact 400s for invalid key, policy and identity names — path tricks such as ``..``,
``%2e%2e`` and ``a%2Fb`` included — and proof that a rejected name writes nothing anywhere."""

from __future__ import annotations

import pytest

from tests.api.helpers import (
    import_body,
    module_server,
    send,
    snapshot,
)
from tests.conftest import RunningServer

pytestmark = pytest.mark.asyncio(loop_scope="module")


server = module_server  # one server for all tests of this module


def _key_name_error(name: str) -> str:
    return f"key name '{name}' is empty, too long or contains invalid characters"


# --- names -----------------------------------------------------------------------------------

# Invalid names from validNameTests in minio/kes auth_test.go@63649d0, plus path tricks.
# (as written in the URL path, as KES decodes and quotes it in the message)
INVALID_NAMES = [
    ("", ""),
    ("my.key", "my.key"),
    ("key%2F", "key/"),
    ("%E2%98%B0", "☰"),
    ("hel%3Clo", "hel<lo"),
    ("%CE%95macs", "Εmacs"),  # noqa: RUF001 - Greek capital epsilon, from KES
    ("a" * 81, "a" * 81),
    ("-a", "-a"),
    ("a-", "a-"),
    ("-", "-"),
    ("_", "_"),
    ("a*", "a*"),
    ("a%20b", "a b"),
    ("..", ".."),
    ("%2e%2e", ".."),
    ("a%2Fb", "a/b"),
    ("../escaped", "../escaped"),
    ("%2E%2E%2Fescaped", "../escaped"),
    ("a/b", "a/b"),
]


@pytest.mark.parametrize(("raw", "name"), INVALID_NAMES, ids=[raw for raw, _ in INVALID_NAMES])
async def test_describe_rejects_invalid_key_name(
    server: RunningServer, raw: str, name: str
) -> None:
    reply = await send(server, "GET", f"/v1/key/describe/{raw}")
    assert reply.is_error(400, _key_name_error(name)), reply


@pytest.mark.parametrize(("raw", "name"), INVALID_NAMES, ids=[raw for raw, _ in INVALID_NAMES])
async def test_create_with_invalid_name_is_400_and_writes_nothing(
    server: RunningServer, raw: str, name: str
) -> None:
    before = snapshot(server.directory)
    reply = await send(server, "PUT", f"/v1/key/create/{raw}")
    assert reply.is_error(400, _key_name_error(name)), reply
    assert snapshot(server.directory) == before


async def test_import_with_path_trick_writes_nothing_outside(server: RunningServer) -> None:
    before = snapshot(server.directory)
    reply = await send(server, "PUT", "/v1/key/import/..%2Fescaped", import_body())
    assert reply.is_error(400, _key_name_error("../escaped"))
    assert snapshot(server.directory) == before
    assert not (server.directory / "escaped").exists()


# (method, route, a valid body): every route that takes a key name.
KEY_ROUTES = [
    ("PUT", "/v1/key/create/", None),
    ("PUT", "/v1/key/import/", import_body()),
    ("GET", "/v1/key/describe/", None),
    ("DELETE", "/v1/key/delete/", None),
    ("PUT", "/v1/key/generate/", b"{}"),
    ("PUT", "/v1/key/encrypt/", b'{"plaintext":"YQ=="}'),
    ("PUT", "/v1/key/decrypt/", b'{"ciphertext":"YQ=="}'),
    ("PUT", "/v1/key/hmac/", b'{"message":"YQ=="}'),
    ("POST", "/v1/key/bulk/decrypt/", b"[]"),
]


@pytest.mark.parametrize(
    ("method", "route", "body"), KEY_ROUTES, ids=[route for _, route, _ in KEY_ROUTES]
)
@pytest.mark.parametrize("raw", ["-a", "a" * 81, "%2e%2e"])
async def test_every_key_route_validates_the_name(
    server: RunningServer, method: str, route: str, body: bytes | None, raw: str
) -> None:
    name = ".." if raw == "%2e%2e" else raw
    reply = await send(server, method, route + raw, body)
    assert reply.is_error(400, _key_name_error(name)), reply


# Valid names from validNameTests in minio/kes auth_test.go@63649d0, plus the length limit.
VALID_NAMES = ["my-key", "abc123", "0", "123ABC321", "_-___---_", "_0", "0-Z", "my_key-0", "a" * 80]


@pytest.mark.parametrize("name", VALID_NAMES)
async def test_create_accepts_valid_name(server: RunningServer, name: str) -> None:
    reply = await send(server, "PUT", f"/v1/key/create/{name}")
    assert reply.status == 200, reply
    assert (server.keystore_dir / name).is_file()
    described = await send(server, "GET", f"/v1/key/describe/{name}")
    assert described.json()["name"] == name


INVALID_POLICY_NAMES = [("", ""), ("-a", "-a"), ("_", "_"), ("a.b", "a.b"), ("a" * 81, "a" * 81)]


@pytest.mark.parametrize("route", ["/v1/policy/describe/", "/v1/policy/read/"])
@pytest.mark.parametrize(
    ("raw", "name"), INVALID_POLICY_NAMES, ids=[raw[:8] for raw, _ in INVALID_POLICY_NAMES]
)
async def test_invalid_policy_name(server: RunningServer, route: str, raw: str, name: str) -> None:
    reply = await send(server, "GET", route + raw)
    message = f"policy name '{name}' is empty, too long or contains invalid characters"
    assert reply.is_error(400, message), reply


INVALID_IDENTITIES = [("", ""), ("-a", "-a"), ("_", "_"), ("%2e%2e", ".."), ("f" * 81, "f" * 81)]


@pytest.mark.parametrize(
    ("raw", "identity"), INVALID_IDENTITIES, ids=[raw[:8] for raw, _ in INVALID_IDENTITIES]
)
async def test_invalid_identity(server: RunningServer, raw: str, identity: str) -> None:
    reply = await send(server, "GET", "/v1/identity/describe/" + raw)
    message = f"identity '{identity}' is empty, too long or contains invalid characters"
    assert reply.is_error(400, message), reply


# Invalid patterns from validPatternTests in minio/kes auth_test.go@63649d0, plus more.
INVALID_PATTERNS = [
    ("*-*", "*-*"),
    ("my.key", "my.key"),
    ("key%2F", "key/"),
    ("%E2%98%B0", "☰"),
    ("hel%3Clo", "hel<lo"),
    ("a" * 81, "a" * 81),
    ("_", "_"),
    ("-a", "-a"),
    ("a-", "a-"),
    ("a*b", "a*b"),
    ("**", "**"),
    ("*a", "*a"),
]


@pytest.mark.parametrize("route", ["/v1/key/list/", "/v1/policy/list/", "/v1/identity/list/"])
@pytest.mark.parametrize(
    ("raw", "pattern"), INVALID_PATTERNS, ids=[raw[:10] for raw, _ in INVALID_PATTERNS]
)
async def test_invalid_listing_pattern(
    server: RunningServer, route: str, raw: str, pattern: str
) -> None:
    reply = await send(server, "GET", route + raw)
    message = f"listing pattern '{pattern}' is empty, too long or is invalid"
    assert reply.is_error(400, message), reply


@pytest.mark.parametrize("pattern", ["", "*", "my*", "_-*", "a-*", "0-Z", "a" * 80])
async def test_valid_listing_pattern(server: RunningServer, pattern: str) -> None:
    reply = await send(server, "GET", "/v1/key/list/" + pattern)
    assert reply.status == 200, reply
