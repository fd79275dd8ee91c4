"""The HTTP API: KES's routes as a table, served by one dispatcher."""

from __future__ import annotations

from aiokes.api import keys, policies, system
from aiokes.api.routes import LEGACY_MAX_BODY, MAX_BODY, Auth, Route, RouteTable

__all__ = ["default_routes"]


def default_routes() -> RouteTable:
    """KES HEAD's route table (spec §2) plus LEGACY bulk decrypt (spec §3.4)."""
    return RouteTable(
        [
            Route("GET", "/version", system.version, timeout=10, auth=Auth.NONE, metered=False),
            Route("GET", "/v1/ready", system.ready, metered=False),
            Route("GET", "/v1/status", system.status, metered=False),
            Route("GET", "/v1/metrics", system.metrics, metered=False),
            Route("GET", "/v1/api", system.api, timeout=10, metered=False),
            Route("PUT", "/v1/key/create/", keys.create),
            Route(
                "PUT",
                "/v1/key/import/",
                keys.import_key,
                max_body=MAX_BODY,
                body_error="invalid import key request body",
            ),
            Route("GET", "/v1/key/describe/", keys.describe),
            Route("GET", "/v1/key/list/", keys.list_keys),
            Route("DELETE", "/v1/key/delete/", keys.delete),
            Route(
                "PUT",
                "/v1/key/generate/",
                keys.generate,
                max_body=MAX_BODY,
                immediate=keys.generate_now,
            ),
            Route(
                "PUT",
                "/v1/key/encrypt/",
                keys.encrypt,
                max_body=MAX_BODY,
                immediate=keys.encrypt_now,
            ),
            Route(
                "PUT",
                "/v1/key/decrypt/",
                keys.decrypt,
                max_body=MAX_BODY,
                immediate=keys.decrypt_now,
            ),
            Route("PUT", "/v1/key/hmac/", keys.hmac, max_body=MAX_BODY),
            Route("POST", "/v1/key/bulk/decrypt/", keys.bulk_decrypt, max_body=LEGACY_MAX_BODY),
            Route("GET", "/v1/policy/describe/", policies.describe_policy),
            Route("GET", "/v1/policy/read/", policies.read_policy),
            Route("GET", "/v1/policy/list/", policies.list_policies),
            Route("GET", "/v1/identity/describe/", policies.describe_identity),
            Route("GET", "/v1/identity/list/", policies.list_identities),
            Route("GET", "/v1/identity/self/describe", policies.describe_self, auth=Auth.IDENTIFY),
            Route("GET", "/v1/log/error", system.error_log, timeout=0, metered=False),
            Route("GET", "/v1/log/audit", system.audit_log, timeout=0, metered=False),
        ]
    )
