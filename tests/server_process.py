"""Real ``aiokes server`` processes (``--workers N``) for tests: the files a server needs,
its config head, starting it as the CLI starts it, and stopping it. Every test module that
runs server processes builds on these, so a change of banner or flags is made once."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trustme

from aiokes.client import Client
from tests.conftest import ClientIdentity, make_identity, write_server_tls

START_TIMEOUT = 60.0
_BANNER_PORT = re.compile(r"API\s+https://[^:]+:(\d+)")


def write_server_files(directory: Path, tls_ca: trustme.CA) -> ClientIdentity:
    """``server.key``/``server.crt`` (for 127.0.0.1 and localhost), ``ca.crt`` and an admin
    identity in ``directory``."""
    write_server_tls(directory, tls_ca)
    return make_identity(directory, "admin")


def config_head(directory: Path, admin: str, *, error_log: bool = False) -> str:
    """The admin, TLS and log sections of a config; tests append keystore, cache, api, …"""
    return textwrap.dedent(
        f"""\
        admin:
          identity: {admin}
        tls:
          key: {directory}/server.key
          cert: {directory}/server.crt
        log:
          audit: off
        """
    ) + ("  error: on\n" if error_log else "")


async def spawn_server(
    config_file: Path,
    *arguments: str,
    prefix: Sequence[str] = (),
    separate_stderr: bool = False,
    env: dict[str, str] | None = None,
    lines: list[str] | None = None,
) -> tuple[asyncio.subprocess.Process, int]:
    """``[prefix…] aiokes server --config FILE ARGUMENTS…`` and the port its banner names;
    the banner lines go to ``lines``. Standard error joins standard output unless
    ``separate_stderr`` (then the test reads the error log from ``process.stderr``)."""
    process = await asyncio.create_subprocess_exec(
        *prefix, sys.executable, "-m", "aiokes", "server", "--config", str(config_file),
        *arguments,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE if separate_stderr else asyncio.subprocess.STDOUT,
        env={**os.environ, **env} if env else None,
    )  # fmt: skip
    try:
        port = await asyncio.wait_for(port_from_banner(process, lines), START_TIMEOUT)
    except BaseException:
        await stop_process(process)
        raise
    return process, port


async def port_from_banner(
    process: asyncio.subprocess.Process, lines: list[str] | None = None
) -> int:
    """The port of the banner's ``API https://…:PORT`` line; the server's output if it ended
    before printing one."""
    assert process.stdout is not None
    seen = [] if lines is None else lines
    while line := (await process.stdout.readline()).decode():
        seen.append(line)
        if match := _BANNER_PORT.match(line):
            return int(match.group(1))
    errors = (await process.stderr.read()).decode() if process.stderr is not None else ""
    raise AssertionError("server exited before listening:\n" + "".join(seen) + errors)


async def stop_process(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL after 30 s (the keeper and workers follow the supervisor)."""
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


@dataclass
class Setup:
    directory: Path
    config_file: Path
    ca_file: str
    admin: ClientIdentity

    def client(self, port: int) -> Client:
        return Client(
            f"https://127.0.0.1:{port}",
            cert_file=self.admin.cert_file,
            key_file=self.admin.key_file,
            ca_file=self.ca_file,
        )


def server_setup(directory: Path, tls_ca: trustme.CA, keystore: str) -> Setup:
    admin = write_server_files(directory, tls_ca)
    config_file = directory / "config.yml"
    config_file.write_text(
        "address: 127.0.0.1:0\n" + config_head(directory, admin.identity) + keystore
    )
    return Setup(directory, config_file, str(directory / "ca.crt"), admin)


async def start_process(setup: Setup, *workers: str) -> tuple[asyncio.subprocess.Process, int]:
    return await spawn_server(setup.config_file, *workers)
