"""Which secret version is the key: KES's "oldest version wins" rule.

Key Vault has no create-only write: every PUT adds a version. KES (and aiokes) therefore
treat the *oldest* version of a secret as the key, so every replica that raced to create it
converges on the same value and no later PUT can replace it. ``created`` has one-second
resolution, so ties are broken by the smaller version id; all readers get the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from azure.keyvault.secrets import SecretProperties

__all__ = ["SecretVersion", "oldest", "unusable_reason"]


@dataclass(frozen=True, slots=True)
class SecretVersion:
    """The attributes of one secret version that decide whether it is the key."""

    version: str
    created: datetime
    enabled: bool | None = None
    not_before: datetime | None = None
    expires: datetime | None = None

    @classmethod
    def from_properties(cls, properties: SecretProperties) -> SecretVersion | None:
        """``None`` for a listing entry without version id or creation time (KES skips those)."""
        if not properties.version or properties.created_on is None:
            return None
        return cls(
            version=properties.version,
            created=properties.created_on,
            enabled=properties.enabled,
            not_before=properties.not_before,
            expires=properties.expires_on,
        )


def oldest(versions: Iterable[SecretVersion]) -> SecretVersion | None:
    """The version that is the key, or ``None`` if there is none."""
    return min(versions, key=lambda v: (v.created, v.version), default=None)


def unusable_reason(version: SecretVersion, now: datetime) -> str | None:
    """Why KES would refuse to serve this version (disabled, not yet valid, expired), if so."""
    if version.enabled is False:
        return f"version {version.version} is disabled"
    if version.not_before is not None and version.not_before > now:
        return f"version {version.version} is not valid before {version.not_before.isoformat()}"
    if version.expires is not None and version.expires <= now:
        return f"version {version.version} expired at {version.expires.isoformat()}"
    return None
