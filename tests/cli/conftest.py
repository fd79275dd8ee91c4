"""Running the ``aiokes`` command in-process with click's runner.

Commands that talk to a server call ``asyncio.run`` themselves, so they run in a worker thread
while the test's event loop keeps serving the fixture server. Every invocation starts from an
environment without any KES variable, then sets those the test gives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest
from click.testing import CliRunner, Result

from aiokes.cli import main
from aiokes.client.env import (
    API_KEY_VARIABLES,
    CA_VARIABLES,
    CERT_FILE_VARIABLES,
    KEY_FILE_VARIABLES,
    SERVER_VARIABLES,
)
from tests.conftest import ClientIdentity, RunningServer

_KES_VARIABLES = (
    SERVER_VARIABLES + API_KEY_VARIABLES + KEY_FILE_VARIABLES + CERT_FILE_VARIABLES + CA_VARIABLES
)


def invoke(
    args: Sequence[str], env: Mapping[str, str] | None = None, input: str | None = None
) -> Result:
    environment: dict[str, str | None] = dict.fromkeys(_KES_VARIABLES)
    environment.update(env or {})
    return CliRunner().invoke(main, list(args), env=environment, input=input)


async def ainvoke(
    args: Sequence[str], env: Mapping[str, str] | None = None, input: str | None = None
) -> Result:
    return await asyncio.to_thread(invoke, args, env, input)


def client_env(server: RunningServer, who: ClientIdentity | None = None) -> dict[str, str]:
    """The tutorial's variables for ``who`` (default: the admin), trusting the test CA."""
    who = who or server.admin
    return {
        "KES_SERVER": server.url,
        "KES_CLIENT_CERT": who.cert_file,
        "KES_CLIENT_KEY": who.key_file,
        "MINIO_KMS_KES_CAPATH": server.ca_file,
    }


@pytest.fixture
def admin_env(server: RunningServer) -> dict[str, str]:
    return client_env(server)
