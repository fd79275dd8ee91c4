"""The one exception tree of aiokes.

This module imports nothing from aiokes. Every failure that can reach a client is an
:class:`APIError` carrying KES's exact status code and message (MinIO compares both for
equality, so the texts must stay byte-identical). Everything else is translated into an
``APIError`` at a boundary: keystore failures become 502 with an operation-specific message,
the detail going only to the error log. The client (:mod:`aiokes.client`, the CLI) has
classes of its own for what fails before or around an API answer: set-up, an unreachable
server, an unusable response, a refusal.
"""

from __future__ import annotations

__all__ = [
    "APIError",
    "AiokesError",
    "BadRequest",
    "ClientSetupError",
    "ConfigError",
    "DecryptError",
    "HMACNotSupported",
    "IdentityFileError",
    "IdentityNotFound",
    "InvalidKeyRecord",
    "InvalidResponse",
    "KeyExists",
    "KeyNameReserved",
    "KeyNotFound",
    "KeystoreError",
    "KeystoreUnreachable",
    "NotAllowed",
    "PolicyNotFound",
    "ServerRefused",
    "ServerStartError",
    "ServerUnreachable",
    "TLSError",
]


class AiokesError(Exception):
    """Root of every exception aiokes raises on purpose."""


class APIError(AiokesError):
    """An error with an HTTP status and a client-safe message (KES's ``api.Error``)."""

    status: int = 500
    message: str = "internal server error"

    def __init__(self, message: str | None = None, *, status: int | None = None) -> None:
        if message is not None:
            self.message = message
        if status is not None:
            self.status = status
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, message={self.message!r})"


class BadRequest(APIError):
    status = 400
    message = "invalid request body"


class NotAllowed(APIError):
    status = 403
    message = "not authorized: insufficient permissions"


class KeyNotFound(APIError):
    status = 404
    message = "key does not exist"


class KeyExists(APIError):
    status = 400
    message = "key already exists"


class KeyNameReserved(KeyExists):
    """A create of a name whose key was deleted too recently to reuse it (a tombstone).

    A subclass of :class:`KeyExists` because the name is taken, by a deleted key that another
    server may still serve from its cache; its own status and message, because it is not the
    "key already exists" that MinIO compares for.
    """

    status = 409


class PolicyNotFound(APIError):
    status = 404
    message = "policy does not exist"


class IdentityNotFound(APIError):
    status = 404
    message = "identity does not exist"


class DecryptError(APIError):
    status = 400
    message = "decryption failed: ciphertext is not authentic"


class KeystoreError(AiokesError):
    """A keystore backend failed (I/O error, Azure error, timeout, unreadable record).

    ``str(exc)`` is the detail for the error log and never reaches a client; the API maps it
    to 502 with a message naming the operation ("failed to read key", ...).
    """


class KeystoreUnreachable(KeystoreError):
    """The keystore could not be contacted at all (network, DNS, connection refused, outage)."""


class InvalidKeyRecord(KeystoreError):
    """A stored key record is neither a KES protobuf record nor a KES JSON record."""


class ConfigError(AiokesError):
    """A configuration file is invalid. The message names the file, the line and the key."""

    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None, key: str = ""
    ) -> None:
        self.file = file
        self.line = line
        self.key = key
        self.detail = message
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.file or "<config>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        key = f" '{self.key}'" if self.key else ""
        return f"{where}: config{key}: {self.detail}"


class HMACNotSupported(APIError):
    """The key record predates HMAC keys (every record written before KES R-2024-02)."""

    status = 409
    message = "key does not support HMAC"


class TLSError(AiokesError):
    """The server's TLS material or mode cannot be used; the server must not start."""


class ServerStartError(AiokesError):
    """The server cannot start serving: its address cannot be bound, its worker count is out
    of range, or its worker processes did not come up in time."""


class IdentityFileError(AiokesError):
    """An identity's private key or certificate file cannot be written or read, or an API key
    given in its place is malformed (``aiokes identity new`` / ``identity of``)."""


# --- the client's side of the API (aiokes.client and the CLI commands built on it) ----------


class ClientSetupError(AiokesError):
    """The client cannot be set up: no endpoint, missing or contradicting credentials, or a
    certificate, private key or CA file that cannot be loaded. Nothing was sent."""


class ServerUnreachable(AiokesError):
    """No server answered: connection refused, DNS, TLS handshake, timeout or a dropped
    connection. The transport's own exception is kept as ``__cause__``."""

    def __init__(self, endpoint: str, reason: str) -> None:
        self.endpoint = endpoint
        self.reason = reason
        super().__init__(f"cannot reach {endpoint}: {reason}")


class InvalidResponse(AiokesError):
    """A server answered, but with a body the client cannot use (not the JSON it should be,
    a missing or malformed field), or it reported a failure inside a successful answer."""


class ServerRefused(AiokesError):
    """A CLI command's request was answered with an API error; the message says what was
    attempted and the server's reason (``failed to create key 'k': key already exists``)."""
