"""[network] of config.toml: the CA bundle trusted on top of the defaults, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from network_support import PrivateCA

from aileron_cli.__about__ import __version__
from aileron_cli.daemon.daemon import DaemonConfig, create_app
from aileron_cli.daemon.egress.network_config import load_network
from aileron_core.errors import ConfigError
from aileron_core.network import Network
from aileron_core.paths import Layout


def test_without_a_network_table_the_environment_alone_decides(tmp_path: Path) -> None:
    """No config.toml (or no [network]): the settings are the environment's."""
    environ = {"HTTPS_PROXY": "http://proxy.corp:3128"}
    assert load_network(tmp_path / "config.toml", environ) == Network.from_environ(environ)
    (tmp_path / "config.toml").write_text('[gateway.openai]\nbase_url = "https://x.test"\n')
    assert load_network(tmp_path / "config.toml", {}) == Network()


def test_a_relative_ca_bundle_is_relative_to_the_config_file(tmp_path: Path) -> None:
    """ca_bundle = "ca.pem" names the file beside config.toml; it is trusted on top of the
    default roots."""
    ca = PrivateCA(tmp_path)
    (tmp_path / "config.toml").write_text(f'[network]\nca_bundle = "{ca.pem.name}"\n')
    network = load_network(tmp_path / "config.toml", {})
    assert network.ca_bundle == ca.pem
    roots = network.ssl_context().get_ca_certs()
    assert any("Aileron Test Root" in str(root["subject"]) for root in roots)
    assert len(roots) > 1  # the defaults are still there


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ("[network]\nca_bundle = 3\n", r"network\.ca_bundle in .* must be the path of a PEM file"),
        ('[network]\nca_bundle = ""\n', r"network\.ca_bundle in .* must be the path of a PEM file"),
        (
            '[network]\nca_bundle = "/nonexistent/ca.pem"\n',
            r"names /nonexistent/ca\.pem, which is not a file",
        ),
        ('[network]\nproxy = "http://p:1"\n', r"\[network\] in .*: unknown setting 'proxy'"),
        ('network = "x"\n', r"`network` in .* must be a table"),
        ('[network]\nca_bundle = "config.toml"\n', r"holds no PEM certificate"),
    ],
)
def test_malformed_settings_are_clear_errors(tmp_path: Path, table: str, problem: str) -> None:
    """Every malformed [network] setting is a ConfigError naming the setting and the file."""
    (tmp_path / "config.toml").write_text(table)
    with pytest.raises(ConfigError, match=problem) as raised:
        load_network(tmp_path / "config.toml", {})
    assert "config.toml" in str(raised.value)


def test_a_daemon_with_a_malformed_network_setting_does_not_start(layout: Layout) -> None:
    """The daemon refuses to start on a CA bundle that is not there, with the reason."""
    layout.ensure()
    layout.config.write_text('[network]\nca_bundle = "/nonexistent/ca.pem"\n')
    app = create_app(DaemonConfig(layout=layout, version=__version__))
    with pytest.raises(ConfigError, match=r"network\.ca_bundle in .* which is not a file"):
        with TestClient(app):
            pass
    assert not layout.audit.exists()  # refused before any store was opened
