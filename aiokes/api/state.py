"""The runtime snapshot a request works on, built from a config and swapped whole on reload."""

from __future__ import annotations

import asyncio
import datetime
from dataclasses import dataclass, field

from aiokes.api.routes import RouteTable
from aiokes.cache import KeyCache, KeySource
from aiokes.cache.configured import create_configured_keys
from aiokes.config import ServerConfig
from aiokes.crypto import KeyVersion, parse_key_version
from aiokes.keystore import Keystore
from aiokes.policy import Authorizer, Policy

__all__ = ["Activity", "ServerState", "build_state"]


class Activity:
    """Counts the requests running on one state, so a replaced state is closed only after
    they finish.

    Entered and left once per request: a plain counter, with a future only while somebody
    waits for it to reach zero (a retiring state), rather than an ``asyncio.Event`` toggled
    on every request."""

    __slots__ = ("_idle", "running")

    def __init__(self) -> None:
        self.running = 0
        self._idle: asyncio.Future[None] | None = None

    def enter(self) -> None:
        self.running += 1

    def exit(self) -> None:
        self.running -= 1
        if self.running == 0 and self._idle is not None:
            if not self._idle.done():
                self._idle.set_result(None)
            self._idle = None

    async def wait_idle(self) -> None:
        """Wait until no request runs on the state."""
        if self.running == 0:
            return
        if self._idle is None:
            self._idle = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._idle)  # one waiter giving up must not cancel it for others


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerState:
    """``keystore`` is ``None`` in a worker of a multi-process server: the key keeper owns it,
    and ``master_keys`` then outlives the state (:mod:`aiokes.keeper.client`)."""

    config: ServerConfig
    authorizer: Authorizer
    keystore: Keystore | None
    master_keys: KeySource  # the cache, or the keeper's link: master keys by name
    routes: RouteTable
    started_at: datetime.datetime
    activity: Activity = field(default_factory=Activity)

    async def aclose(self) -> None:
        """Stop the cache's background jobs, then release the keystore (if this state owns
        them)."""
        if self.keystore is None:
            return
        try:
            await self.master_keys.aclose()
        finally:
            await self.keystore.close()


async def build_state(
    config: ServerConfig,
    routes: RouteTable,
    *,
    started_at: datetime.datetime | None = None,
    shared_keys: KeySource | None = None,
) -> ServerState:
    """Connect the keystore, start an empty cache and pre-create the configured keys; or,
    given ``shared_keys`` (a worker's link to the key keeper, which does all that), use it."""
    started_at = started_at or datetime.datetime.now(datetime.UTC)
    keystore: Keystore | None = None
    keys: KeySource
    if shared_keys is not None:
        keys = shared_keys
    else:
        keystore = await config.keystore.connect()
        try:
            cache: KeyCache[KeyVersion] = KeyCache(keystore, parse_key_version, config.cache)
            await create_configured_keys(config, cache)
            await cache.start()
        except BaseException:
            await keystore.close()
            raise
        keys = cache
    overrides = {path: (api.skip_auth, api.timeout) for path, api in config.api.items()}
    return ServerState(
        config=config,
        authorizer=_authorizer(config, started_at),
        keystore=keystore,
        master_keys=keys,
        routes=routes.configured(overrides),
        started_at=started_at,
    )


def _authorizer(config: ServerConfig, started_at: datetime.datetime) -> Authorizer:
    policies = [
        Policy(
            name=policy.name,
            allow=policy.allow,
            deny=policy.deny,
            created_at=started_at,
            created_by=config.admin_identity,
        )
        for policy in config.policies
    ]
    assignments = {
        identity: policy.name for policy in config.policies for identity in policy.identities
    }
    return Authorizer(config.admin_identity, policies, assignments)
