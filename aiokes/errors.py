"""The one exception tree of aiokes.

This module imports nothing from aiokes. Every failure that can reach a client is an
:class:`APIError` carrying KES's exact status code and message (MinIO compares both for
equality, so the texts must stay byte-identical). Everything else is translated into an
``APIError`` at a boundary: keystore failures become 502 with an operation-specific message,
the detail going only to the error log.
"""

from __future__ import annotations

__all__ = [
    "APIError",
    "AiokesError",
    "BadRequest",
    "ConfigError",
    "DecryptError",
    "HMACNotSupported",
    "IdentityNotFound",
    "InvalidKeyRecord",
    "KeyExists",
    "KeyNameReserved",
    "KeyNotFound",
    "KeystoreError",
    "KeystoreUnreachable",
    "NotAllowed",
    "PolicyNotFound",
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
