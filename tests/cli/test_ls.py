"""``aiokes ls``: keys, identities or policies, sorted, as a table or a JSON array."""

from __future__ import annotations

import json

from aiokes.identity import APIKey
from tests.cli.conftest import ainvoke
from tests.conftest import RunningServer


async def test_ls_lists_keys_sorted_under_a_header(admin_env: dict[str, str]) -> None:
    await ainvoke(["key", "create", "zeta", "alpha", "my-key"], admin_env)
    assert (await ainvoke(["ls"], admin_env)).stdout == "Key\nalpha\nmy-key\nzeta\n"
    assert (await ainvoke(["ls", "my"], admin_env)).stdout == "Key\nmy-key\n"
    assert (await ainvoke(["ls", "--json"], admin_env)).stdout == '["alpha","my-key","zeta"]\n'


async def test_ls_prints_nothing_or_an_empty_array_when_empty(admin_env: dict[str, str]) -> None:
    assert (await ainvoke(["ls"], admin_env)).stdout == ""
    assert (await ainvoke(["ls", "--json"], admin_env)).stdout == "[]\n"


async def test_ls_identities_and_policies(server: RunningServer, admin_env: dict[str, str]) -> None:
    identities = json.loads((await ainvoke(["ls", "-i", "--json"], admin_env)).stdout)
    assert {server.admin.identity, server.app.identity} <= set(identities)
    assert (await ainvoke(["ls", "--policy"], admin_env)).stdout == "Policy\nmy-app\n"
    assert (await ainvoke(["ls", "--identity"], admin_env)).stdout.startswith("Identity\n")


async def test_ls_identity_and_policy_together_is_a_usage_error(
    admin_env: dict[str, str],
) -> None:
    result = await ainvoke(["ls", "-i", "-p"], admin_env)
    assert result.exit_code == 1  # kes: cli.Exit
    assert "must not be used together" in result.stderr


async def test_ls_server_and_api_key_flags_override_the_environment(
    server: RunningServer,
) -> None:
    """``-s`` names the server and ``-a`` the API key; this key has no policy, so the server
    refuses it, which proves the request reached that server with that key."""
    env = {"KES_SERVER": "127.0.0.1:1", "MINIO_KMS_KES_CAPATH": server.ca_file}
    args = ["ls", "-s", server.url, "-a", str(APIKey.generate())]
    result = await ainvoke(args, env)
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: not authorized: insufficient permissions\n",
    )
