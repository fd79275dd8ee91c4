"""HChaCha20, the key-derivation half of XChaCha20 (draft-irtf-cfrg-xchacha §2.2).

KES derives the per-message ChaCha20-Poly1305 key as ``HChaCha20(master key, iv)``.
``cryptography`` has no HChaCha20, but it has the ChaCha20 block function, and the two share
their 20 rounds: a ChaCha20 keystream block is ``permute(state) + state`` (word-wise, mod 2**32)
while HChaCha20 returns words 0-3 and 12-15 of ``permute(state)`` itself. With a 16-byte nonce
``cryptography`` places the nonce in state words 12-15 exactly as HChaCha20 does, so one
keystream block minus the known initial words is HChaCha20 -- exact, and in C.
"""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives import ciphers

__all__ = ["hchacha20"]

_WORDS_4 = struct.Struct("<4I")
_WORDS_8 = struct.Struct("<8I")
_WORDS_16 = struct.Struct("<16I")
_SIGMA = _WORDS_4.unpack(b"expand 32-byte k")  # state words 0-3
_ZERO_BLOCK = bytes(64)
_MASK = 0xFFFFFFFF


def hchacha20(key: bytes, nonce: bytes) -> bytes:
    """Return the 32-byte HChaCha20 output for a 32-byte key and a 16-byte nonce."""
    stream = ciphers.Cipher(ciphers.algorithms.ChaCha20(key, nonce), mode=None).encryptor()
    block = _WORDS_16.unpack(stream.update(_ZERO_BLOCK))
    sigma = _SIGMA
    words = _WORDS_4.unpack(nonce)  # state words 12-15
    return _WORDS_8.pack(
        (block[0] - sigma[0]) & _MASK,
        (block[1] - sigma[1]) & _MASK,
        (block[2] - sigma[2]) & _MASK,
        (block[3] - sigma[3]) & _MASK,
        (block[12] - words[0]) & _MASK,
        (block[13] - words[1]) & _MASK,
        (block[14] - words[2]) & _MASK,
        (block[15] - words[3]) & _MASK,
    )
