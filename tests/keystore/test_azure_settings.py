"""The Azure settings: one field list, checked once, the same from a file as from code.

A check the settings make is reported by the config file at the line of the key it concerns;
building the settings (and the config) imports no Azure SDK.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aiokes.config import AzureKeyVaultConfig, parse_config
from aiokes.errors import ConfigError
from aiokes.keystore.azure import AzureKeyVaultSettings

MINIMAL = (Path(__file__).parent.parent / "data" / "config" / "minimal.yml").read_text()
FS_BLOCK = "  fs:\n    path: /var/lib/aiokes/keys\n"


def _azure_file(*lines: str) -> str:
    keyvault = "".join(f"      {line}\n" for line in lines)
    return MINIMAL.replace(FS_BLOCK, f"  azure:\n    keyvault:\n{keyvault}")


def _file_error(*lines: str) -> ConfigError:
    with pytest.raises(ConfigError) as raised:
        parse_config(_azure_file(*lines), file="test.yml", environ={})
    return raised.value


@pytest.mark.parametrize(
    ("settings", "setting"),
    [
        ({"endpoint": "http://vault.example"}, "endpoint"),
        ({"endpoint": "vault.example"}, "endpoint"),
        ({"endpoint": "https://v.vault.azure.net?x=1"}, "endpoint"),
        ({"tenant_id": "t", "client_id": "c"}, "client_secret"),
        ({"tenant_id": "t", "client_secret": "s"}, "client_id"),
        (
            {
                "tenant_id": "t",
                "client_id": "c",
                "client_secret": "s",
                "managed_identity_client_id": "m",
            },
            "managed_identity_client_id",
        ),
        ({"timeout": 0}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"retry_max_delay": -0.5}, "retry_max_delay"),
        ({"authority_host": "http://login.example"}, "authority_host"),
        ({"authority_host": "https://"}, "authority_host"),
        ({"status_timeout": 0}, "status_timeout"),
    ],
)
def test_a_bad_setting_is_named_by_its_field(settings: dict[str, object], setting: str) -> None:
    options = {"endpoint": "https://v.vault.azure.net", **settings}
    with pytest.raises(ConfigError) as raised:
        AzureKeyVaultSettings(**options)  # type: ignore[arg-type]
    assert raised.value.key == setting
    assert raised.value.file is None


def test_the_config_file_type_is_the_settings_type() -> None:
    keystore = parse_config(
        _azure_file("endpoint: https://v.vault.azure.net", "ca: /etc/ca.pem"), environ={}
    ).keystore
    assert isinstance(keystore, AzureKeyVaultConfig)
    assert isinstance(keystore, AzureKeyVaultSettings)
    assert keystore.ca_file == "/etc/ca.pem"
    assert keystore.timeout == AzureKeyVaultSettings(endpoint="https://x").timeout == 5.0


def test_a_settings_check_is_reported_at_the_key_of_the_file() -> None:
    # Accepted by the file's own checks before, refused only when the keystore was built.
    error = _file_error("endpoint: https://v.vault.azure.net/?api=1")
    assert (error.file, error.line, error.key) == (
        "test.yml",
        9,
        "keystore.azure.keyvault.endpoint",
    )
    assert error.detail == (
        "'https://v.vault.azure.net/?api=1' is not an https URL "
        "(e.g. https://my-vault.vault.azure.net)"
    )


def test_a_settings_check_names_the_file_key_not_the_field() -> None:
    error = _file_error(
        "endpoint: https://v.vault.azure.net",
        "authority_host: https://",
    )
    assert (error.line, error.key) == (10, "keystore.azure.keyvault.authority_host")
    assert error.detail == "'https://' must be an https URL"


def test_settings_and_config_import_no_azure_sdk() -> None:
    """The ``azure`` extra is optional: with the SDK unimportable, an Azure config still
    loads and the fs keystore still runs."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys, tempfile

        class NoAzure:
            def find_spec(self, name, path=None, target=None):
                if name == "azure" or name.startswith("azure."):
                    raise ImportError("no Azure SDK here")

        sys.meta_path.insert(0, NoAzure())
        import aiokes
        from aiokes.config import parse_config
        from aiokes.keystore.azure import AzureKeyVaultSettings

        azure = parse_config({_azure_file("endpoint: https://v.vault.azure.net")!r}, environ={{}})
        assert isinstance(azure.keystore, AzureKeyVaultSettings)

        async def run_fs(directory):
            text = {MINIMAL!r}.replace("/var/lib/aiokes/keys", directory)
            keystore = await parse_config(text, environ={{}}).keystore.connect()
            await keystore.create("k", b"record")
            assert await keystore.get("k") == b"record"
            await keystore.close()

        with tempfile.TemporaryDirectory() as directory:
            asyncio.run(run_fs(directory))
        print(sorted(name for name in sys.modules if name.split(".")[0] == "azure"))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
