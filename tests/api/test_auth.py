"""Who may call what (spec §4.2-§4.5): the client certificate the handshake demands,
``skip_auth``, the admin, policies (prefix ``*``, deny before allow) and the byte-exact 403."""

from __future__ import annotations

import json
import ssl
import textwrap

import pytest

from aiokes.crypto import Cipher, SecretKey
from aiokes.errors import NotAllowed
from tests.api.helpers import (
    KNOWN_KEY,
    b64,
    client_context,
    import_known_key,
    send,
    snapshot,
)
from tests.conftest import RunningServer, StartServer

NOT_ALLOWED = b'{"message":"not authorized: insufficient permissions"\n}'
NO_CERTIFICATE = "tls: client certificate is required"
HANDSHAKE_FAILED = (ssl.SSLError, ConnectionError)
_DECRYPT_BODY = json.dumps({"ciphertext": b64(SecretKey(Cipher.AES256, KNOWN_KEY).encrypt(b"x"))})


# --- without a client certificate ------------------------------------------------------------


@pytest.mark.parametrize("path", ["/version", "/v1/key/list/"])
async def test_no_client_certificate_fails_the_handshake_by_default(
    server: RunningServer, path: str
) -> None:
    """KES requires a certificate (any) in the handshake unless some route skips auth."""
    with pytest.raises(HANDSHAKE_FAILED):
        await send(server, "GET", path, who=None)


async def test_no_client_certificate_fails_the_tls12_handshake(server: RunningServer) -> None:
    context = client_context(server, None)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(HANDSHAKE_FAILED):
        await send(server, "GET", "/version", context=context)


SKIP_AUTH = """\
    api:
      /v1/ready:
        skip_auth: true
    """


async def test_skip_auth_lets_a_client_without_certificate_in(start_server: StartServer) -> None:
    server = await start_server(SKIP_AUTH)
    ready = await send(server, "GET", "/v1/ready", who=None)
    assert (ready.status, ready.body) == (200, b"")
    version = await send(server, "GET", "/version", who=None)
    assert version.status == 200
    assert set(version.json()) == {"version", "commit"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/key/list/"),
        ("GET", "/v1/status"),
        ("PUT", "/v1/key/create/k"),
        ("GET", "/v1/policy/list/"),
        ("GET", "/v1/log/audit"),
    ],
)
async def test_skip_auth_other_routes_still_need_a_certificate(
    start_server: StartServer, method: str, path: str
) -> None:
    server = await start_server(SKIP_AUTH)
    before = snapshot(server.directory)
    reply = await send(server, method, path, who=None)
    assert reply.is_error(400, NO_CERTIFICATE), reply
    assert snapshot(server.directory) == before


async def test_skip_auth_self_describe_without_certificate_is_404(
    start_server: StartServer,
) -> None:
    server = await start_server(SKIP_AUTH)
    reply = await send(server, "GET", "/v1/identity/self/describe", who=None)
    assert reply.is_error(404, "identity does not exist"), reply


async def test_skip_auth_route_serves_any_identity_but_others_keep_policies(
    start_server: StartServer,
) -> None:
    server = await start_server(SKIP_AUTH)
    assert (await send(server, "GET", "/v1/ready", who=server.stranger)).status == 200
    denied = await send(server, "GET", "/v1/key/list/", who=server.stranger)
    assert (denied.status, denied.body) == (403, NOT_ALLOWED)
    assert (await send(server, "GET", "/v1/key/list/", who=server.admin)).status == 200


# --- policies --------------------------------------------------------------------------------

# The conftest policy my-app: allow create/generate/decrypt/describe on my-key*, deny
# generate on my-key-denied*. The admin first imports my-key-a, my-key-denied-a and other.
# (method, path, body, status for the app)
APP_CALLS = [
    ("PUT", "/v1/key/create/my-key-new", None, 200),
    ("POST", "/v1/key/create/my-key-new", None, 200),
    ("PUT", "/v1/key/create/other-new", None, 403),
    ("PUT", "/v1/key/create/my-ke", None, 403),
    ("PUT", "/v1/key/generate/my-key-a", b"{}", 200),
    ("PUT", "/v1/key/generate/my-key-denied-a", b"{}", 403),
    ("PUT", "/v1/key/generate/my-key-denied", b"{}", 403),
    ("PUT", "/v1/key/decrypt/my-key-a", _DECRYPT_BODY.encode(), 200),
    ("PUT", "/v1/key/decrypt/my-key-denied-a", _DECRYPT_BODY.encode(), 200),
    ("PUT", "/v1/key/decrypt/other", _DECRYPT_BODY.encode(), 403),
    ("GET", "/v1/key/describe/my-key-a", None, 200),
    ("GET", "/v1/key/describe/my-key-missing", None, 404),
    ("GET", "/v1/key/describe/other", None, 403),
    ("GET", "/v1/key/describe/other?x=/v1/key/describe/my-key-a", None, 403),
    ("GET", "/v1/key/describe/-invalid", None, 403),  # the policy is checked before the name
    ("PUT", "/v1/key/encrypt/my-key-a", b'{"plaintext":""}', 403),
    ("PUT", "/v1/key/hmac/my-key-a", b'{"message":""}', 403),
    ("PUT", "/v1/key/import/my-key-imported", b"{}", 403),
    ("DELETE", "/v1/key/delete/my-key-a", None, 403),
    ("POST", "/v1/key/bulk/decrypt/my-key-a", b"[]", 403),
    ("GET", "/v1/key/list/", None, 403),
    ("GET", "/v1/key/list/my-key*", None, 403),
    ("GET", "/v1/status", None, 403),
    ("GET", "/v1/ready", None, 403),
    ("GET", "/v1/metrics", None, 403),
    ("GET", "/v1/api", None, 403),
    ("GET", "/v1/policy/read/my-app", None, 403),
    ("GET", "/v1/identity/list/", None, 403),
    ("GET", "/v1/log/audit", None, 403),
    ("GET", "/version", None, 200),
    ("GET", "/v1/identity/self/describe", None, 200),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    APP_CALLS,
    ids=[f"{m} {p[:40]}" for m, p, _, _ in APP_CALLS],
)
async def test_app_may_call_exactly_what_its_policy_allows(
    server: RunningServer, method: str, path: str, body: bytes | None, status: int
) -> None:
    for name in ("my-key-a", "my-key-denied-a", "other"):
        await import_known_key(server, name)
    before = snapshot(server.keystore_dir)
    reply = await send(server, method, path, body, who=server.app)
    assert reply.status == status, reply
    if status == 403:
        assert reply.body == NOT_ALLOWED
        assert reply.content_type == "application/json"
        assert snapshot(server.keystore_dir) == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/v1/key/create/k", None),
        ("GET", "/v1/key/describe/k", None),
        ("PUT", "/v1/key/generate/k", b"{}"),
        ("PUT", "/v1/key/decrypt/k", _DECRYPT_BODY.encode()),
        ("GET", "/v1/key/list/*", None),
        ("GET", "/v1/status", None),
        ("GET", "/v1/identity/describe/x", None),
        ("PUT", "/v1/key/encrypt/k", b"x" * 2_000_000),  # refused before the body is read
    ],
)
async def test_identity_without_policy_gets_403_and_changes_nothing(
    server: RunningServer, method: str, path: str, body: bytes | None
) -> None:
    before = snapshot(server.keystore_dir)
    reply = await send(server, method, path, body, who=server.stranger)
    assert (reply.status, reply.body) == (403, NOT_ALLOWED), reply
    assert snapshot(server.keystore_dir) == before


async def test_typed_client_sees_not_allowed(server: RunningServer) -> None:
    with pytest.raises(NotAllowed):
        await server.client(server.stranger).create_key("k")


POLICY_SEMANTICS = textwrap.dedent(
    """\
    policy:
      semantics:
        allow:
        - /v1/key/describe/exact
        - /v1/key/*/literal
        - /v1/status*
        - /v1/key/create/my*
        deny:
        - /v1/key/create/my-key*
        identities:
        - {app}
      nothing:
        identities:
        - {stranger}
    """
)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/key/describe/exact", 404),  # allowed; the key does not exist
        ("GET", "/v1/key/describe/exact2", 403),  # no '*': exact match only
        ("GET", "/v1/key/describe/exac", 403),
        ("GET", "/v1/key/describe/literal", 403),  # '*' inside a pattern is a literal
        ("GET", "/v1/status", 200),
        ("PUT", "/v1/key/create/my-minio-key", 200),  # examples of kms-go policy_test.go
        ("PUT", "/v1/key/create/my-key1", 403),
        ("PUT", "/v1/key/create/my-key", 403),
    ],
)
async def test_policy_patterns_follow_kes(
    start_server: StartServer, method: str, path: str, status: int
) -> None:
    server = await start_server(policy=POLICY_SEMANTICS)
    reply = await send(server, method, path, who=server.app)
    assert reply.status == status, reply


async def test_empty_policy_denies_everything(start_server: StartServer) -> None:
    server = await start_server(policy=POLICY_SEMANTICS)
    for path in ("/v1/status", "/v1/key/list/", "/v1/key/describe/exact"):
        reply = await send(server, "GET", path, who=server.stranger)
        assert (reply.status, reply.body) == (403, NOT_ALLOWED)
    self_reply = await send(server, "GET", "/v1/identity/self/describe", who=server.stranger)
    assert self_reply.json()["policy"] == "nothing"


async def test_admin_may_call_routes_no_policy_names(server: RunningServer) -> None:
    await import_known_key(server, "k")
    for method, path in [
        ("DELETE", "/v1/key/delete/k"),
        ("GET", "/v1/identity/list/"),
        ("GET", "/v1/api"),
    ]:
        assert (await send(server, method, path)).status == 200
