"""deploy/: the example configs load and serve, their MinIO policy grants exactly the calls
MinIO makes (spec §11.2), and the systemd unit keeps its hardening."""

from __future__ import annotations

import re
import ssl
import subprocess
import sys
import textwrap
from pathlib import Path

import aiohttp
import pytest
import trustme

from aiokes.api.routes import Route
from aiokes.api.table import default_routes
from aiokes.client import Client
from aiokes.config import AzureKeyVaultConfig, ListenAddress, ServerConfig, load_config
from aiokes.errors import NotAllowed
from aiokes.policy import Policy, match
from aiokes.server import Server
from tests.api.helpers import send
from tests.conftest import StartServer, make_identity

DEPLOY = Path(__file__).parent.parent / "deploy"
EXAMPLES = [DEPLOY / "config.fs.yml", DEPLOY / "config.azure.yml"]

ENVIRONMENT = {
    "MINIO_IDENTITY": "a" * 64,
    "OPERATOR_IDENTITY": "b" * 64,
    "AZURE_KEYVAULT_ENDPOINT": "https://kes-test-1.vault.azure.net",
    "AZURE_TENANT_ID": "41a37d4e-b3c4-49f4-b330-1114fb0271c8",
    "AZURE_CLIENT_ID": "c3b7badf-cd2b-4297-bece-4de5f2e575f6",
    "AZURE_CLIENT_SECRET": "-.j4XP6Sa7E39.KWn-SL~Dgbz~H-H-TPxT",
}

# One request path per MinIO → KES call of spec §11.2 (kms-go's paths; list roots end in "/").
MINIO_CALLS = {
    "/v1/key/create/minio-default-key": "start-up CreateKey; mc admin kms key create",
    "/v1/key/import/imported-key": "mc admin kms key import",
    "/v1/key/describe/minio-default-key": "DescribeKey every 10 s",
    "/v1/key/generate/minio-default-key": "SSE writes, bucket encryption probe, key status",
    "/v1/key/decrypt/minio-default-key": "object reads, key status",
    "/v1/key/bulk/decrypt/minio-default-key": "object reads by MinIO <= 2023",
    "/v1/key/list/": "mc admin kms key list",
    "/v1/key/list/minio-": "mc admin kms key list <prefix>",
    "/v1/key/hmac/minio-default-key": "auto-generated root credentials",
    "/v1/status": "admin KMS status",
    "/v1/metrics": "admin KMS metrics",
    "/v1/api": "admin KMS APIs",
    "/v1/policy/describe/minio": "policy views",
    "/v1/policy/read/minio": "policy views",
    "/v1/policy/list/": "policy views",
    "/v1/identity/describe/" + "a" * 64: "identity views",
    "/v1/identity/list/": "identity views",
    "/v1/identity/self/describe": "identity views",
}
NEVER_CALLED_BY_MINIO = [
    "/v1/key/delete/minio-default-key",
    "/v1/key/delete/",
    "/v1/key/encrypt/minio-default-key",
    "/v1/log/audit",
    "/v1/log/error",
    "/v1/ready",
]


def _config(path: Path) -> ServerConfig:
    return load_config(path, environ=ENVIRONMENT)


def _policy(config: ServerConfig, name: str) -> Policy:
    (policy,) = (p for p in config.policies if p.name == name)
    return Policy(policy.name, policy.allow, policy.deny)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_example_config_loads_with_its_environment(example: Path) -> None:
    config = _config(example)
    assert config.address == ListenAddress("0.0.0.0", 7373)
    assert {p.name: p.identities for p in config.policies} == {
        "minio": ("a" * 64,),
        "operator": ("b" * 64,),
    }
    assert config.api["/v1/ready"].skip_auth is True
    assert not [
        path for path, route in config.api.items() if route.skip_auth and path != "/v1/ready"
    ]


def test_azure_example_takes_its_credentials_from_the_environment() -> None:
    keystore = _config(EXAMPLES[1]).keystore
    assert isinstance(keystore, AzureKeyVaultConfig)
    assert keystore.describe() == "Azure KeyVault: https://kes-test-1.vault.azure.net"
    assert keystore.client_secret == ENVIRONMENT["AZURE_CLIENT_SECRET"]
    assert ENVIRONMENT["AZURE_CLIENT_SECRET"] not in repr(keystore)


def test_every_variable_of_the_examples_is_in_the_env_template() -> None:
    template = (DEPLOY / "aiokes.env").read_text()
    defined = set(re.findall(r"^#? ?([A-Z_]+)=", template, flags=re.MULTILINE))
    for example in EXAMPLES:
        settings = "\n".join(line.split("#")[0] for line in example.read_text().splitlines())
        used = set(re.findall(r"\$\{\s*([A-Za-z_]+)\s*\}", settings))
        assert used, example.name
        assert used <= defined, example.name


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
@pytest.mark.parametrize("path", sorted(MINIO_CALLS))
def test_minio_policy_grants_every_call_minio_makes(example: Path, path: str) -> None:
    assert _policy(_config(example), "minio").allows(path), MINIO_CALLS[path]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
@pytest.mark.parametrize("path", NEVER_CALLED_BY_MINIO)
def test_minio_policy_grants_nothing_minio_does_not_call(example: Path, path: str) -> None:
    assert not _policy(_config(example), "minio").allows(path)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_every_minio_rule_is_needed_by_some_call(example: Path) -> None:
    """Exactly: no rule grants a route that none of MinIO's calls uses."""
    policy = _policy(_config(example), "minio")
    unused = [rule for rule in policy.allow if not any(match(rule, path) for path in MINIO_CALLS)]
    assert unused == []


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_operator_policy_reads_but_never_touches_keys(example: Path) -> None:
    operator = _policy(_config(example), "operator")
    for path in ("/v1/status", "/v1/metrics", "/v1/log/audit", "/v1/log/error", "/v1/key/list/"):
        assert operator.allows(path), path
    for verb in ("create", "import", "delete", "generate", "encrypt", "decrypt", "hmac"):
        assert not operator.allows(f"/v1/key/{verb}/k"), verb
    assert not operator.allows("/v1/key/bulk/decrypt/k")


def test_both_examples_have_the_same_policies_and_api() -> None:
    fs, azure = (_config(example) for example in EXAMPLES)
    assert fs.policies == azure.policies
    assert fs.api == azure.api


# --- the fs example, serving ---------------------------------------------------------------------


async def test_fs_example_serves_minio_and_probes(tmp_path: Path, tls_ca: trustme.CA) -> None:
    certificate = tls_ca.issue_cert("127.0.0.1", "localhost")
    (tmp_path / "tls").mkdir()
    certificate.private_key_pem.write_to_path(str(tmp_path / "tls" / "server.key"))
    certificate.cert_chain_pems[0].write_to_path(str(tmp_path / "tls" / "server.crt"))
    tls_ca.cert_pem.write_to_path(str(tmp_path / "ca.crt"))
    minio, operator = make_identity(tmp_path, "minio"), make_identity(tmp_path, "operator")
    text = EXAMPLES[0].read_text().replace("/etc/aiokes/tls/", f"{tmp_path}/tls/")
    config_file = tmp_path / "config.yml"
    config_file.write_text(text.replace("/var/lib/aiokes/keys", f"{tmp_path}/keys"))
    environ = {"MINIO_IDENTITY": minio.identity, "OPERATOR_IDENTITY": operator.identity}
    server = Server(
        load_config(config_file, environ=environ), address=ListenAddress("127.0.0.1", 0)
    )
    await server.start()
    url = f"https://127.0.0.1:{server.port}"
    try:
        async with (
            Client(url, cert_file=minio.cert_file, key_file=minio.key_file,
                   ca_file=str(tmp_path / "ca.crt")) as as_minio,
            Client(url, cert_file=operator.cert_file, key_file=operator.key_file,
                   ca_file=str(tmp_path / "ca.crt")) as as_operator,
        ):  # fmt: skip
            await as_minio.create_key("minio-default-key")
            dek = await as_minio.generate_key("minio-default-key", b"{}")
            assert (
                await as_minio.decrypt("minio-default-key", dek.ciphertext, b"{}") == dek.plaintext
            )
            with pytest.raises(NotAllowed):
                await as_minio.delete_key("minio-default-key")
            assert "kes_http_request_success" in await as_operator.metrics()
            with pytest.raises(NotAllowed):
                await as_operator.generate_key("minio-default-key")
        # A Kubernetes probe: TLS, but no client certificate.
        probe = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/v1/ready", ssl=probe) as response:
                assert response.status == 200
            async with session.get(url + "/version", ssl=probe) as response:
                assert response.status == 200  # the README's liveness probe
            async with session.get(url + "/v1/status", ssl=probe) as response:
                assert response.status == 400  # KES: "tls: client certificate is required"
    finally:
        await server.stop()


# --- the systemd unit ----------------------------------------------------------------------------


def _unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in (DEPLOY / "aiokes.service").read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


HARDENING = {
    "Type": "notify",
    "NotifyAccess": "main",
    "User": "aiokes",
    "Group": "aiokes",
    "EnvironmentFile": "-/etc/aiokes/aiokes.env",
    "ExecStart": "/usr/local/bin/aiokes server --config /etc/aiokes/config.yml",
    "ExecReload": "/bin/kill -HUP $MAINPID",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "CAP_IPC_LOCK",
    "AmbientCapabilities": "CAP_IPC_LOCK",
    "LimitMEMLOCK": "infinity",
    "LimitCORE": "0",
    "ReadWritePaths": "/var/lib/aiokes /var/log/aiokes",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "LockPersonality": "yes",
    "RestrictRealtime": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "UMask": "0077",
    "MemoryDenyWriteExecute": "yes",
}


@pytest.mark.parametrize(("key", "value"), HARDENING.items())
def test_unit_setting(key: str, value: str) -> None:
    assert _unit_settings().get(key) == [value]


def test_unit_filters_system_calls_to_a_service_set_that_allows_mlock() -> None:
    assert _unit_settings()["SystemCallFilter"] == ["@system-service", "~@privileged"]


MDWE_PROBE = textwrap.dedent(
    """
    import ctypes, sys
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        sys.exit(77)  # the kernel has no MDWE (Linux < 6.3)
    from aiokes.tls import server_context
    server_context(sys.argv[1], sys.argv[2], require_client_cert=True)
    """
)


def test_any_client_certificate_mode_works_without_write_execute_memory(
    tmp_path: Path, tls_ca: trustme.CA
) -> None:
    """The unit's MemoryDenyWriteExecute=yes must not break the ctypes verify callback of
    aiokes/_openssl_verify.py. The kernel's own MDWE (what systemd >= 257 uses, and the same
    rule as its seccomp filter for anonymous W+X pages) is set, then the TLS context is built,
    which proves the callback with a real handshake."""
    if not sys.platform.startswith("linux"):
        pytest.skip("MemoryDenyWriteExecute is Linux-only")
    certificate = tls_ca.issue_cert("localhost")
    certificate.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    certificate.cert_chain_pems[0].write_to_path(str(tmp_path / "server.crt"))
    files = [str(tmp_path / "server.crt"), str(tmp_path / "server.key")]
    result = subprocess.run(
        [sys.executable, "-c", MDWE_PROBE, *files],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode == 77:
        pytest.skip("this kernel cannot deny write+execute memory per process (PR_SET_MDWE)")
    assert result.returncode == 0, result.stderr


# --- the MinIO policy through every path alias aiokes serves (issue 11) ---------------------------


def _deploy_policies() -> str:
    """The ``policy:`` section of the fs example: MinIO as the test's ``app``, the operator as
    its ``stranger``."""
    text = EXAMPLES[0].read_text()
    section = text[text.index("\npolicy:") + 1 : text.index("\napi:") + 1]
    return section.replace("${MINIO_IDENTITY}", "{app}").replace(
        "${OPERATOR_IDENTITY}", "{stranger}"
    )


def _slashless_aliases() -> list[Route]:
    """Every subtree route: Go's mux redirects its root asked without the slash to the root
    with it, and aiokes serves that spelling directly."""
    return [route for route in default_routes().routes if route.subtree]


@pytest.mark.parametrize("route", _slashless_aliases(), ids=lambda route: route.path)
async def test_slashless_alias_is_authorized_as_the_kes_path(
    start_server: StartServer, route: Route
) -> None:
    """kms-go asks ``GET /v1/key/list`` for an empty prefix; KES's policy sees
    ``/v1/key/list/`` after the mux's redirect, so ``/v1/key/list/*`` allows it. Every alias
    must get exactly the answer of the path KES would check, for every identity."""
    server = await start_server(policy=_deploy_policies())
    method = "POST" if route.method == "PUT" else route.method  # kms-go's methods
    body = b"{}" if route.max_body else None
    for who in (server.app, server.stranger):  # MinIO, the operator
        canonical = await send(server, method, route.path, body, who=who)
        alias = await send(server, method, route.path.removesuffix("/"), body, who=who)
        assert (alias.status, alias.body) == (canonical.status, canonical.body), who


async def test_minio_lists_keys_as_kms_go_asks(start_server: StartServer) -> None:
    """``mc admin kms key list`` through current MinIO: kms-go sends the root, no slash."""
    server = await start_server(policy=_deploy_policies())
    await server.client().create_key("minio-default-key")
    reply = await send(server, "GET", "/v1/key/list", who=server.app)
    assert reply.status == 200, reply
    assert reply.json() == {"names": ["minio-default-key"]}


async def test_a_rule_for_the_slashless_spelling_does_not_allow_the_alias(
    start_server: StartServer,
) -> None:
    """KES never checks ``/v1/key/list`` against a policy, so a rule naming it allows nothing."""
    policy = "policy:\n  odd:\n    allow:\n    - /v1/key/list\n    identities:\n    - {app}\n"
    server = await start_server(policy=policy)
    reply = await send(server, "GET", "/v1/key/list", who=server.app)
    assert reply.status == 403, reply
