"""The key cache's counters: one field list for the cache, the metrics table and ``/v1/status``.

A field with a ``help`` text is *published*: each process stores it in its row of the shared
metrics table (:meth:`aiokes.metrics.Metrics.publish_cache`), ``/v1/metrics`` shows the sum
as ``aiokes_cache_<field>`` and ``/v1/status`` as ``cache.<field>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["PUBLISHED", "CacheStats", "describe", "is_gauge"]


def _published(kind: str, help_text: str, default: int | bool = 0) -> Any:
    return field(default=default, metadata={"kind": kind, "help": help_text})


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheStats:
    """A snapshot of the cache counters.

    ``misses`` counts every ``get`` that found no entry, including those that waited for a
    read another ``get`` had started; ``keystore_reads`` counts the reads actually issued.
    ``evictions`` are entries pushed out by ``max_keys``; ``expirations`` are entries
    dropped by the periodic jobs. ``keystore_read_errors`` counts failed reads (a missing
    key is an answer, not an error; an undecodable record is an error).
    """

    hits: int = _published("counter", "Key cache lookups answered from the cache.")
    misses: int = _published("counter", "Key cache lookups that needed the keystore.")
    evictions: int = _published("counter", "Keys evicted from the cache by its size bound.")
    expirations: int = 0
    keystore_reads: int = _published("counter", "Key reads sent to the keystore.")
    keystore_read_errors: int = 0
    entries: int = _published("gauge", "Keys in the cache now.")
    offline: bool = _published(
        "gauge", "Workers whose keystore is offline (offline caching in effect).", False
    )

    def status(self) -> dict[str, int | bool]:
        """The ``cache`` object of ``/v1/status``: the published fields, ``entries`` first (as
        aiokes has always sent them)."""
        published = {name: getattr(self, name) for name in PUBLISHED}
        return {"entries": published.pop("entries"), **published}


PUBLISHED = tuple(setting.name for setting in fields(CacheStats) if setting.metadata)


def describe(name: str) -> str:
    """The metric help text of a published field."""
    return str(_FIELDS[name].metadata["help"])


def is_gauge(name: str) -> bool:
    return bool(_FIELDS[name].metadata["kind"] == "gauge")


_FIELDS = {setting.name: setting for setting in fields(CacheStats)}
