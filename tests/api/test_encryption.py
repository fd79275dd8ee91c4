"""Encrypt, decrypt and bulk decrypt (spec §2.12, §3.4, §5.2-§5.4): round trips, Go's
body decoding, and every ciphertext format KES ever wrote — KES's own test vectors and
ciphertexts made by hand from the byte layouts — opened on imported keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from aiokes.crypto import Cipher, SecretKey
from tests.api.helpers import (
    KNOWN_KEY,
    b64,
    field_bytes,
    fresh_name,
    import_known_key,
    json_body,
    module_server,
    put_json,
    send,
)
from tests.conftest import RunningServer

pytestmark = pytest.mark.asyncio(loop_scope="module")

AES = SecretKey(Cipher.AES256, KNOWN_KEY)
DECRYPT_FAILED = b'{"message":"decryption failed: ciphertext is not authentic"\n}'


server = module_server  # one server for all tests of this module


# --- encrypt and decrypt ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 32, 1000, 700_000])
@pytest.mark.parametrize("context", [b"", b"ctx"], ids=["no-context", "context"])
async def test_encrypt_decrypt_round_trip(server: RunningServer, size: int, context: bytes) -> None:
    plaintext = os.urandom(size)
    body = {"plaintext": b64(plaintext), "context": b64(context)}
    document = await put_json(server, "/v1/key/encrypt/k", body)
    assert list(document) == ["ciphertext"]
    ciphertext = field_bytes(document, "ciphertext")
    assert len(ciphertext) == size + 44  # raw format: sealed || iv(16) || nonce(12)
    assert AES.decrypt(ciphertext, context) == plaintext
    answer = await put_json(
        server, "/v1/key/decrypt/k", {"ciphertext": b64(ciphertext), "context": b64(context)}
    )
    assert answer == {"plaintext": b64(plaintext)}


async def test_decrypt_reply_is_byte_exact(server: RunningServer) -> None:
    body = json.dumps({"ciphertext": b64(AES.encrypt(b"hello", b"c")), "context": b64(b"c")})
    reply = await send(server, "PUT", "/v1/key/decrypt/k", body.encode())
    assert reply.body == b'{"plaintext":"aGVsbG8="}\n'


# Go's encoding/json: field names fold case, unknown fields are ignored, null is the zero
# value, the last duplicate wins, and the base64 decoder skips \r and \n (spec §1.3).
GO_LENIENT_BODIES = {
    "case-folding": b'{"PlainText":"aGVsbG8=","CONTEXT":"Yw=="}',
    "unknown-field": b'{"plaintext":"aGVsbG8=","context":"Yw==","enclave":"x","version":"v1"}',
    "duplicate": b'{"plaintext":"eA==","plaintext":"aGVsbG8=","context":"Yw=="}',
    "newlines-in-base64": b'{"plaintext":"aGVs\\nbG8=\\r\\n","context":"Y\\nw=="}',
}


@pytest.mark.parametrize("body", GO_LENIENT_BODIES.values(), ids=GO_LENIENT_BODIES)
async def test_encrypt_decodes_bodies_as_go_does(server: RunningServer, body: bytes) -> None:
    reply = await send(server, "POST", "/v1/key/encrypt/k", body)
    assert reply.status == 200, reply
    assert AES.decrypt(field_bytes(reply.json(), "ciphertext"), b"c") == b"hello"


async def test_null_plaintext_encrypts_the_empty_message(server: RunningServer) -> None:
    reply = await send(server, "PUT", "/v1/key/encrypt/k", b'{"plaintext":null}')
    assert AES.decrypt(field_bytes(reply.json(), "ciphertext")) == b""


async def test_import_then_decrypt_offline_ciphertext_with_chacha20(
    server: RunningServer,
) -> None:
    name = fresh_name()
    await import_known_key(server, name, cipher="ChaCha20")
    chacha = SecretKey(Cipher.CHACHA20, KNOWN_KEY)
    body = {"ciphertext": b64(chacha.encrypt(b"offline", b"c")), "context": b64(b"c")}
    assert await put_json(server, f"/v1/key/decrypt/{name}", body) == {"plaintext": b64(b"offline")}
    sealed = await put_json(server, f"/v1/key/encrypt/{name}", {"plaintext": b64(b"online")})
    assert chacha.decrypt(field_bytes(sealed, "ciphertext")) == b"online"
    body = {"ciphertext": b64(AES.encrypt(b"x"))}  # the same bytes under the other AEAD
    reply = await send(server, "PUT", f"/v1/key/decrypt/{name}", json.dumps(body).encode())
    assert (reply.status, reply.body) == (400, DECRYPT_FAILED)


# secretKeyDecryptTests from minio/kes internal/crypto/key_test.go@63649d0:
# (key type, key, ciphertext, associated data, plaintext or None when it must fail)
_ZERO = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
_OTHER = "dDHbTWgo+Yh3u804SYB5OyVMy6RiLeJYBQth1f6KlEU="
_B16 = "AAAAAAAAAAAAAAAAAAAAAA=="
KES_DECRYPT_VECTORS = [
    (
        "AES256",
        _ZERO,
        b'{"aead":"AES-256-GCM-HMAC-SHA-256","iv":"xLxIN3tSCkg2xMafuvwUwg==",'
        b'"nonce":"gu0mGwUkwcvMEoi5","bytes":"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc="}',
        "",
        _B16,
    ),
    (
        "ChaCha20",
        _ZERO,
        b'{"aead":"ChaCha20Poly1305","iv":"s3fSZ6vk5m+DfQA8yZWeUg==","nonce":"8/kHMnCMs3h9NZ2a",'
        b'"bytes":"cw22HjLq/4cx8507SW4hhSrYbDiMuRao4b5+GE+XfbE="}',
        "",
        _B16,
    ),
    (
        "ChaCha20",
        _ZERO,
        b'{"aead":"ChaCha20Poly1305","id":"66687aadf862bd776c8fc18b8e9f8e20",'
        b'"iv":"EC0eZp7Pqt+LnkOae5xaAg==","nonce":"X1ejXKmH/ugFZPkk",'
        b'"bytes":"wIGBTDs6aOvsqJfekZ0PYRT/OHyFX2TXqeNwl1SLXOI="}',
        "",
        _B16,
    ),
    (
        "AES256",
        _ZERO,
        base64.b64decode(
            "lbFBRVMyNTYtR0NNX1NIQTI1NtkgNjY2ODdhYWRmODYyYmQ3NzZjOGZjMThiOGU5ZjhlMjDEEExv7LAd4oz0"
            "SaHZrX5LBufEDEKME1ow1CDfUFrqv8QgJuy7Sw+jVqz99TK1HV851LT3K4mwwDv46TB2ngWkAJQ="
        ),
        "",
        _B16,
    ),
    (
        "ChaCha20",
        _ZERO,
        base64.b64decode(
            "lbJYQ0hBQ0hBMjAtUE9MWTEzMDXZIDY2Njg3YWFkZjg2MmJkNzc2YzhmYzE4YjhlOWY4ZTIwxBBAr+aptD4x"
            "2+qfOhiErbnkxAxYs8RmNC1JJXD1hiHEIJ2KqM0jjkME7ndx8nyVseesN83Np0rM5ejVUun+fNFu"
        ),
        "",
        _B16,
    ),
    (
        "AES256",
        _ZERO,
        base64.b64decode(
            "zwdDgHeRlIFRnJ7+DIhs/ka7GFK2CFSfDELqg1VCyTQzZ58o7MAdupMLk3ZjlMo2ZUDwldL2o41nAWDc"
        ),
        "",
        _B16,
    ),
    (
        "AES256",
        _OTHER,
        base64.b64decode(
            "s2gmfQHeGdlyL8x1yEWSACUV3GrSoz3t160hugMgzKWgyqesXDVUJ5Dw5Mt076rR1PNiU9X4YjLH14D8a81t2r2x"
            "sz4gVZac"
        ),
        _B16,
        "CLcJoykFCWZDkEIiUq9bJRqwCwW9ZDvdgu8EMA==",
    ),
    (
        "ChaCha20",
        _OTHER,
        base64.b64decode(
            "gO4woRIswAJdjUjW7z2ApsSQxJlwB24yjLrmH4eI7sB0uh5nfEJfk9ybTPFft5FRFaZCVBmzhx7OJs9n0WWtxH3s"
            "ySIxecIK"
        ),
        _B16,
        "CLcJoykFCWZDkEIiUq9bJRqwCwW9ZDvdgu8EMA==",
    ),
    (
        "AES256",
        _ZERO,
        b'{"aead":"AES-256-GCM","iv":"xLxIN3tSCkg2xMafuvwUwg==","nonce":"gu0mGwUkwcvMEoi5",'
        b'"bytes":"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc="}',
        "",
        None,
    ),
    (
        "AES256",
        _ZERO,
        b'{"aead":"AES-256-GCM-HMAC-SHA-256","iv":"EjOY4JKqjIrPmQ5z1KSR8zlhggY=",'
        b'"nonce":"gu0mGwUkwcvMEoi5","bytes":"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc="}',
        "",
        None,
    ),
    (
        "ChaCha20",
        _ZERO,
        b'{"aead":"ChaCha20Poly1305","iv":"s3fSZ6vk5m+DfQA8yZWeUg==","nonce":"SXAbms731/c=",'
        b'"bytes":"cw22HjLq/4cx8507SW4hhSrYbDiMuRao4b5+GE+XfbE="}',
        "",
        None,
    ),
    (
        "AES256",
        _ZERO,
        b'{"aead":"AES-256-GCM-HMAC-SHA-256","iv":"xLxIN3tSCkg2xMafuvwUwg==",'
        b'"nonce":"efY+4kYF9n8=","bytes":"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc="}',
        "",
        None,
    ),
    (
        "AES256",
        _ZERO,
        b'{"aead":"AES-256-GCM-HMAC-SHA-256","iv":"xLxIN3tSCkg2xMafuvwUwg==",'
        b'"nonce":"gu0mGwUkwcvMEoi5","bytes":"QTza1g5oX3f9cGJMbY1xJwWPj1F7R2VnNl6XpFKYQy0="}',
        "",
        None,
    ),
    (
        "ChaCha20",
        _ZERO,
        b'{"aead":"ChaCha20Poly1305","iv":"s3fSZ6vk5m+DfQA8yZWeUg==","nonce":"8/kHMnCMs3h9NZ2a",'
        b'"bytes":"TTi8pkO+Jh1JWAHvPxZeUk/iVoBPUCE4ZSVGBy3fW2s="}',
        "",
        None,
    ),
    (
        "AES256",
        _ZERO,
        b'{"aead":"AES-256-GCM-HMAC-SHA-256" "iv":"xLxIN3tSCkg2xMafuvwUwg==",'
        b'"nonce":"gu0mGwUkwcvMEoi5","bytes":"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc="}',
        "",
        None,
    ),
]


@pytest.mark.parametrize(
    ("cipher", "key", "ciphertext", "context", "plaintext"),
    KES_DECRYPT_VECTORS,
    ids=[f"vector-{i}" for i in range(len(KES_DECRYPT_VECTORS))],
)
async def test_decrypt_kes_test_vectors_on_an_imported_key(
    server: RunningServer,
    cipher: str,
    key: str,
    ciphertext: bytes,
    context: str,
    plaintext: str | None,
) -> None:
    name = fresh_name()
    await import_known_key(server, name, base64.b64decode(key), cipher)
    body = json.dumps({"ciphertext": b64(ciphertext), "context": context}).encode()
    reply = await send(server, "PUT", f"/v1/key/decrypt/{name}", body)
    if plaintext is None:
        assert (reply.status, reply.body) == (400, DECRYPT_FAILED)
    else:
        assert reply.body == json_body({"plaintext": plaintext})


def _aes_parts(plaintext: bytes, context: bytes) -> tuple[bytes, bytes, bytes]:
    """AES-256-GCM-HMAC-SHA-256 by hand (spec §5.2): (iv, nonce, sealed) under KNOWN_KEY."""
    iv, nonce = os.urandom(16), os.urandom(12)
    message_key = hmac.digest(KNOWN_KEY, iv, "sha256")
    return iv, nonce, AESGCM(message_key).encrypt(nonce, plaintext, context)


def _msgpack(algorithm: bytes, key_id: bytes, iv: bytes, nonce: bytes, sealed: bytes) -> bytes:
    """The E2-E4 MessagePack layout of spec §5.4, smallest encodings, as KES wrote it."""

    def text(value: bytes) -> bytes:
        return (
            bytes([0xA0 | len(value)]) if len(value) < 32 else bytes([0xD9, len(value)])
        ) + value

    def blob(value: bytes) -> bytes:
        return bytes([0xC4, len(value)]) + value

    return b"\x95" + text(algorithm) + text(key_id) + blob(iv) + blob(nonce) + blob(sealed)


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:16].hex().encode()


def _legacy_aes(kind: str, plaintext: bytes, context: bytes) -> bytes:
    iv, nonce, sealed = _aes_parts(plaintext, context)
    if kind == "json":
        fields = {"aead": "AES-256-GCM-HMAC-SHA-256", "id": _key_id(KNOWN_KEY).decode()}
        fields.update(iv=b64(iv), nonce=b64(nonce), bytes=b64(sealed))
        return json.dumps(fields).encode()
    if kind == "json-e1-no-id":
        fields = {"aead": "AES-256-GCM-HMAC-SHA-256", "iv": b64(iv), "nonce": b64(nonce)}
        return json.dumps({**fields, "bytes": b64(sealed)}).encode()
    if kind == "msgpack-v0.19":
        return _msgpack(b"AES256-GCM_SHA256", _key_id(KNOWN_KEY), iv, nonce, sealed)
    if kind == "msgpack-2023-10":
        return _msgpack(b"AES256", _key_id(KNOWN_KEY), iv, nonce, sealed)
    if kind == "msgpack-empty-id":
        return _msgpack(b"AES256", b"", iv, nonce, sealed)
    return sealed + iv + nonce  # raw


@pytest.mark.parametrize(
    "kind",
    ["json", "json-e1-no-id", "msgpack-v0.19", "msgpack-2023-10", "msgpack-empty-id", "raw"],
)
async def test_decrypt_hand_made_ciphertext_of_every_format(
    server: RunningServer, kind: str
) -> None:
    ciphertext = _legacy_aes(kind, b"legacy dek", b'{"a":"a/b"}')
    body = {"ciphertext": b64(ciphertext), "context": b64(b'{"a":"a/b"}')}
    assert await put_json(server, "/v1/key/decrypt/k", body) == {"plaintext": b64(b"legacy dek")}
    body["context"] = b64(b"{}")
    reply = await send(server, "PUT", "/v1/key/decrypt/k", json.dumps(body).encode())
    assert (reply.status, reply.body) == (400, DECRYPT_FAILED)


@pytest.mark.parametrize("kind", ["msgpack", "json"])
async def test_structured_ciphertext_uses_the_aead_it_names(
    server: RunningServer, kind: str
) -> None:
    """Before v0.19 keys had no type and each ciphertext named its AEAD: a ChaCha20 ciphertext
    under a key now read as AES256 must still open (spec §5.3, the cross-algorithm case)."""
    raw = SecretKey(Cipher.CHACHA20, KNOWN_KEY).encrypt(b"cross", b"")
    sealed, iv, nonce = raw[:-28], raw[-28:-12], raw[-12:]
    if kind == "msgpack":
        ciphertext = _msgpack(b"XCHACHA20-POLY1305", _key_id(KNOWN_KEY), iv, nonce, sealed)
    else:
        fields = {"aead": "ChaCha20Poly1305", "iv": b64(iv), "nonce": b64(nonce)}
        ciphertext = json.dumps({**fields, "bytes": b64(sealed)}).encode()
    body = {"ciphertext": b64(ciphertext)}
    assert await put_json(server, "/v1/key/decrypt/k", body) == {"plaintext": b64(b"cross")}


# --- bulk decrypt ----------------------------------------------------------------------------


async def test_bulk_decrypt_answers_in_request_order(server: RunningServer) -> None:
    items = [(f"plaintext {i}".encode(), f"context {i % 3}".encode()) for i in range(7)]
    body = [{"ciphertext": b64(AES.encrypt(p, c)), "context": b64(c)} for p, c in items]
    body.append({"ciphertext": b64(_legacy_aes("msgpack-2023-10", b"old", b""))})
    reply = await send(server, "POST", "/v1/key/bulk/decrypt/k", json.dumps(body).encode())
    expected = [{"plaintext": b64(p)} for p, _ in items] + [{"plaintext": b64(b"old")}]
    assert reply.body == json_body(expected)


async def test_bulk_decrypt_of_1000_ciphertexts(server: RunningServer) -> None:
    body = [{"ciphertext": b64(AES.encrypt(i.to_bytes(2, "big")))} for i in range(1000)]
    reply = await send(server, "POST", "/v1/key/bulk/decrypt/k", json.dumps(body).encode())
    answers = reply.json()
    assert [base64.b64decode(a["plaintext"]) for a in answers] == [
        i.to_bytes(2, "big") for i in range(1000)
    ]


async def test_bulk_decrypt_of_nothing(server: RunningServer) -> None:
    reply = await send(server, "POST", "/v1/key/bulk/decrypt/k", b"[]")
    assert (reply.status, reply.body) == (200, b"[]\n")
