"""Helpers for running the Azure keystore tests against a Key Vault: lowkey-vault or the fake.

lowkey-vault is found through ``AIOKES_TEST_LOWKEY_URL`` and ``AIOKES_TEST_LOWKEY_CA`` (as
exported by ``.ci/lowkey-vault.sh start``). When they are unset, :func:`start_lowkey` runs
that script itself if Java and Maven are installed; ``AIOKES_TEST_LOWKEY_SKIP`` (a reason)
turns the emulator tests off without trying.

lowkey accepts any bearer token, so the keystore gets a :class:`StaticTokenCredential`.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.core.credentials import AccessToken
from azure.keyvault.secrets.aio import SecretClient

from aiokes.keystore.azure import AzureKeyVaultKeystore

REPOSITORY = Path(__file__).resolve().parent.parent
LOWKEY_SCRIPT = REPOSITORY / ".ci" / "lowkey-vault.sh"
URL_VARIABLE = "AIOKES_TEST_LOWKEY_URL"
CA_VARIABLE = "AIOKES_TEST_LOWKEY_CA"
SKIP_VARIABLE = "AIOKES_TEST_LOWKEY_SKIP"
# What `.ci/lowkey-vault.sh start` exits with when lowkey-vault cannot be had here.
UNAVAILABLE_EXIT_CODE = 3
_START_TIMEOUT = 300  # seconds: a first run downloads the jar

# Contract checks that cannot hold for Key Vault, whichever vault it is.
AZURE_SKIPS = {
    "test_binary_values_round_trip": "Key Vault secrets hold text; KES key records are ASCII",
    "test_names_differing_only_in_case_are_distinct": (
        "Key Vault names are case-insensitive (so they are for KES on Azure too)"
    ),
    "test_list_is_sorted": "uses 'a' and 'A', one name in Key Vault; see test_list_sorts_names",
}


class LowkeyUnavailable(Exception):
    """lowkey-vault is neither running nor startable here; the message says why."""


class StaticTokenCredential:
    """An async token credential that always returns one far-future token (lowkey takes any)."""

    def __init__(self, token: str = "aiokes-test-token") -> None:
        self._token = token
        self.requests = 0

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.requests += 1
        return AccessToken(self._token, int(time.time()) + 24 * 3600)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> StaticTokenCredential:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None


@dataclass
class RunningLowkey:
    url: str
    ca_file: str
    process_started_here: bool = False
    exports: dict[str, str] = field(default_factory=dict)


def lowkey_from_environment() -> RunningLowkey | None:
    url = os.environ.get(URL_VARIABLE, "")
    if not url:
        return None
    return RunningLowkey(url=url, ca_file=os.environ.get(CA_VARIABLE, ""))


def start_lowkey() -> RunningLowkey:
    """Start lowkey-vault with the CI script; raise :class:`LowkeyUnavailable` if it cannot be."""
    if reason := os.environ.get(SKIP_VARIABLE):
        raise LowkeyUnavailable(reason)
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        raise LowkeyUnavailable(f"lowkey-vault needs {' and '.join(missing)}, not installed")
    result = subprocess.run(
        ["bash", str(LOWKEY_SCRIPT), "start"],
        capture_output=True,
        text=True,
        timeout=_START_TIMEOUT,
        check=False,
    )
    if result.returncode == UNAVAILABLE_EXIT_CODE:
        raise LowkeyUnavailable(_last_line(result.stderr))
    if result.returncode != 0:
        raise RuntimeError(f"{LOWKEY_SCRIPT} start failed:\n{result.stderr}")
    exports = _parse_exports(result.stdout)
    return RunningLowkey(exports[URL_VARIABLE], exports[CA_VARIABLE], True, exports)


def stop_lowkey() -> None:
    subprocess.run(["bash", str(LOWKEY_SCRIPT), "stop"], check=False, timeout=60)


def ticking_clock(start: int | None = None) -> Callable[[], int]:
    """A clock for the fake vault that moves one second per reading: no two writes tie."""
    counter = itertools.count(int(time.time()) if start is None else start)
    return lambda: next(counter)


async def wait_for_next_second() -> None:
    """Make the next write to a real-clock vault get a later ``created`` (1 s resolution)."""
    import asyncio  # local: only the emulator path needs it

    now = time.time()
    await asyncio.sleep(int(now) + 1.05 - now)


@dataclass
class VaultTarget:
    """A vault the Azure-specific checks run against, and how to write to it directly."""

    url: str
    ca_file: str
    keystore_options: dict[str, Any]
    sdk_credential: Any
    next_second: Callable[[], Awaitable[None]]
    key_prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}-")

    def keystore(self, **options: Any) -> AzureKeyVaultKeystore:
        return AzureKeyVaultKeystore(
            self.url, ca_file=self.ca_file, **{**self.keystore_options, **options}
        )

    def sdk_client(self) -> SecretClient:
        """The Azure SDK used directly, as another program writing to the vault would."""
        return SecretClient(
            self.url,
            self.sdk_credential,
            api_version="7.5",
            verify_challenge_resource=False,
            connection_verify=self.ca_file,
        )


def _parse_exports(stdout: str) -> dict[str, str]:
    exports = {}
    for line in stdout.splitlines():
        if line.startswith("export ") and "=" in line:
            name, _, value = line.removeprefix("export ").partition("=")
            exports[name] = value.strip().strip("'\"")
    return exports


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "lowkey-vault is not available"
