"""``aiokes key``: every subcommand against a real server, with KES's output formats and
one-line errors."""

from __future__ import annotations

import base64
import json
import sys

import pytest

from aiokes.cli._common import failing_as
from aiokes.errors import KeyExists, ServerRefused
from tests.cli.conftest import ainvoke, client_env
from tests.conftest import RunningServer


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend standard output is a terminal (KES prints for people there)."""
    monkeypatch.setattr(sys.modules["aiokes.cli.key"], "is_terminal", lambda: True)


async def test_create_info_ls_rm(server: RunningServer, admin_env: dict[str, str]) -> None:
    assert (await ainvoke(["key", "create", "my-key-1", "my-key-2"], admin_env)).exit_code == 0
    info = (await ainvoke(["key", "info", "my-key-1"], admin_env)).stdout.splitlines()
    assert info[0] == "Name        my-key-1"
    assert info[1] in ("Algorithm   AES256", "Algorithm   ChaCha20")
    assert info[2].startswith("Date        20")
    assert info[3] == f"Owner       {server.admin.identity}"
    listed = await ainvoke(["key", "ls"], admin_env)
    assert listed.stdout == "Key\nmy-key-1\nmy-key-2\n"
    assert (await ainvoke(["key", "rm", "my-key-1"], admin_env)).exit_code == 0
    assert (await ainvoke(["key", "ls", "--json"], admin_env)).stdout == '["my-key-2"]\n'


async def test_info_json_is_the_server_description(admin_env: dict[str, str]) -> None:
    await ainvoke(["key", "create", "my-key"], admin_env)
    document = json.loads((await ainvoke(["key", "info", "--json", "my-key"], admin_env)).stdout)
    assert document["name"] == "my-key"
    assert {"algorithm", "created_at", "created_by"} <= document.keys()


async def test_server_errors_are_one_line_and_exit_1(admin_env: dict[str, str]) -> None:
    await ainvoke(["key", "create", "my-key"], admin_env)
    again = await ainvoke(["key", "create", "my-key"], admin_env)
    assert (again.exit_code, again.stderr) == (
        1,
        "Error: failed to create key 'my-key': key already exists\n",
    )
    missing = await ainvoke(["key", "info", "nope"], admin_env)
    assert (missing.exit_code, missing.stderr) == (
        1,
        "Error: failed to describe key 'nope': key does not exist\n",
    )


async def test_policy_refusal_is_reported(server: RunningServer) -> None:
    result = await ainvoke(["key", "create", "other"], client_env(server, server.app))
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: failed to create key 'other': not authorized: insufficient permissions\n"
    )


async def test_import_then_encrypt_and_decrypt(admin_env: dict[str, str]) -> None:
    key = base64.b64encode(bytes(range(32))).decode()
    assert (await ainvoke(["key", "import", "imported", key], admin_env)).exit_code == 0
    context = base64.b64encode(b"ctx").decode()
    encrypted = await ainvoke(["key", "encrypt", "imported", "Hello World", context], admin_env)
    ciphertext = json.loads(encrypted.stdout)["ciphertext"]
    decrypted = await ainvoke(["key", "decrypt", "imported", ciphertext, context], admin_env)
    assert json.loads(decrypted.stdout) == {"plaintext": base64.b64encode(b"Hello World").decode()}
    wrong = await ainvoke(["key", "decrypt", "imported", ciphertext], admin_env)
    assert (wrong.exit_code, wrong.stderr) == (
        1,
        "Error: failed to decrypt ciphertext: decryption failed: ciphertext is not authentic\n",
    )


async def test_import_of_a_wrong_size_key_shows_the_server_reason(
    admin_env: dict[str, str],
) -> None:
    short = base64.b64encode(b"short").decode()
    result = await ainvoke(["key", "import", "imported", short], admin_env)
    assert (
        result.stderr == "Error: failed to import key 'imported': invalid key size for 'AES256'\n"
    )


async def test_dek_prints_json_for_programs(admin_env: dict[str, str]) -> None:
    await ainvoke(["key", "create", "my-key-1"], admin_env)
    context = base64.b64encode(b'{"bucket":"bucket/object"}').decode()
    result = await ainvoke(["key", "dek", "my-key-1", context], admin_env)
    dek = json.loads(result.stdout)
    assert list(dek) == ["plaintext", "ciphertext"]
    assert len(base64.b64decode(dek["plaintext"])) == 32
    decrypted = await ainvoke(["key", "decrypt", "my-key-1", dek["ciphertext"], context], admin_env)
    assert json.loads(decrypted.stdout)["plaintext"] == dek["plaintext"]


async def test_dek_on_a_terminal_aligns_like_kes(admin_env: dict[str, str], terminal: None) -> None:
    await ainvoke(["key", "create", "my-key-1"], admin_env)
    lines = (await ainvoke(["key", "dek", "my-key-1"], admin_env)).stdout.split("\n")
    assert lines[0] == ""
    assert lines[1].startswith("plaintext:  ")
    assert lines[2].startswith("ciphertext: ")
    json_output = await ainvoke(["key", "dek", "--json", "my-key-1"], admin_env)
    assert json.loads(json_output.stdout).keys() == {"plaintext", "ciphertext"}


@pytest.mark.parametrize(
    ("args", "argument"),
    [
        (["key", "import", "k", "not base64!"], "'KEY'"),
        (["key", "decrypt", "k", "AB_C"], "'CIPHERTEXT'"),  # URL-safe alphabet
        (["key", "decrypt", "k", "AAAA", "AAA"], "'[CONTEXT]'"),
        (["key", "dek", "k", "%%%"], "'[CONTEXT]'"),
        (["key", "create"], "Missing argument"),
    ],
)
async def test_bad_arguments_are_usage_errors_naming_the_argument(
    admin_env: dict[str, str], args: list[str], argument: str
) -> None:
    result = await ainvoke(args, admin_env)
    assert result.exit_code == 1  # kes: cli.Fatal after flag parsing
    assert argument in result.stderr


async def test_untrusted_server_needs_insecure(server: RunningServer) -> None:
    env = client_env(server)
    del env["MINIO_KMS_KES_CAPATH"]
    refused = await ainvoke(["key", "ls"], env)
    assert refused.exit_code == 1
    assert refused.stderr.startswith(f"Error: cannot reach {server.url}: server certificate not")
    assert "-k/--insecure" in refused.stderr
    assert (await ainvoke(["key", "ls", "-k"], env)).exit_code == 0


async def test_missing_credentials_are_reported(server: RunningServer) -> None:
    result = await ainvoke(["key", "ls"], {"KES_SERVER": server.url})
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no client credentials")


def test_a_refusal_says_what_was_attempted_and_keeps_the_answer() -> None:
    with (
        pytest.raises(
            ServerRefused, match=r"^failed to create key 'k': key already exists$"
        ) as caught,
        failing_as("failed to create key 'k'"),
    ):
        raise KeyExists()
    assert isinstance(caught.value.__cause__, KeyExists)
