"""The bodies Key Vault and its token endpoint answer with, for the fake's handlers: version
attributes, errors and token errors, shaped as Key Vault sends them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from bench.fakevault.store import Version

__all__ = ["error_response", "token_error_response", "version_attributes"]


def version_attributes(entry: Version) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "enabled": entry.enabled,
        "created": entry.created,
        "updated": entry.created,
        "recoveryLevel": "CustomizedRecoverable+Purgeable",
        "recoverableDays": 7,
    }
    if entry.expires is not None:
        attributes["exp"] = entry.expires
    if entry.not_before is not None:
        attributes["nbf"] = entry.not_before
    return attributes


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    inner: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if inner:
        error["innererror"] = {"code": inner}
    return web.json_response({"error": error}, status=status, headers=headers)


def token_error_response(status: int) -> web.Response:
    return web.json_response(
        {
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided.",
            "error_codes": [7000215],
        },
        status=status,
    )
