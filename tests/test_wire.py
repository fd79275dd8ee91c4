"""The hot path's shortcuts: hand-assembled bodies are byte-identical to what the JSON encoder
writes, and request bodies matched directly decode as the full decoder decodes them."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiokes._go.json import load_json_object
from aiokes.api.wire import (
    base64_response,
    context_field,
    data_and_context,
    data_key_response,
    decode_object,
    field_bytes,
    json_response,
)
from aiokes.errors import APIError


@given(st.binary(max_size=200), st.binary(max_size=200))
def test_base64_response_matches_the_json_encoder(first: bytes, second: bytes) -> None:
    fast = base64_response(("plaintext", first), ("ciphertext", second))
    slow = json_response(
        {
            "plaintext": base64.b64encode(first).decode(),
            "ciphertext": base64.b64encode(second).decode(),
        }
    )
    assert fast.body == slow.body
    assert fast.content_type == slow.content_type == "application/json"
    assert data_key_response(first, second).body == slow.body


# --- request bodies: the fast paths answer exactly as the full decoder does -----------------

_WHITESPACE = st.sampled_from(["", " ", "\t", "\r\n", "  \n"])
_BASE64_TEXT = st.binary(max_size=48).map(lambda data: base64.b64encode(data).decode())
_NAMES = st.sampled_from(["context", "ciphertext", "plaintext", "message", "a_b"])


@st.composite
def _flat_objects(draw: st.DrawFn) -> bytes:
    """Objects of lower-case names and base64 strings, with JSON whitespace anywhere: the
    bodies of every key route, in and out of the shapes the fast paths match."""
    space = draw(_WHITESPACE)
    members = draw(st.lists(st.tuples(_NAMES, _BASE64_TEXT), max_size=4))
    inner = f"{space},{space}".join(f'"{n}"{space}:{space}"{v}"' for n, v in members)
    return f"{space}{{{space}{inner}{space}}}{space}".encode()


def _reference_decode(data: bytes) -> dict[str, object]:
    pairs = json.loads(data, object_pairs_hook=lambda pairs: pairs)
    return {name.casefold(): value for name, value in pairs}


@given(_flat_objects())
def test_flat_objects_decode_with_the_last_duplicate_winning(data: bytes) -> None:
    assert load_json_object(data) == _reference_decode(data)


@given(st.binary(max_size=48), _WHITESPACE)
def test_context_field_reads_every_context(context: bytes, space: str) -> None:
    compact = b'{"context":"' + base64.b64encode(context) + b'"}'
    spaced = f'{{{space}"context"{space}:{space}"{base64.b64encode(context).decode()}"}}'
    assert context_field(compact) == context
    assert context_field(spaced.encode()) == context


@pytest.mark.parametrize(
    "body",
    [
        b'{"context":"YWJ"}',  # bad padding
        b'{"context":"YW=j"}',
        b'{"context":"YWJj"',
        b'{"context":5}',
        b'{"context":"YWJj",}',
        b"[]",
        b'{"Context":"YWJj"}',  # Go folds the name: a valid context
        b'{"context":null}',
        b'{"context":"YWJj","context":"ZGVm"}',  # the last duplicate wins
        b'{"context":"YW\\u004aj"}',  # an escape: only the full decoder reads it
    ],
)
def test_context_field_answers_as_the_general_path(body: bytes) -> None:
    def general() -> bytes:
        return field_bytes(decode_object(body), "context")

    try:
        expected: bytes | type[Exception] = general()
    except APIError as exc:
        expected = type(exc)
    if isinstance(expected, bytes):
        assert context_field(body) == expected
    else:
        with pytest.raises(expected):
            context_field(body)


@pytest.mark.parametrize("name", ["plaintext", "ciphertext"])
@given(data=st.binary(max_size=96), context=st.binary(max_size=48))
def test_data_and_context_reads_what_kms_go_sends(name: str, data: bytes, context: bytes) -> None:
    fields = {name: base64.b64encode(data).decode()}
    if context:  # kms-go omits an empty context
        fields["context"] = base64.b64encode(context).decode()
    body = json.dumps(fields, separators=(",", ":")).encode()
    assert data_and_context(body, name) == (data, context)
    spaced = json.dumps(fields).encode()  # not the direct shape: the full decoder's answer
    assert data_and_context(spaced, name) == (data, context)


@pytest.mark.parametrize(
    "body",
    [
        b'{"ciphertext":"YWJj","context":"ZGVm"}',
        b'{"ciphertext":"YWJj"}',
        b'{"ciphertext":"YWJj","context":""}',
        b'{"context":"ZGVm","ciphertext":"YWJj"}',  # the other order: decoded in full
        b'{"ciphertext":"YWJ","context":"ZGVm"}',  # bad padding
        b'{"ciphertext":"YWJj","context":"ZGV"}',
        b'{"ciphertext":"YWJj","context":null}',
        b'{"ciphertext":"YWJj","context":"ZGVm",}',
        b'{"CipherText":"YWJj"}',  # Go folds the name
        b'{"ciphertext":"YWJj","ciphertext":"ZGVm"}',  # the last duplicate wins
        b"",
        b"{}",
    ],
)
def test_data_and_context_answers_as_the_general_path(body: bytes) -> None:
    def general() -> tuple[bytes, bytes]:
        fields = decode_object(body)
        return field_bytes(fields, "ciphertext"), field_bytes(fields, "context")

    try:
        expected: tuple[bytes, bytes] | type[Exception] = general()
    except APIError as exc:
        expected = type(exc)
    if isinstance(expected, tuple):
        assert data_and_context(body, "ciphertext") == expected
    else:
        with pytest.raises(expected):
            data_and_context(body, "ciphertext")


def test_single_field_replies_match_the_json_encoder() -> None:
    for value in (b"", b"\x00" * 32, bytes(range(100))):
        fast = base64_response(("plaintext", value))
        assert fast.body == json_response({"plaintext": base64.b64encode(value).decode()}).body
