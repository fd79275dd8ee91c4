"""Tombstones: a deleted key's name stays reserved until every server's cache dropped the key.

Several aiokes (or KES) instances on one keystore each cache decoded keys, and nothing tells
instance B that instance A deleted ``k1``. If C could create a new ``k1`` at once, B would go
on generating data keys under the *old* ``k1`` until its cache drops it, and every object
MinIO encrypts through B in that window would be lost. So a delete leaves a tombstone, and a
create of that name is refused with :class:`~aiokes.errors.KeyNameReserved` until
``deleted_at + reuse_wait``, where ``reuse_wait`` is the longest time a cache entry can live
(:func:`reuse_wait`). Where the tombstone lives is up to the backend:

* ``fs``: a marker file per name in a *sibling* directory of the key directory
  (:class:`MarkerDirectory`). Not inside it: KES's fs keystore lists every directory entry
  as a key, so a marker there would show up (and break ``kes migrate``) after a swap to KES.
* ``azure``: the soft-deleted secret itself; its ``deletedDate`` is the time of deletion.

An operator can lift a tombstone on purpose (``aiokes tombstone rm``, ``aiokes migrate
--force``); nothing else does.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol, runtime_checkable

from aiokes.errors import KeyNameReserved, KeystoreError

__all__ = [
    "CLOCK_MARGIN",
    "MarkerDirectory",
    "Tombstone",
    "Tombstoned",
    "marker_directory_for",
    "reserved",
    "reuse_wait",
]

# Servers' clocks and the vault's differ a little; a name is reserved this much longer.
CLOCK_MARGIN = 10.0
_MARKER_SUFFIX = ".aiokes-deleted"
_FILE_MODE = 0o600
_DIRECTORY_MODE = 0o700


@dataclass(frozen=True, slots=True)
class Tombstone:
    """A deleted key's name and when it was deleted."""

    name: str
    deleted_at: datetime

    def reusable_at(self, wait: float) -> datetime | None:
        """When the name may be created again; ``None`` for never (no bound on caching)."""
        if math.isinf(wait):
            return None
        return self.deleted_at + timedelta(seconds=wait)

    def reserves(self, wait: float, now: datetime) -> bool:
        reusable = self.reusable_at(wait)
        return reusable is None or now < reusable


@runtime_checkable
class Tombstoned(Protocol):
    """A keystore that remembers deletions (fs, azure, mirror)."""

    async def tombstone(self, name: str) -> Tombstone | None:
        """The tombstone of ``name``, whether or not it still reserves the name."""
        ...

    async def tombstones(self) -> list[Tombstone]:
        """Every tombstone, sorted by name."""
        ...

    async def forget_deletion(self, name: str) -> None:
        """Remove the tombstone of ``name`` (an operator's explicit override)."""
        ...


def reuse_wait(expiry_any: float, expiry_offline: float) -> float:
    """The longest a server can serve a deleted key from its cache, plus a clock margin.

    The cache drops every entry every ``expiry_any`` seconds, except while the keystore is
    offline with ``expiry_offline > 0``: then it keeps them for up to ``expiry_offline``
    more. ``expiry_unused`` does not bound it: a key in use is never unused. Without an
    ``expiry_any`` nothing bounds it, so the name stays reserved until an operator frees it.
    """
    if expiry_any <= 0:
        return math.inf
    return expiry_any + max(0.0, expiry_offline) + CLOCK_MARGIN


def reserved(tombstone: Tombstone, wait: float) -> KeyNameReserved:
    """The client's error: what was deleted when, and when the name can be used again."""
    deleted = _rfc3339(tombstone.deleted_at)
    reusable = tombstone.reusable_at(wait)
    when = (
        f"it can be reused after {_rfc3339(reusable)}"
        if reusable is not None
        else "it stays reserved until an operator runs 'aiokes tombstone rm' "
        "(cache.expiry.any is 0, so no cache is ever known to have dropped it)"
    )
    return KeyNameReserved(
        f"key '{tombstone.name}' was deleted at {deleted} and may still be cached by "
        f"another server; {when}"
    )


def marker_directory_for(key_directory: Path) -> Path:
    """``/var/lib/kes/keys`` → ``/var/lib/kes/.keys.aiokes-deleted``: next to, not in, it."""
    absolute = key_directory.absolute()
    return absolute.parent / f".{absolute.name}{_MARKER_SUFFIX}"


class MarkerDirectory:
    """fs tombstones: one small JSON file per deleted name. Blocking; call from a thread."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, name: str, deleted_at: datetime) -> None:
        """Durably record the deletion (before the key file goes, so a crash keeps one)."""
        try:
            self.path.mkdir(mode=_DIRECTORY_MODE, exist_ok=True)
            temp = self.path / f".{secrets.token_hex(8)}.tmp"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump({"deleted_at": _rfc3339(deleted_at)}, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, self.path / name)  # a newer deletion replaces an older one
            _sync(self.path)
        except OSError as exc:
            raise KeystoreError(
                f"fs keystore: cannot record the deletion of '{name}' in "
                f"{str(self.path)!r}: {exc.strerror or exc}; the key was not deleted"
            ) from exc

    def read(self, name: str) -> Tombstone | None:
        path = self.path / name
        try:
            text = path.read_text(encoding="utf-8")
            modified = os.stat(path).st_mtime
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise KeystoreError(f"fs keystore: cannot read tombstone {str(path)!r}: {exc}") from exc
        return Tombstone(name, _parse_deleted_at(text) or datetime.fromtimestamp(modified, UTC))

    def remove(self, name: str) -> None:
        try:
            os.unlink(self.path / name)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise KeystoreError(
                f"fs keystore: cannot remove tombstone of '{name}' in "
                f"{str(self.path)!r}: {exc.strerror or exc}"
            ) from exc
        _sync(self.path)

    def names(self) -> list[str]:
        try:
            return sorted(p.name for p in self.path.iterdir() if not p.name.startswith("."))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise KeystoreError(
                f"fs keystore: cannot list tombstones in {str(self.path)!r}: {exc}"
            ) from exc


def _parse_deleted_at(text: str) -> datetime | None:
    try:
        value = json.loads(text)["deleted_at"]
        parsed = datetime.fromisoformat(value)
    except (ValueError, KeyError, TypeError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _sync(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
