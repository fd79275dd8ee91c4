"""Every command exits as ``kes`` does (spec §9, ``minio/kes:cmd/kes/*.go``), because scripts
read the codes: 0 done, 1 any failure (bad flags and arguments included), 2 help or a group
without a command — except ``ls --help``, which kes treats as a failed parse."""

from __future__ import annotations

import click
import pytest

from aiokes.cli import main
from tests.cli.conftest import ainvoke, client_env, invoke
from tests.conftest import RunningServer


def _command_paths(command: click.Command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [path]
    if isinstance(command, click.Group):
        for name, subcommand in command.commands.items():
            if not subcommand.hidden:
                paths.extend(_command_paths(subcommand, (*path, name)))
    return paths


# ``bench`` is aiokes's own (not a kes command): it hands its arguments to bench/'s CLI.
EVERY_COMMAND = [path for path in _command_paths(main) if path[:1] != ("bench",)]


@pytest.mark.parametrize("path", EVERY_COMMAND, ids=lambda path: " ".join(path) or "aiokes")
def test_help_exits_as_kes(path: tuple[str, ...]) -> None:
    result = invoke([*path, "--help"])
    assert result.exit_code == (1 if path == ("ls",) else 2), result.output
    assert "Usage:" in result.output


@pytest.mark.parametrize("path", EVERY_COMMAND, ids=lambda path: " ".join(path) or "aiokes")
def test_an_unknown_flag_exits_1_as_kes(path: tuple[str, ...]) -> None:
    result = invoke([*path, "--no-such-flag"])
    assert result.exit_code == 1, result.output
    assert "--no-such-flag" in result.stderr


# (arguments, exit code): usage and failures that need no server
WITHOUT_SERVER = [
    ([], 2),  # kes: usage, os.Exit(2)
    (["key"], 2),
    (["policy"], 2),
    (["-v"], 0),
    (["--version"], 0),
    (["nope"], 1),  # kes: "nope" is not a kes command
    (["key", "nope"], 1),
    (["policy", "nope"], 1),
    (["key", "import", "my-key"], 1),  # kes: no crypto key specified (issue 11)
    (["key", "import", "my-key", "not base64!"], 1),
    (["key", "import", "my-key", "AAAA", "extra"], 1),
    (["key", "create"], 1),
    (["key", "info"], 1),
    (["key", "info", "a", "b"], 1),
    (["key", "rm"], 1),
    (["key", "encrypt", "k"], 1),
    (["key", "decrypt", "k"], 1),
    (["key", "dek"], 1),
    (["policy", "info"], 1),
    (["policy", "show"], 1),
    (["identity", "of"], 1),
    (["ls", "-i", "-p"], 1),
    (["ls", "a", "b"], 1),
    (["log", "--audit", "--error"], 1),
    (["metric", "--rate", "soon"], 1),
    (["server"], 1),  # kes: no config file specified
    (["identity"], 0),  # kes: a new API key
]


@pytest.mark.parametrize(("args", "code"), WITHOUT_SERVER, ids=lambda x: str(x))
def test_exit_code_without_a_server(args: list[str], code: int) -> None:
    result = invoke(args, {"KES_SERVER": "127.0.0.1:1"})
    assert result.exit_code == code, result.output


# (arguments, exit code) against a running server, as its admin
WITH_SERVER = [
    (["ls"], 0),
    (["key", "create", "made-by-cli"], 0),
    (["key", "info", "k-missing"], 1),  # 404: key does not exist
    (["key", "rm", "k-missing"], 1),
    (["policy", "info", "no-such-policy"], 1),
    (["policy", "ls"], 0),
    (["identity", "info"], 0),
    (["identity", "ls"], 0),
    (["status"], 0),
]


@pytest.mark.parametrize(("args", "code"), WITH_SERVER, ids=lambda x: str(x))
async def test_exit_code_with_a_server(
    args: list[str], code: int, admin_env: dict[str, str]
) -> None:
    result = await ainvoke(args, admin_env)
    assert result.exit_code == code, result.output


async def test_a_server_that_cannot_be_reached_exits_1(admin_env: dict[str, str]) -> None:
    for args in (["status"], ["ls"], ["key", "create", "x"], ["log"], ["metric", "--count", "1"]):
        result = await ainvoke(args, {**admin_env, "KES_SERVER": "127.0.0.1:1"})
        assert result.exit_code == 1, (args, result.output)


async def test_a_refused_caller_exits_1(server: RunningServer) -> None:
    result = await ainvoke(["status"], client_env(server, server.stranger))
    assert result.exit_code == 1, result.output
