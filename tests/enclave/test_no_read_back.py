"""Once escrowed, the daemon never reads the secret back: not at run time, not in any code path."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from actions.support import echo_spec, manifest
from enclave.support import SECRET, EnclaveProcess
from fastapi.testclient import TestClient

import aileron_cli
from aileron_cli.daemon.store.vault import VaultService
from aileron_cli.examples.echo_server import EchoServer

BINDING = "token/echo/default"
PACKAGE = Path(aileron_cli.__file__).resolve().parent


def test_running_an_escrowed_binding_never_reads_its_secret(
    api: TestClient, enclave: EnclaveProcess, echo: EchoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Running an escrowed binding reads only the client key from the vault, never the binding."""
    assert api.post("vault/init", json={"passphrase": "pw"}).status_code == 201
    assert api.post("connectors", json={"spec": echo_spec(echo.host)}).status_code == 201
    assert api.post("actions", json={"manifest": manifest("echo-say")}).status_code == 201
    added = api.post("bindings", json={"name": BINDING, "value": SECRET})
    assert added.status_code == 201
    attached = api.post(
        "enclave/attach",
        json={"url": enclave.url, "fingerprint": enclave.fingerprint,
              "registration_code": enclave.code()},
    )  # fmt: skip
    assert attached.status_code == 200, attached.text
    escrowed = api.post(f"bindings/{BINDING}/escrow", json={})
    assert escrowed.status_code == 200, escrowed.text
    assert escrowed.json()["hosts"] == [echo.host]

    reads: list[str] = []
    original = VaultService.get

    async def recording_get(self: VaultService, path: str) -> bytes:
        reads.append(path)
        return await original(self, path)

    monkeypatch.setattr(VaultService, "get", recording_get)
    for message in ("one", "two"):
        ran = api.post("actions/echo-say/run", json={"args": {"message": message}})
        assert ran.status_code == 200, ran.text
        assert ran.json()["result"] == {"echo": message, "authorized": True}
    assert reads == ["enclave/client-key", "enclave/client-key"]
    assert [s.headers["Authorization"] for s in echo.seen] == [f"Bearer {SECRET}"] * 2
    paths = [e["path"] for e in api.get("vault/entries").json()]
    assert BINDING not in paths
    again = api.post(f"bindings/{BINDING}/escrow", json={})
    assert again.status_code == 409 and again.json()["error"]["code"] == "binding_escrowed"


def vault_reads() -> dict[tuple[str, str], int]:
    """Every `<x>.vault.get(...)` / `vault.get(...)` call in aileron_cli, by (module, function)."""
    found: dict[tuple[str, str], int] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "get"
                    and ast.unparse(node.func.value).split(".")[-1] in ("vault", "_vault")
                ):
                    key = (path.relative_to(PACKAGE).as_posix(), function.name)
                    found.setdefault(key, node.lineno)
    return found


def _literal(node: ast.expr) -> str:
    """A string literal's text; an f-string's with ``{`` where a value goes."""
    if isinstance(node, ast.Constant):
        return str(node.value)
    assert isinstance(node, ast.JoinedStr), ast.unparse(node)
    return "".join(str(v.value) if isinstance(v, ast.Constant) else "{" for v in node.values)


def enclave_calls() -> set[tuple[str, str]]:
    """Every ``connection.call(METHOD, PATH, …)`` of the daemon, the path cut at a ``{``."""
    calls = set()
    for name in ("service.py", "client.py", "witness.py"):
        tree = ast.parse((PACKAGE / "daemon" / "enclave" / name).read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "call"
            ):
                method, path = (_literal(arg) for arg in node.args[:2])
                calls.add((method, path.split("{")[0]))
    return calls


def test_no_code_path_reads_an_escrowed_secret_back() -> None:
    """Grep-level proof: no daemon code path can read an escrowed secret back."""
    reads = vault_reads()
    assert set(reads) == {
        ("daemon/run/credentials.py", "secret"),
        ("daemon/store/vault.py", "get"),
        ("daemon/enclave/service.py", "client_key"),
        ("daemon/enclave/service.py", "escrow_binding"),
        # A credential source's stored settings (ADR 0031): read only for bindings with a
        # source, which cannot be escrowed (tests/sources/test_source_bindings_api.py).
        ("daemon/run/sources/stored.py", "settings"),
        ("daemon/run/sources/oauth2.py", "_state"),
        ("daemon/run/sources/oauth2_flows.py", "reauthorize"),
    }
    resolver = (PACKAGE / "daemon/run/credentials.py").read_text().splitlines()
    escrow_return = next(i for i, line in enumerate(resolver, 1) if "return Escrowed(" in line)
    local_read = next(i for i, line in enumerate(resolver, 1) if "await self.secret(" in line)
    assert escrow_return < local_read < reads[("daemon/run/credentials.py", "secret")]
    assert enclave_calls() == {
        ("POST", "/v1/attest"),
        ("POST", "/v1/clients"),
        ("DELETE", "/v1/clients/self"),
        ("POST", "/v1/escrow"),
        ("DELETE", "/v1/escrow/"),
        ("POST", "/v1/execute"),
        ("POST", "/v1/witness"),
        ("GET", "/v1/witness/latest?vault_id="),
    }


def test_the_enclave_serves_no_route_that_returns_a_secret(tmp_path: Path) -> None:
    """The enclave's whole API has no route that answers with a sealed or opened credential."""
    from aileron_enclave.app import Enclave, create_app
    from aileron_enclave.datadir import DataDir, Identity
    from aileron_enclave.schemas import EscrowOut
    from aileron_enclave.store import EscrowStore

    data_dir = DataDir(tmp_path / "d")
    identity = Identity.load_or_create(data_dir)
    store = EscrowStore.open(data_dir, identity.storage_key)
    app = create_app(Enclave(data_dir, identity, store, provider="local", measurement="0" * 64))
    routes = {
        (method, path)
        for route in app.routes
        for method in getattr(route, "methods", ())
        if (path := getattr(route, "path", ""))
    }
    assert routes == {
        ("GET", "/health"),
        ("POST", "/v1/attest"),
        ("POST", "/v1/clients"),
        ("DELETE", "/v1/clients/self"),
        ("POST", "/v1/escrow"),
        ("GET", "/v1/escrow"),
        ("DELETE", "/v1/escrow/{escrow_id}"),
        ("POST", "/v1/execute"),
        ("POST", "/v1/witness"),
        ("GET", "/v1/witness/latest"),
    }
    assert set(EscrowOut.model_fields) == {"id", "binding", "hosts", "kind", "name", "created_at"}
