"""The three ciphertext formats KES has written, taken apart for decryption (spec §5.3, §5.4).

* raw (since 2024-02): ``sealed || iv(16) || nonce(12)``; the AEAD is the key's own.
* MessagePack (v0.19 to 2024-01): a 5-item array ``[algorithm, key id, iv, nonce, sealed]``.
* JSON (up to v0.18): ``{"aead", "id", "iv", "nonce", "bytes"}``.

A blob starting with ``0x95`` or ``{`` is tried as MessagePack or JSON first and read as raw
when that fails, because a raw ciphertext may start with either byte. Structured ciphertexts
name their AEAD, and that name wins over the key's type: keys from before v0.19 had no type,
and each of their ciphertexts used whatever AEAD its server's CPU preferred. Key ids are
ignored, as KES itself has ignored them since 2023-10.
"""

from __future__ import annotations

from typing import NamedTuple

from aiokes._go.json import json_bytes, json_str, load_json_object
from aiokes.crypto.cipher import CIPHERS_BY_NAME, Cipher
from aiokes.errors import DecryptError

__all__ = ["IV_SIZE", "NONCE_SIZE", "RANDOM_SIZE", "Ciphertext", "parse_ciphertext"]

IV_SIZE = 16
NONCE_SIZE = 12
RANDOM_SIZE = IV_SIZE + NONCE_SIZE

_MSGPACK_ARRAY_OF_5 = 0x95
_MSGPACK_FIXSTR, _MSGPACK_FIXSTR_MAX_SIZE = 0xA0, 0x1F
_MSGPACK_STR_SIZE_WIDTHS = {0xD9: 1, 0xDA: 2, 0xDB: 4}  # str8, str16, str32
_MSGPACK_BIN_SIZE_WIDTHS = {0xC4: 1, 0xC5: 2, 0xC6: 4}  # bin8, bin16, bin32
_MSGPACK_CIPHERS = {name.encode(): cipher for name, cipher in CIPHERS_BY_NAME.items()}
_JSON_CIPHERS = {"AES-256-GCM-HMAC-SHA-256": Cipher.AES256, "ChaCha20Poly1305": Cipher.CHACHA20}


class Ciphertext(NamedTuple):
    """A ciphertext's parts. A tuple, not a dataclass: it is built once per decrypt call."""

    declared_cipher: Cipher | None  # the AEAD a structured ciphertext names; None when raw
    sealed: bytes  # AEAD output: encrypted bytes || 16-byte tag
    iv: bytes
    nonce: bytes


def parse_ciphertext(blob: bytes) -> Ciphertext:
    """Split ``blob`` into its parts; raise :class:`DecryptError` if it cannot be a ciphertext."""
    first = blob[:1]
    structured = None
    if first == b"\x95":
        structured = _parse_msgpack(blob)
    elif first == b"{":
        structured = _parse_json(blob)
    return _parse_raw(blob) if structured is None else structured


def _parse_raw(blob: bytes) -> Ciphertext:
    if len(blob) <= RANDOM_SIZE:
        raise DecryptError()
    end = len(blob) - RANDOM_SIZE
    return Ciphertext(None, blob[:end], blob[end : end + IV_SIZE], blob[end + IV_SIZE :])


def _parse_msgpack(blob: bytes) -> Ciphertext | None:
    # Strict like Go's msgp: str items, then bin items, exact sizes, nothing after the array.
    try:
        name, position = _read_msgpack_str(blob, 1)
        _key_id, position = _read_msgpack_str(blob, position)
        iv, position = _read_msgpack_bin(blob, position)
        nonce, position = _read_msgpack_bin(blob, position)
        sealed, position = _read_msgpack_bin(blob, position)
    except ValueError:
        return None
    cipher = _MSGPACK_CIPHERS.get(name)
    if cipher is None or position != len(blob) or not _sizes_ok(iv, nonce):
        return None
    return Ciphertext(cipher, sealed, iv, nonce)


def _parse_json(blob: bytes) -> Ciphertext | None:
    try:
        fields = load_json_object(blob)
        name = json_str(fields, "aead")
        json_str(fields, "id")  # ignored, but a non-string id fails Go's decoding too
        iv, nonce = json_bytes(fields, "iv"), json_bytes(fields, "nonce")
        sealed = json_bytes(fields, "bytes")
    except ValueError:
        return None
    cipher = _JSON_CIPHERS.get(name)
    if cipher is None or not _sizes_ok(iv, nonce):
        return None
    return Ciphertext(cipher, sealed, iv, nonce)


def _sizes_ok(iv: bytes, nonce: bytes) -> bool:
    return len(iv) == IV_SIZE and len(nonce) == NONCE_SIZE


def _read_msgpack_str(blob: bytes, position: int) -> tuple[bytes, int]:
    lead = _byte_at(blob, position)
    if lead & ~_MSGPACK_FIXSTR_MAX_SIZE == _MSGPACK_FIXSTR:
        return _take(blob, position + 1, lead & _MSGPACK_FIXSTR_MAX_SIZE)
    return _read_sized(blob, position, _MSGPACK_STR_SIZE_WIDTHS.get(lead))


def _read_msgpack_bin(blob: bytes, position: int) -> tuple[bytes, int]:
    lead = _byte_at(blob, position)
    return _read_sized(blob, position, _MSGPACK_BIN_SIZE_WIDTHS.get(lead))


def _read_sized(blob: bytes, position: int, width: int | None) -> tuple[bytes, int]:
    if width is None:
        raise ValueError("unexpected MessagePack type")
    size_bytes, position = _take(blob, position + 1, width)
    return _take(blob, position, int.from_bytes(size_bytes, "big"))


def _byte_at(blob: bytes, position: int) -> int:
    if position >= len(blob):
        raise ValueError("truncated MessagePack")
    return blob[position]


def _take(blob: bytes, position: int, size: int) -> tuple[bytes, int]:
    end = position + size
    if end > len(blob):
        raise ValueError("truncated MessagePack")
    return blob[position:end], end
