"""What the fake Key Vault holds: secrets with their versions and soft deletion, the faults it
is told to inject, and the changes a test makes "behind the keystore's back" (another writer,
a deletion by someone else, a vault emptied).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Competitor", "Faults", "Secret", "SecretStore", "Version"]


@dataclass
class Faults:
    """Switches for what the fake vault does wrong. Counters decrease as they fire."""

    throttle_next: int = 0  # answer this many vault requests with 429
    retry_after: str | None = None  # the 429's Retry-After header, None for none
    fail_next: int = 0  # answer this many vault requests with fail_status
    fail_status: int = 503
    delay: float = 0.0  # seconds before every vault answer (the status probe included)
    token_failures: int = 0  # answer this many token requests with token_status
    token_status: int = 401
    purge_forbidden: bool = False  # purge answers 403 ForbiddenByPolicy
    deletion_lag: int = 0  # deleted-secret requests that 404 (PUTs 409) after a delete
    missing_versions_status: int = 404  # versions listing of an unknown secret: 404 or 200
    lowkey_errors: bool = False  # error codes as lowkey-vault sends them (Java class names)
    lose_put_responses: int = 0  # store the PUT's version, then answer 503 (a lost response)
    stall_writes: bool = False  # PUTs never get an answer (until the fake stops)


@dataclass
class Version:
    id: str
    value: str
    created: int
    enabled: bool = True
    not_before: int | None = None
    expires: int | None = None


@dataclass
class Secret:
    name: str
    versions: list[Version] = field(default_factory=list)
    deleted_at: int | None = None
    lag: int = 0  # deleted-secret requests left before the deletion is visible


@dataclass
class Competitor:
    value: str
    created_delta: int
    version: str | None


class SecretStore:
    """The vault's secrets by lower-cased name (Key Vault names are case-insensitive)."""

    def __init__(self, clock: Callable[[], int]) -> None:
        self._clock = clock
        self._secrets: dict[str, Secret] = {}
        self._competitors: dict[str, Competitor] = {}

    def set_version(
        self,
        name: str,
        value: str,
        *,
        created: int | None = None,
        version: str | None = None,
        enabled: bool = True,
        expires: int | None = None,
    ) -> str:
        """Add a version as another writer would; returns its id."""
        secret = self._secrets.setdefault(name.lower(), Secret(name))
        entry = Version(
            id=version or secrets.token_hex(16),
            value=value,
            created=self._clock() if created is None else created,
            enabled=enabled,
            expires=expires,
        )
        secret.versions.append(entry)
        return entry.id

    def values(self, name: str) -> list[str]:
        """The values of all live versions, oldest first."""
        secret = self._secrets.get(name.lower())
        if secret is None or secret.deleted_at is not None:
            return []
        return [v.value for v in sorted(secret.versions, key=lambda v: (v.created, v.id))]

    def soft_delete(self, name: str, *, lag: int = 0) -> None:
        """Delete as another client would; ``lag`` as :attr:`Faults.deletion_lag`."""
        secret = self._secrets[name.lower()]
        secret.deleted_at, secret.lag = self._clock(), lag

    def age_deletion(self, name: str, seconds: int) -> None:
        """Move a soft-deleted secret's deletion date ``seconds`` into the past."""
        secret = self._secrets[name.lower()]
        assert secret.deleted_at is not None, f"{name} is not soft-deleted"
        secret.deleted_at -= seconds

    def wipe(self) -> None:
        """Lose every secret, deleted ones too: a vault deleted and re-created empty."""
        self._secrets.clear()

    def is_soft_deleted(self, name: str) -> bool:
        secret = self._secrets.get(name.lower())
        return secret is not None and secret.deleted_at is not None

    def compete(
        self, name: str, value: str, *, created_delta: int = -1, version: str | None = None
    ) -> None:
        """Make another writer's PUT of ``name`` land just before the next PUT of it.

        The competitor's version is created ``created_delta`` seconds from the clock (so
        -1 makes it strictly older) with the given version id (default random).
        """
        self._competitors[name.lower()] = Competitor(value, created_delta, version)

    # -- lookups for the HTTP handlers ------------------------------------------------------

    def _live(self, name: str) -> Secret | None:
        secret = self._secrets.get(name.lower())
        return secret if secret is not None and secret.deleted_at is None else None

    def _visible_deleted(self, name: str) -> Secret | None:
        secret = self._secrets.get(name.lower())
        if secret is None or secret.deleted_at is None:
            return None
        if secret.lag > 0:  # Key Vault moves a secret into the deleted collection lazily
            secret.lag -= 1
            return None
        return secret

    def _find(self, name: str, version: str) -> Version:
        return next(v for v in self._secrets[name.lower()].versions if v.id == version)

    @staticmethod
    def _pick(secret: Secret, version: str) -> Version | None:
        if not version:  # "latest": the most recently created version
            return max(secret.versions, key=lambda v: v.created, default=None)
        return next((v for v in secret.versions if v.id == version), None)
