"""A local stand-in for GitHub's App authentication and a little of its REST API.

``POST /app/installations/{id}/access_tokens`` behaves like GitHub's: the ``Authorization:
Bearer`` JWT must be RS256, signed by the App's private key (checked with its public key), with
``iss`` the App id, ``exp`` in the future and at most ten minutes after ``iat``, ``iat`` not in
the future (a minute of drift allowed); then ``201 {"token", "expires_at", …}`` with a token
that lives ``lifetime_s`` seconds. A bad JWT is ``401 {"message": "A JSON web token could not
be decoded"}``, an unknown installation ``404 {"message": "Not Found"}``.

Every other ``GET`` is the API: it answers ``200`` with a list of issues when ``Authorization``
is ``Bearer``/``token`` and a live installation token (or one of ``accepted``), else ``401
{"message": "Bad credentials"}``. It counts mints, JWTs checked and rejected, and API calls.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

TOKEN_PATH = re.compile(r"^/app/installations/(\d+)/access_tokens$")
DRIFT_S = 60
MAX_JWT_LIFETIME_S = 600


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FakeGitHubApp:
    """``with FakeGitHubApp() as github:`` — the App's private key is ``github.private_pem``,
    its API ``github.url`` (``github.host`` for a connector spec)."""

    def __init__(
        self, *, app_id: int = 4242, installation_id: int = 777, lifetime_s: float = 3600
    ) -> None:
        self.app_id = app_id
        self.installation_id = installation_id
        self.lifetime_s = lifetime_s
        """The lifetime of the next tokens minted (may be changed between mints)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,  # what GitHub hands out
            serialization.NoEncryption(),
        ).decode()
        self._public = key.public_key()
        self.tokens: dict[str, float] = {}
        """Installation tokens minted, with the time each expires."""
        self.accepted: set[str] = set()
        """Further tokens the API accepts (e.g. a command binding's)."""
        self.mints = 0
        self.jwt_checked = 0
        self.jwt_rejected = 0
        self.jwts: list[str] = []
        self.api_tokens: list[str] = []
        """The token each API call presented (accepted or not), in order."""
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server name
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, body = fake._mint(self.path, self.headers.get("Authorization", ""))
                self._answer(status, body)

            def do_GET(self) -> None:  # noqa: N802
                status, body = fake._api(self.headers.get("Authorization", ""))
                self._answer(status, body)

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self.url = f"http://{self.host}"

    def _check_jwt(self, authorization: str) -> bool:
        scheme, _, jwt = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return False
        try:
            header_b64, claims_b64, signature_b64 = jwt.split(".")
            header = json.loads(_unb64(header_b64))
            claims = json.loads(_unb64(claims_b64))
            if header.get("alg") != "RS256":
                return False
            self._public.verify(
                _unb64(signature_b64),
                f"{header_b64}.{claims_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (ValueError, InvalidSignature):
            return False
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        return (
            str(claims.get("iss")) == str(self.app_id)
            and isinstance(iat, int)
            and isinstance(exp, int)
            and iat <= now + DRIFT_S
            and exp > now
            and exp - iat <= MAX_JWT_LIFETIME_S
        )

    def _mint(self, path: str, authorization: str) -> tuple[int, Any]:
        match = TOKEN_PATH.match(path)
        if match is None:
            return 404, {"message": "Not Found"}
        with self._lock:
            self.jwts.append(authorization.partition(" ")[2])
            if not self._check_jwt(authorization):
                self.jwt_rejected += 1
                return 401, {"message": "A JSON web token could not be decoded"}
            self.jwt_checked += 1
            if int(match.group(1)) != self.installation_id:
                return 404, {"message": "Not Found"}
            self.mints += 1
            token = f"ghs_{secrets.token_urlsafe(27)}"
            expires = time.time() + self.lifetime_s
            self.tokens[token] = expires
        stamp = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return 201, {
            "token": token,
            "expires_at": stamp,
            "permissions": {"issues": "read"},
            "repository_selection": "all",
        }

    def _api(self, authorization: str) -> tuple[int, Any]:
        scheme, _, token = authorization.partition(" ")
        with self._lock:
            self.api_tokens.append(token)
            live = self.tokens.get(token, 0) > time.time() or token in self.accepted
        if scheme.lower() not in ("bearer", "token") or not live:
            return 401, {"message": "Bad credentials"}
        return 200, [{"number": 1, "title": "First issue", "state": "open"}]

    def revoke(self, token: str) -> None:
        """GitHub forgets ``token`` (as ``DELETE /installation/token`` would)."""
        with self._lock:
            self.tokens.pop(token, None)

    def __enter__(self) -> FakeGitHubApp:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
