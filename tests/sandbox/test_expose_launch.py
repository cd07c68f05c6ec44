"""The launch side of brokered credentials (issue #19): what the container gets for a session
with exposures — its variables, the entry command that builds the CA bundle (run by a real
``sh``), the tools text — and `aileron launch --expose` / `aileron sessions show`."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from helpers import admin_http, aileron

from aileron_cli.cli.common import connect
from aileron_cli.launch import agent_named
from aileron_cli.launch.host import refuse_secrets
from aileron_cli.launch.routing import Routes
from aileron_cli.sandbox import bridge, images
from aileron_cli.sandbox.bridge import (
    CA_BUNDLE,
    CA_FILE,
    ENTRY,
    SYSTEM_BUNDLES,
    Endpoints,
    Exposed,
    broker_env,
    open_endpoints,
)
from aileron_cli.sandbox.engine import Engine
from aileron_cli.sandbox.instructions import TOOLS_INSTRUCTIONS, tools_instructions, tools_text
from aileron_cli.sandbox.launch import SandboxPlan, container_command
from aileron_core.discovery import DaemonInfo

NAME = "token/github/default"
SECRET = "ghp_launch-SECRET-5b2f"  # noqa: S105 (a test's own secret)
GH = Exposed(NAME, "GH_TOKEN", "aileron-sentinel-" + "a" * 32, ("github.com", "api.github.com"))
NPM = Exposed("token/npm/default", "NPM_TOKEN", "aileron-sentinel-" + "b" * 32, ("r.npm.test",))
HINT = (
    "$GH_TOKEN works for github.com, api.github.com: Aileron swaps in the real token at its"
    " proxy; it is useless anywhere else."
)


# --- the container's environment and instructions ---------------------------------------------


def test_broker_env_gives_sentinels_and_points_every_tool_at_the_bundle() -> None:
    """Each exposed variable holds its sentinel; with a CA, SSL_CERT_FILE, GIT_SSL_CAINFO,
    CURL_CA_BUNDLE and REQUESTS_CA_BUNDLE name /tmp/aileron-ca.pem and NODE_EXTRA_CA_CERTS
    the CA itself; without exposures nothing is added."""
    endpoints = Endpoints("/run/x", ("/run/x/api.sock",), (GH, NPM), "/run/x/ca.pem")
    assert broker_env(endpoints) == {
        "GH_TOKEN": GH.sentinel,
        "NPM_TOKEN": NPM.sentinel,
        "SSL_CERT_FILE": "/tmp/aileron-ca.pem",
        "GIT_SSL_CAINFO": "/tmp/aileron-ca.pem",
        "CURL_CA_BUNDLE": "/tmp/aileron-ca.pem",
        "REQUESTS_CA_BUNDLE": "/tmp/aileron-ca.pem",
        "NODE_EXTRA_CA_CERTS": "/run/aileron/ca.pem",
    }
    assert broker_env(Endpoints("/run/x", ("/run/x/api.sock",))) == {}


def _plan(agent: str) -> SandboxPlan:
    return SandboxPlan(
        agent=agent_named(agent),
        engine=Engine(name="podman", path="/usr/bin/podman", version="4.3.1"),
        image=images.Image(ref=images.default_tag(agent), env=()),
        args=(),
    )


def test_the_agent_is_told_the_exposed_variables_and_hosts() -> None:
    """codex's developer instructions and claude's system prompt name each exposed variable
    and its hosts after the tools text; without exposures the text is as before."""
    text = tools_instructions([GH, NPM])
    assert text.startswith(TOOLS_INSTRUCTIONS + " " + HINT)
    assert "$NPM_TOKEN works for r.npm.test:" in text and "\n" not in text
    claude = container_command(_plan("claude"), bridge.API_URL, Routes(), (GH,))
    assert claude == ("claude", "--append-system-prompt", f"{TOOLS_INSTRUCTIONS} {HINT}")
    codex = container_command(_plan("codex"), bridge.API_URL, Routes(), (GH,))
    assert codex[1] == "-c" and codex[2].startswith("developer_instructions=")
    assert HINT in codex[2]
    assert tools_instructions() == TOOLS_INSTRUCTIONS


def test_tools_txt_lists_the_exposed_variables() -> None:
    """tools.txt keeps the shims' lines and adds `$VAR<tab>works for HOSTS…` per exposure."""
    text = tools_text("aileron-echo\tthe echo\n", [GH])
    assert text == (
        "aileron-echo\tthe echo\n"
        "$GH_TOKEN\tworks for github.com, api.github.com: Aileron swaps in the real token at"
        " its proxy; it is useless anywhere else.\n"
    )


def test_a_sentinel_is_not_mistaken_for_a_secret() -> None:
    """refuse_secrets lets an env and a command with sentinels through (the master token
    still is refused)."""
    env = broker_env(Endpoints("/r", (), (GH,), "/r/ca.pem"))
    command = bridge.entry_command(
        container_command(_plan("codex"), bridge.API_URL, Routes(), (GH,))
    )
    refuse_secrets([*command, *env.values()], ["aim_master-token-0123456789"])


# --- the entry command, run by a real sh -------------------------------------------------------


@pytest.fixture
def fake_node(tmp_path: Path) -> Path:
    """A `node` that stands in for the bridge: it writes its ready line and exits."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    node = bindir / "node"
    node.write_text("#!/bin/sh\necho ready >&3\n")
    node.chmod(node.stat().st_mode | stat.S_IXUSR)
    return bindir


def _run_entry(
    tmp_path: Path, fake_node: Path, bundles: list[Path], bundle: Path
) -> subprocess.CompletedProcess[str]:
    """ENTRY with the container's paths moved under ``tmp_path``; the agent prints `agent`."""
    entry = ENTRY.replace(CA_FILE, str(tmp_path / "ca.pem")).replace(CA_BUNDLE, str(bundle))
    for system, local in zip(SYSTEM_BUNDLES, bundles, strict=True):
        assert system in entry
        entry = entry.replace(system, str(local))
    return subprocess.run(
        ["/bin/sh", "-c", entry, "/opt/aileron/bridge.js", "sh", "-c", "echo agent"],
        env={"PATH": f"{fake_node}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_entry_builds_the_bundle_from_the_first_system_bundle_and_the_ca(
    tmp_path: Path, fake_node: Path
) -> None:
    """With a CA: the bundle is the first readable system bundle then the CA (a missing first
    one is skipped, a later one is not added); the agent starts."""
    bundles = [tmp_path / "missing.crt", tmp_path / "second.crt", tmp_path / "third.crt"]
    bundles[1].write_text("SYSTEM ROOTS\n")
    bundles[2].write_text("OTHER ROOTS\n")
    (tmp_path / "ca.pem").write_text("SESSION CA\n")
    bundle = tmp_path / "aileron-ca.pem"
    done = _run_entry(tmp_path, fake_node, bundles, bundle)
    assert (done.returncode, done.stdout, done.stderr) == (0, "agent\n", "")
    assert bundle.read_text() == "SYSTEM ROOTS\nSESSION CA\n"


def test_entry_without_a_ca_writes_nothing(tmp_path: Path, fake_node: Path) -> None:
    """Without the session CA (no exposure) no bundle is written and the agent starts."""
    bundles = [tmp_path / "a.crt", tmp_path / "b.crt", tmp_path / "c.crt"]
    bundles[0].write_text("SYSTEM ROOTS\n")
    bundle = tmp_path / "aileron-ca.pem"
    done = _run_entry(tmp_path, fake_node, bundles, bundle)
    assert (done.returncode, done.stdout, done.stderr) == (0, "agent\n", "")
    assert not bundle.exists()


def test_entry_that_cannot_write_the_bundle_still_starts_the_agent(
    tmp_path: Path, fake_node: Path
) -> None:
    """An unwritable bundle path is silent: the agent starts all the same."""
    bundles = [tmp_path / "a.crt", tmp_path / "b.crt", tmp_path / "c.crt"]
    bundles[0].write_text("SYSTEM ROOTS\n")
    (tmp_path / "ca.pem").write_text("SESSION CA\n")
    done = _run_entry(tmp_path, fake_node, bundles, tmp_path / "no" / "such" / "bundle.pem")
    assert (done.returncode, done.stdout, done.stderr) == (0, "agent\n", "")


# --- the launcher and the CLI ------------------------------------------------------------------


def test_open_endpoints_brokers_and_sessions_show_lists_without_sentinel(
    real_daemon: DaemonInfo,
) -> None:
    """open_endpoints sends `expose` and returns each exposure's sentinel and the CA file;
    `aileron sessions show` (text and JSON) lists the binding, variable and hosts, never the
    sentinel."""
    with admin_http(real_daemon) as http:
        assert http.post("vault/init", json={"passphrase": "pass phrase"}).status_code == 201
        assert http.post("bindings", json={"name": NAME, "value": SECRET}).status_code == 201
        body = {"hosts": ["github.com", "api.github.com"], "variable": "GH_TOKEN"}
        assert http.put(f"bindings/{NAME}/exposure", json=body).status_code == 200
    with connect() as client:
        session = client.post("sessions", {"agent": "codex", "working_dir": os.getcwd()})
        endpoints = open_endpoints(client, session["id"], ["pypi.org"], [NAME])
    [exposed] = endpoints.exposed
    assert (exposed.binding, exposed.variable, exposed.hosts) == (
        NAME,
        "GH_TOKEN",
        ("github.com", "api.github.com"),
    )
    assert exposed.sentinel.startswith("aileron-sentinel-")
    assert endpoints.ca_file == str(Path(endpoints.directory) / "ca.pem")
    assert Path(endpoints.ca_file).exists()
    shown = aileron("sessions", "show", session["id"])
    assert shown.returncode == 0, shown.stderr
    assert "exposed:" in shown.stdout
    assert f"{NAME} as $GH_TOKEN for github.com, api.github.com" in shown.stdout
    as_json = aileron("sessions", "show", session["id"], "--json")
    assert json.loads(as_json.stdout)["exposed"] == [
        {"binding": NAME, "variable": "GH_TOKEN", "hosts": ["github.com", "api.github.com"]}
    ]
    for done in (shown, as_json):
        assert exposed.sentinel not in done.stdout and SECRET not in done.stdout


@pytest.mark.parametrize("extra", [(), ("--check",)])
def test_expose_without_a_sandbox_is_a_usage_error(extra: tuple[str, ...]) -> None:
    """`aileron launch --expose NAME` on the host (or with --check) is a usage error (exit 2)
    that names --expose."""
    done = aileron("launch", "--expose", NAME, "codex", *extra)
    assert done.returncode == 2, done.stderr
    assert "--expose" in done.stderr
