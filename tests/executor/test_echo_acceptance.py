"""Issue #14, acceptance 5: an upstream that echoes the credential in every listed spelling
hands none of them to the agent: not through the CLI, the HTTP API, aileron-mcp or the audit."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from executor.echo_forms import SECRET, EchoFormsServer, echoed_forms, leaks, proves_secret
from helpers import admin_http, aileron, script
from mcp import Client, StdioServerParameters, types
from mcp.client.stdio import stdio_client

from aileron_core.discovery import DaemonInfo
from aileron_core.paths import Layout


def spec(host: str) -> dict[str, Any]:
    """A connector with an operation answering 200 with the forms and one answering 400."""

    def operation(name: str, path: str) -> dict[str, Any]:
        return {
            "name": name,
            "summary": f"{name} the credential.",
            "method": "GET",
            "path": path,
            "hosts": [host],
            "scheme": "http",
            "idempotency": "idempotent",
        }

    return {
        "schema_version": "aileron.connector.v1",
        "connector": {"fqn": "local://forms", "version": "1.0.0", "description": "Echoes keys."},
        "credential": {"service": "forms", "kind": "bearer"},
        "tools": [
            {
                "name": "forms",
                "description": "Echo.",
                "operations": [operation("echo", "/forms"), operation("fail", "/fail")],
            }
        ],
    }


def manifest(name: str, op: str) -> str:
    return f"""+++
name = "{name}"
version = "1.0.0"

[[requires.connectors]]
fqn = "local://forms"
version = "1.0.0"

[[execute]]
id = "{op}"
connector = "local://forms"
tool = "forms"
op = "{op}"
args = {{}}
+++
Ask the echoing upstream ({op}).
"""


def strings(document: Any) -> str:
    """Every string (and key) of decoded JSON, one a line: what the agent reads once parsed."""
    if isinstance(document, str):
        return document
    if isinstance(document, dict):
        return "\n".join(strings(k) + "\n" + strings(v) for k, v in document.items())
    if isinstance(document, list):
        return "\n".join(strings(item) for item in document)
    return json.dumps(document)


def seen_by_agent(text: str) -> str:
    """``text``, and when it is JSON (or holds JSON lines), the strings inside it too."""
    parts = [text]
    for line in [text, *text.splitlines()]:
        try:
            parts.append(strings(json.loads(line)))
        except ValueError:
            continue
    return "\n".join(parts)


@pytest.fixture
def upstream() -> Iterator[EchoFormsServer]:
    """The echoing upstream, on 127.0.0.1."""
    with EchoFormsServer().running() as server:
        yield server


def test_the_echoed_forms_are_really_the_secret() -> None:
    """Every form the upstream sends decodes back to the secret (the test checks real forms)."""
    forms = echoed_forms(SECRET)
    assert len(forms) >= 20
    assert all(proves_secret(name, form, SECRET) for name, form in forms.items())
    assert sorted(leaks(" ".join(forms.values()), SECRET)) != []


def test_no_spelling_of_the_credential_reaches_the_agent(
    layout: Layout, real_daemon: DaemonInfo, upstream: EchoFormsServer, tmp_path: Path
) -> None:
    """CLI output, the HTTP JSON answer, aileron-mcp tool results and audit.jsonl hold none of
    the echoed spellings, for a 200 answer and for an error answer alike."""
    with admin_http(real_daemon) as admin:
        admin.post("vault/init", json={"passphrase": "pw"}).raise_for_status()
        admin.post("connectors", json={"spec": spec(upstream.host)}).raise_for_status()
        for name, op in (("forms-echo", "echo"), ("forms-fail", "fail")):
            admin.post("actions", json={"manifest": manifest(name, op)}).raise_for_status()
        binding = {"name": "token/forms/default", "value": SECRET}
        admin.post("bindings", json=binding).raise_for_status()
        made = admin.post("sessions", json={"agent": "claude", "working_dir": str(tmp_path)})
        made.raise_for_status()
        session = made.json()
    outputs: dict[str, str] = {}

    # The human's CLI.
    for name in ("forms-echo", "forms-fail"):
        done = aileron("action", "run", name, "--json")
        outputs[f"cli {name}"] = done.stdout + "\n" + done.stderr
    shown = json.loads(outputs["cli forms-echo"])["result"]
    assert shown["authorization"] == "Bearer [REDACTED]"
    assert set(shown["echo"]) == set(echoed_forms(SECRET))

    # The HTTP API with the session's token, as an agent's own client would call it.
    token = {"Authorization": f"Bearer {session['token']}"}
    statuses = []
    for name in ("forms-echo", "forms-fail"):
        answer = httpx.post(
            f"{real_daemon.api_url}/actions/{name}/run", json={"args": {}}, headers=token
        )
        statuses.append(answer.status_code)
        outputs[f"http {name}"] = answer.text
    assert statuses[0] == 200 and statuses[1] >= 400

    # aileron-mcp over real stdio with the mcp SDK's client.
    env = {
        "AILERON_URL": real_daemon.url,
        "AILERON_TOKEN": session["token"],
        "AILERON_SESSION_ID": session["id"],
        "PATH": os.environ["PATH"],
    }
    server = StdioServerParameters(command=script("aileron-mcp"), env=env)
    errlog = tmp_path / "aileron-mcp.stderr"

    async def scenario() -> list[types.CallToolResult]:
        with errlog.open("w") as stderr:
            async with Client(stdio_client(server, errlog=stderr), mode="legacy") as client:
                return [await client.call_tool(tool, {}) for tool in ("forms_echo", "forms_fail")]

    echo_result, fail_result = anyio.run(scenario)
    assert echo_result.is_error is False and fail_result.is_error is True
    for name, result in (("echo", echo_result), ("fail", fail_result)):
        texts = [block.text for block in result.content if isinstance(block, types.TextContent)]
        assert texts, result
        outputs[f"mcp {name}"] = "\n".join([result.model_dump_json(), *texts])
    outputs["mcp stderr"] = errlog.read_text()

    # The audit, as the daemon wrote it and as the CLI lists it.
    outputs["audit cli"] = aileron("audit", "list", "--json").stdout
    aileron("daemon", "stop")
    outputs["audit.jsonl"] = layout.audit.read_text()

    # The upstream really got the credential (three times per operation) and echoed it.
    assert upstream.seen == [SECRET] * 6
    assert '"echo"' in outputs["http forms-echo"] and "[REDACTED]" in outputs["http forms-echo"]
    excerpt = json.loads(outputs["http forms-fail"])["error"]["details"]["excerpt"]
    assert excerpt.startswith("bad key: [REDACTED]")
    assert "[REDACTED]" in outputs["mcp echo"] and "upstream_error" in outputs["mcp fail"]
    leaked = {where: leaks(seen_by_agent(text), SECRET) for where, text in outputs.items()}
    assert {where: names for where, names in leaked.items() if names} == {}
