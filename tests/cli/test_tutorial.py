"""The operator tutorial (docs/operator-tutorial.md §2 to §5), command by command, with the fs
keystore in place of Azure: identities made by the CLI, the tutorial's config file, and the
CLI talking to the server with the tutorial's environment variables."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiokes.config import ListenAddress, load_config
from aiokes.server import Server
from tests.cli.conftest import ainvoke, invoke
from tests.tutorial import tutorial_config


@pytest.fixture
async def tutorial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[dict[str, str]]:
    """Steps 2 to 4: make the identities with the CLI, write config.yml, start the server.
    Yields the environment of step 5."""
    monkeypatch.chdir(tmp_path)
    server = Server(load_config(_make_tutorial_files()), address=ListenAddress("127.0.0.1", 0))
    await server.start()
    yield {
        "KES_SERVER": f"https://127.0.0.1:{server.port}",
        "KES_CLIENT_CERT": "client.crt",
        "KES_CLIENT_KEY": "client.key",
    }
    await server.stop()


def _make_tutorial_files() -> Path:
    server_identity = invoke(["identity", "new", "--ip", "127.0.0.1", "localhost"])
    assert server_identity.exit_code == 0, server_identity.output
    created = invoke(["identity", "new", "--key=client.key", "--cert=client.crt", "MyApp"])
    client_identity = created.stdout.split("Identity:", 1)[1].split()[0]
    assert invoke(["identity", "of", "client.crt"]).stdout == client_identity + "\n"
    config = Path("config.yml")
    config.write_text(tutorial_config(client_identity))
    return config


async def test_tutorial_key_create_and_dek(tutorial: dict[str, str]) -> None:
    created = await ainvoke(["key", "create", "my-key-1", "-k"], tutorial)
    assert (created.exit_code, created.output) == (0, "")
    dek = await ainvoke(["key", "dek", "my-key-1", "-k"], tutorial)
    assert dek.exit_code == 0, dek.output
    generated = json.loads(dek.stdout)
    assert len(base64.b64decode(generated["plaintext"])) == 32
    args = ["key", "decrypt", "my-key-1", generated["ciphertext"], "-k"]
    decrypted = await ainvoke(args, tutorial)
    assert json.loads(decrypted.stdout)["plaintext"] == generated["plaintext"]


async def test_tutorial_server_certificate_can_be_trusted_instead_of_insecure(
    tutorial: dict[str, str],
) -> None:
    """Without ``-k`` the self-signed server certificate must be trusted explicitly, as
    with KES's CLI; MINIO_KMS_KES_CAPATH (MinIO's variable) names it."""
    refused = await ainvoke(["key", "create", "my-key-1"], tutorial)
    assert refused.exit_code == 1
    assert "server certificate not trusted" in refused.stderr
    trusted = {**tutorial, "MINIO_KMS_KES_CAPATH": "public.crt"}
    assert (await ainvoke(["key", "create", "my-key-1"], trusted)).exit_code == 0


async def test_tutorial_policy_limits_the_client_to_its_keys(tutorial: dict[str, str]) -> None:
    refused = await ainvoke(["key", "create", "other-key", "-k"], tutorial)
    assert (refused.exit_code, refused.stderr) == (
        1,
        "Error: failed to create key 'other-key': not authorized: insufficient permissions\n",
    )
