"""Go's decoding rules for the text formats KES stored: base64, JSON objects, RFC 3339 times.

KES reads its old JSON ciphertexts and key records with Go's ``encoding/json`` into structs and
its protobuf records with ``encoding/base64``. What those accept is what aiokes must accept, so
this module mirrors their rules instead of Python's defaults:

* base64: the standard alphabet with padding; ``\\r`` and ``\\n`` are skipped anywhere.
* JSON objects: field names match case-insensitively, the last duplicate wins, ``null`` leaves
  a field at its zero value, a value of the wrong JSON type fails the whole document, and
  ``NaN``/``Infinity`` (which Python would accept) are not JSON.
* times: Go's strict RFC 3339 (upper-case ``T``/``Z``, ``.`` fraction of any length truncated to
  nanoseconds, numeric offset, no leap second), held as integer nanoseconds since the Unix epoch
  because a ``datetime`` cannot hold Go's nanoseconds.

Error messages never quote the input: it may be key material.
"""

from __future__ import annotations

import binascii
import json
import re
from datetime import UTC, datetime, timedelta

__all__ = [
    "NANOS_PER_SECOND",
    "UNIX_EPOCH",
    "b64decode_std",
    "format_rfc3339",
    "json_bytes",
    "json_str",
    "load_json_object",
    "parse_rfc3339",
]

NANOS_PER_SECOND = 1_000_000_000
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:Z|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)

JSONObject = dict[str, object]


def b64decode_std(data: bytes | str) -> bytes:
    """Decode like Go's ``base64.StdEncoding``; raise ``ValueError`` on malformed input."""
    try:
        raw = data.encode("ascii") if isinstance(data, str) else data
        return binascii.a2b_base64(raw.replace(b"\r", b"").replace(b"\n", b""), strict_mode=True)
    except ValueError:  # binascii.Error and UnicodeEncodeError; neither message is safe to keep
        raise ValueError("invalid base64") from None


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


def parse_rfc3339(text: str) -> int:
    """Parse an RFC 3339 time as Go's ``time.Time.UnmarshalJSON`` does; Unix nanoseconds."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError("time is not RFC 3339")
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction, sign, offset_hours, offset_minutes = match.groups()[6:]
    try:
        when = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        raise ValueError("time is out of range") from None
    seconds = (when - UNIX_EPOCH) // timedelta(seconds=1)
    if sign is not None:
        seconds -= _offset_seconds(sign, int(offset_hours), int(offset_minutes))
    nanos = int(fraction[:9].ljust(9, "0")) if fraction else 0
    return seconds * NANOS_PER_SECOND + nanos


def format_rfc3339(unix_nanos: int) -> str:
    """Format like Go's ``time.Time.MarshalJSON`` for a UTC time (RFC 3339, nanoseconds)."""
    seconds, nanos = divmod(unix_nanos, NANOS_PER_SECOND)
    when = UNIX_EPOCH + timedelta(seconds=seconds)
    fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
    return (
        f"{when.year:04d}-{when.month:02d}-{when.day:02d}"
        f"T{when.hour:02d}:{when.minute:02d}:{when.second:02d}{fraction}Z"
    )


def _offset_seconds(sign: str, hours: int, minutes: int) -> int:
    if hours > 23 or minutes > 59:
        raise ValueError("time zone offset is out of range")
    offset = (hours * 60 + minutes) * 60
    return -offset if sign == "-" else offset


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
