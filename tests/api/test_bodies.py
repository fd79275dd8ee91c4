"""Request bodies (spec §1.3, §2.7, §3.4): malformed JSON and base64 answer KES's 400,
the 1 000 000-byte limit holds to the byte (chunked bodies too), and import rejects unknown
ciphers and wrong key sizes with 406 — all without storing anything."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable

import pytest

from aiokes.crypto import Cipher, SecretKey
from tests.api.helpers import (
    KNOWN_KEY,
    b64,
    client_context,
    fresh_name,
    import_body,
    module_server,
    send,
)
from tests.conftest import RunningServer

pytestmark = pytest.mark.asyncio(loop_scope="module")

MAX_BODY = 1_000_000
HANG_GUARD = 5.0  # seconds; only reached when the behaviour under test is broken


server = module_server  # one server for all tests of this module


# --- request bodies --------------------------------------------------------------------------

# route -> the []byte field the body must carry
BODY_ROUTES = {
    "/v1/key/generate/": "context",
    "/v1/key/encrypt/": "plaintext",
    "/v1/key/decrypt/": "ciphertext",
    "/v1/key/hmac/": "message",
}
# Bodies Go's encoding/json rejects for a struct with a []byte field FIELD.
BAD_BODIES = [
    b"{",
    b"[]",
    b'"text"',
    b"42",
    b"\xff\xfe",
    b'{"FIELD":"YQ=="',
    b'{"FIELD":5}',
    b'{"FIELD":{}}',
    b'{"FIELD":true}',
    b'{"FIELD":["YQ=="]}',
    b'{"FIELD":"YQ"}',  # missing padding
    b'{"FIELD":"YQ==="}',  # too much padding
    b'{"FIELD":"-_-_"}',  # the URL-safe alphabet
    b'{"FIELD":"Y Q=="}',  # Go skips only \r and \n
    b'{"FIELD":"YQ==","FIELD":"@"}',  # the last duplicate wins
]
MALFORMED = [(route, template) for route in BODY_ROUTES for template in BAD_BODIES] + [
    (route, b'{"FIELD":"YQ==","context":"!!!!"}')
    for route in ("/v1/key/encrypt/", "/v1/key/decrypt/")
]


@pytest.mark.parametrize(("route", "template"), MALFORMED)
async def test_malformed_body_is_400(server: RunningServer, route: str, template: bytes) -> None:
    body = template.replace(b"FIELD", BODY_ROUTES[route].encode())
    reply = await send(server, "PUT", route + "k", body)
    assert reply.is_error(400, "invalid request body"), reply


@pytest.mark.parametrize("route", ["/v1/key/encrypt/", "/v1/key/decrypt/", "/v1/key/hmac/"])
async def test_empty_body_is_400_where_a_body_is_required(
    server: RunningServer, route: str
) -> None:
    reply = await send(server, "PUT", route + "k", b"")
    assert reply.is_error(400, "invalid request body"), reply


@pytest.mark.parametrize("body", [b"", b"{", b"[1]", b'[{"ciphertext":5}]', b"{}", b"[[]]"])
async def test_malformed_bulk_decrypt_body_is_400(server: RunningServer, body: bytes) -> None:
    reply = await send(server, "POST", "/v1/key/bulk/decrypt/k", body)
    assert reply.is_error(400, "invalid request body"), reply


_KEY_B64 = b64(KNOWN_KEY)
_SLASHY_KEY_B64 = b64(b"\xfb\xef\xff" * 10 + b"\xfb\xef")  # has '+' and '/'
BAD_IMPORT_BODIES = [
    b"",
    b"{",
    b"[]",
    b'{"key":5,"cipher":"AES256"}',
    b'{"key":"'
    + _SLASHY_KEY_B64.replace("+", "-").replace("/", "_").encode()
    + b'","cipher":"AES256"}',
    b'{"key":"' + _KEY_B64.rstrip("=").encode() + b'","cipher":"AES256"}',
    b'{"key":"' + _KEY_B64.encode() + b'","cipher":5}',
]


@pytest.mark.parametrize("body", BAD_IMPORT_BODIES)
async def test_malformed_import_body_is_400_and_stores_nothing(
    server: RunningServer, body: bytes
) -> None:
    name = fresh_name()
    reply = await send(server, "PUT", f"/v1/key/import/{name}", body)
    assert reply.is_error(400, "invalid import key request body"), reply
    assert not (server.keystore_dir / name).exists()


def _padded_json(field: str, size: int, total: int) -> bytes:
    """``{"<field>":"<base64 of size bytes>"}`` padded with JSON whitespace to ``total`` bytes."""
    body = b'{"' + field.encode() + b'":"' + base64.b64encode(b"\x00" * size) + b'"'
    assert len(body) < total
    return body + b" " * (total - len(body) - 1) + b"}"


@pytest.mark.parametrize("split_at", [0, 1, 20])
async def test_a_body_arriving_after_its_headers_is_read_whole(
    server: RunningServer, split_at: int
) -> None:
    ciphertext = SecretKey(Cipher.AES256, KNOWN_KEY).encrypt(b"secret", b"ctx")
    body = b'{"ciphertext":"%s","context":"%s"}' % (
        base64.b64encode(ciphertext),
        base64.b64encode(b"ctx"),
    )

    async def server_waits_for_the_rest() -> None:
        # The request counts as active once its headers are in: from then on the server
        # is waiting for the body, so the rest arrives late, as from a slow client.
        await _active_requests_become(server, lambda active: active > 0)

    reply = await send(
        server,
        "PUT",
        "/v1/key/decrypt/k",
        body,
        split_at=split_at,
        between=server_waits_for_the_rest,
    )
    assert reply.status == 200, reply
    assert base64.b64decode(json.loads(reply.body)["plaintext"]) == b"secret"


async def test_a_client_leaving_mid_body_leaves_no_request_active(server: RunningServer) -> None:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1",
        server.server.port,
        ssl=client_context(server),
        server_hostname="127.0.0.1",
    )
    head = "PUT /v1/key/decrypt/k HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n"
    writer.write(head.encode() + b'{"ciphertext":')
    await writer.drain()
    await _active_requests_become(server, lambda active: active > 0)
    writer.transport.abort()  # gone without the rest of the body
    await _active_requests_become(server, lambda active: active == 0)
    assert not await reader.read()


async def _active_requests_become(server: RunningServer, wanted: Callable[[int], bool]) -> None:
    """Wait until the server's active-request gauge satisfies ``wanted``."""
    metrics = server.server.services.metrics
    async with asyncio.timeout(HANG_GUARD):
        while not wanted(metrics.value("active")):  # noqa: ASYNC110 - a counter, no event
            await asyncio.sleep(0.001)


@pytest.mark.parametrize("route", list(BODY_ROUTES))
async def test_body_of_exactly_the_limit_is_accepted(server: RunningServer, route: str) -> None:
    field = BODY_ROUTES[route]
    ciphertext = SecretKey(Cipher.AES256, KNOWN_KEY).encrypt(b"\x00" * 600_000)
    if field == "ciphertext":
        body = b'{"ciphertext":"' + base64.b64encode(ciphertext) + b'"'
        body += b" " * (MAX_BODY - len(body) - 1) + b"}"
    else:
        body = _padded_json(field, 600_000, MAX_BODY)
    assert len(body) == MAX_BODY
    reply = await send(server, "PUT", route + "k", body)
    assert reply.status == 200, reply


@pytest.mark.parametrize("route", list(BODY_ROUTES))
async def test_body_over_the_limit_is_400(server: RunningServer, route: str) -> None:
    body = _padded_json(BODY_ROUTES[route], 740_000, MAX_BODY + 1)
    reply = await send(server, "PUT", route + "k", body)
    assert reply.is_error(400, "invalid request body"), reply


async def test_chunked_body_over_the_limit_is_400(server: RunningServer) -> None:
    body = _padded_json("plaintext", 740_000, MAX_BODY + 1)
    reply = await send(server, "PUT", "/v1/key/encrypt/k", body, chunked=True)
    assert reply.is_error(400, "invalid request body"), reply


async def test_chunked_body_within_the_limit_is_accepted(server: RunningServer) -> None:
    body = _padded_json("plaintext", 700_000, MAX_BODY)
    reply = await send(server, "PUT", "/v1/key/encrypt/k", body, chunked=True)
    assert reply.status == 200, reply


async def test_import_body_of_exactly_the_limit_is_accepted(server: RunningServer) -> None:
    name = fresh_name()
    body = b'{"cipher":"AES256","key":"' + _KEY_B64.encode() + b'"'
    body += b" " * (MAX_BODY - len(body) - 1) + b"}"
    assert len(body) == MAX_BODY
    assert (await send(server, "PUT", f"/v1/key/import/{name}", body)).status == 200
    assert (server.keystore_dir / name).is_file()


async def test_import_body_over_the_limit_is_400_and_stores_nothing(
    server: RunningServer,
) -> None:
    body = b'{"cipher":"AES256","key":"' + _KEY_B64.encode() + b'"'
    body += b" " * (MAX_BODY + 1 - len(body) - 1) + b"}"
    name = fresh_name()
    reply = await send(server, "PUT", f"/v1/key/import/{name}", body)
    assert reply.is_error(400, "invalid import key request body"), reply
    assert not (server.keystore_dir / name).exists()


async def test_bulk_decrypt_body_over_one_mebibyte_is_400(server: RunningServer) -> None:
    body = b'[{"ciphertext":"' + base64.b64encode(b"\x00" * 800_000) + b'"}'
    body += b" " * ((1 << 20) + 1 - len(body) - 1) + b"]"
    reply = await send(server, "POST", "/v1/key/bulk/decrypt/k", body)
    assert reply.is_error(400, "invalid request body"), reply


# --- import ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cipher", ["X", "AES-256", "aes256", "AES256-GCM", "chacha20", "RSA"])
async def test_import_unknown_cipher_is_406_and_stores_nothing(
    server: RunningServer, cipher: str
) -> None:
    name = fresh_name()
    reply = await send(server, "PUT", f"/v1/key/import/{name}", import_body(cipher=cipher))
    assert reply.is_error(406, f"algorithm '{cipher}' is not supported"), reply
    assert not (server.keystore_dir / name).exists()


@pytest.mark.parametrize("cipher", ["AES256", "ChaCha20", "XCHACHA20-POLY1305"])
@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
async def test_import_wrong_key_size_is_406_and_stores_nothing(
    server: RunningServer, cipher: str, size: int
) -> None:
    body = import_body(key=b"\x01" * size, cipher=cipher)
    name = fresh_name()
    reply = await send(server, "PUT", f"/v1/key/import/{name}", body)
    assert reply.is_error(406, f"invalid key size for '{cipher}'"), reply
    assert not (server.keystore_dir / name).exists()


async def test_import_checks_the_cipher_before_the_size(server: RunningServer) -> None:
    reply = await send(
        server, "PUT", f"/v1/key/import/{fresh_name()}", import_body(b"\x01" * 5, "X")
    )
    assert reply.is_error(406, "algorithm 'X' is not supported"), reply


_KEY_B64 = base64.b64encode(b"\x01" * 32).decode()

# Bodies KES HEAD refuses because they do not say which algorithm the key material is for
# (its request has only "key" and "cipher"); aiokes must not guess one either (issue 11).
NO_ALGORITHM = {
    "empty cipher": ({"key": _KEY_B64, "cipher": ""}, "algorithm '' is not supported"),
    "no cipher": ({"key": _KEY_B64}, "algorithm '' is not supported"),
    "null cipher": ({"key": _KEY_B64, "cipher": None}, "algorithm '' is not supported"),
    "algorithm instead of cipher": (
        {"key": _KEY_B64, "algorithm": "AES256"},
        "algorithm '' is not supported",
    ),
    "bytes and algorithm": (
        {"bytes": _KEY_B64, "algorithm": "AES256"},
        "algorithm '' is not supported",
    ),
    "bytes and empty algorithm": (
        {"bytes": _KEY_B64, "algorithm": ""},
        "algorithm '' is not supported",
    ),
    "bytes and cipher": ({"bytes": _KEY_B64, "cipher": "AES256"}, "invalid key size for 'AES256'"),
    "bytes and an unknown field": ({"bytes": _KEY_B64, "id": "x"}, "algorithm '' is not supported"),
}


@pytest.mark.parametrize(("body", "message"), NO_ALGORITHM.values(), ids=NO_ALGORITHM.keys())
async def test_import_without_an_algorithm_is_406_as_in_kes(
    server: RunningServer, body: dict[str, str | None], message: str
) -> None:
    name = fresh_name()
    reply = await send(server, "PUT", f"/v1/key/import/{name}", json.dumps(body).encode())
    assert reply.is_error(406, message), reply
    assert not (server.keystore_dir / name).exists()
