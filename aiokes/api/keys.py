"""Handlers of ``/v1/key/*``: the hot path (generate, decrypt) and key management."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiokes._go.base64 import b64encode_std
from aiokes.api.call import Call
from aiokes.api.state import ServerState
from aiokes.api.wire import (
    base64_response,
    context_field,
    data_and_context,
    data_key_response,
    decode_object,
    empty_response,
    field_bytes,
    field_str,
    json_response,
    ndjson_response,
)
from aiokes.crypto import (
    Cipher,
    KeyVersion,
    encode_key_version,
    generate_key_version,
    parse_cipher,
)
from aiokes.errors import APIError, BadRequest, KeystoreError
from aiokes.http import Response
from aiokes.identity import valid_name, valid_pattern
from aiokes.log import error_logger

__all__ = [
    "bulk_decrypt",
    "create",
    "decrypt",
    "decrypt_now",
    "delete",
    "describe",
    "encrypt",
    "encrypt_now",
    "generate",
    "generate_now",
    "hmac",
    "import_key",
    "list_keys",
]

MAX_BULK_CIPHERTEXTS = 1000
_BULK_INLINE_ITEMS = 64  # ~100 µs of crypto: beyond that, keep the event loop free
# The one legacy import body aiokes accepts is ``{"bytes": …}`` and nothing else: what
# kes-go v0.1.0 (MinIO RELEASE.2023-03 … 2023-08, ``mc admin kms key import``) and the kes
# client package v0.14 … v0.22.3 (MinIO 2021 … 2023-02) sent. It has no field for the
# algorithm, so none was guessed: the servers of that era made an AES256 key on AES hardware,
# and AES256 is what every later client (kes-go v0.2, kms-go, MinIO) asks for by default.
_LEGACY_IMPORT_CIPHER = "AES256"
# A listing pattern ending in "*" is answered as KES up to 2023 did: ndjson, one {"name"} per
# line, every match (spec §3.3). kes-go v0.1.0 (MinIO RELEASE.2023-03 … 2023-08) sends such a
# glob for every listing ("*" for an empty one) and decodes nothing else; kes-go v0.2 and kms-go
# read it too (they switch on the ndjson content type), and kms-go's callers send "" rather
# than "*" (MinIO turns mc's "*" into ""), so what current clients receive is unchanged.
# docs/compatibility.md has the evidence.
_EVERY_NAME = 1 << 62


async def create(call: Call) -> Response:
    name = key_name(call.resource)
    record = encode_key_version(generate_key_version(call.identity))
    await _store(call, name, record)
    return empty_response()


async def import_key(call: Call) -> Response:
    name = key_name(call.resource)
    invalid = BadRequest("invalid import key request body")
    body = decode_object(call.body, invalid)
    if body.keys() == {"bytes"}:
        key, cipher_name = field_bytes(body, "bytes", invalid), _LEGACY_IMPORT_CIPHER
    else:  # KES HEAD's only form: anything missing is refused, never guessed
        key, cipher_name = field_bytes(body, "key", invalid), field_str(body, "cipher", invalid)
    cipher = _import_cipher(cipher_name)
    if len(key) != 32:
        raise APIError(f"invalid key size for '{cipher_name}'", status=406)
    version = generate_key_version(call.identity, cipher=cipher, key=key)
    await _store(call, name, encode_key_version(version))
    return empty_response()


async def describe(call: Call) -> Response:
    name = key_name(call.resource)
    version = await load_key(call, name)
    reply: dict[str, Any] = {
        "name": name,
        "algorithm": version.key.cipher.kes_name,
        "created_at": version.created_at_rfc3339(),
    }
    if version.created_by:
        reply["created_by"] = version.created_by
    return json_response(reply)


async def list_keys(call: Call) -> Response:
    pattern = call.resource
    prefix = list_prefix(pattern)
    legacy = pattern.endswith("*")
    try:
        page = await call.state.master_keys.list(prefix, _EVERY_NAME if legacy else -1)
    except KeystoreError as exc:
        raise _keystore_failure("failed to list keys", prefix, exc) from exc
    if legacy:
        return ndjson_response({"name": name} for name in page.names)
    reply: dict[str, Any] = {"names": page.names}
    if page.continue_at:
        reply["continue_at"] = page.continue_at
    return json_response(reply)


async def delete(call: Call) -> Response:
    name = key_name(call.resource)
    try:
        await call.state.master_keys.delete(name)
    except KeystoreError as exc:
        raise _keystore_failure("failed to delete key", name, exc) from exc
    return empty_response()


# The hot routes come in pairs. ``*_now`` answers a request whose key is cached (and, for
# encrypt/decrypt, whose data is small) without suspending: the dispatcher calls it from the
# connection's read callback, with no task and no coroutine (bench/RESULTS.md, section 16),
# and only for a valid key name. It returns ``None`` otherwise, having changed nothing, and
# the async handler serves the request from the start. Both check the name, then the body,
# then the key, so a bad request gets the same error either way.


def generate_now(state: ServerState, name: str, body: bytes) -> Response | None:
    context = _context(body)
    version = state.master_keys.cached(name)
    if version is None:
        return None
    return data_key_response(*version.key.seal_new_data_key(context))


async def generate(call: Call) -> Response:
    name = key_name(call.resource)
    context = _context(call.body)
    version = await load_key(call, name)
    return data_key_response(*version.key.seal_new_data_key(context))


def _context(body: bytes) -> bytes:
    # A body-less PUT/POST is a valid request (empty context); MinIO always sends one.
    return context_field(body) if body else b""


def encrypt_now(state: ServerState, name: str, body: bytes) -> Response | None:
    return _transform_now(state, name, body, "plaintext", "ciphertext", seal=True)


def decrypt_now(state: ServerState, name: str, body: bytes) -> Response | None:
    return _transform_now(state, name, body, "ciphertext", "plaintext", seal=False)


async def encrypt(call: Call) -> Response:
    return await _transform(call, "plaintext", "ciphertext", seal=True)


async def decrypt(call: Call) -> Response:
    return await _transform(call, "ciphertext", "plaintext", seal=False)


def _transform_now(
    state: ServerState, name: str, body: bytes, given: str, answer: str, *, seal: bool
) -> Response | None:
    data, context = data_and_context(body, given)
    version = state.master_keys.cached(name)
    if version is None or len(data) > state.config.crypto_inline_limit:
        return None
    key = version.key
    result = key.encrypt(data, context) if seal else key.decrypt(data, context)
    return base64_response((answer, result))


async def _transform(call: Call, given: str, answer: str, *, seal: bool) -> Response:
    """Encrypt or decrypt the ``given`` field with the context as associated data."""
    name = key_name(call.resource)
    data, context = data_and_context(call.body, given)
    key = (await load_key(call, name)).key
    operation = key.encrypt if seal else key.decrypt
    if len(data) <= call.state.config.crypto_inline_limit:  # small: cheaper than a thread hop
        result = operation(data, context)
    else:
        result = await asyncio.to_thread(operation, data, context)
    return base64_response((answer, result))


async def bulk_decrypt(call: Call) -> Response:
    """LEGACY ``/v1/key/bulk/decrypt/{name}`` for MinIO releases up to 2023."""
    name = key_name(call.resource)
    items = _bulk_items(call.body)
    version = await load_key(call, name)

    def open_all() -> list[dict[str, str]]:
        return [{"plaintext": b64encode_std(version.key.decrypt(ct, ctx))} for ct, ctx in items]

    total = sum(len(ciphertext) for ciphertext, _ in items)
    inline = total <= call.state.config.crypto_inline_limit and len(items) <= _BULK_INLINE_ITEMS
    if inline:
        return json_response(open_all())
    return json_response(await asyncio.to_thread(open_all))


async def hmac(call: Call) -> Response:
    name = key_name(call.resource)
    message = field_bytes(decode_object(call.body), "message")
    version = await load_key(call, name)
    return base64_response(("hmac", version.hmac(message)))


def key_name(name: str) -> str:
    if not valid_name(name):
        raise APIError(
            f"key name '{name}' is empty, too long or contains invalid characters", status=400
        )
    return name


def list_prefix(pattern: str) -> str:
    """A listing pattern as a plain prefix: ``*`` alone or at the end means "anything"."""
    if not valid_pattern(pattern):
        raise APIError(f"listing pattern '{pattern}' is empty, too long or is invalid", status=400)
    return pattern.removesuffix("*")


async def load_key(call: Call, name: str) -> KeyVersion:
    """The key ``name`` from the cache or, on a miss, the keystore."""
    try:
        return await call.state.master_keys.get(name)
    except KeystoreError as exc:
        raise _keystore_failure("failed to read key", name, exc) from exc


async def _store(call: Call, name: str, record: bytes) -> None:
    try:
        await call.state.master_keys.create(name, record)
    except KeystoreError as exc:
        raise _keystore_failure("failed to create key", name, exc) from exc


def _keystore_failure(message: str, name: str, exc: KeystoreError) -> APIError:
    # The client gets KES's generic text; the operator gets the detail (never key material).
    error_logger.error("%s '%s': %s", message, name, exc)
    return APIError(message, status=502)


def _import_cipher(name: str) -> Cipher:
    try:
        return parse_cipher(name)
    except ValueError:
        raise APIError(f"algorithm '{name}' is not supported", status=406) from None


def _bulk_items(body: bytes) -> list[tuple[bytes, bytes]]:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest() from None
    if not isinstance(value, list):
        raise BadRequest()
    if len(value) > MAX_BULK_CIPHERTEXTS:
        raise BadRequest("too many ciphertexts")
    items = []
    for element in value:
        if not isinstance(element, dict):
            raise BadRequest()
        fields = {key.lower(): item for key, item in element.items()}
        items.append((field_bytes(fields, "ciphertext"), field_bytes(fields, "context")))
    return items
