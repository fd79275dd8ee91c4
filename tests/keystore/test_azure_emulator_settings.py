"""The emulator suite's settings (issue 12, item 10): endpoint, CA bundle and a real client
credential come from ``AIOKES_TEST_EMULATOR_*``; without a credential the suite skips and
says which variables are missing. The fake vault stands in for an emulator that validates
tokens, as Key Vault does (it refuses any token it did not issue)."""

from __future__ import annotations

import pytest
from azure.keyvault.secrets.aio import SecretClient

from bench.fakevault import CLIENT_ID, CLIENT_SECRET, TENANT_ID, FakeVault
from tests.azure_emulator import (
    CREDENTIAL_VARIABLES,
    LowkeyUnavailable,
    StaticTokenCredential,
    azure_keystore,
    lowkey_from_environment,
)

ALL_VARIABLES = [
    "AIOKES_TEST_EMULATOR_URL",
    "AIOKES_TEST_EMULATOR_CA",
    "AIOKES_TEST_EMULATOR_AUTHORITY_HOST",
    "AIOKES_TEST_LOWKEY_URL",
    "AIOKES_TEST_LOWKEY_CA",
    *CREDENTIAL_VARIABLES.values(),
]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ALL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _point_at(monkeypatch: pytest.MonkeyPatch, vault: FakeVault, **overrides: str) -> None:
    settings = {
        "AIOKES_TEST_EMULATOR_URL": vault.url,
        "AIOKES_TEST_EMULATOR_CA": str(vault.ca_file),
        "AIOKES_TEST_EMULATOR_TENANT_ID": TENANT_ID,
        "AIOKES_TEST_EMULATOR_CLIENT_ID": CLIENT_ID,
        "AIOKES_TEST_EMULATOR_CLIENT_SECRET": CLIENT_SECRET,
        "AIOKES_TEST_EMULATOR_AUTHORITY_HOST": vault.url,
        **overrides,
    }
    for name, value in settings.items():
        if value:
            monkeypatch.setenv(name, value)


def test_nothing_configured_means_no_emulator() -> None:
    assert lowkey_from_environment() is None


async def test_an_emulator_without_a_credential_is_skipped_with_the_reason(
    vault: FakeVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point_at(monkeypatch, vault, **dict.fromkeys(CREDENTIAL_VARIABLES.values(), ""))
    with pytest.raises(LowkeyUnavailable) as raised:
        lowkey_from_environment()
    for name in CREDENTIAL_VARIABLES.values():
        assert name in str(raised.value)


async def test_a_partial_credential_names_what_is_missing(
    vault: FakeVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point_at(monkeypatch, vault, AIOKES_TEST_EMULATOR_CLIENT_SECRET="")
    with pytest.raises(LowkeyUnavailable, match=r"set AIOKES_TEST_EMULATOR_CLIENT_SECRET$"):
        lowkey_from_environment()


async def test_the_suite_authenticates_with_the_configured_credential(
    vault: FakeVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point_at(monkeypatch, vault)
    emulator = lowkey_from_environment()
    assert emulator is not None
    assert (emulator.url, emulator.ca_file) == (vault.url, str(vault.ca_file))
    store = azure_keystore(emulator.url, ca_file=emulator.ca_file, **emulator.keystore_options())
    credential = emulator.sdk_credential()
    assert not isinstance(credential, StaticTokenCredential)
    try:
        await store.create("written-by-aiokes", b"record")
        async with SecretClient(
            emulator.url,
            credential,
            verify_challenge_resource=False,
            connection_verify=emulator.ca_file,
        ) as sdk:
            assert (await sdk.get_secret("written-by-aiokes")).value == "record"
    finally:
        await store.close()
        await credential.close()
    assert vault.tokens_issued == 2  # one real token each for the keystore and the SDK


async def test_lowkey_without_a_credential_keeps_its_any_token_credential(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIOKES_TEST_LOWKEY_URL", "https://127.0.0.1:1")
    emulator = lowkey_from_environment()
    assert emulator is not None
    assert isinstance(emulator.keystore_options()["credential"], StaticTokenCredential)
