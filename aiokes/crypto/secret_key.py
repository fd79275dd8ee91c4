"""Master keys and KES's authenticated encryption with them (spec §5.2, §5.3, §5.8)."""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from aiokes.crypto._hchacha20 import hchacha20
from aiokes.crypto._prf import HmacSha256
from aiokes.crypto.cipher import Cipher
from aiokes.crypto.ciphertext import IV_SIZE, RANDOM_SIZE, parse_ciphertext
from aiokes.errors import DecryptError

__all__ = ["KEY_SIZE", "SecretKey", "key_id", "new_data_key"]

KEY_SIZE = 32
_AES256 = Cipher.AES256  # a module global: enum attribute lookups cost on the hot path


@dataclass(frozen=True, slots=True, eq=False)
class SecretKey:
    """A 32-byte master key and its type. ``repr`` never shows the key bytes.

    Every message gets its own AEAD key, derived from the master key and a random 16-byte iv,
    so one master key can seal practically unlimited messages under random 12-byte nonces.
    """

    cipher: Cipher
    key: bytes = field(repr=False)
    _prf: HmacSha256 = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.cipher, Cipher):
            raise TypeError("cipher must be a Cipher")
        if not isinstance(self.key, bytes):
            raise TypeError("secret key must be bytes")
        if len(self.key) != KEY_SIZE:
            raise ValueError(f"secret key must be {KEY_SIZE} bytes, not {len(self.key)}")
        object.__setattr__(self, "_prf", HmacSha256(self.key))

    def encrypt(self, plaintext: bytes, associated_data: bytes = b"") -> bytes:
        """Seal ``plaintext`` in KES's raw format: ``sealed || iv(16) || nonce(12)``.

        ``associated_data`` is authenticated, not stored; decryption needs the same bytes
        (an empty and an absent context are the same thing).
        """
        return self._seal(os.urandom(RANDOM_SIZE), plaintext, associated_data)

    def seal_new_data_key(self, associated_data: bytes = b"") -> tuple[bytes, bytes]:
        """A fresh 32-byte data key and its :meth:`encrypt` ciphertext (``generate``).

        The key, the iv and the nonce come from one read of the OS's CSPRNG instead of two:
        they are disjoint parts of its output, so each is as random as if drawn alone.
        """
        random = os.urandom(KEY_SIZE + RANDOM_SIZE)
        plaintext = random[:KEY_SIZE]
        return plaintext, self._seal(random[KEY_SIZE:], plaintext, associated_data)

    def decrypt(self, ciphertext: bytes, associated_data: bytes = b"") -> bytes:
        """Open a ciphertext of any KES era; raise :class:`DecryptError` on any failure."""
        first = ciphertext[:1]
        if self.cipher is _AES256 and first != b"\x95" and first != b"{":
            # MinIO's every decrypt: a raw ciphertext under an AES key, parse_ciphertext's
            # raw case and _aead's AES case written out (same parts, same errors).
            end = len(ciphertext) - RANDOM_SIZE
            if end <= 0:
                raise DecryptError()
            iv = ciphertext[end : end + IV_SIZE]
            try:
                aead = AESGCM(self._prf.digest(iv))
                return aead.decrypt(ciphertext[end + IV_SIZE :], ciphertext[:end], associated_data)
            except (InvalidTag, ValueError, OverflowError):
                raise DecryptError() from None
        parts = parse_ciphertext(ciphertext)
        cipher = self.cipher if parts.declared_cipher is None else parts.declared_cipher
        try:
            return self._aead(cipher, parts.iv).decrypt(parts.nonce, parts.sealed, associated_data)
        except (InvalidTag, ValueError, OverflowError):
            raise DecryptError() from None

    def _seal(self, random: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
        """``sealed || iv || nonce`` with the iv and nonce taken from ``random`` (28 bytes)."""
        iv = random[:IV_SIZE]
        if self.cipher is _AES256:  # MinIO's every request: _aead's AES case, without a call
            aead: AESGCM | ChaCha20Poly1305 = AESGCM(self._prf.digest(iv))
        else:
            aead = self._aead(self.cipher, iv)
        return aead.encrypt(random[IV_SIZE:], plaintext, associated_data) + random

    def _aead(self, cipher: Cipher, iv: bytes) -> AESGCM | ChaCha20Poly1305:
        if cipher is _AES256:
            return AESGCM(self._prf.digest(iv))
        return ChaCha20Poly1305(hchacha20(self.key, iv))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretKey):
            return NotImplemented
        return self.cipher is other.cipher and hmac.compare_digest(self.key, other.key)

    def __hash__(self) -> int:
        return hash((self.cipher, self.key))


def key_id(key: bytes) -> str:
    """KES's legacy key id: hex of the first 16 bytes of SHA-256(key)."""
    return hashlib.sha256(key).digest()[:16].hex()


def new_data_key() -> bytes:
    """32 bytes from the operating system's CSPRNG: a fresh DEK (or master/HMAC key)."""
    return os.urandom(KEY_SIZE)
