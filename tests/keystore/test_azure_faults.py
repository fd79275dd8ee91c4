"""The Azure keystore when Key Vault misbehaves: throttling, 5xx, slowness, outages, races.

Everything here runs against the fake vault of ``bench/fakevault/vault.py`` (real HTTPS, the
real Azure SDK and azure-identity on the client side), which can do what an emulator
cannot. Time bounds are generous ``asyncio.timeout`` guards, not performance thresholds.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from aiokes.errors import (
    APIError,
    KeyExists,
    KeyNotFound,
    KeystoreError,
    KeystoreUnreachable,
)
from aiokes.keystore.azure import AzureKeyVaultKeystore
from bench.fakevault import FakeVault
from tests.azure_emulator import StaticTokenCredential, azure_keystore, ticking_clock

VERSIONS = ("GET", "/secrets/{name}/versions")
GET_VERSION = ("GET", "/secrets/{name}/{version}")
PUT = ("PUT", "/secrets/{name}")
PURGE = ("DELETE", "/deletedsecrets/{name}")
TOKEN = ("POST", "/{tenant}/oauth2/v2.0/token")
RECORD = b"CiQKIMiHG7XrN94FuwblJJor4f7f6rbqAl7DwsLaiIoyz0D2EAESJAog"  # any ASCII record

MakeStore = Callable[..., AzureKeyVaultKeystore]


@pytest.fixture
async def vault(tmp_path: Path) -> AsyncIterator[FakeVault]:
    async with FakeVault.running(tmp_path, page_size=2, clock=ticking_clock()) as fake:
        yield fake


@pytest.fixture
async def make_store(vault: FakeVault) -> AsyncIterator[MakeStore]:
    """Keystores on the fake with a fast backoff (tests override any option)."""
    stores: list[AzureKeyVaultKeystore] = []

    def make(**options: Any) -> AzureKeyVaultKeystore:
        settings = {**vault.credentials(), "ca_file": vault.ca_file, "retry_max_delay": 0.01}
        store = azure_keystore(vault.url, **{**settings, **options})
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.close()


@pytest.fixture
def store(make_store: MakeStore) -> AzureKeyVaultKeystore:
    return make_store()


# -- retries -----------------------------------------------------------------------------------


async def test_throttling_without_retry_after_is_retried_with_backoff(
    vault: FakeVault, store: AzureKeyVaultKeystore
) -> None:
    vault.set_version("k", "record")
    await _authenticated(store, vault)
    vault.faults.throttle_next = 2
    assert await store.get("k") == b"record"
    assert vault.count(*VERSIONS) == 3


async def test_throttling_waits_as_long_as_retry_after_says(
    vault: FakeVault, make_store: MakeStore
) -> None:
    store = make_store(retry_max_delay=5)
    vault.set_version("k", "record")
    await _authenticated(store, vault)  # so that only the throttled request is timed
    vault.faults.throttle_next, vault.faults.retry_after = 1, "1"
    started = time.monotonic()
    assert await store.get("k") == b"record"
    assert time.monotonic() - started >= 0.9  # waited the 1 s asked for, not the 0.4 s backoff


async def test_retry_after_beyond_the_maximum_delay_fails_at_once(
    vault: FakeVault, make_store: MakeStore
) -> None:
    store = make_store(retry_max_delay=1)
    vault.faults.throttle_next, vault.faults.retry_after = 1, "3600"
    with pytest.raises(KeystoreError, match="HTTP 429 Throttled"):
        await store.get("k")
    assert vault.count(*VERSIONS) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_are_retried_then_succeed(
    vault: FakeVault, store: AzureKeyVaultKeystore, status: int
) -> None:
    vault.faults.fail_next, vault.faults.fail_status = 2, status
    await store.create("k", RECORD)
    assert vault.values("k") == [RECORD.decode()]


async def test_exhausted_retry_budget_is_a_keystore_error_naming_the_failure(
    vault: FakeVault, make_store: MakeStore
) -> None:
    store = make_store(max_retries=2)
    vault.faults.throttle_next = 1000
    async with asyncio.timeout(10):
        with pytest.raises(KeystoreError) as raised:
            await store.get("my-key")
    assert not isinstance(raised.value, KeystoreUnreachable)
    assert vault.count(*VERSIONS) == 3  # the first try and max_retries=2 retries
    message = str(raised.value)
    assert f"azure key vault {vault.url.removeprefix('https://')}: get key 'my-key'" in message
    assert "HTTP 429 Throttled" in message


async def test_a_put_retried_after_a_lost_answer_still_creates_the_key(
    vault: FakeVault, store: AzureKeyVaultKeystore
) -> None:
    vault.faults.lose_put_responses = 1  # the first version is stored, its answer lost
    await store.create("k", RECORD)
    assert vault.values("k") == [RECORD.decode(), RECORD.decode()]
    assert await store.get("k") == RECORD


# -- timeouts and outages ----------------------------------------------------------------------


async def test_slow_vault_times_out_as_unreachable(vault: FakeVault, make_store: MakeStore) -> None:
    store = make_store(timeout=0.2, max_retries=1)
    vault.faults.delay = 60
    async with asyncio.timeout(10):
        with pytest.raises(KeystoreUnreachable, match="get key 'k'"):
            await store.get("k")
        with pytest.raises(KeystoreUnreachable, match="status"):
            await store.status()


async def test_closed_port_is_unreachable_for_operations_and_status() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = azure_keystore(
        f"https://127.0.0.1:{port}",
        credential=StaticTokenCredential(),
        max_retries=1,
        retry_max_delay=0.01,
    )
    try:
        async with asyncio.timeout(10):
            with pytest.raises(KeystoreUnreachable, match="not reachable"):
                await store.create("k", RECORD)
            with pytest.raises(KeystoreUnreachable, match="not reachable"):
                await store.status()
    finally:
        await store.close()


async def test_a_vault_that_accepts_but_never_speaks_tls_times_out() -> None:
    released = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await released.wait()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = azure_keystore(
        f"https://127.0.0.1:{port}",
        credential=StaticTokenCredential(),
        timeout=0.2,
        max_retries=1,
        retry_max_delay=0.01,
    )
    try:
        async with asyncio.timeout(10):
            with pytest.raises(KeystoreUnreachable, match="get key 'k'"):
                await store.get("k")
            with pytest.raises(KeystoreUnreachable, match="status"):
                await store.status()
    finally:
        await store.close()
        released.set()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("token_status", [400, 401, 500])
async def test_token_endpoint_failure_is_an_authentication_error(
    vault: FakeVault, make_store: MakeStore, token_status: int
) -> None:
    store = make_store(max_retries=2)
    vault.faults.token_failures, vault.faults.token_status = 1000, token_status
    async with asyncio.timeout(10):
        with pytest.raises(KeystoreError, match="get key 'k': authentication failed") as raised:
            await store.get("k")
    assert not isinstance(raised.value, KeystoreUnreachable)
    assert "fake-client-secret" not in str(raised.value)
    assert vault.count(*TOKEN) == (3 if token_status >= 500 else 1)  # bounded retries


async def test_status_answers_without_authenticating(
    vault: FakeVault, store: AzureKeyVaultKeystore
) -> None:
    state = await store.status()  # the fake answers 401: reachable
    assert state.latency > 0
    assert vault.tokens_issued == 0


# -- one token, one session --------------------------------------------------------------------


async def test_many_operations_use_one_token_and_pooled_connections(
    vault: FakeVault, store: AzureKeyVaultKeystore
) -> None:
    for i in range(10):
        await store.create(f"key-{i}", RECORD)
        assert await store.get(f"key-{i}") == RECORD
    await store.list("")
    await store.delete("key-0")
    assert vault.tokens_issued == 1
    assert vault.count(*TOKEN) == 1
    assert len(vault.connections) <= 2  # keep-alive: not one connection per request


async def test_close_is_idempotent_and_final(store: AzureKeyVaultKeystore) -> None:
    await store.create("k", RECORD)
    await store.close()
    await store.close()
    with pytest.raises(KeystoreError, match="closed"):
        await store.get("k")


# -- the create race ---------------------------------------------------------------------------


async def test_losing_a_race_to_an_older_version_answers_key_exists(
    vault: FakeVault, store: AzureKeyVaultKeystore
) -> None:
    vault.compete("k", "the-winner", created_delta=-1)
    with pytest.raises(KeyExists):
        await store.create("k", RECORD)
    assert vault.values("k") == ["the-winner", RECORD.decode()]  # ours stays, unused
    assert await store.get("k") == b"the-winner"


@pytest.mark.parametrize(("competitor_id", "we_win"), [("0" * 32, False), ("f" * 32, True)])
async def test_a_same_second_race_is_settled_by_the_smaller_version_id(
    vault: FakeVault, store: AzureKeyVaultKeystore, competitor_id: str, we_win: bool
) -> None:
    vault.compete("k", "competitor", created_delta=1, version=competitor_id)  # = our second
    if we_win:
        await store.create("k", RECORD)
    else:
        with pytest.raises(KeyExists):
            await store.create("k", RECORD)
    assert await store.get("k") == (RECORD if we_win else b"competitor")


async def test_two_servers_racing_have_exactly_one_winner(
    vault: FakeVault, make_store: MakeStore
) -> None:
    first, second = make_store(), make_store()  # separate instances: no shared lock
    outcomes = await asyncio.gather(
        first.create("k", b"first"), second.create("k", b"second"), return_exceptions=True
    )
    winners = [
        value
        for value, outcome in zip([b"first", b"second"], outcomes, strict=True)
        if outcome is None
    ]
    assert len(winners) == 1
    assert any(isinstance(outcome, KeyExists) for outcome in outcomes)
    assert await first.get("k") == await second.get("k") == winners[0]


# -- soft delete and purge ---------------------------------------------------------------------


async def test_create_purges_a_soft_deleted_secret_then_writes(
    vault: FakeVault, store: AzureKeyVaultKeystore
) -> None:
    vault.set_version("k", "old")
    vault.soft_delete("k")
    await store.create("k", RECORD)
    assert vault.values("k") == [RECORD.decode()]
    assert vault.count(*PURGE) == 1


async def test_create_handles_lowkeys_conflict_codes(
    vault: FakeVault, store: AzureKeyVaultKeystore
) -> None:
    vault.faults.lowkey_errors = True  # 409 AlreadyExistsException, no innererror
    vault.set_version("k", "old")
    vault.soft_delete("k")
    await store.create("k", RECORD)
    assert await store.get("k") == RECORD


async def test_create_waits_while_the_name_is_still_being_deleted(
    vault: FakeVault, store: AzureKeyVaultKeystore
) -> None:
    vault.set_version("k", "old")
    vault.soft_delete("k", lag=2)  # 409 ObjectIsBeingDeleted and purge 404, for a while
    await store.create("k", RECORD)
    assert await store.get("k") == RECORD
    assert vault.count(*PUT) == 3
    assert vault.count(*PURGE) == 2


async def test_create_over_an_unpurgeable_soft_deleted_secret_tells_what_to_do(
    vault: FakeVault, store: AzureKeyVaultKeystore
) -> None:
    vault.faults.purge_forbidden = True
    vault.set_version("k", "old")
    vault.soft_delete("k")
    with pytest.raises(KeystoreError) as raised:
        await store.create("k", RECORD)
    message = str(raised.value)
    assert "create key 'k'" in message
    assert "soft-deleted" in message
    assert "recover" in message
    assert "purge" in message
    assert "HTTP 403 Forbidden/ForbiddenByPolicy" in message
    assert vault.is_soft_deleted("k")


async def test_delete_soft_deletes_and_purges(
    vault: FakeVault, store: AzureKeyVaultKeystore
) -> None:
    await store.create("k", RECORD)
    await store.delete("k")
    assert not vault.is_soft_deleted("k")
    assert vault.values("k") == []


async def test_delete_purges_once_the_deletion_shows(
    vault: FakeVault, store: AzureKeyVaultKeystore
) -> None:
    vault.faults.deletion_lag = 2
    await store.create("k", RECORD)
    await store.delete("k")
    assert vault.count(*PURGE) == 3
    assert not vault.is_soft_deleted("k")


async def test_delete_without_purge_permission_leaves_it_soft_deleted(
    vault: FakeVault, store: AzureKeyVaultKeystore
) -> None:
    vault.faults.purge_forbidden = True
    await store.create("k", RECORD)
    await store.delete("k")
    assert vault.is_soft_deleted("k")
    with pytest.raises(KeyNotFound):
        await store.get("k")


async def test_delete_of_a_missing_key_is_key_not_found(store: AzureKeyVaultKeystore) -> None:
    with pytest.raises(KeyNotFound):
        await store.delete("missing")


# -- reading -----------------------------------------------------------------------------------


async def test_get_follows_every_page_of_versions(
    vault: FakeVault, store: AzureKeyVaultKeystore
) -> None:
    for created, version in [(50, "a" * 32), (40, "f" * 32), (10, "c" * 32), (30, "0" * 32)]:
        vault.set_version("k", f"made-at-{created}", created=created, version=version)
    await _authenticated(store, vault)
    assert await store.get("k") == b"made-at-10"  # on the second of two pages
    assert vault.count(*VERSIONS) == 2


@pytest.mark.parametrize("listing_status", [404, 200])
async def test_get_of_a_missing_key_is_key_not_found(
    vault: FakeVault, store: AzureKeyVaultKeystore, listing_status: int
) -> None:
    vault.faults.missing_versions_status = listing_status  # 404, or 200 with no versions
    with pytest.raises(KeyNotFound):
        await store.get("missing")


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [({"enabled": False}, "is disabled"), ({"expires": 1}, "expired")],
)
async def test_get_refuses_an_unusable_oldest_version(
    vault: FakeVault, store: AzureKeyVaultKeystore, attributes: dict[str, Any], reason: str
) -> None:
    vault.set_version("k", "unusable", created=10, **attributes)
    vault.set_version("k", "newer", created=20)
    with pytest.raises(KeystoreError, match=reason):
        await store.get("k")
    assert vault.count(*GET_VERSION) == 0


async def test_create_over_a_disabled_secret_is_an_error_not_key_exists(
    vault: FakeVault, store: AzureKeyVaultKeystore
) -> None:
    vault.set_version("k", "disabled", enabled=False)
    with pytest.raises(KeystoreError, match="HTTP 403 Forbidden/SecretDisabled"):
        await store.create("k", RECORD)
    assert vault.values("k") == ["disabled"]


async def test_list_follows_every_page(vault: FakeVault, store: AzureKeyVaultKeystore) -> None:
    names = [f"key-{i}" for i in range(7)]
    for name in reversed(names):
        vault.set_version(name, "record")
    await _authenticated(store, vault)
    assert (await store.list("")).names == names
    assert vault.count("GET", "/secrets") == 4


async def test_errors_never_carry_the_record_or_the_token(
    vault: FakeVault, make_store: MakeStore
) -> None:
    store = make_store(max_retries=0)
    secret_record = b"VERY-SECRET-RECORD-TEXT"
    await _authenticated(store, vault)
    vault.faults.fail_next = 1
    with pytest.raises(KeystoreError) as raised:
        await store.create("k", secret_record)
    assert "HTTP 503" in str(raised.value)
    assert secret_record.decode() not in str(raised.value)
    assert "fake-token" not in str(raised.value)


# -- names, settings ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["with_underscore", "_", "a" * 128])
async def test_names_key_vault_cannot_store_are_a_400_before_any_request(
    vault: FakeVault, store: AzureKeyVaultKeystore, name: str
) -> None:
    for operation in (store.create(name, RECORD), store.get(name), store.delete(name)):
        with pytest.raises(APIError) as raised:
            await operation
        assert raised.value.status == 400
        assert "not supported by the Azure Key Vault keystore" in raised.value.message
        assert "only letters, digits and '-'" in raised.value.message
    assert sum(vault.requests.values()) == 0


async def test_longest_name_key_vault_allows_works(store: AzureKeyVaultKeystore) -> None:
    await store.create("a" * 127, RECORD)
    assert await store.get("a" * 127) == RECORD


async def test_requests_carry_the_pinned_api_version(
    vault: FakeVault, make_store: MakeStore
) -> None:
    await make_store().list("")
    assert vault.api_versions == {"7.5"}
    await make_store(api_version="7.6").list("")
    assert vault.api_versions == {"7.5", "7.6"}


@pytest.mark.parametrize(
    ("options", "credential_type"),
    [
        ({"tenant_id": "t", "client_id": "c", "client_secret": "s"}, "ClientSecretCredential"),
        ({"managed_identity_client_id": "m"}, "ManagedIdentityCredential"),
        ({}, "DefaultAzureCredential"),
    ],
)
async def test_credential_follows_the_configured_method(
    options: dict[str, Any], credential_type: str
) -> None:
    store = azure_keystore("https://myvault.vault.azure.net", **options)
    await store.open()  # builds, sends nothing
    try:
        assert store._connection is not None
        assert type(store._connection.credential).__name__ == credential_type
    finally:
        await store.close()


async def test_create_gives_up_on_a_name_that_stays_blocked(
    vault: FakeVault, store: AzureKeyVaultKeystore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("aiokes.keystore.azure.keystore._PAUSE_MAX", 0.001)  # keep the test fast
    vault.set_version("k", "old")
    vault.soft_delete("k", lag=10_000)  # never finishes deleting
    with pytest.raises(KeystoreError, match="soft-deleted secret and could not be purged"):
        await store.create("k", RECORD)
    assert vault.count(*PUT) == 8  # bounded: _RECREATE_ATTEMPTS


async def _authenticated(store: AzureKeyVaultKeystore, vault: FakeVault) -> None:
    """Get the challenge and token behind us, then start counting requests afresh."""
    await store.list("")
    vault.requests.clear()
