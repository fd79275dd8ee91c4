"""Every path of the API, listed once: the route table (:mod:`aiokes.api.table`) binds
handlers to them, and the config file's ``api:`` section may name only these. No handler
and no HTTP code is imported here, so the config layer can use the list.

KES HEAD's routes plus the LEGACY bulk decrypt; a subtree route ends in "/" exactly as in
KES (``/v1/key/create/``), and what follows it in a request is the route's resource.
"""

from __future__ import annotations

__all__ = [
    "API",
    "IDENTITY_DESCRIBE",
    "IDENTITY_LIST",
    "IDENTITY_SELF_DESCRIBE",
    "KEY_BULK_DECRYPT",
    "KEY_CREATE",
    "KEY_DECRYPT",
    "KEY_DELETE",
    "KEY_DESCRIBE",
    "KEY_ENCRYPT",
    "KEY_GENERATE",
    "KEY_HMAC",
    "KEY_IMPORT",
    "KEY_LIST",
    "LOG_AUDIT",
    "LOG_ERROR",
    "METRICS",
    "POLICY_DESCRIBE",
    "POLICY_LIST",
    "POLICY_READ",
    "READY",
    "ROUTE_PATHS",
    "STATUS",
    "VERSION",
]

VERSION = "/version"
READY = "/v1/ready"
STATUS = "/v1/status"
METRICS = "/v1/metrics"
API = "/v1/api"
KEY_CREATE = "/v1/key/create/"
KEY_IMPORT = "/v1/key/import/"
KEY_DESCRIBE = "/v1/key/describe/"
KEY_LIST = "/v1/key/list/"
KEY_DELETE = "/v1/key/delete/"
KEY_GENERATE = "/v1/key/generate/"
KEY_ENCRYPT = "/v1/key/encrypt/"
KEY_DECRYPT = "/v1/key/decrypt/"
KEY_HMAC = "/v1/key/hmac/"
KEY_BULK_DECRYPT = "/v1/key/bulk/decrypt/"
POLICY_DESCRIBE = "/v1/policy/describe/"
POLICY_READ = "/v1/policy/read/"
POLICY_LIST = "/v1/policy/list/"
IDENTITY_DESCRIBE = "/v1/identity/describe/"
IDENTITY_LIST = "/v1/identity/list/"
IDENTITY_SELF_DESCRIBE = "/v1/identity/self/describe"
LOG_ERROR = "/v1/log/error"
LOG_AUDIT = "/v1/log/audit"

ROUTE_PATHS: tuple[str, ...] = (
    VERSION,
    READY,
    STATUS,
    METRICS,
    API,
    KEY_CREATE,
    KEY_IMPORT,
    KEY_DESCRIBE,
    KEY_LIST,
    KEY_DELETE,
    KEY_GENERATE,
    KEY_ENCRYPT,
    KEY_DECRYPT,
    KEY_HMAC,
    KEY_BULK_DECRYPT,
    POLICY_DESCRIBE,
    POLICY_READ,
    POLICY_LIST,
    IDENTITY_DESCRIBE,
    IDENTITY_LIST,
    IDENTITY_SELF_DESCRIBE,
    LOG_ERROR,
    LOG_AUDIT,
)
