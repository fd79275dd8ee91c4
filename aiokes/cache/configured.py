"""The config file's ``keys:``: created at start-up in whatever holds the server's keys (the
cache of a single process, or the key keeper's of several)."""

from __future__ import annotations

import contextlib
from typing import Protocol

from aiokes.config import ServerConfig
from aiokes.crypto import encode_key_version, generate_key_version
from aiokes.errors import KeyExists
from aiokes.log import error_logger

__all__ = ["create_configured_keys"]


class _Creates(Protocol):
    async def create(self, name: str, value: bytes) -> None: ...


async def create_configured_keys(config: ServerConfig, keys: _Creates) -> None:
    """Create the config file's ``keys:`` that do not exist yet."""
    for name in config.keys:
        record = encode_key_version(generate_key_version(config.admin_identity))
        with contextlib.suppress(KeyExists):
            await keys.create(name, record)
            error_logger.info("created key '%s' from the config file", name)
