"""The key API's success answers, byte for byte (spec §1.4, §2.6-§2.11, §2.13, §5.7):
create, import, describe, list, delete, generate and hmac, on records KES wrote too.

Most tests work on the key ``k``, imported with bytes the test knows, so that ciphertexts can
be made and opened offline: that proves the server used exactly the key it was given.
"""

from __future__ import annotations

import base64
import datetime
import hmac
import json
import os
import re
import stat
import uuid

import pytest

from aiokes.crypto import Cipher, KeyVersion, SecretKey, encode_key_version, parse_key_version
from aiokes.errors import DecryptError
from tests.api.helpers import (
    KNOWN_KEY,
    Reply,
    b64,
    field_bytes,
    fresh_name,
    import_known_key,
    json_body,
    module_server,
    put_json,
    send,
)
from tests.conftest import RunningServer

pytestmark = pytest.mark.asyncio(loop_scope="module")

AES = SecretKey(Cipher.AES256, KNOWN_KEY)
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")


server = module_server  # one server for all tests of this module


def _parse_time(text: str) -> datetime.datetime:
    assert RFC3339.fullmatch(text), text
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- create, import, describe, delete --------------------------------------------------------


async def test_create_stores_a_private_e5_record_made_by_the_caller(
    server: RunningServer,
) -> None:
    name = fresh_name()
    before = datetime.datetime.now(datetime.UTC)
    reply = await send(server, "PUT", f"/v1/key/create/{name}")
    after = datetime.datetime.now(datetime.UTC)
    assert (reply.status, reply.body, reply.headers["content-length"]) == (200, b"", "0")
    path = server.keystore_dir / name
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    version = parse_key_version(path.read_bytes())
    assert base64.b64decode(path.read_bytes(), validate=True)  # base64(protobuf), not JSON
    assert version.key.cipher is Cipher.AES256
    assert version.hmac_key is not None
    assert version.hmac_key != version.key.key
    assert version.created_by == server.admin.identity
    assert version.created_at is not None
    assert before <= version.created_at <= after


async def test_two_created_keys_differ(server: RunningServer) -> None:
    first, second = fresh_name(), fresh_name()
    for name in (first, second):
        assert (await send(server, "PUT", f"/v1/key/create/{name}")).status == 200
    records = [parse_key_version((server.keystore_dir / n).read_bytes()) for n in (first, second)]
    assert records[0].key.key != records[1].key.key
    assert records[0].hmac_key != records[1].hmac_key


async def test_describe_is_byte_exact(server: RunningServer) -> None:
    name = fresh_name()
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    assert (await send(server, "PUT", f"/v1/key/create/{name}")).status == 200
    reply = await send(server, "GET", f"/v1/key/describe/{name}")
    assert reply.status == 200
    created_at = reply.json()["created_at"]
    expected = {
        "name": name,
        "algorithm": "AES256",
        "created_at": created_at,
        "created_by": server.admin.identity,
    }
    assert reply.body == json_body(expected)
    assert before <= _parse_time(created_at) <= datetime.datetime.now(datetime.UTC)


async def test_created_by_is_the_creating_identity(server: RunningServer) -> None:
    name = fresh_name("my-key")  # the app's policy allows create and describe on my-key*
    assert (await send(server, "PUT", f"/v1/key/create/{name}", who=server.app)).status == 200
    reply = await send(server, "GET", f"/v1/key/describe/{name}", who=server.app)
    assert reply.json()["created_by"] == server.app.identity


@pytest.mark.parametrize(
    ("cipher", "algorithm"),
    [
        ("AES256", "AES256"),
        ("AES256-GCM_SHA256", "AES256"),
        ("ChaCha20", "ChaCha20"),
        ("XCHACHA20-POLY1305", "ChaCha20"),
    ],
)
async def test_import_accepts_every_kes_cipher_name(
    server: RunningServer, cipher: str, algorithm: str
) -> None:
    name = fresh_name()
    await import_known_key(server, name, cipher=cipher)
    described = (await send(server, "GET", f"/v1/key/describe/{name}")).json()
    assert (described["algorithm"], described["created_by"]) == (algorithm, server.admin.identity)
    version = parse_key_version((server.keystore_dir / name).read_bytes())
    assert version.key == SecretKey(
        Cipher.AES256 if algorithm == "AES256" else Cipher.CHACHA20, KNOWN_KEY
    )
    assert version.hmac_key is not None  # imported keys get a fresh HMAC key


# Records KES wrote (spec §5.7); "v0.22" and "e5" are from parseKeyVersionTests in
# minio/kes internal/crypto/key_test.go@63649d0 (the e5 record dates from
# 2024-01-12T11:39:20.886816+01:00).
_OLD_CREATOR = "189d9de5331e3ee8abe9e4bd40d474ad621d79ccf83a711f6ac68050eb15a52a"
_E5_CREATOR = "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22"
_E5_RECORD = (
    b"CiQKIMiHG7XrN94FuwblJJor4f7f6rbqAl7DwsLaiIoyz0D2EAESJAognLXl4yqa4cjZTcSbsU6sNnN8kP9ARWkXwa20"
    b"YQZa9HgQARoMCNithK0GEID67qYDIkAzZWNmY2RmMzhmY2JlMTQxYWUyNmExMDMwZjgxZTk2Yjc1MzM2NWE0Njc2MGFl"
    b"NmI1Nzg2OThhOTdjNTlmZDIy"
)
_E5_HMAC_KEY = base64.b64decode("nLXl4yqa4cjZTcSbsU6sNnN8kP9ARWkXwa20YQZa9Hg=")
KES_RECORDS = {
    "e1": (
        b'{"bytes":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}',
        {"algorithm": "AES256", "created_at": "0001-01-01T00:00:00Z"},
    ),
    "v0.22": (
        b'{"bytes":"9ew6BCae3+13sniOUwttEJ62amg98YXc0OW0WBhNiCY=","algorithm":"XCHACHA20-POLY1305",'
        b'"created_at":"2009-11-10T23:00:00Z","created_by":"' + _OLD_CREATOR.encode() + b'"}',
        {
            "algorithm": "ChaCha20",
            "created_at": "2009-11-10T23:00:00Z",
            "created_by": _OLD_CREATOR,
        },
    ),
    "e5": (
        _E5_RECORD,
        {
            "algorithm": "AES256",
            "created_at": "2024-01-12T10:39:20.886816Z",
            "created_by": _E5_CREATOR,
        },
    ),
}


@pytest.mark.parametrize(("record", "fields"), KES_RECORDS.values(), ids=KES_RECORDS)
async def test_describe_record_written_by_kes(
    server: RunningServer, record: bytes, fields: dict[str, str]
) -> None:
    name = fresh_name()
    (server.keystore_dir / name).write_bytes(record)
    reply = await send(server, "GET", f"/v1/key/describe/{name}")
    assert reply.body == json_body({"name": name, **fields})
    assert (server.keystore_dir / name).read_bytes() == record  # never rewritten


async def test_hmac_of_record_written_by_kes(server: RunningServer) -> None:
    name = fresh_name()
    (server.keystore_dir / name).write_bytes(_E5_RECORD)
    document = await put_json(server, f"/v1/key/hmac/{name}", {"message": b64(b"message")})
    assert field_bytes(document, "hmac") == hmac.digest(_E5_HMAC_KEY, b"message", "sha256")


async def test_describe_keeps_the_nanoseconds_of_a_record(server: RunningServer) -> None:
    name = fresh_name()
    moment = datetime.datetime(2024, 1, 12, 10, 39, 20, 886816, tzinfo=datetime.UTC)
    version = KeyVersion(
        SecretKey(Cipher.AES256, KNOWN_KEY), b"\x01" * 32, moment, "", created_at_nanos=789
    )
    (server.keystore_dir / name).write_bytes(encode_key_version(version))
    reply = await send(server, "GET", f"/v1/key/describe/{name}")
    assert reply.json()["created_at"] == "2024-01-12T10:39:20.886816789Z"


async def test_delete_removes_the_key(server: RunningServer) -> None:
    name = fresh_name()
    await import_known_key(server, name)
    reply = await send(server, "DELETE", f"/v1/key/delete/{name}")
    assert (reply.status, reply.body, reply.headers["content-length"]) == (200, b"", "0")
    assert not (server.keystore_dir / name).exists()
    assert (await send(server, "GET", f"/v1/key/describe/{name}")).status == 404


async def test_deleted_key_no_longer_decrypts_from_the_cache(server: RunningServer) -> None:
    name = fresh_name()
    await import_known_key(server, name)
    ciphertext = AES.encrypt(b"x")
    body = json.dumps({"ciphertext": b64(ciphertext)}).encode()
    assert (await send(server, "PUT", f"/v1/key/decrypt/{name}", body)).status == 200
    assert (await send(server, "DELETE", f"/v1/key/delete/{name}")).status == 200
    assert (await send(server, "PUT", f"/v1/key/decrypt/{name}", body)).status == 404


# --- list ------------------------------------------------------------------------------------


async def test_list_is_sorted_prefix_matching_and_byte_exact(server: RunningServer) -> None:
    prefix = "lst" + uuid.uuid4().hex[:12]
    names = [f"{prefix}-c", f"{prefix}-a", f"{prefix}-b1", f"{prefix}-b2", f"{prefix}B"]
    for name in names:
        await import_known_key(server, name)
    everything = sorted(names)
    for pattern, expected in [
        (prefix, everything),
        (prefix + "*", everything),
        (prefix + "-b", [f"{prefix}-b1", f"{prefix}-b2"]),
        (prefix + "-b*", [f"{prefix}-b1", f"{prefix}-b2"]),
        (prefix + "-a", [f"{prefix}-a"]),
        (prefix + "B", [f"{prefix}B"]),
        (prefix + "-z", []),
    ]:
        reply = await send(server, "GET", f"/v1/key/list/{pattern}")
        if pattern.endswith("*"):  # a glob: the LEGACY stream (see the kes-go tests below)
            assert reply.content_type == "application/x-ndjson", pattern
            assert reply.body == b"".join(json_body({"name": name}) for name in expected)
        else:
            assert reply.body == json_body({"names": expected}), pattern


def _listed(reply: Reply) -> list[str]:
    """The names of a listing in either form, as kms-go reads them (it switches on the type)."""
    assert reply.status == 200, reply
    if reply.content_type == "application/x-ndjson":
        return [json.loads(line)["name"] for line in reply.body.splitlines()]
    assert reply.content_type == "application/json"
    names: list[str] = reply.json()["names"]
    return names


@pytest.mark.parametrize(
    "path", ["/v1/key/list/", "/v1/key/list/*", "/v1/key/list/%2A", "/v1/key/list"]
)
async def test_list_everything(server: RunningServer, path: str) -> None:
    name = fresh_name()
    await import_known_key(server, name)
    names = _listed(await send(server, "GET", path))
    assert names == sorted(names)
    assert {"k", name} <= set(names)
    assert set(names) == {
        p.name for p in server.keystore_dir.iterdir() if not p.name.startswith(".")
    }


@pytest.mark.parametrize("path", ["/v1/key/list", "/v1/key/list/", "/v1/key/list/lst"])
async def test_list_without_a_glob_is_the_json_page_kms_go_reads(
    server: RunningServer, path: str
) -> None:
    """kms-go (current MinIO, ``kes ls``) sends a prefix, empty for everything: the HEAD page."""
    reply = await send(server, "GET", path)
    assert (reply.status, reply.content_type) == (200, "application/json")
    assert set(reply.json()) == {"names"}


async def test_list_answers_kes_go_v0_1_in_the_stream_it_decodes(server: RunningServer) -> None:
    """kes-go v0.1.0 (MinIO RELEASE.2023-03 … 2023-08) lists with a glob, ``*`` for everything,
    path-escaped (``%2A``; enclave.go:471-477), and decodes the answer as a stream of
    ``{"name": …}`` objects (key.go:207-221): the HEAD page would decode as one key named ""."""
    prefix = "glob" + uuid.uuid4().hex[:12]
    for name in (f"{prefix}-b", f"{prefix}-a"):
        await import_known_key(server, name)
    reply = await send(server, "GET", f"/v1/key/list/{prefix}%2A")
    assert (reply.status, reply.content_type) == (200, "application/x-ndjson")
    decoder = json.JSONDecoder()  # Go's json.Decoder over the stream, value after value
    text, position, keys = reply.body.decode(), 0, []
    while position < len(text):
        value, end = decoder.raw_decode(text, position)
        keys.append(value)
        position = end + 1  # the newline json.Encoder writes after each value
    assert keys == [{"name": f"{prefix}-a"}, {"name": f"{prefix}-b"}]
    everything = await send(server, "GET", "/v1/key/list/%2A")
    assert {f"{prefix}-a", "k"} <= set(_listed(everything))


# --- generate --------------------------------------------------------------------------------


def _check_dek(document: dict[str, str], context: bytes) -> bytes:
    assert list(document) == ["plaintext", "ciphertext"]
    plaintext, ciphertext = field_bytes(document, "plaintext"), field_bytes(document, "ciphertext")
    assert (len(plaintext), len(ciphertext), len(document["ciphertext"])) == (32, 76, 104)
    assert AES.decrypt(ciphertext, context) == plaintext
    return ciphertext


@pytest.mark.parametrize("method", ["PUT", "POST"])
async def test_generate_without_a_body(server: RunningServer, method: str) -> None:
    """MinIO's older clients send no body at all: no Content-Length, no JSON."""
    reply = await send(server, method, "/v1/key/generate/k")
    assert reply.status == 200, reply
    assert reply.content_type == "application/json"
    _check_dek(reply.json(), b"")


async def test_generate_with_empty_content_length(server: RunningServer) -> None:
    reply = await send(server, "POST", "/v1/key/generate/k", b"")
    assert reply.status == 200, reply
    _check_dek(reply.json(), b"")


@pytest.mark.parametrize(
    ("body", "context"),
    [
        ({}, b""),
        ({"context": None}, b""),
        ({"context": ""}, b""),
        ({"context": "e30="}, b"{}"),  # MinIO's empty context: the two bytes "{}"
        ({"context": b64(b'{"bucket":"bucket/object"}')}, b'{"bucket":"bucket/object"}'),
        ({"Context": "e30=", "version": "v1"}, b"{}"),
    ],
    ids=["empty", "null", "empty-string", "minio-empty", "minio", "go-field-folding"],
)
async def test_generate_binds_the_context(
    server: RunningServer, body: dict[str, str], context: bytes
) -> None:
    document = await put_json(server, "/v1/key/generate/k", body)
    ciphertext = _check_dek(document, context)
    wrong = b"" if context else b"{}"
    with pytest.raises(DecryptError):
        AES.decrypt(ciphertext, wrong)


async def test_generate_reads_a_chunked_body(server: RunningServer) -> None:
    reply = await send(server, "PUT", "/v1/key/generate/k", b'{"context":"e30="}', chunked=True)
    assert reply.status == 200, reply
    _check_dek(reply.json(), b"{}")


async def test_generate_draws_fresh_keys(server: RunningServer) -> None:
    first = await put_json(server, "/v1/key/generate/k", {})
    second = await put_json(server, "/v1/key/generate/k", {})
    assert first["plaintext"] != second["plaintext"]
    assert first["ciphertext"] != second["ciphertext"]


# --- hmac ------------------------------------------------------------------------------------


@pytest.mark.parametrize("message", [b"", b"minio root credentials", os.urandom(100_000)])
async def test_hmac_is_hmac_sha256_under_the_records_hmac_key(
    server: RunningServer, message: bytes
) -> None:
    version = parse_key_version((server.keystore_dir / "k").read_bytes())
    assert version.hmac_key is not None
    expected = hmac.digest(version.hmac_key, message, "sha256")
    for method in ("PUT", "POST"):
        reply = await send(
            server, method, "/v1/key/hmac/k", json.dumps({"message": b64(message)}).encode()
        )
        assert reply.body == json_body({"hmac": b64(expected)})


async def test_hmac_is_deterministic_and_differs_per_key(server: RunningServer) -> None:
    other = fresh_name()
    await import_known_key(server, other)  # same encryption key, its own HMAC key
    body = {"message": b64(b"m")}
    first = field_bytes(await put_json(server, "/v1/key/hmac/k", body), "hmac")
    again = field_bytes(await put_json(server, "/v1/key/hmac/k", body), "hmac")
    elsewhere = field_bytes(await put_json(server, f"/v1/key/hmac/{other}", body), "hmac")
    assert len(first) == 32
    assert first == again
    assert first != elsewhere


async def test_import_takes_the_body_kes_go_v0_1_sent(server: RunningServer) -> None:
    """kes-go v0.1.0 (MinIO RELEASE.2023-03 … 2023-08, ``mc admin kms key import``) and the kes
    client package up to v0.22.3 sent ``{"bytes": …}`` and nothing else (enclave.go:148 of
    kes-go v0.1.0): the one legacy form aiokes keeps. It imports an AES256 key."""
    name = fresh_name()
    body = json.dumps({"bytes": base64.b64encode(KNOWN_KEY).decode()}).encode()
    reply = await send(server, "POST", f"/v1/key/import/{name}", body)
    assert (reply.status, reply.body) == (200, b""), reply
    version = parse_key_version((server.keystore_dir / name).read_bytes())
    assert version.key == SecretKey(Cipher.AES256, KNOWN_KEY)
    assert version.created_by == server.admin.identity


async def test_import_of_the_legacy_form_checks_the_key_size(server: RunningServer) -> None:
    name = fresh_name()
    body = json.dumps({"bytes": base64.b64encode(b"\x01" * 16).decode()}).encode()
    reply = await send(server, "POST", f"/v1/key/import/{name}", body)
    assert reply.is_error(406, "invalid key size for 'AES256'"), reply
    assert not (server.keystore_dir / name).exists()
