"""The daemon the CLI spawns holds neither the passphrase nor any token in its environment."""

from __future__ import annotations

import os
from pathlib import Path

import certifi
from helpers import aileron, kill_daemon

from aileron_core.discovery import read_daemon_info
from aileron_core.network import VARIABLES
from aileron_core.paths import Layout

PASSPHRASE = "correct horse battery staple"  # noqa: S105 (a test passphrase)
NEW_PASSPHRASE = "tr0ub4dor&3"  # noqa: S105


def _environ(pid: int) -> dict[str, str]:
    """A process's environment as the kernel shows it to any process of the same user."""
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode("utf-8", "replace")
    return dict(entry.split("=", 1) for entry in raw.split("\0") if "=" in entry)


def _cli_env() -> dict[str, str]:
    """The CLI's environment with every passphrase source and a stray token set."""
    return dict(
        os.environ,
        AILERON_VAULT_PASSPHRASE=PASSPHRASE,
        AILERON_VAULT_NEW_PASSPHRASE=NEW_PASSPHRASE,
        AILERON_TOKEN="aim_stray-token",  # noqa: S106 (not used without AILERON_API_URL)
        AILERON_DEBUG="1",
    )


def test_auto_spawned_daemon_environment_has_no_passphrase_and_unlock_still_works(
    layout: Layout,
) -> None:
    """A daemon auto-spawned by `aileron vault init` with the passphrases and a token in the
    CLI's environment keeps its home and debug switch but none of them (/proc/PID/environ);
    `vault unlock` with the passphrase in the CLI's environment still unlocks (over the API)."""
    env = _cli_env()
    try:
        done = aileron("vault", "init", env=env)
        assert done.returncode == 0, done.stderr
        info = read_daemon_info(layout.daemon_json)
        assert info is not None and info.auto_spawned
        daemon_env = _environ(info.pid)
        assert daemon_env["AILERON_HOME"] == os.environ["AILERON_HOME"]
        assert daemon_env["AILERON_DEBUG"] == "1"
        for name in ("AILERON_VAULT_PASSPHRASE", "AILERON_VAULT_NEW_PASSPHRASE", "AILERON_TOKEN"):
            assert name not in daemon_env
        values = "\0".join(daemon_env.values())
        assert PASSPHRASE not in values
        assert NEW_PASSPHRASE not in values
        assert info.token not in values

        assert aileron("vault", "lock", env=env).returncode == 0
        done = aileron("vault", "unlock", env=env)
        assert (done.returncode, done.stdout) == (0, "the vault is unlocked\n"), done.stderr
        assert aileron("vault", "status", env=env).stdout == "vault: unlocked\n"
        assert PASSPHRASE not in "\0".join(_environ(info.pid).values())
    finally:
        kill_daemon(layout)


def test_daemon_started_in_the_background_has_no_passphrase(layout: Layout) -> None:
    """`aileron daemon start` (detached) scrubs the CLI's environment the same way."""
    try:
        done = aileron("daemon", "start", env=_cli_env())
        assert done.returncode == 0, done.stderr
        info = read_daemon_info(layout.daemon_json)
        assert info is not None and not info.auto_spawned
        daemon_env = _environ(info.pid)
        assert sorted(k for k in daemon_env if k.startswith("AILERON_")) == [
            "AILERON_DEBUG",
            "AILERON_HOME",
        ]
        assert PASSPHRASE not in "\0".join(daemon_env.values())
    finally:
        kill_daemon(layout)


def test_the_proxy_and_certificate_variables_reach_the_daemon(
    layout: Layout, tmp_path: Path
) -> None:
    """Behind a corporate proxy the daemon needs what the agents have (ADR 0025): every proxy
    variable (both cases) and SSL_CERT_FILE/SSL_CERT_DIR of the CLI's environment reach the
    daemon it starts, unchanged."""
    bundle = tmp_path / "roots.pem"
    bundle.write_text(Path(certifi.where()).read_text())
    network = {
        "HTTPS_PROXY": "http://proxy.corp:3128",
        "https_proxy": "http://proxy.corp:3128",
        "HTTP_PROXY": "http://proxy.corp:3129",
        "http_proxy": "http://proxy.corp:3129",
        "ALL_PROXY": "http://proxy.corp:3130",
        "all_proxy": "http://proxy.corp:3130",
        "NO_PROXY": "internal.corp,10.0.0.0/8",
        "no_proxy": "internal.corp,10.0.0.0/8",
        "SSL_CERT_FILE": str(bundle),
        "SSL_CERT_DIR": str(tmp_path),
    }
    assert set(network) == set(VARIABLES)
    try:
        done = aileron("daemon", "start", env=dict(_cli_env(), **network))
        assert done.returncode == 0, done.stderr
        info = read_daemon_info(layout.daemon_json)
        assert info is not None
        daemon_env = _environ(info.pid)
        assert {name: daemon_env.get(name) for name in network} == network
    finally:
        kill_daemon(layout)
