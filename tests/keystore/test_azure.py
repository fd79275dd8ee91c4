"""The Azure Key Vault keystore against a vault: the contract suite and KES's data rules.

The contract suite runs against the fake vault (always) and against an independent Key Vault
emulator (``-m azure_emulator``): any emulator named by ``AIOKES_TEST_EMULATOR_*`` with a real
client credential, or lowkey-vault (see ``tests/azure_emulator.py``, ``docs/azure.md`` §7).
The Azure-specific checks run against both: they write to the vault with the Azure SDK
directly, as KES or an operator would, and check what aiokes reads, and the other way round.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from azure.identity.aio import ClientSecretCredential
from azure.keyvault.secrets.aio import SecretClient

from aiokes.errors import KeyExists, KeyNotFound
from aiokes.keystore import Keystore
from aiokes.keystore.azure import AzureKeyVaultKeystore
from bench.fakevault import CLIENT_ID, CLIENT_SECRET, TENANT_ID, FakeVault
from tests.azure_emulator import (
    AZURE_SKIPS,
    LowkeyUnavailable,
    RunningLowkey,
    VaultTarget,
    azure_keystore,
    lowkey_from_environment,
    start_lowkey,
    stop_lowkey,
    ticking_clock,
    wait_for_next_second,
)

from .contract import REALISTIC_RECORD, KeystoreContract

_KEY = base64.b64encode(bytes(range(32))).decode()
# Key records as KES releases stored them (spec §5.7): E5 protobuf, then the JSON eras.
KES_RECORDS = {
    "e5-protobuf": REALISTIC_RECORD.decode(),
    "e1-json": json.dumps({"bytes": _KEY}, separators=(",", ":")),
    "v0.19-json": json.dumps(
        {"bytes": _KEY, "algorithm": "AES256-GCM_SHA256", "created_at": "2021-06-01T10:00:00Z"},
        separators=(",", ":"),
    ),
    "v0.22.3-json": json.dumps(
        {
            "version": "v1",
            "bytes": _KEY,
            "algorithm": "XCHACHA20-POLY1305",
            "created_at": "2023-01-02T03:04:05.123456789Z",
            "created_by": "a" * 64,
        },
        separators=(",", ":"),
    ),
}


@pytest.fixture(scope="session")
def lowkey() -> Iterator[RunningLowkey]:
    """The emulator the environment names, else lowkey-vault started here, else a skip that
    says why."""
    try:
        running = lowkey_from_environment()
    except LowkeyUnavailable as exc:
        pytest.skip(f"Key Vault emulator not usable: {exc}")
    if running is not None:
        yield running
        return
    try:
        running = start_lowkey()
    except LowkeyUnavailable as exc:
        pytest.skip(
            f"lowkey-vault emulator not available: {exc} (or name another emulator and its "
            "credential with AIOKES_TEST_EMULATOR_*, docs/azure.md §7)"
        )
    try:
        yield running
    finally:
        stop_lowkey()


class TestAzureKeystoreOnFakeVault(KeystoreContract):
    skipped_checks = AZURE_SKIPS

    @pytest.fixture
    async def keystore(self, tmp_path: Path) -> AsyncIterator[Keystore]:
        async with FakeVault.running(tmp_path, page_size=3) as vault:
            store = azure_keystore(vault.url, **vault.credentials(), ca_file=vault.ca_file)
            yield store
            await store.close()


@pytest.mark.azure_emulator
class TestAzureKeystoreOnLowkey(KeystoreContract):
    skipped_checks = AZURE_SKIPS

    @pytest.fixture
    def key_prefix(self) -> str:
        return f"t{uuid.uuid4().hex[:10]}-"  # the emulator's vault outlives each test

    @pytest.fixture
    async def keystore(self, lowkey: RunningLowkey) -> AsyncIterator[Keystore]:
        store = azure_keystore(lowkey.url, ca_file=lowkey.ca_file, **lowkey.keystore_options())
        yield store
        await store.close()


@pytest.fixture(params=["fake", pytest.param("lowkey", marks=pytest.mark.azure_emulator)])
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VaultTarget]:
    if request.param == "lowkey":
        emulator: RunningLowkey = request.getfixturevalue("lowkey")
        credential = emulator.sdk_credential()
        try:
            yield VaultTarget(
                emulator.url,
                emulator.ca_file,
                emulator.keystore_options(),
                credential,
                wait_for_next_second,
            )
        finally:
            await credential.close()
        return
    async with FakeVault.running(tmp_path, clock=ticking_clock()) as vault:
        credential = ClientSecretCredential(
            TENANT_ID,
            CLIENT_ID,
            CLIENT_SECRET,
            authority=vault.url,
            connection_verify=vault.ca_file,
        )
        async with credential:
            yield VaultTarget(vault.url, vault.ca_file, vault.credentials(), credential, _no_wait)


@pytest.fixture
async def store(target: VaultTarget) -> AsyncIterator[AzureKeyVaultKeystore]:
    keystore = target.keystore()
    yield keystore
    await keystore.close()


@pytest.fixture
async def sdk(target: VaultTarget) -> AsyncIterator[SecretClient]:
    async with target.sdk_client() as client:
        yield client


async def test_list_sorts_names(target: VaultTarget, store: AzureKeyVaultKeystore) -> None:
    """The contract's sorting check, with names that stay distinct in Key Vault."""
    stems = ["b", "A", "a-2", "c", "0", "Z", "a-10"]
    for stem in stems:
        await store.create(f"{target.key_prefix}{stem}", b"record")
    page = await store.list(target.key_prefix)
    assert page.names == sorted(f"{target.key_prefix}{stem}" for stem in stems)


async def test_get_serves_the_oldest_version_not_the_latest(
    target: VaultTarget, store: AzureKeyVaultKeystore, sdk: SecretClient
) -> None:
    name = f"{target.key_prefix}pinned"
    await store.create(name, REALISTIC_RECORD)
    await target.next_second()
    await sdk.set_secret(name, "a-later-version-written-behind-our-back")
    assert await store.get(name) == REALISTIC_RECORD
    with pytest.raises(KeyExists):
        await store.create(name, b"third")
    assert await store.get(name) == REALISTIC_RECORD


@pytest.mark.parametrize("era", sorted(KES_RECORDS))
async def test_reads_kes_records_written_directly_byte_exact(
    target: VaultTarget, store: AzureKeyVaultKeystore, sdk: SecretClient, era: str
) -> None:
    name = f"{target.key_prefix}kes-{era.replace('.', '-')}"
    await sdk.set_secret(name, KES_RECORDS[era])
    assert await store.get(name) == KES_RECORDS[era].encode()


async def test_writes_what_kes_reads_one_plain_version(
    target: VaultTarget, store: AzureKeyVaultKeystore, sdk: SecretClient
) -> None:
    name = f"{target.key_prefix}written"
    await store.create(name, REALISTIC_RECORD)
    secret = await sdk.get_secret(name)
    assert secret.value == REALISTIC_RECORD.decode()
    assert secret.properties.content_type is None
    assert not secret.properties.tags
    versions = [v async for v in sdk.list_properties_of_secret_versions(name)]
    assert [v.version for v in versions] == [secret.properties.version]


async def test_create_refuses_a_secret_written_by_someone_else(
    target: VaultTarget, store: AzureKeyVaultKeystore, sdk: SecretClient
) -> None:
    name = f"{target.key_prefix}theirs"
    await sdk.set_secret(name, KES_RECORDS["e5-protobuf"])
    with pytest.raises(KeyExists):
        await store.create(name, b"ours")
    assert len([v async for v in sdk.list_properties_of_secret_versions(name)]) == 1
    assert await store.get(name) == KES_RECORDS["e5-protobuf"].encode()


async def test_create_after_delete_recreates_the_name(
    target: VaultTarget, store: AzureKeyVaultKeystore
) -> None:
    name = f"{target.key_prefix}reborn"
    await store.create(name, b"old")
    await store.delete(name)
    with pytest.raises(KeyNotFound):
        await store.get(name)
    await store.create(name, b"new")
    assert await store.get(name) == b"new"


async def test_create_purges_a_soft_deleted_secret_of_the_same_name(
    target: VaultTarget, store: AzureKeyVaultKeystore, sdk: SecretClient
) -> None:
    name = f"{target.key_prefix}soft"
    await sdk.set_secret(name, "deleted-but-recoverable")
    await sdk.delete_secret(name)  # soft delete only, as a KES without purge leaves it
    await store.create(name, b"fresh")
    assert await store.get(name) == b"fresh"
    assert len([v async for v in sdk.list_properties_of_secret_versions(name)]) == 1


async def test_delete_purges_so_nothing_is_left_to_recover(
    target: VaultTarget, store: AzureKeyVaultKeystore, sdk: SecretClient
) -> None:
    name = f"{target.key_prefix}purged"
    await store.create(name, b"value")
    await store.delete(name)
    deleted = [d.name async for d in sdk.list_deleted_secrets()]
    assert name not in deleted


async def _no_wait() -> None:
    return None  # the fake's clock ticks on every write
