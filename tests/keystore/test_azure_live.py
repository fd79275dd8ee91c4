"""The keystore contract against a real Azure Key Vault, when one is configured.

Set ``AIOKES_TEST_AZURE_ENDPOINT`` (``https://<vault>.vault.azure.net``),
``AIOKES_TEST_AZURE_TENANT_ID``, ``AIOKES_TEST_AZURE_CLIENT_ID`` and
``AIOKES_TEST_AZURE_CLIENT_SECRET`` for an application with the secret permissions Get, List,
Set, Delete and Purge. Every test works under its own random name prefix and deletes (and
purges) what it created. Without the variables, the tests are skipped.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import pytest

from aiokes.errors import AiokesError
from aiokes.keystore import Keystore
from aiokes.keystore.azure import AzureKeyVaultKeystore
from tests.azure_emulator import AZURE_SKIPS, azure_keystore

from .contract import KeystoreContract

_VARIABLES = {
    "endpoint": "AIOKES_TEST_AZURE_ENDPOINT",
    "tenant_id": "AIOKES_TEST_AZURE_TENANT_ID",
    "client_id": "AIOKES_TEST_AZURE_CLIENT_ID",
    "client_secret": "AIOKES_TEST_AZURE_CLIENT_SECRET",
}
_SETTINGS = {option: os.environ.get(variable, "") for option, variable in _VARIABLES.items()}

pytestmark = [
    pytest.mark.azure_live,
    pytest.mark.skipif(
        not all(_SETTINGS.values()),
        reason="set " + ", ".join(_VARIABLES.values()) + " to test against a real Key Vault",
    ),
]


class TestAzureKeystoreOnRealKeyVault(KeystoreContract):
    skipped_checks = AZURE_SKIPS
    concurrent_creates = 5  # Key Vault allows 300 secret creations per 10 s per vault

    @pytest.fixture
    def key_prefix(self) -> str:
        return f"aiokes-test-{uuid.uuid4().hex[:10]}-"

    @pytest.fixture
    async def keystore(self, key_prefix: str) -> AsyncIterator[Keystore]:
        store = _live_keystore()
        yield store
        await store.close()
        await _delete_everything_under(key_prefix)


def _live_keystore() -> AzureKeyVaultKeystore:
    return azure_keystore(
        _SETTINGS["endpoint"],
        tenant_id=_SETTINGS["tenant_id"],
        client_id=_SETTINGS["client_id"],
        client_secret=_SETTINGS["client_secret"],
    )


async def _delete_everything_under(prefix: str) -> None:
    """Best effort: a leftover costs nothing but a name in the test vault."""
    cleaner = _live_keystore()
    try:
        for name in (await cleaner.list(prefix)).names:
            with contextlib.suppress(AiokesError):
                await cleaner.delete(name)
    finally:
        await cleaner.close()
