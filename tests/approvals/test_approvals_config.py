"""``[approvals]`` in config.toml: the webhook and the daemon's desktop notifications."""

from __future__ import annotations

from pathlib import Path

import pytest

from aileron_cli.approvals_config import ApprovalsConfig, load_approvals_config
from aileron_core.errors import ConfigError


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file_or_a_table(tmp_path: Path) -> None:
    """No config.toml, or none with [approvals]: no webhook, no daemon notifications."""
    assert load_approvals_config(tmp_path / "absent.toml") == ApprovalsConfig()
    other = _config(tmp_path, "[audit]\nsegment_size = 1048576\n")
    assert load_approvals_config(other) == ApprovalsConfig(webhook=None, notify=False)


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com/T0/B0/x", "http://127.0.0.1:8080/hook", "http://localhost/h"],
)
def test_webhook_and_notify_are_read(tmp_path: Path, url: str) -> None:
    """An https URL (or http to loopback) and `notify = true` are taken as written."""
    path = _config(tmp_path, f'[approvals]\nwebhook = "{url}"\nnotify = true\n')
    assert load_approvals_config(path) == ApprovalsConfig(webhook=url, notify=True)


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ('webhook = "http://hooks.example.com/x"', "plain http"),
        ('webhook = "ftp://example.com/x"', "https URL"),
        ('webhook = "https:///nohost"', "https URL"),
        ('webhook = "https://example.com/a b"', "space or control"),
        ('webhook = "https://example.com:port/"', "not a URL"),
        ("webhook = 3", "must be a URL"),
        ('notify = "yes"', "true or false"),
        ("hooks = 1", "unknown setting 'hooks'"),
    ],
)
def test_malformed_settings_are_config_errors(tmp_path: Path, body: str, said: str) -> None:
    """A wrong value or an unknown key names the setting and the file."""
    path = _config(tmp_path, f"[approvals]\n{body}\n")
    with pytest.raises(ConfigError) as raised:
        load_approvals_config(path)
    assert said in str(raised.value)
    assert str(path) in str(raised.value)


def test_approvals_must_be_a_table(tmp_path: Path) -> None:
    """`approvals = 1` is refused."""
    with pytest.raises(ConfigError, match="must be a table"):
        load_approvals_config(_config(tmp_path, "approvals = 1\n"))
