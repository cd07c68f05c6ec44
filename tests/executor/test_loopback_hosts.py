"""The executor and the enclave never send plain http to a name that only looks local."""

from __future__ import annotations

import attrs
import httpx
import pytest
from executor.connector import SECRET, execute, make_spec

from aileron_cli.daemon.egress.executor import HostNotAllowed
from aileron_core.redaction import Secret


@pytest.mark.parametrize("host", ["127.attacker.example.com", "localhost.attacker.com"])
def test_a_hand_built_http_operation_to_a_local_looking_name_sends_nothing(host: str) -> None:
    """An Operation built by hand (past the spec parser) with scheme http and a DNS name that
    looks local is refused as host_not_allowed before anything is sent."""
    spec, operation = make_spec(["127.0.0.1:9"])
    operation = attrs.evolve(operation, hosts=(host,))
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    with pytest.raises(HostNotAllowed) as caught:
        execute(spec, operation, {}, Secret(SECRET), transport=httpx.MockTransport(handler))
    assert caught.value.code == "host_not_allowed"
    assert host in caught.value.message
    assert seen == []
