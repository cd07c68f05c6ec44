"""Helpers for catalog tests (imported as ``catalog.support``): a publisher key of the test's
own, a placeholder source (the local echo connector and one action) in any version, and
catalog documents built and signed the way ``scripts/sign-catalog`` builds them."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aileron_cli.catalog.build import build_catalog, entry_from_source
from aileron_cli.examples import CONNECTORS

TEST_KEY_ID = "test-publisher"


def public_b64(key: Ed25519PrivateKey) -> str:
    """The raw public key of ``key``, base64 (what ``keys trust`` takes)."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def say_manifest(version: str) -> str:
    """``echo-say`` requiring local://echo ``version``."""
    return f"""+++
name = "echo-say"
version = "{version}"

[[inputs]]
name = "message"
type = "string"
description = "The text to echo back."

[[requires.connectors]]
fqn = "local://echo"
version = "{version}"

[[execute]]
id = "say"
connector = "local://echo"
tool = "echo"
op = "say"
args = {{ message = "${{args.message}}" }}
+++
Echo a message through the local echo server.
"""


def careful_manifest(version: str) -> str:
    """``echo-careful`` (approval required) requiring local://echo ``version``."""
    return (
        say_manifest(version)
        .replace('name = "echo-say"', 'name = "echo-careful"', 1)
        .replace('op = "say"', 'op = "say-carefully"')
    )


def echo_source(root: Path, version: str, host: str = "127.0.0.1:8765") -> Path:
    """A catalog source ``root/echo`` (the local echo connector at ``host``, version
    ``version``, actions echo-say and echo-careful, tags demo and testing)."""
    spec: dict[str, Any] = json.loads(
        (CONNECTORS / "local-echo.json").read_text().replace("127.0.0.1:8765", host)
    )
    spec["connector"]["version"] = version
    source = root / f"echo-{version}" / "echo"
    (source / "actions").mkdir(parents=True)
    (source / "connector.json").write_text(json.dumps(spec))
    (source / "actions" / "echo-say.md").write_text(say_manifest(version))
    (source / "actions" / "echo-careful.md").write_text(careful_manifest(version))
    (source / "tags").write_text("demo\ntesting\n")
    return source


def echo_catalog(
    root: Path, key: Ed25519PrivateKey, versions: tuple[str, ...] = ("1.0.0",)
) -> bytes:
    """A catalog document of the echo source in ``versions``, signed by ``key``."""
    entries = [entry_from_source(echo_source(root, v)) for v in versions]
    return build_catalog(entries, key, TEST_KEY_ID)


def entries_of(document: bytes) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(document)["entries"]
    return entries


def with_entries(entries: list[dict[str, Any]]) -> bytes:
    """A catalog document holding ``entries`` as given (tampered ones included)."""
    return json.dumps({"format": "aileron.catalog.v1", "entries": entries}).encode()
