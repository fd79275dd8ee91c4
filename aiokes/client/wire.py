"""Wire helpers of the client: KES's JSON bodies with standard padded base64 byte fields."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aiokes._go.base64 import b64encode_std
from aiokes.errors import InvalidResponse

__all__ = [
    "bytes_field",
    "invalid_response",
    "json_array",
    "json_object",
    "ndjson_names",
    "parse_json",
    "with_context",
]


def with_context(body: dict[str, str], context: bytes) -> dict[str, str]:
    if context:  # omitted when empty, as kms-go does ("omitempty")
        body["context"] = b64encode_std(context)
    return body


def parse_json(body: bytes, path: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise invalid_response(path, "the body is not JSON") from None


def json_object(document: Any, path: str) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise invalid_response(path, "expected a JSON object")
    return document


def json_array(document: Any, path: str) -> list[Any]:
    if not isinstance(document, list):
        raise invalid_response(path, "expected a JSON array")
    return document


def bytes_field(document: Any, name: str, path: str) -> bytes:
    value = document.get(name) if isinstance(document, dict) else None
    if not isinstance(value, str):
        raise invalid_response(path, f"no '{name}' field")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise invalid_response(path, f"'{name}' is not base64") from None


def ndjson_names(body: bytes, name_field: str, path: str) -> list[str]:
    """A legacy (KES ≤ 2023-10) streamed listing: one object per line (spec §3.3)."""
    names = []
    for line in body.splitlines():
        if not line.strip():
            continue
        entry = json_object(parse_json(line, path), path)
        if entry.get("error"):
            raise InvalidResponse(f"listing failed on the server: {entry['error']}")
        names.append(str(entry.get(name_field, "")))
    return names


def invalid_response(path: str, reason: str) -> InvalidResponse:
    return InvalidResponse(f"invalid response from the server for {path}: {reason}")
