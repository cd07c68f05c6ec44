"""Helpers for the OAuth2 tests (imported as ``oauth.support``)."""

from __future__ import annotations

from typing import Any

from actions.support import echo_spec
from fakes.oauth_server import FakeOAuthServer

NAME = "oauth2/echo/default"


def oauth_echo_spec(oauth: FakeOAuthServer, *, device: bool = True) -> dict[str, Any]:
    """The shipped local://echo spec, its credential OAuth2 from ``oauth`` and its operations
    sent to ``oauth``'s API (which takes only the access tokens ``oauth`` issued)."""
    spec = echo_spec(oauth.host)
    endpoints: dict[str, Any] = {
        "authorize_url": f"{oauth.url}/authorize",
        "token_url": f"{oauth.url}/token",
        "scopes": ["echo:write"],
    }
    if device:
        endpoints["device_authorization_url"] = f"{oauth.url}/device"
    spec["credential"] = {"service": "echo", "kind": "oauth2", "oauth2": endpoints}
    for tool in spec["tools"]:
        for operation in tool["operations"]:
            operation["path"] = "/api/echo"
    return spec
