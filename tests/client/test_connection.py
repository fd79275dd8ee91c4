"""How the client connects: client certificates, API keys, server trust, settings from the
environment, and the wire formats of older KES servers (error bodies, paged and ndjson lists)."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import socket
import ssl
import tempfile
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
import trustme
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from aiokes.certificate import write_private_key
from aiokes.client import Client, client_from_env
from aiokes.errors import (
    AiokesError,
    APIError,
    ClientSetupError,
    HMACNotSupported,
    InvalidResponse,
    KeyExists,
    KeyNotFound,
    NotAllowed,
    ServerUnreachable,
)
from aiokes.identity import APIKey
from tests.conftest import RunningServer, StartServer

# -- authentication and TLS ----------------------------------------------------------------


async def test_api_key_authenticates_as_its_identity(start_server: StartServer) -> None:
    api_key = APIKey.generate()
    running = await start_server(policy=_policy_for(api_key))
    async with Client(running.url, api_key=api_key, ca_file=running.ca_file) as client:
        assert (await client.describe_self())["identity"] == api_key.identity
        await client.create_key("via-api-key")


def _policy_for(api_key: APIKey) -> str:
    return textwrap.dedent(
        f"""\
        policy:
          api-key-app:
            allow: [/v1/key/create/*, /v1/identity/self/describe]
            identities: [{api_key.identity}]
        """
    )


async def test_encrypted_client_key_loads_with_its_password(server: RunningServer) -> None:
    key_file = _encrypted_copy(server.app.key_file, server.directory / "encrypted.key")
    with pytest.raises(AiokesError, match="cannot load client certificate"):
        Client(server.url, cert_file=server.app.cert_file, key_file=str(key_file),
               key_password=b"wrong")  # fmt: skip
    client = Client(server.url, cert_file=server.app.cert_file, key_file=str(key_file),
                    key_password=b"pass", ca_file=server.ca_file)  # fmt: skip
    async with client:
        assert (await client.describe_self())["identity"] == server.app.identity


def _encrypted_copy(key_file: str, copy: Path) -> Path:
    key = serialization.load_pem_private_key(Path(key_file).read_bytes(), None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    write_private_key(copy, key, password=b"pass")
    return copy


async def test_untrusted_server_certificate_is_refused_unless_insecure(
    server: RunningServer,
) -> None:
    who = server.admin
    async with Client(server.url, cert_file=who.cert_file, key_file=who.key_file) as client:
        with pytest.raises(AiokesError, match="server certificate not trusted"):
            await client.version()
    options = {"cert_file": who.cert_file, "key_file": who.key_file, "insecure": True}
    async with Client(server.url, **options) as client:  # type: ignore[arg-type]
        assert (await client.version())["version"]


async def test_client_without_certificate_cannot_use_the_api(server: RunningServer) -> None:
    async with Client(server.url, ca_file=server.ca_file) as client:
        with pytest.raises(AiokesError):
            await client.list_keys()


async def test_unreachable_server_is_one_clear_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with Client(f"127.0.0.1:{port}", insecure=True) as client:
        with pytest.raises(
            ServerUnreachable, match=rf"cannot reach https://127.0.0.1:{port}: "
        ) as caught:
            await client.version()
    assert caught.value.endpoint == f"https://127.0.0.1:{port}"
    # The transport's own exception stays attached for whoever logs with a traceback.
    assert isinstance(caught.value.__cause__, (aiohttp.ClientError, OSError))


async def test_one_session_serves_many_requests(server: RunningServer) -> None:
    client = server.client()
    await asyncio.gather(*(client.version() for _ in range(20)))
    session = client._session
    await client.version()
    assert client._session is session


# -- configuration from the environment ----------------------------------------------------


async def test_client_from_env_uses_the_tutorial_variables(server: RunningServer) -> None:
    environ = {
        "KES_SERVER": server.url,
        "KES_CLIENT_CERT": server.app.cert_file,
        "KES_CLIENT_KEY": server.app.key_file,
        "MINIO_KMS_KES_CAPATH": server.ca_file,
    }
    async with client_from_env(environ) as client:
        assert (await client.describe_self())["identity"] == server.app.identity


def test_client_from_env_first_variable_wins_and_strips_http() -> None:
    api_key = str(APIKey.generate())
    environ = {
        "MINIO_KES_SERVER": "http://first:7373,second:7373",
        "KES_SERVER": "ignored:1",
        "KES_API_KEY": api_key,
    }
    client = client_from_env(environ)
    assert client.endpoint == "https://first:7373"


def test_client_from_env_defaults_to_the_local_server() -> None:
    client = client_from_env({"MINIO_KMS_KES_API_KEY": str(APIKey.generate())})
    assert client.endpoint == "https://127.0.0.1:7373"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "no client credentials"),
        ({"KES_API_KEY": "kes:v1:AAAA"}, "KES_API_KEY: invalid api key"),
        ({"KES_CLIENT_CERT": "c.crt"}, "no private key file"),
        ({"KES_CLIENT_KEY": "c.key"}, "no certificate file"),
        (
            {"KES_API_KEY": "kes:v1:AD9E7FSYWrMD+VjhI6q545cYT9YOyFxZb7UnjEepYDRc",
             "KES_CLIENT_CERT": "c.crt", "KES_CLIENT_KEY": "c.key"},
            "cannot be used at the same time",
        ),
    ],
)  # fmt: skip
def test_client_from_env_rejects_bad_credentials(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ClientSetupError, match=message):
        client_from_env(environ)


def test_missing_certificate_file_is_named() -> None:
    with pytest.raises(ClientSetupError, match=r"cannot read 'nowhere\.crt'"):
        Client("127.0.0.1:7373", cert_file="nowhere.crt", key_file="nowhere.key")


@pytest.mark.parametrize(
    ("given", "endpoint"),
    [
        ("127.0.0.1:7373", "https://127.0.0.1:7373"),
        ("http://host:1", "https://host:1"),
        ("https://host:1/", "https://host:1"),
    ],
)
def test_endpoint_is_normalised_as_kes_does(given: str, endpoint: str) -> None:
    assert Client(given, insecure=True).endpoint == endpoint


def test_b64_fields_use_standard_padded_base64() -> None:
    from aiokes.client.wire import bytes_field

    assert bytes_field({"x": base64.b64encode(b"\xfb\xff").decode()}, "x", "/p") == b"\xfb\xff"
    with pytest.raises(InvalidResponse, match="'x' is not base64"):
        bytes_field({"x": "-_8="}, "x", "/p")  # URL-safe alphabet is not KES's


# -- wire compatibility with older KES servers ---------------------------------------------


@pytest.mark.parametrize(
    ("status", "content_type", "body", "kind", "message"),
    [
        (404, "application/json", b'{"message":"key does not exist"\n}', KeyNotFound,
         "key does not exist"),
        (400, "application/json; charset=utf-8", b'{"message":"key does already exist"}',
         KeyExists, "key already exists"),
        (403, "application/json", b'{"message":"prohibited by policy"}', NotAllowed,
         "not authorized: insufficient permissions"),
        (409, "application/json", b'{"message":"key does not support HMAC"}',
         HMACNotSupported, "key does not support HMAC"),
        (404, "text/plain; charset=utf-8", b"404 page not found\n", APIError,
         "404 page not found"),
        (500, "application/json", b'{"message":"ignored","error":"the error wins"}', APIError,
         "the error wins"),
        (400, "application/json", b'{"message":"key does not exist"}', APIError,
         "key does not exist"),
    ],
)  # fmt: skip
def test_error_responses_decode_as_kms_go_does(
    status: int, content_type: str, body: bytes, kind: type[APIError], message: str
) -> None:
    """A canonical error needs both its status and its message; anything else stays an
    APIError with the server's status and text."""
    from aiokes.client.errors import error_from_response

    error = error_from_response(status, content_type, body)
    assert type(error) is kind
    assert (error.status, error.message) == (status, message)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def fake_kes(tls_ca: trustme.CA) -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """An HTTPS server standing in for KES releases whose answers aiokes does not give
    (paged lists, ndjson lists); every request goes to the test's handler."""
    runners: list[web.AppRunner] = []

    async def serve(handler: Handler) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_ca.issue_cert("127.0.0.1").configure_cert(context)
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        return f"https://127.0.0.1:{runner.addresses[0][1]}"

    yield serve
    for runner in runners:
        await runner.cleanup()


async def test_listing_follows_continue_at_as_the_next_prefix(
    fake_kes: Callable[[Handler], Awaitable[str]], tls_ca: trustme.CA, tmp_path: Path
) -> None:
    """kms-go's ListIter asks for ``/v1/key/list/<continue_at>`` after a partial page."""
    names = ["a1", "a2", "a3"]
    asked: list[str] = []

    async def page(request: web.Request) -> web.Response:
        prefix = request.match_info["tail"].removeprefix("v1/key/list/")
        asked.append(prefix)
        matching = [n for n in names if prefix == "*" or n.startswith(prefix)]
        following = {"continue_at": matching[2]} if len(matching) > 2 else {}
        return web.json_response({"names": matching[:2], **following})

    async with Client(await fake_kes(page), ca_file=_ca_file(tls_ca, tmp_path)) as client:
        assert await client.list_keys() == names
    assert asked == ["*", "a3"]


async def test_legacy_ndjson_listing_is_understood(
    fake_kes: Callable[[Handler], Awaitable[str]], tls_ca: trustme.CA, tmp_path: Path
) -> None:
    async def ndjson(request: web.Request) -> web.Response:
        if "identity" in request.path:
            body = '{"identity":"id-2","policy":"p"}\n{"identity":"id-1"}\n'
        elif request.path.endswith("/broken*"):
            body = '{"name":"k1"}\n{"error":"keystore gone"}\n'
        else:
            body = '{"name":"k2"}\n{"name":"k1"}\n'
        return web.Response(body=body, content_type="application/x-ndjson")

    async with Client(await fake_kes(ndjson), ca_file=_ca_file(tls_ca, tmp_path)) as client:
        assert await client.list_keys() == ["k1", "k2"]
        assert await client.list_identities() == ["id-1", "id-2"]
        with pytest.raises(InvalidResponse, match="keystore gone"):
            await client.list_keys("broken*")


def _ca_file(tls_ca: trustme.CA, directory: Path) -> str:
    path = directory / "fake-ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return str(path)


async def test_api_key_certificate_loads_without_memfd_and_leaves_no_file(
    start_server: StartServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Where the platform has no anonymous memory files, the API key's certificate goes
    through a private temporary directory that is gone once the context is built."""
    monkeypatch.delattr(os, "memfd_create", raising=False)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    api_key = APIKey.generate()
    running = await start_server(policy=_policy_for(api_key))
    async with Client(running.url, api_key=api_key, ca_file=running.ca_file) as client:
        assert list(scratch.iterdir()) == []
        assert (await client.describe_self())["identity"] == api_key.identity


async def test_ca_directory_trusts_every_file_in_it(server: RunningServer, tmp_path: Path) -> None:
    cas = tmp_path / "cas"
    cas.mkdir()
    shutil.copy(server.ca_file, cas / "server-ca.pem")
    who = server.admin
    client = Client(server.url, cert_file=who.cert_file, key_file=who.key_file, ca_file=str(cas))
    async with client:
        assert (await client.version())["version"]
