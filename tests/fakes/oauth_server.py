"""A local OAuth2 authorization server and the API it guards, for the OAuth2 tests (#22).

It behaves like the real ones (RFC 6749, 7636, 8628) as far as Aileron can tell:

- ``GET /authorize?response_type=code&client_id&redirect_uri&state&code_challenge&
  code_challenge_method=S256[&scope]`` — the user "approves" at once: 302 to
  ``redirect_uri?code=…&state=…``. The code is good once, for this client, this redirect URI and
  this challenge; anything else is a 400 page (no redirect, as RFC 6749 §4.1.2.1 says).
- ``POST /token`` (form) — ``authorization_code`` (checks ``code_verifier`` against the
  challenge, the redirect URI and the client), ``refresh_token`` (a new access token with
  :attr:`expires_in`, the refresh token rotated: the old one is dead), and the device grant
  (``authorization_pending`` :attr:`pending_polls` times, then tokens). Errors are JSON
  ``{"error": …}`` with 400 (401 ``invalid_client`` for a wrong client secret).
- ``POST /device`` (form ``client_id``, ``scope``) — a device code and a user code.
- ``POST /api/echo`` — the API: 200 ``{"echo": message}`` for a live access token in
  ``Authorization: Bearer``, else 401.

Tests read :attr:`refreshes` (refresh grants answered with tokens), :attr:`api_calls`, and call
:meth:`revoke_refresh_tokens` / :meth:`revoke_access_tokens`. :attr:`issued` holds every token
it gave out, so a test can look for them where they must not be.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

CLIENT_ID = "aileron-test-client"
CLIENT_SECRET = "cs-test-client-secret-7d1f"  # noqa: S105 (the fake's own)


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class FakeOAuthServer:
    """``with FakeOAuthServer() as oauth:`` — the server on ``oauth.url``."""

    def __init__(self, *, client_secret: str | None = CLIENT_SECRET) -> None:
        self.client_secret = client_secret
        self.expires_in = 3600
        """``expires_in`` of the next access token issued."""
        self.pending_polls = 1
        self.device_interval = 1
        self.refreshes = 0
        self.api_calls = 0
        self.issued: list[str] = []
        self._codes: dict[str, dict[str, str]] = {}
        self._access: dict[str, float] = {}
        self._refresh: set[str] = set()
        self._devices: dict[str, int] = {}
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                parts = urlsplit(self.path)
                if parts.path != "/authorize":
                    self._json(404, {"error": "not_found"})
                    return
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                location = fake._authorize(query)
                if location is None:
                    self._send(400, b"bad authorization request", "text/plain")
                    return
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = urlsplit(self.path).path
                if path == "/api/echo":
                    status, answer = fake._api(self.headers.get("Authorization"), body)
                else:
                    form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                    if path == "/token":
                        status, answer = fake._token(form)
                    elif path == "/device":
                        status, answer = fake._device(form)
                    else:
                        status, answer = 404, {"error": "not_found"}
                self._json(status, answer)

            def _json(self, status: int, document: dict[str, Any]) -> None:
                self._send(status, json.dumps(document).encode(), "application/json")

            def _send(self, status: int, data: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self.url = f"http://{self.host}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeOAuthServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop answering (a token endpoint that is down); once is enough."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._server.server_close()

    # --- what tests do ---------------------------------------------------------------------

    def revoke_refresh_tokens(self) -> None:
        """Every refresh token issued so far is dead (the user revoked the app)."""
        with self._lock:
            self._refresh.clear()

    def revoke_access_tokens(self) -> None:
        """Every access token issued so far is refused by the API (revoked early)."""
        with self._lock:
            self._access.clear()

    # --- the endpoints ---------------------------------------------------------------------

    def _authorize(self, query: dict[str, str]) -> str | None:
        if (
            query.get("response_type") != "code"
            or query.get("client_id") != CLIENT_ID
            or query.get("code_challenge_method") != "S256"
            or not query.get("code_challenge")
            or not query.get("redirect_uri", "").startswith("http://")
            or "state" not in query
        ):
            return None
        code = "code-" + secrets.token_urlsafe(16)
        with self._lock:
            self._codes[code] = {
                "challenge": query["code_challenge"],
                "redirect_uri": query["redirect_uri"],
                "scope": query.get("scope", ""),
            }
        return query["redirect_uri"] + "?" + urlencode({"code": code, "state": query["state"]})

    def _client_ok(self, form: dict[str, str]) -> bool:
        return form.get("client_id") == CLIENT_ID and form.get("client_secret") == (
            self.client_secret
        )

    def _tokens(self, scope: str) -> dict[str, Any]:
        access = "at-" + secrets.token_urlsafe(24)
        refresh = "rt-" + secrets.token_urlsafe(24)
        self._access[access] = time.time() + self.expires_in
        self._refresh.add(refresh)
        self.issued += [access, refresh]
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": refresh,
            "scope": scope,
        }

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if not self._client_ok(form):
            return 401, {"error": "invalid_client"}
        grant = form.get("grant_type")
        with self._lock:
            if grant == "authorization_code":
                found = self._codes.pop(form.get("code", ""), None)
                if (
                    found is None
                    or found["redirect_uri"] != form.get("redirect_uri")
                    or found["challenge"] != _s256(form.get("code_verifier", ""))
                ):
                    return 400, {"error": "invalid_grant"}
                return 200, self._tokens(found["scope"])
            if grant == "refresh_token":
                token = form.get("refresh_token", "")
                if token not in self._refresh:
                    return 400, {"error": "invalid_grant", "error_description": "revoked"}
                self._refresh.discard(token)  # rotated: the old one is dead
                self.refreshes += 1
                return 200, self._tokens(form.get("scope", ""))
            if grant == "urn:ietf:params:oauth:grant-type:device_code":
                left = self._devices.get(form.get("device_code", ""))
                if left is None:
                    return 400, {"error": "expired_token"}
                if left > 0:
                    self._devices[form["device_code"]] = left - 1
                    return 400, {"error": "authorization_pending"}
                del self._devices[form["device_code"]]
                return 200, self._tokens(form.get("scope", ""))
        return 400, {"error": "unsupported_grant_type"}

    def _device(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("client_id") != CLIENT_ID:
            return 401, {"error": "invalid_client"}
        device_code = "dc-" + secrets.token_urlsafe(16)
        with self._lock:
            self._devices[device_code] = self.pending_polls
        return 200, {
            "device_code": device_code,
            "user_code": "WDJB-MJHT",
            "verification_uri": f"{self.url}/activate",
            "expires_in": 900,
            "interval": self.device_interval,
        }

    def _api(self, authorization: str | None, body: bytes) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.api_calls += 1
            token = (authorization or "").removeprefix("Bearer ")
            if self._access.get(token, 0.0) < time.time():
                return 401, {"message": "Bad credentials"}
        message = json.loads(body or b"{}").get("message")
        return 200, {"echo": message, "authorized": True}
