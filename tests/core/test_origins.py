"""The origin check the daemon's executor and the enclave share (ADR 0026)."""

from __future__ import annotations

import httpx
import pytest

from aileron_core.origins import Origin


@pytest.mark.parametrize(
    ("url", "hosts"),
    [
        ("https://api.example.com/x", ["api.example.com"]),
        ("https://api.example.com:443/x", ["api.example.com"]),
        ("https://API.Example.com/x", ["api.example.com:443"]),
        ("https://api.example.com/x", ["API.EXAMPLE.COM"]),
        ("https://api.example.com:8443/x", ["api.example.com:8443"]),
        ("http://127.0.0.1:8080/x", ["127.0.0.1:8080"]),
        ("http://localhost/x", ["localhost"]),
    ],
)
def test_a_declared_origin_is_in_scope(url: str, hosts: list[str]) -> None:
    """Host case and the scheme's default port do not matter; loopback may use plain http."""
    assert Origin.of(httpx.URL(url)).in_scope(hosts)


@pytest.mark.parametrize(
    ("url", "hosts"),
    [
        ("https://evil.example.com/x", ["api.example.com"]),
        ("https://api.example.com:8443/x", ["api.example.com"]),
        ("https://api.example.com/x", ["api.example.com:8443"]),
        ("http://api.example.com/x", ["api.example.com"]),  # plain http off loopback
        ("http://127.0.0.1.evil.example/x", ["127.0.0.1.evil.example"]),  # looks local, is not
        ("ftp://api.example.com/x", ["api.example.com"]),
        ("https://api.example.com.evil.example/x", ["api.example.com"]),
    ],
)
def test_anything_else_is_out_of_scope(url: str, hosts: list[str]) -> None:
    """Another host, port or scheme, or plain http to a DNS name, is refused."""
    assert not Origin.of(httpx.URL(url)).in_scope(hosts)


def test_an_origin_is_shown_without_the_default_port() -> None:
    """``shown`` names the port only when it is not the scheme's default."""
    assert Origin.of(httpx.URL("https://API.example.com:443/")).shown == "api.example.com"
    assert Origin.of(httpx.URL("http://127.0.0.1:8080/")).shown == "127.0.0.1:8080"
    assert Origin.of(httpx.URL("https://a.example/")) == Origin("https", "a.example", 443)
