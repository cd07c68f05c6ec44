"""``aileron binding add --github-app|--from-command``: the CLI refuses what the daemon could
not use before it sends anything, and never echoes a private key it was given."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from helpers import aileron

NAME = "app/github/default"


def ec_key(tmp_path: Path) -> Path:
    path = tmp_path / "ec.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--app-id", "1"], "--app-id go with --github-app"),
        (["--ttl", "5"], "--ttl goes with --from-command"),
        (["--github-app", "--app-id", "1"], "--github-app needs --installation-id"),
        (["--from-command", "gh 'auth"], "--from-command cannot be split"),
        (["--from-command", ""], "argv must be a non-empty list"),
        (["--from-command", "gh auth token", "--ttl", "-1"], "ttl_s must be"),
    ],
)
def test_incomplete_or_mixed_source_options_are_refused(extra: list[str], message: str) -> None:
    """Options of one source without it, a missing option, an unsplittable command or a bad
    TTL are usage errors naming the problem (no daemon needed)."""
    done = aileron("binding", "add", NAME, *extra)
    assert done.returncode != 0 and message in done.stderr, done.stderr


def test_a_key_that_is_not_rsa_is_refused_without_being_shown(tmp_path: Path) -> None:
    """An EC key (GitHub App keys are RSA) is refused; no line of it is printed."""
    path = ec_key(tmp_path)
    done = aileron(
        "binding", "add", NAME, "--github-app", "--app-id", "1", "--installation-id", "2",
        "--private-key-file", str(path),
    )  # fmt: skip
    assert done.returncode != 0 and "not an unencrypted RSA key" in done.stderr
    body = path.read_text().splitlines()[1]
    assert body not in done.stdout + done.stderr


def test_plain_http_to_another_host_is_refused(tmp_path: Path) -> None:
    """--api-url http://… is refused unless it is this machine."""
    path = tmp_path / "k.pem"
    path.write_text("-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n")
    done = aileron(
        "binding", "add", NAME, "--github-app", "--app-id", "1", "--installation-id", "2",
        "--private-key-file", str(path), "--api-url", "http://github.example",
    )  # fmt: skip
    assert done.returncode != 0 and "API URL must be https" in done.stderr
