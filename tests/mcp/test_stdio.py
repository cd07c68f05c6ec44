"""aileron-mcp's stdio: non-blocking pipes when it has them, the SDK's own files otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from helpers import script

from aileron_mcp.__about__ import __version__

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"},
    },
}
PING = {"jsonrpc": "2.0", "id": 2, "method": "ping"}


ENV = {
    "AILERON_URL": "http://127.0.0.1:9",
    "AILERON_TOKEN": "ais_t",
    "AILERON_SESSION_ID": "s",
}


def check_initialized(answer: dict[str, object]) -> None:
    result = answer["result"]
    assert isinstance(result, dict)
    assert answer["id"] == 1
    assert (result["serverInfo"]["name"], result["serverInfo"]["version"]) == (
        "aileron",
        __version__,
    )
    assert result["capabilities"]["tools"]["listChanged"] is True


def test_over_pipes_each_request_is_answered_as_it_comes() -> None:
    """Over pipes (as agent hosts run it): one JSON-RPC line per answer; EOF ends it, exit 0."""
    with subprocess.Popen(
        [script("aileron-mcp")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": os.environ["PATH"], **ENV},
    ) as server:
        assert server.stdin is not None and server.stdout is not None
        answers = []
        for request in (INITIALIZE, PING):
            server.stdin.write(json.dumps(request) + "\n")
            server.stdin.flush()
            answers.append(json.loads(server.stdout.readline()))
        server.stdin.close()
        assert server.wait(timeout=30) == 0
        assert server.stdout.read() == ""
    check_initialized(answers[0])
    assert answers[1] == {"jsonrpc": "2.0", "id": 2, "result": {}}


def test_with_a_file_for_stdin_the_sdks_own_files_serve(tmp_path: Path) -> None:
    """stdin a plain file (no pipe to poll): the SDK's threaded files answer instead."""
    (tmp_path / "requests").write_text(json.dumps(INITIALIZE) + "\n")
    with (tmp_path / "requests").open() as stdin:
        done = subprocess.run(
            [script("aileron-mcp")],
            stdin=stdin,
            capture_output=True,
            text=True,
            env={"PATH": os.environ["PATH"], **ENV},
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    [answer] = [json.loads(line) for line in done.stdout.splitlines()]
    check_initialized(answer)


def test_pipe_stdio_keeps_stray_output_off_the_wire() -> None:
    """While serving, writes to fd 1 go to stderr; the wire carries only what is sent on it."""
    program = textwrap.dedent(
        """
        import anyio, os
        from aileron_mcp.stdio import pipe_stdio

        async def main():
            async with pipe_stdio() as (stdin, stdout):
                assert stdin is not None and stdout is not None
                print("stray print", flush=True)
                os.write(1, b"stray write\\n")
                async for line in stdin:
                    await stdout.write("echo " + line)
                    await stdout.flush()
            print("after", flush=True)

        anyio.run(main)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        input="one\ntwo\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "echo one\necho two\nafter\n"
    assert "stray print\nstray write\n" in done.stderr
