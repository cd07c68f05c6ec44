"""The daemon and the enclave together: real processes, the real CLI, a real HTTP server."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from actions.support import echo_spec
from enclave.support import SECRET, EnclaveProcess
from helpers import aileron

from aileron_cli.examples import ACTIONS
from aileron_cli.examples.echo_server import EchoServer
from aileron_core.discovery import DaemonInfo
from aileron_core.paths import Layout

PASSPHRASE = "enclave passphrase"
BINDING = "token/echo/default"


def env() -> dict[str, str]:
    """The test's environment (read now: the isolation fixture set HOME and AILERON_HOME)."""
    return dict(os.environ, AILERON_VAULT_PASSPHRASE=PASSPHRASE)


def setup_binding(echo: EchoServer, tmp_path: Path) -> None:
    """Vault, the echo connector and action, and the binding holding SECRET."""
    spec_file = tmp_path / "echo.json"
    spec_file.write_text(json.dumps(echo_spec(echo.host)))
    for args, stdin in (
        (("vault", "init"), None),
        (("connector", "install", str(spec_file)), None),
        (("action", "install", str(ACTIONS / "echo-say.md")), None),
        (("binding", "add", BINDING), SECRET + "\n"),
    ):
        done = aileron(*args, stdin=stdin, env=env())
        assert done.returncode == 0, done.stderr


def attach(
    enclave: EnclaveProcess, fingerprint: str | None = None
) -> subprocess.CompletedProcess[str]:
    return aileron(
        "enclave",
        "attach",
        enclave.url,
        "--fingerprint",
        fingerprint or enclave.fingerprint,
        "--code-file",
        str(enclave.code_file),
        env=env(),
    )


def run_json(*args: str) -> Any:
    done = aileron(*args, "--json", env=env())
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_an_escrowed_binding_runs_through_the_enclave_end_to_end(
    layout: Layout,
    real_daemon: DaemonInfo,
    enclave: EnclaveProcess,
    echo: EchoServer,
    tmp_path: Path,
) -> None:
    """attach → escrow → run works; afterwards no vault entry, file or output holds the secret."""
    setup_binding(echo, tmp_path)
    attached = attach(enclave)
    assert attached.returncode == 0, attached.stderr
    assert "debug provider" in attached.stdout
    escrowed = aileron("binding", "escrow", BINDING, env=env())
    assert escrowed.returncode == 0, escrowed.stderr
    assert "the vault no longer holds its secret" in escrowed.stdout
    ran = aileron("action", "run", "echo-say", "--arg", "message=via enclave", env=env())
    assert ran.returncode == 0, ran.stderr
    assert '"echo": "via enclave"' in ran.stdout
    assert [s.headers["Authorization"] for s in echo.seen] == [f"Bearer {SECRET}"]

    entries = run_json("vault", "list")
    assert [e["path"] for e in entries] == ["enclave/client-key"]
    binding = run_json("binding", "show", BINDING)
    assert binding["escrow"]["hosts"] == [echo.host]
    status = run_json("enclave", "status")
    assert status["verified"] is True and status["provider"] == "local"
    assert [e["binding"] for e in status["escrows"]] == [BINDING]

    audit = run_json("audit", "list", "--limit", "200")
    types = [r["type"] for r in audit]
    assert {"enclave.attached", "binding.escrowed", "execution.succeeded"} <= set(types)
    used = [r for r in audit if r["type"] == "binding.used"]
    escrow_id = binding["escrow"]["escrow_id"]
    assert [u["payload"]["escrow_id"] for u in used] == [escrow_id]
    executed = [e for e in enclave.events() if e["event"] == "execute"]
    assert [(e["escrow_id"], e["outcome"]) for e in executed] == [(escrow_id, "ok")]

    aileron("daemon", "stop")
    assert SECRET.encode() not in layout.vault.read_bytes()
    holders = [
        p for p in layout.home.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()
    ]
    assert holders == []
    for step in (attached, escrowed, ran):
        assert SECRET not in step.stdout + step.stderr


def test_attaching_with_a_wrong_fingerprint_is_refused(
    real_daemon: DaemonInfo, enclave: EnclaveProcess, layout: Layout
) -> None:
    """A wrong fingerprint stops attach before anything is sent; the code stays unused."""
    assert aileron("vault", "init", env=env()).returncode == 0
    code = enclave.code()
    done = attach(enclave, fingerprint="ab" * 32)
    assert done.returncode == 1
    stderr = done.stderr
    assert stderr.startswith("aileron: error: the enclave at ")
    assert f"presented certificate sha256 {enclave.fingerprint}, not the pinned" in stderr
    assert stderr.count("\n") == 1
    assert not layout.enclave.exists()
    assert enclave.code() == code
    assert [e for e in enclave.events() if e["event"] == "client.registered"] == []
    status = run_json("enclave", "status")
    assert status["attached"] is False and status["escrows"] == []


def test_attaching_with_a_wrong_code_or_measurement_is_refused(
    real_daemon: DaemonInfo, enclave: EnclaveProcess, layout: Layout, tmp_path: Path
) -> None:
    """A wrong registration code, or a measurement the enclave does not attest, is refused."""
    assert aileron("vault", "init", env=env()).returncode == 0
    bad_code = tmp_path / "code"
    bad_code.write_text("aec_wrong\n")
    done = aileron(
        "enclave", "attach", enclave.url, "--fingerprint", enclave.fingerprint,
        "--code-file", str(bad_code), env=env(),
    )  # fmt: skip
    assert done.returncode == 1
    assert "the enclave refused: the registration code is not" in done.stderr
    done = aileron(
        "enclave", "attach", enclave.url, "--fingerprint", enclave.fingerprint,
        "--code-file", str(enclave.code_file), "--measurement", "0" * 64, env=env(),
    )  # fmt: skip
    assert done.returncode == 1
    assert "measurement is not the expected one" in done.stderr
    assert not layout.enclave.exists()


def test_the_enclave_enforces_the_scope_even_when_the_daemon_does_not(
    real_daemon: DaemonInfo, enclave: EnclaveProcess, echo: EchoServer, tmp_path: Path
) -> None:
    """A connector moved to another host after escrow is refused by the enclave itself."""
    setup_binding(echo, tmp_path)
    assert attach(enclave).returncode == 0
    assert aileron("binding", "escrow", BINDING, env=env()).returncode == 0
    with EchoServer(SECRET) as elsewhere:
        spec_file = tmp_path / "moved.json"
        spec_file.write_text(json.dumps(echo_spec(elsewhere.host)))
        assert aileron("connector", "install", str(spec_file), env=env()).returncode == 0
        ran = aileron("action", "run", "echo-say", "--arg", "message=x", env=env())
        assert elsewhere.seen == []
    assert ran.returncode == 1
    assert ran.stderr.startswith("aileron: error: the enclave refused: refused to send binding")
    assert echo.seen == []


def test_detach_refuses_while_bindings_are_escrowed_and_revoke_deletes_the_escrow(
    real_daemon: DaemonInfo, enclave: EnclaveProcess, echo: EchoServer, tmp_path: Path,
    layout: Layout,
) -> None:  # fmt: skip
    """detach refuses while a binding is escrowed; revoke deletes the escrow; detach unregisters."""
    setup_binding(echo, tmp_path)
    assert attach(enclave).returncode == 0
    assert aileron("binding", "escrow", BINDING, env=env()).returncode == 0
    refused = aileron("enclave", "detach", env=env())
    assert refused.returncode == 1
    assert f"bindings are escrowed in this enclave: {BINDING}" in refused.stderr
    assert aileron("binding", "revoke", BINDING, env=env()).returncode == 0
    assert [e["event"] for e in enclave.events()][-1] == "escrow.deleted"
    detached = aileron("enclave", "detach", env=env())
    assert detached.returncode == 0, detached.stderr
    assert enclave.events()[-1]["event"] == "client.removed"
    assert not layout.enclave.exists()
    assert run_json("vault", "list") == []
