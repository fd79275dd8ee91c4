"""Key records of every KES era load; aiokes writes KES's current protobuf record (spec §5.7)."""

from __future__ import annotations

import base64
import hmac
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiokes.crypto import (
    Cipher,
    KeyVersion,
    SecretKey,
    encode_key_version,
    generate_key_version,
    parse_key_version,
)
from aiokes.errors import HMACNotSupported, InvalidKeyRecord

from .vectors import (
    IDENTITY_1,
    JSON_RECORD_VECTORS,
    KES_INVALID_JSON_RECORDS,
    PROTOBUF_RECORD,
    PROTOBUF_RECORD_CREATED_AT,
    PROTOBUF_RECORD_HMAC_KEY,
    PROTOBUF_RECORD_KEY,
    ZERO_KEY,
    RecordVector,
)

KEY = bytes(range(32))
HMAC_KEY = bytes(range(32, 64))


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = b""
    while value >= 0x80:
        out += bytes([value & 0x7F | 0x80])
        value >>= 7
    return out + bytes([value])


def _len(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _int(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _record(
    key: bytes = _len(1, KEY) + _int(2, 1),
    hmac_key: bytes | None = _len(1, HMAC_KEY) + _int(2, 1),
    timestamp: bytes = _int(1, 1_700_000_000) + _int(2, 5),
    extra: bytes = b"",
) -> bytes:
    message = _len(1, key) + (b"" if hmac_key is None else _len(2, hmac_key))
    return base64.b64encode(message + _len(3, timestamp) + extra)


def _version(**changes: object) -> KeyVersion:
    fields: dict[str, object] = {
        "key": SecretKey(Cipher.AES256, KEY),
        "hmac_key": HMAC_KEY,
        "created_at": datetime(2024, 2, 29, 8, 12, 28, 123456, tzinfo=UTC),
        "created_by": IDENTITY_1,
        "created_at_nanos": 789,
    }
    fields.update(changes)
    return KeyVersion(**fields)  # type: ignore[arg-type]


# --- the KES protobuf record ---------------------------------------------------------------


def test_kes_protobuf_record_parses() -> None:
    version = parse_key_version(PROTOBUF_RECORD)
    assert version.key == SecretKey(Cipher.AES256, PROTOBUF_RECORD_KEY)
    assert version.hmac_key == PROTOBUF_RECORD_HMAC_KEY
    assert version.created_at == datetime.fromisoformat(PROTOBUF_RECORD_CREATED_AT)
    assert version.created_at_rfc3339() == "2024-01-12T10:39:20.886816Z"
    assert version.created_by == "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22"


def test_kes_protobuf_record_re_encodes_to_the_same_bytes() -> None:
    assert encode_key_version(parse_key_version(PROTOBUF_RECORD)) == PROTOBUF_RECORD


def test_encoding_follows_the_documented_byte_layout() -> None:
    raw = base64.b64decode(encode_key_version(_version()), validate=True)
    timestamp = b"\x08" + _varint(1709194348) + b"\x10" + _varint(123456789)
    assert raw == (
        b"\x0a\x24\x0a\x20" + KEY + b"\x10\x01"
        b"\x12\x24\x0a\x20" + HMAC_KEY + b"\x10\x01"
        b"\x1a" + bytes([len(timestamp)]) + timestamp + b"\x22\x40" + IDENTITY_1.encode()
    )


def test_encoding_omits_empty_created_by_and_zero_nanos() -> None:
    version = _version(
        created_by="", created_at=datetime(2024, 1, 1, tzinfo=UTC), created_at_nanos=0
    )
    raw = base64.b64decode(encode_key_version(version))
    assert raw.endswith(b"\x1a\x06\x08" + _varint(1704067200))
    assert parse_key_version(encode_key_version(version)) == version


def test_chacha_key_round_trips_with_type_2() -> None:
    version = _version(key=SecretKey(Cipher.CHACHA20, KEY))
    assert base64.b64decode(encode_key_version(version))[36:38] == b"\x10\x02"
    assert parse_key_version(encode_key_version(version)).key.cipher is Cipher.CHACHA20


def test_kes_encode_vector_with_zero_keys_round_trips() -> None:
    # KES_HEAD encodeSecretKeyVersionTests 0
    version = KeyVersion(
        SecretKey(Cipher.AES256, ZERO_KEY),
        bytes(32),
        datetime.fromisoformat("2024-01-12T11:39:20.886816+01:00"),
        "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22",
    )
    assert parse_key_version(encode_key_version(version)) == version


def test_a_version_without_hmac_key_cannot_be_encoded() -> None:
    # KES_HEAD encodeSecretKeyVersionTests 1
    with pytest.raises(ValueError, match="HMAC"):
        encode_key_version(_version(hmac_key=None))


_created_at = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)


@given(
    cipher=st.sampled_from(list(Cipher)),
    key=st.binary(min_size=32, max_size=32),
    hmac_key=st.binary(min_size=32, max_size=32),
    created_at=_created_at,
    nanos=st.integers(0, 999),
    created_by=st.text(),
)
def test_records_round_trip(
    cipher: Cipher, key: bytes, hmac_key: bytes, created_at: datetime, nanos: int, created_by: str
) -> None:
    version = KeyVersion(SecretKey(cipher, key), hmac_key, created_at, created_by, nanos)
    parsed = parse_key_version(encode_key_version(version))
    assert parsed == version
    assert (parsed.created_at, parsed.created_at_nanos) == (created_at, nanos)
    assert parsed.created_at_rfc3339() == version.created_at_rfc3339()


# --- Go protobuf decoding rules ------------------------------------------------------------


def test_protobuf_fields_in_any_order_and_unknown_fields_are_accepted() -> None:
    raw = base64.b64decode(_record(extra=_len(4, b"me") + _int(9, 7) + _len(15, b"x")))
    fields = [raw[:38], raw[38:76], raw[76:]]  # key, HMAC key, the rest
    record = base64.b64encode(fields[2] + fields[1] + fields[0])
    version = parse_key_version(record)
    assert (version.key.key, version.hmac_key, version.created_by) == (KEY, HMAC_KEY, "me")


def test_protobuf_record_without_created_by_has_empty_creator() -> None:
    version = parse_key_version(_record())
    assert version.created_by == ""
    assert version.created_at_rfc3339() == "2023-11-14T22:13:20.000000005Z"


def test_protobuf_record_without_timestamp_dates_from_the_unix_epoch_as_in_kes() -> None:
    record = base64.b64encode(
        _len(1, _len(1, KEY) + _int(2, 1)) + _len(2, _len(1, HMAC_KEY) + _int(2, 1))
    )
    assert parse_key_version(record).created_at == datetime(1970, 1, 1, tzinfo=UTC)


def test_base64_line_breaks_are_ignored_like_go() -> None:
    record = PROTOBUF_RECORD[:40] + b"\r\n" + PROTOBUF_RECORD[40:] + b"\n"
    assert parse_key_version(record) == parse_key_version(PROTOBUF_RECORD)


# --- JSON records ---------------------------------------------------------------------------


@pytest.mark.parametrize("vector", JSON_RECORD_VECTORS, ids=lambda v: v.name)
def test_json_records_of_every_era_parse(vector: RecordVector) -> None:
    version = parse_key_version(vector.record)
    assert version.key == SecretKey(vector.cipher, vector.key)
    assert version.hmac_key is None
    assert version.created_by == vector.created_by
    if vector.created_at is None:
        assert version.created_at is None
        assert version.created_at_rfc3339() == "0001-01-01T00:00:00Z"
    else:
        assert version.created_at_rfc3339() == vector.created_at


def test_json_records_do_not_support_hmac() -> None:
    version = parse_key_version(JSON_RECORD_VECTORS[0].record)
    with pytest.raises(HMACNotSupported):
        version.hmac(b"message")


@pytest.mark.parametrize(
    ("record", "created_at"),
    [
        (b'{"bytes":"$K","created_at":"2009-11-10T23:00:00+01:30"}', "2009-11-10T21:30:00Z"),
        (b'{"bytes":"$K","created_at":"2009-11-10T23:00:00-00:00"}', "2009-11-10T23:00:00Z"),
        (
            b'{"bytes":"$K","created_at":"2009-11-10T23:00:00.1234567891Z"}',
            "2009-11-10T23:00:00.123456789Z",
        ),
        (b'{"bytes":"$K","created_at":"2009-11-10T23:00:00.100Z"}', "2009-11-10T23:00:00.1Z"),
        (b'{"bytes":"$K","created_at":null,"created_by":null}', "0001-01-01T00:00:00Z"),
        (b'{"BYTES":"$K","Created_At":"2009-11-10T23:00:00Z"}', "2009-11-10T23:00:00Z"),
        (b' \n{"bytes":"$K","version":{"any":"thing"}}\n ', "0001-01-01T00:00:00Z"),
    ],
)
def test_json_record_times_and_fields_follow_go(record: bytes, created_at: str) -> None:
    key = base64.b64encode(KEY)
    version = parse_key_version(record.replace(b"$K", key))
    assert version.key.key == KEY
    assert version.created_at_rfc3339() == created_at


@pytest.mark.parametrize("algorithm", [b'""', b"null"])
def test_json_record_with_empty_algorithm_is_aes256(algorithm: bytes) -> None:
    record = b'{"bytes":"' + base64.b64encode(KEY) + b'","algorithm":' + algorithm + b"}"
    assert parse_key_version(record).key == SecretKey(Cipher.AES256, KEY)


def test_json_record_base64_accepts_nonzero_trailing_bits_like_go() -> None:
    canonical = base64.b64encode(ZERO_KEY)  # ends "AAA="; Go's decoder ignores the spare bits
    version = parse_key_version(b'{"bytes":"' + canonical[:-2] + b'B="}')
    assert version.key.key == ZERO_KEY


# --- invalid records ------------------------------------------------------------------------

_K = base64.b64encode(KEY).decode()
INVALID_JSON_RECORDS = {
    "key-31-bytes": '{"bytes":"' + base64.b64encode(KEY[:31]).decode() + '"}',
    "key-missing": '{"algorithm":"AES256"}',
    "key-null": '{"bytes":null}',
    "key-unpadded": '{"bytes":"' + _K.rstrip("=") + '"}',
    "key-not-string": '{"bytes":[1,2,3]}',
    "unknown-algorithm": '{"bytes":"' + _K + '","algorithm":"AES128"}',
    "algorithm-number": '{"bytes":"' + _K + '","algorithm":1}',
    "created-by-number": '{"bytes":"' + _K + '","created_by":1}',
    "time-lowercase-t": '{"bytes":"' + _K + '","created_at":"2009-11-10t23:00:00Z"}',
    "time-leap-second": '{"bytes":"' + _K + '","created_at":"2009-12-31T23:59:60Z"}',
    "time-hour-24": '{"bytes":"' + _K + '","created_at":"2009-11-10T24:00:00Z"}',
    "time-offset-24h": '{"bytes":"' + _K + '","created_at":"2009-11-10T23:00:00+24:00"}',
    "time-no-zone": '{"bytes":"' + _K + '","created_at":"2009-11-10T23:00:00"}',
    "time-feb-30": '{"bytes":"' + _K + '","created_at":"2009-02-30T23:00:00Z"}',
    "time-number": '{"bytes":"' + _K + '","created_at":1257894000}',
    "nan": '{"bytes":"' + _K + '","x":NaN}',
    "array": "[1]",
    "trailing-garbage": '{"bytes":"' + _K + '"} x',
}


@pytest.mark.parametrize("record", KES_INVALID_JSON_RECORDS)
def test_kes_malformed_json_records_are_rejected(record: bytes) -> None:
    with pytest.raises(InvalidKeyRecord):
        parse_key_version(record)


@pytest.mark.parametrize("case", sorted(INVALID_JSON_RECORDS))
def test_invalid_json_records_are_rejected(case: str) -> None:
    with pytest.raises(InvalidKeyRecord):
        parse_key_version(INVALID_JSON_RECORDS[case].encode())


_SHA256_HMAC = _len(1, HMAC_KEY) + _int(2, 1)
INVALID_PROTOBUF_RECORDS = {
    "no-hmac-key": _record(hmac_key=None),
    "empty-hmac-key": _record(hmac_key=b""),
    "hmac-key-31-bytes": _record(hmac_key=_len(1, HMAC_KEY[:31]) + _int(2, 1)),
    "hmac-hash-unknown": _record(hmac_key=_len(1, HMAC_KEY) + _int(2, 2)),
    "hmac-hash-missing": _record(hmac_key=_len(1, HMAC_KEY)),
    "key-type-missing": _record(key=_len(1, KEY)),
    "key-type-3": _record(key=_len(1, KEY) + _int(2, 3)),
    "key-33-bytes": _record(key=_len(1, KEY + b"\0") + _int(2, 1)),
    "key-missing": base64.b64encode(_len(2, _SHA256_HMAC)),
    "truncated": base64.b64encode(base64.b64decode(_record())[:-3]),
    "group-wire-type": _record(extra=b"\x2b\x2c"),
    "overlong-varint": _record(extra=b"\x28" + b"\xff" * 10 + b"\x01"),
    "created-by-not-utf8": _record(extra=_len(4, b"\xff\xfe")),
    "timestamp-out-of-range": _record(timestamp=_int(1, 400_000_000_000)),
    "not-base64": b"CiQKIMiHG7Xr!N94",
    "unpadded-base64": PROTOBUF_RECORD.rstrip(b"=") + b"A",
    "empty": b"",
    "garbage": b"hello, world",
}


@pytest.mark.parametrize("case", sorted(INVALID_PROTOBUF_RECORDS))
def test_invalid_protobuf_records_are_rejected(case: str) -> None:
    with pytest.raises(InvalidKeyRecord, match=r"^invalid key record: "):
        parse_key_version(INVALID_PROTOBUF_RECORDS[case])


@pytest.mark.parametrize(
    "record",
    [
        _record(hmac_key=_len(1, HMAC_KEY[:31]) + _int(2, 1)),
        _record(key=_len(1, KEY + b"\0") + _int(2, 1)),
        _record(key=_len(1, KEY) + _int(2, 9)),
        INVALID_JSON_RECORDS["key-31-bytes"].encode(),
        INVALID_JSON_RECORDS["unknown-algorithm"].encode(),
        b'{"bytes":"' + _K.encode() + b'\xff"}',
    ],
)
def test_errors_never_quote_key_material(record: bytes) -> None:
    with pytest.raises(InvalidKeyRecord) as caught:
        parse_key_version(record)
    message = str(caught.value)
    for secret in (KEY, HMAC_KEY, KEY[:31], HMAC_KEY[:31]):
        for spelling in (secret.hex(), base64.b64encode(secret).decode()[:20], repr(secret)[2:20]):
            assert spelling not in message


# --- KeyVersion values ----------------------------------------------------------------------


def test_hmac_is_hmac_sha256_under_the_hmac_key() -> None:
    version = parse_key_version(PROTOBUF_RECORD)
    expected = hmac.digest(PROTOBUF_RECORD_HMAC_KEY, b"message", "sha256")
    assert version.hmac(b"message") == expected
    assert version.hmac(b"") != expected


def test_generate_draws_fresh_keys() -> None:
    first, second = generate_key_version(IDENTITY_1), generate_key_version(IDENTITY_1)
    assert first.key.cipher is Cipher.AES256
    assert len({first.key.key, first.hmac_key, second.key.key, second.hmac_key}) == 4
    assert first.created_by == IDENTITY_1
    assert first.created_at is not None
    assert abs(first.created_at - datetime.now(UTC)) < timedelta(minutes=1)


def test_generate_imports_a_given_key_with_a_fresh_hmac_key() -> None:
    now = datetime(2025, 3, 12, 9, 35, 18, tzinfo=UTC)
    version = generate_key_version("", cipher=Cipher.CHACHA20, key=KEY, now=now)
    assert version.key == SecretKey(Cipher.CHACHA20, KEY)
    assert version.hmac_key is not None
    assert len(version.hmac_key) == 32
    assert version.created_at == now
    assert parse_key_version(encode_key_version(version)) == version


def test_generate_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        generate_key_version("", key=b"short")
    with pytest.raises(ValueError, match="timezone-aware"):
        generate_key_version("", now=datetime(2025, 1, 1))


def test_created_at_is_normalised_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    version = _version(created_at=datetime(2024, 1, 1, 12, tzinfo=plus_two))
    assert version.created_at == datetime(2024, 1, 1, 10, tzinfo=UTC)
    assert version.created_at is not None
    assert version.created_at.tzinfo is UTC


def test_go_zero_time_means_no_creation_time() -> None:
    version = _version(created_at=datetime(1, 1, 1, tzinfo=UTC), created_at_nanos=0)
    assert version.created_at is None
    raw = base64.b64decode(encode_key_version(_version(created_at=None, created_at_nanos=0)))
    assert b"\x1a\x0b\x08" + _varint(-62135596800) in raw
    assert parse_key_version(base64.b64encode(raw)).created_at is None


def test_repr_hides_the_hmac_key_and_the_key() -> None:
    text = repr(_version())
    assert HMAC_KEY.hex() not in text
    assert repr(HMAC_KEY) not in text
    assert repr(KEY) not in text


def test_invalid_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="HMAC key must be 32 bytes"):
        _version(hmac_key=b"short")
    with pytest.raises(ValueError, match="0-999"):
        _version(created_at_nanos=1000)
    with pytest.raises(ValueError, match="needs a created_at"):
        _version(created_at=None, created_at_nanos=1)
    with pytest.raises(TypeError, match="SecretKey"):  # KES_HEAD encodeSecretKeyVersionTests 2
        _version(key=None)


def test_equality_covers_every_field() -> None:
    assert _version() == _version()
    for change in (
        {"key": SecretKey(Cipher.CHACHA20, KEY)},
        {"hmac_key": None},
        {"hmac_key": KEY},
        {"created_at": None, "created_at_nanos": 0},
        {"created_at_nanos": 0},
        {"created_by": ""},
    ):
        assert _version(**change) != _version()
