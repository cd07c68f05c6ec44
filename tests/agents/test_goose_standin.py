"""Acceptance 1 of #15 for Goose, with a recording stand-in.

Real goose cannot be installed here: it is not on npm, and its releases are native binaries
(GitHub release assets, Homebrew) that this machine cannot download. The stand-in plays the
part of goose's agent loop that concerns Aileron: it takes the ``--with-extension`` command
``aileron launch goose`` gives it, starts that MCP server over stdio with goose's own
environment (as goose does), lists its tools, calls the echo tool, and prints the result.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from actions.support import SECRET
from agents.support import MESSAGE, agent_env, rig, wait_until

pytestmark = pytest.mark.slow

# A goose that records its argv and plays one MCP tool call through its extension.
GOOSE = """\
import json, os, subprocess, sys
with open(os.environ["STANDIN_RECORD"], "w") as f:
    json.dump({"argv": sys.argv, "env": dict(os.environ)}, f)
command = sys.argv[sys.argv.index("--with-extension") + 1]
server = subprocess.Popen([command], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
def call(ident, method, params):
    server.stdin.write(json.dumps({"jsonrpc": "2.0", "id": ident, "method": method,
                                   "params": params}) + "\\n")
    server.stdin.flush()
    while True:
        message = json.loads(server.stdout.readline())
        if message.get("id") == ident:
            return message["result"]
call(1, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "goose-standin", "version": "0"}})
server.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\\n")
server.stdin.flush()
names = [tool["name"] for tool in call(2, "tools/list", {})["tools"]]
tool = next(name for name in names if "echo_say" in name)
result = call(3, "tools/call", {"name": tool, "arguments": {"message": sys.argv[-1]}})
print(tool, result["content"][0]["text"])
server.stdin.close()
server.wait(timeout=30)
sys.exit(1 if result.get("isError") else 0)
"""


def test_goose_standin_calls_the_aileron_tool_through_its_extension(tmp_path: Path) -> None:
    """`aileron launch goose -- run -t MESSAGE`: the extension command goose is given serves
    Aileron's tools from goose's environment; the call runs the action with the vault's
    credential in the launched session; the session token is in no argument."""
    bindir, work, record = tmp_path / "bin", tmp_path / "work", tmp_path / "goose.json"
    bindir.mkdir()
    work.mkdir()
    goose = bindir / "goose"
    goose.write_text(f"#!{sys.executable}\n{GOOSE}")
    goose.chmod(0o755)
    with rig(tmp_path / "home") as loop:
        path = f"{bindir}:{agent_env(loop.home)['PATH']}"
        done = loop.launch(
            "goose", "run", "-t", MESSAGE, cwd=work, PATH=path, STANDIN_RECORD=str(record)
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.split(" ", 1)[0] == "echo_say"
        assert json.loads(done.stdout.split(" ", 1)[1]) == {"echo": MESSAGE, "authorized": True}
        assert [(e.headers.get("Authorization"), json.loads(e.body)) for e in loop.echo.seen] == [
            (f"Bearer {SECRET}", {"message": MESSAGE})
        ]
        session = loop.session_in(work)
        assert (session["state"], session["exit_code"]) == ("ended", 0)
        assert len(wait_until(lambda: loop.audit("execution.succeeded", session["id"]))) == 1
    started = json.loads(record.read_text())
    assert started["argv"][1:3] == ["run", "--with-extension"]
    assert Path(started["argv"][3]).name == "aileron-mcp"
    token = started["env"]["AILERON_TOKEN"]
    assert not any(token in arg for arg in started["argv"])
