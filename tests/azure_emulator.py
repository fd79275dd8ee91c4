"""Helpers for running the Azure keystore tests against a Key Vault emulator, or the fake.

Any emulator (or a real vault) that validates tokens as Key Vault does is named by
environment variables, with a real client credential for it (``docs/azure.md`` §7):

* ``AIOKES_TEST_EMULATOR_URL``: the vault endpoint (``https://…``);
* ``AIOKES_TEST_EMULATOR_CA``: a PEM bundle trusting the vault's and the token endpoint's
  certificates (optional when the system trusts them);
* ``AIOKES_TEST_EMULATOR_TENANT_ID``, ``AIOKES_TEST_EMULATOR_CLIENT_ID``,
  ``AIOKES_TEST_EMULATOR_CLIENT_SECRET``: an app registration allowed to use the vault;
* ``AIOKES_TEST_EMULATOR_AUTHORITY_HOST``: the Entra ID authority issuing the tokens
  (optional: Azure public cloud).

Without a credential the emulator tests skip and say which variables are missing.

lowkey-vault, which accepts any bearer token, is found through ``AIOKES_TEST_LOWKEY_URL`` and
``AIOKES_TEST_LOWKEY_CA`` (as exported by ``.ci/lowkey-vault.sh start``). When they are
unset, :func:`start_lowkey` runs that script itself if Java and Maven are installed;
``AIOKES_TEST_LOWKEY_SKIP`` (a reason) turns it off without trying. With lowkey the
credential variables are optional; without them the keystore gets a
:class:`StaticTokenCredential`, which only lowkey accepts.
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
from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import ClientSecretCredential
from azure.keyvault.secrets.aio import SecretClient

from aiokes.keystore.azure import AzureKeyVaultKeystore, AzureKeyVaultSettings

REPOSITORY = Path(__file__).resolve().parent.parent
LOWKEY_SCRIPT = REPOSITORY / ".ci" / "lowkey-vault.sh"
URL_VARIABLE = "AIOKES_TEST_LOWKEY_URL"
CA_VARIABLE = "AIOKES_TEST_LOWKEY_CA"
SKIP_VARIABLE = "AIOKES_TEST_LOWKEY_SKIP"
EMULATOR_URL_VARIABLE = "AIOKES_TEST_EMULATOR_URL"
EMULATOR_CA_VARIABLE = "AIOKES_TEST_EMULATOR_CA"
AUTHORITY_VARIABLE = "AIOKES_TEST_EMULATOR_AUTHORITY_HOST"
# keystore option -> variable; all three or none.
CREDENTIAL_VARIABLES = {
    "tenant_id": "AIOKES_TEST_EMULATOR_TENANT_ID",
    "client_id": "AIOKES_TEST_EMULATOR_CLIENT_ID",
    "client_secret": "AIOKES_TEST_EMULATOR_CLIENT_SECRET",
}
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
    """No emulator to test against: none configured, or lowkey-vault not startable here, or
    the configuration is incomplete; the message says why."""


@dataclass(frozen=True)
class ClientCredential:
    """An app registration's client secret, and the authority that issues its tokens."""

    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)
    authority_host: str = ""

    def keystore_options(self) -> dict[str, Any]:
        options = {
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        if self.authority_host:
            options["authority_host"] = self.authority_host
        return options

    def sdk_credential(self, ca_file: str) -> ClientSecretCredential:
        """The same identity for the Azure SDK used directly; the caller closes it."""
        options: dict[str, Any] = {"connection_verify": ca_file} if ca_file else {}
        if self.authority_host:
            options["authority"] = self.authority_host
        return ClientSecretCredential(self.tenant_id, self.client_id, self.client_secret, **options)


def credential_from_environment() -> ClientCredential | None:
    """The ``AIOKES_TEST_EMULATOR_*`` credential; ``None`` if unset; an error if partial."""
    values = {option: os.environ.get(name, "") for option, name in CREDENTIAL_VARIABLES.items()}
    if not any(values.values()):
        return None
    missing = [CREDENTIAL_VARIABLES[option] for option, value in values.items() if not value]
    if missing:
        raise LowkeyUnavailable(f"incomplete emulator credential: set {', '.join(missing)}")
    return ClientCredential(**values, authority_host=os.environ.get(AUTHORITY_VARIABLE, ""))


def azure_keystore(
    endpoint: str, *, credential: AsyncTokenCredential | None = None, **settings: Any
) -> AzureKeyVaultKeystore:
    """The keystore on ``endpoint`` with these settings, and a test's own credential if given."""
    return AzureKeyVaultKeystore(
        AzureKeyVaultSettings(endpoint=endpoint, **settings), credential=credential
    )


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
    """A vault emulator to test against, and how to authenticate to it."""

    url: str
    ca_file: str
    process_started_here: bool = False
    exports: dict[str, str] = field(default_factory=dict)
    # None: a fixed bearer token, which only an emulator that accepts any token (lowkey) takes.
    credential: ClientCredential | None = None

    def keystore_options(self) -> dict[str, Any]:
        if self.credential is None:
            return {"credential": StaticTokenCredential()}
        return self.credential.keystore_options()

    def sdk_credential(self) -> AsyncTokenCredential:
        if self.credential is None:
            return StaticTokenCredential()
        return self.credential.sdk_credential(self.ca_file)


def lowkey_from_environment() -> RunningLowkey | None:
    """The emulator the environment names, or ``None`` if it names none.

    Raises :class:`LowkeyUnavailable` for an emulator named without the credential it needs.
    """
    credential = credential_from_environment()
    url = os.environ.get(EMULATOR_URL_VARIABLE, "")
    if url:
        if credential is None:
            names = ", ".join(CREDENTIAL_VARIABLES.values())
            raise LowkeyUnavailable(
                f"{EMULATOR_URL_VARIABLE} is set but no credential: set {names} "
                f"(and {AUTHORITY_VARIABLE} for the emulator's token service)"
            )
        return RunningLowkey(url, os.environ.get(EMULATOR_CA_VARIABLE, ""), credential=credential)
    url = os.environ.get(URL_VARIABLE, "")
    if not url:
        return None
    return RunningLowkey(url, os.environ.get(CA_VARIABLE, ""), credential=credential)


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
    credential = credential_from_environment()
    return RunningLowkey(exports[URL_VARIABLE], exports[CA_VARIABLE], True, exports, credential)


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
        return azure_keystore(
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
