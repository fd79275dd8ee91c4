"""The operator tutorial as an operator types it: real `aiokes` processes in a fresh directory,
the tutorial's config file unchanged (fs keystore), the server started with `--auth off`, the
CLI driven by KES's environment variables; then a restart, and the DEK still decrypts."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tutorial import tutorial_config


def aiokes(directory: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "aiokes", *args],
        cwd=directory,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    aiokes(tmp_path, "identity", "new", "--ip", "127.0.0.1", "localhost")
    aiokes(tmp_path, "identity", "new", "--key=client.key", "--cert=client.crt", "MyApp")
    identity = aiokes(tmp_path, "identity", "of", "client.crt").strip()
    (tmp_path / "config.yml").write_text(tutorial_config(identity))
    return tmp_path


class Servers:
    """`aiokes server` processes in the tutorial directory, stopped with SIGTERM at the end."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.running: list[subprocess.Popen[str]] = []

    def start(self) -> str:
        process = subprocess.Popen(
            [sys.executable, "-m", "aiokes", "server", "--config", "config.yml", "--auth", "off",
             "--addr", "127.0.0.1:0", "--workers", "1"],
            cwd=self.directory, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.running.append(process)
        assert process.stdout is not None
        for line in process.stdout:
            if match := re.match(r"API\s+(https://\S+)", line):
                return match.group(1)
        raise AssertionError("the server exited before it listened")

    def stop_all(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                assert process.wait(timeout=30) == 0
        self.running.clear()


@pytest.fixture
def servers(directory: Path) -> Iterator[Servers]:
    servers = Servers(directory)
    yield servers
    servers.stop_all()


def test_the_tutorial_command_by_command(directory: Path, servers: Servers) -> None:
    assert (directory / "private.key").stat().st_mode & 0o777 == 0o600
    env = {"KES_SERVER": servers.start(), "KES_CLIENT_CERT": "client.crt"}
    env["KES_CLIENT_KEY"] = "client.key"

    aiokes(directory, "key", "create", "my-key-1", "-k", env=env)
    dek = json.loads(aiokes(directory, "key", "dek", "my-key-1", "-k", env=env))

    assert len(base64.b64decode(dek["plaintext"])) == 32
    assert len(base64.b64decode(dek["ciphertext"])) == 76
    assert (directory / "keys" / "my-key-1").stat().st_mode & 0o777 == 0o600

    servers.stop_all()  # SIGTERM: a graceful stop exits 0
    env["KES_SERVER"] = servers.start()
    plain = json.loads(
        aiokes(directory, "key", "decrypt", "my-key-1", dek["ciphertext"], "-k", env=env)
    )
    assert plain["plaintext"] == dek["plaintext"]


def test_the_policy_keeps_the_tutorial_client_to_its_keys(
    directory: Path, servers: Servers
) -> None:
    env = {"KES_SERVER": servers.start(), "KES_CLIENT_CERT": "client.crt"}
    env["KES_CLIENT_KEY"] = "client.key"
    result = subprocess.run(
        [sys.executable, "-m", "aiokes", "key", "create", "other-key", "-k"],
        cwd=directory, env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().endswith("not authorized: insufficient permissions")
    assert not (directory / "keys" / "other-key").exists()
