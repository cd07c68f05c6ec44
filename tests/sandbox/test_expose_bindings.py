"""Exposing a binding to sandboxed sessions (issue #19): the API, its audit, the CLI and the
``[sandbox] expose`` / ``[sandbox.resolve]`` settings of config.toml."""

from __future__ import annotations

import ipaddress
import json
import os
from typing import Any

import pytest
from fastapi.testclient import TestClient
from helpers import aileron

from aileron_cli.sandbox.config import load_sandbox_config, parse_sandbox_config
from aileron_core.discovery import DaemonInfo
from aileron_core.errors import ConfigError
from aileron_core.paths import Layout

NAME = "token/github/default"
SECRET = "ghp_brokered-SECRET-7c1e"  # noqa: S105 (a test's own secret)


def _audit(layout: Layout, type: str) -> list[dict[str, Any]]:
    lines = layout.audit.read_text().splitlines()
    return [record for line in lines if (record := json.loads(line))["type"] == type]


@pytest.fixture
def bound(api: TestClient) -> TestClient:
    """The in-process daemon with an unlocked vault holding ``token/github/default``."""
    assert api.post("vault/init", json={"passphrase": "correct horse"}).status_code == 201
    added = api.post("bindings", json={"name": NAME, "value": SECRET})
    assert added.status_code == 201, added.text
    return api


def test_expose_sets_shows_and_audits_the_exposure(bound: TestClient, layout: Layout) -> None:
    """PUT .../exposure stores canonical hosts and the form; show and list carry it; the audit
    names binding, hosts, variable and form; DELETE removes it and is audited once."""
    url = f"bindings/{NAME}/exposure"
    body = {"hosts": ["GitHub.com", "api.github.com:443", "git.test:8443"], "variable": "GH_TOKEN"}
    answer = bound.put(url, json={**body, "basic": "x-access-token:{}"})
    assert answer.status_code == 200, answer.text
    exposure = {
        "hosts": ["github.com", "api.github.com", "git.test:8443"],
        "variable": "GH_TOKEN",
        "form": "basic",
        "template": "x-access-token:{}",
    }
    assert answer.json()["exposure"] == exposure
    assert bound.get(f"bindings/{NAME}").json()["exposure"] == exposure
    assert bound.get("bindings").json()[0]["exposure"] == exposure
    [record] = _audit(layout, "binding.exposed")
    assert record["payload"] == {
        "binding": NAME,
        "hosts": exposure["hosts"],
        "variable": "GH_TOKEN",
        "form": "basic",
    }
    assert SECRET not in layout.audit.read_text() and SECRET not in layout.bindings.read_text()
    removed = bound.delete(url)
    assert removed.status_code == 200 and removed.json()["exposure"] is None
    assert bound.delete(url).json()["exposure"] is None
    assert len(_audit(layout, "binding.unexposed")) == 1
    assert bound.get(f"bindings/{NAME}").json()["exposure"] is None


@pytest.mark.parametrize(
    ("body", "code", "status"),
    [
        ({"hosts": ["*.github.com"], "variable": "GH_TOKEN"}, "invalid_exposure", 422),
        ({"hosts": ["192.0.2.7"], "variable": "GH_TOKEN"}, "invalid_exposure", 422),
        ({"hosts": ["github.com"], "variable": "GH-TOKEN"}, "invalid_exposure", 422),
        ({"hosts": ["github.com"], "variable": "SSL_CERT_FILE"}, "invalid_exposure", 422),
        (
            {"hosts": ["github.com"], "variable": "T", "header": "Bearer {}"},
            "invalid_exposure",
            422,
        ),
        (
            {"hosts": ["github.com"], "variable": "T", "header": "A: {}", "basic": "u:{}"},
            "invalid_exposure",
            422,
        ),  # noqa: E501
        ({"hosts": [], "variable": "GH_TOKEN"}, "invalid_request", 422),
        ({"hosts": ["github.com"]}, "invalid_request", 422),
    ],
)
def test_bad_exposures_are_refused_and_change_nothing(
    bound: TestClient, layout: Layout, body: dict[str, Any], code: str, status: int
) -> None:
    """A wildcard, an IP, a bad or reserved variable, a bad template, both forms or a missing
    field is refused with its code, and the binding and the audit stay as they were."""
    before = layout.bindings.read_text()
    answer = bound.put(f"bindings/{NAME}/exposure", json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code
    assert layout.bindings.read_text() == before
    assert _audit(layout, "binding.exposed") == []


def test_unknown_binding_is_404(bound: TestClient) -> None:
    """Exposing or unexposing a binding that does not exist is 404 binding_not_found."""
    body = {"hosts": ["github.com"], "variable": "GH_TOKEN"}
    for answer in (
        bound.put("bindings/token/github/other/exposure", json=body),
        bound.delete("bindings/token/github/other/exposure"),
    ):
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "binding_not_found"


def test_exposure_survives_a_restart_and_revoke_still_works(
    bound: TestClient, layout: Layout
) -> None:
    """The exposure is in bindings.json (read again at start), and DELETE /bindings/NAME
    (not .../exposure) still revokes the binding."""
    bound.put(f"bindings/{NAME}/exposure", json={"hosts": ["github.com"], "variable": "GH_TOKEN"})
    stored = json.loads(layout.bindings.read_text())["bindings"][NAME]["exposure"]
    assert stored["hosts"] == ["github.com"] and stored["variable"] == "GH_TOKEN"
    assert bound.delete(f"bindings/{NAME}").status_code == 204
    assert bound.get(f"bindings/{NAME}").status_code == 404


def test_cli_expose_show_list_unexpose(real_daemon: DaemonInfo) -> None:
    """`aileron binding expose` prints the exposure; show and list print it on one line;
    `unexpose` removes it; --header with --basic is a usage error; an unknown binding says so."""
    env = dict(os.environ, AILERON_VAULT_PASSPHRASE="demo passphrase")
    assert aileron("vault", "init", env=env).returncode == 0
    assert aileron("binding", "add", NAME, stdin=SECRET + "\n", env=env).returncode == 0
    done = aileron(
        "binding", "expose", NAME, "--host", "github.com", "--host", "api.github.com",
        "--as", "GH_TOKEN", "--header", "Authorization: Bearer {}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    line = '$GH_TOKEN for github.com, api.github.com (header "Authorization: Bearer {}")'
    assert line in done.stdout
    shown = aileron("binding", "show", NAME)
    assert f"exposure:   {line}" in shown.stdout
    assert line in aileron("binding", "list").stdout
    as_json = json.loads(aileron("binding", "show", NAME, "--json").stdout)
    assert as_json["exposure"]["variable"] == "GH_TOKEN"
    both = aileron(
        "binding", "expose", NAME, "--host", "x.test", "--as", "T", "--header", "A: {}",
        "--basic", "u:{}",
    )  # fmt: skip
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    unknown = aileron("binding", "expose", "token/github/nope", "--host", "x.test", "--as", "T")
    assert unknown.returncode == 1 and "no binding 'token/github/nope'" in unknown.stderr
    bad = aileron("binding", "expose", NAME, "--host", "*.github.com", "--as", "T")
    assert bad.returncode == 1 and "wildcard" in bad.stderr
    assert aileron("binding", "unexpose", NAME).returncode == 0
    assert "exposure:   -" in aileron("binding", "show", NAME).stdout


# --- config.toml ------------------------------------------------------------------------------


def test_config_reads_expose_and_resolve(layout: Layout) -> None:
    """`[sandbox] expose` keeps binding names (deduplicated); `[sandbox.resolve]` maps
    normalized names to IP addresses (IPv6 with or without brackets)."""
    layout.config.parent.mkdir(parents=True, exist_ok=True)
    layout.config.write_text(
        "[sandbox]\n"
        'expose = ["token/github/default", "token/npm/default", "token/github/default"]\n'
        "[sandbox.resolve]\n"
        '"API.GitHub.test." = "127.0.0.1"\n'
        '"v6.test" = "[::1]"\n'
    )
    config = load_sandbox_config(layout.config)
    assert config.expose == ("token/github/default", "token/npm/default")
    assert config.resolve == {
        "api.github.test": ipaddress.ip_address("127.0.0.1"),
        "v6.test": ipaddress.ip_address("::1"),
    }


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"expose": "token/github/default"}, "must be a list of binding names"),
        ({"expose": ["github"]}, "'github' is not a binding name"),
        ({"expose": [3]}, "3 is not a binding name"),
        ({"resolve": ["x"]}, "sandbox.resolve in config.toml must be a table"),
        ({"resolve": {"api.test": "localhost"}}, "api.test = 'localhost' is not an IP address"),
        ({"resolve": {"api.test": 127}}, "is not an IP address"),
        ({"resolve": {"127.0.0.1": "127.0.0.1"}}, "is an address, not a name"),
        ({"resolve": {"bad_name!": "127.0.0.1"}}, "'bad_name!' is not a host name"),
    ],
)
def test_bad_expose_and_resolve_settings_name_the_problem(
    table: dict[str, Any], words: str
) -> None:
    """A malformed `expose` or `[sandbox.resolve]` is a ConfigError naming the setting."""
    with pytest.raises(ConfigError) as raised:
        parse_sandbox_config({"sandbox": table}, "config.toml")
    assert words in str(raised.value)
