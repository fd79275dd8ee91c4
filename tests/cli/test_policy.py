"""``aiokes policy``: info, ls and show against a real server."""

from __future__ import annotations

import json
import sys

import pytest

from tests.cli.conftest import ainvoke
from tests.conftest import RunningServer


async def test_policy_ls(admin_env: dict[str, str]) -> None:
    assert (await ainvoke(["policy", "ls"], admin_env)).stdout == "Policy\nmy-app\n"
    assert (await ainvoke(["policy", "ls", "--json", "nope"], admin_env)).stdout == "[]\n"


async def test_policy_info(server: RunningServer, admin_env: dict[str, str]) -> None:
    lines = (await ainvoke(["policy", "info", "my-app"], admin_env)).stdout.splitlines()
    assert lines[0] == "Name        my-app"
    assert lines[1].startswith("Date        20")
    document = json.loads((await ainvoke(["policy", "info", "--json", "my-app"], admin_env)).stdout)
    assert document["name"] == "my-app"


async def test_policy_show_prints_the_rules_as_json_for_programs(
    admin_env: dict[str, str],
) -> None:
    document = json.loads((await ainvoke(["policy", "show", "my-app"], admin_env)).stdout)
    assert set(document["allow"]) == {
        "/v1/key/create/my-key*",
        "/v1/key/generate/my-key*",
        "/v1/key/decrypt/my-key*",
        "/v1/key/describe/my-key*",
    }
    assert set(document["deny"]) == {"/v1/key/generate/my-key-denied*"}
    assert "created_at" in document


async def test_policy_show_on_a_terminal_lists_rules(
    admin_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.modules["aiokes.cli.policy"], "is_terminal", lambda: True)
    lines = (await ainvoke(["policy", "show", "my-app"], admin_env)).stdout.splitlines()
    assert lines[0] == "Allow:"
    assert "  · /v1/key/create/my-key*" in lines
    assert lines[lines.index("Deny:") + 1] == "  · /v1/key/generate/my-key-denied*"
    assert lines[-1].startswith("Created by: ")


async def test_unknown_policy_is_one_error_line(admin_env: dict[str, str]) -> None:
    result = await ainvoke(["policy", "show", "nope"], admin_env)
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: failed to show policy 'nope': policy does not exist\n",
    )
