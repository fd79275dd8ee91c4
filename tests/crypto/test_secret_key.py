"""SecretKey seals in KES's raw format and opens every KES ciphertext; failures are DecryptError."""

from __future__ import annotations

import hmac

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from hypothesis import given, settings
from hypothesis import strategies as st

from aiokes.crypto import Cipher, SecretKey, key_id, new_data_key
from aiokes.errors import DecryptError

from .test_primitives import _reference_hchacha20
from .vectors import (
    KES_DECRYPT_FAILURES,
    KES_DECRYPT_VECTORS,
    RAW_AES,
    SECOND_CONTEXT,
    SECOND_KEY,
    SECOND_PLAINTEXT,
    ZERO_KEY,
    ZERO_KEY_ID,
    DecryptVector,
)

BOTH = pytest.mark.parametrize("cipher", list(Cipher), ids=lambda c: c.kes_name)


def _open_independently(cipher: Cipher, key: bytes, ciphertext: bytes, context: bytes) -> bytes:
    """Spec §5.2 spelled out with nothing from aiokes but the split points."""
    sealed, iv, nonce = ciphertext[:-28], ciphertext[-28:-12], ciphertext[-12:]
    if cipher is Cipher.AES256:
        return AESGCM(hmac.digest(key, iv, "sha256")).decrypt(nonce, sealed, context)
    return ChaCha20Poly1305(_reference_hchacha20(key, iv)).decrypt(nonce, sealed, context)


@pytest.mark.parametrize("vector", KES_DECRYPT_VECTORS, ids=lambda v: v.name)
def test_decrypts_kes_known_answer_vectors(vector: DecryptVector) -> None:
    key = SecretKey(vector.cipher, vector.key)
    assert key.decrypt(vector.ciphertext, vector.context) == vector.plaintext


@pytest.mark.parametrize("name", sorted(KES_DECRYPT_FAILURES))
def test_rejects_kes_invalid_ciphertext_vectors(name: str) -> None:
    cipher, ciphertext = KES_DECRYPT_FAILURES[name]
    with pytest.raises(DecryptError):
        SecretKey(cipher, ZERO_KEY).decrypt(ciphertext)


@pytest.mark.parametrize(
    ("cipher", "key", "plaintext", "context"),
    [  # KES_HEAD secretKeyEncryptTests 0-3
        (Cipher.AES256, ZERO_KEY, bytes(16), b""),
        (Cipher.AES256, SECOND_KEY, bytes(16), b""),
        (Cipher.AES256, SECOND_KEY, SECOND_PLAINTEXT, SECOND_CONTEXT),
        (Cipher.CHACHA20, SECOND_KEY, SECOND_PLAINTEXT, SECOND_CONTEXT),
    ],
)
def test_kes_encrypt_vectors_round_trip(
    cipher: Cipher, key: bytes, plaintext: bytes, context: bytes
) -> None:
    secret = SecretKey(cipher, key)
    ciphertext = secret.encrypt(plaintext, context)
    assert secret.decrypt(ciphertext, context) == plaintext
    assert _open_independently(cipher, key, ciphertext, context) == plaintext


@BOTH
def test_encrypt_writes_sealed_iv_nonce_per_spec(cipher: Cipher) -> None:
    key = SecretKey(cipher, SECOND_KEY)
    ciphertext = key.encrypt(SECOND_PLAINTEXT, SECOND_CONTEXT)
    assert len(ciphertext) == len(SECOND_PLAINTEXT) + 16 + 28
    assert _open_independently(cipher, SECOND_KEY, ciphertext, SECOND_CONTEXT) == SECOND_PLAINTEXT


@BOTH
def test_sealing_a_dek_gives_76_bytes(cipher: Cipher) -> None:
    assert len(SecretKey(cipher, new_data_key()).encrypt(new_data_key(), b"{}")) == 76


@BOTH
def test_encryption_is_randomised(cipher: Cipher) -> None:
    key = SecretKey(cipher, ZERO_KEY)
    first, second = key.encrypt(b"same"), key.encrypt(b"same")
    assert first != second
    assert first[-28:] != second[-28:]


@BOTH
@settings(max_examples=50)
@given(
    plaintext=st.binary(max_size=300),
    context=st.binary(max_size=64),
    key=st.binary(min_size=32, max_size=32),
)
def test_round_trip(cipher: Cipher, plaintext: bytes, context: bytes, key: bytes) -> None:
    secret = SecretKey(cipher, key)
    assert secret.decrypt(secret.encrypt(plaintext, context), context) == plaintext


@BOTH
def test_empty_plaintext_round_trips(cipher: Cipher) -> None:
    key = SecretKey(cipher, ZERO_KEY)
    assert key.decrypt(key.encrypt(b"")) == b""


@BOTH
def test_wrong_context_fails(cipher: Cipher) -> None:
    key = SecretKey(cipher, SECOND_KEY)
    ciphertext = key.encrypt(b"dek", b'{"bucket":"bucket/object"}')
    for context in (b"", b'{"bucket":"bucket/other"}', b"{}"):
        with pytest.raises(DecryptError):
            key.decrypt(ciphertext, context)


@BOTH
def test_missing_and_empty_context_are_the_same(cipher: Cipher) -> None:
    key = SecretKey(cipher, SECOND_KEY)
    assert key.decrypt(key.encrypt(b"dek"), b"") == b"dek"
    assert key.decrypt(key.encrypt(b"dek", b"")) == b"dek"


@BOTH
def test_other_key_fails(cipher: Cipher) -> None:
    ciphertext = SecretKey(cipher, ZERO_KEY).encrypt(b"dek")
    with pytest.raises(DecryptError):
        SecretKey(cipher, SECOND_KEY).decrypt(ciphertext)


def test_raw_ciphertext_opens_with_the_keys_own_cipher_only() -> None:
    assert SecretKey(Cipher.AES256, ZERO_KEY).decrypt(RAW_AES) == bytes(16)
    with pytest.raises(DecryptError):
        SecretKey(Cipher.CHACHA20, ZERO_KEY).decrypt(RAW_AES)


@BOTH
@pytest.mark.parametrize(
    ("region", "offsets"),
    [
        ("sealed", range(0, 32)),
        ("tag", range(32, 48)),
        ("iv", range(48, 64)),
        ("nonce", range(64, 76)),
    ],
)
def test_every_flipped_byte_is_detected(cipher: Cipher, region: str, offsets: range) -> None:
    key = SecretKey(cipher, SECOND_KEY)
    ciphertext = key.encrypt(bytes(32), b"ctx")
    for offset in offsets:
        tampered = bytearray(ciphertext)
        tampered[offset] ^= 0x01
        with pytest.raises(DecryptError):
            key.decrypt(bytes(tampered), b"ctx")


@BOTH
def test_truncated_ciphertexts_fail(cipher: Cipher) -> None:
    key = SecretKey(cipher, SECOND_KEY)
    ciphertext = key.encrypt(bytes(32))
    for size in range(len(ciphertext)):
        with pytest.raises(DecryptError):
            key.decrypt(ciphertext[:size])
    with pytest.raises(DecryptError):
        key.decrypt(ciphertext + b"\x00")


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\x95", b"{", b"{}", b"null", b"x" * 28, b"x" * 29, b"\x95" * 100, b"{" + b" " * 100],
)
def test_garbage_fails_with_decrypt_error(garbage: bytes) -> None:
    with pytest.raises(DecryptError) as caught:
        SecretKey(Cipher.AES256, ZERO_KEY).decrypt(garbage)
    assert (caught.value.status, caught.value.message) == (
        400,
        "decryption failed: ciphertext is not authentic",
    )


def test_deeply_nested_json_is_a_decrypt_error_not_a_crash() -> None:
    with pytest.raises(DecryptError):
        SecretKey(Cipher.AES256, ZERO_KEY).decrypt(b'{"a":' + b"[" * 100_000)


@pytest.mark.parametrize("first", [0x95, 0x7B])
def test_raw_ciphertext_starting_like_msgpack_or_json_still_opens(first: int) -> None:
    key = SecretKey(Cipher.AES256, SECOND_KEY)
    # About one ciphertext in 256 starts with a given byte; 20 000 tries miss with p < 1e-34.
    for _ in range(20_000):
        ciphertext = key.encrypt(b"dek")
        if ciphertext[0] == first:
            break
    assert ciphertext[0] == first
    assert key.decrypt(ciphertext) == b"dek"


def test_repr_never_shows_key_bytes() -> None:
    key = SecretKey(Cipher.AES256, bytes.fromhex("ab" * 32))
    assert "ab" not in repr(key).replace("AES256", "")
    assert repr(key) == "SecretKey(cipher=<Cipher.AES256: 1>)"


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_key_must_be_32_bytes(size: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        SecretKey(Cipher.AES256, bytes(size))


def test_key_type_is_checked() -> None:
    with pytest.raises(TypeError):
        SecretKey(1, ZERO_KEY)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        SecretKey(Cipher.AES256, bytearray(32))  # type: ignore[arg-type]


def test_equality_compares_cipher_and_key() -> None:
    assert SecretKey(Cipher.AES256, ZERO_KEY) == SecretKey(Cipher.AES256, bytes(32))
    assert SecretKey(Cipher.AES256, ZERO_KEY) != SecretKey(Cipher.CHACHA20, ZERO_KEY)
    assert SecretKey(Cipher.AES256, ZERO_KEY) != SecretKey(Cipher.AES256, SECOND_KEY)
    assert len({SecretKey(Cipher.AES256, ZERO_KEY), SecretKey(Cipher.AES256, ZERO_KEY)}) == 1


def test_key_id_of_the_all_zero_key() -> None:
    assert key_id(ZERO_KEY) == ZERO_KEY_ID


def test_new_data_keys_are_32_fresh_bytes() -> None:
    keys = {new_data_key() for _ in range(100)}
    assert len(keys) == 100
    assert {len(key) for key in keys} == {32}


@BOTH
def test_sealed_new_data_key_opens_to_the_key_it_came_with(cipher: Cipher) -> None:
    key = SecretKey(cipher, SECOND_KEY)
    plaintext, ciphertext = key.seal_new_data_key(b"ctx")
    assert len(plaintext) == 32
    assert len(ciphertext) == 76
    assert _open_independently(cipher, SECOND_KEY, ciphertext, b"ctx") == plaintext
    with pytest.raises(DecryptError):
        key.decrypt(ciphertext, b"other context")


@BOTH
def test_sealed_new_data_keys_share_no_randomness(cipher: Cipher) -> None:
    # One CSPRNG read feeds key, iv and nonce: none of them may repeat, or show up in another.
    key = SecretKey(cipher, ZERO_KEY)
    first, sealed_first = key.seal_new_data_key()
    second, sealed_second = key.seal_new_data_key()
    assert first != second
    assert sealed_first[-28:] != sealed_second[-28:]
    assert first not in sealed_first
