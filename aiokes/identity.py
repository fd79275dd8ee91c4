"""Identities, names and API keys, with KES's exact rules.

An identity is the lowercase hex SHA-256 of a certificate's DER SubjectPublicKeyInfo: it does
not depend on the subject, serial, issuer or validity, so re-issuing a certificate for the same
key pair keeps the identity (spec §4.1). A ``kes:v1:`` API key is an Ed25519 seed; its identity
is the one a certificate for its public key has (spec §4.7).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
import secrets
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

__all__ = [
    "API_KEY_PREFIX",
    "APIKey",
    "identity_of_certificate",
    "identity_of_public_key",
    "is_identity",
    "valid_name",
    "valid_pattern",
]

API_KEY_PREFIX = "kes:v1:"
_API_KEY_TYPE_ED25519 = 0
_NAME_CHARS = re.compile(r"[0-9A-Za-z_-]*")
_HEX_IDENTITY = re.compile(r"[0-9a-f]{64}")


@functools.lru_cache(maxsize=4096)  # the same few key names arrive thousands of times a second
def valid_name(name: str) -> bool:
    """KES ``validName``: 1..80 of ``[0-9A-Za-z_-]``, no leading/trailing ``-``, not ``_``."""
    return name != "" and _valid(name, star_allowed=False)


def valid_pattern(pattern: str) -> bool:
    """KES ``validPattern``: like a name, may be empty, and may end in a single ``*``."""
    return pattern == "*" or _valid(pattern, star_allowed=True)


def _valid(text: str, *, star_allowed: bool) -> bool:
    if text == "_" or len(text) > 80:
        return False
    body = text[:-1] if star_allowed and text.endswith("*") else text
    if not _NAME_CHARS.fullmatch(body):
        return False
    # '-' is neither the first nor the last character of the whole text.
    return not (text.startswith("-") or text.endswith("-"))


def is_identity(value: str) -> bool:
    """Whether ``value`` looks like an identity a certificate can have (64 lowercase hex)."""
    return _HEX_IDENTITY.fullmatch(value) is not None


def identity_of_public_key(public_key: PublicKeyTypes) -> str:
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def identity_of_certificate(certificate: x509.Certificate | bytes) -> str:
    """Identity of a certificate given as a parsed object or as DER bytes."""
    if isinstance(certificate, bytes):
        certificate = x509.load_der_x509_certificate(certificate)
    return identity_of_public_key(certificate.public_key())


@dataclass(frozen=True, slots=True)
class APIKey:
    """A ``kes:v1:`` API key: an Ed25519 private key in KES's text form."""

    seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.seed) != 32:
            raise ValueError("api key: an Ed25519 seed has 32 bytes")

    @classmethod
    def generate(cls) -> APIKey:
        return cls(secrets.token_bytes(32))

    @classmethod
    def parse(cls, text: str) -> APIKey:
        """Parse ``kes:v1:<base64>``; the prefix is optional, as in kms-go."""
        encoded = text.strip().removeprefix(API_KEY_PREFIX)
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("invalid api key: not base64") from None
        if len(raw) != 33 or raw[0] != _API_KEY_TYPE_ED25519:
            raise ValueError("invalid api key: unsupported length or key type") from None
        return cls(raw[1:])

    @classmethod
    def from_private_key(cls, key: ed25519.Ed25519PrivateKey) -> APIKey:
        return cls(
            key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
        )

    def private_key(self) -> ed25519.Ed25519PrivateKey:
        return ed25519.Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def identity(self) -> str:
        return identity_of_public_key(self.private_key().public_key())

    def __str__(self) -> str:
        raw = bytes([_API_KEY_TYPE_ED25519]) + self.seed
        return API_KEY_PREFIX + base64.b64encode(raw).decode("ascii")
