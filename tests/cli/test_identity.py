"""``aiokes identity``: files, identities and API keys as ``kes identity`` and the operator
tutorial make and print them. Most of these need no server."""

from __future__ import annotations

import datetime
import ipaddress
import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from aiokes.cli._identity_files import create_identity_files, recognise
from aiokes.errors import IdentityFileError
from aiokes.identity import APIKey, identity_of_certificate
from tests.cli.conftest import ainvoke, client_env, invoke
from tests.conftest import RunningServer

# Public play.min.io admin key and its identity (minio/kes:root.cert, spec §4.1).
PLAY_API_KEY = "kes:v1:AD9E7FSYWrMD+VjhI6q545cYT9YOyFxZb7UnjEepYDRc"
PLAY_IDENTITY = "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22"
# minio/kms-go:kes/apikey_test.go (parseAPIKeyTests).
KMS_GO_API_KEY = "kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs"
KMS_GO_IDENTITY = "ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6"


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend standard output is a terminal (KES prints for people there)."""
    monkeypatch.setattr(sys.modules["aiokes.cli.identity"], "is_terminal", lambda: True)


def _certificate(path: str | Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


# -- identity of ---------------------------------------------------------------------------


@pytest.mark.parametrize(("api_key", "identity"), [(PLAY_API_KEY, PLAY_IDENTITY),
                                                   (KMS_GO_API_KEY, KMS_GO_IDENTITY)])  # fmt: skip
def test_identity_of_an_api_key_matches_kes(api_key: str, identity: str) -> None:
    result = invoke(["identity", "of", api_key])
    assert (result.exit_code, result.stdout) == (0, identity + "\n")


def test_identity_of_on_a_terminal_has_the_tutorial_layout(terminal: None) -> None:
    result = invoke(["identity", "of", PLAY_API_KEY])
    assert result.stdout == f"\n  Identity:  {PLAY_IDENTITY}\n"


def test_bare_identity_command_computes_like_identity_of() -> None:
    assert invoke(["identity", PLAY_API_KEY]).stdout == PLAY_IDENTITY + "\n"


def _write_kms_go_key_file() -> None:
    seed_key = APIKey.parse(KMS_GO_API_KEY).private_key()
    Path("client.key").write_bytes(
        seed_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def test_identity_of_a_private_key_file_prints_only_the_identity() -> None:
    """As ``kes identity of``: an identity, never the API key that is the same secret."""
    _write_kms_go_key_file()
    result = invoke(["identity", "of", "--json", "client.key"])
    assert json.loads(result.stdout) == {"identity": KMS_GO_IDENTITY}
    assert invoke(["identity", "of", "client.key"]).stdout == KMS_GO_IDENTITY + "\n"


def test_bare_identity_of_a_private_key_file_prints_its_api_key_as_kes_does() -> None:
    _write_kms_go_key_file()
    assert invoke(["identity", "client.key"]).stdout == KMS_GO_API_KEY + "\n"
    result = invoke(["identity", "--json", "client.key"])
    assert json.loads(result.stdout) == {"identity": KMS_GO_IDENTITY, "api_key": KMS_GO_API_KEY}


def test_bare_identity_of_a_private_key_file_warns_on_a_terminal(terminal: None) -> None:
    _write_kms_go_key_file()
    lines = invoke(["identity", "client.key"]).stdout.splitlines()
    assert lines[0] == "Your API key:"
    assert lines[2].strip() == KMS_GO_API_KEY
    assert lines[4:] == [
        "It corresponds to the private key in: client.key.",
        "Keep it secret and secure!",
    ]


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("missing.crt", "Error: cannot read 'missing.crt'"),
        ("kes:v1:AAAA", "Error: invalid api key"),
        ("garbage.pem", "Error: 'garbage.pem' contains no valid PEM certificate or private key"),
    ],
)
def test_identity_of_bad_input_is_one_error_line(argument: str, message: str) -> None:
    Path("garbage.pem").write_text("not a pem file\n")
    result = invoke(["identity", "of", argument])
    assert result.exit_code == 1
    assert result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1


# -- identity new -------------------------------------------------------------------------


def test_identity_new_writes_private_key_and_public_crt_like_the_tutorial() -> None:
    result = invoke(["identity", "new", "--ip", "127.0.0.1", "localhost"])
    assert result.exit_code == 0, result.output
    identity = identity_of_certificate(_certificate("public.crt"))
    lines = result.stdout.split("\n")
    assert lines[:4] == [
        "",
        "  Private key:  private.key",
        "  Certificate:  public.crt",
        f"  Identity:     {identity}",
    ]
    assert lines[5] == (
        "  private.key is secret (mode 0600): keep it where it is used and never share or paste it."
    )
    assert stat.S_IMODE(Path("private.key").stat().st_mode) == 0o600
    _assert_private_key_not_shown(result.output, "private.key")


def _assert_private_key_not_shown(output: str, key_file: str) -> None:
    """Neither the key nor its API-key form (the same secret) is printed."""
    key = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
    api_key = str(APIKey.from_private_key(key))  # type: ignore[arg-type]
    assert api_key not in output
    assert "kes:v1:" not in output
    assert "API key" not in output
    assert "PRIVATE KEY" not in output


def test_identity_new_with_key_and_cert_shows_no_api_key(terminal: None) -> None:
    """deploy/README.md step 3: the server's TLS key must not be printed as an API key."""
    files = ["--key", "server.key", "--cert", "server.crt"]
    sans = ["--ip", "10.0.0.5", "--dns", "kms.example.net"]
    result = invoke(["identity", "new", *files, *sans, "kms.example.net"])
    assert result.exit_code == 0, result.output
    _assert_private_key_not_shown(result.output, "server.key")
    assert "server.key is secret" in result.stdout


def test_identity_new_then_identity_of_prints_the_same_identity() -> None:
    created = json.loads(invoke(["identity", "new", "--json", "--key=client.key",
                                 "--cert=client.crt", "MyApp"]).stdout)  # fmt: skip
    assert created["private_key"] == "client.key"
    assert invoke(["identity", "of", "client.crt"]).stdout == created["identity"] + "\n"
    assert invoke(["identity", "of", "client.key"]).stdout == created["identity"] + "\n"
    assert "api_key" not in created
    _assert_private_key_not_shown(json.dumps(created), "client.key")


def test_identity_new_certificate_carries_sans_usages_and_subject() -> None:
    args = ["identity", "new", "--ip", "127.0.0.1", "--ip", "::1,10.0.0.2", "--dns",
            "localhost", "--dns", "kes.example.org", "--expiry", "2h", "kes-server"]  # fmt: skip
    assert invoke(args).exit_code == 0
    certificate = _certificate("public.crt")
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost", "kes.example.org"]
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address(ip) for ip in ("127.0.0.1", "::1", "10.0.0.2")
    ]
    usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
    common_name = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert common_name == "kes-server"
    validity = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert validity == datetime.timedelta(hours=2)
    assert isinstance(certificate.public_key(), ed25519.Ed25519PublicKey)


def test_identity_new_without_subject_names_the_certificate_by_its_identity() -> None:
    invoke(["identity", "new"])
    certificate = _certificate("public.crt")
    common_name = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert common_name == identity_of_certificate(certificate)
    validity = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert validity == datetime.timedelta(hours=720)


def test_identity_new_refuses_to_overwrite_without_force() -> None:
    invoke(["identity", "new", "first"])
    before = Path("private.key").read_bytes(), Path("public.crt").read_bytes()
    result = invoke(["identity", "new", "second"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: private key 'private.key' already exists. Use --force to overwrite it\n"
    )
    assert (Path("private.key").read_bytes(), Path("public.crt").read_bytes()) == before
    assert invoke(["identity", "new", "--force", "second"]).exit_code == 0
    assert Path("private.key").read_bytes() != before[0]
    assert stat.S_IMODE(Path("private.key").stat().st_mode) == 0o600


def test_identity_new_refuses_when_only_the_certificate_exists() -> None:
    Path("public.crt").write_text("keep me")
    result = invoke(["identity", "new"])
    assert result.exit_code == 1
    assert "certificate 'public.crt' already exists" in result.stderr
    assert not Path("private.key").exists()
    assert Path("public.crt").read_text() == "keep me"


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["--key", "only.key"], "--key needs --cert"),
        (["--ip", "not-an-ip"], "'--ip'"),
        (["--expiry", "soon"], "'--expiry'"),
        (["--expiry", "0h"], "'--expiry'"),
    ],
)
def test_identity_new_usage_errors_exit_1_and_write_nothing(args: list[str], mentions: str) -> None:
    result = invoke(["identity", "new", *args])
    assert result.exit_code == 1  # kes: cli.Fatal
    assert mentions in result.stderr
    assert list(Path().iterdir()) == []


def test_identity_new_encrypt_writes_a_password_protected_key() -> None:
    result = invoke(["identity", "new", "--encrypt", "--json", "secure"], input="pw\npw\n")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert "api_key" not in document  # printing it would undo the encryption
    pem = Path("private.key").read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    key = serialization.load_pem_private_key(pem, password=b"pw")
    assert APIKey.from_private_key(key).identity == document["identity"]  # type: ignore[arg-type]


# -- API keys --------------------------------------------------------------------------------


def test_bare_identity_command_prints_only_a_new_api_key_for_scripts() -> None:
    first, second = invoke(["identity"]).stdout, invoke(["identity"]).stdout
    assert first != second
    assert APIKey.parse(first.strip())
    assert first.count("\n") == 1


def test_bare_identity_command_explains_the_key_on_a_terminal(terminal: None) -> None:
    lines = invoke(["identity"]).stdout.splitlines()
    api_key = APIKey.parse(lines[2].strip())
    assert lines[0] == "Your API key:"
    assert lines[8].strip() == api_key.identity


def test_python_dash_m_aiokes_runs_the_cli() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "aiokes", "identity", "of", PLAY_API_KEY],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).parents[2],  # the repository, whether or not aiokes is installed
    )
    assert (completed.returncode, completed.stdout) == (0, PLAY_IDENTITY + "\n")


# -- identities on the server ----------------------------------------------------------------


async def test_identity_info_describes_the_caller(server: RunningServer) -> None:
    result = await ainvoke(["identity", "info"], client_env(server, server.app))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"Identity    {server.app.identity}"
    assert "Policy      my-app" in lines
    assert "Role        User" in lines
    assert any("/v1/key/create/my-key*" in line for line in lines)


async def test_identity_info_of_another_identity(server: RunningServer) -> None:
    env = client_env(server)
    result = await ainvoke(["identity", "info", "--json", server.app.identity], env)
    assert json.loads(result.stdout)["policy"] == "my-app"
    missing = await ainvoke(["identity", "info", server.stranger.identity], env)
    assert (missing.exit_code, missing.stderr) == (
        1,
        "Error: failed to describe identity: identity does not exist\n",
    )


async def test_identity_ls_lists_admin_and_policy_identities(server: RunningServer) -> None:
    result = await ainvoke(["identity", "ls", "--json"], client_env(server))
    assert {server.admin.identity, server.app.identity} <= set(json.loads(result.stdout))


def test_identity_file_failures_are_identity_file_errors(tmp_path: Path) -> None:
    existing = tmp_path / "taken.key"
    existing.write_text("")
    with pytest.raises(IdentityFileError, match=r"private key '.*taken\.key' already exists"):
        create_identity_files(
            str(existing), str(tmp_path / "c.crt"), subject=None, ips=[], dns_names=[],
            validity=datetime.timedelta(hours=1), force=False,
        )  # fmt: skip
    with pytest.raises(IdentityFileError, match="contains no valid PEM"):
        recognise(str(existing))
    with pytest.raises(IdentityFileError, match=r"cannot read '.*nowhere'"):
        recognise(str(tmp_path / "nowhere"))
