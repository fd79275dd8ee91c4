"""The canonical errors of KES (spec §1.5, §1.6), byte for byte: existing and missing keys,
missing policies and identities, inauthentic ciphertexts and HMAC on a key record without an
HMAC key. None of them answers 5xx, and none changes what is stored."""

from __future__ import annotations

import base64
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
)
from tests.conftest import RunningServer

pytestmark = pytest.mark.asyncio(loop_scope="module")

KEY_NOT_FOUND = "key does not exist"
DECRYPT_FAILED = "decryption failed: ciphertext is not authentic"


server = module_server  # one server for all tests of this module


@pytest.mark.parametrize("second", ["create", "import"])
@pytest.mark.parametrize("first", ["create", "import"])
async def test_existing_key_is_400_and_keeps_its_record(
    server: RunningServer, first: str, second: str
) -> None:
    bodies = {"create": None, "import": import_body(b"\x07" * 32)}
    name = fresh_name()
    assert (await send(server, "PUT", f"/v1/key/{first}/{name}", bodies[first])).status == 200
    record = (server.keystore_dir / name).read_bytes()
    described = (await send(server, "GET", f"/v1/key/describe/{name}")).body
    reply = await send(server, "PUT", f"/v1/key/{second}/{name}", bodies[second])
    assert reply.is_error(400, "key already exists"), reply
    assert (server.keystore_dir / name).read_bytes() == record
    assert (await send(server, "GET", f"/v1/key/describe/{name}")).body == described


# --- missing keys, policies, identities ------------------------------------------------------

MISSING_KEY_CALLS = [
    ("GET", "/v1/key/describe/nope", None),
    ("DELETE", "/v1/key/delete/nope", None),
    ("PUT", "/v1/key/generate/nope", b"{}"),
    ("POST", "/v1/key/generate/nope", None),
    ("PUT", "/v1/key/encrypt/nope", b'{"plaintext":"YQ=="}'),
    ("PUT", "/v1/key/decrypt/nope", b'{"ciphertext":"' + base64.b64encode(b"\x00" * 60) + b'"}'),
    ("PUT", "/v1/key/hmac/nope", b'{"message":"YQ=="}'),
    ("POST", "/v1/key/bulk/decrypt/nope", b'[{"ciphertext":"YQ=="}]'),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), MISSING_KEY_CALLS, ids=[f"{m} {p}" for m, p, _ in MISSING_KEY_CALLS]
)
async def test_missing_key_is_404(
    server: RunningServer, method: str, path: str, body: bytes | None
) -> None:
    reply = await send(server, method, path, body)
    assert reply.is_error(404, KEY_NOT_FOUND), reply
    assert reply.body == b'{"message":"key does not exist"\n}'


async def test_deleted_key_is_gone(server: RunningServer) -> None:
    name = fresh_name()
    await import_known_key(server, name)
    assert (await send(server, "DELETE", f"/v1/key/delete/{name}")).status == 200
    assert (await send(server, "GET", f"/v1/key/describe/{name}")).is_error(404, KEY_NOT_FOUND)
    assert (await send(server, "DELETE", f"/v1/key/delete/{name}")).is_error(404, KEY_NOT_FOUND)
    assert not (server.keystore_dir / name).exists()


@pytest.mark.parametrize("route", ["/v1/policy/describe/", "/v1/policy/read/"])
async def test_missing_policy_is_404(server: RunningServer, route: str) -> None:
    reply = await send(server, "GET", route + "no-such-policy")
    assert reply.is_error(404, "policy does not exist"), reply


async def test_identity_without_policy_is_404(server: RunningServer) -> None:
    reply = await send(server, "GET", "/v1/identity/describe/" + server.stranger.identity)
    assert reply.is_error(404, "identity does not exist"), reply


# --- decryption failures ---------------------------------------------------------------------

_SEALED = SecretKey(Cipher.AES256, KNOWN_KEY).encrypt(b"secret plaintext", b"ctx")


def _flip(data: bytes, index: int) -> bytes:
    changed = bytearray(data)
    changed[index] ^= 0x01
    return bytes(changed)


# (ciphertext, context) pairs that must not decrypt under KNOWN_KEY
BAD_CIPHERTEXTS = {
    "sealed-byte-flipped": (_flip(_SEALED, 0), b"ctx"),
    "tag-byte-flipped": (_flip(_SEALED, len(_SEALED) - 29), b"ctx"),
    "iv-byte-flipped": (_flip(_SEALED, len(_SEALED) - 28), b"ctx"),
    "nonce-byte-flipped": (_flip(_SEALED, len(_SEALED) - 1), b"ctx"),
    "wrong-context": (_SEALED, b"other"),
    "missing-context": (_SEALED, b""),
    "extra-context": (SecretKey(Cipher.AES256, KNOWN_KEY).encrypt(b"x"), b"ctx"),
    "last-byte-dropped": (_SEALED[:-1], b"ctx"),
    "first-byte-dropped": (_SEALED[1:], b"ctx"),
    "only-iv-and-nonce": (_SEALED[-28:], b"ctx"),
    "29-bytes": (_SEALED[-29:], b"ctx"),
    "empty": (b"", b"ctx"),
    "other-key": (SecretKey(Cipher.AES256, b"\x09" * 32).encrypt(b"x", b"ctx"), b"ctx"),
    "other-cipher": (SecretKey(Cipher.CHACHA20, KNOWN_KEY).encrypt(b"x", b"ctx"), b"ctx"),
    "msgpack-prefix-garbage": (b"\x95" + b"\x00" * 40, b"ctx"),
    "json-garbage": (b'{"aead":"AES-256-GCM-HMAC-SHA-256","iv":"AA==","nonce":"AA=="}', b"ctx"),
    "json-unknown-aead": (
        json.dumps(
            {"aead": "ROT13", "iv": b64(b"\x00" * 16), "nonce": b64(b"\x00" * 12), "bytes": "AA=="}
        ).encode(),
        b"",
    ),
}


@pytest.mark.parametrize(("ciphertext", "context"), BAD_CIPHERTEXTS.values(), ids=BAD_CIPHERTEXTS)
async def test_inauthentic_ciphertext_is_400(
    server: RunningServer, ciphertext: bytes, context: bytes
) -> None:
    body = {"ciphertext": b64(ciphertext), "context": b64(context)}
    reply = await send(server, "PUT", "/v1/key/decrypt/k", json.dumps(body).encode())
    assert reply.is_error(400, DECRYPT_FAILED), reply


async def test_bulk_decrypt_fails_whole_request_on_one_bad_element(server: RunningServer) -> None:
    good = {"ciphertext": b64(_SEALED), "context": b64(b"ctx")}
    bad = {"ciphertext": b64(_flip(_SEALED, 0)), "context": b64(b"ctx")}
    reply = await send(
        server, "POST", "/v1/key/bulk/decrypt/k", json.dumps([good, bad, good]).encode()
    )
    assert reply.is_error(400, DECRYPT_FAILED), reply


async def test_bulk_decrypt_over_1000_ciphertexts_is_400(server: RunningServer) -> None:
    item = {"ciphertext": b64(_SEALED), "context": b64(b"ctx")}
    reply = await send(server, "POST", "/v1/key/bulk/decrypt/k", json.dumps([item] * 1001).encode())
    assert reply.is_error(400, "too many ciphertexts"), reply


# --- HMAC on records without an HMAC key -----------------------------------------------------

# Key records of KES releases before 2024-02 carry no HMAC key (spec §5.7). The second is
# parseKeyVersionTests' v0.19-v0.22.2 record from minio/kes internal/crypto/key_test.go.
_KEY_B64 = b64(KNOWN_KEY)
LEGACY_RECORDS = {
    "e1-bytes-only": b'{"bytes":"' + _KEY_B64.encode() + b'"}',
    "v0.22": (
        b'{"bytes":"9ew6BCae3+13sniOUwttEJ62amg98YXc0OW0WBhNiCY=","algorithm":"XCHACHA20-POLY1305",'
        b'"created_at":"2009-11-10T23:00:00Z",'
        b'"created_by":"189d9de5331e3ee8abe9e4bd40d474ad621d79ccf83a711f6ac68050eb15a52a"}'
    ),
    "v0.22.3": b'{"version":"v1","bytes":"'
    + _KEY_B64.encode()
    + b'","algorithm":"AES256-GCM_SHA256"}',
}


@pytest.mark.parametrize("record", LEGACY_RECORDS.values(), ids=LEGACY_RECORDS)
async def test_hmac_on_legacy_record_is_409(server: RunningServer, record: bytes) -> None:
    name = fresh_name()
    (server.keystore_dir / name).write_bytes(record)
    reply = await send(server, "PUT", f"/v1/key/hmac/{name}", b'{"message":"YQ=="}')
    assert reply.is_error(409, "key does not support HMAC"), reply
    assert (server.keystore_dir / name).read_bytes() == record
