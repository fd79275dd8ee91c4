"""Every ciphertext format KES wrote opens, whichever cipher produced it (spec §5.3, §5.4)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest

from aiokes.crypto import Cipher, SecretKey, key_id
from aiokes.crypto.ciphertext import parse_ciphertext
from aiokes.errors import DecryptError

from .vectors import (
    JSON_AES_FOREIGN_ID,
    JSON_CHACHA,
    MSGPACK_AES,
    MSGPACK_CHACHA,
    RAW_AES,
    SECOND_KEY,
    TUTORIAL_CIPHERTEXT,
    ZERO_KEY,
)

BOTH = pytest.mark.parametrize("cipher", list(Cipher), ids=lambda c: c.kes_name)
MSGPACK_NAMES = {Cipher.AES256: "AES256-GCM_SHA256", Cipher.CHACHA20: "XCHACHA20-POLY1305"}
JSON_NAMES = {Cipher.AES256: "AES-256-GCM-HMAC-SHA-256", Cipher.CHACHA20: "ChaCha20Poly1305"}


def _split(raw: bytes) -> tuple[bytes, bytes, bytes]:
    return raw[:-28], raw[-28:-12], raw[-12:]


def _msgpack_str(text: bytes, lead: int | None = None) -> bytes:
    if lead is None:  # smallest encoding, as every KES writer used
        lead = 0xA0 | len(text) if len(text) < 32 else 0xD9
    widths = {0xD9: 1, 0xDA: 2, 0xDB: 4}
    size = len(text).to_bytes(widths[lead], "big") if lead in widths else b""
    return bytes([lead]) + size + text


def _msgpack_bin(data: bytes, lead: int = 0xC4) -> bytes:
    return bytes([lead]) + len(data).to_bytes({0xC4: 1, 0xC5: 2, 0xC6: 4}[lead], "big") + data


def _to_msgpack(raw: bytes, name: str, key: bytes, *, bin_lead: int = 0xC4) -> bytes:
    """Spec §5.4: ``95 <str alg> <str id> <bin iv> <bin nonce> <bin sealed>``."""
    sealed, iv, nonce = _split(raw)
    return (
        b"\x95"
        + _msgpack_str(name.encode())
        + _msgpack_str(key_id(key).encode())
        + b"".join(_msgpack_bin(part, bin_lead) for part in (iv, nonce, sealed))
    )


def _to_json(raw: bytes, name: str, key: bytes) -> bytes:
    sealed, iv, nonce = (base64.b64encode(part).decode() for part in _split(raw))
    fields = {"aead": name, "id": key_id(key), "iv": iv, "nonce": nonce, "bytes": sealed}
    return json.dumps(fields, separators=(",", ":")).encode()


def test_dek_in_msgpack_is_the_124_byte_layout() -> None:
    key = SecretKey(Cipher.AES256, SECOND_KEY)
    raw = key.encrypt(bytes(32), b"ctx")
    blob = _to_msgpack(raw, "AES256", SECOND_KEY)
    assert len(blob) == 124
    headers = (blob[:10], blob[42:44], blob[60:62], blob[74:76])
    assert headers == (b"\x95\xa6AES256\xd9\x20", b"\xc4\x10", b"\xc4\x0c", b"\xc4\x30")
    assert key.decrypt(blob, b"ctx") == bytes(32)


def test_kes_raw_vector_reassembled_as_msgpack_opens() -> None:
    blob = _to_msgpack(RAW_AES, "AES256", ZERO_KEY)
    assert SecretKey(Cipher.AES256, ZERO_KEY).decrypt(blob) == bytes(16)


def test_kes_msgpack_vector_has_the_documented_layout() -> None:
    parts = parse_ciphertext(MSGPACK_AES)
    assert parts.declared_cipher is Cipher.AES256
    assert MSGPACK_AES[:19] == b"\x95\xb1AES256-GCM_SHA256"
    assert MSGPACK_AES[19:21] + MSGPACK_AES[21:53] == b"\xd9\x20" + key_id(ZERO_KEY).encode()
    assert (len(parts.iv), len(parts.nonce), len(parts.sealed)) == (16, 12, 32)


@BOTH
@pytest.mark.parametrize("form", ["msgpack-long-name", "msgpack-short-name", "json"])
def test_every_format_opens_with_both_ciphers(cipher: Cipher, form: str) -> None:
    key = SecretKey(cipher, SECOND_KEY)
    raw = key.encrypt(b"data key", b"context")
    if form == "json":
        blob = _to_json(raw, JSON_NAMES[cipher], SECOND_KEY)
    else:
        name = MSGPACK_NAMES[cipher] if form == "msgpack-long-name" else cipher.kes_name
        blob = _to_msgpack(raw, name, SECOND_KEY)
    assert key.decrypt(blob, b"context") == b"data key"
    with pytest.raises(DecryptError):
        key.decrypt(blob, b"other context")


@pytest.mark.parametrize(
    "blob", [MSGPACK_CHACHA, JSON_CHACHA], ids=["kes-msgpack-chacha", "kes-json-chacha"]
)
def test_structured_ciphertext_uses_its_named_aead_not_the_keys_type(blob: bytes) -> None:
    # A pre-v0.19 key has no type and loads as AES256, yet its server may have sealed with
    # ChaCha20 (spec §5.3 compatibility recommendation). KES HEAD fails here; aiokes opens it.
    assert SecretKey(Cipher.AES256, ZERO_KEY).decrypt(blob) == bytes(16)


def test_aes_structured_ciphertext_opens_under_a_chacha_key() -> None:
    assert SecretKey(Cipher.CHACHA20, ZERO_KEY).decrypt(MSGPACK_AES) == bytes(16)


def test_key_ids_are_ignored() -> None:
    assert SecretKey(Cipher.AES256, ZERO_KEY).decrypt(JSON_AES_FOREIGN_ID) == bytes(16)
    raw = SecretKey(Cipher.AES256, ZERO_KEY).encrypt(b"dek")
    blob = _to_msgpack(raw, "AES256", SECOND_KEY)  # the id of another key
    assert SecretKey(Cipher.AES256, ZERO_KEY).decrypt(blob) == b"dek"


def test_tutorial_ciphertext_is_a_json_era_ciphertext_of_a_dek() -> None:
    assert TUTORIAL_CIPHERTEXT.startswith(b'{"aead":"AES-256-GCM-HMAC-SHA-256","id":"')
    parts = parse_ciphertext(TUTORIAL_CIPHERTEXT)
    assert parts.declared_cipher is Cipher.AES256
    assert (len(parts.iv), len(parts.nonce), len(parts.sealed)) == (16, 12, 48)
    with pytest.raises(DecryptError):  # its key is not ours
        SecretKey(Cipher.AES256, ZERO_KEY).decrypt(TUTORIAL_CIPHERTEXT)


def test_tutorial_shaped_ciphertext_of_a_known_key_opens() -> None:
    key = SecretKey(Cipher.AES256, SECOND_KEY)
    blob = _to_json(key.encrypt(bytes(32)), "AES-256-GCM-HMAC-SHA-256", SECOND_KEY)
    assert 169 <= len(blob) <= 209  # spec §5.5: JSON-era DEK ciphertexts
    assert key.decrypt(blob) == bytes(32)


@pytest.mark.parametrize(("lead", "bin_lead"), [(0xD9, 0xC5), (0xDA, 0xC6), (0xDB, 0xC4)])
def test_msgpack_accepts_wider_str_and_bin_encodings(lead: int, bin_lead: int) -> None:
    key = SecretKey(Cipher.AES256, SECOND_KEY)
    sealed, iv, nonce = _split(key.encrypt(b"dek"))
    blob = b"\x95" + _msgpack_str(b"AES256", lead) + _msgpack_str(b"", lead)
    blob += b"".join(_msgpack_bin(part, bin_lead) for part in (iv, nonce, sealed))
    assert key.decrypt(blob) == b"dek"


def _tamper_msgpack(blob: bytes, case: str) -> bytes:
    edits: dict[str, Callable[[bytes], bytes]] = {
        "array-of-4": lambda b: b"\x94" + b[1:],
        "trailing-byte": lambda b: b + b"\x00",
        "name-as-bin": lambda b: b"\x95\xc4\x06" + b[2:],
        "unknown-name": lambda b: b.replace(b"AES256", b"AES128", 1),
        "iv-as-str": lambda b: b.replace(b"\xc4\x10", b"\xd9\x10", 1),
        "iv-15-bytes": lambda b: b.replace(b"\xc4\x10", b"\xc4\x0f", 1),
        "nonce-13-bytes": lambda b: b.replace(b"\xc4\x0c", b"\xc4\x0d", 1),
        "sealed-size-too-big": lambda b: b[:-49] + b"\xc4\x31" + b[-48:],
        "truncated": lambda b: b[:-1],
    }
    return edits[case](blob)


@pytest.mark.parametrize(
    "case",
    [
        "array-of-4",
        "trailing-byte",
        "name-as-bin",
        "unknown-name",
        "iv-as-str",
        "iv-15-bytes",
        "nonce-13-bytes",
        "sealed-size-too-big",
        "truncated",
    ],
)
def test_malformed_msgpack_is_not_accepted(case: str) -> None:
    key = SecretKey(Cipher.AES256, SECOND_KEY)
    blob = _to_msgpack(key.encrypt(bytes(32)), "AES256", SECOND_KEY)
    assert key.decrypt(blob) == bytes(32)
    with pytest.raises(DecryptError):
        key.decrypt(_tamper_msgpack(blob, case))


@pytest.mark.parametrize("offset", [0, 1, 5, 8, 9, 42, 43, 50, 60, 70, 74, 75, 100, 123])
def test_every_msgpack_region_is_authenticated_or_validated(offset: int) -> None:
    # header, name, str/bin sizes, iv, nonce, sealed bytes, tag -- everything but the key id
    key = SecretKey(Cipher.AES256, SECOND_KEY)
    blob = bytearray(_to_msgpack(key.encrypt(bytes(32)), "AES256", SECOND_KEY))
    blob[offset] ^= 0x01
    with pytest.raises(DecryptError):
        key.decrypt(bytes(blob))


def test_key_id_bytes_are_not_authenticated() -> None:
    key = SecretKey(Cipher.AES256, SECOND_KEY)
    blob = bytearray(_to_msgpack(key.encrypt(b"dek"), "AES256", SECOND_KEY))
    blob[20] ^= 0x01
    assert key.decrypt(bytes(blob)) == b"dek"


_JSON_VARIANTS = {
    "upper-case-keys": '{"AEAD":"$AEAD","IV":"$IV","Nonce":"$NONCE","BYTES":"$SEALED"}',
    "duplicate-last-wins": (
        '{"aead":"x","iv":"AAAA","aead":"$AEAD","iv":"$IV","nonce":"$NONCE","bytes":"$SEALED"}'
    ),
    "null-id-and-extra-fields": (
        '{"aead":"$AEAD","id":null,"x":[1],"iv":"$IV","nonce":"$NONCE","bytes":"$SEALED"}'
    ),
    "whitespace-and-escapes": (
        '{ "aead" : "$AEAD",\n "iv":"$IV_ESCAPED", "nonce":"$NONCE", "bytes":"$SEALED" }\n'
    ),
}


def _json_variant(raw: bytes, case: str) -> bytes:
    sealed, iv, nonce = (base64.b64encode(part).decode() for part in _split(raw))
    escaped_iv = "".join(f"\\u{ord(char):04x}" for char in iv)  # JSON escapes of every char
    text = _JSON_VARIANTS[case].replace("$AEAD", "AES-256-GCM-HMAC-SHA-256")
    text = text.replace("$IV_ESCAPED", escaped_iv).replace("$IV", iv)
    return text.replace("$NONCE", nonce).replace("$SEALED", sealed).encode()


@pytest.mark.parametrize("case", sorted(_JSON_VARIANTS))
def test_json_ciphertexts_are_read_with_go_rules(case: str) -> None:
    key = SecretKey(Cipher.AES256, SECOND_KEY)
    assert key.decrypt(_json_variant(key.encrypt(b"dek"), case)) == b"dek"


@pytest.mark.parametrize(
    "replace",
    [
        ('"id":"', '"id":7,"x":"'),  # a non-string id fails Go's decoding
        (
            '"aead":"AES-256-GCM-HMAC-SHA-256"',
            '"aead":"AES256"',
        ),  # msgpack names are not JSON names
        ('"iv":"', '"iv":"!'),  # not base64
        ("}", ',"n":NaN}'),  # not JSON for Go
    ],
)
def test_invalid_json_ciphertexts_fail(replace: tuple[str, str]) -> None:
    key = SecretKey(Cipher.AES256, SECOND_KEY)
    blob = _to_json(key.encrypt(b"dek"), "AES-256-GCM-HMAC-SHA-256", SECOND_KEY)
    assert key.decrypt(blob) == b"dek"
    with pytest.raises(DecryptError):
        key.decrypt(blob.decode().replace(*replace, 1).encode())


@pytest.mark.parametrize("field", ["iv", "nonce", "bytes"])
def test_tampered_json_fields_fail(field: str) -> None:
    key = SecretKey(Cipher.CHACHA20, SECOND_KEY)
    sealed, iv, nonce = _split(key.encrypt(bytes(32)))
    parts = {"iv": iv, "nonce": nonce, "bytes": sealed}
    parts[field] = bytes([parts[field][0] ^ 1]) + parts[field][1:]
    raw = parts["bytes"] + parts["iv"] + parts["nonce"]
    with pytest.raises(DecryptError):
        key.decrypt(_to_json(raw, "ChaCha20Poly1305", SECOND_KEY))


def test_parse_raw_splits_off_iv_and_nonce() -> None:
    blob = bytes(range(60))
    parts = parse_ciphertext(blob)
    assert parts == (None, blob[:32], blob[32:48], blob[48:])
