"""The parsed YAML tree → a validated :class:`~aiokes.config.schema.ServerConfig` (spec §6).

Checks follow KES HEAD (``kesconf/config.go``, ``state.go``) and are stricter in one place on
purpose: an ``api:`` path that names no route is an error, because a typo there would leave a
probe route silently authenticated. Cache defaults are KES's documented intent (spec §6.4),
not its bug.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from types import MappingProxyType

from aiokes.cache.settings import CacheSettings
from aiokes.config._keystore import build_keystore
from aiokes.config._section import Section
from aiokes.config._values import parse_log_level
from aiokes.config._yaml import Node
from aiokes.config.address import DEFAULT_ADDRESS, ListenAddress, parse_listen_address
from aiokes.config.schema import (
    DEFAULT_CRYPTO_INLINE_LIMIT,
    DEFAULT_PROXY_HEADER,
    ROUTE_PATHS,
    APIRouteConfig,
    LogConfig,
    PolicyConfig,
    ServerConfig,
    TLSConfig,
)
from aiokes.errors import ConfigError
from aiokes.identity import valid_name
from aiokes.keystore._tombstone import reuse_wait

__all__ = ["build_config"]

_DEFAULT_CACHE = CacheSettings()


def build_config(root: Node, *, environ: Mapping[str, str]) -> ServerConfig:
    """Validate the whole document and build the config."""
    if root.kind == "null":
        raise root.error("the config file is empty")
    top = Section(root, environ)
    _check_version(top)
    admin = _admin_identity(top)
    tls = _tls(top.section("tls"), admin)
    cache = _cache(top.section("cache"))
    return ServerConfig(
        file=root.file,
        address=_address(top),
        admin_identity=admin,
        tls=tls,
        policies=_policies(top.section("policy"), admin, tls.proxy_identities),
        cache=cache,
        api=_api(top.section("api")),
        log=_log(top.section("log")),
        keys=_keys(top),
        keystore=build_keystore(
            top.section("keystore"), reuse_wait=reuse_wait(cache.expiry_any, cache.expiry_offline)
        ),
        crypto_inline_limit=top.section("crypto").integer(
            "inline_limit", DEFAULT_CRYPTO_INLINE_LIMIT, minimum=0
        ),
    )


def _check_version(top: Section) -> None:
    node = top.get("version")
    if node is None:
        return
    # KES reads the version before substituting anything, so "${VAR}" is not allowed here.
    version = node.scalar(environ=None)
    if version not in (None, "v1"):
        raise node.error(f"unsupported config version '{version}' (the only version is v1)")


def _address(top: Section) -> ListenAddress:
    return top.decode("address", parse_listen_address, DEFAULT_ADDRESS)


def _admin_identity(top: Section) -> str:
    admin = top.section("admin")
    identity = admin.string("identity").strip()
    if identity:
        return identity
    legacy_root = top.get("root")
    if legacy_root is not None and admin.get("identity") is None:
        raise ConfigError(
            "the admin identity is required (the top-level 'root' of KES <= v0.13 is now"
            " admin.identity)",
            file=legacy_root.file,
            line=legacy_root.line,
            key="admin.identity",
        )
    raise admin.error("identity", "the admin identity is required")


def _tls(tls: Section, admin: str) -> TLSConfig:
    proxy = tls.section("proxy")
    return TLSConfig(
        key_file=tls.required_string("key", "the TLS private key file"),
        cert_file=tls.required_string("cert", "the TLS certificate file"),
        password=tls.string("password"),
        verify_client_certs=_client_auth(tls),
        ca_path=tls.string("ca"),
        proxy_identities=_proxy_identities(proxy, admin),
        proxy_header=proxy.section("header").string("cert", DEFAULT_PROXY_HEADER).strip(),
    )


def _client_auth(tls: Section) -> bool:
    auth = tls.string("auth")
    mode = auth.strip().lower()
    if mode not in ("", "on", "off"):
        raise tls.error("auth", f"invalid value '{auth}': expected 'on' or 'off'")
    return mode == "on"


def _proxy_identities(proxy: Section, admin: str) -> tuple[str, ...]:
    identities: list[str] = []
    for node in proxy.sequence("identities"):
        identity = proxy.text(node).strip()
        if identity == admin:
            raise node.error(f"identity '{identity}' is already the admin identity")
        if identity:  # an empty proxy identity matches no client; KES accepts it too
            identities.append(identity)
    return tuple(identities)


def _policies(section: Section, admin: str, proxies: tuple[str, ...]) -> tuple[PolicyConfig, ...]:
    assigned: dict[str, str] = {}  # identity -> policy name
    policies = []
    for name, node in section.node.mapping():
        if not valid_name(name):
            raise node.error(f"invalid policy name '{name}' (1-80 of A-Z a-z 0-9 - _)")
        policy = Section(node, section.environ)
        identities = _policy_identities(policy, name, admin, proxies, assigned)
        policies.append(
            PolicyConfig(
                name=name,
                allow=_patterns(policy, "allow"),
                deny=_patterns(policy, "deny"),
                identities=identities,
            )
        )
    return tuple(policies)


def _policy_identities(
    policy: Section, name: str, admin: str, proxies: tuple[str, ...], assigned: dict[str, str]
) -> tuple[str, ...]:
    identities: list[str] = []
    for node in policy.sequence("identities"):
        identity = policy.text(node).strip()
        if not valid_name(identity):
            raise node.error(
                f"invalid identity '{identity}': empty, too long or invalid characters"
            )
        if identity == admin:
            raise node.error(f"cannot assign policy '{name}' to the admin identity '{identity}'")
        if identity in proxies:
            raise node.error(f"cannot assign policy '{name}' to TLS proxy '{identity}'")
        if identity in assigned:
            raise node.error(
                f"cannot assign policy '{name}' to '{identity}': identity already has a policy"
                f" ('{assigned[identity]}')"
            )
        assigned[identity] = name
        identities.append(identity)
    return tuple(identities)


def _patterns(policy: Section, name: str) -> tuple[str, ...]:
    # Path patterns are never substituted: "${X}" in a pattern is literal text (spec §6.1).
    return tuple(node.scalar(environ=None) or "" for node in policy.sequence(name))


def _cache(cache: Section) -> CacheSettings:
    expiry = cache.section("expiry")
    # Unset or 0 takes the default: KES's documented intent (any 5m, unused 30s), spec §6.4.
    return CacheSettings(
        expiry_any=expiry.duration("any", 0.0) or _DEFAULT_CACHE.expiry_any,
        expiry_unused=expiry.duration("unused", 0.0) or _DEFAULT_CACHE.expiry_unused,
        expiry_offline=expiry.duration("offline", _DEFAULT_CACHE.expiry_offline),
        max_keys=cache.integer("max_keys", _DEFAULT_CACHE.max_keys, minimum=1),
    )


def _api(api: Section) -> Mapping[str, APIRouteConfig]:
    routes: dict[str, APIRouteConfig] = {}
    for path, node in api.node.mapping():
        if path not in ROUTE_PATHS:
            raise node.error(_unknown_route(path))
        route = Section(node, api.environ)
        timeout = route.duration("timeout", 0.0)
        routes[path] = APIRouteConfig(
            skip_auth=route.boolean("skip_auth"),
            timeout=timeout or None,  # 0 keeps the route's default
        )
    return MappingProxyType(routes)


def _unknown_route(path: str) -> str:
    message = f"unknown API path '{path}'"
    close = difflib.get_close_matches(path, ROUTE_PATHS, n=1)
    if close:
        return f"{message}; did you mean '{close[0]}'?"
    return f"{message} (paths are written as in KES, e.g. /v1/status or /v1/key/create/)"


def _log(log: Section) -> LogConfig:
    return LogConfig(
        error_level=log.decode("error", parse_log_level, LogConfig().error_level),
        audit_level=log.decode("audit", parse_log_level, LogConfig().audit_level),
        audit_file=log.string("audit_file"),
        error_file=log.string("error_file"),
    )


def _keys(top: Section) -> tuple[str, ...]:
    node = top.get("keys")
    if node is not None and node.kind == "mapping":
        raise node.error(
            "expected a list of '- name: <key>' entries (KES <= v0.13 configured the keystore"
            " here; it is now under 'keystore:')"
        )
    names: list[str] = []
    for item in top.sequence("keys"):
        if item.kind == "scalar":
            raise item.error(f"write a key as '- name: {item.text}'")
        key = Section(item, top.environ)
        name = _key_name(key)
        if name in names:
            raise key.error("name", f"key '{name}' is defined more than once")
        names.append(name)
    return tuple(names)


def _key_name(key: Section) -> str:
    name = key.required_string("name", "the key name").strip()
    if not valid_name(name):
        raise key.error("name", f"invalid key name '{name}' (1-80 of A-Z a-z 0-9 - _)")
    return name
