"""Helpers for enclave tests (imported as ``enclave.support``): a real enclave process and a
pinned, signing client for it."""

from __future__ import annotations

import base64
import json
import os
import signal
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from helpers import script

from aileron_core.enclave.attestation import public_ed25519
from aileron_core.enclave.encoding import b64encode
from aileron_core.enclave.sealing import Scope, seal_credential
from aileron_core.enclave.signing import SignedRequests

SECRET = "sk-escrow-SECRET-7d2e91"


def enclave_env(provider: str | None = "local") -> dict[str, str]:
    env = dict(os.environ)
    env.pop("AILERON_TEE_PROVIDER", None)
    if provider is not None:
        env["AILERON_TEE_PROVIDER"] = provider
    return env


def run_enclave(*args: str, provider: str | None = "local") -> subprocess.CompletedProcess[str]:
    """Run `aileron-enclave ARGS` to completion."""
    return subprocess.run(
        [script("aileron-enclave"), *args],
        capture_output=True,
        text=True,
        env=enclave_env(provider),
        timeout=60,
    )


@dataclass
class EnclaveProcess:
    """A real `aileron-enclave serve` on 127.0.0.1 (a free port unless ``listen`` says), over
    HTTPS."""

    data_dir: Path
    process: subprocess.Popen[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    listen: str = "127.0.0.1:0"

    def start(self) -> EnclaveProcess:
        self.info = {}
        self.process = subprocess.Popen(
            [
                script("aileron-enclave"),
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--listen",
                self.listen,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=enclave_env(),
        )
        deadline = time.monotonic() + 30
        listen = self.data_dir / "listen.json"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                stderr = self.process.stderr.read() if self.process.stderr else ""
                raise AssertionError(f"the enclave exited: {stderr}")
            try:
                info = json.loads(listen.read_text())
            except (FileNotFoundError, ValueError):
                info = {}
            if info.get("pid") == self.process.pid:
                self.info = info
                return self
            time.sleep(0.05)
        raise AssertionError("the enclave did not start within 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None

    @property
    def url(self) -> str:
        return str(self.info["url"])

    @property
    def fingerprint(self) -> str:
        return str(self.info["fingerprint"])

    @property
    def code_file(self) -> Path:
        return self.data_dir / "registration-code"

    def code(self) -> str:
        return self.code_file.read_text().strip()

    def events(self) -> list[dict[str, Any]]:
        path = self.data_dir / "events.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def client(self, key: Ed25519PrivateKey | None = None) -> httpx.Client:
        """A client pinned to this enclave's certificate; signing with ``key`` if given."""
        context = ssl.create_default_context(cadata=(self.data_dir / "tls-cert.pem").read_text())
        context.check_hostname = False
        return httpx.Client(
            base_url=self.url,
            verify=context,
            auth=SignedRequests(key, self.fingerprint) if key is not None else None,
            timeout=30,
        )

    def register(self) -> Ed25519PrivateKey:
        """Register a new client key with the current registration code."""
        key = Ed25519PrivateKey.generate()
        with self.client() as http:
            answer = http.post(
                "/v1/clients",
                json={
                    "public_key": b64encode(public_ed25519(key)),
                    "registration_code": self.code(),
                },
            )
        assert answer.status_code == 201, answer.text
        return key

    def escrow(self, key: Ed25519PrivateKey, scope: Scope, secret: str = SECRET) -> str:
        """Escrow ``secret`` for ``scope``; the escrow id."""
        with self.client() as http:
            document = http.post("/v1/attest", json={"nonce": os.urandom(16).hex()}).json()
        sealing = base64.b64decode(document["document"]["sealing_key"])
        sealed = seal_credential(secret.encode(), scope, sealing)
        with self.client(key) as http:
            answer = http.post(
                "/v1/escrow", json={"scope": scope.to_json(), "sealed": b64encode(sealed)}
            )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])


def echo_request(host: str, message: str = "hi") -> dict[str, Any]:
    """An execute request for the echo server at ``host``."""
    return {
        "method": "POST",
        "url": f"http://{host}/echo",
        "headers": [["Content-Type", "application/json"], ["Accept-Encoding", "identity"]],
        "body": b64encode(json.dumps({"message": message}).encode()),
    }
