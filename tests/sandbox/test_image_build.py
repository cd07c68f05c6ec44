"""`aileron sandbox build` on real podman with the real `@openai/codex` from npm (acceptance 5).

The image is built on scripts/sandbox-node-base's Node base (the debootstrap Debian base plus
Debian's nodejs and npm), through this machine's TLS-intercepting proxy, whose CA certificates
(the ones ``update-ca-certificates`` reads) are passed with ``--ca-cert``. Two codex installs in
all: one pinned version, then another after the pin changes. The images carry a test-only tag.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from helpers import aileron
from sandbox.support import ensure_node_base

from aileron_cli.sandbox import images
from aileron_core.paths import Layout

pytestmark = pytest.mark.slow

REPOSITORY = "localhost/aileron-test-real"
FIRST, SECOND = "0.169.1", "0.171.0"
SYSTEM_CA_DIR = Path("/usr/local/share/ca-certificates")
"""Where the system store's local CA certificates live (``update-ca-certificates`` reads it)."""


def _pin(layout: Layout, version: str) -> None:
    layout.config.parent.mkdir(parents=True, exist_ok=True)
    layout.config.write_text(f'[sandbox.pins]\ncodex = "{version}"\n', encoding="utf-8")


def _inspect(tag: str) -> dict[str, object]:
    done = subprocess.run(
        ["podman", "image", "inspect", tag], capture_output=True, text=True, check=True
    )
    found: dict[str, object] = json.loads(done.stdout)[0]
    return found


def _codex_version(tag: str) -> str:
    done = subprocess.run(
        ["podman", "run", "--rm", "--network", "none", tag, "codex", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_pinned_codex_is_installed_and_refresh_installs_the_new_pin(
    podman: None, layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pinned codex builds behind the TLS-intercepting proxy with --ca-cert; after the pin
    changes, `--refresh` installs the new version; a plain rebuild reuses the cached install;
    the host's NO_PROXY reaches the build only, never the image's ENV."""
    base = ensure_node_base()
    monkeypatch.setenv(images.REPOSITORY_VAR, REPOSITORY)
    monkeypatch.setenv("NO_PROXY", "aileron-test.invalid")
    tag = images.default_tag("codex", os.environ)
    assert tag.startswith(f"{REPOSITORY}/sandbox-codex:")
    certs = sorted(SYSTEM_CA_DIR.glob("**/*.crt"))
    cert_args = [arg for cert in certs for arg in ("--ca-cert", str(cert))]
    build = ["sandbox", "build", "codex", "--engine", "podman", "--base-image", base, *cert_args]

    _pin(layout, FIRST)
    first = aileron(*build, timeout=900)
    assert first.returncode == 0, first.stderr[-4000:]
    assert first.stdout.strip() == tag
    assert f"building {tag} (codex {FIRST})" in first.stderr
    assert _codex_version(tag) == f"codex-cli {FIRST}"
    built = _inspect(tag)
    config = built["Config"]
    assert isinstance(config, dict)
    assert config["Labels"][images.LABEL_AGENT_VERSION] == FIRST
    assert not [item for item in config.get("Env") or [] if "PROXY" in item.upper()]

    _pin(layout, SECOND)
    second = aileron(*build, "--refresh", timeout=900)
    assert second.returncode == 0, second.stderr[-4000:]
    assert _codex_version(tag) == f"codex-cli {SECOND}"
    refreshed = _inspect(tag)
    labels = refreshed["Config"]["Labels"]  # type: ignore[index]
    assert labels[images.LABEL_AGENT_VERSION] == SECOND
    assert labels[images.LABEL_REFRESH] not in ("", built["Config"]["Labels"][images.LABEL_REFRESH])  # type: ignore[index]

    again = aileron(*build, timeout=300)
    assert again.returncode == 0, again.stderr[-4000:]
    assert "Using cache" in again.stderr
    assert _inspect(tag)["Id"] == refreshed["Id"]
