"""Test vectors. Data only, each table citing where it comes from.

``KES_HEAD`` = minio/kes:internal/crypto/key_test.go@63649d0 (2025-05),
``KES_V0_22_3`` = minio/kes:internal/key/key_test.go@v0.22.3,
``KES_V0_14`` = minio/kes:internal/secret/secret_test.go@v0.14.0.
Vectors marked "built" are assembled here from the byte layouts of the spec (§5.4, §5.7).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from aiokes.crypto import Cipher


def b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


ZERO_KEY = bytes(32)
ZERO_KEY_ID = "66687aadf862bd776c8fc18b8e9f8e20"  # spec §5.8: key_id(all-zero key)
SECOND_KEY = b64("dDHbTWgo+Yh3u804SYB5OyVMy6RiLeJYBQth1f6KlEU=")  # KES_HEAD encrypt/decrypt tests
SECOND_PLAINTEXT = b64("CLcJoykFCWZDkEIiUq9bJRqwCwW9ZDvdgu8EMA==")
SECOND_CONTEXT = bytes(16)

# draft-irtf-cfrg-xchacha-03 §2.2.1, HChaCha20 test vector.
HCHACHA20_KEY = bytes(range(32))
HCHACHA20_NONCE = bytes.fromhex("000000090000004a0000000031415927")
HCHACHA20_OUTPUT = bytes.fromhex("82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc")


@dataclass(frozen=True)
class DecryptVector:
    name: str
    cipher: Cipher  # the key's type
    key: bytes
    ciphertext: bytes
    plaintext: bytes
    context: bytes = b""


JSON_AES = (
    b'{"aead":"AES-256-GCM-HMAC-SHA-256","iv":"xLxIN3tSCkg2xMafuvwUwg==",'
    b'"nonce":"gu0mGwUkwcvMEoi5","bytes":"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc="}'
)
JSON_CHACHA = (
    b'{"aead":"ChaCha20Poly1305","iv":"s3fSZ6vk5m+DfQA8yZWeUg==",'
    b'"nonce":"8/kHMnCMs3h9NZ2a","bytes":"cw22HjLq/4cx8507SW4hhSrYbDiMuRao4b5+GE+XfbE="}'
)
JSON_CHACHA_WITH_ID = (
    b'{"aead":"ChaCha20Poly1305","id":"66687aadf862bd776c8fc18b8e9f8e20",'
    b'"iv":"EC0eZp7Pqt+LnkOae5xaAg==","nonce":"X1ejXKmH/ugFZPkk",'
    b'"bytes":"wIGBTDs6aOvsqJfekZ0PYRT/OHyFX2TXqeNwl1SLXOI="}'
)
MSGPACK_AES = b64(
    "lbFBRVMyNTYtR0NNX1NIQTI1NtkgNjY2ODdhYWRmODYyYmQ3NzZjOGZjMThiOGU5ZjhlMjDEEExv7LAd4oz0SaHZrX5L"
    "BufEDEKME1ow1CDfUFrqv8QgJuy7Sw+jVqz99TK1HV851LT3K4mwwDv46TB2ngWkAJQ="
)
MSGPACK_CHACHA = b64(
    "lbJYQ0hBQ0hBMjAtUE9MWTEzMDXZIDY2Njg3YWFkZjg2MmJkNzc2YzhmYzE4YjhlOWY4ZTIwxBBAr+aptD4x2+qfOhiE"
    "rbnkxAxYs8RmNC1JJXD1hiHEIJ2KqM0jjkME7ndx8nyVseesN83Np0rM5ejVUun+fNFu"
)
RAW_AES = b64("zwdDgHeRlIFRnJ7+DIhs/ka7GFK2CFSfDELqg1VCyTQzZ58o7MAdupMLk3ZjlMo2ZUDwldL2o41nAWDc")
RAW_AES_CONTEXT = b64(
    "s2gmfQHeGdlyL8x1yEWSACUV3GrSoz3t160hugMgzKWgyqesXDVUJ5Dw5Mt076rR1PNiU9X4YjLH14D8a81t2r2xsz4gVZac"
)
RAW_CHACHA_CONTEXT = b64(
    "gO4woRIswAJdjUjW7z2ApsSQxJlwB24yjLrmH4eI7sB0uh5nfEJfk9ybTPFft5FRFaZCVBmzhx7OJs9n0WWtxH3sySIxecIK"
)

# KES_HEAD secretKeyDecryptTests 0-7 (the same JSON/msgpack data is in KES_V0_22_3 keyUnwrapTests).
KES_DECRYPT_VECTORS = [
    DecryptVector("json-aes", Cipher.AES256, ZERO_KEY, JSON_AES, bytes(16)),
    DecryptVector("json-chacha", Cipher.CHACHA20, ZERO_KEY, JSON_CHACHA, bytes(16)),
    DecryptVector("json-chacha-id", Cipher.CHACHA20, ZERO_KEY, JSON_CHACHA_WITH_ID, bytes(16)),
    DecryptVector("msgpack-aes", Cipher.AES256, ZERO_KEY, MSGPACK_AES, bytes(16)),
    DecryptVector("msgpack-chacha", Cipher.CHACHA20, ZERO_KEY, MSGPACK_CHACHA, bytes(16)),
    DecryptVector("raw-aes", Cipher.AES256, ZERO_KEY, RAW_AES, bytes(16)),
    DecryptVector(
        "raw-aes-context",
        Cipher.AES256,
        SECOND_KEY,
        RAW_AES_CONTEXT,
        SECOND_PLAINTEXT,
        SECOND_CONTEXT,
    ),
    DecryptVector(
        "raw-chacha-context",
        Cipher.CHACHA20,
        SECOND_KEY,
        RAW_CHACHA_CONTEXT,
        SECOND_PLAINTEXT,
        SECOND_CONTEXT,
    ),
]

# KES_HEAD secretKeyDecryptTests 8-14 (and KES_V0_22_3 keyUnwrapTests 5-11): all must fail.
KES_DECRYPT_FAILURES = {
    "unknown-aead": (
        Cipher.AES256,
        b'{"aead":"AES-256-GCM","iv":"xLxIN3tSCkg2xMafuvwUwg==","nonce":"gu0mGwUkwcvMEoi5",'
        b'"bytes":"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc="}',
    ),
    "iv-20-bytes": (
        Cipher.AES256,
        b'{"aead":"AES-256-GCM-HMAC-SHA-256","iv":"EjOY4JKqjIrPmQ5z1KSR8zlhggY=",'
        b'"nonce":"gu0mGwUkwcvMEoi5","bytes":"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc="}',
    ),
    "nonce-8-bytes-chacha": (
        Cipher.CHACHA20,
        b'{"aead":"ChaCha20Poly1305","iv":"s3fSZ6vk5m+DfQA8yZWeUg==","nonce":"SXAbms731/c=",'
        b'"bytes":"cw22HjLq/4cx8507SW4hhSrYbDiMuRao4b5+GE+XfbE="}',
    ),
    "nonce-8-bytes-aes": (
        Cipher.AES256,
        b'{"aead":"AES-256-GCM-HMAC-SHA-256","iv":"xLxIN3tSCkg2xMafuvwUwg==","nonce":"efY+4kYF9n8=",'
        b'"bytes":"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc="}',
    ),
    "not-authentic-aes": (
        Cipher.AES256,
        b'{"aead":"AES-256-GCM-HMAC-SHA-256","iv":"xLxIN3tSCkg2xMafuvwUwg==",'
        b'"nonce":"gu0mGwUkwcvMEoi5","bytes":"QTza1g5oX3f9cGJMbY1xJwWPj1F7R2VnNl6XpFKYQy0="}',
    ),
    "not-authentic-chacha": (
        Cipher.CHACHA20,
        b'{"aead":"ChaCha20Poly1305","iv":"s3fSZ6vk5m+DfQA8yZWeUg==","nonce":"8/kHMnCMs3h9NZ2a",'
        b'"bytes":"TTi8pkO+Jh1JWAHvPxZeUk/iVoBPUCE4ZSVGBy3fW2s="}',
    ),
    "invalid-json": (
        Cipher.AES256,
        b'{"aead":"AES-256-GCM-HMAC-SHA-256" "iv":"xLxIN3tSCkg2xMafuvwUwg==",'
        b'"nonce":"gu0mGwUkwcvMEoi5","bytes":"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc="}',
    ),
}

# KES_V0_22_3 keyUnwrapTests 12: v0.22 rejected the mismatching id, KES HEAD ignores it (and so
# does aiokes, spec §5.3); with the all-zero AES key it opens to 16 zero bytes.
JSON_AES_FOREIGN_ID = (
    b'{"aead":"AES-256-GCM-HMAC-SHA-256", "id":"00010203040506070809101112131415", '
    b'"iv":"xLxIN3tSCkg2xMafuvwUwg==","nonce":"gu0mGwUkwcvMEoi5",'
    b'"bytes":"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc="}'
)

# docs/operator-tutorial.md §5: a `kes key encrypt` answer from a JSON-era server (key unknown).
TUTORIAL_CIPHERTEXT = b64(
    "eyJhZWFkIjoiQUVTLTI1Ni1HQ00tSE1BQy1TSEEtMjU2IiwiaWQiOiIxMTc1ZjJjNDMyMjNjNjNmNjY1MDk5ZDExNmU3"
    "Yzc4NCIsIml2IjoiVHBtbHpWTDh5a2t4VVREV1RSTU5Tdz09Iiwibm9uY2UiOiJkeGl0R3A3bFB6S21rTE5HIiwiYnl0"
    "ZXMiOiJaaWdobEZrTUFuVVBWSG0wZDhSYUNBY3pnRWRsQzJqWFhCK1YxaWl2MXdnYjhBRytuTWx0Y3BGK0RtV1VoNkZa"
    "In0="
)

# KES_HEAD parseKeyVersionTests 5: an E5 protobuf record.
PROTOBUF_RECORD = (
    b"CiQKIMiHG7XrN94FuwblJJor4f7f6rbqAl7DwsLaiIoyz0D2EAESJAognLXl4yqa4cjZTcSbsU6sNnN8kP9ARWkXwa20"
    b"YQZa9HgQARoMCNithK0GEID67qYDIkAzZWNmY2RmMzhmY2JlMTQxYWUyNmExMDMwZjgxZTk2Yjc1MzM2NWE0Njc2MGFl"
    b"NmI1Nzg2OThhOTdjNTlmZDIy"
)
PROTOBUF_RECORD_KEY = b64("yIcbtes33gW7BuUkmivh/t/qtuoCXsPCwtqIijLPQPY=")
PROTOBUF_RECORD_HMAC_KEY = b64("nLXl4yqa4cjZTcSbsU6sNnN8kP9ARWkXwa20YQZa9Hg=")
PROTOBUF_RECORD_CREATED_AT = "2024-01-12T11:39:20.886816+01:00"
IDENTITY_1 = "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22"
IDENTITY_2 = "40235905b7b83e0537a002db523cd019d6709b899adc249c957860cd00fa9f78"
IDENTITY_3 = "189d9de5331e3ee8abe9e4bd40d474ad621d79ccf83a711f6ac68050eb15a52a"

KEY_J8 = bytes.fromhex("27caa63b2115d9c7b6ca8002fb9b7463b0923ff853329a4bed71e9027c9cfb41")
KEY_9E = bytes.fromhex("f5ec3a04269edfed77b2788e530b6d109eb66a683df185dcd0e5b458184d8826")


@dataclass(frozen=True)
class RecordVector:
    name: str
    record: bytes
    cipher: Cipher
    key: bytes
    created_at: str | None  # RFC 3339 as KES's describe would show it; None: no time
    created_by: str = ""


JSON_RECORD_VECTORS = [
    # E1 (<= v0.18): KES_V0_14 and KES_HEAD parseKeyVersionTests 0-2.
    RecordVector(
        "e1-zero",
        b'{"bytes":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}',
        Cipher.AES256,
        ZERO_KEY,
        None,
    ),
    RecordVector(
        "e1-one",
        b'{"bytes":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE="}',
        Cipher.AES256,
        bytes(31) + b"\x01",
        None,
    ),
    RecordVector(
        "e1-random",
        b'{"bytes":"J8qmOyEV2ce2yoAC+5t0Y7CSP/hTMppL7XHpAnyc+0E="}',
        Cipher.AES256,
        KEY_J8,
        None,
    ),
    # v0.19-v0.22.2: KES_V0_22_3 parseTests 3-4 = KES_HEAD parseKeyVersionTests 3-4.
    RecordVector(
        "v0.19-aes",
        b'{"bytes":"J8qmOyEV2ce2yoAC+5t0Y7CSP/hTMppL7XHpAnyc+0E=","algorithm":"AES256-GCM_SHA256",'
        b'"created_at":"2009-11-10T23:00:00Z","created_by":"' + IDENTITY_2.encode() + b'"}',
        Cipher.AES256,
        KEY_J8,
        "2009-11-10T23:00:00Z",
        IDENTITY_2,
    ),
    RecordVector(
        "v0.19-chacha",
        b'{"bytes":"9ew6BCae3+13sniOUwttEJ62amg98YXc0OW0WBhNiCY=","algorithm":"XCHACHA20-POLY1305",'
        b'"created_at":"2009-11-10T23:00:00Z","created_by":"' + IDENTITY_3.encode() + b'"}',
        Cipher.CHACHA20,
        KEY_9E,
        "2009-11-10T23:00:00Z",
        IDENTITY_3,
    ),
    # built: v0.22.3-2023-10-02 (version field, Go field order, nanosecond time).
    RecordVector(
        "v0.22.3-chacha",
        b'{"version":"v1","bytes":"9ew6BCae3+13sniOUwttEJ62amg98YXc0OW0WBhNiCY=",'
        b'"algorithm":"XCHACHA20-POLY1305","created_at":"2023-01-05T10:20:30.123456789Z",'
        b'"created_by":"' + IDENTITY_3.encode() + b'"}',
        Cipher.CHACHA20,
        KEY_9E,
        "2023-01-05T10:20:30.123456789Z",
        IDENTITY_3,
    ),
    # built: imported key of that era: Go writes the zero time, omits the empty created_by.
    RecordVector(
        "v0.22.3-imported",
        b'{"version":"v1","bytes":"J8qmOyEV2ce2yoAC+5t0Y7CSP/hTMppL7XHpAnyc+0E=",'
        b'"algorithm":"AES256-GCM_SHA256","created_at":"0001-01-01T00:00:00Z"}',
        Cipher.AES256,
        KEY_J8,
        None,
    ),
    # built: 2023-10-03-2024-01-11 (kes-go v0.2 enum): AES256 has its algorithm omitted ...
    RecordVector(
        "kes-go-v0.2-aes",
        b'{"version":"v1","bytes":"J8qmOyEV2ce2yoAC+5t0Y7CSP/hTMppL7XHpAnyc+0E=",'
        b'"created_at":"2023-11-10T10:44:28.5Z","created_by":"' + IDENTITY_1.encode() + b'"}',
        Cipher.AES256,
        KEY_J8,
        "2023-11-10T10:44:28.5Z",
        IDENTITY_1,
    ),
    # ... and ChaCha20 is spelled the short way.
    RecordVector(
        "kes-go-v0.2-chacha",
        b'{"version":"v1","bytes":"9ew6BCae3+13sniOUwttEJ62amg98YXc0OW0WBhNiCY=",'
        b'"algorithm":"ChaCha20","created_at":"2024-01-11T08:00:00.000000001Z",'
        b'"created_by":"' + IDENTITY_1.encode() + b'"}',
        Cipher.CHACHA20,
        KEY_9E,
        "2024-01-11T08:00:00.000000001Z",
        IDENTITY_1,
    ),
]

# KES_V0_14, KES_V0_22_3 and KES_HEAD: malformed JSON records.
KES_INVALID_JSON_RECORDS = [
    b'"bytes":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}',
    b'{bytes":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}',
    b'{"bytes""AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}',
    b'"bytes":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="',
]
