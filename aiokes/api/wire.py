"""Request and response bodies exactly as KES (Go ``encoding/json``) reads and writes them."""

from __future__ import annotations

import binascii
import json
from collections.abc import Iterable
from typing import Any

from aiokes._go.json import json_bytes, json_str, load_json_object
from aiokes.errors import APIError, BadRequest
from aiokes.http import Response, header_block

__all__ = [
    "JSONObject",
    "base64_response",
    "context_field",
    "data_and_context",
    "data_key_response",
    "decode_object",
    "empty_response",
    "error_response",
    "field_bytes",
    "field_str",
    "json_response",
    "ndjson_response",
    "text_response",
]

JSONObject = dict[str, object]

# Headers given ready-made, encoded once: every JSON answer sends the same one.
_JSON_HEADERS = header_block({"Content-Type": "application/json"})
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# Go's json.Encoder escapes these for safe embedding in HTML; clients never care, but
# byte-identical output is cheap.
_GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def go_json(value: Any) -> str:
    text = _encode(value)
    if any(c in text for c in "<>&\u2028\u2029"):
        text = text.translate(_GO_ESCAPES)
    return text


def json_response(value: Any, status: int = 200) -> Response:
    """Compact JSON followed by one newline, as ``json.Encoder.Encode`` writes it."""
    body = (go_json(value) + "\n").encode()
    return Response(body, status, _JSON_HEADERS)


_NDJSON_HEADERS = header_block({"Content-Type": "application/x-ndjson"})


def ndjson_response(values: Iterable[Any]) -> Response:
    """One compact JSON value per line, as the LEGACY listings streamed them (spec §3.3)."""
    body = "".join(go_json(value) + "\n" for value in values).encode()
    return Response(body, 200, _NDJSON_HEADERS)


def text_response(text: str, content_type: str) -> Response:
    """A 200 with ``text`` as its body (the metrics page)."""
    return Response(text.encode(), 200, {"Content-Type": content_type})


def base64_response(*fields: tuple[str, bytes]) -> Response:
    """A JSON object of base64 fields (the hot path: generate, decrypt, encrypt, hmac).

    Base64 text and these field names never need escaping, so the body is assembled directly
    instead of going through the JSON encoder; the bytes are what ``json_response`` writes.
    """
    if len(fields) == 1:  # decrypt, encrypt, hmac
        name, value = fields[0]
        body = b"{" + _MEMBER_OPENINGS[name] + _b2a(value, newline=False) + b'"}\n'
        return Response(body, 200, _JSON_HEADERS)
    members = [_MEMBER_OPENINGS[name] + _b2a(value, newline=False) for name, value in fields]
    return Response(b"{" + b'",'.join(members) + b'"}\n', 200, _JSON_HEADERS)


def data_key_response(plaintext: bytes, ciphertext: bytes) -> Response:
    """``generate``'s reply, as :func:`base64_response` writes it, in one step."""
    body = b'{"plaintext":"%s","ciphertext":"%s"}\n' % (
        _b2a(plaintext, newline=False),
        _b2a(ciphertext, newline=False),
    )
    return Response(body, 200, _JSON_HEADERS)


class _MemberOpenings(dict[str, bytes]):
    """``'"name":"'`` as bytes, built once per field name."""

    def __missing__(self, name: str) -> bytes:
        opening = self[name] = b'"' + name.encode() + b'":"'
        return opening


_MEMBER_OPENINGS = _MemberOpenings()
_b2a = binascii.b2a_base64


def empty_response() -> Response:
    return Response()


def error_response(error: APIError) -> Response:
    # HEAD writes '{"message":' + encoded string + '\n}' (json.Encoder's newline lands before
    # the brace); kms-go and MinIO parse it as JSON and compare status and message exactly.
    body = ('{"message":' + go_json(error.message) + "\n}").encode()
    if error.status == 405 and error.message.startswith("received method"):
        accept = error.message.rsplit("'", 2)[-2]
        headers = header_block({"Accept": accept, "Content-Type": "application/json"})
        return Response(body, error.status, headers)
    return Response(body, error.status, _JSON_HEADERS)


def decode_object(body: bytes, error: type[APIError] | APIError = BadRequest) -> JSONObject:
    """Decode a JSON object with Go's rules (:mod:`aiokes._go.json`); anything else fails
    with ``error``."""
    try:
        return load_json_object(body)
    except ValueError:
        raise _instance(error) from None


def context_field(body: bytes) -> bytes:
    """The ``context`` of a body that may hold only that (``generate``'s, as MinIO sends it).

    The exact shape every client sends is taken apart directly; anything else goes through
    the full decoder, with the same result and the same errors."""
    if len(body) >= 14 and body.startswith(b'{"context":"') and body.endswith(b'"}'):
        context = _strict_base64(body[12:-2])
        if context is not None:
            return context
    return field_bytes(decode_object(body), "context")


def data_and_context(body: bytes, name: str) -> tuple[bytes, bytes]:
    """The ``name`` field (``plaintext`` or ``ciphertext``) and the ``context`` of an encrypt
    or decrypt body, taken apart directly in the shape kms-go sends (its struct's field
    order, the context omitted when empty), through the full decoder otherwise."""
    opening = _OPENINGS[name]
    if len(body) >= len(opening) + 2 and body.startswith(opening) and body.endswith(b'"}'):
        data_text, _, context_text = body[len(opening) : -2].partition(b'","context":"')
        data, context = _strict_base64(data_text), _strict_base64(context_text)
        if data is not None and context is not None:
            return data, context
    fields = decode_object(body)
    return field_bytes(fields, name), field_bytes(fields, "context")


def _strict_base64(text: bytes) -> bytes | None:
    """Padded standard base64 as Go's ``[]byte`` decoding takes it, or ``None`` for anything
    else: then the body is not in the direct shape and the full decoder judges it. Strict
    mode refuses every byte outside the alphabet, quotes and backslashes (JSON escapes)
    included, so a field cannot run into the next one unnoticed."""
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error:
        return None


_OPENINGS = {name: b'{"' + name.encode() + b'":"' for name in ("plaintext", "ciphertext")}


def field_bytes(obj: JSONObject, name: str, error: type[APIError] | APIError = BadRequest) -> bytes:
    """A ``[]byte`` field: standard padded base64; absent or null means empty."""
    try:
        return json_bytes(obj, name)
    except ValueError:
        raise _instance(error) from None


def field_str(obj: JSONObject, name: str, error: type[APIError] | APIError = BadRequest) -> str:
    try:
        return json_str(obj, name)
    except ValueError:
        raise _instance(error) from None


def _instance(error: type[APIError] | APIError) -> APIError:
    return error() if isinstance(error, type) else error
