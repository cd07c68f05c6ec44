"""Plain http is allowed only to IP literals of the loopback interface and the name localhost."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aileron_core.connectors import SpecError, is_loopback, parse_connector_spec

LOOPBACK = [
    "localhost",
    "LOCALHOST",
    "localhost.",
    "localhost:8080",
    "localhost.:8080",
    "127.0.0.1",
    "127.0.0.1:8765",
    "127.255.255.254",
    "127.9.9.9:1",
    "::1",
    "[::1]",
    "[::1]:8080",
    "::ffff:127.0.0.1",
    "[::ffff:127.0.0.2]:80",
]

NOT_LOOPBACK = [
    "127.attacker.example.com",
    "127.attacker.example.com:80",
    "127.0.0.1.attacker.example",
    "127.0.0.1.nip.io",
    "localhost.attacker.com",
    "localhost.attacker.com:8080",
    "my-localhost",
    "localhostx",
    "127.1",
    "127.000.0.1",
    "0127.0.0.1",
    "128.0.0.1",
    "10.0.0.1",
    "0.0.0.0",
    "::",
    "[::2]:80",
    "::ffff:10.0.0.1",
    "example.com",
    "",
]


@pytest.mark.parametrize("host", LOOPBACK)
def test_loopback_literals_and_localhost_are_loopback(host: str) -> None:
    """IP literals in 127.0.0.0/8, ::1 (also IPv4-mapped) and localhost, with or without port."""
    assert is_loopback(host)


@pytest.mark.parametrize("host", NOT_LOOPBACK)
def test_names_that_look_local_are_not_loopback(host: str) -> None:
    """A DNS name is never loopback, whatever its first label; nor is a sloppy IPv4 literal."""
    assert not is_loopback(host)


def _spec(host: str) -> dict[str, Any]:
    return {
        "schema_version": "aileron.connector.v1",
        "connector": {"fqn": "github://acme/echo", "version": "1.0.0", "description": "Echo."},
        "credential": {"service": "acme", "kind": "bearer"},
        "tools": [
            {
                "name": "echo",
                "description": "Echo.",
                "operations": [
                    {
                        "name": "say",
                        "summary": "Say.",
                        "method": "GET",
                        "path": "/say",
                        "scheme": "http",
                        "hosts": [host],
                    }
                ],
            }
        ],
    }


@pytest.mark.parametrize(
    "host", ["127.attacker.example.com", "localhost.attacker.com", "127.0.0.1.nip.io:8080"]
)
def test_a_spec_declaring_http_to_a_local_looking_name_is_refused(host: str) -> None:
    """A connector spec may not declare plain http to a DNS name that merely looks local; the
    error names the host, why, and what to use instead."""
    with pytest.raises(SpecError) as caught:
        parse_connector_spec(json.dumps(_spec(host)), source="echo.json")
    message = str(caught.value)
    assert host in message
    assert "is not a loopback host" in message
    assert "IP literals in 127.0.0.0/8" in message and "use https" in message
    assert caught.value.details["path"] == "$.tools[0].operations[0].hosts[0]"


@pytest.mark.parametrize("host", ["127.0.0.1:8765", "localhost:3000", "127.3.2.1"])
def test_a_spec_declaring_http_to_a_loopback_literal_parses(host: str) -> None:
    """Plain http to a loopback IP literal or localhost stays allowed (local test servers)."""
    spec = parse_connector_spec(json.dumps(_spec(host)), source="echo.json")
    assert spec.find_operation("echo", "say").base_url == f"http://{host}"
