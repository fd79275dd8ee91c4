"""The server config file: KES's schema, aiokes's extensions, and an error for every mistake.

Every error test pins the file, the 1-based line and the key path of the ConfigError, plus the
words that tell the operator what to fix.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from aiokes.cache import CacheSettings
from aiokes.config import (
    ROUTE_PATHS,
    APIRouteConfig,
    AzureKeyVaultConfig,
    FSKeystoreConfig,
    ListenAddress,
    MemoryKeystoreConfig,
    ServerConfig,
    load_config,
    parse_config,
    parse_duration,
    parse_log_level,
)
from aiokes.errors import ConfigError
from aiokes.keystore import Keystore

DATA = Path(__file__).parent.parent / "data" / "config"
INVALID = DATA / "invalid"
ADMIN = "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22"
CLIENT = "02ef5321ca409dbc7b10e7e8ee44d1c3b91e4bf6e2198befdebee6312745267b"
MINIMAL = (DATA / "minimal.yml").read_text()
# The tombstone wait of the default cache expiry (any 5m, no offline caching) plus the margin.
DEFAULT_REUSE_WAIT = 300.0 + 10.0
# full.yml: cache.expiry.any 10m, offline 1h (a cached key lives until both have passed).
FULL_FILE_REUSE_WAIT = 600.0 + 3600.0 + 10.0


def load(name: str, **environ: str) -> ServerConfig:
    return load_config(DATA / name, environ=environ)


def config_error(text: str, environ: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, file="test.yml", environ=environ or {})
    return info.value


# -- valid files --------------------------------------------------------------------------


def test_operator_tutorial_file_loads_with_azure_credentials_filled_in() -> None:
    config = load("tutorial-azure.yml")
    assert config.file == str(DATA / "tutorial-azure.yml")
    assert config.address == ListenAddress("0.0.0.0", 7373)
    assert config.admin_identity == "disabled"
    assert (config.tls.key_file, config.tls.cert_file) == ("private.key", "public.crt")
    assert config.tls.verify_client_certs is False
    (policy,) = config.policies
    assert policy.name == "my-app"
    assert policy.allow == (
        "/v1/key/create/my-key*",
        "/v1/key/generate/my-key*",
        "/v1/key/decrypt/my-key*",
    )
    assert policy.deny == ()
    assert policy.identities == (CLIENT,)
    assert config.keystore == AzureKeyVaultConfig(
        endpoint="https://kes-test-1.vault.azure.net",
        tenant_id="41a37d4e-b3c4-49f4-b330-1114fb0271c8",
        client_id="c3b7badf-cd2b-4297-bece-4de5f2e575f6",
        client_secret="-.j4XP6Sa7E39.KWn-SL~Dgbz~H-H-TPxT",
        reuse_wait=DEFAULT_REUSE_WAIT,
    )
    assert config.keystore.describe() == "Azure KeyVault: https://kes-test-1.vault.azure.net"


def test_operator_tutorial_file_as_published_names_the_empty_tenant_id() -> None:
    published = (DATA / "tutorial-azure.yml").read_text()
    for value in ("41a37d4e-b3c4-49f4-b330-1114fb0271c8", "c3b7badf-cd2b-4297-bece-4de5f2e575f6"):
        published = published.replace(value, "")
    error = config_error(published)
    assert (error.line, error.key) == (20, "keystore.azure.keyvault.credentials.tenant_id")
    assert "tenant (directory) ID is required" in str(error)


def test_operator_tutorial_file_with_fs_keystore() -> None:
    config = load("tutorial-fs.yml")
    assert config.keystore == FSKeystoreConfig(path="./keys", reuse_wait=DEFAULT_REUSE_WAIT)
    assert config.keystore.describe() == "Filesystem: ./keys"
    assert config.policies[0].identities == (CLIENT,)


def test_kes_sample_server_config_loads() -> None:
    config = load("kes-server-config.yaml")
    assert config.admin_identity == (
        "c84cc9b91ae2399b043da7eca616048d4b4200edf2ff418d8af3835911db945d"
    )
    assert config.tls.password == ""
    assert config.tls.proxy_identities == ()
    assert config.tls.proxy_header == "X-Tls-Client-Cert"
    assert [p.name for p in config.policies] == ["my-app", "my-app-ops"]
    assert config.policies[0].deny == (
        "/v1/key/generate/my-app-internal*",
        "/v1/key/decrypt/my-app-internal*",
    )
    assert len(config.policies[0].identities) == 2
    assert (config.cache.expiry_any, config.cache.expiry_unused) == (300.0, 20.0)
    assert config.cache.expiry_offline == 0.0
    assert config.log.error_level == logging.INFO  # "error: on"
    assert config.log.audit_level is None  # "audit: off"
    assert config.keys == ("some-key-name", "another-key-name")
    assert dict(config.api) == {"/v1/ready": APIRouteConfig(skip_auth=False, timeout=15.0)}
    assert config.keystore == FSKeystoreConfig(
        path="/var/lib/kes/keys", reuse_wait=DEFAULT_REUSE_WAIT
    )


def test_minimal_file_gets_every_default() -> None:
    config = load("minimal.yml")
    assert config.address == ListenAddress("0.0.0.0", 7373)
    assert config.admin_identity == ADMIN
    assert config.tls.verify_client_certs is False
    assert config.tls.ca_path == ""
    assert config.tls.proxy_header == "X-Tls-Client-Cert"
    assert config.policies == ()
    assert dict(config.api) == {}
    assert config.keys == ()
    assert config.log.error_level == config.log.audit_level == logging.INFO
    assert (config.log.audit_file, config.log.error_file) == ("", "")


def test_cache_defaults_are_the_documented_intent_not_kes_bug() -> None:
    """KES HEAD sets *any* to 30s when *unused* is unset (spec §0.3 #3); we use 5m / 30s."""
    cache = load("minimal.yml").cache
    assert (cache.expiry_any, cache.expiry_unused, cache.expiry_offline) == (300.0, 30.0, 0.0)
    assert cache.max_keys == 100_000
    zeros = MINIMAL + "cache:\n  expiry:\n    any: 0s\n    unused: 0\n    offline: 0s\n"
    cache = parse_config(zeros, environ={}).cache
    assert (cache.expiry_any, cache.expiry_unused, cache.expiry_offline) == (300.0, 30.0, 0.0)


FULL_ENVIRON = {
    "ADDRESS": "127.0.0.1:7000",
    "ADMIN_IDENTITY": ADMIN,
    "TLS_PASSWORD": "correct horse",
    "PROXY_IDENTITY": "ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6",
    "MINIO_IDENTITY": "c0ecd5962eaf937422268b80a93dde4786dc9783fb2480ddea0f3e5fe471a731",
    "CACHE_ANY": "10m",
    "SKIP_AUTH": "true",
    "EXTRA_KEY": "tenant-1",
    "AZURE_MI_CLIENT_ID": "c3b7badf-cd2b-4297-bece-4de5f2e575f6",
}


def test_full_file_with_every_key_and_extension() -> None:
    config = load("full.yml", **FULL_ENVIRON)
    assert config.address == ListenAddress("127.0.0.1", 7000)
    assert config.admin_identity == ADMIN
    assert config.tls.password == "correct horse"
    assert config.tls.verify_client_certs is True  # auth: "ON", case-insensitive
    assert config.tls.ca_path == "/etc/aiokes/ca.pem"
    assert config.tls.proxy_identities == (FULL_ENVIRON["PROXY_IDENTITY"],)
    assert config.tls.proxy_header == "X-Forwarded-Client-Cert"
    minio, monitoring = config.policies
    assert minio.identities == (FULL_ENVIRON["MINIO_IDENTITY"], CLIENT)
    assert minio.deny == ("/v1/key/decrypt/minio-internal*",)
    assert (monitoring.allow, monitoring.identities) == (("/v1/metrics",), ())
    assert config.cache == CacheSettings(
        expiry_any=600.0, expiry_unused=90.0, expiry_offline=3600.0, max_keys=5000
    )
    assert dict(config.api) == {
        "/v1/ready": APIRouteConfig(skip_auth=True, timeout=15.0),
        "/v1/metrics": APIRouteConfig(skip_auth=True, timeout=None),  # 0s = route default
        "/v1/key/create/": APIRouteConfig(skip_auth=False, timeout=1.5),
    }
    assert config.log.error_level == logging.WARNING
    assert config.log.audit_level is None
    assert config.log.audit_file == "/var/log/aiokes/audit.log"
    assert config.log.error_file == "/var/log/aiokes/error.log"
    assert config.keys == ("minio-default", "tenant-1")
    assert config.keystore == AzureKeyVaultConfig(
        endpoint="https://aiokes.vault.azure.net",
        managed_identity_client_id="c3b7badf-cd2b-4297-bece-4de5f2e575f6",
        api_version="7.4",
        timeout=5.0,
        max_retries=2,
        retry_max_delay=2.0,
        operation_timeout=8.0,
        status_timeout=0.25,
        authority_host="https://login.microsoftonline.us",
        ca_file="/etc/aiokes/vault-ca.pem",
        reuse_wait=FULL_FILE_REUSE_WAIT,
    )


def test_azure_without_credential_blocks_uses_the_default_chain() -> None:
    text = MINIMAL.replace(
        "  fs:\n    path: /var/lib/aiokes/keys\n",
        "  azure:\n    keyvault:\n      endpoint: https://v.vault.azure.net\n      credentials:\n",
    )
    keystore = parse_config(text, environ={}).keystore
    assert keystore == AzureKeyVaultConfig(
        endpoint="https://v.vault.azure.net", reuse_wait=DEFAULT_REUSE_WAIT
    )


def test_unknown_keys_are_ignored_like_kes() -> None:
    text = MINIMAL + "colour: blue\ntls_extra: 1\ncache:\n  expiry:\n    anny: 1s\n"
    assert parse_config(text, environ={}).cache.expiry_any == 300.0


def test_config_is_immutable() -> None:
    config = load("full.yml", **FULL_ENVIRON)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.address = "other"  # type: ignore[misc, assignment]
    with pytest.raises(TypeError):
        config.api["/v1/status"] = APIRouteConfig()  # type: ignore[index]


def test_secrets_stay_out_of_repr() -> None:
    config = load("full.yml", **FULL_ENVIRON)
    assert "correct horse" not in repr(config)
    keystore = load("tutorial-azure.yml").keystore
    assert "KWn-SL" not in repr(keystore)


def test_yaml_anchors_and_merge_keys_work() -> None:
    text = MINIMAL + (
        "policy:\n"
        "  base: &base\n"
        "    allow: [/v1/status]\n"
        "  app:\n"
        "    <<: *base\n"
        "    identities: [app-1]\n"
    )
    base, app = parse_config(text, environ={}).policies
    assert app.allow == base.allow == ("/v1/status",)
    assert app.identities == ("app-1",)


# -- ${VAR} substitution --------------------------------------------------------------------


def test_env_reference_with_spaces_and_quotes_is_substituted() -> None:
    text = MINIMAL.replace("server.key", '" ${ KEY_FILE } "').replace("server.cert", "${CERT_FILE}")
    tls = parse_config(text, environ={"KEY_FILE": "/k.pem", "CERT_FILE": "/c.pem"}).tls
    assert (tls.key_file, tls.cert_file) == ("/k.pem", "/c.pem")


def test_env_values_are_decoded_as_the_field_type() -> None:
    text = MINIMAL + (
        "api:\n  /v1/status:\n    skip_auth: ${SKIP}\n    timeout: ${TIMEOUT}\n"
        "cache:\n  max_keys: ${MAX}\n"
    )
    config = parse_config(text, environ={"SKIP": "On", "TIMEOUT": "1m", "MAX": "42"})
    assert config.api["/v1/status"] == APIRouteConfig(skip_auth=True, timeout=60.0)
    assert config.cache.max_keys == 42
    error = config_error(text, {"SKIP": "On", "TIMEOUT": "soon", "MAX": "42"})
    assert (error.line, error.key) == (12, "api./v1/status.timeout")
    assert "invalid duration 'soon'" in error.detail


def test_empty_env_value_means_unset() -> None:
    text = MINIMAL + "cache:\n  expiry:\n    any: ${ANY}\n"
    assert parse_config(text, environ={"ANY": ""}).cache.expiry_any == 300.0


def test_partial_env_reference_stays_literal() -> None:
    text = MINIMAL.replace("/var/lib/aiokes/keys", "/data/${TENANT}/keys")
    keystore = parse_config(text, environ={"TENANT": "x"}).keystore
    assert keystore == FSKeystoreConfig(path="/data/${TENANT}/keys", reuse_wait=DEFAULT_REUSE_WAIT)


def test_policy_patterns_are_never_substituted() -> None:
    text = MINIMAL + "policy:\n  app:\n    allow: ['${PATTERN}']\n    deny: ['${PATTERN}']\n"
    (policy,) = parse_config(text, environ={"PATTERN": "/v1/*"}).policies
    assert policy.allow == policy.deny == ("${PATTERN}",)


def test_api_path_keys_are_never_substituted() -> None:
    text = MINIMAL + "api:\n  ${PROBE}:\n    skip_auth: true\n"
    error = config_error(text, {"PROBE": "/v1/ready"})
    assert (error.line, error.key) == (10, "api.${PROBE}")
    assert "unknown API path '${PROBE}'" in error.detail


def test_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOKES_TEST_ADMIN", "from-os-environ")
    text = MINIMAL.replace(ADMIN, "${AIOKES_TEST_ADMIN}")
    assert parse_config(text).admin_identity == "from-os-environ"


# -- one error per mistake ------------------------------------------------------------------

# file, environ, line, key, words the message must contain
INVALID_CASES = [
    ("version.yml", 1, "version", "unsupported config version 'v2'"),
    ("admin-identity-empty.yml", 2, "admin.identity", "admin identity is required"),
    ("root-legacy.yml", 2, "admin.identity", "'root' of KES <= v0.13 is now admin.identity"),
    ("tls-key-missing.yml", 2, "tls.key", "TLS private key file is required"),
    ("tls-cert-missing.yml", 4, "tls.cert", "TLS certificate file is required"),
    ("tls-auth.yml", 5, "tls.auth", "invalid value 'verify': expected 'on' or 'off'"),
    ("tls-proxy-admin.yml", 7, "tls.proxy.identities[0]", "is already the admin identity"),
    ("address.yml", 1, "address", "invalid address '7373'"),
    ("section-not-a-mapping.yml", 2, "tls", "expected a mapping (key: value), found a list"),
    ("policy-name.yml", 4, "policy.my.app", "invalid policy name 'my.app'"),
    (
        "policy-identity-twice.yml",
        11,
        "policy.writer.identities[0]",
        f"cannot assign policy 'writer' to '{CLIENT}': identity already has a policy",
    ),
    (
        "policy-identity-admin.yml",
        6,
        "policy.reader.identities[0]",
        "cannot assign policy 'reader' to the admin identity",
    ),
    (
        "policy-identity-proxy.yml",
        10,
        "policy.reader.identities[0]",
        "cannot assign policy 'reader' to TLS proxy",
    ),
    ("policy-identity-invalid.yml", 6, "policy.reader.identities[0]", "invalid identity"),
    ("policy-allow-not-list.yml", 5, "policy.reader.allow", "expected a list"),
    ("cache-negative.yml", 5, "cache.expiry.any", "'-5m': must not be negative"),
    ("cache-no-unit.yml", 6, "cache.expiry.unused", "'30': missing unit"),
    ("cache-max-keys.yml", 4, "cache.max_keys", "must be at least 1"),
    ("api-unknown-path.yml", 6, "api./v1/statuss", "did you mean '/v1/status'?"),
    ("api-negative-timeout.yml", 5, "api./v1/key/generate/.timeout", "must not be negative"),
    ("api-skip-auth.yml", 5, "api./v1/metrics.skip_auth", "invalid boolean 'maybe'"),
    ("log-level.yml", 5, "log.audit", "invalid log level 'loud'"),
    ("keys-duplicate.yml", 5, "keys[1].name", "key 'minio-default' is defined more than once"),
    ("keys-invalid-name.yml", 4, "keys[0].name", "invalid key name 'my/key'"),
    ("keys-legacy-keystore.yml", 3, "keys", "it is now under 'keystore:'"),
    ("keystore-missing.yml", 3, "keystore", "no keystore specified (supported: fs, azure, mirror)"),
    ("keystore-two.yml", 6, "keystore.azure", "more than one keystore specified"),
    (
        "keystore-vault.yml",
        4,
        "keystore.vault",
        "keystore 'vault' is not supported by aiokes (supported: fs, azure, mirror)",
    ),
    ("fs-no-path.yml", 5, "keystore.fs.path", "key directory is required"),
    ("azure-no-keyvault.yml", 4, "keystore.azure.keyvault", "'keyvault' section is required"),
    ("azure-no-endpoint.yml", 5, "keystore.azure.keyvault.endpoint", "endpoint is required"),
    ("azure-http-endpoint.yml", 6, "keystore.azure.keyvault.endpoint", "is not an https URL"),
    (
        "azure-credentials-incomplete.yml",
        10,
        "keystore.azure.keyvault.credentials.client_secret",
        "client secret is required",
    ),
    (
        "azure-two-methods.yml",
        11,
        "keystore.azure.keyvault.managed_identity",
        "more than one authentication method specified",
    ),
    (
        "azure-managed-no-client.yml",
        8,
        "keystore.azure.keyvault.managed_identity.client_id",
        "managed identity's client ID is required",
    ),
    ("azure-timeout-zero.yml", 7, "keystore.azure.keyvault.timeout", "greater than 0"),
    (
        "azure-operation-timeout-zero.yml",
        7,
        "keystore.azure.keyvault.operation_timeout",
        "greater than 0",
    ),
    (
        "azure-status-timeout-zero.yml",
        7,
        "keystore.azure.keyvault.status_timeout",
        "greater than 0",
    ),
    ("azure-max-retries.yml", 7, "keystore.azure.keyvault.max_retries", "invalid integer"),
    (
        "azure-authority-http.yml",
        7,
        "keystore.azure.keyvault.authority_host",
        "must be an https URL",
    ),
    (
        "env-missing.yml",
        5,
        "tls.password",
        "environment variable 'TLS_KEY_PASSWORD' in line 5 is not set",
    ),
    ("yaml-syntax.yml", 5, "", "invalid YAML: while parsing a flow sequence"),
    ("yaml-duplicate-key.yml", 4, "tls", "mapping key already defined at line 2"),
    ("empty.yml", 1, "", "the config file is empty"),
    ("not-a-mapping.yml", 1, "", "expected a mapping (key: value), found a list"),
]


def test_every_invalid_fixture_has_a_case() -> None:
    assert sorted(p.name for p in INVALID.glob("*.yml")) == sorted(c[0] for c in INVALID_CASES)


@pytest.mark.parametrize(
    ("name", "line", "key", "words"), INVALID_CASES, ids=[c[0] for c in INVALID_CASES]
)
def test_invalid_file_error_names_file_line_and_key(
    name: str, line: int, key: str, words: str
) -> None:
    path = INVALID / name
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    error = info.value
    assert (error.file, error.line, error.key) == (str(path), line, key)
    assert words in error.detail
    key_part = f" '{key}'" if key else ""
    assert str(error) == f"{path}:{line}: config{key_part}: {error.detail}"


def test_identity_twice_in_one_policy_is_an_error() -> None:
    text = MINIMAL + f"policy:\n  app:\n    identities:\n    - {CLIENT}\n    - {CLIENT}\n"
    error = config_error(text)
    assert (error.file, error.line, error.key) == ("test.yml", 13, "policy.app.identities[1]")
    assert "identity already has a policy" in error.detail


def test_missing_env_variable_in_a_list_names_variable_and_line() -> None:
    text = MINIMAL + "policy:\n  app:\n    identities:\n    - ${APP_IDENTITY}\n"
    error = config_error(text)
    assert (error.line, error.key) == (12, "policy.app.identities[0]")
    assert "'APP_IDENTITY' in line 12" in error.detail


def test_key_written_as_a_bare_name_gets_a_hint() -> None:
    error = config_error(MINIMAL + "keys:\n- my-key\n")
    assert (error.line, error.key) == (10, "keys[0]")
    assert "write a key as '- name: my-key'" in error.detail


def test_missing_required_section_points_at_the_document() -> None:
    error = config_error("admin: {identity: disabled}\nkeystore: {fs: {path: k}}\n")
    assert (error.line, error.key) == (1, "tls.key")


def test_missing_file_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.file == str(path)
    assert str(info.value).startswith(f"{path}: config: cannot read the config file")


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yml"
    path.write_bytes(MINIMAL.encode() + b"# caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_load_config_reads_a_written_file(tmp_path: Path) -> None:
    path = tmp_path / "kes.yml"
    path.write_text(MINIMAL.replace(ADMIN, "${ADMIN}"))
    config = load_config(str(path), environ={"ADMIN": "disabled"})
    assert (config.file, config.admin_identity) == (str(path), "disabled")


def test_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    error = config_error("\n".join(lines) + "\n")
    assert "too many values" in error.detail


# -- value syntaxes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("0s", 0.0),
        ("-0", 0.0),
        ("30s", 30.0),
        ("5m0s", 300.0),
        ("1h", 3600.0),
        ("1.5h", 5400.0),
        ("1h30m", 5400.0),
        ("300ms", 0.3),
        ("1.5s", 1.5),
        (".5s", 0.5),
        ("5.s", 5.0),
        ("10us", 1e-5),
        ("10µs", 1e-5),
        ("7ns", 7e-9),
        ("+2m", 120.0),
    ],
)
def test_parse_duration_accepts_go_syntax(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "30", "-5s", "-1h30m", "5 m", "1d", "s", ".s", "1.2.3s", "3000000h"]
)
def test_parse_duration_rejects_invalid_and_negative(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("", logging.INFO),
        ("on", logging.INFO),
        ("ON", logging.INFO),
        ("info", logging.INFO),
        (" Info ", logging.INFO),
        ("debug", logging.DEBUG),
        ("warn", logging.WARNING),
        ("error", logging.ERROR),
        ("INFO+2", 25),
        ("error+1", 42),
        ("debug+-4", 0),
        ("-4", logging.DEBUG),
        ("8", logging.ERROR),
        ("off", None),
        ("OFF", None),
    ],
)
def test_parse_log_level_maps_slog_levels_to_python(text: str, level: int | None) -> None:
    assert parse_log_level(text) == level


@pytest.mark.parametrize("text", ["loud", "warning", "INFO-2", "INFO+", "INFO+x", "1.5", "true"])
def test_parse_log_level_rejects_unknown_levels(text: str) -> None:
    with pytest.raises(ValueError, match="log level"):
        parse_log_level(text)


@pytest.mark.parametrize(
    ("word", "value"),
    [
        *[("true", True), ("True", True), ("yes", True), ("ON", True), ("y", True)],
        *[("false", False), ("NO", False), ("off", False), ("n", False)],
    ],
)
def test_skip_auth_accepts_yaml_boolean_words(word: str, value: bool) -> None:
    text = MINIMAL + f"api:\n  /v1/ready:\n    skip_auth: {word}\n"
    assert parse_config(text, environ={}).api["/v1/ready"].skip_auth is value


def test_every_route_path_can_be_configured() -> None:
    routes = "".join(f"  {path}:\n    skip_auth: false\n" for path in ROUTE_PATHS)
    config = parse_config(MINIMAL + "api:\n" + routes, environ={})
    assert tuple(config.api) == ROUTE_PATHS


# -- keystores ------------------------------------------------------------------------------


async def test_fs_keystore_connects_and_creates_its_directory(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    keystore = await FSKeystoreConfig(path=str(directory)).connect()
    try:
        assert isinstance(keystore, Keystore)
        assert directory.is_dir()
        await keystore.create("my-key", b"record")
        assert (directory / "my-key").read_bytes() == b"record"
    finally:
        await keystore.close()


async def test_memory_keystore_connects_to_an_empty_store() -> None:
    config = MemoryKeystoreConfig()
    keystore = await config.connect()
    assert isinstance(keystore, Keystore)
    assert (await keystore.list("")).names == []
    assert config.describe() == "In-memory"


def test_crypto_inline_limit_defaults_and_parses() -> None:
    base = "admin:\n  identity: x\ntls:\n  key: k\n  cert: c\nkeystore:\n  fs:\n    path: p\n"
    assert parse_config(base, environ={}).crypto_inline_limit == 262144
    config = parse_config(base + "crypto:\n  inline_limit: ${LIMIT}\n", environ={"LIMIT": "0"})
    assert config.crypto_inline_limit == 0
    with pytest.raises(ConfigError, match=r"<config>:10: config 'crypto.inline_limit'"):
        parse_config(base + "crypto:\n  inline_limit: -1\n", environ={})
