"""Turn a KES error response into the matching :mod:`aiokes.errors` exception, and a
transport failure into one line that says why the server could not be reached.

Decoding follows kms-go (``kes/error.go``, spec §1.5): a JSON body when the Content-Type
starts with ``application/json`` (``error`` wins over ``message``), otherwise the body text.
Go callers compare (status, message) for equality, so a canonical error is recognised only
when both match exactly; everything else stays a plain :class:`APIError`.
"""

from __future__ import annotations

import json
import os
import socket
import ssl

import aiohttp

from aiokes.errors import (
    APIError,
    DecryptError,
    HMACNotSupported,
    IdentityNotFound,
    KeyExists,
    KeyNotFound,
    NotAllowed,
    PolicyNotFound,
)

__all__ = ["error_from_response", "transport_reason"]

_MAX_ERROR_BODY = 1 << 20  # kms-go reads at most 1 MiB of an error body

_CANONICAL: dict[tuple[int, str], type[APIError]] = {
    (cls.status, cls.message): cls
    for cls in (
        KeyNotFound,
        KeyExists,
        NotAllowed,
        PolicyNotFound,
        IdentityNotFound,
        DecryptError,
        HMACNotSupported,
    )
}
# The texts of KES < v0.19, still mapped by kms-go (spec §1.5).
_CANONICAL[(400, "key does already exist")] = KeyExists
_CANONICAL[(403, "prohibited by policy")] = NotAllowed


def error_from_response(status: int, content_type: str, body: bytes) -> APIError:
    message = _message(content_type, body[:_MAX_ERROR_BODY])
    canonical = _CANONICAL.get((status, message))
    if canonical is not None:
        return canonical()
    return APIError(message or f"server answered {status} without a message", status=status)


def _message(content_type: str, body: bytes) -> str:
    text = body.decode("utf-8", errors="replace")
    if not content_type.strip().startswith("application/json"):
        return text.strip()  # e.g. Go's "404 page not found\n"
    try:
        document = json.loads(text)
    except ValueError:
        return text.strip()
    if not isinstance(document, dict):
        return text.strip()
    error, message = document.get("error"), document.get("message")
    if isinstance(error, str) and error:
        return error
    return message if isinstance(message, str) else ""


def transport_reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no response within {timeout:g} s"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        error = exc.certificate_error
        detail = getattr(error, "verify_message", "") or str(error)
        return f"server certificate not trusted: {detail}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _os_error_reason(exc.os_error)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection (is the client certificate accepted?)"
    if isinstance(exc, OSError):
        return _os_error_reason(exc)
    return str(exc) or type(exc).__name__


def _os_error_reason(error: OSError) -> str:
    if isinstance(error, ssl.SSLError) and error.reason:
        return "TLS handshake failed: " + error.reason.lower().replace("_", " ")
    if not isinstance(error, socket.gaierror) and error.errno and error.errno > 0:
        return os.strerror(error.errno)  # asyncio says "Connect call failed (...)" instead
    return error.strerror or str(error)
