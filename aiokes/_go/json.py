"""Go's ``encoding/json`` decoding rules for the JSON documents KES stored and KES clients send.

KES reads its old JSON ciphertexts and key records, and request bodies, into Go structs. What
that accepts is what aiokes must accept, so this module mirrors its rules instead of Python's
defaults: field names match case-insensitively, the last duplicate wins, ``null`` leaves a field
at its zero value, a value of the wrong JSON type fails the whole document, and
``NaN``/``Infinity`` (which Python would accept) are not JSON. ``[]byte`` fields are base64 as
:func:`aiokes._go.base64.b64decode_std` reads it.

Error messages never quote the input: it may be key material.
"""

from __future__ import annotations

import json

from aiokes._go.base64 import b64decode_std

__all__ = ["JSONObject", "json_bytes", "json_str", "load_json_object"]

JSONObject = dict[str, object]


def load_json_object(data: bytes) -> JSONObject:
    """Parse ``data`` as one JSON object with case-folded keys (last duplicate wins)."""
    # Go replaces invalid UTF-8 inside strings with U+FFFD; outside strings it is a syntax
    # error either way.
    text = data.decode("utf-8", errors="replace")
    try:
        value = _DECODER.decode(text)
    except RecursionError:  # Go gives up at nesting depth 10000; Python's limit is lower
        raise ValueError("JSON nested too deeply") from None
    except ValueError as exc:
        raise ValueError(f"invalid JSON: {_position(exc)}") from None
    if not isinstance(value, dict):
        raise ValueError("JSON value is not an object")
    return value


def json_str(fields: JSONObject, name: str) -> str:
    """The string field ``name`` (folded); absent or ``null`` is ``""``."""
    value = fields.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"JSON field {name!r} is not a string")
    return value


def json_bytes(fields: JSONObject, name: str) -> bytes:
    """The ``[]byte`` field ``name`` (folded): a base64 string; absent or ``null`` is ``b""``."""
    value = fields.get(name)
    if value is None:
        return b""
    if not isinstance(value, str):
        raise ValueError(f"JSON field {name!r} is not a base64 string")
    try:
        return b64decode_std(value)
    except ValueError:
        raise ValueError(f"JSON field {name!r} is not valid base64") from None


def _fold_keys(pairs: list[tuple[str, object]]) -> JSONObject:
    # Go matches struct fields under Unicode simple case folding; casefold() agrees for every
    # name KES uses. Building the dict in document order makes the last duplicate win, as in Go.
    return {key.casefold(): value for key, value in pairs}


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _position(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at offset {exc.pos}"
    return "malformed document"


# One decoder for every document: json.loads with keyword arguments builds a new one per call,
# which showed up in the request path's profile.
_DECODER = json.JSONDecoder(object_pairs_hook=_fold_keys, parse_constant=_reject_constant)
