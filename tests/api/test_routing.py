"""Routing as KES HEAD does it (spec §1.2, §2): every route with its method, POST on PUT
routes, 405 with ``Accept``, Go's 404, the slash-less list roots, query strings ignored, and
the route list of ``/v1/api``."""

from __future__ import annotations

import json

import pytest

from aiokes.crypto import Cipher, SecretKey
from tests.api.helpers import (
    KNOWN_KEY,
    b64,
    fresh_name,
    import_body,
    import_known_key,
    module_server,
    send,
    snapshot,
)
from tests.conftest import RunningServer

pytestmark = pytest.mark.asyncio(loop_scope="module")

_CIPHERTEXT = SecretKey(Cipher.AES256, KNOWN_KEY).encrypt(b"plaintext", b"context")
_DECRYPT_BODY = json.dumps({"ciphertext": b64(_CIPHERTEXT), "context": b64(b"context")}).encode()
_BULK_BODY = json.dumps([{"ciphertext": b64(_CIPHERTEXT), "context": b64(b"context")}]).encode()


server = module_server  # one server for all tests of this module


# (method, path, body): every route of spec §2 plus bulk decrypt (§3.4), called by the admin
# on a server holding the key "k"; {new} is a name not taken yet, {old} a key of the test's
# own. The log streams never end; test_system covers them.
EVERY_ROUTE = [
    ("GET", "/version", None),
    ("GET", "/v1/ready", None),
    ("GET", "/v1/status", None),
    ("GET", "/v1/metrics", None),
    ("GET", "/v1/api", None),
    ("PUT", "/v1/key/create/{new}", None),
    ("PUT", "/v1/key/import/{new}", import_body()),
    ("GET", "/v1/key/describe/k", None),
    ("GET", "/v1/key/list/", None),
    ("DELETE", "/v1/key/delete/{old}", None),
    ("PUT", "/v1/key/generate/k", b"{}"),
    ("PUT", "/v1/key/encrypt/k", b'{"plaintext":"YQ=="}'),
    ("PUT", "/v1/key/decrypt/k", _DECRYPT_BODY),
    ("PUT", "/v1/key/hmac/k", b'{"message":"YQ=="}'),
    ("POST", "/v1/key/bulk/decrypt/k", _BULK_BODY),
    ("GET", "/v1/policy/describe/my-app", None),
    ("GET", "/v1/policy/read/my-app", None),
    ("GET", "/v1/policy/list/", None),
    ("GET", "/v1/identity/describe/{admin}", None),
    ("GET", "/v1/identity/list/", None),
    ("GET", "/v1/identity/self/describe", None),
]
# Every client before 2024 sends POST to the PUT routes; KES HEAD accepts both.
POST_ON_PUT_ROUTES = [("POST", path, body) for method, path, body in EVERY_ROUTE if method == "PUT"]


def _ids(table: list[tuple[str, str, bytes | None]]) -> list[str]:
    return [f"{method} {path}" for method, path, _ in table]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    EVERY_ROUTE + POST_ON_PUT_ROUTES,
    ids=_ids(EVERY_ROUTE + POST_ON_PUT_ROUTES),
)
async def test_every_route_answers_200_to_its_method(
    server: RunningServer, method: str, path: str, body: bytes | None
) -> None:
    old = fresh_name()
    await import_known_key(server, old)
    path = path.format(admin=server.admin.identity, new=fresh_name(), old=old)
    reply = await send(server, method, path, body)
    assert reply.status == 200, reply
    if reply.body:
        assert reply.content_type in {
            "application/json",
            "text/plain; version=0.0.4; charset=utf-8",
        }


@pytest.mark.parametrize("route", ["create", "import"])
@pytest.mark.parametrize("method", ["PUT", "POST"])
async def test_mutating_key_routes_store_the_key_with_put_and_post(
    server: RunningServer, method: str, route: str
) -> None:
    name = fresh_name()
    body = import_body() if route == "import" else None
    reply = await send(server, method, f"/v1/key/{route}/{name}", body)
    assert (reply.status, reply.body, reply.headers["content-length"]) == (200, b"", "0")
    assert (server.keystore_dir / name).is_file()


# (method, path, the route's method)
WRONG_METHODS = [
    ("POST", "/version", "GET"),
    ("DELETE", "/v1/ready", "GET"),
    ("PUT", "/v1/status", "GET"),
    ("POST", "/v1/metrics", "GET"),
    ("PUT", "/v1/api", "GET"),
    ("GET", "/v1/key/create/k", "PUT"),
    ("DELETE", "/v1/key/create/k", "PUT"),
    ("PATCH", "/v1/key/create/k", "PUT"),
    ("GET", "/v1/key/import/k", "PUT"),
    ("POST", "/v1/key/describe/k", "GET"),
    ("DELETE", "/v1/key/list/", "GET"),
    ("GET", "/v1/key/delete/k", "DELETE"),
    ("POST", "/v1/key/delete/k", "DELETE"),
    ("GET", "/v1/key/generate/k", "PUT"),
    ("GET", "/v1/key/encrypt/k", "PUT"),
    ("DELETE", "/v1/key/decrypt/k", "PUT"),
    ("GET", "/v1/key/hmac/k", "PUT"),
    ("PUT", "/v1/key/bulk/decrypt/k", "POST"),  # a LEGACY route: POST only
    ("POST", "/v1/policy/describe/my-app", "GET"),
    ("PUT", "/v1/policy/read/my-app", "GET"),
    ("DELETE", "/v1/policy/list/", "GET"),
    ("POST", "/v1/identity/describe/x", "GET"),
    ("PUT", "/v1/identity/list/", "GET"),
    ("POST", "/v1/identity/self/describe", "GET"),
    ("POST", "/v1/log/audit", "GET"),
    ("PUT", "/v1/log/error", "GET"),
]


@pytest.mark.parametrize(
    ("method", "path", "expected"), WRONG_METHODS, ids=[f"{m} {p}" for m, p, _ in WRONG_METHODS]
)
async def test_wrong_method_is_405_with_accept_header(
    server: RunningServer, method: str, path: str, expected: str
) -> None:
    reply = await send(server, method, path)
    assert reply.is_error(405, f"received method '{method}' expected '{expected}'"), reply
    assert reply.headers["accept"] == expected


async def test_405_body_is_byte_exact(server: RunningServer) -> None:
    reply = await send(server, "GET", "/v1/key/create/k")
    assert reply.body == b"{\"message\":\"received method 'GET' expected 'PUT'\"\n}"
    assert reply.content_type == "application/json"


async def test_wrong_method_is_checked_before_authorization(server: RunningServer) -> None:
    """KES checks the method first: even an identity without a policy learns the method."""
    reply = await send(server, "GET", "/v1/key/create/k", who=server.stranger)
    assert reply.is_error(405, "received method 'GET' expected 'PUT'")


async def test_wrong_method_changes_nothing(server: RunningServer) -> None:
    before = snapshot(server.keystore_dir)
    for method, path in [("GET", "/v1/key/create/new"), ("GET", "/v1/key/delete/k")]:
        assert (await send(server, method, path)).status == 405
    assert snapshot(server.keystore_dir) == before


UNKNOWN_PATHS = [
    "/",
    "/v1",
    "/v1/",
    "/v1/key",
    "/v1/key/",
    "/v1/unknown",
    "/v2/key/list/",
    "/VERSION",
    "/version/",
    "/v1/status/",
    "/v1/key/createx/k",
    "/v1/key/bulk/",
    "/v1/policy/write/p",
    "/v1/secret/create/s",
]


@pytest.mark.parametrize("path", UNKNOWN_PATHS)
async def test_unknown_path_is_go_mux_404(server: RunningServer, path: str) -> None:
    reply = await send(server, "GET", path)
    assert (reply.status, reply.body) == (404, b"404 page not found\n")
    assert reply.content_type.startswith("text/plain")


async def test_404_headers_are_gos(server: RunningServer) -> None:
    reply = await send(server, "GET", "/v1/unknown")
    assert reply.content_type == "text/plain; charset=utf-8"
    assert reply.headers.get("x-content-type-options") == "nosniff"


async def test_unknown_path_is_404_before_authorization(server: RunningServer) -> None:
    reply = await send(server, "GET", "/v1/unknown", who=server.stranger)
    assert (reply.status, reply.body) == (404, b"404 page not found\n")


@pytest.mark.parametrize(
    ("root", "field", "member"),
    [
        ("/v1/key/list", "names", "k"),
        ("/v1/policy/list", "names", "my-app"),
        ("/v1/identity/list", "identities", "{admin}"),
    ],
    ids=["key", "policy", "identity"],
)
async def test_slashless_list_root_is_served_as_the_root(
    server: RunningServer, root: str, field: str, member: str
) -> None:
    """kms-go builds an empty prefix with path.Join and so sends the root without a slash."""
    with_slash = await send(server, "GET", root + "/")
    without = await send(server, "GET", root)
    assert (without.status, without.body) == (with_slash.status, with_slash.body)
    assert member.format(admin=server.admin.identity) in without.json()[field]


# (path with a query, the same path without it)
QUERIES = [
    ("/v1/key/describe/k?enclave=tenant-1", "/v1/key/describe/k"),
    ("/v1/key/list/?prefix=zzz", "/v1/key/list/"),
    ("/v1/key/list/k*?x=1&y=2", "/v1/key/list/k*"),
    ("/v1/policy/read/my-app?", "/v1/policy/read/my-app"),
    ("/v1/identity/list/?enclave=x", "/v1/identity/list/"),
]


@pytest.mark.parametrize(("with_query", "plain"), QUERIES, ids=[q for q, _ in QUERIES])
async def test_query_string_is_ignored(server: RunningServer, with_query: str, plain: str) -> None:
    expected = await send(server, "GET", plain)
    reply = await send(server, "GET", with_query)
    assert expected.status == 200
    assert (reply.status, reply.body) == (expected.status, expected.body)


async def test_query_string_is_ignored_for_generate(server: RunningServer) -> None:
    reply = await send(server, "POST", "/v1/key/generate/k?enclave=tenant-1", b"{}")
    assert reply.status == 200
    assert len(reply.json()["plaintext"]) == 44


# KES HEAD's route table, verified by testListAPIDefaults in minio/kes api_test.go@63649d0,
# plus the LEGACY bulk decrypt (1 MiB body, spec §3.4).
API_ROUTES = {
    ("GET", "/version", 0, 10),
    ("GET", "/v1/ready", 0, 15),
    ("GET", "/v1/status", 0, 15),
    ("GET", "/v1/metrics", 0, 15),
    ("GET", "/v1/api", 0, 10),
    ("PUT", "/v1/key/create/", 0, 15),
    ("PUT", "/v1/key/import/", 1_000_000, 15),
    ("GET", "/v1/key/describe/", 0, 15),
    ("GET", "/v1/key/list/", 0, 15),
    ("DELETE", "/v1/key/delete/", 0, 15),
    ("PUT", "/v1/key/generate/", 1_000_000, 15),
    ("PUT", "/v1/key/encrypt/", 1_000_000, 15),
    ("PUT", "/v1/key/decrypt/", 1_000_000, 15),
    ("PUT", "/v1/key/hmac/", 1_000_000, 15),
    ("POST", "/v1/key/bulk/decrypt/", 1 << 20, 15),
    ("GET", "/v1/policy/describe/", 0, 15),
    ("GET", "/v1/policy/read/", 0, 15),
    ("GET", "/v1/policy/list/", 0, 15),
    ("GET", "/v1/identity/describe/", 0, 15),
    ("GET", "/v1/identity/list/", 0, 15),
    ("GET", "/v1/identity/self/describe", 0, 15),
    ("GET", "/v1/log/error", 0, 0),
    ("GET", "/v1/log/audit", 0, 0),
}


async def test_api_lists_every_route_with_method_body_limit_and_timeout(
    server: RunningServer,
) -> None:
    reply = await send(server, "GET", "/v1/api")
    assert reply.status == 200
    assert reply.content_type == "application/json"
    assert reply.body.endswith(b"]\n")
    assert b" " not in reply.body
    routes = reply.json()
    assert all(set(route) == {"method", "path", "max_body", "timeout"} for route in routes)
    listed = [(r["method"], r["path"], r["max_body"], r["timeout"]) for r in routes]
    assert len(listed) == len(set(listed))
    assert set(listed) == API_ROUTES
