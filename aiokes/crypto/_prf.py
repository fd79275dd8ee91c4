"""HMAC-SHA256 under one fixed key, with the key's pad blocks hashed once up front.

Every AES256 seal or open derives its AEAD key as ``HMAC-SHA256(master key, iv)``. The stdlib
one-shot ``hmac.digest`` re-hashes both padded key blocks on every call; copying two prepared
SHA-256 states instead halves the cost. The prepared states belong to one
:class:`~aiokes.crypto.SecretKey` and are never shared between keys.
"""

from __future__ import annotations

import hashlib

__all__ = ["HmacSha256"]

_BLOCK_SIZE = 64  # SHA-256 block size, RFC 2104's B
_INNER_PAD = bytes(byte ^ 0x36 for byte in range(256))
_OUTER_PAD = bytes(byte ^ 0x5C for byte in range(256))


class HmacSha256:
    """RFC 2104 HMAC-SHA256 under a fixed key: ``digest(m) == hmac.digest(key, m, "sha256")``."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK_SIZE:
            key = hashlib.sha256(key).digest()
        block = key.ljust(_BLOCK_SIZE, b"\0")
        self._inner = hashlib.sha256(block.translate(_INNER_PAD))
        self._outer = hashlib.sha256(block.translate(_OUTER_PAD))

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def __repr__(self) -> str:
        return "HmacSha256(<secret>)"
