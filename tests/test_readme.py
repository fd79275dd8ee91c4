"""README.md and deploy/README.md as a newcomer follows them (issue 12, item 8): the tutorial's
shell blocks run as written in a fresh directory, in two "terminals"; the deploy guide's
identity steps run in order; and the paths the guides rely on exist or are ignored by git.

Only what cannot run here is replaced, each replacement checked to apply: the venv activation
(the test's own interpreter directory goes on PATH), the tutorial directory, and the port.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
DEPLOY_README = ROOT / "deploy" / "README.md"
BIN = Path(sys.executable).parent  # where `aiokes` was installed with this interpreter


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end >= 0 else len(text)]


def _blocks(text: str) -> list[tuple[str, str]]:
    """Fenced code blocks as (language, body); indented blocks of numbered steps included."""
    found = re.findall(r"^( *)```(\w*)\n(.*?)^\1```", text, flags=re.MULTILINE | re.DOTALL)
    return [
        (language, "".join(line[len(indent) :] + "\n" for line in body.splitlines()))
        for indent, language, body in found
    ]


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, f"the guide no longer says {old!r}; update this test"
    return text.replace(old, new)


def _run(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A fresh terminal: a new bash, the environment of a user, ``aiokes`` not on PATH."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("KES_", "MINIO_"))}
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd, env=environment, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_readme_says_how_aiokes_gets_on_path() -> None:
    setup = _section(README.read_text(), "## Set-up")
    assert ".venv/bin/aiokes" in setup
    assert "source .venv/bin/activate" in setup


def test_the_dev_server_directory_is_ignored_by_git() -> None:
    assert "--keystore-dir ./aiokes-keys" in README.read_text()
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "aiokes-keys/" in ignored


def test_the_readme_tutorial_runs_as_written_in_two_terminals(tmp_path: Path) -> None:
    tutorial_home = tmp_path
    section = _section(README.read_text(), "## The KES tutorial, with `aiokes`")
    assert "in a second terminal" in section.lower()
    (setup_lang, setup), (config_lang, config), (start_lang, start), (use_lang, use) = _blocks(
        section
    )
    assert (setup_lang, config_lang, start_lang, use_lang) == ("sh", "yaml", "sh", "sh")
    activate = f"export PATH={BIN}:$PATH"
    setup = _replace(setup, "source .venv/bin/activate", activate)
    setup = _replace(setup, "~/aiokes-tutorial", str(tutorial_home / "aiokes-tutorial"))
    directory = tutorial_home / "aiokes-tutorial"
    config = _replace(config, "address: 0.0.0.0:7373", "address: 127.0.0.1:0")
    start = start.strip()
    assert start == "aiokes server --config config.yml --auth off"

    # First terminal: the set-up block, the config file, then the server in the foreground.
    first = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", f"{setup}\ncat > config.yml <<'EOF'\n{config}EOF\n"
         f"exec {start}"],
        cwd=tutorial_home, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert first.stdout is not None
        output = []
        for line in first.stdout:
            output.append(line)
            if match := re.match(r"API\s+https://127\.0\.0\.1:(\d+)", line):
                port = match.group(1)
                break
        else:
            raise AssertionError("the tutorial's server did not start:\n" + "".join(output))

        # Second terminal: activate again, cd to the tutorial directory, use the server.
        use = _replace(use, "https://127.0.0.1:7373", f"https://127.0.0.1:{port}")
        result = _run(f"{activate}\ncd {directory}\n{use}", tutorial_home)
        assert result.returncode == 0, result.stderr
        dek = json.loads(result.stdout.strip().splitlines()[-1])
        assert set(dek) == {"plaintext", "ciphertext"}
        assert (directory / "keys" / "my-key-1").is_file()
    finally:
        first.terminate()
        first.wait(timeout=30)


def test_deploy_identity_steps_create_every_certificate_before_using_it(tmp_path: Path) -> None:
    """Steps 3 and 4 in one scratch directory: each `identity of X.crt` finds its file."""
    steps = _section(DEPLOY_README.read_text(), "## Install as a systemd service")
    step3 = steps[steps.index("3. **Server certificate.**") : steps.index("4. **Client")]
    step4 = steps[steps.index("4. **Client") : steps.index("5. **Config")]
    commands = [
        line.rstrip("\\").strip()
        for _, body in _blocks(step3) + _blocks(step4)
        for line in body.replace("\\\n", " ").splitlines()
        if line.strip().startswith("aiokes identity")
    ]
    assert any(" of operator.crt" in command for command in commands)
    script = f"export PATH={BIN}:$PATH\n" + "\n".join(commands)
    result = _run(script, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "kes:v1:" not in result.stdout  # no TLS private key presented as an API key
    identities = re.findall(r"^[0-9a-f]{64}$", result.stdout, flags=re.MULTILINE)
    assert len(identities) == 2


def test_deploy_steps_copy_from_the_source_directory_not_the_current_one() -> None:
    """Step 3 changes into /etc/aiokes/tls; later steps must not rely on a relative path."""
    text = DEPLOY_README.read_text()
    steps = _section(text, "## Install as a systemd service")
    step1 = steps[: steps.index("2. **Create the service user**")]
    assert re.search(r"^ *SRC=", step1, flags=re.MULTILINE)
    for language, body in _blocks(text):
        if language != "sh":
            continue
        for line in body.splitlines():
            for path in re.findall(r"(\S*deploy/[\w.]+)", line):
                assert path.startswith('"$SRC/deploy/'), line
