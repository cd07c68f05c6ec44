"""What a launched agent and the aileron-mcp it starts can see: their environment and argv.

Each stand-in agent starts the real ``aileron-mcp`` the way the real agent does (claude: from
the ``--mcp-config`` file with its ``env`` over claude's own environment; codex: a restricted
environment plus the ``env_vars`` it is told to forward; goose: its own environment plus the
extension's ``K=V`` words; opencode: its environment plus the inline config's
``environment``), lists its tools over MCP, and records what ``/proc`` shows meanwhile.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import script
from launch.support import launch_env, mentions, only_session, read_record, standin

from aileron_core.discovery import DaemonInfo

PASSPHRASE = "correct horse battery staple"  # noqa: S105 (a test passphrase)
SESSION_VARS = ["AILERON_SESSION_ID", "AILERON_TOKEN", "AILERON_URL"]

# Appended to launch.support's record(): start aileron-mcp as this agent would, talk to it,
# and write what /proc shows to $STANDIN_RECORD.mcp.
STARTS_MCP = """\
import subprocess, tomllib
record()
name, args = os.path.basename(sys.argv[0]), sys.argv[1:]
out = {}
if name == "claude":
    path = args[0].removeprefix("--mcp-config=")
    out["config"] = {"path": path, "mode": os.stat(path).st_mode & 0o777,
                     "dir_mode": os.stat(os.path.dirname(path)).st_mode & 0o777}
    server = json.load(open(path))["mcpServers"]["aileron"]
    command, env = [server["command"], *server["args"]], {**os.environ, **server["env"]}
elif name == "codex":
    conf = {}
    for flag, value in zip(args, args[1:]):
        if flag == "-c":
            key, _, raw = value.partition("=")
            conf[key] = tomllib.loads("v = " + raw)["v"]
    p = "mcp_servers.aileron."
    command = [conf[p + "command"], *conf[p + "args"]]
    env = {k: os.environ[k] for k in ("HOME", "PATH", "LANG") if k in os.environ}
    env.update({k: os.environ[k] for k in conf[p + "env_vars"] if k in os.environ})
    env.update(conf[p + "env"])
elif name == "goose":
    words = args[args.index("--with-extension") + 1].split()
    pairs = [w for w in words if "=" in w and not w.startswith("/")]
    command = words[len(pairs):]
    env = {**os.environ, **dict(w.split("=", 1) for w in pairs)}
else:
    server = json.loads(os.environ["OPENCODE_CONFIG_CONTENT"])["mcp"]["aileron"]
    command, env = server["command"], {**os.environ, **server["environment"]}
proc = subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
def send(message):
    proc.stdin.write(json.dumps({"jsonrpc": "2.0", **message}) + "\\n")
    proc.stdin.flush()
send({"id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18",
      "capabilities": {}, "clientInfo": {"name": "standin", "version": "0"}}})
proc.stdout.readline()
send({"method": "notifications/initialized"})
send({"id": 2, "method": "tools/list"})
out["tools"] = json.loads(proc.stdout.readline())
def proc_file(pid, what):
    with open(f"/proc/{pid}/{what}", "rb") as f:
        return f.read().decode("utf-8", "replace").split("\\0")
out["server_env"] = dict(e.split("=", 1) for e in proc_file(proc.pid, "environ") if "=" in e)
out["server_cmdline"] = proc_file(proc.pid, "cmdline")
out["self_cmdline"] = proc_file("self", "cmdline")
cmdlines = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        cmdlines[pid] = " ".join(proc_file(pid, "cmdline"))
    except OSError:
        pass
out["cmdlines"] = cmdlines
proc.stdin.close()
proc.wait(timeout=30)
with open(os.environ["STANDIN_RECORD"] + ".mcp", "w") as f:
    json.dump(out, f)
"""


def _launch(agent: str, tmp_path: Path, daemon: DaemonInfo) -> tuple[dict[str, Any], ...]:
    """`aileron launch AGENT` of a stand-in that starts aileron-mcp, with a passphrase, the
    home, a debug switch and the master token (as a CLI override) in the launching env."""
    bindir, record = tmp_path / "bin", tmp_path / "record.json"
    standin(bindir, agent, STARTS_MCP)
    env = launch_env(
        bindir,
        record,
        AILERON_VAULT_PASSPHRASE=PASSPHRASE,
        AILERON_VAULT_NEW_PASSPHRASE=PASSPHRASE + " 2",
        AILERON_DEBUG="1",
        AILERON_MCP_POLL_SECONDS="0",
        AILERON_SANDBOX_BASE_IMAGE="debian:bookworm",
    )
    assert env["AILERON_HOME"]  # the isolation fixture's: the launching env has it
    done = subprocess.run(
        [script("aileron"), "launch", agent],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    mcp = json.loads(Path(f"{record}.mcp").read_text())
    return read_record(record), mcp


def _aileron_vars(env: dict[str, str]) -> list[str]:
    return sorted(name for name in env if name.startswith("AILERON_"))


@pytest.mark.parametrize("agent", ["claude", "codex", "goose", "opencode"])
def test_agent_and_its_mcp_server_get_only_the_session(
    agent: str, real_daemon: DaemonInfo, tmp_path: Path
) -> None:
    """The agent and the aileron-mcp it starts hold the session's three variables and no other
    Aileron variable (no passphrase, no home); aileron-mcp lists tools with them; neither the
    session token nor the master token is in any process's /proc/PID/cmdline meanwhile."""
    record, mcp = _launch(agent, tmp_path, real_daemon)
    session = only_session(real_daemon)
    token = record["env"]["AILERON_TOKEN"]
    assert token.startswith("ais_")
    expected = {
        "AILERON_SESSION_ID": session["id"],
        "AILERON_TOKEN": token,
        "AILERON_URL": real_daemon.api_url,
    }
    for env in (record["env"], mcp["server_env"]):
        assert _aileron_vars(env) == SESSION_VARS
        assert {name: env[name] for name in SESSION_VARS} == expected
        assert not [name for name, value in env.items() if PASSPHRASE in value]
        assert not [name for name, value in env.items() if real_daemon.token in value]
    assert "result" in mcp["tools"], mcp["tools"]  # aileron-mcp authenticated as the session
    assert not [arg for arg in record["argv"] if token in arg]
    assert mentions(record, real_daemon.token) == []
    assert not [arg for arg in mcp["self_cmdline"] + mcp["server_cmdline"] if token in arg]
    assert mcp["server_cmdline"][-2:] == [script("aileron-mcp"), ""]
    leaks = {
        pid: line
        for pid, line in mcp["cmdlines"].items()
        if token in line or real_daemon.token in line
    }
    assert leaks == {}
    assert (session["state"], session["exit_code"]) == ("ended", 0)


def test_claude_mcp_config_is_private_and_gone_after_the_session(
    real_daemon: DaemonInfo, tmp_path: Path
) -> None:
    """Claude's --mcp-config file (holding the session token) is 0600 in a 0700 directory of
    the session's own while claude runs, and neither is left once the session ends."""
    record, mcp = _launch("claude", tmp_path, real_daemon)
    config = mcp["config"]
    assert (config["mode"], config["dir_mode"]) == (0o600, 0o700)
    path = Path(config["path"])
    assert record["argv"][1] == f"--mcp-config={path}"
    assert not path.exists()
    assert not path.parent.exists()
