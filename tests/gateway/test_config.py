"""`[gateway.<provider>]` in config.toml: defaults, overrides, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from aileron_cli.daemon.daemon import DaemonConfig, create_app
from aileron_cli.daemon.gateway.config import load_gateway_config, parse_gateway_config
from aileron_core.__about__ import __version__
from aileron_core.errors import ConfigError
from aileron_core.paths import Layout


def test_without_config_the_real_providers_are_used(tmp_path: Path) -> None:
    """No config.toml: OpenAI and Anthropic at their public base URLs, keys from their bindings."""
    config = load_gateway_config(tmp_path / "config.toml")
    openai, anthropic = config.provider("openai"), config.provider("anthropic")
    assert (openai.base_url, openai.binding, openai.key_header) == (
        "https://api.openai.com",
        "api_key/openai/default",
        "authorization",
    )
    assert (anthropic.base_url, anthropic.binding, anthropic.key_header) == (
        "https://api.anthropic.com",
        "api_key/anthropic/default",
        "x-api-key",
    )


def test_a_provider_can_be_moved_and_the_other_keeps_its_default(tmp_path: Path) -> None:
    """`[gateway.openai] base_url` moves OpenAI (trailing slash dropped); Anthropic stays."""
    path = tmp_path / "config.toml"
    path.write_text(
        '[daemon]\nidle_timeout = 60\n\n[gateway.openai]\nbase_url = "http://127.0.0.1:8400/"\n'
    )
    config = load_gateway_config(path)
    assert config.provider("openai").base_url == "http://127.0.0.1:8400"
    assert config.provider("anthropic").base_url == "https://api.anthropic.com"


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"openai": {"base_url": "ftp://example.com"}}, "must be an http(s) URL"),
        ({"openai": {"base_url": "http://api.example.com"}}, "clear text"),
        ({"openai": {"base_url": "https://user:pw@api.example.com"}}, "user info"),
        ({"openai": {"base_url": "https://api.example.com/?x=1"}}, "query"),
        ({"openai": {"base_url": "https://api.example.com:99999"}}, "not a URL"),
        ({"openai": {"base_url": ""}}, "non-empty string"),
        ({"openai": {"base_url": 8400}}, "non-empty string"),
        ({"openai": {"base-url": "https://x"}}, "unknown setting 'base-url'"),
        ({"mistral": {"base_url": "https://x"}}, "unknown provider"),
        ({"openai": "https://x"}, "must be a table"),
    ],
)
def test_malformed_settings_are_clear_errors(table: dict[str, object], problem: str) -> None:
    """Every malformed gateway setting is a ConfigError naming the setting and the file."""
    with pytest.raises(ConfigError) as raised:
        parse_gateway_config({"gateway": table}, "/home/u/.aileron/config.toml")
    assert problem in str(raised.value)
    assert "/home/u/.aileron/config.toml" in str(raised.value)
    assert "gateway." in str(raised.value)


@pytest.mark.parametrize("host", ["127.0.0.1:8400", "localhost", "[::1]:9"])
def test_plain_http_is_allowed_to_loopback(host: str) -> None:
    """http:// is accepted for loopback hosts only (the local fake, a local proxy)."""
    config = parse_gateway_config({"gateway": {"anthropic": {"base_url": f"http://{host}"}}}, "c")
    assert config.provider("anthropic").base_url == f"http://{host}"


def test_a_daemon_with_a_malformed_gateway_config_does_not_start(layout: Layout) -> None:
    """The daemon refuses to start on a malformed [gateway] table, with the reason."""
    layout.ensure()
    layout.config.write_text('[gateway.openai]\nbase_url = "api.openai.com"\n')
    app = create_app(DaemonConfig(layout=layout, version=__version__))
    with pytest.raises(ConfigError, match=r"gateway\.openai\.base_url .* must be an http\(s\) URL"):
        with TestClient(app):
            pass
    assert not layout.audit.exists()  # refused before any store was opened
