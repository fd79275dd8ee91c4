"""Several servers in one client (``KES_SERVER=a,b``): it fails over as KES's Go client does."""

from __future__ import annotations

import socket

import pytest

from aiokes.client import Client, client_from_env
from aiokes.errors import AiokesError, ServerUnreachable
from tests.conftest import RunningServer, StartServer


def _closed_port() -> int:
    with socket.socket() as sock:  # bound and closed again: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _client(server: RunningServer, endpoints: str) -> Client:
    admin = server.admin
    return Client(
        endpoints, cert_file=admin.cert_file, key_file=admin.key_file, ca_file=server.ca_file
    )


async def test_an_unreachable_server_is_skipped_and_the_next_one_kept(
    server: RunningServer,
) -> None:
    dead = f"https://127.0.0.1:{_closed_port()}"
    async with _client(server, f"{dead},{server.url}") as client:
        await client.create_key("fail-over")
        assert client.endpoint == server.url  # the one that answered goes first from now on
        assert len((await client.generate_key("fail-over")).plaintext) == 32


async def test_a_5xx_answer_moves_on_but_4xx_does_not(start_server: StartServer) -> None:
    broken = await start_server()
    healthy = await start_server()
    broken_keystore = broken.server.state.keystore
    assert broken_keystore is not None  # a one-process server owns its keystore

    async def failing_get(name: str) -> bytes:  # the keystore behind this server is down
        from aiokes.errors import KeystoreUnreachable

        raise KeystoreUnreachable("down")

    broken_keystore.get = failing_get  # type: ignore[method-assign]
    async with _client(healthy, f"{broken.url},{healthy.url}") as client:
        await client.create_key("k")  # both servers share tmp_path/keys: the key exists once
        assert len((await client.generate_key("k")).plaintext) == 32  # 502 at the first
        assert client.endpoint == healthy.url
    async with _client(healthy, f"{healthy.url},{broken.url}") as client:
        with pytest.raises(AiokesError, match="key does not exist"):
            await client.generate_key("missing")  # a 404 is an answer: no fail-over
        assert client.endpoint == healthy.url


async def test_all_servers_unreachable_names_the_last() -> None:
    first, second = _closed_port(), _closed_port()
    async with Client(f"127.0.0.1:{first},127.0.0.1:{second}", insecure=True) as client:
        with pytest.raises(ServerUnreachable, match=f"cannot reach https://127.0.0.1:{second}"):
            await client.version()


def test_kes_server_lists_every_endpoint() -> None:
    environ = {"KES_SERVER": "https://a:7373, b:7373", "KES_API_KEY": _api_key()}
    client = client_from_env(environ)
    assert client.endpoints == ["https://a:7373", "https://b:7373"]


def _api_key() -> str:
    from aiokes.identity import APIKey

    return str(APIKey.generate())
