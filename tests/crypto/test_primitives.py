"""Cipher names, HChaCha20 and the prepared HMAC: the building blocks of KES's encryption."""

from __future__ import annotations

import hmac
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

import aiokes.crypto
from aiokes.crypto import Cipher, parse_cipher
from aiokes.crypto._hchacha20 import hchacha20
from aiokes.crypto._prf import HmacSha256

from .vectors import HCHACHA20_KEY, HCHACHA20_NONCE, HCHACHA20_OUTPUT


def _reference_hchacha20(key: bytes, nonce: bytes) -> bytes:
    """HChaCha20 written out round by round from draft-irtf-cfrg-xchacha §2.2 (slow, obvious)."""

    def quarter_round(s: list[int], a: int, b: int, c: int, d: int) -> None:
        for x, y, z, shift in ((a, b, d, 16), (c, d, b, 12), (a, b, d, 8), (c, d, b, 7)):
            s[x] = (s[x] + s[y]) & 0xFFFFFFFF
            s[z] ^= s[x]
            s[z] = ((s[z] << shift) | (s[z] >> (32 - shift))) & 0xFFFFFFFF

    state = list(struct.unpack("<16I", b"expand 32-byte k" + key + nonce))
    for _ in range(10):
        for a, b, c, d in ((0, 4, 8, 12), (1, 5, 9, 13), (2, 6, 10, 14), (3, 7, 11, 15)):
            quarter_round(state, a, b, c, d)
        for a, b, c, d in ((0, 5, 10, 15), (1, 6, 11, 12), (2, 7, 8, 13), (3, 4, 9, 14)):
            quarter_round(state, a, b, c, d)
    return struct.pack("<8I", *state[0:4], *state[12:16])


def test_hchacha20_matches_the_xchacha_draft_vector() -> None:
    assert hchacha20(HCHACHA20_KEY, HCHACHA20_NONCE) == HCHACHA20_OUTPUT


def test_reference_hchacha20_matches_the_xchacha_draft_vector() -> None:
    assert _reference_hchacha20(HCHACHA20_KEY, HCHACHA20_NONCE) == HCHACHA20_OUTPUT


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=16, max_size=16))
def test_hchacha20_keystream_trick_equals_the_rounds(key: bytes, nonce: bytes) -> None:
    assert hchacha20(key, nonce) == _reference_hchacha20(key, nonce)


@given(st.binary(max_size=100), st.binary(max_size=200))
def test_prepared_hmac_equals_stdlib_hmac(key: bytes, message: bytes) -> None:
    prf = HmacSha256(key)
    assert prf.digest(message) == hmac.digest(key, message, "sha256")
    assert prf.digest(message) == prf.digest(message)  # the prepared state is not consumed


def test_prepared_hmac_repr_hides_the_key() -> None:
    assert "ab" * 8 not in repr(HmacSha256(bytes.fromhex("ab" * 32)))


@pytest.mark.parametrize(
    ("name", "cipher"),
    [
        ("AES256", Cipher.AES256),
        ("AES256-GCM_SHA256", Cipher.AES256),
        ("ChaCha20", Cipher.CHACHA20),
        ("XCHACHA20-POLY1305", Cipher.CHACHA20),
    ],
)
def test_parse_cipher_accepts_every_name_kes_wrote(name: str, cipher: Cipher) -> None:
    assert parse_cipher(name) is cipher


@pytest.mark.parametrize("name", ["", "aes256", "AES-256-GCM-HMAC-SHA-256", "CHACHA20", "AES128"])
def test_parse_cipher_rejects_other_names(name: str) -> None:
    with pytest.raises(ValueError, match="unsupported cipher"):
        parse_cipher(name)


def test_cipher_wire_values_and_describe_names() -> None:
    assert (int(Cipher.AES256), int(Cipher.CHACHA20)) == (1, 2)
    assert (Cipher.AES256.kes_name, Cipher.CHACHA20.kes_name) == ("AES256", "ChaCha20")


def test_package_exports_exactly_its_public_api() -> None:
    public = {name for name in vars(aiokes.crypto) if not name.startswith("_")}
    modules = {"cipher", "ciphertext", "record", "secret_key", "annotations"}
    assert set(aiokes.crypto.__all__) == public - modules
    assert aiokes.crypto.__all__ == sorted(aiokes.crypto.__all__)
