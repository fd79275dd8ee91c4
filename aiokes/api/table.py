"""The route table: each path of :mod:`aiokes.api.paths` bound to its handler and limits."""

from __future__ import annotations

from aiokes.api import identities, keys, paths, policies, system
from aiokes.api.routes import (
    LEGACY_MAX_BODY,
    MAX_BODY,
    Auth,
    Handler,
    ImmediateHandler,
    Route,
    RouteTable,
)

__all__ = ["default_routes"]


def default_routes() -> RouteTable:
    """KES HEAD's route table (spec §2) plus LEGACY bulk decrypt (spec §3.4)."""
    return RouteTable(
        [
            Route("GET", paths.VERSION, system.version, timeout=10, auth=Auth.NONE, metered=False),
            Route("GET", paths.READY, system.ready, metered=False),
            Route("GET", paths.STATUS, system.status, metered=False),
            Route("GET", paths.METRICS, system.metrics, metered=False),
            Route("GET", paths.API, system.api, timeout=10, metered=False),
            Route("PUT", paths.KEY_CREATE, keys.create),
            Route(
                "PUT",
                paths.KEY_IMPORT,
                keys.import_key,
                max_body=MAX_BODY,
                body_error="invalid import key request body",
            ),
            Route("GET", paths.KEY_DESCRIBE, keys.describe),
            Route("GET", paths.KEY_LIST, keys.list_keys),
            Route("DELETE", paths.KEY_DELETE, keys.delete),
            _hot(paths.KEY_GENERATE, keys.generate, keys.generate_now),
            _hot(paths.KEY_ENCRYPT, keys.encrypt, keys.encrypt_now),
            _hot(paths.KEY_DECRYPT, keys.decrypt, keys.decrypt_now),
            Route("PUT", paths.KEY_HMAC, keys.hmac, max_body=MAX_BODY),
            Route("POST", paths.KEY_BULK_DECRYPT, keys.bulk_decrypt, max_body=LEGACY_MAX_BODY),
            Route("GET", paths.POLICY_DESCRIBE, policies.describe_policy),
            Route("GET", paths.POLICY_READ, policies.read_policy),
            Route("GET", paths.POLICY_LIST, policies.list_policies),
            Route("GET", paths.IDENTITY_DESCRIBE, identities.describe_identity),
            Route("GET", paths.IDENTITY_LIST, identities.list_identities),
            Route(
                "GET", paths.IDENTITY_SELF_DESCRIBE, identities.describe_self, auth=Auth.IDENTIFY
            ),
            Route("GET", paths.LOG_ERROR, system.error_log, timeout=0, metered=False),
            Route("GET", paths.LOG_AUDIT, system.audit_log, timeout=0, metered=False),
        ]
    )


def _hot(path: str, handler: Handler, immediate: ImmediateHandler) -> Route:
    """A route of MinIO's every request: answered at once when its key is cached."""
    return Route("PUT", path, handler, max_body=MAX_BODY, immediate=immediate)
