"""The two master-key types of KES and their names across releases (spec §5.1)."""

from __future__ import annotations

import enum

__all__ = ["Cipher", "parse_cipher"]


class Cipher(enum.IntEnum):
    """A master key's type; the values are the protobuf ``SecretKey.Type`` wire values."""

    AES256 = 1  # AES-256-GCM under a per-message key HMAC-SHA256(master key, iv)
    CHACHA20 = 2  # ChaCha20-Poly1305 under a per-message key HChaCha20(master key, iv)

    @property
    def kes_name(self) -> str:
        """The name KES's describe API shows (``AES256`` or ``ChaCha20``)."""
        return "AES256" if self is Cipher.AES256 else "ChaCha20"


# Every name a KES release wrote for a key type: v0.19-v0.22 used the long names, later
# releases the short ones. The import API, JSON key records and msgpack ciphertexts all
# accept exactly these four.
CIPHERS_BY_NAME: dict[str, Cipher] = {
    "AES256": Cipher.AES256,
    "AES256-GCM_SHA256": Cipher.AES256,
    "ChaCha20": Cipher.CHACHA20,
    "XCHACHA20-POLY1305": Cipher.CHACHA20,
}


def parse_cipher(name: str) -> Cipher:
    """Map a KES key-type name to a :class:`Cipher`; raise ``ValueError`` for any other name."""
    cipher = CIPHERS_BY_NAME.get(name)
    if cipher is None:
        raise ValueError(f"unsupported cipher {name!r}: use AES256 or ChaCha20")
    return cipher
