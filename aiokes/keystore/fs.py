"""The fs keystore: one file per key in a directory, interchangeable with KES's ``fs`` keystore.

The file name is the key name and the file content is exactly the record bytes, so KES and
aiokes can take turns on the same directory. Unlike KES, a create can never leave a truncated
record behind: the record is written and fsynced under a temporary name first, then given its
real name with ``link(2)``, which fails instead of replacing an existing file (``rename(2)``
would silently overwrite a key created in the meantime, by us or by another process).

Temporary files start with ``.``, a character no key name may contain, so ones left behind by
a crash (``kill -9`` mid-create) are never listed or read. They are swept at start-up, but only
when no other aiokes process is using the directory: every open keystore holds a shared
``flock`` on the directory for as long as it is open, and the sweep needs the exclusive lock
(see :func:`_sweep_stale_temp_files`). A temporary file then belongs to a dead process, since
the kernel drops a process's locks when it dies, even by ``kill -9``.

A directory that can be read but not written (a read-only mount, wrong ownership after a
restore) still serves every existing key: start-up warns, ``status`` reports
``read_only``, and creates and deletes fail with the operating system's reason.

A delete leaves a tombstone (see :mod:`._tombstone`) in a directory *next to* the key
directory, where KES never looks, and a create of that name is refused until the wait is over.

POSIX only. Every blocking call runs in a worker thread via :func:`asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import secrets
import stat
import time
from datetime import UTC, datetime
from pathlib import Path

from aiokes.errors import KeyExists, KeyNotFound, KeystoreError, KeystoreUnreachable
from aiokes.keystore import KeystoreState, Page, paginate
from aiokes.keystore._tombstone import (
    MarkerDirectory,
    Tombstone,
    marker_directory_for,
    reserved,
)
from aiokes.log import error_logger

__all__ = ["MAX_RECORD_SIZE", "FSKeystore"]

# KES reads at most 1 MiB of a key file; we refuse to write what we could not read back.
MAX_RECORD_SIZE = 1 << 20
# NAME_MAX of Linux and of every common filesystem.
_MAX_NAME_BYTES = 255
# '.' covers '.', '..' and our temporary files; the separators and NUL cover path tricks.
_FORBIDDEN_CHARACTERS = frozenset("/\\\x00.")
_TEMP_PREFIX = ".aiokes-"
_TEMP_SUFFIX = ".tmp"
_DIRECTORY_MODE = 0o700
_FILE_MODE = 0o600
_SHOWN_NAME_LENGTH = 64


class FSKeystore:
    """A :class:`~aiokes.keystore.Keystore` over a directory of key files."""

    def __init__(self, path: str | os.PathLike[str], *, reuse_wait: float = 0.0) -> None:
        """``reuse_wait`` > 0: deletes leave tombstones that reserve a name that long."""
        self._dir = Path(path)
        self._reuse_wait = reuse_wait
        self._markers = MarkerDirectory(marker_directory_for(self._dir))
        self._lock_fd: int | None = None  # the directory, held with a shared flock while open

    @property
    def path(self) -> Path:
        """The key directory."""
        return self._dir

    async def open(self) -> None:
        """Create the directory if missing (mode 0700), check that its keys can be read, and
        sweep temporary files left by a crash. A directory that cannot be written is served
        read-only, with a warning."""
        await asyncio.to_thread(self._open_sync)

    async def create(self, name: str, value: bytes) -> None:
        path = self._key_path(name)
        if len(value) > MAX_RECORD_SIZE:
            raise KeystoreError(
                f"fs keystore: record for key {_show(name)} is {len(value)} bytes; "
                f"at most {MAX_RECORD_SIZE} bytes can be read back"
            )
        await asyncio.to_thread(self._create_sync, name, path, value)

    async def get(self, name: str) -> bytes:
        return await asyncio.to_thread(_read_record, self._key_path(name))

    async def delete(self, name: str) -> None:
        await asyncio.to_thread(self._delete_sync, name, self._key_path(name))

    async def tombstone(self, name: str) -> Tombstone | None:
        self._key_path(name)  # validates the name: it becomes a file name
        return await asyncio.to_thread(self._markers.read, name)

    async def tombstones(self) -> list[Tombstone]:
        def read_all() -> list[Tombstone]:
            found = (self._markers.read(name) for name in self._markers.names())
            return [tombstone for tombstone in found if tombstone is not None]

        return await asyncio.to_thread(read_all)

    async def forget_deletion(self, name: str) -> None:
        self._key_path(name)
        await asyncio.to_thread(self._markers.remove, name)

    async def list(self, prefix: str, limit: int = -1) -> Page:
        names = await asyncio.to_thread(_key_names, self._dir)
        return paginate(names, prefix, limit)

    async def status(self) -> KeystoreState:
        started = time.perf_counter()
        problem, write_problem = await asyncio.to_thread(_directory_problems, self._dir)
        if problem is not None:
            raise KeystoreUnreachable(f"fs keystore: {problem}")
        return KeystoreState(
            latency=time.perf_counter() - started, read_only=write_problem is not None
        )

    async def close(self) -> None:
        """Release the directory lock. Idempotent."""
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # closing drops the flock

    def _key_path(self, name: str) -> Path:
        reason = _invalid_name_reason(name)
        if reason is not None:
            raise KeystoreError(f"fs keystore: invalid key name {_show(name)}: {reason}")
        return self._dir / name

    def _open_sync(self) -> None:
        try:
            self._dir.mkdir(mode=_DIRECTORY_MODE, parents=True, exist_ok=True)
        except FileExistsError:
            pass  # something that is not a directory; reported precisely below
        except OSError as exc:
            raise _io_error("create directory", self._dir, exc) from exc
        problem, write_problem = _directory_problems(self._dir)
        if problem is not None:
            raise KeystoreError(f"fs keystore: {problem}")
        if write_problem is not None:
            error_logger.warning(
                "fs keystore: %s: serving the existing keys read-only; "
                "creating and deleting keys fails until it is writable",
                write_problem,
            )
        if self._lock_fd is None:
            self._lock_fd = _lock_directory(self._dir, sweep=write_problem is None)

    def _create_sync(self, name: str, path: Path, value: bytes) -> None:
        # "Exists" first, as KES's O_EXCL open answers it, even where no temporary file can be
        # written (a read-only directory): MinIO creates its default key at every start and
        # must get 400 "key already exists", not a 502. The link below still decides races.
        if os.path.lexists(path):
            raise KeyExists()
        tombstone = self._markers.read(name) if self._reuse_wait > 0 else None
        if tombstone is not None and tombstone.reserves(self._reuse_wait, datetime.now(UTC)):
            raise reserved(tombstone, self._reuse_wait)
        temp = self._write_temp_file(value)
        try:
            os.link(temp, path)
        except FileExistsError:
            raise KeyExists() from None
        except OSError as exc:
            raise _io_error("create key file", path, exc) from exc
        finally:
            _remove_quietly(temp)
        self._sync_directory()
        if tombstone is not None:  # served its time; a later delete writes a new one
            self._markers.remove(name)

    def _write_temp_file(self, value: bytes) -> Path:
        temp = self._dir / f"{_TEMP_PREFIX}{secrets.token_hex(8)}{_TEMP_SUFFIX}"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
        except OSError as exc:
            raise _io_error("create temporary file", temp, exc) from exc
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(value)
                file.flush()
                os.fsync(file.fileno())
        except OSError as exc:
            _remove_quietly(temp)
            raise _io_error("write temporary file", temp, exc) from exc
        return temp

    def _delete_sync(self, name: str, path: Path) -> None:
        if self._reuse_wait > 0:
            if not os.path.lexists(path):
                raise KeyNotFound()
            # Tombstone first: a crash in between leaves the key and a tombstone (a name
            # reserved a little early), never a deleted key whose name is free at once.
            self._markers.write(name, datetime.now(UTC))
        try:
            os.unlink(path)
        except FileNotFoundError:
            raise KeyNotFound() from None
        except OSError as exc:
            raise _io_error("delete key file", path, exc) from exc
        self._sync_directory()

    def _sync_directory(self) -> None:
        """Make a new or removed directory entry durable, not just the file's data."""
        try:
            fd = os.open(self._dir, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise _io_error("sync directory", self._dir, exc) from exc


def _key_names(directory: Path) -> list[str]:
    try:
        with os.scandir(directory) as entries:
            # The name test comes first: it skips temporary files without a stat call.
            return [
                entry.name
                for entry in entries
                if _invalid_name_reason(entry.name) is None and entry.is_file()
            ]
    except OSError as exc:
        raise _io_error("list directory", directory, exc) from exc


def _read_record(path: Path) -> bytes:
    try:
        # O_NONBLOCK: a FIFO planted in the directory must not hang a worker thread.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise KeyNotFound() from None
    except OSError as exc:
        raise _io_error("open key file", path, exc) from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise KeystoreError(f"fs keystore: key file {str(path)!r} is not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as file:
            record = file.read(MAX_RECORD_SIZE + 1)
    except OSError as exc:
        raise _io_error("read key file", path, exc) from exc
    finally:
        os.close(fd)
    if len(record) > MAX_RECORD_SIZE:
        raise KeystoreError(
            f"fs keystore: key file {str(path)!r} is larger than {MAX_RECORD_SIZE} bytes"
        )
    return record


def _directory_problems(path: Path) -> tuple[str | None, str | None]:
    """Why ``path`` cannot serve keys at all, and why it cannot store new ones (``None``: it can).

    ``os.access`` asks the kernel, so it answers for this process's identity and also covers
    an immutable directory and, with ``EROFS``, a read-only mount, even for root.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return f"cannot access directory {str(path)!r}: {_describe(exc)}", None
    if not stat.S_ISDIR(mode):
        return f"{str(path)!r} is not a directory", None
    if not os.access(path, os.R_OK | os.X_OK):
        return f"directory {str(path)!r} is not readable by this process", None
    if os.statvfs(path).f_flag & os.ST_RDONLY:
        return None, f"directory {str(path)!r} is on a read-only filesystem"
    if not os.access(path, os.W_OK):
        return None, f"directory {str(path)!r} is not writable by this process"
    return None, None


def _lock_directory(path: Path, *, sweep: bool) -> int:
    """Open the directory and hold a shared flock on it, meaning "an aiokes process uses it";
    first, if ``sweep``, remove the temporary files of dead creates (see below)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise _io_error("open directory", path, exc) from exc
    try:
        if sweep:
            _sweep_stale_temp_files(path, fd)
        fcntl.flock(fd, fcntl.LOCK_SH)  # also turns the sweep's exclusive lock into this one
    except OSError as exc:
        os.close(fd)
        raise _io_error("lock directory", path, exc) from exc
    return fd


def _sweep_stale_temp_files(path: Path, lock_fd: int) -> None:
    """Remove the temporary files of creates that died, if no other process can be creating.

    A create's temporary file lives from its ``open`` to its ``link`` (or failure), which can
    take arbitrarily long on a stalled disk, so no age makes a file safely stale. Instead every
    aiokes process keeps a shared flock on the directory while its keystore is open. If this
    process gets an exclusive lock, no other aiokes process (another worker, another instance
    on the same directory, the still open keystore of the state before a reload) holds the
    directory, so no create is in flight and every temporary file is a dead one's: the kernel
    releases the locks of a process that dies, even by ``kill -9``. If another process holds
    the directory, the sweep is skipped; the next start without company does it.

    Known limits: aiokes releases before this sweep existed hold no lock, so a temporary file
    of theirs could be removed mid-create; that create then fails (``link`` finds no file) and
    answers 502, and no key is lost. On NFS, flock is emulated with POSIX locks, which do not
    conflict within one process, so a reload there may sweep; the result is the same.
    """
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another aiokes process uses the directory
    try:
        with os.scandir(path) as entries:
            stale = [
                entry.name
                for entry in entries
                if entry.name.startswith(_TEMP_PREFIX) and entry.name.endswith(_TEMP_SUFFIX)
            ]
    except OSError as exc:  # harmless: temporary files are never read
        error_logger.warning("fs keystore: cannot sweep temporary files: %s", _describe(exc))
        return
    for name in stale:
        _remove_quietly(path / name)
    if stale:
        error_logger.info(
            "fs keystore: removed %d temporary file(s) of interrupted creates in %r",
            len(stale),
            str(path),
        )


def _invalid_name_reason(name: str) -> str | None:
    """Why ``name`` cannot be a key file name, or ``None`` if it can."""
    if not name:
        return "it is empty"
    forbidden = _FORBIDDEN_CHARACTERS.intersection(name)
    if forbidden:
        return f"it contains {', '.join(repr(c) for c in sorted(forbidden))}"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "it is not valid Unicode text"
    if size > _MAX_NAME_BYTES:
        return f"it is {size} bytes long; at most {_MAX_NAME_BYTES} are allowed"
    return None


def _show(name: str) -> str:
    """``repr`` of a name, cut short so that a huge name cannot flood the error log."""
    if len(name) <= _SHOWN_NAME_LENGTH:
        return repr(name)
    return f"{name[:_SHOWN_NAME_LENGTH]!r}... ({len(name)} characters)"


def _describe(exc: OSError) -> str:
    code = errno.errorcode.get(exc.errno or 0, f"errno {exc.errno}")
    return f"{exc.strerror or exc} ({code})"


def _io_error(action: str, path: Path, exc: OSError) -> KeystoreError:
    return KeystoreError(f"fs keystore: cannot {action} {str(path)!r}: {_describe(exc)}")


def _remove_quietly(path: Path) -> None:
    # A temporary file that cannot be removed is harmless: its name is not a key name.
    with contextlib.suppress(OSError):
        os.unlink(path)
