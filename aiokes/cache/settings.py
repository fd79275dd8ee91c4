"""The key cache's settings: the ``cache:`` section of the config file, and what the cache runs on.

One type for both: the config layer validates the YAML into a :class:`CacheSettings` and the
cache (in a single process or in the key keeper) takes it whole. Defaults are KES's
documented ones (spec §6.4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

__all__ = ["CacheSettings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheSettings:
    """Cache periods in seconds; a period ``<= 0`` disables its job.

    ``max_keys`` bounds the number of entries (``<= 0``: unbounded, as in KES). A decoded
    key costs about 2.7 KiB (measured: an ``AESGCM`` object, a 32-byte key, its name), so the
    default of 100 000 caps a worker at roughly 270 MB. Real deployments have a few to a few
    thousand hot keys; the bound is a guard against pathological key counts, set high
    because an entry pushed out too early costs a keystore read, which Azure Key Vault
    limits to 400/s per vault. ``probe_interval`` (how often offline caching asks the
    keystore whether it is up) is not in the config file.
    """

    expiry_any: float = 300.0
    expiry_unused: float = 30.0
    expiry_offline: float = 0.0
    max_keys: int = 100_000
    probe_interval: float = 10.0

    def __post_init__(self) -> None:
        for setting in fields(self):
            value = getattr(self, setting.name)
            if not math.isfinite(value):
                raise ValueError(f"cache setting {setting.name} must be a finite number")
